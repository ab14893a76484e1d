"""The leads' dashboard charts over HTTP, against a real server: plotly.js served from the
installed plotly package (no CDN), the chart data as JSON in the page, and the drill-down links
from a period, an agent or an item to the queue, each leading to exactly the calls counted."""

from __future__ import annotations

import gzip
import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from review_helpers import db_url, module_database, postgres_url, record  # noqa: F401  (fixtures)
from test_app import PASSWORD, login, start_server
from test_db import write_run

NIGHT = 'late & <night>"'
"""A team (queue) name that HTML, JSON in a script and a URL must all keep as written."""

# (call id, agent, team, day, score, answers to opening.greeting and closing.thanks); the newest day is
# 2026-11-27, so the default window (the last 30 days with calls) is 2026-10-29 to 2026-11-27
CALLS = [
    ("b01", "a1", "billing", "2026-11-03", 0.9, "yes", "yes"),
    ("b02", "a1", "billing", "2026-11-04", 0.5, "no", "yes"),
    ("b03", "a1", "billing", "2026-11-10", 0.7, "yes", "no"),
    ("b04", "a1", "billing", "2026-11-17", 0.95, "yes", "yes"),
    ("b05", "a1", "billing", "2026-11-24", 0.4, "no", "no"),
    ("b06", "a1", "billing", "2026-11-27", 0.85, "yes", "yes"),
    ("b07", "a2", "billing", "2026-11-05", 0.6, "no", "yes"),
    ("b08", "a2", "billing", "2026-11-12", 0.8, "yes", "yes"),
    ("b09", "a2", "billing", "2026-11-26", 0.3, "no", "no"),
    ("s01", "a3", "support", "2026-11-06", 0.9, "yes", "yes"),
    ("s02", "a3", "support", "2026-11-13", 0.75, "yes", "no"),
    ("s03", "a3", "support", "2026-11-20", 0.65, "no", "yes"),
    ("s04", "a3", "support", "2026-11-27", 0.88, "yes", "yes"),
    ("s05", "a1", "support", "2026-11-11", 0.55, "no", "yes"),
    ("s06", None, "support", "2026-11-21", 0.7, "yes", "no"),
    ("n01", "a2", NIGHT, "2026-11-18", 0.92, "yes", "yes"),
    ("old", "a1", "billing", "2026-08-14", 0.2, "no", "no"),  # outside the last 30 and 90 days
]
REVIEWS = {  # the lead's submitted answers, some against the suggestion
    "b02": {"opening.greeting": "yes", "closing.thanks": "yes"},
    "b03": {"opening.greeting": "no", "closing.thanks": "no"},
    "b07": {"opening.greeting": "no", "closing.thanks": "no"},
    "s02": {"opening.greeting": "yes", "closing.thanks": "yes"},
}
G, T = "opening.greeting", "closing.thanks"
QUEUE_FILTERS = {"agent", "queue", "date_from", "date_to", "item", "answer", "period"}


