"""The interaction record on a call's review page, and the reviewers' corrections of it, through
a real uvicorn server on loopback over a real database (a SQLite file, then PostgreSQL): who may
read and correct it (reviewers of the call, leads, admins; not agents, supervisors, or a
reviewer the call is not assigned to), the CSRF check, clear 422s, a history where the latest
correction counts, a re-load of a newer result that keeps the correction and says the
automatic record changed, and the page's panel with every call text escaped."""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pipeline.review.contact import corrections_since, effective_contact
from pipeline.review.db import Assignment, Call, ContactCorrection, Review, make_engine, sessions
from pipeline.review.history import refresh_counted
from pipeline.review.loader import load_results
from pipeline.review.migrate import upgrade
from pipeline.review.users import add_user
from servers import logged_in, review_sites, start_server
from test_db import call_record, write_run
from written_helpers import EMAIL_THREAD, written_record, write_written

PASSWORD = "a-long-password"

CUSTOMER_SAYS = "I want account <b>[ACCOUNT_NUMBER]</b> closed & my money back"
UTTERANCES = [
    {"id": "u0001", "role": "agent", "speaker": "S0", "start": 1.0, "end": 4.0,
     "text": "Thank you for calling, this is Nina"},
    {"id": "u0002", "role": "customer", "speaker": "S1", "start": 9.5, "end": 15.7, "text": CUSTOMER_SAYS},
    {"id": "u0003", "role": "agent", "speaker": "S0", "start": 20.1, "end": 23.0,
     "text": "I have refunded the <script>fee</script> today"},
    {"id": "u0004", "role": "customer", "speaker": "S1", "start": 30.0, "end": 33.0,
     "text": "Also my Fibre 500 router keeps dropping"},
    {"id": "u0005", "role": "agent", "speaker": "S0", "start": 50.0, "end": 53.1,
     "text": "I will call you back within three working days"},
]
CONTACT = {
    "reason": {"text": CUSTOMER_SAYS, "utterance_id": "u0002", "start": 9.5, "end": 15.7, "confidence": 0.82},
    "actions": [{"kind": "refunded", "text": "I have refunded the <script>fee</script> today", "utterance_id": "u0003",
                 "start": 20.1, "end": 23.0}],
    "outcome": {"label": "resolved", "confidence": 0.7,
                "evidence": [{"text": "I have refunded the <script>fee</script> today", "utterance_id": "u0003",
                              "start": 20.1, "end": 23.0, "role": "agent"}]},
    "follow_ups": [{"text": "I will call you back within three working days", "due": "2026-11-04",
                    "due_text": "within three working days", "utterance_id": "u0005", "start": 50.0, "end": 53.1}],
    "mentions": {"products": [{"text": "Fibre 500", "count": 2, "first_start": 31.0}],
                 "accounts": [{"type": "ACCOUNT_NUMBER", "text": "[ACCOUNT_NUMBER]", "count": 1, "first_start": 10.2}]},
    "method": "extractive",
}


def chars(n: int, quote: str) -> list[int]:
    """The character span of ``quote`` in message ``n`` of the e-mail thread."""
    at = " ".join(EMAIL_THREAD[n - 1]["text"].split()).index(quote)
    return [at, at + len(quote)]


E1_CONTACT = {
    "reason": {"text": "my invoice for October shows a double charge", "utterance_id": "m001", "start": 0.0,
               "end": 0.001, "confidence": 0.9, "message": 1,
               "chars": chars(1, "my invoice for October shows a double charge")},
    "actions": [{"kind": "refunded", "text": "I have refunded it today.", "utterance_id": "m003", "start": 9000.0,
                 "end": 9000.002, "message": 3, "chars": chars(3, "I have refunded it today.")}],
    "outcome": {"label": "resolved", "confidence": 0.8,
                "evidence": [{"text": "the refund arrived.", "utterance_id": "m004", "start": 83700.0, "end": 83700.001,
                              "role": "customer", "message": 4, "chars": chars(4, "the refund arrived.")}]},
    "follow_ups": [], "mentions": {"products": [], "accounts": []}, "method": "extractive",
}


def voice_record(call_id: str, contact: dict | None, agent: str = "a1") -> dict:
    rec = call_record(call_id, {"opening.greeting": "yes"})
    rec["metadata"]["agent_id"] = agent
    rec["utterances"] = copy.deepcopy(UTTERANCES)
    rec["pii"] = {"enabled": True, "redacted": True, "counts": {}, "spans": []}
    if contact is not None:
        rec["contact"] = copy.deepcopy(contact)
    return rec


def email_record():  # noqa: ANN201 - an Interaction
    rec = written_record("e1", "email")
    rec.blocks["contact"] = copy.deepcopy(E1_CONTACT)
    return rec


