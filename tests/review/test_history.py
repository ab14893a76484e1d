"""Honest reviews (on SQLite and PostgreSQL): blind confirmation (no answer taken from a
suggestion unless a lead allows one-click accept; calibration calls blind), every submitted
version kept, the one rule for which review counts, disputes and their trail, and who swapped
the speaker roles (with undo)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pipeline.errors import ConfigError
from pipeline.review import reviews
from pipeline.review.dashboards import agent_kpis, human_answers
from pipeline.review.db import Assignment, Call, Review, ReviewSubmission, User, sessions
from pipeline.review.history import counted_reviews, raise_dispute, resolve_dispute, submissions
from review_helpers import engine, load, record, users  # noqa: F401  (fixtures)
from test_app import PASSWORD, login, start_server, write_run_json  # noqa: F401

ITEMS = {"opening.greeting": "yes", "closing.thanks": "no"}


def edit(version: int, answers: dict[str, str], **flags: bool) -> reviews.ReviewEdit:
    return reviews.ReviewEdit(version=version, answers={k: (v, "") for k, v in answers.items()}, **flags)


@pytest.fixture
def db(engine, tmp_path):  # noqa: F811
    """Call k1 (two items) and a reviewer, a second reviewer and a lead."""
    with sessions(engine).begin() as s:
        load(s, tmp_path, [record("k1", answers=ITEMS)])
        users(s, "rita", "sam", "lena:lead")
    return engine


def who(s, name: str) -> User:  # noqa: ANN001
    return s.scalar(select(User).where(User.username == name))


def test_submit_needs_every_item_answered_explicitly_and_accept_all_only_where_allowed(db):
    with sessions(db)() as s:
        rita, call = who(s, "rita"), s.get(Call, "k1")
        with pytest.raises(reviews.IncompleteReview, match="closing.thanks"):
            reviews.save_review(s, rita, call, edit(0, {"opening.greeting": "yes"}, submit=True))
        with pytest.raises(reviews.InvalidEdit, match="one-click accept is not allowed"):
            reviews.save_review(s, rita, call, edit(0, {}, submit=True, accept_all=True))
        with pytest.raises(reviews.InvalidEdit, match="only a lead"):
            reviews.save_review(s, rita, call, edit(0, dict(ITEMS), submit=True, final=True))
        assert s.scalar(select(Review)) is None  # nothing written by a refusal
        done = reviews.save_review(s, rita, call, edit(0, {"closing.thanks": "yes"}, submit=True, accept_all=True),
                                   one_click=True)
        assert done.state == "submitted"
        assert {a.item_id: a.answer for a in done.answers} == {"closing.thanks": "yes", "opening.greeting": "yes"}


def test_every_submitted_version_is_kept_and_the_counting_rule(db):
    with sessions(db)() as s:
        rita, sam, lena, call = who(s, "rita"), who(s, "sam"), who(s, "lena"), s.get(Call, "k1")
        reviews.save_review(s, rita, call, edit(0, {"opening.greeting": "no", "closing.thanks": "no"}, submit=True))
        reviews.save_review(s, rita, call, edit(1, {}, reopen=True))
        assert counted_reviews(s, ["k1"]) == {}  # a reopened review does not count
        reviews.save_review(s, rita, call, edit(2, {"opening.greeting": "yes"}, submit=True))
        kept = submissions(s, "k1")
        assert [(r["reviewer"], r["version"], r["answers"]["opening.greeting"]["answer"]) for r in kept] == [
            ("rita", 1, "no"), ("rita", 3, "yes")]  # the first submission was not replaced
        assert [r["counted"] for r in kept] == [False, True]
        # a lead's final review counts, even when a reviewer submits after it
        reviews.save_review(s, lena, call, edit(0, {"opening.greeting": "no", "closing.thanks": "yes"}, submit=True,
                                                final=True))
        reviews.save_review(s, sam, call, edit(0, {"opening.greeting": "yes", "closing.thanks": "yes"}, submit=True))
        assert counted_reviews(s, ["k1"])["k1"].reviewer_id == lena.id
        assert human_answers(s)["k1"] == {"opening.greeting": "no", "closing.thanks": "yes"}
        assert agent_kpis(s)[0]["pass_rates"]["opening.greeting"] == 0.0  # the dashboards follow the rule
        assert len(submissions(s, "k1")) == 4


def test_a_dispute_upheld_changes_the_answer_through_the_leads_final_review(db):
    with sessions(db)() as s:
        rita, sam, lena, call = who(s, "rita"), who(s, "sam"), who(s, "lena"), s.get(Call, "k1")
        reviews.save_review(s, rita, call, edit(0, dict(ITEMS), submit=True))
        sub = s.scalar(select(ReviewSubmission))
        with pytest.raises(ConfigError, match="reason"):
            raise_dispute(s, sam, sub, "closing.thanks", "  ")
        d = raise_dispute(s, sam, sub, "closing.thanks", "the agent thanked at 2:10", "yes")
        with pytest.raises(ConfigError, match="disputed already"):
            raise_dispute(s, rita, sub, "closing.thanks", "me too")
        with pytest.raises(ConfigError, match="not the disputed one"):
            resolve_dispute(s, lena, d, True, "no", "")
        resolve_dispute(s, lena, d, True, "yes", "heard it")
        s.commit()
        assert (d.state, d.new_answer, d.resolved_by) == ("upheld", "yes", lena.id)
        assert human_answers(s)["k1"] == {"opening.greeting": "yes", "closing.thanks": "yes"}
        assert counted_reviews(s)["k1"].final and counted_reviews(s)["k1"].reviewer_id == lena.id
        kept = submissions(s, "k1")
        assert [r["answers"]["closing.thanks"]["answer"] for r in kept] == ["no", "yes"]  # rita's stays as given
        assert kept[1]["id"] == d.result_submission_id and kept[1]["final"]
        with pytest.raises(ConfigError, match="upheld already"):
            resolve_dispute(s, lena, d, False, None, "")
        # a lead with a draft of their own on the call submits or clears it before upholding
        reviews.save_review(s, lena, call, edit(1, {"opening.greeting": "no"}, reopen=True))
        other = raise_dispute(s, sam, sub, "opening.greeting", "no greeting at all")
        s.commit()
        with pytest.raises(ConfigError, match="draft review"):
            resolve_dispute(s, lena, other, True, "no", "")
        assert s.get(type(other), other.id).state == "open"  # nothing decided
        resolve_dispute(s, lena, other, False, None, "the greeting is at 0:02")
        s.commit()
        assert other.state == "rejected" and human_answers(s)["k1"]["opening.greeting"] == "yes"


# -- through the app --------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Calls h1 (rita's), h2 (a calibration for rita and sam) and h3 (sam's); the app, and a
    second app over the same database that allows one-click accept for template "T"."""
    from databases import fresh_postgres_db
    from pipeline.review.app import create_app
    from pipeline.review.calibration import create_calibration
    from pipeline.review.db import make_engine
    from pipeline.review.migrate import upgrade
    from pipeline.review.loader import load_results
    from pipeline.review.options import ReviewOptions
    from pipeline.review.users import add_user
    from test_db import call_record, write_run

    root = tmp_path_factory.mktemp("honest")
    out = root / "out"
    write_run(out, [call_record(cid, dict(ITEMS)) for cid in ("h1", "h2", "h3")])
    write_run_json(out, [root])
    db = str(root / "review.db") if request.param == "sqlite" else fresh_postgres_db(request.getfixturevalue("postgres_url"))
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        load_results(s, out)
        ids = {name: add_user(s, name, PASSWORD, role).id for name, role in
               (("lena", "lead"), ("rita", "reviewer"), ("sam", "reviewer"))}
        s.add_all([Assignment(call_id="h1", reviewer_id=ids["rita"]), Assignment(call_id="h3", reviewer_id=ids["sam"])])
        s.flush()
        create_calibration(s, "blind", "h2", ["rita", "sam"], created_by=ids["lena"])
    servers = [start_server(create_app(db)), start_server(create_app(db, options=ReviewOptions(one_click_accept=["T"])))]
    yield {"url": servers[0][2], "one_click_url": servers[1][2], "out": out, "engine": engine}
    for srv, thread, _ in servers:
        srv.should_exit = True
        thread.join(timeout=5)
    engine.dispose()


