"""The leads' dashboard charts over HTTP, against a real server: plotly.js served from the
installed plotly package (no CDN), the chart data as JSON in the page, and the drill-down links
from a period, an agent or an item to the queue, each leading to exactly the calls counted; the
weekly agreement per item (the drift chart): its n, the weeks too thin for the drift test, the
week an item dropped."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, timedelta
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
QUEUE_FILTERS = {"agent", "queue", "date_from", "date_to", "item", "answer", "reviewed", "period"}

# the drift chart's own database: from Monday 7 September 2026, DRIFT_CALLS[w] calls in week w (on
# Monday to Friday, all suggesting "yes" to both items), the reviewer agreeing with the suggestion
# on the first DRIFT_AGREE[item][w] of them. Week 2 has fewer answers than the drift test needs;
# greeting's agreement falls in the last week, thanks' stays where it was.
DRIFT_MONDAY = date(2026, 9, 7)
DRIFT_CALLS = [12, 12, 4, 12, 12, 12]
DRIFT_AGREE = {G: [11, 11, 4, 11, 11, 3], T: [10, 11, 3, 10, 11, 10]}


def answers_of(call_id: str) -> dict[str, str]:
    """The effective answers of a call: the review's where there is one, else the suggestions."""
    row = next(c for c in CALLS if c[0] == call_id)
    return REVIEWS.get(call_id, {G: row[5], T: row[6]})


def suggestions_of(call_id: str) -> dict[str, str]:
    """The automatic answers of a call."""
    row = next(c for c in CALLS if c[0] == call_id)
    return {G: row[5], T: row[6]}


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


def drift_calls() -> list[tuple[str, str, str, str]]:
    """(call id, day, greeting answer, thanks answer) of the reviews in the drift database."""
    out = []
    for w, count in enumerate(DRIFT_CALLS):
        for k in range(count):
            day = DRIFT_MONDAY + timedelta(weeks=w, days=k % 5)
            out.append((f"w{w}c{k:02d}", day.isoformat(), *("yes" if k < DRIFT_AGREE[i][w] else "no" for i in (G, T))))
    return out


def drift_weeks() -> dict[str, list[dict]]:
    """{item: [{"period", "start", "n" (reviewed answers), "agreed" (the suggestion right)}, ...]}
    of the drift database, week by week, worked out from :data:`DRIFT_CALLS` and :data:`DRIFT_AGREE`."""
    reviews = drift_calls()
    weeks = sorted({iso_week(day) for _, day, _, _ in reviews}, key=lambda w: w[1])
    return {item: [{"period": label, "start": monday,
                    "n": sum(iso_week(r[1]) == (label, monday) for r in reviews),
                    "agreed": sum(iso_week(r[1]) == (label, monday) and r[2 + i] == "yes" for r in reviews)}
                   for label, monday in weeks] for i, item in enumerate((G, T))}


def iso_week(day: str) -> tuple[str, str]:
    """(ISO week label, its Monday) of a day, worked out here rather than by the app."""
    d = date.fromisoformat(day)
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}", (d - timedelta(days=d.weekday())).isoformat()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def drift_dash(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A database of the :data:`DRIFT_CALLS`, each reviewed by the lead lena; the app on a free port."""
    from pipeline.review.app import create_app
    from pipeline.review.db import sessions
    from pipeline.review.loader import load_results
    from pipeline.review.users import add_user
    from review_helpers import submit

    root = tmp_path_factory.mktemp("drift")
    out = root / "out"
    rows = drift_calls()
    write_run(out, [record(cid, f"a{n % 3}", f"{day}T10:00:00Z", {G: "yes", T: "yes"}, queue="billing")
                    for n, (cid, day, _, _) in enumerate(rows)])
    db, engine = module_database(request, root)
    with sessions(engine).begin() as s:
        load_results(s, out)
        lena = add_user(s, "lena", PASSWORD, "lead")
        for n, (cid, _, g, t) in enumerate(rows):
            submit(s, cid, lena.id, {G: g, T: t}, minutes=n)
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
    for chart in ("chart-trend", "chart-teams", "chart-agreement", "chart-drift"):
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


