"""Agents in the review app (on SQLite and PostgreSQL, through a real server): an agent user is
tied to the agent id their calls carry, logs in like anyone, sees only their own reviewed calls
and of those only the review that counts (or a final one) with its comments, never a review
form, cannot save a review, swap the speakers or decide a dispute, and can dispute an answer of
the counted version and read the lead's decision. And: answers filled by a one-click "accept
all" are marked in the trail a lead reads."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conftest import run_cli
from pipeline.errors import ConfigError
from pipeline.review import reviews
from pipeline.review.db import Assignment, Call, LoginThrottle, Review, User, make_engine, sessions
from pipeline.review.migrate import upgrade
from pipeline.review.users import add_user
from review_helpers import db_url, module_database, postgres_url  # noqa: F401  (fixtures)
from test_access import POLICY, try_login
from test_app import PASSWORD, login, masked_copy, start_server, write_run_json

ITEMS = {"opening.greeting": "yes", "closing.thanks": "no"}


def save(s, name: str, call_id: str, version: int, answers: dict[str, str], comment: str = "",  # noqa: ANN001
         item_comments: dict[str, str] | None = None, **flags: bool) -> Review:
    """``name``'s save of ``call_id`` through the real save path (reviews.save_review)."""
    user = s.scalar(select(User).where(User.username == name))
    edit = reviews.ReviewEdit(version=version, comment=comment, **flags,
                              answers={k: (v, (item_comments or {}).get(k, "")) for k, v in answers.items()})
    return reviews.save_review(s, user, s.get(Call, call_id), edit)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Agent agnes (agent id A12) and bo (B7), leads lena and lou, reviewers rita and sam; calls:

    * g1 (A12): rita submitted ("first look"), reopened and submitted again (version 3, counted);
      lou has a draft of it;
    * g2 (A12): not reviewed;
    * g3 (B7): sam submitted;
    * g4 (A12): a calibration call (rita and sam scored it blind), then lena's final review;
    * g5 (A12): assigned to rita, reviewed in a test (with one-click accept).

    The app, and a second app over the same database that allows one-click accept ("T")."""
    from pipeline.review.app import create_app
    from pipeline.review.calibration import create_calibration
    from pipeline.review.loader import load_results
    from pipeline.review.options import ReviewOptions
    from test_db import call_record, write_run

    root = tmp_path_factory.mktemp("agents")
    out = root / "out"
    records = []
    for cid, agent in (("g1", "A12"), ("g2", "A12"), ("g3", "B7"), ("g4", "A12"), ("g5", "A12")):
        rec = call_record(cid, dict(ITEMS))
        rec["metadata"]["agent_id"] = agent
        rec["pii"] = {"enabled": True, "redacted": True, "counts": {}, "spans": []}
        rec["utterances"] = [{"id": "u0001", "role": "agent", "speaker": "S0", "start": 1.0, "end": 3.0,
                              "text": f"Thank you for calling, this is call {cid}"}]
        records.append(rec)
    write_run(out, records)
    write_run_json(out, [root])
    masked = masked_copy(out, "g1")
    db, engine = module_database(request, root)
    with sessions(engine).begin() as s:
        load_results(s, out)
        ids = {name: add_user(s, name, PASSWORD, role, agent_id=agent).id for name, role, agent in (
            ("lena", "lead", None), ("lou", "lead", None), ("rita", "reviewer", None), ("sam", "reviewer", None),
            ("agnes", "agent", "A12"), ("bo", "agent", "B7"))}
        s.add_all([Assignment(call_id="g1", reviewer_id=ids["rita"]), Assignment(call_id="g2", reviewer_id=ids["rita"]),
                   Assignment(call_id="g3", reviewer_id=ids["sam"]), Assignment(call_id="g5", reviewer_id=ids["rita"])])
        s.flush()
        create_calibration(s, "blind g4", "g4", ["rita", "sam"], created_by=ids["lena"])
    with sessions(engine)() as s:
        save(s, "rita", "g1", 0, {"opening.greeting": "no", "closing.thanks": "no"}, comment="first look", submit=True)
        save(s, "rita", "g1", 1, {}, reopen=True)
        save(s, "rita", "g1", 2, dict(ITEMS), comment="good call, but no thanks at the end",
             item_comments={"closing.thanks": "no thanks heard"}, submit=True)
        save(s, "lou", "g1", 0, {"opening.greeting": "no"}, comment="lou's unfinished notes")
        save(s, "sam", "g3", 0, dict(ITEMS), comment="sam on bo's call", submit=True)
        save(s, "rita", "g4", 0, dict(ITEMS), comment="rita calibrating", submit=True)
        save(s, "sam", "g4", 0, {"opening.greeting": "no", "closing.thanks": "no"}, comment="sam calibrating",
             submit=True)
        save(s, "lena", "g4", 0, {"opening.greeting": "yes", "closing.thanks": "yes"}, comment="lena decides",
             submit=True, final=True)
    servers = [start_server(create_app(db)),
               start_server(create_app(db, options=ReviewOptions(one_click_accept=["T"])))]
    yield {"url": servers[0][2], "one_click_url": servers[1][2], "engine": engine, "masked": masked, "out": out}
    for srv, thread, _ in servers:
        srv.should_exit = True
        thread.join(timeout=5)
    engine.dispose()


def test_an_agent_sees_only_their_own_reviewed_calls(app):
    agnes, _ = login(app, "agnes")
    assert sorted(r["call_id"] for r in agnes.get("/api/calls").json()["calls"]) == ["g1", "g4"]
    for path in ("/api/calls/{}", "/calls/{}", "/calls/{}/audio", "/api/calls/{}/reviews"):
        assert agnes.get(path.format("g2")).status_code == 404  # hers, but not reviewed yet
        assert agnes.get(path.format("g3")).status_code == 404  # bo's
        assert agnes.get(path.format("nope")).status_code == 404
    assert agnes.get("/api/calls/g1").status_code == 200
    audio = agnes.get("/calls/g1/audio")
    assert audio.status_code == 200 and audio.content == app["masked"]  # the masked copy, as for everyone
    for path in ("/dashboard", "/api/dashboard", "/sample", "/calibrations"):
        assert agnes.get(path).status_code == 403
    bo, _ = login(app, "bo")
    assert [r["call_id"] for r in bo.get("/api/calls").json()["calls"]] == ["g3"]
    assert bo.get("/api/calls/g1").status_code == 404


def test_an_agent_reads_the_review_that_counts_with_its_comments_and_gets_no_form(app):
    agnes, _ = login(app, "agnes")
    call = agnes.get("/api/calls/g1").json()
    assert not call["can_review"] and not call["can_swap"] and not call["one_click_accept"]
    assert not call["can_mark_final"] and not call["trail"]["can_resolve"]
    assert [u["text"] for u in call["utterances"]] == ["Thank you for calling, this is call g1"]
    subs = call["trail"]["submissions"]
    # only rita's counted version 3: not her earlier version 1, not lou's draft
    assert [(r["reviewer"], r["version"], r["counted"]) for r in subs] == [("rita", 3, True)]
    assert call["trail"]["shown_id"] == subs[0]["id"] and subs[0]["can_dispute"]
    assert subs[0]["comment"] == "good call, but no thanks at the end"
    assert subs[0]["answers"]["closing.thanks"] == {"answer": "no", "comment": "no thanks heard", "auto_answer": "no"}
    assert agnes.get("/api/calls/g1/reviews").json()["submissions"] == subs
    page = agnes.get("/calls/g1").text
    assert 'id="review"' not in page and 'id="save"' not in page and 'id="submit"' not in page
    assert 'id="swap"' not in page and 'type="radio"' not in page
    scorecard = page.split('id="scorecard"')[1].split("</section>")[0]
    assert "closing.thanks?" in scorecard and "no thanks heard" in scorecard
    assert "good call, but no thanks at the end" in scorecard
    assert 'class="dispute"' in scorecard and f'data-submission="{subs[0]["id"]}"' in scorecard
    assert "first look" not in page and "lou" not in page.split('id="trail"')[1]
    # a lead sees every version of the same call
    lena, _ = login(app, "lena")
    assert [(r["reviewer"], r["version"]) for r in lena.get("/api/calls/g1/reviews").json()["submissions"]] == [
        ("rita", 1), ("rita", 3)]


def test_an_agent_never_sees_a_calibration_scorers_review(app):
    agnes, _ = login(app, "agnes")
    trail = agnes.get("/api/calls/g4/reviews").json()
    assert [(r["reviewer"], r["final"], r["counted"]) for r in trail["submissions"]] == [("lena", True, True)]
    page = agnes.get("/calls/g4").text
    assert "lena decides" in page and "calibrating" not in page
    lena, _ = login(app, "lena")
    assert len(lena.get("/api/calls/g4/reviews").json()["submissions"]) == 3  # all kept, all seen by a lead


def test_an_agent_cannot_save_a_review_swap_speakers_or_resolve(app):
    agnes, csrf = login(app, "agnes")
    h = {"X-CSRF-Token": csrf}
    body = {"version": 0, "submit": True, "answers": {k: {"answer": "yes"} for k in ITEMS}}
    for cid in ("g1", "g3"):  # their own call, and another agent's: refused alike
        r = agnes.put(f"/api/calls/{cid}/review", headers=h, json=body)
        assert r.status_code == 403 and "agents" in r.json()["detail"]
        assert agnes.post(f"/api/calls/{cid}/speakers", headers=h, json={"agent": "swap"}).status_code == 403
        assert agnes.post(f"/api/calls/{cid}/speakers/undo", headers=h).status_code == 403
    assert agnes.put("/api/calls/g1/review", json=body).status_code == 403  # no CSRF token: refused first
    with sessions(app["engine"])() as s:
        agnes_id = s.scalar(select(User.id).where(User.username == "agnes"))
        assert s.scalar(select(Review).where(Review.reviewer_id == agnes_id)) is None
    lena, lcsrf = login(app, "lena")
    sub = lena.get("/api/calls/g4/reviews").json()["submissions"][-1]["id"]
    raised = lena.post("/api/calls/g4/disputes", headers={"X-CSRF-Token": lcsrf},
                       json={"submission_id": sub, "item_id": "opening.greeting", "reason": "second thoughts"})
    assert raised.status_code == 200
    resolve = agnes.post(f"/api/disputes/{raised.json()['id']}/resolve", headers=h,
                         json={"decision": "rejected", "comment": "no"})
    assert resolve.status_code == 403
    assert lena.get("/api/calls/g4/reviews").json()["disputes"][0]["state"] == "open"
    # the lead's own dispute is not the agent's: she sees only hers
    assert agnes.get("/api/calls/g4/reviews").json()["disputes"] == []


def test_an_agent_disputes_an_answer_and_reads_the_leads_decision(app):
    agnes, csrf = login(app, "agnes")
    h = {"X-CSRF-Token": csrf}
    lena, lcsrf = login(app, "lena")
    everything = lena.get("/api/calls/g1/reviews").json()["submissions"]
    first, counted = everything[0]["id"], everything[1]["id"]
    sub_g3 = lena.get("/api/calls/g3/reviews").json()["submissions"][0]["id"]

    def dispute(call_id: str, sub: int, item: str = "closing.thanks", reason: str = "I thanked the customer at 0:55",
                proposed: str | None = "yes"):  # noqa: ANN202
        return agnes.post(f"/api/calls/{call_id}/disputes", headers=h,
                          json={"submission_id": sub, "item_id": item, "reason": reason, "proposed": proposed})

    assert dispute("g1", first).status_code == 404  # rita's earlier version is not shown to her
    assert dispute("g1", sub_g3).status_code == 404  # bo's call's review, through her call
    assert dispute("g3", sub_g3).status_code == 404  # bo's call
    assert dispute("g1", counted, reason="  ").status_code == 422
    assert dispute("g1", counted, item="nope").status_code == 422
    raised = dispute("g1", counted)
    assert raised.status_code == 200 and raised.json()["state"] == "open"
    again = dispute("g1", counted, reason="still wrong")
    assert again.status_code == 422 and "disputed already" in again.json()["detail"]
    # rita disputes another answer of her own counted version: not the agent's dispute
    rita, rcsrf = login(app, "rita")
    assert rita.post("/api/calls/g1/disputes", headers={"X-CSRF-Token": rcsrf}, json={
        "submission_id": counted, "item_id": "opening.greeting", "reason": "rita rethinks"}).status_code == 200

    seen = agnes.get("/api/calls/g1/reviews").json()
    assert [(d["item_id"], d["raised_by"], d["state"], d["proposed"]) for d in seen["disputes"]] == [
        ("closing.thanks", "agnes", "open", "yes")]
    page = agnes.get("/calls/g1").text
    assert "waiting for the lead&#39;s decision" in page and "rita rethinks" not in page
    assert 'class="uphold"' not in page

    # the lead sees it and upholds it
    theirs = lena.get("/api/calls/g1/reviews").json()["disputes"]
    mine = next(d for d in theirs if d["raised_by"] == "agnes")
    assert mine["reason"] == "I thanked the customer at 0:55"
    ok = lena.post(f"/api/disputes/{mine['id']}/resolve", headers={"X-CSRF-Token": lcsrf},
                   json={"decision": "upheld", "answer": "yes", "comment": "heard it at 0:55"})
    assert ok.status_code == 200 and ok.json()["state"] == "upheld"

    # the agent reads the decision; the review shown to her is now the lead's final version
    seen = agnes.get("/api/calls/g1/reviews").json()
    (decided,) = seen["disputes"]
    assert (decided["state"], decided["resolved_by"], decided["new_answer"], decided["resolution"]) == (
        "upheld", "lena", "yes", "heard it at 0:55")
    by_id = {r["id"]: r for r in seen["submissions"]}
    assert seen["shown_id"] == decided["result_submission_id"] and set(by_id) == {counted, seen["shown_id"]}
    shown = by_id[seen["shown_id"]]
    assert shown["reviewer"] == "lena" and shown["counted"] and shown["answers"]["closing.thanks"]["answer"] == "yes"
    assert by_id[counted]["answers"]["closing.thanks"]["answer"] == "no"  # the disputed version, as it was
    assert not by_id[counted]["can_dispute"]
    old = dispute("g1", counted, item="opening.greeting", reason="and this one")
    assert old.status_code == 403 and "review that counts" in old.json()["detail"]
    page = agnes.get("/calls/g1").text
    row = page.split('class="dispute-row"')[1].split("</div>")[0]
    assert 'class="dispute-state">upheld<' in row and "heard it at 0:55" in row and "answer now yes" in row
    scorecard = page.split('id="scorecard"')[1].split("</section>")[0]
    assert 'data-item="closing.thanks"' in scorecard
    assert scorecard.split('data-item="closing.thanks"')[1].split('class="answer">')[1].startswith("yes<")


def test_accept_all_answers_are_marked_for_the_lead(app):
    rita, csrf = login(app, "rita", "one_click_url")
    page = rita.get("/calls/g5").text
    assert 'id="accept-all"' in page
    done = rita.put("/api/calls/g5/review", headers={"X-CSRF-Token": csrf}, json={
        "version": 0, "submit": True, "accept_all": True, "answers": {"opening.greeting": {"answer": "no"}}})
    assert done.status_code == 200 and done.json()["state"] == "submitted"
    lena, _ = login(app, "lena")
    (sub,) = lena.get("/api/calls/g5/reviews").json()["submissions"]
    assert {k: a["how"] for k, a in sub["answers"].items()} == {"opening.greeting": "chosen",
                                                                "closing.thanks": "accept_all"}
    assert sub["answers"]["closing.thanks"]["answer"] == "no" and sub["accept_all"] == 1  # the suggestion, taken
    trail = lena.get("/calls/g5").text.split('id="trail"')[1]
    assert "1 of 2 answers from “accept all”" in trail
    rows = {item: trail.split(f'<tr data-trail-item="{item}">')[1].split("</tr>")[0] for item in ITEMS}
    badge = 'class="badge accept-all"'
    assert badge in rows["closing.thanks"] and badge not in rows["opening.greeting"]
    # a version chosen answer by answer says so
    g3 = lena.get("/api/calls/g3/reviews").json()["submissions"][0]
    assert g3["accept_all"] == 0 and {a["how"] for a in g3["answers"].values()} == {"chosen"}
    assert "every answer chosen one by one" in lena.get("/calls/g3").text
    # the agent sees the review of her call, not how the reviewer worked
    agnes, _ = login(app, "agnes")
    (seen,) = agnes.get("/api/calls/g5/reviews").json()["submissions"]
    assert all("how" not in a for a in seen["answers"].values()) and "accept_all" not in seen
    assert "accept-all" not in agnes.get("/calls/g5").text.split('id="trail"')[1]


# -- agent users: adding them, and their log-in --------------------------------------------------------

def test_an_agent_user_needs_an_agent_id_and_only_agents_take_one(tmp_path):
    engine = make_engine(str(tmp_path / "users.db"))
    upgrade(engine)
    with sessions(engine)() as s:
        for role, agent_id, why in (("agent", None, "needs --agent-id"), ("agent", "  ", "needs --agent-id"),
                                    ("agent", " A12", "no spaces around it"), ("agent", "A\n12", "printable"),
                                    ("agent", "A" * 201, "at most 200"), ("reviewer", "A12", "for role agent only"),
                                    ("lead", "A12", "for role agent only"), ("admin", "A12", "for role agent only")):
            with pytest.raises(ConfigError, match=why):
                add_user(s, "someone", PASSWORD, role, agent_id=agent_id)
        assert s.scalar(select(User)) is None
        assert add_user(s, "agnes", PASSWORD, "agent", agent_id="A12").agent_id == "A12"
        assert add_user(s, "rita", PASSWORD, "reviewer").agent_id is None
        assert add_user(s, "lena", PASSWORD, "lead", agent_id="").agent_id is None  # empty: not given
    engine.dispose()


@pytest.mark.slow
def test_agents_are_added_from_the_command_line_and_log_in_like_anyone(tmp_path):
    from pipeline.review.app import create_app

    db = str(tmp_path / "review.db")

    def add(*args: str):  # noqa: ANN202
        return run_cli("users", "add", *args, "--password-stdin", "--db", db, input=PASSWORD + "\n")

    missing = add("ada", "--role", "agent")
    assert missing.returncode == 2 and "needs --agent-id" in missing.stderr
    wrong = add("ray", "--role", "reviewer", "--agent-id", "A12")
    assert wrong.returncode == 2 and "for role agent only" in wrong.stderr
    made = add("ada", "--role", "agent", "--agent-id", "A12")
    assert made.returncode == 0 and "agent id A12" in made.stdout
    assert "no loaded call has agent id A12" in made.stderr  # the database has no calls yet: said
    assert add("ida", "--role", "agent", "--agent-id", "B7").returncode == 0
    listed = {line.split()[0]: line for line in run_cli("users", "list", "--db", db).stdout.splitlines()}
    assert set(listed) == {"ada", "ida"}
    assert listed["ada"].split()[1] == "agent" and "agent_id=A12" in listed["ada"]

    engine = make_engine(db)
    srv, thread, url = start_server(create_app(db, options=POLICY))
    try:
        for n in range(POLICY.login_max_failures_account):  # the same lockout as every name
            assert try_login(url, "ada", f"wrong-password-{n}").status_code in (401, 429)
        locked = try_login(url, "ada", PASSWORD)
        assert locked.status_code == 429 and "Too many failed log-ins" in locked.text
        with sessions(engine)() as s:
            assert s.get(LoginThrottle, "user:ada").locked_until is not None
        ida, _ = login({"url": url}, "ida")  # another agent is not locked, and lands on the queue
        assert ida.get("/api/calls").json()["calls"] == []  # no call of B7 is loaded, let alone reviewed
    finally:
        srv.should_exit = True
        thread.join(timeout=5)
        engine.dispose()


def test_a_calibration_review_that_counts_is_shown_to_the_agent(app):
    """(Runs last: it reviews g2.) A call reviewed only by calibration scorers: the scorer's
    version that counts for the agent's figures is the one the agent sees and may dispute."""
    from pipeline.review.calibration import create_calibration

    with sessions(app["engine"]).begin() as s:
        create_calibration(s, "blind g2", "g2", ["lou", "sam"],
                           created_by=s.scalar(select(User.id).where(User.username == "lena")))
    with sessions(app["engine"])() as s:
        save(s, "lou", "g2", 0, dict(ITEMS), comment="lou on g2", submit=True)
        save(s, "sam", "g2", 0, {"opening.greeting": "no", "closing.thanks": "no"}, comment="sam on g2",
             submit=True)
    agnes, _ = login(app, "agnes")
    trail = agnes.get("/api/calls/g2/reviews").json()
    assert [(r["reviewer"], r["counted"], r["can_dispute"]) for r in trail["submissions"]] == [("sam", True, True)]
    assert trail["shown_id"] == trail["submissions"][0]["id"]
    assert "sam on g2" in agnes.get("/calls/g2").text


def test_an_agents_queue_is_their_reviewed_calls(app):
    agnes, _ = login(app, "agnes")
    page = agnes.get("/").text
    assert "<h1>My reviewed calls</h1>" in page
    assert 'href="/calls/g1"' in page and 'href="/calls/g3"' not in page  # not bo's call
    assert 'name="agent"' not in page and 'name="reviewed"' not in page  # always their own, always reviewed
    assert 'class="reviewed-score">100%' in page  # rita's counted version of g1 answers every item yes
    calls = agnes.get("/api/calls", params={"per_page": "200"}).json()["calls"]
    assert {r["call_id"] for r in calls} >= {"g1", "g4"} and all(r["agent_id"] == "A12" for r in calls)
