"""Results folders for the survey / ACD / goals / report tests: call.json records written
through pipeline.interaction.record.Interaction, with scorecard items (answers and evidence),
customers hashed with the folder's key, agents, teams, holds and outcomes chosen by the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.insights.customers import customer_hash, load_key
from pipeline.interaction.record import Interaction, SourceInfo

ITEMS = ("opening.greeting", "courtesy.empathy", "closing.thanks")


def write_call(out: Path, call_id: str, started_at: str | None, *, agent: str = "a1", team: str = "billing",
               answers: dict[str, str] | None = None, score: float | None = None, customer: str | None = None,
               hold_s: float | None = None, outcome: str | None = None, auto_fail: bool = False,
               channel_kind: str = "recording", status: str = "ok") -> Interaction:
    """Write ``out/calls/<call_id>/call.json``. ``customer``: a phone number or e-mail address,
    hashed with ``out``'s key as the pipeline does. ``score`` defaults to the share of yes."""
    answers = answers if answers is not None else {i: "yes" for i in ITEMS}
    if score is None:
        scored = [a for a in answers.values() if a != "na"]
        score = sum(a == "yes" for a in scored) / len(scored) if scored else None
    items = []
    for n, (item, answer) in enumerate(answers.items()):
        evidence: list[dict[str, Any]] = []
        if answer in ("yes", "no"):
            evidence = [{"start": 10.0 * n + 1.5, "end": 10.0 * n + 4.0, "rule": "test", "role": "agent",
                         "quote": f"quote of {item} in {call_id} <b>&"}]
        items.append({"id": item, "section": item.split(".")[0], "question": f"{item}?", "answer": answer,
                      "confidence": 0.9, "points": 1.0 if answer == "yes" else 0.0, "auto_fail": False,
                      "looked_for": f"looked for {item}", "evidence": evidence})
    meta: dict[str, Any] = {"agent_id": agent, "queue": team}
    if started_at:
        meta["started_at"] = started_at
    if customer:
        meta["customer_hash"] = customer_hash(customer, load_key(out))
    blocks: dict[str, Any] = {"scorecard": {"template": {"name": "T", "version": "1"}, "items": items,
                                            "score": {"normalized": score, "auto_fail": auto_fail}}}
    if hold_s is not None:
        blocks["metrics"] = {"hold_candidates": [{"start": 30.0, "end": 30.0 + hold_s, "duration_s": hold_s}]}
    if outcome:
        blocks["contact"] = {"outcome": {"label": outcome}}
    record = Interaction(call_id, status, SourceInfo(kind=channel_kind, path=f"{call_id}.wav", duration_s=120.0),
                         metadata=meta, blocks=blocks,
                         error={"message": "failed"} if status != "ok" else None)
    folder = out / "calls" / call_id
    folder.mkdir(parents=True, exist_ok=True)
    record.save(folder)
    return record


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path
