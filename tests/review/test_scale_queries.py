"""The queue and the dashboards as SQL over a year of calls: the default window (the last 30
days with calls), pagination and sorting, filters computed in the database (reviewed, an item's
effective answer), per-team trends and pass rates, and the counted-review columns they read
(filled on submit and when an older database is upgraded). Each on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi import HTTPException
from sqlalchemy import text

from pipeline.errors import ConfigError
from pipeline.review import periods
from pipeline.review.dashboards import agreement_by_item, team_trends
from pipeline.review.db import Assignment, Calibration, Call, CallItem, User, make_engine, sessions
from pipeline.review.migrate import upgrade
from pipeline.review.routes_dashboard import dashboard_data, sort_agents
from pipeline.review.routes_queue import queue_page
from review_helpers import db_url, engine, load, postgres_url, record, submit, users  # noqa: F401  (fixtures)

G, T = "opening.greeting", "closing.thanks"
FIRST = date(2026, 9, 1)


def day(i: int) -> str:
    return (FIRST + timedelta(days=2 * i)).isoformat()


@pytest.fixture
def db(engine, tmp_path: Path):  # noqa: F811
    """60 calls c000-c059 two days apart from 2026-09-01 (the last on 2026-12-28), agents a0-a2
    and teams billing/sales in turn, score i/60, greeting yes for even i; one call without a
    start time. Users: lena (lead), rita and sam (reviewers); rita is assigned c010 and c050."""
    with sessions(engine).begin() as s:
        load(s, tmp_path, [
            record(f"c{i:03d}", f"a{i % 3}", f"{day(i)}T10:00:00Z", {G: "yes" if i % 2 == 0 else "no", T: "yes"},
                   score=round(i / 60, 4), queue="billing" if i % 2 == 0 else "sales")
            for i in range(60)] + [record("undated", "a0", None, {G: "yes"}, score=0.9)])
        ids = users(s, "lena:lead", "rita", "sam")
        s.add_all([Assignment(call_id="c010", reviewer_id=ids["rita"]),
                   Assignment(call_id="c050", reviewer_id=ids["rita"])])
    return engine


def who(s, name: str) -> User:  # noqa: ANN001
    return s.query(User).filter_by(username=name).one()


def ids(page) -> list[str]:  # noqa: ANN001
    return [r["call_id"] for r in page.rows]


def test_the_default_window_is_the_last_30_days_with_calls(db):
    with sessions(db)() as s:
        window = periods.resolve(s, None)
        assert (window.start, window.end, window.last_day) == ("2026-11-29", "2026-12-29", "2026-12-28")
        assert periods.resolve(s, "all") == periods.Window("all", None, None)
        assert periods.resolve(s, "90d").start == "2026-09-30"
        assert periods.resolve(s, None, "2026-10-01", "2026-11-01").period == "custom"
        assert periods.between("2026-11-01", "2026-11-30").end == "2026-12-01"
        with pytest.raises(ConfigError, match="period"):
            periods.resolve(s, "7y")
        with pytest.raises(ConfigError, match="date_from"):
            periods.between("yesterday", None)
        lead = who(s, "lena")
        page = queue_page(s, lead, {})
        # days 90..118 from 2026-09-01: c045-c059, newest first
        assert page.total == 15 and ids(page) == [f"c{i:03d}" for i in range(59, 44, -1)]
        assert page.window.label == "2026-11-29 to 2026-12-28"
        everything = queue_page(s, lead, {"period": "all", "per_page": "100"})
        assert everything.total == 61 and ids(everything)[-1] == "undated"  # no start time: last either way


def test_pages_and_sorting(db):
    with sessions(db)() as s:
        lead = who(s, "lena")
        second = queue_page(s, lead, {"period": "all", "per_page": "4", "page": "2"})
        assert ids(second) == ["c055", "c054", "c053", "c052"] and second.pages == 16
        assert ids(queue_page(s, lead, {"period": "all", "per_page": "4", "page": "16"})) == ["undated"]
        assert ids(queue_page(s, lead, {"period": "all", "per_page": "4", "page": "17"})) == []
        by_score = queue_page(s, lead, {"sort": "score", "per_page": "3"})
        assert ids(by_score) == ["c045", "c046", "c047"]
        worst_first = queue_page(s, lead, {"period": "all", "sort": "score", "order": "desc", "per_page": "2"})
        assert ids(worst_first) == ["c059", "c058"]
        by_agent = queue_page(s, lead, {"sort": "agent", "per_page": "15"})
        assert [r["agent_id"] for r in by_agent.rows] == sorted(r["agent_id"] for r in by_agent.rows)
        for bad in ({"page": "0"}, {"per_page": "500"}, {"page": "x"}, {"sort": "password"}, {"order": "up"},
                    {"period": "forever"}, {"date_from": "13/11/2026"}, {"item": G, "answer": "maybe"}):
            with pytest.raises(HTTPException) as e:
                queue_page(s, lead, bad)
            assert e.value.status_code == 422


def test_reviewed_and_item_filters_run_in_the_database(db):
    with sessions(db).begin() as s:
        people = {u.username: u.id for u in s.query(User)}
        submit(s, "c050", people["rita"], {G: "no", T: "yes"})  # the suggestion was yes
        cal = Calibration(name="week 49", call_id="c051", created_by=people["lena"])
        s.add(cal)
        s.flush()
        s.add(Assignment(call_id="c051", reviewer_id=people["rita"], kind="calibration", calibration_id=cal.id))
        submit(s, "c051", people["sam"], {G: "no", T: "yes"}, minutes=5)
    with sessions(db)() as s:
        lead, rita = who(s, "lena"), who(s, "rita")
        assert ids(queue_page(s, lead, {"reviewed": "yes"})) == ["c051", "c050"]
        assert queue_page(s, lead, {"reviewed": "no"}).total == 13
        # rita has not scored her calibration call: it is not reviewed for her, whatever sam did
        assert ids(queue_page(s, rita, {"reviewed": "no"})) == ["c051", "c010"]
        assert ids(queue_page(s, rita, {})) == ["c051", "c050", "c010"]  # a reviewer's queue spans all dates
        # the greeting suggested "no" for odd i; c050 (even) by rita's answer
        no_greeting = ids(queue_page(s, lead, {"item": G, "answer": "no", "per_page": "50"}))
        assert no_greeting == ["c059", "c057", "c055", "c053", "c051", "c050", "c049", "c047", "c045"]
        assert queue_page(s, lead, {"item": "no.such.item"}).total == 0
        assert s.get(Call, "c050").counted_review_id is not None
        assert s.get(Call, "c050").reviewed_score is not None
        assert {i.item_id: i.human_answer for i in s.get(Call, "c050").items} == {G: "no", T: "yes"}


def test_team_trends_pass_rates_and_sorting_agents(db):
    with sessions(db).begin() as s:
        submit(s, "c059", s.query(User).filter_by(username="rita").one().id, {G: "no", T: "no"})
    with sessions(db)() as s:
        teams = team_trends(s, "month", "2026-11-01", "2026-12-29")
        assert list(teams) == ["billing", "sales"]
        # November from the 1st: days 61..89 -> i 31..44; billing the even ones (32..44: 7 calls)
        nov = teams["billing"][0]
        assert (nov["period"], nov["calls"]) == ("2026-11", 7)
        assert nov["mean_score"] == round(sum(i / 60 for i in range(32, 45, 2)) / 7, 4)
        assert nov["pass_rate"] == 0.0  # every score below 0.8
        dec = teams["sales"][-1]
        # December: i 45..59; sales the odd ones: 47..59 (c059 reviewed: every answer no, reviewed score 0)
        passing = [i for i in range(47, 60, 2) if i != 59 and i / 60 >= 0.8]
        assert dec["calls"] == 7 and dec["pass_rate"] == round(len(passing) / 7, 4)
        data = dashboard_data(s, {"team": "sales", "sort": "pass_rate", "order": "desc"}, pass_mark=0.9)
        assert data["period"]["start"] == "2026-11-29" and data["pass_mark"] == 0.9
        rates = [r["pass_rate"] for r in data["agents"]]
        assert rates == sorted(rates, reverse=True)
        assert set(data["team_trends"]) == {"billing", "sales"}
        agreement = agreement_by_item(s, team="sales")
        assert agreement[G]["n"] == 1 and agreement[G]["confusion"]["no"]["no"] == 1  # c059: suggested no, answered no
        assert agreement_by_item(s, team="billing") == {}
        rows = [{"agent_id": "b", "calls": 1}, {"agent_id": None, "calls": 5}, {"agent_id": "a", "calls": 1}]
        assert [r["agent_id"] for r in sort_agents(rows, "calls", "desc")] == [None, "a", "b"]
        assert [r["agent_id"] for r in sort_agents(rows, "agent", "asc")] == ["a", "b", None]
        with pytest.raises(ConfigError):
            sort_agents(rows, "password_hash", "asc")


def test_upgrading_an_older_database_fills_the_counted_columns(db_url, tmp_path: Path):  # noqa: F811
    """A database at revision 0006 with a submitted review: the upgrade to the newest schema
    gives its call the counted review, its score and the human answer per item, and the
    item tallies."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from pipeline.review.migrate import MIGRATIONS

    eng = make_engine(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, active, created_at) "
                          "VALUES (1, 'rita', 'x', 'reviewer', true, '2026-11-01 00:00:00')"))
        conn.execute(text("INSERT INTO calls (call_id, out_dir, agent_id, started_at, score, auto_fail, "
                          "low_confidence_items, result_sha256, metadata_json, loaded_at) VALUES ('k1', '/tmp', 'a1', "
                          "'2026-11-02T10:00:00Z', 1.0, false, 0, 'x', '{}', '2026-11-01 00:00:00')"))
        for n, (item, answer) in enumerate(((G, "yes"), (T, "yes"))):
            conn.execute(text("INSERT INTO call_items (call_id, item_id, position, section, question, answer, "
                              "confidence, points, auto_fail, evidence) VALUES ('k1', :item, :n, :sec, 'q', "
                              ":answer, 0.9, 1.0, false, '[]')"),
                         {"item": item, "n": n, "sec": item.split(".")[0], "answer": answer})
        conn.execute(text("INSERT INTO reviews (id, call_id, reviewer_id, state, version, comment, created_at, "
                          "updated_at, submitted_at, final) VALUES (7, 'k1', 1, 'submitted', 2, '', "
                          "'2026-11-01 00:00:00', '2026-11-01 00:00:00', '2026-11-01 00:00:00', false)"))
        conn.execute(text("INSERT INTO review_answers (review_id, item_id, answer, comment, answered_at) "
                          "VALUES (7, :item, 'no', '', '2026-11-01 00:00:00')"), {"item": T})
    upgrade(eng)
    with sessions(eng)() as s:
        call = s.get(Call, "k1")
        assert call.counted_review_id == 7
        assert call.reviewed_score == 0.5  # opening 1/1, closing 0/1: (1 + 0) / 2
        assert {i.item_id: i.human_answer for i in s.query(CallItem).filter_by(call_id="k1")} == {G: None, T: "no"}
        from pipeline.review.db import ItemTally  # and the item tallies computed, the review's answer in them

        assert {(t.day, t.item_id, t.yes, t.decided) for t in s.query(ItemTally)} == {
            ("2026-11-02", G, 1, 1), ("2026-11-02", T, 0, 1)}
    eng.dispose()


