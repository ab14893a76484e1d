"""Written conversations for the review tests: e-mail threads and chats written as a run writes
them (pipeline/run/written.py: one utterance ``m{n:03d}`` per message, a top-level ``messages``
list, evidence with ``message`` and ``chars``), through :class:`Interaction`, into a run folder's
``calls/<id>/call.json``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.interaction.record import Interaction, SourceInfo
from pipeline.interaction.utterances import Utterance, Word

WORD_STEP_S = 1e-4

EMAIL_THREAD: list[dict[str, Any]] = [
    {"time": "2026-11-02T09:00:00+00:00", "role": "customer", "sender": "W1",
     "subject": "Double charge on my invoice",
     "text": "Hello, my invoice for October shows a double charge. Can you refund it?",
     "attachments": [{"name": "invoice-october.pdf", "size": 48213, "content_type": "application/pdf"}]},
    {"time": "2026-11-02T09:00:05+00:00", "role": "system", "sender": "W2", "auto_reply": True,
     "subject": "Re: Double charge on my invoice",
     "text": "Thank you for your message. We answer within one business day."},
    {"time": "2026-11-02T11:30:00+00:00", "role": "agent", "sender": "W2", "name": "Nina",
     "subject": "Re: Double charge on my invoice", "signature": "Nina, Billing team",
     # an emoji before the quotes: the character spans count code points, as Python does
     "text": "Dear customer \U0001F642 thank you for writing to us. I am sorry about the double charge. "
             "I have refunded it today."},
    {"time": "2026-11-03T08:15:00+00:00", "role": "customer", "sender": "W1",
     "subject": "Re: Double charge on my invoice", "text": "Thanks, the refund arrived."},
]
"""An e-mail thread: the customer's question with an attachment, an auto-reply, the agent's
answer, the customer's thanks."""

CHAT: list[dict[str, Any]] = [
    {"time": "2026-11-04T14:00:00+00:00", "role": "system", "sender": "W1", "text": "Nina joined the chat"},
    {"time": "2026-11-04T14:00:10+00:00", "role": "customer", "sender": "W2", "text": "hi my parcel is late"},
    {"time": "2026-11-04T14:00:40+00:00", "role": "agent", "sender": "W1", "name": "Nina",
     "text": "Hello! Sorry to hear that, let me check the tracking for you."},
]


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def evidence(messages: list[dict[str, Any]], n: int, quote: str, rule: str = "phrase") -> dict[str, Any]:
    """A piece of evidence quoting ``quote`` in message ``n`` (1-based), as the analysis writes
    it for a written conversation: times, utterance, role, quote, message number and the
    quote's character span in the message's text."""
    m = messages[n - 1]
    text = " ".join(m["text"].split())
    start = text.index(quote)
    at = _seconds(messages[0]["time"], m["time"])
    first_word = len(text[:start].split())
    words = len(quote.split())
    return {"start": round(at + first_word * WORD_STEP_S, 4), "end": round(at + (first_word + words) * WORD_STEP_S, 4),
            "rule": rule, "utterance_id": f"m{n:03d}", "role": m["role"], "quote": quote, "message": n,
            "chars": [start, start + len(quote)]}


def written_record(call_id: str, channel: str = "email", messages: list[dict[str, Any]] | None = None,
                   answers: dict[str, tuple[str, list[dict[str, Any]]]] | None = None, agent: str | None = "a1",
                   queue: str | None = "billing", score: float | None = 0.75, started_at: str | None = None,
                   redacted: bool = True) -> Interaction:
    """A finished written record: ``answers`` {item: (answer, evidence)}; ``started_at`` in the
    metadata when given (else only the source's first message time)."""
    messages = messages if messages is not None else (EMAIL_THREAD if channel == "email" else CHAT)
    answers = answers if answers is not None else {"opening.greeting": ("yes", [])}
    t0 = messages[0]["time"]
    utterances, listed = [], []
    for n, m in enumerate(messages, 1):
        at = _seconds(t0, m["time"])
        tokens = m["text"].split()
        words = [Word(tok, at + i * WORD_STEP_S, at + (i + 1) * WORD_STEP_S, 1.0) for i, tok in enumerate(tokens)]
        utterances.append(Utterance(f"m{n:03d}", 0, at, at + len(tokens) * WORD_STEP_S, " ".join(tokens), words,
                                    speaker=m["sender"], role=m["role"]))
        entry: dict[str, Any] = {"n": n, "utterance_id": f"m{n:03d}", "time": m["time"], "role": m["role"]}
        for key in ("name", "subject", "attachments", "auto_reply", "signature"):
            if key in m:
                entry[key] = m[key]
        listed.append(entry)
    span = _seconds(t0, messages[-1]["time"])
    source = SourceInfo(channel, f"/in/{call_id}.{'eml' if channel == 'email' else 'json'}", "0" * 64, span,
                        format="eml" if channel == "email" else "json",
                        extra={"messages": len(messages), "participants": len({m["sender"] for m in messages}),
                               "started_at": t0, "ended_at": messages[-1]["time"], "files": [f"{call_id}.eml"]})
    items = [{"id": item, "section": item.split(".")[0], "question": f"{item}?", "answer": a, "confidence": 0.9,
              "points": 1.0 if a == "yes" else 0.0, "auto_fail": False, "looked_for": "x", "evidence": ev}
             for item, (a, ev) in answers.items()]
    roles = {m["sender"]: m["role"] for m in messages if not m.get("auto_reply")}
    metadata = {k: v for k, v in (("agent_id", agent), ("queue", queue), ("started_at", started_at)) if v is not None}
    metrics = {"channel": channel, "messages": len(messages), "span_s": span,
               "response_times": {"policy_s": 14400.0, "breaches": 0, "unanswered": [],
                                  "first_response": {"customer_message": 1, "agent_message": 3, "business_s": 9000.0,
                                                     "wall_s": 9000.0, "within_policy": True}}}
    return Interaction(
        call_id, "ok", source, metadata=metadata, provenance={"config_hash": "abc"},
        speakers={"method": "written", "roles": roles, "confidence": 1.0}, utterances=utterances,
        blocks={"scorecard": {"template": {"name": "email_support", "version": "1"}, "items": items,
                              "score": {"normalized": score, "auto_fail": False}},
                "sentiment": {"customer_end": 0.4}, "metrics": metrics,
                "pii": {"enabled": True, "redacted": redacted, "counts": {}, "spans": []}},
        channel=channel, extra={"messages": listed})


def write_written(out: Path, records: list[Interaction]) -> None:
    """The records as a run writes them: ``out/calls/<id>/call.json``."""
    for record in records:
        folder = out / "calls" / record.call_id
        folder.mkdir(parents=True, exist_ok=True)
        record.save(folder)


EMAIL_ANSWERS = {
    "opening.greeting": ("yes", [evidence(EMAIL_THREAD, 3, "thank you for writing to us", "greeting phrase")]),
    "courtesy.empathy": ("yes", [evidence(EMAIL_THREAD, 3, "I am sorry about the double charge.", "apology")]),
    "closing.resolved": ("yes", [evidence(EMAIL_THREAD, 4, "the refund arrived.", "customer confirms")]),
}
"""Answers of the e-mail thread with evidence in messages 3 and 4."""
