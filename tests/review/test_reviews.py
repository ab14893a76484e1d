"""Saving reviews (pipeline/review/reviews.py): the version check happens in the database, so
two ``callqa serve`` processes sharing one database (SQLite file or PostgreSQL) never both
accept a save based on the same version; a new review is created once; a save after a submit
is told the review is submitted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import ROOT
from review_helpers import engine, db_url, postgres_url  # noqa: F401  (fixtures)
from pipeline.review.db import Assignment, Call, Review, User, make_engine, sessions
from pipeline.review.migrate import upgrade
from pipeline.review.loader import load_results
from pipeline.review.reviews import (
    AlreadySubmitted, IncompleteReview, InvalidEdit, ReviewEdit, StaleVersion, claim_version, current_review,
    save_review,
)
from pipeline.review.users import add_user
from test_app import free_port
from test_db import call_record, write_run

PASSWORD = "Saves-are-never-lost-2026"
ITEMS = {"opening.greeting": "yes", "closing.thanks": "no"}
CONCURRENT = 20
"""Saves sent at once, all based on the same version."""
ROUNDS = 10
"""Versions raced for: the old check in the server process let two saves through in 3 to 6 of 10."""


def _setup(session, tmp_path: Path) -> User:
    """Call c1 with two items, assigned to reviewer rita (returned)."""
    out = tmp_path / "out"
    write_run(out, [call_record("c1", ITEMS)])
    load_results(session, out)
    rita = add_user(session, "rita", PASSWORD, "reviewer")
    session.add(Assignment(call_id="c1", reviewer_id=rita.id))
    return rita


def edit(version: int, answer: str = "yes", comment: str = "", submit: bool = False) -> ReviewEdit:
    return ReviewEdit(version=version, answers={item: (answer, comment) for item in ITEMS}, comment=comment,
                      submit=submit)


@pytest.mark.parametrize("body, says", [
    ({"version": "1"}, "version"), ({"version": True}, "version"), ({"version": -1}, "version"),
    ({"version": 2**31}, "version"), ({"version": 1.5}, "version"),
    ({"answers": ["yes"]}, "answers"), ({"answers": {"nope": {"answer": "yes"}}}, "nope: not an item"),
    ({"answers": {"closing.thanks": {"answer": "maybe"}}}, "closing.thanks: the answer must be one of yes, no, na"),
    ({"answers": {"closing.thanks": {"answer": "no", "comment": 5}}}, "closing.thanks: comment"),
    ({"comment": "nul \x00"}, "comment"), ({"submit": "yes"}, "submit"),
])
def test_a_malformed_save_is_refused_saying_what_is_wrong(body: dict, says: str):
    with pytest.raises(InvalidEdit, match=re.escape(says)):
        ReviewEdit.from_json(body, ITEMS)


def test_a_save_is_read_with_comments_cut_to_their_limits():
    got = ReviewEdit.from_json({"version": 3, "comment": "c" * 30000, "submit": True,
                                "answers": {"closing.thanks": {"answer": "no", "comment": "x" * 9000}}}, ITEMS)
    assert (got.version, got.submit, got.reopen, len(got.comment)) == (3, True, False, 20000)
    assert got.answers == {"closing.thanks": ("no", "x" * 5000)}


# -- in the database -------------------------------------------------------------------------------

def test_the_version_moves_only_from_the_expected_one(engine, tmp_path: Path):  # noqa: F811
    make = sessions(engine)
    with make.begin() as s:
        rita = _setup(s, tmp_path)
    with make() as s:
        review = save_review(s, rita, s.get(Call, "c1"), edit(0))
        assert review.version == 1
        assert not claim_version(s, review.id, 0)  # a stale version moves nothing
        assert claim_version(s, review.id, 1)
        assert not claim_version(s, review.id, 1)  # the same version is claimed once
        s.rollback()
        assert current_review(s, "c1", rita.id).version == 1


def test_a_save_from_a_stale_session_is_refused_and_the_first_stands(engine, tmp_path: Path):  # noqa: F811
    make = sessions(engine)
    with make.begin() as s:
        rita = _setup(s, tmp_path)
    with make() as s:
        save_review(s, rita, s.get(Call, "c1"), edit(0))
    with make() as first, make() as second:
        # both opened the review at version 1
        assert current_review(first, "c1", rita.id).version == current_review(second, "c1", rita.id).version == 1
        save_review(first, rita, first.get(Call, "c1"), edit(1, "no", "first"))
        with pytest.raises(StaleVersion):
            save_review(second, rita, second.get(Call, "c1"), edit(1, "na", "second"))
    with make() as s:
        review = current_review(s, "c1", rita.id)
        assert (review.version, review.comment) == (2, "first")
        assert {a.item_id: (a.answer, a.comment) for a in review.answers} == {i: ("no", "first") for i in ITEMS}


def test_a_new_review_is_created_once(engine, tmp_path: Path):  # noqa: F811
    """A second request creating the same review while the first has not committed yet is
    refused by the unique (call, reviewer) constraint: a conflict, not a server error."""
    make = sessions(engine)
    with make.begin() as s:
        rita = _setup(s, tmp_path)
    outcome: list[BaseException | Review] = []
    with make() as first:
        first.add(Review(call_id="c1", reviewer_id=rita.id, state="draft", version=1, comment="first"))
        first.flush()  # inserted, not committed: the second request waits on it

        def second() -> None:
            with make() as s:
                try:
                    outcome.append(save_review(s, rita, s.get(Call, "c1"), edit(0, comment="second")))
                except BaseException as e:  # noqa: BLE001 - handed to the test thread
                    outcome.append(e)

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        first.commit()
        thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], StaleVersion)
    with make() as s:
        review = current_review(s, "c1", rita.id)
        assert (review.version, review.comment, review.answers) == (1, "first", [])


def test_submitted_reviews_take_no_more_saves_and_submits_need_every_answer(engine, tmp_path: Path):  # noqa: F811
    make = sessions(engine)
    with make.begin() as s:
        rita = _setup(s, tmp_path)
    with make() as s:
        call = s.get(Call, "c1")
        with pytest.raises(IncompleteReview, match="closing.thanks"):
            save_review(s, rita, call, ReviewEdit(version=0, answers={"opening.greeting": ("yes", "")}, submit=True))
        assert current_review(s, "c1", rita.id) is None  # nothing written
        assert save_review(s, rita, call, edit(0, submit=True)).state == "submitted"
        for version in (0, 1):  # an autosave sent before the submit came back, or after it
            with pytest.raises(AlreadySubmitted):
                save_review(s, rita, call, edit(version, "no"))
        reopened = save_review(s, rita, call, ReviewEdit(version=1, reopen=True))
        assert (reopened.state, reopened.version) == ("draft", 2)


# -- two server processes --------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path):
    """Two ``callqa serve`` processes on loopback over one database with call c1 for rita;
    their URLs and a logged-in cookie jar (sessions live in the database: one log-in serves
    both)."""
    from databases import fresh_postgres_db, wait_until

    db = str(tmp_path / "review.db") if request.param == "sqlite" else fresh_postgres_db(
        request.getfixturevalue("postgres_url"))
    e = make_engine(db)
    upgrade(e)
    with sessions(e).begin() as s:
        _setup(s, tmp_path)
    e.dispose()
    ports = [free_port()]
    while len(ports) < 2:
        if (port := free_port()) not in ports:
            ports.append(port)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = [tmp_path / f"serve-{port}.log" for port in ports]
    procs = []
    for port, log in zip(ports, logs):
        with open(log, "wb") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--db", db,
                                           "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=err))
    urls = [f"http://127.0.0.1:{port}" for port in ports]

    def up(url: str) -> bool:
        try:
            return httpx.get(url + "/login", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        try:
            wait_until(lambda: all(up(u) for u in urls), seconds=60)
        except TimeoutError:
            raise RuntimeError("callqa serve did not start: " + " | ".join(log.read_text() for log in logs)) from None
        with httpx.Client(base_url=urls[0]) as c:
            token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
            r = c.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token})
            assert r.status_code == 303
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text).group(1)
            cookies = dict(c.cookies)
        yield {"urls": urls, "cookies": cookies, "headers": {"X-CSRF-Token": csrf}}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def concurrent_saves(servers: dict, version: int) -> list[tuple[int, dict, dict]]:
    """CONCURRENT saves based on ``version``, each with its own answers and comment, sent at once
    through both processes in turn: (status, response body, request body) of each."""
    clients = [httpx.Client(base_url=servers["urls"][n % 2], cookies=servers["cookies"], headers=servers["headers"],
                            timeout=60) for n in range(CONCURRENT)]
    start = threading.Barrier(CONCURRENT)

    def one(n: int) -> tuple[int, dict, dict]:
        comment = f"save {version}.{n}"
        body = {"version": version, "comment": comment,
                "answers": {item: {"answer": ("yes", "no", "na")[n % 3], "comment": comment} for item in ITEMS}}
        start.wait(timeout=30)
        r = clients[n].put("/api/calls/c1/review", json=body)
        return r.status_code, r.json(), body

    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            return list(pool.map(one, range(CONCURRENT)))
    finally:
        for c in clients:
            c.close()


@pytest.mark.slow
def test_two_processes_accept_exactly_one_save_per_version(two_servers):
    refused: list[dict] = []
    started = time.monotonic()
    for version in range(ROUNDS):  # creating the review, then editing it
        results = concurrent_saves(two_servers, version)
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200] + [409] * (CONCURRENT - 1), statuses
        (accepted,) = [(answer, sent) for status, answer, sent in results if status == 200]
        assert accepted[0] == {"version": version + 1, "state": "draft"}
        refused.extend(answer for status, answer, _ in results if status == 409)
        with httpx.Client(base_url=two_servers["urls"][1], cookies=two_servers["cookies"]) as reader:
            review = reader.get("/api/calls/c1").json()["review"]
        assert review["version"] == version + 1 and review["comment"] == accepted[1]["comment"]
        assert {i: {"answer": a["answer"], "comment": a["comment"]} for i, a in review["answers"].items()} == \
            accepted[1]["answers"]
    assert time.monotonic() - started < 60
    assert all(b["reason"] == "stale" and "conflict" in b["error"] for b in refused)


@pytest.mark.slow
def test_a_save_after_the_submit_is_told_it_is_submitted(two_servers, request: pytest.FixtureRequest):
    a, b = (httpx.Client(base_url=u, cookies=two_servers["cookies"], headers=two_servers["headers"], timeout=30)
            for u in two_servers["urls"])
    request.addfinalizer(a.close)
    request.addfinalizer(b.close)
    answers = {item: {"answer": "yes"} for item in ITEMS}
    assert a.put("/api/calls/c1/review", json={"version": 0, "answers": answers}).json()["version"] == 1
    done = a.put("/api/calls/c1/review", json={"version": 1, "answers": answers, "submit": True})
    assert done.json() == {"version": 2, "state": "submitted"}
    # the page's autosave, sent with the version before the submit or after it, through either process
    for client, version in ((b, 1), (a, 2), (b, 2)):
        late = client.put("/api/calls/c1/review", json={"version": version, "answers": {}})
        assert late.status_code == 409 and late.json()["reason"] == "submitted"
        assert "submitted already" in late.json()["error"] and late.json()["current"]["state"] == "submitted"
    assert b.get("/api/calls/c1").json()["review"]["version"] == 2
