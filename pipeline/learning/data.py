"""The pairs learning reads: per reviewed call and item, the machine's suggestion (answer,
confidence, the detector's recorded decision score from call.json ``details.decision``) beside
the human answer of the review that counts (:func:`pipeline.review.history.counted_reviews`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import Call, CallItem
from pipeline.review.history import counted_reviews


@dataclass
class Pair:
    """One item of one reviewed call."""

    call_id: str
    agent_id: str | None
    started_at: str | None
    template: str
    """The template's name (call.json ``scorecard.template.name``)."""
    template_path: str | None
    item_id: str
    detector: str | None
    machine: str
    """The suggestion (yes / no / na) as loaded."""
    confidence: float | None
    human: str
    decision: dict[str, Any] | None
    """The detector's recorded decision (see pipeline/analysis/detectors): param, score, op,
    then, else, fixed; None when the call.json records none."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.template, self.item_id)


def _read_items(call: Call) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the template block, {item id: item}) of the call's call.json; empty when unreadable."""
    path = Path(call.out_dir) / "calls" / call.call_id / "call.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, {}
    card = data.get("scorecard") or {}
    return card.get("template") or {}, {i.get("id"): i for i in card.get("items") or [] if isinstance(i, dict)}


def review_pairs(session: Session) -> list[Pair]:
    """Every (reviewed call, item) with a human answer and a suggestion, sorted by call and item
    position. The suggestion is the database's (as loaded); the decision score comes from the
    call's call.json in its run folder (``calls.out_dir``), read once per call."""
    reviews = counted_reviews(session)
    if not reviews:
        return []
    human = {cid: {a.item_id: a.answer for a in r.answers} for cid, r in reviews.items()}
    calls = {c.call_id: c for c in session.scalars(select(Call).where(Call.call_id.in_(list(reviews))))}
    items = session.execute(select(CallItem.call_id, CallItem.item_id, CallItem.answer, CallItem.confidence)
                            .where(CallItem.call_id.in_(list(reviews)))
                            .order_by(CallItem.call_id, CallItem.position)).all()
    files: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {}
    pairs = []
    for call_id, item_id, answer, confidence in items:
        got = human.get(call_id, {}).get(item_id)
        if got is None:
            continue
        call = calls[call_id]
        if call_id not in files:
            files[call_id] = _read_items(call)
        template, recorded = files[call_id]
        item = recorded.get(item_id) or {}
        name = template.get("name") or (call.template or "").rsplit(" ", 1)[0] or "?"
        decision = (item.get("details") or {}).get("decision")
        if item.get("answer") not in (None, answer):  # call.json changed since it was loaded
            decision = None
        pairs.append(Pair(call_id, call.agent_id, call.started_at, name, template.get("path"), item_id,
                          item.get("detector"), answer, confidence, got,
                          decision if isinstance(decision, dict) else None))
    return pairs