def test_queue_and_calibration_pages_through_the_server(db):
    """The pages a lead opens: the window and the count said, pager and sort links that work,
    the API's page fields, 422 for a bad page; the calibration page lists sessions a page at a
    time and no longer lists every call."""
    import re

    from pipeline.review.app import create_app
    from pipeline.review.users import add_user
    from test_app import PASSWORD, login, start_server

    with sessions(db).begin() as s:
        add_user(s, "lina", PASSWORD, "lead")
        lead_id = s.query(User).filter_by(username="lena").one().id
        for n in range(23):
            s.add(Calibration(name=f"session {n}", call_id=f"c{n:03d}", created_by=lead_id))
    srv, thread, url = start_server(create_app(db.url.render_as_string(hide_password=False)))
    try:
        c, _ = login({"url": url}, "lina")
        first = c.get("/")
        assert first.status_code == 200
        assert "Calls 1–15 of 15, 2026-11-29 to 2026-12-28 (the last 30 days with calls)" in first.text
        wide = c.get("/", params={"period": "all", "per_page": "10", "page": "2"})
        assert "Calls 11–20 of 61" in wide.text and "Page 2 of 7" in wide.text
        nxt = re.search(r'<a href="([^"]+)" rel="next">', wide.text).group(1).replace("&amp;", "&")
        third = c.get(nxt)
        assert "Calls 21–30 of 61" in third.text
        sort = re.search(r'<a href="([^"]+)">Score</a>', wide.text).group(1).replace("&amp;", "&")
        assert "sort=score" in sort and "period=all" in sort
        api = c.get("/api/calls", params={"period": "all", "sort": "score", "per_page": "5"}).json()
        assert (api["total"], api["pages"], api["page"]) == (61, 13, 1)
        assert [r["call_id"] for r in api["calls"]] == ["c000", "c001", "c002", "c003", "c004"]
        assert api["period"]["period"] == "all"
        assert c.get("/api/calls", params={"page": "0"}).status_code == 422
        cal = c.get("/calibrations")
        assert cal.status_code == 200 and "session 22" in cal.text and "session 2 ·" not in cal.text
        assert "Page 1 of 2 (23 sessions)" in cal.text and "<select name=\"call_id\"" not in cal.text
        older = c.get("/calibrations", params={"page": "2"})
        assert "session 2 ·" in older.text and "session 22" not in older.text
        assert c.get("/calibrations", params={"page": "3"}).status_code == 422
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def direct_pass_rates(s, start=None, end=None) -> dict:  # noqa: ANN001
    """{agent: {item: yes / decided}} straight from every call's effective answers (what the
    tallies must add up to)."""
    out: dict = {}
    for call in s.query(Call).all():
        if start and (call.started_at is None or call.started_at < start) or end and (
                call.started_at is None or call.started_at >= end):
            continue
        for item in call.items:
            answer = item.human_answer or item.answer
            y, n = out.setdefault(call.agent_id, {}).get(item.item_id, (0, 0))
            out[call.agent_id][item.item_id] = (y + (answer == "yes"), n + (answer in ("yes", "no")))
    return {a: {i: round(y / n, 4) if n else None for i, (y, n) in items.items()} for a, items in out.items()}


