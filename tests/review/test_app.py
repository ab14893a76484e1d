"""The reviewers' web app through a real uvicorn server on loopback and a real SQLite file:
log-in, access rules, CSRF, the audio route (masked audio only by default, never a file outside
the run's input folders), reviews with drafts, conflicts and submission, the speaker swap, and a
pipeline re-load that keeps the human answers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES
from pipeline.review.db import Assignment, make_engine, sessions
from pipeline.review.migrate import upgrade
from pipeline.review.loader import load_results
from pipeline.review.options import ReviewOptions
from pipeline.review.users import add_user
from servers import free_port, logged_in, start_server  # noqa: F401  (free_port: for the other review tests)
from test_db import call_record, write_run

PASSWORD = "a-long-password"


def write_run_json(out: Path, roots: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"input": str(roots[0]), "input_roots": [str(r) for r in roots]}))


def masked_copy(out: Path, call_id: str) -> bytes:
    """A masked copy of the call's audio as a run writes it (a tone, here); its bytes."""
    folder = out / "calls" / call_id
    t = np.arange(16000, dtype=np.float32) / 16000
    sf.write(str(folder / "audio_redacted.wav"), 0.1 * np.sin(2 * np.pi * 1000 * t), 16000, subtype="PCM_16")
    return (folder / "audio_redacted.wav").read_bytes()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A database (SQLite file, then PostgreSQL) with a lead and two reviewers; calls c1 (for
    rita; text redacted, with a masked copy of its audio), c2 (for sam; its recording gone), c5
    (text not redacted, recording in the input folder) and c6 (its call.json names the review
    database, or a file outside the input folder, as its recording); the app on a free port,
    and a second app over the same database with ``review.allow_original_audio``."""
    from databases import fresh_postgres_db
    from pipeline.review.app import create_app

    root = tmp_path_factory.mktemp("app")
    out = root / "out"
    recordings = root / "recordings"
    recordings.mkdir()
    audio = recordings / "c1.wav"
    shutil.copy(SAMPLES / "c001.wav", audio)
    shutil.copy(SAMPLES / "c002.wav", recordings / "c5.wav")
    rec1 = call_record("c1", {"opening.greeting": "yes", "closing.thanks": "no"})
    rec1["source"]["path"] = str(audio)
    rec1["pii"] = {"enabled": True, "redacted": True, "counts": {}, "spans": []}
    rec1["utterances"] = [{"id": "u0001", "role": "agent", "speaker": "S0", "start": 1.0, "end": 3.0,
                           "text": "Thank you for calling <b>Acme</b> & co"}]
    rec2 = call_record("c2", {"opening.greeting": "no", "closing.thanks": "yes"})
    rec2["source"]["path"] = str(recordings / "gone.wav")
    rec5 = call_record("c5", {"opening.greeting": "yes"})
    rec5["source"]["path"] = str(recordings / "c5.wav")
    rec5["pii"] = {"enabled": False, "redacted": False}
    db = str(root / "review.db") if request.param == "sqlite" else fresh_postgres_db(request.getfixturevalue("postgres_url"))
    outside = root / "outside.wav"
    shutil.copy(SAMPLES / "c003.wav", outside)
    rec6 = call_record("c6", {"opening.greeting": "yes"})
    rec6["source"]["path"] = db if request.param == "sqlite" else str(outside)
    for rec in (rec5, rec6):
        rec["metadata"]["agent_id"] = "a2"  # agent a1's figures stay those of c1 and c2
    write_run(out, [rec1, rec2, rec5, rec6])
    write_run_json(out, [recordings])
    masked = masked_copy(out, "c1")
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        load_results(s, out)
        users = {name: add_user(s, name, PASSWORD, role) for name, role in
                 (("lena", "lead"), ("rita", "reviewer"), ("sam", "reviewer"))}
        s.add_all([Assignment(call_id="c1", reviewer_id=users["rita"].id),
                   Assignment(call_id="c2", reviewer_id=users["sam"].id)])
    srv, thread, url = start_server(create_app(db))
    open_srv, open_thread, open_url = start_server(create_app(db, options=ReviewOptions(allow_original_audio=True)))
    yield {"url": url, "open_url": open_url, "out": out, "db": db, "engine": engine, "masked": masked,
           "recordings": recordings}
    for s_, t_ in ((srv, thread), (open_srv, open_thread)):
        s_.should_exit = True
        t_.join(timeout=5)
    engine.dispose()


def login(server: dict, name: str, url: str = "url") -> tuple[httpx.Client, str]:
    return logged_in(server[url], name, PASSWORD)


def test_nothing_is_served_without_logging_in(server):
    c = httpx.Client(base_url=server["url"])
    for path in ("/api/calls", "/api/calls/c1", "/calls/c1/audio"):
        assert c.get(path).status_code == 401
    r = c.get("/", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.put("/api/calls/c1/review", json={"version": 0, "answers": {}}).status_code == 401


def test_login_needs_the_right_password_and_the_form_token(server):
    c = httpx.Client(base_url=server["url"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "rita", "password": "wrong-password", "csrf_token": token})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert c.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": "forged"}).status_code == 403
    fresh = httpx.Client(base_url=server["url"])  # no login-form cookie at all
    assert fresh.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token}).status_code == 403


def test_reviewers_see_only_their_calls_leads_see_all(server):
    rita, _ = login(server, "rita")
    assert [r["call_id"] for r in rita.get("/api/calls").json()["calls"]] == ["c1"]
    assert rita.get("/api/calls/c2").status_code == 404
    assert rita.get("/calls/c2").status_code == 404
    assert rita.get("/calls/c2/audio").status_code == 404
    lena, _ = login(server, "lena")
    assert sorted(r["call_id"] for r in lena.get("/api/calls").json()["calls"]) == ["c1", "c2", "c5", "c6"]
    assert [r["call_id"] for r in lena.get("/api/calls", params={"agent": "a1", "score_min": "0.9"}).json()["calls"]] == []


def test_the_call_page_escapes_what_it_shows(server):
    rita, _ = login(server, "rita")
    page = rita.get("/calls/c1").text
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; co" in page and "<b>Acme</b>" not in page.split('id="payload"')[0]
    assert "\\u003cb>Acme" in page  # inside the script: no tag can close it
    assert 'src="/calls/c1/audio"' in page and 'data-start="1.0"' in page


def test_audio_supports_ranges_and_no_path_comes_from_the_request(server):
    rita, _ = login(server, "rita")
    full = rita.get("/calls/c1/audio")
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    assert full.content == server["masked"]  # the masked copy, not the recording
    part = rita.get("/calls/c1/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    for evil in ("/calls/..%2F..%2Fetc%2Fpasswd/audio", "/calls/%2e%2e/audio", "/calls/c1%2F..%2F..%2Fc2/audio"):
        assert rita.get(evil).status_code == 404
    lena, _ = login(server, "lena", "open_url")
    assert lena.get("/calls/c2/audio").status_code == 404  # the recording has gone: said, not crashed


def test_only_masked_audio_is_played_unless_an_admin_allows_the_original(server):
    lena, _ = login(server, "lena")
    assert lena.get("/calls/c1/audio").content == server["masked"]
    refused = lena.get("/calls/c5/audio")  # text not redacted, no masked copy: not the original
    assert refused.status_code == 403 and "allow_original_audio" in refused.json()["detail"]
    assert lena.get("/calls/c2/audio").status_code == 403
    assert lena.get("/api/calls/c5").json()["audio"] == {"playable": False, "masked": False,
                                                         "reason": refused.json()["detail"]}
    page = lena.get("/calls/c5").text
    assert 'id="no-audio"' in page and 'src="/calls/c5/audio"' not in page
    opened, _ = login(server, "lena", "open_url")
    original = opened.get("/calls/c5/audio")
    assert original.status_code == 200 and original.content == (server["recordings"] / "c5.wav").read_bytes()
    assert opened.get("/calls/c1/audio").content == server["masked"]  # the masked copy still first
    assert 'id="original-audio"' in opened.get("/calls/c5").text


def test_a_call_whose_text_is_not_redacted_is_marked(server):
    lena, _ = login(server, "lena")
    rows = {r["call_id"]: r for r in lena.get("/api/calls").json()["calls"]}
    assert rows["c1"]["pii_redacted"] and not rows["c5"]["pii_redacted"]
    queue = lena.get("/").text

    def row(cid: str) -> str:
        return queue.split(f'href="/calls/{cid}"')[1].split("</tr>")[0]

    assert "not redacted" in row("c5") and "not redacted" not in row("c1")
    assert 'id="not-redacted"' in lena.get("/calls/c5").text
    assert 'id="not-redacted"' not in lena.get("/calls/c1").text


def test_the_audio_route_never_serves_a_file_outside_the_runs_input_folders(server):
    """c6's call.json names the review database (SQLite) or a file outside the input folder
    as its recording: refused even with the original allowed, and the database still works."""
    opened, csrf = login(server, "lena", "open_url")
    r = opened.get("/calls/c6/audio")
    assert r.status_code == 403 and "input folders" in r.json()["detail"]
    assert b"SQLite format" not in r.content
    version = opened.get("/api/calls/c6").json()["review"]["version"]
    saved = opened.put("/api/calls/c6/review", headers={"X-CSRF-Token": csrf},
                       json={"version": version, "answers": {"opening.greeting": {"answer": "yes"}}})
    assert saved.status_code == 200


def test_a_database_inside_the_input_folder_is_never_served(tmp_path: Path):
    """The issue's case: the review database lies among the recordings and a call.json names
    it; the app refuses it (not an audio file, and the database's own files are never sent)."""
    from pipeline.review.app import create_app

    recordings, out = tmp_path / "recordings", tmp_path / "out"
    recordings.mkdir()
    db = recordings / "review.wav"  # even named like a recording
    rec = call_record("c9", {"opening.greeting": "yes"})
    rec["source"]["path"] = str(db)
    write_run(out, [rec])
    write_run_json(out, [recordings])
    engine = make_engine(str(db))
    upgrade(engine)
    with sessions(engine).begin() as s:
        load_results(s, out)
        add_user(s, "lena", PASSWORD, "lead")
    srv, thread, url = start_server(create_app(str(db), options=ReviewOptions(allow_original_audio=True)))
    try:
        lena, csrf = login({"url": url}, "lena")
        assert lena.get("/calls/c9/audio").status_code == 403
        saved = lena.put("/api/calls/c9/review", headers={"X-CSRF-Token": csrf},
                         json={"version": 0, "answers": {"opening.greeting": {"answer": "no"}}})
        assert saved.status_code == 200  # the database is not locked or broken
    finally:
        srv.should_exit = True
        thread.join(timeout=5)
        engine.dispose()


def test_state_changes_need_the_csrf_token(server):
    rita, csrf = login(server, "rita")
    body = {"version": 0, "answers": {"opening.greeting": {"answer": "yes"}}}
    assert rita.put("/api/calls/c1/review", json=body).status_code == 403
    assert rita.put("/api/calls/c1/review", json=body, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert rita.post("/api/calls/c1/speakers", json={"agent": "swap"}).status_code == 403
    assert rita.post("/logout").status_code == 403


def test_drafts_conflicts_and_submission(server):
    rita, csrf = login(server, "rita")
    h = {"X-CSRF-Token": csrf}
    r = rita.put("/api/calls/c1/review", headers=h, json={"version": 0, "answers": {"closing.thanks": {"answer": "yes",
                                                                                      "comment": "thanked at 1:02"}}})
    assert r.status_code == 200 and r.json() == {"version": 1, "state": "draft"}
    # a second tab still on version 0 saves: refused, told why, and the first save is intact
    other, csrf2 = login(server, "rita")
    stale = other.put("/api/calls/c1/review", headers={"X-CSRF-Token": csrf2},
                      json={"version": 0, "answers": {"closing.thanks": {"answer": "no"}}})
    assert stale.status_code == 409 and "conflict" in stale.json()["error"]
    assert stale.json()["current"]["answers"]["closing.thanks"]["answer"] == "yes"
    bad = rita.put("/api/calls/c1/review", headers=h, json={"version": 1, "answers": {"nope": {"answer": "yes"}}})
    assert bad.status_code == 422
    early = rita.put("/api/calls/c1/review", headers=h, json={"version": 1, "answers": {}, "submit": True})
    assert early.status_code == 422 and "opening.greeting" in early.json()["detail"]
    done = rita.put("/api/calls/c1/review", headers=h, json={
        "version": 1, "answers": {"opening.greeting": {"answer": "yes"}}, "comment": "good call", "submit": True})
    assert done.status_code == 200 and done.json() == {"version": 2, "state": "submitted"}
    review = rita.get("/api/calls/c1").json()["review"]
    assert review["state"] == "submitted" and review["comment"] == "good call"
    assert review["answers"]["closing.thanks"] == {"answer": "yes", "comment": "thanked at 1:02", "auto_answer": "no"}
    assert rita.get("/api/calls", params={"reviewed": "yes"}).json()["calls"][0]["call_id"] == "c1"

    # the pipeline runs again and changes its suggestion: the reviewer's answer stands beside it
    rec = call_record("c1", {"opening.greeting": "yes", "closing.thanks": "yes"})
    rec["source"]["path"] = str(Path(server["out"]).parent / "c1.wav")
    write_run(server["out"], [rec])
    with sessions(server["engine"]).begin() as s:
        assert load_results(s, server["out"]).updated == 1
    after = rita.get("/api/calls/c1").json()
    assert {i["id"]: i["answer"] for i in after["items"]}["closing.thanks"] == "yes"
    assert after["review"]["answers"]["closing.thanks"]["auto_answer"] == "no"
    assert after["review"]["state"] == "submitted" and after["review"]["version"] == 2


def test_a_role_swap_writes_the_override_the_pipeline_reads(server):
    from pipeline.speakers.stage import read_overrides

    lena, csrf = login(server, "lena")
    h = {"X-CSRF-Token": csrf}
    assert lena.post("/api/calls/c2/speakers", headers=h, json={"agent": "swap"}).status_code == 200
    assert lena.post("/api/calls/c1/speakers", headers=h, json={"agent": "right"}).status_code == 200
    path = Path(server["out"]) / "speaker_overrides.csv"
    assert read_overrides(path) == {"c2": "swap", "c1": "right"}
    assert lena.post("/api/calls/c2/speakers", headers=h, json={"agent": ""}).status_code == 200
    assert read_overrides(path) == {"c1": "right"}
    assert lena.post("/api/calls/c1/speakers", headers=h, json={"agent": "../../x"}).status_code == 422


def test_logout_ends_the_session(server):
    rita, csrf = login(server, "rita")
    assert rita.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert rita.get("/api/calls").status_code == 401


def test_lead_pages_are_for_leads_only(server):
    rita, csrf = login(server, "rita")
    for path in ("/dashboard", "/api/dashboard", "/dashboard.csv", "/calibrations", "/api/calibrations"):
        assert rita.get(path).status_code == 403
    assert rita.post("/api/sample", json={}, headers={"X-CSRF-Token": csrf}).status_code == 403


def test_dashboard_follows_reviews_and_exports_csv(server):
    lena, csrf = login(server, "lena")
    before = {r["agent_id"]: r for r in lena.get("/api/dashboard").json()["agents"]}["a1"]
    h = {"X-CSRF-Token": csrf}
    version = lena.get("/api/calls/c2").json()["review"]["version"]
    r = lena.put("/api/calls/c2/review", headers=h, json={"version": version, "submit": True, "answers": {
        "opening.greeting": {"answer": "yes"}, "closing.thanks": {"answer": "yes"}}})
    assert r.status_code == 200, r.text
    after = {r["agent_id"]: r for r in lena.get("/api/dashboard").json()["agents"]}["a1"]
    assert after["reviewed_calls"] == before["reviewed_calls"] + 1 and after["calls"] == 2
    page = lena.get("/dashboard")
    assert page.status_code == 200 and 'data-agent="a1"' in page.text
    assert all(f'id="chart-{name}"' in page.text for name in ("trend", "teams", "agreement"))
    assert 'id="agreement"' in page.text  # automatic vs human per item, from the submitted reviews
    csv_ = lena.get("/dashboard.csv")
    assert csv_.headers["content-type"].startswith("text/csv") and csv_.text.splitlines()[0].startswith("agent_id")


def test_sampling_and_calibration_from_the_app(server):
    lena, csrf = login(server, "lena")
    h = {"X-CSRF-Token": csrf}
    extra = [call_record(cid, {"opening.greeting": "yes"}) for cid in ("c3", "c4")]
    extra[0]["scorecard"]["score"]["auto_fail"] = True
    write_run(server["out"], extra)
    with sessions(server["engine"]).begin() as s:
        load_results(s, server["out"])
    plan = lena.post("/api/sample", headers=h, json={"per_agent": 0, "reviewers": ["rita", "sam"], "apply": False})
    assert plan.status_code == 200 and [a["call_id"] for a in plan.json()["assignments"]] == ["c3"]
    assert plan.json()["assignments"][0]["kind"] == "auto_fail"
    made = lena.post("/api/sample", headers=h, json={"per_agent": 0, "reviewers": ["rita", "sam"], "apply": True})
    assert made.json()["applied"] and lena.post("/api/sample", headers=h, json={
        "per_agent": 0, "reviewers": ["rita", "sam"], "apply": True}).json()["assignments"] == []  # once only
    bad = lena.post("/api/sample", headers=h, json={"reviewers": ["nobody"], "apply": True})
    assert bad.status_code == 422 and "nobody" in bad.text
    cal = lena.post("/api/calibrations", headers=h, json={"name": "Nov", "call_id": "c4", "reviewers": ["rita", "sam"]})
    assert cal.status_code == 200
    state = lena.get(f"/api/calibrations/{cal.json()['id']}").json()
    assert state["state"] == "waiting" and sorted(state["waiting_for"]) == ["rita", "sam"]
    for name in ("rita", "sam"):
        c, token = login(server, name)
        assert c.put("/api/calls/c4/review", headers={"X-CSRF-Token": token}, json={
            "version": 0, "submit": True, "answers": {"opening.greeting": {"answer": "yes" if name == "rita" else "no"}}}
        ).status_code == 200
    done = lena.get(f"/api/calibrations/{cal.json()['id']}").json()
    assert done["state"] == "done" and done["items"]["opening.greeting"]["answers"] == {"rita": "yes", "sam": "no"}
    assert done["items"]["opening.greeting"]["percent_agreement"] == 0.0
    page = lena.get("/calibrations")
    assert page.status_code == 200 and "Nov" in page.text and 'id="calibration-report"' in page.text
    report = lena.get("/api/calibrations").json()
    assert report["sessions"] == 1 and report["items"]["opening.greeting"]["percent_agreement"] == 0.0
