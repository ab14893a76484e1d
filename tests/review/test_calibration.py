"""Calibration sessions: Fleiss' kappa on a textbook example and small hand-worked cases, a
session that waits for every reviewer and then compares them, the report across sessions."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.errors import ConfigError
from pipeline.review.calibration import (
    calibration_report, calibration_result, create_calibration, fleiss_kappa, to_do,
)
from pipeline.review.db import Assignment, Review, User, sessions
from pipeline.review.sampling import plan_sample
from review_helpers import db_url, engine, load, postgres_url, record, submit, users  # noqa: F401  (fixtures)

# --- Fleiss' kappa ---------------------------------------------------------------------------

# Fleiss (1971) as reproduced in most textbooks and Wikipedia: 10 subjects, 14 raters, 5 categories.
TEXTBOOK = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_example():
    # By hand: sum of n_ij^2 over the table = 828, so P_bar = (828 - 10*14) / (10*14*13) = 688/1820;
    # column totals 20, 28, 39, 21, 32 of 140, so P_e = (400+784+1521+441+1024) / 140^2 = 4170/19600;
    # kappa = (688/1820 - 4170/19600) / (1 - 4170/19600) = 4211/20059 = 0.20993 (the book's 0.210).
    p_bar, p_e = Fraction(688, 1820), Fraction(4170, 19600)
    assert (p_bar - p_e) / (1 - p_e) == Fraction(4211, 20059)
    subjects = [{f"c{j}": n for j, n in enumerate(row)} for row in TEXTBOOK]
    assert fleiss_kappa(subjects) == pytest.approx(4211 / 20059, abs=1e-12)
    assert round(fleiss_kappa(subjects), 3) == 0.210


def test_fleiss_kappa_small_cases():
    # one subject, 3 raters, 2-1: P = 2/6 = 1/3, P_e = 4/9 + 1/9 = 5/9, kappa = (1/3 - 5/9) / (4/9) = -1/2
    assert fleiss_kappa([{"yes": 2, "no": 1}]) == pytest.approx(-0.5)
    # varying raters: P = 1 and 0, P_bar = 1/2; p = 3/4, 1/4, P_e = 5/8; kappa = (1/2 - 5/8) / (3/8) = -1/3
    assert fleiss_kappa([{"yes": 2}, {"yes": 1, "no": 1}]) == pytest.approx(-1 / 3)
    # perfect agreement over two categories: P_bar = 1, P_e = 1/2, kappa = 1
    assert fleiss_kappa([{"yes": 3}, {"no": 3}]) == 1.0
    # undefined: no subjects, a single rating only, every rating in one category
    assert fleiss_kappa([]) is None and fleiss_kappa([{"yes": 1}]) is None
    assert fleiss_kappa([{"yes": 3}, {"yes": 2, "no": 0}]) is None
    with pytest.raises(ValueError, match="negative"):
        fleiss_kappa([{"yes": -1, "no": 3}])


# --- sessions --------------------------------------------------------------------------------

K1_AUTO = {"opening.greeting": "yes", "opening.verification": "no", "closing.thanks": "yes", "courtesy.empathy": "na"}
K1 = {  # greeting unanimous; verification 1-2; thanks all different; empathy 2-1
    name: dict(zip(K1_AUTO, answers)) for name, answers in [("rita", ["yes", "yes", "yes", "na"]),
                                                            ("sam", ["yes", "no", "no", "na"]),
                                                            ("lee", ["yes", "no", "na", "yes"])]
}
K2_AUTO = {"opening.greeting": "yes", "opening.verification": "no"}
K2 = {"rita": {"opening.greeting": "yes", "opening.verification": "yes"},
      "sam": {"opening.greeting": "yes", "opening.verification": "no"}}


@pytest.fixture
def db(engine, tmp_path: Path):  # noqa: F811
    with sessions(engine).begin() as s:
        load(s, tmp_path, [record("k1", answers=K1_AUTO), record("k2", answers=K2_AUTO), record("k3")])
        users(s, "rita", "sam", "lee:lead", "ada:admin")
    return engine


def ids(s) -> dict[str, int]:
    return {u.username: u.id for u in s.scalars(select(User))}


def test_a_session_waits_for_every_reviewer_then_compares(db):
    with sessions(db).begin() as s:
        who = ids(s)
        cal = create_calibration(s, "November", "k1", ["rita", "sam", "lee"], created_by=who["ada"])
        assignments = list(s.scalars(select(Assignment).where(Assignment.calibration_id == cal.id)))
        assert [(a.reviewer_id, a.kind, a.call_id, a.created_by) for a in assignments] == [
            (who[n], "calibration", "k1", who["ada"]) for n in ("rita", "sam", "lee")]
        assert assignments[0].reason == "calibration session 'November'"
        assert calibration_result(s, cal.id) == {"id": cal.id, "name": "November", "call_id": "k1",
                                                 "reviewers": ["rita", "sam", "lee"], "state": "waiting",
                                                 "submitted": [], "waiting_for": ["rita", "sam", "lee"]}
        submit(s, "k1", who["rita"], K1["rita"])
        submit(s, "k1", who["sam"], K1["sam"], state="draft")  # a draft does not count
        waiting = calibration_result(s, cal.id)
        assert (waiting["state"], waiting["submitted"], waiting["waiting_for"]) == ("waiting", ["rita"], ["sam", "lee"])
        assert "items" not in waiting
        # the calibration call is assigned: a sample never picks it
        assert "k1" not in {a.call_id for a in plan_sample(s, 5, None, None, ["rita"], seed=1, apply=False)}

    with sessions(db).begin() as s:
        who = ids(s)
        s.scalar(select(Review).where(Review.call_id == "k1", Review.reviewer_id == who["sam"])).state = "submitted"
        submit(s, "k1", who["lee"], K1["lee"])
        r = calibration_result(s, cal.id)
    assert r["state"] == "done" and r["reviewers"] == ["rita", "sam", "lee"]
    assert list(r["items"]) == list(K1_AUTO)  # scorecard (position) order
    greeting, verification, thanks, empathy = (r["items"][i] for i in K1_AUTO)
    assert greeting == {"question": "opening.greeting?", "answers": {"rita": "yes", "sam": "yes", "lee": "yes"},
                        "comments": {"rita": "", "sam": "", "lee": ""},
                        "automatic": "yes", "percent_agreement": 1.0, "kappa": None, "majority": "yes", "tie": False,
                        "agrees_with_majority": {"rita": True, "sam": True, "lee": True},
                        "automatic_matches_majority": True}
    # 1 agreeing pair of 3; single-subject kappa -1/(3-1); majority no
    assert verification["percent_agreement"] == pytest.approx(1 / 3) and verification["kappa"] == pytest.approx(-0.5)
    assert verification["majority"] == "no" and verification["automatic_matches_majority"] is True
    assert verification["agrees_with_majority"] == {"rita": False, "sam": True, "lee": True}
    # yes / no / na: no pair agrees, a three-way tie: no majority
    assert (thanks["percent_agreement"], thanks["majority"], thanks["automatic_matches_majority"]) == (0.0, None, None)
    assert thanks["agrees_with_majority"] == {"rita": None, "sam": None, "lee": None}
    assert thanks["tie"] and not verification["tie"] and not empathy["tie"] and r["ties"] == ["closing.thanks"]
    assert empathy["majority"] == "na" and empathy["agrees_with_majority"] == {"rita": True, "sam": True, "lee": False}
    # pooled pairs: (3 + 1 + 0 + 1) / 12
    assert r["percent_agreement"] == pytest.approx(5 / 12)
    # items as subjects: P_i = 1, 1/3, 0, 1/3 -> P_bar = 5/12; yes 6, no 3, na 3 of 12 -> P_e = 3/8;
    # kappa = (5/12 - 3/8) / (5/8) = 1/15
    assert r["kappa"] == pytest.approx(1 / 15)
    assert r["mean_kappa"] == pytest.approx(-0.5)  # the three defined per-item kappas are all -1/2
    # against the majority, over greeting, verification and empathy; the tie on thanks left out and counted
    assert r["reviewer_agreement"] == {"rita": {"items": 3, "agree": 2, "rate": pytest.approx(2 / 3), "ties": 1},
                                       "sam": {"items": 3, "agree": 3, "rate": 1.0, "ties": 1},
                                       "lee": {"items": 3, "agree": 2, "rate": pytest.approx(2 / 3), "ties": 1}}
    assert r["automatic_agreement"] == {"items": 3, "agree": 3, "rate": 1.0, "ties": 1}


def test_report_across_finished_sessions(db):
    with sessions(db).begin() as s:
        who = ids(s)
        k1 = create_calibration(s, "one", "k1", ["rita", "sam", "lee"])
        k2 = create_calibration(s, "two", "k2", ["rita", "sam"])
        create_calibration(s, "three", "k3", ["rita", "lee"])  # nobody submits: waiting
        for name, answers in K1.items():
            submit(s, "k1", who[name], answers)
        for name, answers in K2.items():
            submit(s, "k2", who[name], answers)
        assert calibration_result(s, k1.id)["state"] == calibration_result(s, k2.id)["state"] == "done"
        report = calibration_report(s)
    assert (report["sessions"], report["waiting"]) == (2, 1)
    assert list(report["items"]) == ["opening.greeting", "opening.verification", "closing.thanks", "courtesy.empathy"]
    items = report["items"]
    # greeting: {yes 3}, {yes 2}: 4 of 4 pairs agree, every rating yes (kappa undefined)
    assert items["opening.greeting"] == {"sessions": 2, "percent_agreement": 1.0, "kappa": None,
                                         "automatic_agreement": 1.0, "ties": 0}
    # verification: {yes 1, no 2}, {yes 1, no 1}: (1 + 0) of (3 + 1) pairs; P_bar = (1/3 + 0) / 2 = 1/6;
    # yes 2, no 3 of 5 -> P_e = 13/25; kappa = (1/6 - 13/25) / (12/25) = -53/72. k2 has no majority.
    v = items["opening.verification"]
    assert (v["sessions"], v["percent_agreement"], v["automatic_agreement"], v["ties"]) == (2, 0.25, 1.0, 1)
    assert v["kappa"] == pytest.approx(-53 / 72)
    assert items["closing.thanks"] == {"sessions": 1, "percent_agreement": 0.0, "kappa": pytest.approx(-0.5),
                                       "automatic_agreement": None, "ties": 1}
    assert items["courtesy.empathy"]["percent_agreement"] == pytest.approx(1 / 3)
    # rita: 2 of 3 in k1, 1 of 1 in k2 (verification is a tie there); sam 3/3 + 1/1; lee 2/3;
    # the ties (thanks in k1, verification in k2) are counted apart, in no rate
    assert report["reviewers"] == {"rita": {"sessions": 2, "items": 4, "agree": 3, "rate": 0.75, "ties": 2},
                                   "sam": {"sessions": 2, "items": 4, "agree": 4, "rate": 1.0, "ties": 2},
                                   "lee": {"sessions": 1, "items": 3, "agree": 2, "rate": pytest.approx(2 / 3),
                                           "ties": 1}}
    assert report["ties"] == 2
    # all (session, item) subjects: pairs (3+1+0+1) + (1+0) = 6 of 14;
    # P_bar = (1 + 1/3 + 0 + 1/3 + 1 + 0) / 6 = 4/9; yes 9, no 4, na 3 of 16 -> P_e = 106/256;
    # kappa = (4/9 - 53/128) / (75/128) = 7/135
    assert report["percent_agreement"] == pytest.approx(3 / 7)
    assert report["kappa"] == pytest.approx(7 / 135)


def test_report_with_no_sessions(db):
    with sessions(db)() as s:
        assert calibration_report(s) == {"sessions": 0, "waiting": 0, "items": {}, "reviewers": {}, "ties": 0,
                                         "percent_agreement": None, "kappa": None}


@pytest.mark.parametrize("name, call, reviewers, message", [
    ("x", "k1", ["rita"], "at least 2 reviewers, 1 named"),
    ("x", "k1", ["rita", "rita"], "at least 2 reviewers, 1 named"),
    ("x", "k1", [], "name at least one reviewer"),
    ("x", "nope", ["rita", "sam"], "no such call: nope"),
    ("x", "k1", ["rita", "zed"], "no such user: zed"),
    ("x", "k1", ["rita", "ada"], "ada is 'admin'"),
    ("  ", "k1", ["rita", "sam"], "give the session a name"),
])
def test_create_calibration_errors(db, name, call, reviewers, message):
    with sessions(db).begin() as s, pytest.raises(ConfigError, match=message):
        create_calibration(s, name, call, reviewers)


def test_a_reviewer_who_has_the_call_already_cannot_calibrate_on_it(db):
    with sessions(db).begin() as s:
        who = ids(s)
        create_calibration(s, "first", "k1", ["rita", "sam"])
        with pytest.raises(ConfigError, match="sam already assigned or reviewed call k1"):
            create_calibration(s, "again", "k1", ["lee", "sam"])
        submit(s, "k2", who["lee"], K2["rita"])
        with pytest.raises(ConfigError, match="lee already assigned or reviewed call k2"):
            create_calibration(s, "reviewed", "k2", ["lee", "rita"])
        with pytest.raises(ConfigError, match="no such calibration session"):
            calibration_result(s, 999)


# --- ties, comments, the scorers' to-do lists ------------------------------------------------

def test_an_even_split_is_a_tie_not_agreement_with_a_majority(db):
    with sessions(db).begin() as s:
        who = {**ids(s), **users(s, "kim")}
        cal = create_calibration(s, "split", "k2", ["rita", "sam", "lee", "kim"])
        for name, greeting, verification in [("rita", "yes", "no"), ("sam", "yes", "no"),
                                             ("lee", "no", "no"), ("kim", "no", "yes")]:
            submit(s, "k2", who[name], {"opening.greeting": greeting, "opening.verification": verification})
        r = calibration_result(s, cal.id)
        report = calibration_report(s)
    greeting, verification = r["items"]["opening.greeting"], r["items"]["opening.verification"]
    # 2-2: no majority, nobody agrees or disagrees with one, the suggestion neither
    assert (greeting["tie"], greeting["majority"], greeting["automatic_matches_majority"]) == (True, None, None)
    assert greeting["agrees_with_majority"] == {"rita": None, "sam": None, "lee": None, "kim": None}
    assert (verification["tie"], verification["majority"]) == (False, "no") and r["ties"] == ["opening.greeting"]
    # each reviewer's rate is over verification alone; the tie is counted apart
    assert r["reviewer_agreement"] == {"rita": {"items": 1, "agree": 1, "rate": 1.0, "ties": 1},
                                       "sam": {"items": 1, "agree": 1, "rate": 1.0, "ties": 1},
                                       "lee": {"items": 1, "agree": 1, "rate": 1.0, "ties": 1},
                                       "kim": {"items": 1, "agree": 0, "rate": 0.0, "ties": 1}}
    assert r["automatic_agreement"] == {"items": 1, "agree": 1, "rate": 1.0, "ties": 1}
    tied = report["items"]["opening.greeting"]
    assert (tied["ties"], tied["automatic_agreement"]) == (1, None)
    assert report["reviewers"]["rita"] == {"sessions": 1, "items": 1, "agree": 1, "rate": 1.0, "ties": 1}
    assert report["ties"] == 1


def test_comments_are_shown_beside_the_answers_once_everyone_has_submitted(db):
    with sessions(db).begin() as s:
        who = ids(s)
        cal = create_calibration(s, "talk", "k2", ["rita", "sam"])
        rita = submit(s, "k2", who["rita"], K2["rita"])
        rita.comment = "the agent verified by postcode"
        rita.answers[1].comment = "postcode counts as verification"
        s.flush()
        waiting = calibration_result(s, cal.id)
        assert waiting["state"] == "waiting" and "comments" not in waiting and "items" not in waiting  # blind
        submit(s, "k2", who["sam"], K2["sam"])
        r = calibration_result(s, cal.id)
    assert r["items"]["opening.verification"]["answers"] == {"rita": "yes", "sam": "no"}
    assert r["items"]["opening.verification"]["comments"] == {"rita": "postcode counts as verification", "sam": ""}
    assert r["items"]["opening.greeting"]["comments"] == {"rita": "", "sam": ""}
    assert r["comments"] == {"rita": "the agent verified by postcode", "sam": ""}


def test_a_calibration_stays_in_each_scorers_to_do_until_they_submit(db):
    with sessions(db).begin() as s:
        who = ids(s)
        cal = create_calibration(s, "November", "k1", ["rita", "sam", "lee"])
        s.add(Assignment(call_id="k3", reviewer_id=who["rita"], kind="random", reason="2 random calls per agent"))
        s.flush()
        submit(s, "k1", who["sam"], K1["sam"])
        submit(s, "k1", who["lee"], K1["lee"], state="draft")
        rita, sam, lee = (to_do(s, who[n]) for n in ("rita", "sam", "lee"))
    assert [(t["call_id"], t["kind"], t["calibration"], t["my_review"]) for t in rita] == [
        ("k1", "calibration", "November", None), ("k3", "random", None, None)]
    assert sam == []  # submitted: done for sam, whatever the others do
    assert [(t["call_id"], t["calibration"], t["my_review"]) for t in lee] == [("k1", "November", "draft")]
    with sessions(db).begin() as s:
        submit(s, "k1", who["rita"], K1["rita"])
        assert [t["call_id"] for t in to_do(s, who["rita"])] == ["k3"]
        assert calibration_result(s, cal.id)["waiting_for"] == ["lee"]


def test_the_queue_keeps_a_calibration_call_for_a_scorer_the_others_submitted_before(db, db_url):  # noqa: F811
    import re

    import httpx

    from pipeline.review.app import create_app
    from test_app import start_server

    with sessions(db).begin() as s:
        who = ids(s)
        create_calibration(s, "November", "k1", ["rita", "sam", "lee"])
        submit(s, "k1", who["sam"], K1["sam"])
        submit(s, "k1", who["lee"], K1["lee"], state="draft")
    srv, thread, url = start_server(create_app(db_url))
    try:
        def login(name: str) -> httpx.Client:
            c = httpx.Client(base_url=url)
            token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"username": name, "password": "long-enough-pass",
                                          "csrf_token": token}).status_code == 303
            return c

        rita, sam, lee = login("rita"), login("sam"), login("lee")
        for params in ({}, {"reviewed": "no"}):  # the others' reviews do not make it "reviewed" for rita
            assert [r["call_id"] for r in rita.get("/api/calls", params=params).json()["calls"]] == ["k1"]
        assert rita.get("/api/calls", params={"reviewed": "yes"}).json()["calls"] == []
        todo = rita.get("/api/calls", params={"agent": "nobody"}).json()
        assert todo["calls"] == [] and [t["call_id"] for t in todo["to_do"]] == ["k1"]  # no filter hides it
        page = rita.get("/", params={"reviewed": "yes"}).text
        assert 'id="to-do"' in page and 'data-call="k1"' in page and "calibration: November" in page
        # a lead who is a scorer too: the to-do list is theirs, though they see every call
        assert [t["call_id"] for t in lee.get("/api/calls").json()["to_do"]] == ["k1"]
        assert 'data-call="k1"' in lee.get("/", params={"reviewed": "yes"}).text
        assert sam.get("/api/calls").json()["to_do"] == []
        assert [r["call_id"] for r in sam.get("/api/calls", params={"reviewed": "yes"}).json()["calls"]] == ["k1"]

        # once all have submitted, the page shows the answers with the comments beside them, and the tie
        with sessions(db).begin() as s:
            submit(s, "k1", who["rita"], K1["rita"]).answers[2].comment = "thanked at the very end"
            s.scalar(select(Review).where(Review.call_id == "k1", Review.reviewer_id == who["lee"])).state = "submitted"
        page = login("ada").get("/calibrations").text
        thanks = page.split('<tr data-item="closing.thanks" class="tie">')[1].split("</tr>")[0]
        assert '<div class="cal-comment">thanked at the very end</div>' in thanks
        assert "<b>tie</b> (no majority)" in thanks
        assert "(1 tie(s) left out)" in page and 'class="ties">1<' in page
    finally:
        srv.should_exit = True
        thread.join(timeout=5)