def test_suggestions_are_shown_not_preselected_and_calibration_calls_are_blind(app):
    rita, csrf = login(app, "rita")
    page = rita.get("/calls/h1").text
    assert 'class="suggested">yes<' in page and " checked" not in page.split('id="review"')[1].split("</form>")[0]
    assert 'id="accept-all"' not in page
    blind = rita.get("/api/calls/h2").json()
    assert blind["blind"] and all(i["answer"] is None and i["confidence"] is None and i["evidence"] == []
                                  for i in blind["items"])
    assert 'class="suggested"' not in rita.get("/calls/h2").text
    # sam submits the calibration call: rita still sees neither his answers nor the suggestion
    sam, sam_csrf = login(app, "sam")
    assert sam.put("/api/calls/h2/review", headers={"X-CSRF-Token": sam_csrf}, json={
        "version": 0, "submit": True, "answers": {k: {"answer": "no"} for k in ITEMS}}).status_code == 200
    assert rita.get("/api/calls/h2/reviews").json()["submissions"] == []
    assert "sam" not in rita.get("/calls/h2").text.split('id="trail"')[1]
    # one-click accept: only where the lead allows it, and never on a calibration call
    assert rita.put("/api/calls/h1/review", headers={"X-CSRF-Token": csrf}, json={
        "version": 0, "submit": True, "accept_all": True}).status_code == 422
    rita2, csrf2 = login(app, "rita", "one_click_url")
    assert 'id="accept-all"' in rita2.get("/calls/h1").text and 'id="accept-all"' not in rita2.get("/calls/h2").text
    assert rita2.put("/api/calls/h2/review", headers={"X-CSRF-Token": csrf2}, json={
        "version": 0, "submit": True, "accept_all": True}).status_code == 422
    done = rita2.put("/api/calls/h1/review", headers={"X-CSRF-Token": csrf2},
                     json={"version": 0, "submit": True, "accept_all": True})
    assert done.status_code == 200 and done.json()["state"] == "submitted"


