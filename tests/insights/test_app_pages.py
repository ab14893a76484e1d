"""The insight and report pages of the review app (pipeline/review/routes_insights.py), through
a real uvicorn server on loopback over a real SQLite database: leads and admins see the same
pages ``callqa insights`` and ``callqa report`` write, built from the results folder the
database holds (never a folder a user names), under a policy that runs no script and allows
only the page's own stylesheet; reviewers and agents are refused."""

from __future__ import annotations

import re

import pytest

from insights_helpers import topic_calls, write_run
from pipeline.review.db import make_engine, sessions
from pipeline.review.loader import load_results
from pipeline.review.migrate import upgrade
from pipeline.review.users import add_user
from servers import logged_in, start_server

PASSWORD = "a-long-password"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.review.app import create_app

    root = tmp_path_factory.mktemp("insights-pages")
    out = write_run(root / "out", topic_calls(["2026-11-02", "2026-11-09", "2026-11-16"],
                                              {"billing": 5, "cancel": 5, "outage": 5}))
    db = str(root / "review.db")
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        assert load_results(s, out).added == 45
        for name, role in (("lena", "lead"), ("rita", "reviewer"), ("ada", "agent")):
            add_user(s, name, PASSWORD, role, agent_id="A1" if role == "agent" else None)
    srv, thread, url = start_server(create_app(db))
    yield {"url": url, "out": out}
    srv.should_exit = True
    thread.join(timeout=5)
    engine.dispose()


def test_a_lead_sees_the_insights_of_the_loaded_results(site):
    client, _ = logged_in(site["url"], "lena", PASSWORD)
    r = client.get("/insights", timeout=120)  # the first page loads the sentence model and embeds every reason
    assert r.status_code == 200, r.text
    policy = r.headers["content-security-policy"]
    assert "script-src 'none'" in policy and re.search(r"style-src 'self' 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "<script" not in r.text.lower()
    links = set(re.findall(r'href="/calls/([^"?]+)"', r.text))
    assert links and all(cid.split("-")[0] in ("billing", "cancel", "outage") for cid in links)
    assert (site["out"] / ".callqa-insights.sqlite").is_file()  # the folder's own store, kept current
    # the same period, asked for by its days
    assert client.get("/insights", params={"start": "2026-11-09", "to": "2026-11-22"}).status_code == 200
    assert client.get("/insights", params={"start": "9 November"}).status_code == 422


def test_the_report_and_its_coaching_pages(site):
    client, _ = logged_in(site["url"], "lena", PASSWORD)
    assert client.get("/reports", follow_redirects=False).headers["location"] == "/reports/"
    r = client.get("/reports/", params={"period": "week", "end": "2026-11-22"})
    assert r.status_code == 200 and "script-src 'none'" in r.headers["content-security-policy"]
    coaching = re.findall(r'href="(coaching/[^"]+)"', r.text)
    assert len(coaching) == 3 and all("period=week" in href for href in coaching)  # agents A1-A3, same period
    page = client.get("/reports/" + coaching[0].replace("&amp;", "&"))
    assert page.status_code == 200 and "A1" in page.text
    assert client.get("/reports/coaching/nobody.html").status_code == 404
    assert client.get("/reports/", params={"period": "year"}).status_code == 422


def test_only_leads_and_admins_and_only_loaded_folders(site):
    for name in ("rita", "ada"):
        client, _ = logged_in(site["url"], name, PASSWORD)
        assert client.get("/insights").status_code == 403 and client.get("/reports/").status_code == 403
    client, _ = logged_in(site["url"], "lena", PASSWORD)
    assert client.get("/insights", params={"out": "/etc"}).status_code == 404
    assert client.get("/insights", params={"out": str(site["out"])}).status_code == 200
