"""The contact block (pipeline/analysis/contact.py): the interaction documented on the sample
written conversations and calls, every text a masked quote with its place, the due-date
parser, and the customer identity kept only as a keyed hash (pipeline/run/runner.py)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SAMPLES, label, manifest_rows, run_cli
from pipeline.analysis.contact import ACTION_KINDS, OUTCOMES, add_working_days, parse_due
from pipeline.analysis.detectors.context import CallFacts
from pipeline.analysis.stage import AnalysisStage, pii_texts
from pipeline.config import load_config
from pipeline.interaction.utterances import Utterance, Word

WRITTEN = ROOT / "interactions_sample"
KEYS = ["reason", "actions", "outcome", "follow_ups", "mentions", "method"]

MONDAY = datetime(2026, 11, 16, 9, 12)
FRIDAY = datetime(2026, 11, 20, 16, 0)


# -- the due-date parser ---------------------------------------------------------------------


@pytest.mark.parametrize("text, ref, due", [
    ("I'll call you back tomorrow morning.", MONDAY, "2026-11-17"),
    ("We'll ring you the day after tomorrow.", MONDAY, "2026-11-18"),
    ("I'll email it to you today.", MONDAY, "2026-11-16"),
    ("You'll have it by the end of the day.", MONDAY, "2026-11-16"),
    ("Someone will call this afternoon.", MONDAY, "2026-11-16"),
    ("I'll get back to you by Friday.", MONDAY, "2026-11-20"),
    ("The engineer will come on Monday.", MONDAY, "2026-11-23"),  # the next Monday, not today
    ("The engineer will come on Monday.", FRIDAY, "2026-11-23"),
    ("We'll call you next Tuesday.", MONDAY, "2026-11-24"),  # the Tuesday of next week
    ("We'll call you on Thursday.", FRIDAY, "2026-11-26"),
    ("You'll hear from us by the end of the week.", MONDAY, "2026-11-20"),
    ("You'll hear from us next week.", MONDAY, "2026-11-27"),
    ("It will be with you within three working days.", MONDAY, "2026-11-19"),
    ("It will be with you within three working days.", FRIDAY, "2026-11-25"),  # the weekend skipped
    ("It will be with you within 3 business days.", FRIDAY, "2026-11-25"),
    ("The refund takes 5-7 working days.", MONDAY, "2026-11-25"),  # a range: its upper end
    ("within three to five working days", MONDAY, "2026-11-23"),
    ("You'll receive it within 10 days.", MONDAY, "2026-11-26"),
    ("in twenty-one days", MONDAY, "2026-12-07"),
    ("in a couple of days", MONDAY, "2026-11-18"),
    ("The revised bill will be emailed within 24 hours.", MONDAY, "2026-11-17"),
    ("within 48 hours", FRIDAY, "2026-11-22"),
    ("within a week", MONDAY, "2026-11-23"),
    ("in 2 weeks", MONDAY, "2026-11-30"),
    ("in ten days' time", MONDAY, "2026-11-26"),
    ("by the end of the month", MONDAY, "2026-11-30"),
    ("next month", MONDAY, "2026-12-31"),
    ("The card will arrive by 19 November.", MONDAY, "2026-11-19"),
    ("We'll post it on November 3rd.", MONDAY, "2027-11-03"),  # passed this year: next year's
    ("on the 21st of December 2026", MONDAY, "2026-12-21"),
    ("on 2026-12-01", MONDAY, "2026-12-01"),
    ("by 19/11", MONDAY, "2026-11-19"),
    ("by the 20th", MONDAY, "2026-11-20"),
    ("by the 2nd", MONDAY, "2026-12-02"),  # passed this month: next month's
    ("I'll call you tomorrow or on Friday.", MONDAY, "2026-11-17"),  # the first expression
])
def test_due_dates_resolve_against_when_they_were_said(text: str, ref: datetime, due: str):
    got, due_text = parse_due(text, ref)
    assert got == due, (text, due_text)
    assert due_text and due_text.lower() in text.lower()


def test_due_date_without_an_expression_or_a_reference():
    assert parse_due("I'll sort that out for you.", MONDAY) == (None, None)
    assert parse_due("We'll call you tomorrow.", None) == (None, "tomorrow")  # the words, no date
    assert add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)


# -- written conversations: the block on every sample -----------------------------------------


def analyse(root: Path, overrides: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every written conversation of ``root`` through the analysis stage, in this process:
    its contact block, the written (redacted) and unredacted utterances, spans and messages."""
    from pipeline.ingest.discover import discover
    from pipeline.run.written import ChatSource, EmailSource

    config = load_config(None, overrides or [])
    stage = AnalysisStage(config, 1)
    sources = {"email": EmailSource(config, root), "chat": ChatSource(config, root)}
    out = {}
    for call in discover(root):
        if call.problem is not None or call.kind not in sources:
            continue
        with sources[call.kind].open(call, "", root) as conv:
            facts = CallFacts(conv.duration_s, False, metadata=call.metadata, company=call.metadata.get("company"),
                              source=conv.source.kind, messages=conv.messages)
            blocks, written, spans = stage.run(conv.utterances, facts)
            out[call.call_id] = {"blocks": blocks, "written": written, "utterances": conv.utterances,
                                 "spans": spans, "messages": conv.messages}
    return out