def masked_audio(out: Path, call_id: str, seconds: float = 60.0) -> None:
    """A masked copy of the call's audio as a run writes it (a quiet tone, long enough to seek in)."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(8000 * seconds), dtype=np.float32) / 8000
    sf.write(str(out / "calls" / call_id / "audio_redacted.wav"), 0.05 * np.sin(2 * np.pi * 440 * t), 8000,
             subtype="PCM_16")


def make_contact_site(root: Path, db: str) -> dict:
    """Calls c1 (agent a1, with an interaction record and a masked copy of its audio; assigned
    to rita, reviewed so that agent ada opens it), c2 (assigned to sam) and c3 (no record at
    all) and an e-mail thread e1 (assigned to rita); a lead, an admin, two reviewers, an agent
    and a supervisor; the app on a free port. {"url", "out", "engine", "server", "thread"}."""
    from pipeline.review.app import create_app

    out = root / "out"
    write_run(out, [voice_record("c1", CONTACT), voice_record("c2", CONTACT, agent="a2"),
                    voice_record("c3", None, agent="a2")])
    masked_audio(out, "c1")
    write_written(out, [email_record()])
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 4, "updated": 0, "unchanged": 0, "skipped": 0}
        users = {name: add_user(s, name, PASSWORD, role, agent_id="a1" if role == "agent" else None)
                 for name, role in (("lena", "lead"), ("adam", "admin"), ("rita", "reviewer"), ("sam", "reviewer"),
                                    ("ada", "agent"), ("sue", "supervisor"))}
        s.add_all([Assignment(call_id="c1", reviewer_id=users["rita"].id),
                   Assignment(call_id="e1", reviewer_id=users["rita"].id),
                   Assignment(call_id="c2", reviewer_id=users["sam"].id)])
        s.add(Review(call_id="c1", reviewer_id=users["lena"].id, state="submitted", final=True))
        s.flush()
        refresh_counted(s, ["c1"])
    srv, thread, url = start_server(create_app(db))
    return {"url": url, "out": out, "engine": engine, "server": srv, "thread": thread}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from review_sites(request, tmp_path_factory, "contact", make_contact_site)


def login(site: dict, name: str):  # noqa: ANN201 - (httpx client, csrf token)
    return logged_in(site["url"], name, PASSWORD)


def post(client, csrf: str, call_id: str, body):  # noqa: ANN001, ANN201 - an httpx response
    return client.post(f"/api/calls/{call_id}/contact", json=body, headers={"X-CSRF-Token": csrf})


def test_the_loader_keeps_the_automatic_block_and_the_api_shows_it(site):
    with sessions(site["engine"])() as s:
        rows = {c.call_id: c.contact for c in s.scalars(select(Call))}
    assert rows == {"c1": CONTACT, "c2": CONTACT, "c3": None, "e1": E1_CONTACT}
    lena, _ = login(site, "lena")
    got = lena.get("/api/calls/c1/contact").json()
    assert got["automatic"] == CONTACT and got["effective"] == CONTACT
    assert got["corrected"] is None and got["history"] == [] and got["can_correct"] is True
    none = lena.get("/api/calls/c3/contact").json()
    assert none["automatic"] is None and none["effective"] is None
    assert "No interaction record for this call." in lena.get("/calls/c3").text


def test_a_call_without_a_record_is_corrected_all_the_same(site):
    lena, csrf = login(site, "lena")
    r = post(lena, csrf, "c3", {"outcome": "escalated", "reason": {"text": "Line fault <again>"}})
    got = r.json()
    assert r.status_code == 200 and got["automatic"] is None
    assert got["effective"]["outcome"]["label"] == "escalated" and got["effective"]["actions"] == []
    assert got["effective"]["reason"]["text"] == "Line fault <again>" and got["effective"]["reason"]["start"] is None
    page = lena.get("/calls/c3").text
    assert "“Line fault &lt;again&gt;”" in page and "No interaction record" not in page


def test_who_may_correct(site):
    body = {"outcome": "escalated"}
    ada, ada_csrf = login(site, "ada")  # the agent of c1: reads the record, never corrects it
    assert ada.get("/api/calls/c1/contact").json()["can_correct"] is False
    assert post(ada, ada_csrf, "c1", body).status_code == 403
    assert 'id="contact-form"' not in ada.get("/calls/c1").text
    sue, sue_csrf = login(site, "sue")  # a supervisor opens no recorded call
    assert post(sue, sue_csrf, "c1", body).status_code == 403
    assert sue.get("/api/calls/c1/contact").status_code == 404
    sam, sam_csrf = login(site, "sam")  # a reviewer of other calls: no such call for them
    assert post(sam, sam_csrf, "c1", body).status_code == 404
    assert sam.get("/api/calls/c1/contact").status_code == 404
    rita, rita_csrf = login(site, "rita")
    assert rita.post("/api/calls/c1/contact", json=body).status_code == 403  # no CSRF token
    assert rita.post("/api/calls/c1/contact", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    with sessions(site["engine"])() as s:
        assert s.scalars(select(ContactCorrection).where(ContactCorrection.call_id.in_(["c1", "c2"]))).all() == []
    adam, adam_csrf = login(site, "adam")  # an admin corrects any call, a reviewer those assigned to them
    r = post(adam, adam_csrf, "c2", {"outcome": "unresolved"})
    assert r.status_code == 200 and r.json()["corrected"]["by"] == "adam"
    r = post(sam, sam_csrf, "c2", {"outcome": "transferred"})
    assert r.status_code == 200 and r.json()["effective"]["outcome"]["label"] == "transferred"
    assert [h["by"] for h in r.json()["history"]] == ["adam", "sam"]


@pytest.mark.parametrize("body, says", [
    ({"outcome": "fixed"}, "outcome: one of resolved, follow_up, escalated, transferred, unresolved"),
    ({"outcome": 3}, "outcome: one of"),
    ({"follow_ups": [{"text": "call back", "due": "2026-02-30"}]}, "follow_ups[0].due: 2026-02-30 is not a date"),
    ({"follow_ups": [{"text": "call back", "due": "19/11/2026"}]}, "follow_ups[0].due: a date YYYY-MM-DD"),
    ({"follow_ups": [{"text": "ok"}, {"text": " ", "due": "2026-11-19"}]}, "follow_ups[1].text: a text is needed"),
    ({"follow_ups": {"text": "x"}}, "follow_ups: a list"),
    ({"reason": {"utterance_id": "u0003"}}, "reason.utterance_id: u0003 is not the customer's"),
    ({"reason": {"utterance_id": "u9999"}}, "reason.utterance_id: not an utterance of this call"),
    ({"reason": {}}, "reason.text: a text is needed"),
    ({"reason": "billing"}, "reason: {"),
    ({"reason": {"text": "x" * 2001}}, "reason.text: at most 2000 characters"),
    ({"mood": "angry"}, "unknown field mood"),
    ({}, "nothing to correct"),
])
def test_a_wrong_correction_is_refused_clearly(site, body, says):
    rita, csrf = login(site, "rita")
    r = post(rita, csrf, "c1", body)
    assert r.status_code == 422 and says in r.json()["detail"], r.text
    assert rita.get("/api/calls/c1/contact").json()["history"] == []


def test_corrections_keep_the_automatic_record_and_the_latest_counts(site):
    rita, rita_csrf = login(site, "rita")
    lena, lena_csrf = login(site, "lena")
    assert rita.post("/api/calls/c1/contact", content=b"{nope", headers={"X-CSRF-Token": rita_csrf,
                                                                         "Content-Type": "application/json"}
                     ).status_code == 400
    r = post(rita, rita_csrf, "c1", {"outcome": "follow_up",
                                     "follow_ups": [{"text": "Send the closing letter", "due": "2026-11-19"},
                                                    {"text": "Check the router", "due": None}]})
    assert r.status_code == 200
    r = post(lena, lena_csrf, "c1", {"reason": {"utterance_id": "u0004"}})  # another customer utterance
    got = r.json()
    assert got["automatic"] == CONTACT  # never replaced
    assert got["corrected"]["by"] == "lena" and got["corrected"]["automatic_changed"] is False
    assert got["corrected"]["fields"]["outcome"] == {"label": "follow_up"}  # rita's stays: left out, not withdrawn
    eff = got["effective"]
    assert eff["outcome"] == {"label": "follow_up", "confidence": None, "evidence": [], "corrected": True}
    assert eff["reason"]["text"] == "Also my Fibre 500 router keeps dropping"
    assert eff["reason"]["utterance_id"] == "u0004" and eff["reason"]["start"] == 30.0
    assert [(f["text"], f["due"]) for f in eff["follow_ups"]] == [("Send the closing letter", "2026-11-19"),
                                                                  ("Check the router", None)]
    assert eff["actions"] == CONTACT["actions"] and eff["mentions"] == CONTACT["mentions"]
    assert eff["correction"]["fields"] == ["reason", "outcome", "follow_ups"]
    assert [(h["by"], sorted(h["fields"])) for h in got["history"]] == [
        ("rita", ["follow_ups", "outcome"]), ("lena", ["follow_ups", "outcome", "reason"])]

    # the reviewer's own words, placed at an utterance; then the outcome withdrawn (automatic again)
    r = post(rita, rita_csrf, "c1", {"reason": {"text": "Wants the account closed", "utterance_id": "u0002"},
                                     "outcome": None})
    eff = r.json()["effective"]
    assert eff["reason"]["text"] == "Wants the account closed" and eff["reason"]["start"] == 9.5
    assert eff["outcome"] == CONTACT["outcome"]
    assert len(r.json()["history"]) == 3

    # what the insight reports read
    with sessions(site["engine"])() as s:
        assert effective_contact(s, "c1") == eff
        assert effective_contact(s, "nope") is None
        assert effective_contact(s, "e1") == E1_CONTACT
        since = [c for c in corrections_since(s, "2000-01-01") if c["call_id"] == "c1"]
        assert [c["by"] for c in since] == ["rita", "lena", "rita"] and [c["latest"] for c in since] == [
            False, False, True]
        assert since[0]["changes"]["outcome"] == {"automatic": "resolved", "corrected": "follow_up"}
        assert since[0]["agent_id"] == "a1" and since[0]["channel"] == "voice"
        assert since[2]["changes"]["reason"] == {"automatic": CUSTOMER_SAYS, "corrected": "Wants the account closed"}
        assert corrections_since(s, "2999-01-01T00:00:00Z") == []


def test_a_reload_keeps_the_correction_and_says_the_automatic_record_changed(site):
    lena, csrf = login(site, "lena")
    r = post(lena, csrf, "e1", {"outcome": "unresolved", "follow_ups": [{"text": "Refund the second charge",
                                                                          "due": "2026-11-10"}]})
    assert r.status_code == 200
    before = lena.get("/api/calls/e1/contact").json()
    assert 'id="contact-automatic-changed"' not in lena.get("/calls/e1").text

    rec = email_record()  # a newer run: another outcome
    rec.blocks["contact"]["outcome"] = {"label": "follow_up", "confidence": 0.55, "evidence": []}
    write_written(site["out"], [rec])
    with sessions(site["engine"]).begin() as s:
        assert load_results(s, site["out"]).to_dict()["updated"] == 1
    with sessions(site["engine"])() as s:
        assert s.get(Call, "e1").contact["outcome"]["label"] == "follow_up"
    after = lena.get("/api/calls/e1/contact").json()
    assert after["automatic"]["outcome"]["label"] == "follow_up"
    assert after["corrected"]["fields"] == before["corrected"]["fields"]
    assert after["corrected"]["automatic_changed"] is True and after["history"] == before["history"]
    assert after["effective"]["outcome"]["label"] == "unresolved"
    page = lena.get("/calls/e1").text
    assert 'id="contact-automatic-changed"' in page
    assert '<b class="auto-outcome">follow_up</b>' in page  # the new automatic one, shown beside


def test_a_call_loaded_before_the_column_reads_its_call_json(site):
    with sessions(site["engine"]).begin() as s:
        s.execute(update(Call).where(Call.call_id == "c2").values(contact=None))
    lena, _ = login(site, "lena")
    assert lena.get("/api/calls/c2/contact").json()["automatic"] == CONTACT


def test_the_page_shows_the_panel_with_every_text_escaped(site):
    rita, _ = login(site, "rita")
    page = rita.get("/calls/c1").text
    assert 'id="interaction"' in page and "<h2 id=\"interaction-title\">Interaction</h2>" in page
    panel = page[page.index('id="interaction"'):page.index("</section>", page.index('id="interaction"'))]
    assert "<b>[ACCOUNT_NUMBER]</b>" not in page and "<script>fee</script>" not in page
    assert html.escape(CUSTOMER_SAYS, quote=False) in panel  # the masked quote, escaped
    assert "&lt;script&gt;fee&lt;/script&gt;" in panel
    assert 'data-start="20.1"' in panel and "refunded" in panel  # an action plays from its time
    assert "Fibre 500" in panel and "[ACCOUNT_NUMBER]" in panel
    assert 'id="contact-form"' in panel and '<option value="u0004"' in panel and '<option value="u0003"' not in panel
    opening = '<script id="payload" type="application/json">'
    payload = json.loads(page[page.index(opening) + len(opening):
                              page.index("</script>", page.index('<script id="payload"'))])
    assert payload["contact"]["automatic"] == CONTACT

    e1 = rita.get("/calls/e1").text  # a written conversation: the quote shows its message
    panel = e1[e1.index('id="interaction"'):]
    assert 'data-message="1" data-chars="7,51"' in panel
    assert "#1 “my invoice for October shows a double charge”" in panel
    at = chars(3, "I have refunded it today.")
    assert f'data-message="3" data-chars="{at[0]},{at[1]}">#3 “I have refunded it today.”' in panel  # an action
    assert '<b class="outcome-label outcome-unresolved">unresolved</b>' in panel  # lena's correction counts
