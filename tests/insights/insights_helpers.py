"""Results folders for the insight tests: call.json records written through
pipeline.interaction.record.Interaction, with contact blocks (reason, outcome, follow-ups),
customers, agents, teams and start times chosen by the test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.interaction.record import Interaction, SourceInfo

if TYPE_CHECKING:
    from pipeline.insights.store import InsightStore

TOPIC_REASONS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice on my last bill",
        "my invoice shows a double charge this month",
        "there is a duplicate payment taken from my card for the same bill",
        "you billed me two times for October",
        "why did I get charged twice for one invoice",
        "the bill has the same charge listed twice",
        "I see two identical charges on my statement",
        "my bank shows you took the monthly payment twice",
    ],
    "cancel": [
        "I want to cancel my subscription",
        "please cancel my contract, I am moving abroad",
        "how do I end my membership and stop the payments",
        "I would like to terminate my service agreement",
        "cancel my account at the end of this month",
        "I no longer want the subscription, please close it",
        "I need to cancel the plan before it renews",
        "stop my subscription renewal and cancel the service",
    ],
    "outage": [
        "my internet connection keeps dropping every evening",
        "the broadband has been down since this morning",
        "no internet at all, the router light is red",
        "wifi keeps disconnecting and the connection is very slow",
        "internet outage in my area for two days",
        "my fibre connection stopped working last night",
        "the internet goes off several times a day",
        "broadband signal lost, cannot get online",
    ],
    "delivery": [
        "my parcel has not arrived yet",
        "the package was supposed to be delivered last week",
        "where is my order, the delivery is late",
        "tracking says delivered but I never received the parcel",
        "my delivery is two weeks overdue",
        "the courier did not deliver my order",
        "still waiting for my package to arrive",
        "the order shipped ten days ago and has not come",
    ],
    "password": [
        "I cannot log in to my online account",
        "I forgot my password and the reset email never comes",
        "locked out of the app after too many login attempts",
        "the password reset link does not work",
        "I can't sign in to the website anymore",
        "my login keeps failing with an error",
        "how do I reset my account password",
        "the app says my password is wrong but it is not",
    ],
}


@dataclass
class Call:
    call_id: str
    started_at: str | None
    reason: str | None = None
    customer: str | None = None
    """The customer hash (None: unknown)."""
    agent_id: str = "A1"
    team: str | None = "care"
    channel: str = "voice"
    outcome: str | None = "resolved"
    sentiment_end: float | None = 0.2
    reason_start: float | None = 12.5
    utterance_id: str | None = "u3"
    contact: bool = True
    """Write a contact block (False: a record from before contact blocks)."""
    status: str = "ok"
    extra_metadata: dict[str, Any] = field(default_factory=dict)


def record_of(call: Call) -> Interaction:
    kind = {"voice": "recording", "email": "email", "chat": "chat"}[call.channel]
    extra: dict[str, Any] = {}
    if call.customer:
        extra["customer_hash"] = call.customer
    metadata: dict[str, Any] = {"agent_id": call.agent_id, **call.extra_metadata}
    if call.started_at:
        metadata["started_at"] = call.started_at
    if call.team:
        metadata["team"] = call.team
    blocks: dict[str, Any] = {
        "scorecard": {"score": {"normalized": 0.8, "auto_fail": False}, "items": []},
        "sentiment": {"customer_start": 0.0, "customer_end": call.sentiment_end},
        "metrics": {},
    }
    if call.contact:
        reason = None
        if call.reason is not None:
            reason = {"text": call.reason, "utterance_id": call.utterance_id, "start": call.reason_start,
                      "end": (call.reason_start or 0) + 3.0, "confidence": 0.8}
        blocks["contact"] = {
            "reason": reason,
            "outcome": {"label": call.outcome, "confidence": 0.7, "evidence": []} if call.outcome else None,
            "follow_ups": [], "actions": [], "mentions": {},
        }
    return Interaction(call.call_id, call.status,
                       SourceInfo(kind, f"/in/{call.call_id}", "0" * 64, 180.0, extra=extra),
                       metadata=metadata, blocks=blocks, channel=call.channel,
                       error={"message": "failed"} if call.status != "ok" else None)


def write_run(out: Path, calls: list[Call]) -> Path:
    """A results folder ``out`` with one call.json per call."""
    for call in calls:
        folder = out / "calls" / call.call_id
        folder.mkdir(parents=True, exist_ok=True)
        record_of(call).save(folder)
    return out


def topic_calls(weeks: list[str], per_topic: dict[str, int] | None = None, start_index: int = 0) -> list[Call]:
    """Calls over the ISO days ``weeks`` (one Monday each): for each topic, ``per_topic[topic]``
    calls a week (default 6) cycling through its paraphrases, agents A1-A3 in teams care/sales,
    customers c0..c49, evening times."""
    per_topic = per_topic or {t: 6 for t in TOPIC_REASONS}
    calls: list[Call] = []
    k = start_index
    for week_day in weeks:
        for topic, count in per_topic.items():
            reasons = TOPIC_REASONS[topic]
            for j in range(count):
                k += 1
                day = int(week_day[-2:]) + (j % 5)
                calls.append(Call(
                    call_id=f"{topic}-{k:05d}", started_at=f"{week_day[:-2]}{day:02d}T{9 + j % 8:02d}:{k % 60:02d}:00Z",
                    reason=reasons[(k + j) % len(reasons)], customer=f"c{k % 997:04d}",
                    agent_id=f"A{1 + k % 3}", team="care" if k % 3 else "sales",
                    channel=("voice", "email", "chat")[k % 3], outcome="resolved",
                ))
    return calls


def store_of(out: Path, calls: list[Call]) -> "InsightStore":
    """The insight store of a results folder ``out`` written with ``calls``, with its topics."""
    from pipeline.insights.options import TopicOptions
    from pipeline.insights.store import InsightStore
    from pipeline.insights.topics import update_topics

    write_run(out, calls)
    store = InsightStore.updated(out)
    update_topics(store, TopicOptions())
    return store