def answers_of(call_id: str) -> dict[str, str]:
    """The effective answers of a call: the review's where there is one, else the suggestions."""
    row = next(c for c in CALLS if c[0] == call_id)
    return REVIEWS.get(call_id, {G: row[5], T: row[6]})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dash(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A database of :data:`CALLS` (three teams, three agents and a call without one, a month of
    days and one older call) with :data:`REVIEWS` submitted by the lead lena; the app on a free port."""
    from pipeline.review.app import create_app
    from pipeline.review.db import sessions
    from pipeline.review.loader import load_results
    from pipeline.review.users import add_user
    from review_helpers import submit

    root = tmp_path_factory.mktemp("dash")
    out = root / "out"
    write_run(out, [record(cid, agent, f"{day}T10:00:00Z", {G: g, T: t}, score=score, queue=team)
                    for cid, agent, team, day, score, g, t in CALLS])
    db, engine = module_database(request, root)
    with sessions(engine).begin() as s:
        load_results(s, out)
        lena = add_user(s, "lena", PASSWORD, "lead")
        add_user(s, "rita", PASSWORD, "reviewer")
        for n, (cid, answers) in enumerate(REVIEWS.items()):
            submit(s, cid, lena.id, answers, minutes=n)
    srv, thread, url = start_server(create_app(db))
    yield {"url": url, "db": db, "engine": engine}
    srv.should_exit = True
    thread.join(timeout=5)
    engine.dispose()


def chart_data(page: str) -> dict:
    block = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', page, re.S)
    assert block, "the page carries its chart data"
    return json.loads(block.group(1))


def hrefs(page: str, table_id: str) -> list[str]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert table, table_id
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', table.group(1))]


def queue_calls(client: httpx.Client, url: str) -> list[dict]:
    """The calls the queue lists at ``url`` (a queue link of the dashboard), every page of them."""
    parts = urlsplit(url)
    assert parts.path == "/" and not parts.scheme and not parts.netloc, url
    params = dict(parse_qsl(parts.query))
    assert set(params) <= QUEUE_FILTERS, url
    assert client.get(url).status_code == 200  # the page itself
    got = client.get("/api/calls", params={**params, "per_page": "200"}).json()
    assert got["total"] == len(got["calls"])
    return got["calls"]


def in_window(day: str, first: str = "2026-10-29", last: str = "2026-11-27") -> bool:
    return first <= day <= last


def test_plotly_js_is_served_from_the_installed_package(dash):
    import plotly

    shipped = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    assert b"plotly.js v" in shipped[:200]
    c = httpx.Client(base_url=dash["url"])  # a published library: no log-in needed
    plain = c.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == shipped
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "content-encoding" not in plain.headers
    cache = plain.headers["cache-control"]
    assert "public" in cache and int(re.search(r"max-age=(\d+)", cache).group(1)) >= 365 * 24 * 3600
    assert plain.headers["x-content-type-options"] == "nosniff" and "script-src 'self'" in plain.headers[
        "content-security-policy"]
    with c.stream("GET", "/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"}) as packed:
        body = b"".join(packed.iter_raw())  # as sent, not unpacked
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert len(body) < len(shipped) / 2 and gzip.decompress(body) == shipped
    again = c.get("/vendor/plotly.min.js", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    refused = c.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers and refused.content == shipped


def test_the_dashboard_loads_plotly_and_its_data_without_inline_code(dash):
    lena, _ = login(dash, "lena")
    r = lena.get("/dashboard")
    assert r.status_code == 200
    page = r.text
    # no server-drawn chart any more, and nothing inline for the browser to run or style
    assert "<svg" not in page and " style=" not in page and "<style" not in page and " on" + "click=" not in page
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all('src="' in s or 'type="application/json"' in s for s in scripts), scripts
    src = re.search(r'<script src="(/vendor/plotly\.min\.js\?v=[0-9a-f]+)"></script>', page).group(1)
    assert lena.get(src).status_code == 200
    assert '<script src="/static/dashboard.js"></script>' in page
    assert lena.get("/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    style = re.search(r'<link id="plotly.js-style-global" class="no-inline-styles" rel="stylesheet" '
                      r'href="([^"]+)">', page)
    assert style and page.index(style.group(0)) < page.index(src)  # there before plotly.js looks for it
    assert lena.get(style.group(1)).headers["content-type"].startswith("text/css")
    for chart in ("chart-trend", "chart-teams", "chart-agreement"):
        assert f'<div id="{chart}" class="chart' in page


def test_the_chart_data_is_the_dashboards_trend_with_a_queue_link_per_point(dash):
    lena, _ = login(dash, "lena")
    api = lena.get("/api/dashboard").json()
    data = chart_data(lena.get("/dashboard").text)
    assert data["window"]["date_from"] == "2026-10-29" and data["window"]["date_to"] == "2026-11-27"
    keys = ("period", "start", "calls", "mean_score", "reviewed_calls", "mean_reviewed_score", "pass_rate")
    assert [{k: r[k] for k in keys} for r in data["trend"]] == [{k: r.get(k) for k in keys} for r in api["trend"]]
    # weeks (the default bucket) of November 2026, from Monday 2 to Monday 23; the August call is out
    assert [r["period"] for r in data["trend"]] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert sum(r["calls"] for r in data["trend"]) == sum(in_window(c[3]) for c in CALLS) == 16
    assert set(data["teams"]) == {"billing", "support", NIGHT}
    assert data["team_measure"] == "pass_rate"
    assert [a["item"] for a in data["agreement"]] == [G, T]
    # every point of a time series opens the queue on exactly the calls it counts
    for row in data["trend"]:
        calls = queue_calls(lena, row["url"])
        assert len(calls) == row["calls"], row
        assert all(c["started_at"][:10] >= row["start"] for c in calls)
    for team, rows in data["teams"].items():
        for row in rows:
            assert dict(parse_qsl(urlsplit(row["url"]).query))["queue"] == team
            calls = queue_calls(lena, row["url"])
            assert len(calls) == row["calls"] and {c["queue"] for c in calls} == {team}
    # the August call is in the year, and a month of it is a point of its own
    year = chart_data(lena.get("/dashboard", params={"period": "365d", "bucket": "month"}).text)
    assert [(r["period"], r["calls"]) for r in year["trend"]] == [("2026-08", 1), ("2026-11", 16)]
    assert [c["call_id"] for c in queue_calls(lena, year["trend"][0]["url"])] == ["old"]


def test_the_json_in_the_page_cannot_close_its_script(dash):
    lena, _ = login(dash, "lena")
    page = lena.get("/dashboard").text
    block = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and "\\u003cnight>" in block
    assert NIGHT in chart_data(page)["teams"]
    assert "late &amp; &lt;night&gt;&#34;</option>" in page or "late &amp; &lt;night&gt;&quot;</option>" in page


def test_agent_links_open_their_calls_and_their_trend(dash):
    lena, _ = login(dash, "lena")
    page = lena.get("/dashboard").text
    links = hrefs(page, "agents")
    data = {a["agent_id"]: a for a in lena.get("/api/dashboard").json()["agents"]}
    for agent in ("a1", "a2", "a3"):
        calls_link = next(h for h in links if h.startswith("/?") and f"agent={agent}&" in h)
        assert dict(parse_qsl(urlsplit(calls_link).query)) == {
            "agent": agent, "date_from": "2026-10-29", "date_to": "2026-11-27"}
        calls = queue_calls(lena, calls_link)
        assert {c["agent_id"] for c in calls} == {agent} and len(calls) == data[agent]["calls"]
        assert sorted(c["call_id"] for c in calls) == sorted(c[0] for c in CALLS if c[1] == agent and in_window(c[3]))
        trend_link = next(h for h in links if h.startswith("/dashboard?") and f"agent={agent}" in h)
        own = chart_data(lena.get(trend_link).text)
        assert sum(r["calls"] for r in own["trend"]) == data[agent]["calls"]
        assert own["scope"].startswith(f"agent {agent}")
        assert all(dict(parse_qsl(urlsplit(r["url"]).query))["agent"] == agent for r in own["trend"])
    # the call without an agent is counted, but has no link the queue could not follow
    assert '<tr data-agent="">\n<td>(none)</td>\n<td>1</td>' in page


def test_item_links_open_the_calls_answered_no(dash):
    lena, _ = login(dash, "lena")
    page = lena.get("/dashboard", params={"team": "billing"}).text
    window = [c for c in CALLS if in_window(c[3])]
    # the agreement table: an item's calls answered "no" (the review's answer where there is one)
    agreement = hrefs(page, "agreement")
    assert len(agreement) == 2
    for link in agreement:
        params = dict(parse_qsl(urlsplit(link).query))
        assert params["answer"] == "no" and params["queue"] == "billing" and params["date_to"] == "2026-11-27"
        got = sorted(c["call_id"] for c in queue_calls(lena, link))
        assert got == sorted(c[0] for c in window if c[2] == "billing" and answers_of(c[0])[params["item"]] == "no")
        assert got  # not vacuous
    # the pass rates: an item column's header for the team, a figure for that agent
    rates = hrefs(page, "pass-rates")
    headers = [h for h in rates if "agent=" not in h]
    assert [dict(parse_qsl(urlsplit(h).query))["item"] for h in headers] == [G, T]
    cell = next(h for h in rates if "agent=a1" in h and f"item={G}" in h)
    assert sorted(c["call_id"] for c in queue_calls(lena, cell)) == ["b03", "b05"]  # b02's "no" was reviewed to yes


def test_the_period_picker_and_filters(dash):
    lena, _ = login(dash, "lena")
    page = lena.get("/dashboard", params={"period": "90d"}).text
    assert '<option value="90d" selected>' in page
    assert re.search(r'<option value="30d"\s*>', page)
    custom = lena.get("/dashboard", params={"start": "2026-11-10", "end": "2026-11-17", "bucket": "day"}).text
    data = chart_data(custom)
    assert data["window"]["date_from"] == "2026-11-10" and data["window"]["date_to"] == "2026-11-16"
    assert [r["period"] for r in data["trend"]] == ["2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    assert '<option value="" selected>the dates below</option>' in custom
    assert 'name="start" id="start" value="2026-11-10"' in custom
    for row in data["trend"]:  # a day's point opens that day
        params = dict(parse_qsl(urlsplit(row["url"]).query))
        assert params["date_from"] == params["date_to"] == row["start"]
    teams = lena.get("/dashboard", params={"team": "support", "agent": "a3"}).text
    assert "<option selected>support</option>" in teams and "<option selected>a3</option>" in teams
    scoped = chart_data(teams)
    assert sum(r["calls"] for r in scoped["trend"]) == 4 and scoped["scope"] == "agent a3 · team support"
    assert lena.get("/dashboard", params={"period": "7y"}).status_code == 422  # said, not a server error


def test_the_dashboard_is_for_leads_and_says_when_there_is_nothing(dash):
    rita, _ = login(dash, "rita")
    assert rita.get("/dashboard").status_code == 403
    lena, _ = login(dash, "lena")
    page = lena.get("/dashboard", params={"start": "2020-01-01", "end": "2020-02-01"}).text
    data = chart_data(page)
    assert data["trend"] == [] and data["agreement"] == []
    assert "No calls in this period." in page