def test_leads_see_every_submitted_review_and_resolve_a_dispute(app):
    sam, csrf = login(app, "sam")
    h = {"X-CSRF-Token": csrf}
    assert sam.put("/api/calls/h3/review", headers=h, json={"version": 0, "submit": True, "comment": "fine call",
                                                            "answers": {k: {"answer": v} for k, v in ITEMS.items()}}
                   ).status_code == 200
    assert sam.put("/api/calls/h3/review", headers=h, json={"version": 1, "reopen": True}).status_code == 200
    assert sam.put("/api/calls/h3/review", headers=h, json={"version": 2, "submit": True, "answers": {
        "closing.thanks": {"answer": "na", "comment": "no closing"}}}).status_code == 200
    lena, lcsrf = login(app, "lena")
    trail = lena.get("/api/calls/h3/reviews").json()
    assert [(r["reviewer"], r["version"], r["answers"]["closing.thanks"]["answer"], r["counted"])
            for r in trail["submissions"]] == [("sam", 1, "no", False), ("sam", 3, "na", True)]
    assert trail["submissions"][0]["comment"] == "fine call" and trail["can_resolve"]
    assert "fine call" in lena.get("/calls/h3").text
    latest = trail["submissions"][1]["id"]
    bad = sam.post("/api/calls/h3/disputes", headers=h, json={"submission_id": latest, "item_id": "nope",
                                                              "reason": "x"})
    assert bad.status_code == 422
    assert sam.post("/api/calls/h1/disputes", headers=h, json={"submission_id": latest, "item_id": "closing.thanks",
                                                               "reason": "x"}).status_code == 404  # not his call
    raised = sam.post("/api/calls/h3/disputes", headers=h, json={"submission_id": latest, "item_id": "closing.thanks",
                                                                 "reason": "the agent did thank", "proposed": "yes"})
    assert raised.status_code == 200
    dispute = raised.json()["id"]
    assert sam.post(f"/api/disputes/{dispute}/resolve", headers=h,
                    json={"decision": "upheld", "answer": "yes"}).status_code == 403  # leads only
    for body in (b'{"decision": "maybe"}', b'{"decision": "upheld"}', b'{"decision": "upheld", "answer": "na"}',
                 b'{"decision": ["upheld"]}', b'{"decision": "upheld", "answer": 1}', b"[1]", b"{"):
        refused = lena.post(f"/api/disputes/{dispute}/resolve", content=body,
                            headers={"X-CSRF-Token": lcsrf, "Content-Type": "application/json"})
        assert refused.status_code in (400, 422) and refused.json()["detail"], body
    ok = lena.post(f"/api/disputes/{dispute}/resolve", headers={"X-CSRF-Token": lcsrf},
                   json={"decision": "upheld", "answer": "yes", "comment": "heard at 0:50"})
    assert ok.status_code == 200 and ok.json() == {"id": dispute, "state": "upheld", "new_answer": "yes"}
    trail = lena.get("/api/calls/h3/reviews").json()
    assert [r["reviewer"] for r in trail["submissions"] if r["counted"]] == ["lena"]
    assert trail["disputes"][0]["resolved_by"] == "lena" and trail["disputes"][0]["resolution"] == "heard at 0:50"
    # the reviewer sees the lead's final review on their call, and the decision
    seen = sam.get("/api/calls/h3/reviews").json()
    assert [r["reviewer"] for r in seen["submissions"]] == ["sam", "sam", "lena"] and not seen["can_resolve"]
    assert seen["disputes"][0]["state"] == "upheld"