def test_item_tallies_follow_reviews_reopens_and_reloads(db, tmp_path: Path):
    from pipeline.review import reviews
    from pipeline.review.dashboards import agent_kpis
    from pipeline.review.db import ItemTally

    def check(s) -> None:  # noqa: ANN001
        for start, end in ((None, None), ("2026-11-29", "2026-12-29"), ("2026-10-01", "2026-10-15")):
            got = {r["agent_id"]: r["pass_rates"] for r in agent_kpis(s, start, end)}
            want = direct_pass_rates(s, start, end)
            assert {a: {i: got[a][i] for i in want[a]} for a in want} == want

    with sessions(db)() as s:
        check(s)
        rita = who(s, "rita")
        edit = reviews.ReviewEdit(version=0, answers={G: ("no", ""), T: ("no", "")}, submit=True)
        reviews.save_review(s, rita, s.get(Call, "c050"), edit)
        check(s)
        assert s.query(ItemTally).filter_by(day=day(50), agent_id="a2", item_id=G).one().yes == 0
        reviews.save_review(s, rita, s.get(Call, "c050"), reviews.ReviewEdit(version=1, reopen=True))
        check(s)
        assert s.query(ItemTally).filter_by(day=day(50), agent_id="a2", item_id=G).one().yes == 1
    # the pipeline runs again: c010's greeting now "no", a new call on a new day
    load_run = tmp_path / "again"
    with sessions(db).begin() as s:
        load(s, load_run, [record("c010", "a1", f"{day(10)}T10:00:00Z", {G: "no", T: "yes"}, score=0.1),
                           record("c999", "a1", "2026-12-29T08:00:00Z", {G: "yes"}, score=0.9)])
    with sessions(db)() as s:
        check(s)
        assert s.query(ItemTally).filter_by(day="2026-12-29", agent_id="a1", item_id=G).one().yes == 1