@pytest.fixture(scope="module")
def written_samples() -> dict[str, dict[str, Any]]:
    return analyse(WRITTEN)


def texts_of(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """Every quoted piece of a contact block."""
    pieces = [contact["reason"]] if contact["reason"] else []
    pieces += contact["actions"] + contact["follow_ups"] + contact["outcome"]["evidence"]
    return pieces


def test_every_written_conversation_is_documented_with_quotes_in_place(written_samples):
    assert len(written_samples) == 30
    for cid, r in written_samples.items():
        contact = r["blocks"]["contact"]
        assert list(contact) == KEYS and contact["method"] == "extractive"
        assert contact["outcome"]["label"] in OUTCOMES and 0.0 <= contact["outcome"]["confidence"] <= 1.0
        assert contact["reason"] is not None and 0.0 <= contact["reason"]["confidence"] <= 1.0, cid
        assert all(a["kind"] in ACTION_KINDS for a in contact["actions"])
        by_id = {u.id: u for u in r["written"]}
        for piece in texts_of(contact):
            u = by_id[piece["utterance_id"]]
            # a quote of the written (masked) message, its number and character span pointing at it
            assert piece["text"] and piece["text"] in u.text, (cid, piece)
            assert piece["message"] == int(u.id[1:])
            a, b = piece["chars"]
            assert u.text[a:b] == piece["text"]
            assert u.start - 1e-6 <= piece["start"] <= piece["end"] <= u.end + 1e-6
        for e in contact["outcome"]["evidence"]:
            assert e["role"] in ("agent", "customer")
        reason_utterance = by_id[contact["reason"]["utterance_id"]]
        assert reason_utterance.role == "customer"
        for f in contact["follow_ups"]:
            assert by_id[f["utterance_id"]].role == "agent"
            assert f["due"] is None or date.fromisoformat(f["due"])


def test_written_reasons_mostly_agree_with_the_labels(written_samples):
    """A guard against a collapse (the measured figure is reported by ``callqa eval``)."""
    from pipeline.evaluation.contact_eval import token_f1

    f1 = [token_f1(json.loads((WRITTEN / "labels" / f"{cid}.json").read_text())["contact_reason"],
                   r["blocks"]["contact"]["reason"]["text"]) for cid, r in written_samples.items()]
    assert sum(v >= 0.5 for v in f1) / len(f1) >= 0.5, f1


def test_follow_up_due_dates_count_from_the_message_that_promised_them(written_samples):
    found = 0
    for cid, r in written_samples.items():
        for f in r["blocks"]["contact"]["follow_ups"]:
            if f["due"] is None:
                continue
            said = r["messages"][f["message"] - 1].time
            assert f["due_text"].lower() in f["text"].lower()
            assert parse_due(f["text"], said)[0] == f["due"]
            assert date.fromisoformat(f["due"]) >= said.date()
            found += 1
    assert found >= 3


def test_no_personal_data_in_any_contact_text(written_samples):
    masked_somewhere = False
    for cid, r in written_samples.items():
        secret = pii_texts(r["utterances"], r["spans"])
        contact = json.dumps(r["blocks"]["contact"], ensure_ascii=False)
        for raw in secret:
            if len(raw) >= 4:
                assert re.search(r"(?<!\w)" + re.escape(raw) + r"(?!\w)", contact) is None, (cid, raw)
        masked_somewhere |= "[PERSON]" in contact or "[ACCOUNT_NUMBER]" in contact
    assert masked_somewhere


def test_accounts_are_the_masked_account_and_card_numbers_with_counts(written_samples):
    seen = 0
    for cid, r in written_samples.items():
        accounts = r["blocks"]["contact"]["mentions"]["accounts"]
        for a in accounts:
            spans = [s for s in r["spans"] if s.type == a["type"]]
            assert a["text"] == f"[{a['type']}]" and a["count"] == len(spans)
            assert a["first_start"] == round(min(s.start for s in spans), 3)
            seen += 1
        assert {a["type"] for a in accounts} == {s.type for s in r["spans"]} & {"ACCOUNT_NUMBER", "CREDIT_CARD"}
    assert seen >= 3


def test_configured_products_are_found_case_insensitively(tmp_path: Path):
    shutil.copy(WRITTEN / "chat" / "ch011.json", tmp_path / "ch011.json")
    result = analyse(tmp_path, ["contact.products=[Gift Card]"])["ch011"]
    products = result["blocks"]["contact"]["mentions"]["products"]
    said = sum(len(re.findall(r"(?<!\w)gift card(?!\w)", u.text.lower())) for u in result["written"]
               if u.role in ("agent", "customer"))
    assert said >= 1
    assert {"text": "Gift Card", "count": said} == {k: v for k, v in products[0].items() if k in ("text", "count")}


def test_contact_off_writes_no_block(tmp_path: Path):
    shutil.copy(WRITTEN / "chat" / "ch001.json", tmp_path / "ch001.json")
    result = analyse(tmp_path, ["contact.enabled=false"])["ch001"]
    assert "contact" not in result["blocks"] and "scorecard" in result["blocks"]


def test_a_name_and_a_number_in_the_reason_come_out_masked():
    """A call typed by hand: the customer's reason holds their name and account number."""

    def utt(uid: str, role: str, start: float, text: str) -> Utterance:
        words = [Word(w, start + 0.3 * i, start + 0.3 * (i + 1), 0.9) for i, w in enumerate(text.split())]
        return Utterance(uid, 0 if role == "agent" else 1, start, words[-1].end, text, words,
                         speaker="S0" if role == "agent" else "S1", role=role)

    utterances = [
        utt("u0001", "agent", 0.5, "Thank you for calling Northwind, how can I help?"),
        utt("u0002", "customer", 4.0, "Hello. My name is Priyanka Desai and I want to dispute a charge on "
                                      "account 44821937 because I was billed twice."),
        utt("u0003", "agent", 16.0, "I'm sorry about that. I've refunded the second charge to your card."),
        utt("u0004", "agent", 21.0, "You'll receive a confirmation email within two working days."),
        utt("u0005", "customer", 26.0, "Great, that's sorted then, thank you so much."),
    ]
    facts = CallFacts(30.0, True, metadata={"started_at": "2026-11-20T16:00:00Z"}, company="Northwind")
    stage = AnalysisStage(load_config(None), 1)
    blocks, written, spans = stage.run(utterances, facts)
    contact = blocks["contact"]
    reason = contact["reason"]["text"]
    assert "dispute a charge" in reason and reason in written[1].text
    assert "Priyanka" not in reason and "Desai" not in reason and "44821937" not in reason
    assert "[PERSON]" in reason and "[ACCOUNT_NUMBER]" in reason
    assert "Priyanka" not in json.dumps(contact) and "44821937" not in json.dumps(contact)
    follow = [f for f in contact["follow_ups"] if f["utterance_id"] == "u0004"]
    # said on Friday 16:00 + 21 s: two working days is Tuesday
    assert follow and follow[0]["due"] == "2026-11-24" and follow[0]["due_text"] == "within two working days"
    assert contact["mentions"]["accounts"] == [{"type": "ACCOUNT_NUMBER", "text": "[ACCOUNT_NUMBER]", "count": 1,
                                                "first_start": contact["mentions"]["accounts"][0]["first_start"]}]
    assert any(a["kind"] == "refunded" and a["utterance_id"] == "u0003" for a in contact["actions"])
    assert contact["outcome"]["label"] == "resolved"


# -- customer identity: the raw number or address never reaches a result --------------------


def _all_output_text(out: Path) -> str:
    """Every text file a run wrote (call.json, transcripts, summary, run.json), the index's bytes."""
    parts = []
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != ".callqa-customer.key":
            parts.append(p.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_manifest_customers_and_email_senders_are_kept_only_as_keyed_hashes(tmp_path: Path):
    from pipeline.insights.customers import customer_hash, load_key

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(WRITTEN / "chat" / "ch001.json", data / "ch001.json")
    shutil.copy(WRITTEN / "chat" / "ch002.json", data / "ch002.json")
    for name in ("e001.eml", "e001_r1.eml"):
        shutil.copy(WRITTEN / "email" / name, data / name)
    manifest = data / "manifest.csv"
    numbers = {"ch001": "+44 7700 900555", "ch002": "(07700) 900-555"}  # one customer, written two ways
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["call_id", "path", "agent_id", "queue", "started_at", "caller_number"])
        for cid, number in numbers.items():
            w.writerow([cid, f"{cid}.json", "a1", "chat", "", number])
    out = tmp_path / "out"
    proc = run_cli("run", str(manifest), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    key = load_key(out, create=False)
    records = {cid: json.loads((out / "calls" / cid / "call.json").read_text()) for cid in numbers}
    expected = customer_hash(numbers["ch001"], key)
    assert expected and all(r["metadata"]["customer_hash"] == expected for r in records.values())
    assert all("caller_number" not in r["metadata"] for r in records.values())
    text = _all_output_text(out)
    for number in numbers.values():
        assert number not in text and "7700900555" not in text.replace(" ", "")

    # an e-mail thread: its customer's address hashed with the same key, the address nowhere
    proc = run_cli("run", str(data / "e001.eml"), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    email = json.loads((out / "calls" / "e001" / "call.json").read_text())
    assert email["source"]["customer_hash"] == customer_hash("helen.marsh@example.com", key)
    assert "helen.marsh@example.com" not in json.dumps(email)

    # the same OUT gives the same hashes again
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(out / ".callqa-customer.key", again / ".callqa-customer.key")
    proc = run_cli("run", str(manifest), "--out", str(again), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((again / "calls" / "ch001" / "call.json").read_text())["metadata"]["customer_hash"] == expected


def test_customer_columns_leave_the_metadata_at_discovery(tmp_path: Path):
    from pipeline.ingest.discover import CUSTOMER_COLUMNS, read_manifest

    manifest = tmp_path / "m.csv"
    (tmp_path / "a.wav").write_bytes(b"")
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["call_id", "path", "agent_id", "queue", "started_at", *CUSTOMER_COLUMNS, "customer_hash"])
        w.writerow(["a", "a.wav", "a1", "q", "", "", "555 010 2030", "", "", "x@example.com", "forged"])
    call = read_manifest(manifest)[0]
    assert call.customer == "555 010 2030"
    assert not set(call.metadata) & {*CUSTOMER_COLUMNS, "customer_hash"}
    assert "555" not in repr(call)


# -- sample calls (the session's sample run) ---------------------------------------------------


@pytest.mark.slow  # the sample_run fixture transcribes the sample calls once per session
def test_sample_calls_are_documented_and_carry_only_hashed_customers(sample_run):
    from pipeline.evaluation.contact_eval import token_f1
    from pipeline.insights.customers import customer_hash, load_key

    out, proc = sample_run
    assert proc.returncode == 0, proc.stderr
    key = load_key(out, create=False)
    rows = manifest_rows()
    text = _all_output_text(out)
    hashes = {}
    f1 = []
    for row in rows:
        call = json.loads((out / "calls" / row["call_id"] / "call.json").read_text())
        assert "customer" not in call["metadata"]
        hashes[row["call_id"]] = call["metadata"]["customer_hash"]
        assert hashes[row["call_id"]] == customer_hash(row["customer"], key)
        assert row["customer"] not in text and re.sub(r"\D", "", row["customer"]) not in re.sub(r"\s", "", text)
        contact = call["contact"]
        assert list(contact) == KEYS and contact["reason"]["utterance_id"]
        by_id = {u["id"]: u for u in call["utterances"]}
        for piece in texts_of(contact):
            assert piece["text"] in by_id[piece["utterance_id"]]["text"]
            assert "message" not in piece  # a call: times, no message numbers
        gold = label(row["call_id"])
        f1.append(token_f1(gold["contact_reason"], contact["reason"]["text"]))
    # two calls from one customer (a repeat contact); every other customer is distinct
    shared = [cid for cid, h in hashes.items() if list(hashes.values()).count(h) > 1]
    assert len(shared) == 2 and len(set(hashes.values())) == len(rows) - 1
    assert sum(v >= 0.5 for v in f1) >= 6, f1
    # summary.csv carries each call's outcome and reason, as call.json has them
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        summary = {r["call_id"]: r for r in csv.DictReader(f)}
    for row in rows:
        contact = json.loads((out / "calls" / row["call_id"] / "call.json").read_text())["contact"]
        assert summary[row["call_id"]]["outcome"] == contact["outcome"]["label"]
        assert summary[row["call_id"]]["contact_reason"] == contact["reason"]["text"]


def _typed_call(lines: list[tuple[str, str]]) -> list[Utterance]:
    """A call typed by hand: (role, text) lines, four seconds apart."""
    out = []
    for i, (role, text) in enumerate(lines):
        start = 1.0 + 6.0 * i
        words = [Word(w, start + 0.3 * k, start + 0.3 * (k + 1), 0.9) for k, w in enumerate(text.split())]
        out.append(Utterance(f"u{i + 1:04d}", 0 if role == "agent" else 1, start, words[-1].end, text, words,
                             speaker="S0" if role == "agent" else "S1", role=role))
    return out


OUTCOME_CALLS = [
    ("transferred", [
        ("agent", "Good afternoon, you're through to Harbour Bank, Lena speaking."),
        ("customer", "Hi, I think someone has used my card abroad, there are payments I don't recognise."),
        ("agent", "I'm sorry to hear that. Card fraud is handled by our fraud desk, they can block it straight away."),
        ("agent", "Please stay on the line while I connect you to a fraud specialist now."),
        ("customer", "Okay, thank you."),
    ]),
    ("transferred", [
        ("agent", "Thanks for calling Orbit Mobile, how can I help?"),
        ("customer", "I'm calling because my internet keeps dropping every evening."),
        ("agent", "That's one for our technical team. I'll pass you over to a broadband engineer, one moment."),
        ("customer", "Sure."),
    ]),
    ("escalated", [
        ("agent", "Welcome to Crestline Insurance, my name is Omar."),
        ("customer", "My claim was rejected and I think that's completely unfair, I want it looked at again."),
        ("agent", "I understand. I can't overturn the decision myself, so I've referred your case to our "
                  "claims review manager, who will look at it and write to you."),
        ("customer", "Fine, I'll wait to hear from them."),
    ]),
    ("escalated", [
        ("agent", "Hello, Beacon Energy, Sara speaking."),
        ("customer", "I want to complain about the engineer who never turned up, twice now."),
        ("agent", "I'm so sorry. I've logged a formal complaint and raised it with my team leader today, "
                  "they will contact you about it."),
        ("customer", "Alright."),
    ]),
    ("resolved", [
        ("agent", "Good morning, Harbour Bank, Tom speaking."),
        ("customer", "I need to transfer money to my daughter's account but the app won't let me."),
        ("agent", "I can see the daily limit was reached. I've raised your limit, please try the transfer again now."),
        ("customer", "It's gone through, brilliant, thanks."),
        ("agent", "You're welcome, have a good day."),
    ]),
    ("resolved", [
        ("agent", "Orbit Mobile, this is Priya."),
        ("customer", "I was charged twice this month and I want to speak to a manager about it."),
        ("agent", "I'm sorry about that, I can sort it for you right away. I've refunded the duplicate charge."),
        ("customer", "Oh, okay, that's fine then, thanks for fixing it."),
    ]),
]


@pytest.mark.parametrize("expected, lines", OUTCOME_CALLS,
                         ids=[f"{o}-{i}" for i, (o, _) in enumerate(OUTCOME_CALLS)])
def test_transfers_and_escalations_are_told_from_each_other_and_from_their_look_alikes(expected, lines):
    """A live hand-over is ``transferred``; a case passed up to be dealt with later is
    ``escalated``; a money transfer or a customer asking for a manager, settled in the call, is
    ``resolved``. The evidence quotes the agent's words that decided it."""
    utterances = _typed_call(lines)
    facts = CallFacts(utterances[-1].end + 1, True, metadata={"started_at": "2026-11-20T10:00:00Z"})
    blocks, written, _spans = AnalysisStage(load_config(None), 1).run(utterances, facts)
    outcome = blocks["contact"]["outcome"]
    assert outcome["label"] == expected, outcome
    if expected in ("transferred", "escalated"):
        assert any(e["role"] == "agent" for e in outcome["evidence"]), outcome