def test_a_speaker_swap_says_who_and_when_and_can_be_undone(app):
    from pipeline.speakers.stage import read_overrides

    lena, csrf = login(app, "lena")
    h = {"X-CSRF-Token": csrf}
    path = app["out"] / "speaker_overrides.csv"
    assert lena.post("/api/calls/h1/speakers/undo", headers=h).status_code == 409  # nothing to undo
    r = lena.post("/api/calls/h1/speakers", headers=h, json={"agent": "swap"})
    assert r.status_code == 200 and r.json()["swap"]["by"] == "lena" and r.json()["swap"]["pending"]
    page = lena.get("/calls/h1").text
    assert "Roles swapped by lena at" in page and "pending next pipeline run" in page and 'id="swap-undo"' in page
    assert lena.get("/api/calls/h1").json()["speaker_swap"]["agent"] == "swap"
    assert lena.post("/api/calls/h1/speakers", headers=h, json={"agent": "right"}).status_code == 200
    assert read_overrides(path)["h1"] == "right"
    assert lena.post("/api/calls/h1/speakers/undo", headers=h).status_code == 200
    assert read_overrides(path)["h1"] == "swap"
    assert lena.post("/api/calls/h1/speakers/undo", headers=h).status_code == 200  # undo the undo: right again
    assert read_overrides(path)["h1"] == "right"
    assert lena.post("/api/calls/h1/speakers", headers=h, json={"agent": ""}).status_code == 200
    assert "h1" not in read_overrides(path) and lena.get("/api/calls/h1").json()["speaker_swap"] is None
    assert lena.post("/api/calls/h1/speakers/undo", headers=h).status_code == 200
    assert read_overrides(path)["h1"] == "right"