def test_the_drift_chart_is_the_weekly_agreement_with_n_and_a_queue_link_per_point(dash):
    from pipeline.learning.drift import MIN_N

    lena, _ = login(dash, "lena")
    for team in (None, "billing"):
        params = {"team": team} if team else {}
        api = lena.get("/api/dashboard", params=params).json()["agreement_drift"]
        page = lena.get("/dashboard", params=params).text
        drift = chart_data(page)["drift"]
        assert drift["min_n"] == api["min_n"] == MIN_N
        # the reviewed calls of the window (of the team), by hand: per item and ISO week
        expected: dict[str, dict[tuple[str, str], list[str]]] = {G: {}, T: {}}
        for cid in REVIEWS:
            row = next(c for c in CALLS if c[0] == cid)
            if not in_window(row[3]) or (team and row[2] != team):
                continue
            for item in (G, T):
                expected[item].setdefault(iso_week(row[3]), []).append(cid)
        assert [i["item"] for i in drift["items"]] == [G, T] == list(api["weekly"])
        for it in drift["items"]:
            item = it["item"]
            want = sorted(expected[item])
            assert [(w["period"], w["start"]) for w in it["weeks"]] == want
            for w in it["weeks"]:
                cids = expected[item][(w["period"], w["start"])]
                agreed = sum(REVIEWS[c][item] == suggestions_of(c)[item] for c in cids)
                assert (w["n"], w["agreed"]) == (len(cids), agreed)
                assert w["agreement"] == round(agreed / len(cids), 4)
                # a handful of reviews a week: every point is too few for the drift test, none alerts
                assert len(cids) < MIN_N and w["few"] is True and w["alert"] is False
                params_of = dict(parse_qsl(urlsplit(w["url"]).query))
                assert params_of["item"] == item and params_of["reviewed"] == "yes"
                assert params_of.get("queue") == team
                # the point opens exactly the reviewed calls it counts
                assert sorted(c["call_id"] for c in queue_calls(lena, w["url"])) == sorted(cids)
            assert it["alert"] is None
        # the chart's data is the table's: each cell its agreement and n, marked as too few
        table = re.search(r'<table id="agreement-weekly">(.*?)</table>', page, re.S).group(1)
        for it in drift["items"]:
            cells = re.search(rf'<tr data-item="{re.escape(it["item"])}">(.*?)</tr>', table, re.S).group(1)
            shown = re.findall(r'<td data-n="(\d+)">(\d+)% \((\d+)\) <span class="muted few">too few</span></td>',
                               cells)
            assert [(int(n), int(pct), int(m)) for n, pct, m in shown] == [
                (w["n"], round(100 * w["agreement"]), w["n"]) for w in it["weeks"]]
        assert 'id="drift-none"' in page and "dropped</strong>" not in table


def test_the_drift_chart_marks_the_alert_and_the_weeks_with_too_few_answers(drift_dash):
    from pipeline.learning.drift import MIN_N, drift_alerts

    lena, _ = login(drift_dash, "lena")
    by_hand = drift_weeks()
    # what the drift test says of these counts, on its own: greeting dropped, thanks did not
    alerting = {a["item"]: a for a in drift_alerts(by_hand)}
    assert list(alerting) == [G]
    for query, shown_from in (({"period": "all"}, 0), ({}, 1)):
        # all time shows every week; the last 30 days with calls (from Thursday 17 September) begin
        # in the second week, counted whole from its Monday, the first week only in the test's baseline
        page = lena.get("/dashboard", params=query).text
        drift = chart_data(page)["drift"]
        assert [i["item"] for i in drift["items"]] == [G, T]
        for it in drift["items"]:
            hand = by_hand[it["item"]][shown_from:]
            assert [(w["period"], w["start"], w["n"], w["agreed"]) for w in it["weeks"]] == [
                (h["period"], h["start"], h["n"], h["agreed"]) for h in hand]
            # rounded to 4 decimals, as every rate of the dashboards
            assert [w["agreement"] for w in it["weeks"]] == [round(h["agreed"] / h["n"], 4) for h in hand]
            assert [w["few"] for w in it["weeks"]] == [h["n"] < MIN_N for h in hand]
            assert any(w["few"] for w in it["weeks"]) and not all(w["few"] for w in it["weeks"])
            alert = alerting.get(it["item"])
            assert [w["alert"] for w in it["weeks"]] == [bool(alert) and h["period"] == alert["week"] for h in hand]
            if alert:
                assert it["alert"]["week"] == it["weeks"][-1]["period"]  # the latest week is the one tested
                assert (it["alert"]["n"], it["alert"]["baseline_n"]) == (alert["n"], alert["baseline_n"])
                assert it["alert"]["agreement"] == pytest.approx(alert["agreement"])
                assert it["alert"]["baseline_agreement"] == pytest.approx(alert["baseline_agreement"])
            else:
                assert it["alert"] is None and not any(w["alert"] for w in it["weeks"])
            for w in it["weeks"]:  # each point opens its week's reviewed calls, from the Monday
                calls = queue_calls(lena, w["url"])
                assert len(calls) == w["n"]
                assert {iso_week(c["started_at"][:10]) for c in calls} == {(w["period"], w["start"])}
        # the table beside it says the same: the dropped week, and the weeks with too few answers
        table = re.search(r'<table id="agreement-weekly">(.*?)</table>', page, re.S).group(1)
        g_row = re.search(rf'<tr data-item="{G}">(.*?)</tr>', table, re.S).group(1)
        t_row = re.search(rf'<tr data-item="{T}">(.*?)</tr>', table, re.S).group(1)
        assert g_row.count('class="fail dropped"') == 1 and g_row.rstrip().endswith("dropped</strong></td>")
        assert "dropped" not in t_row
        few = sum(h["n"] < MIN_N for h in by_hand[G][shown_from:])
        assert g_row.count("too few") == t_row.count("too few") == few
        assert 'id="drift-alerts"' in page and f'<li data-item="{G}">' in page


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
