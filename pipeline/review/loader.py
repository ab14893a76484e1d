"""Loading a run's results into the review database, idempotently.

For every finished call of ``OUT/calls/*/call.json`` the call row and its automatic item
suggestions are inserted or updated; a call whose call.json is unchanged (same content hash) is
left as it is. Reviews and reviewers' answers are never written here: a re-run of the pipeline
updates the suggestions and keeps every human answer (and the suggestion it was given against).
Failed calls are not loaded; a call gone from the run is kept (its reviews may matter), and so
is a call.json whose ``call_id`` is not its folder's name (skipped). Each call also gets the
run's input roots (``run.json``) and whether its text is redacted, which decide what audio
the web app may play (pipeline/review/app.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.review.db import Call, CallItem, utcnow
from pipeline.review.history import refresh_counted

log = logging.getLogger("callqa")


@dataclass
class LoadCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Failed or unreadable call.json files (not loaded)."""

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "skipped": self.skipped}


def run_input_roots(out_dir: Path) -> list[str] | None:
    """The input roots ``run.json`` recorded (absolute folders), None when it recorded none."""
    try:
        roots = json.loads((out_dir / "run.json").read_text(encoding="utf-8")).get("input_roots")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(roots, list) or not all(isinstance(r, str) and Path(r).is_absolute() for r in roots):
        return None
    return roots or None


def _pii_redacted(record: dict[str, Any]) -> bool | None:
    pii = record.get("pii")
    return bool(pii.get("redacted")) if isinstance(pii, dict) else None


def _call_fields(record: dict[str, Any], out_dir: Path, sha: str) -> dict[str, Any]:
    meta = record.get("metadata") or {}
    card = record.get("scorecard") or {}
    score = card.get("score") or {}
    template = card.get("template") or {}
    items = card.get("items") or []
    return {
        "out_dir": str(out_dir.resolve()),
        "agent_id": meta.get("agent_id") or None,
        "queue": meta.get("queue") or None,
        "started_at": meta.get("started_at") or None,
        "duration_s": (record.get("source") or {}).get("duration_s"),
        "channels": (record.get("source") or {}).get("channels"),
        "score": score.get("normalized"),
        "auto_fail": bool(score.get("auto_fail")),
        "low_confidence_items": sum(1 for i in items if i.get("confidence", 1.0) < 0.6),
        "customer_sentiment_end": (record.get("sentiment") or {}).get("customer_end"),
        "template": f"{template.get('name')} {template.get('version')}" if template else None,
        "config_hash": (record.get("provenance") or {}).get("config_hash"),
        "result_sha256": sha,
        "metadata_json": meta,
        "audio_path": _audio_path(record, out_dir),
        "pii_redacted": _pii_redacted(record),
    }


def _audio_path(record: dict[str, Any], out_dir: Path) -> str | None:
    """The recording the run read, absolute (a relative one is taken from the loader's folder,
    then from the run folder's parent)."""
    raw = (record.get("source") or {}).get("path")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_absolute():
        path = next((c for c in (Path.cwd() / path, out_dir.resolve().parent / path) if c.is_file()), Path.cwd() / path)
    return str(path)


def load_results(session: Session, out_dir: str | Path) -> LoadCounts:
    """Load every finished call of the run folder ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    calls_dir = out / "calls"
    if not calls_dir.is_dir():
        raise InputError(f"{out}: not a callqa output folder (no calls/ in it)")
    counts = LoadCounts()
    updated: list[str] = []
    roots = run_input_roots(out)
    for path in sorted(calls_dir.glob("*/call.json")):
        try:
            raw = path.read_bytes()
            record = json.loads(raw)
        except (OSError, ValueError) as e:
            log.warning("%s: not loaded: %s", path, e)
            counts.skipped += 1
            continue
        if record.get("status") != "ok":
            counts.skipped += 1
            continue
        call_id = record.get("call_id")
        if call_id != path.parent.name:
            log.warning("%s: not loaded: its call_id %r is not its folder's name", path, call_id)
            counts.skipped += 1
            continue
        sha = hashlib.sha256(raw).hexdigest()
        row = session.get(Call, call_id)
        if row is not None and row.result_sha256 == sha:
            row.input_roots = roots  # the run's roots, also for a row loaded before they were kept
            counts.unchanged += 1
            continue
        fields = {**_call_fields(record, out, sha), "input_roots": roots}
        if row is None:
            row = Call(call_id=call_id, **fields)
            session.add(row)
            counts.added += 1
        else:
            for key, value in fields.items():
                setattr(row, key, value)
            row.loaded_at = utcnow()
            counts.updated += 1
            updated.append(call_id)
        _set_items(row, (record.get("scorecard") or {}).get("items") or [])
        session.flush()
    refresh_counted(session, updated)  # new suggestions change what a reviewed call's score stands on
    return counts


def _set_items(call: Call, items: list[dict[str, Any]]) -> None:
    """The call's automatic suggestions become ``items`` (updated in place, by item id)."""
    existing = {i.item_id: i for i in call.items}
    keep = set()
    for position, item in enumerate(items):
        values = {
            "position": position, "section": item.get("section"), "question": item.get("question", ""),
            "answer": item["answer"], "confidence": float(item.get("confidence", 0.0)),
            "points": float(item.get("points", 0.0)), "auto_fail": bool(item.get("auto_fail")),
            "looked_for": item.get("looked_for"), "evidence": item.get("evidence") or [],
        }
        row = existing.get(item["id"])
        if row is None:
            call.items.append(CallItem(item_id=item["id"], **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        keep.add(item["id"])
    for item_id, row in existing.items():
        if item_id not in keep:
            call.items.remove(row)
