"""The interaction record of a call (call.json ``contact``: the contact reason, the agent's
actions, the outcome, follow-ups, products and accounts mentioned) and the reviewers'
corrections of it.

The automatic block is the pipeline's (``calls.contact``, written by the loader; a row loaded
before the column existed has none, and its call.json is read instead). A correction never
replaces it: each is a row of ``contact_corrections`` holding the corrected fields as they
stand after it (``reason``, ``outcome``, ``follow_ups``; a field not in it is the automatic
one) and the automatic block it was made against. The latest row counts; the others are the
history. A load of a newer result changes the automatic block and leaves the correction as it
is: :func:`contact_view` then says the automatic block changed since (``automatic_changed``).

For other readers (the insight reports): :func:`effective_contact` (one call's block as it
counts: the automatic one with the latest correction applied) and :func:`corrections_since`.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import WRITTEN_CHANNELS, Call, ContactCorrection, User

OUTCOMES = ("resolved", "follow_up", "escalated", "transferred", "unresolved")
"""The outcome labels a correction may give (those of the automatic block)."""
FIELDS = ("reason", "outcome", "follow_ups")
"""What a reviewer corrects."""
MAX_TEXT = 2000
MAX_FOLLOW_UPS = 50
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidCorrection(ValueError):
    """A correction that cannot be kept (the message says which field and why)."""


# -- the automatic block ------------------------------------------------------------------------------

def automatic_contact(call: Call, record: Any = None) -> dict[str, Any] | None:
    """The call's automatic contact block: the loaded one, else (a row loaded before it was
    kept) the one of its call.json (``record``: the call's Interaction when the caller has it);
    None when there is none."""
    if isinstance(call.contact, dict):
        return call.contact
    if record is None:
        from pipeline.interaction.record import Interaction, RecordError, record_path

        try:
            record = Interaction.load(record_path(Path(call.out_dir), call.call_id))
        except (RecordError, OSError):
            return None
    block = record.contact
    return block if isinstance(block, dict) else None


# -- corrections ----------------------------------------------------------------------------------------

def latest_correction(session: Session, call_id: str) -> ContactCorrection | None:
    return session.scalar(select(ContactCorrection).where(ContactCorrection.call_id == call_id)
                          .order_by(ContactCorrection.id.desc()).limit(1))


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).isoformat()


def _row(row: ContactCorrection, by: str | None) -> dict[str, Any]:
    return {"id": row.id, "by": by, "at": _iso(row.created_at), "fields": row.fields or {},
            "automatic": row.automatic}


def history(session: Session, call_id: str) -> list[dict[str, Any]]:
    """Every correction of the call, oldest first: {"id", "by", "at", "fields", "automatic"}."""
    rows = session.execute(select(ContactCorrection, User.username).join(User, User.id == ContactCorrection.user_id)
                           .where(ContactCorrection.call_id == call_id).order_by(ContactCorrection.id))
    return [_row(row, name) for row, name in rows]


def _skeleton() -> dict[str, Any]:
    return {"reason": None, "actions": [], "outcome": None, "follow_ups": [],
            "mentions": {"products": [], "accounts": []}, "method": None}


def apply_correction(automatic: dict[str, Any] | None, fields: dict[str, Any] | None,
                     by: str | None = None, at: str | None = None) -> dict[str, Any] | None:
    """The block as it counts: ``automatic`` (copied, never changed) with the corrected
    ``fields`` in place of its own, and ``correction``: {"fields": the corrected ones, "by",
    "at"}; the automatic block itself (a copy) when nothing is corrected; None when there is
    neither."""
    fields = {k: v for k, v in (fields or {}).items() if k in FIELDS}
    if not fields:
        return copy.deepcopy(automatic) if automatic is not None else None
    block = copy.deepcopy(automatic) if automatic is not None else _skeleton()
    if "reason" in fields:
        block["reason"] = {**fields["reason"], "corrected": True} if fields["reason"] is not None else None
    if "outcome" in fields:
        block["outcome"] = {"label": fields["outcome"]["label"], "confidence": None, "evidence": [],
                            "corrected": True}
    if "follow_ups" in fields:
        block["follow_ups"] = [{**f, "corrected": True} for f in fields["follow_ups"]]
    block["correction"] = {"fields": [k for k in FIELDS if k in fields], "by": by, "at": at}
    return block


def contact_view(session: Session, call: Call, record: Any = None) -> dict[str, Any]:
    """What the API and the page show of a call's interaction record: {"automatic": the
    pipeline's block or None, "corrected": the latest correction {"id", "by", "at", "fields",
    "automatic_changed"} or None, "effective": the block as it counts, "history": every
    correction, oldest first}. ``automatic_changed``: a newer result's automatic block is not
    the one the correction was made against (the correction still counts)."""
    automatic = automatic_contact(call, record)
    trail = history(session, call.call_id)
    latest = trail[-1] if trail else None
    corrected = None
    if latest is not None and latest["fields"]:
        corrected = {k: latest[k] for k in ("id", "by", "at", "fields")}
        corrected["automatic_changed"] = latest["automatic"] != automatic
    effective = apply_correction(automatic, corrected["fields"] if corrected else None,
                                 corrected["by"] if corrected else None, corrected["at"] if corrected else None)
    if effective is not None and corrected is not None:
        effective["correction"]["automatic_changed"] = corrected["automatic_changed"]
    return {"automatic": automatic, "corrected": corrected, "effective": effective, "history": trail}


def effective_contact(session: Session, call_id: str) -> dict[str, Any] | None:
    """The call's contact block as it counts (see :func:`apply_correction`): the automatic one
    with the latest correction applied (``correction`` then says which fields, by whom, when,
    and ``automatic_changed``); None for an unknown call or one with neither."""
    call = session.get(Call, call_id)
    if call is None:
        return None
    return contact_view(session, call)["effective"]


def corrections_since(session: Session, start_iso: str) -> list[dict[str, Any]]:
    """The corrections made at or after ``start_iso`` (an ISO date or time; no zone: UTC),
    oldest first, each {"id", "call_id", "by", "role", "at", "fields" (the corrected fields as
    they stood after it), "automatic" (the block it corrected), "changes" ({field: {"automatic":
    ..., "corrected": ...}} for the outcome label, the reason text and the follow-ups),
    "latest" (whether it is the call's correction that counts now), and the call's "agent_id",
    "queue", "channel", "started_at"}. ValueError for a start that is not ISO."""
    start = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)
    rows = session.execute(
        select(ContactCorrection, User.username, User.role, Call.agent_id, Call.queue, Call.channel, Call.started_at)
        .join(User, User.id == ContactCorrection.user_id).join(Call, Call.call_id == ContactCorrection.call_id)
        .where(ContactCorrection.created_at >= start).order_by(ContactCorrection.created_at, ContactCorrection.id)
    ).all()
    latest_ids = {}
    if rows:
        calls = {row[0].call_id for row in rows}
        for call_id, latest in session.execute(
                select(ContactCorrection.call_id, ContactCorrection.id).where(ContactCorrection.call_id.in_(calls))
                .order_by(ContactCorrection.id)):
            latest_ids[call_id] = latest
    out = []
    for row, name, role, agent_id, queue, channel, started_at in rows:
        item = _row(row, name)
        item.update(call_id=row.call_id, role=role, agent_id=agent_id, queue=queue, channel=channel,
                    started_at=started_at, changes=_changes(row.automatic, item["fields"]),
                    latest=latest_ids.get(row.call_id) == row.id)
        out.append(item)
    return out


def _changes(automatic: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    auto = automatic or {}
    changes: dict[str, Any] = {}
    if "outcome" in fields:
        changes["outcome"] = {"automatic": (auto.get("outcome") or {}).get("label"),
                              "corrected": fields["outcome"]["label"]}
    if "reason" in fields:
        changes["reason"] = {"automatic": (auto.get("reason") or {}).get("text"),
                             "corrected": (fields["reason"] or {}).get("text")}
    if "follow_ups" in fields:
        changes["follow_ups"] = {"automatic": [{"text": f.get("text"), "due": f.get("due")}
                                               for f in auto.get("follow_ups") or []],
                                 "corrected": [{"text": f["text"], "due": f.get("due")} for f in fields["follow_ups"]]}
    return changes


# -- validating and keeping a correction ----------------------------------------------------------------

def _text(value: Any, where: str, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidCorrection(f"{where}: a text is needed")
        return None
    if not isinstance(value, str):
        raise InvalidCorrection(f"{where}: a text")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise InvalidCorrection(f"{where}: at most {MAX_TEXT} characters")
    return value


def _due(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidCorrection(f"{where}: a date YYYY-MM-DD, or null for none")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidCorrection(f"{where}: {value} is not a date of the calendar") from None
    return value


def _anchor(utterances: dict[str, dict[str, Any]], written: bool, uid: Any, where: str,
            role: str | None = None) -> dict[str, Any]:
    """Where an utterance of the call is: {"utterance_id", "start", "end"} (and "message", a
    written conversation's message number); InvalidCorrection for one that is not the call's
    (or not of ``role``)."""
    if not isinstance(uid, str) or uid not in utterances:
        raise InvalidCorrection(f"{where}: not an utterance of this call")
    u = utterances[uid]
    if role is not None and u.get("role") != role:
        raise InvalidCorrection(f"{where}: {uid} is not the {role}'s")
    anchor = {"utterance_id": uid, "start": u.get("start"), "end": u.get("end")}
    if written and uid[:1] == "m" and uid[1:].isdigit():
        anchor["message"] = int(uid[1:])
    return anchor


def validate(body: dict[str, Any], previous: dict[str, Any] | None, utterance_list: list[dict[str, Any]],
             channel: str) -> dict[str, Any]:
    """The corrected fields after ``body`` (``previous``: those of the latest correction):
    each of ``reason``, ``outcome``, ``follow_ups`` given replaces the previous correction of it,
    null withdraws it (the automatic one counts again), one not given stays as it was.

    ``reason``: {"text": "..."} (the reviewer's words), {"utterance_id": "u0004"} (a customer
    utterance of the call: its text), or both (the reviewer's words, placed at that utterance).
    ``outcome``: one of :data:`OUTCOMES` (or {"label": ...}). ``follow_ups``: the whole list,
    [{"text": "...", "due": "YYYY-MM-DD" | null, "due_text": "..." | null, "utterance_id": ...}]
    (an empty list: no follow-up). InvalidCorrection says what is wrong."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidCorrection(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                                f"correct {', '.join(FIELDS)}")
    if not any(k in body for k in FIELDS):
        raise InvalidCorrection(f"nothing to correct: give one of {', '.join(FIELDS)}")
    written = channel in WRITTEN_CHANNELS
    utterances = {u["id"]: u for u in utterance_list if u.get("id")}
    fields = dict(previous or {})
    for key in FIELDS:
        if key not in body:
            continue
        value = body[key]
        if value is None:
            fields.pop(key, None)
        elif key == "reason":
            fields[key] = _reason(value, utterances, written)
        elif key == "outcome":
            label = value.get("label") if isinstance(value, dict) else value
            if label not in OUTCOMES:
                raise InvalidCorrection(f"outcome: one of {', '.join(OUTCOMES)}")
            fields[key] = {"label": label}
        else:
            fields[key] = _follow_ups(value, utterances, written)
    return fields


def _reason(value: Any, utterances: dict[str, dict[str, Any]], written: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCorrection('reason: {"text": "..."} or {"utterance_id": "..."}, or null for the automatic one')
    extra = sorted(set(value) - {"text", "utterance_id"})
    if extra:
        raise InvalidCorrection(f"reason: unknown field {', '.join(extra)}")
    uid = value.get("utterance_id") or None
    text = _text(value.get("text"), "reason.text", required=uid is None)
    reason: dict[str, Any] = {"text": text, "utterance_id": None, "start": None, "end": None}
    if uid is not None:
        reason.update(_anchor(utterances, written, uid, "reason.utterance_id", role="customer"))
        said = utterances[uid].get("text") or ""
        reason["text"] = text or said
        reason["chosen"] = text is None or text == said  # the customer's own words, as the call has them
    return reason


def _follow_ups(value: Any, utterances: dict[str, dict[str, Any]], written: bool) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidCorrection("follow_ups: a list (empty: no follow-up), or null for the automatic ones")
    if len(value) > MAX_FOLLOW_UPS:
        raise InvalidCorrection(f"follow_ups: at most {MAX_FOLLOW_UPS}")
    out = []
    for n, f in enumerate(value):
        where = f"follow_ups[{n}]"
        if not isinstance(f, dict):
            raise InvalidCorrection(f'{where}: {{"text": "...", "due": "YYYY-MM-DD" | null}}')
        extra = sorted(set(f) - {"text", "due", "due_text", "utterance_id", "start", "end", "message", "chars",
                                 "corrected"})
        if extra:
            raise InvalidCorrection(f"{where}: unknown field {', '.join(extra)}")
        item: dict[str, Any] = {"text": _text(f.get("text"), f"{where}.text"),
                                "due": _due(f.get("due"), f"{where}.due"),
                                "due_text": _text(f.get("due_text"), f"{where}.due_text", required=False),
                                "utterance_id": None, "start": None, "end": None}
        if f.get("utterance_id"):
            item.update(_anchor(utterances, written, f["utterance_id"], f"{where}.utterance_id"))
        out.append(item)
    return out


def correct(session: Session, user: User, call: Call, fields: dict[str, Any],
            automatic: dict[str, Any] | None) -> ContactCorrection:
    """Keep a correction (a new row; nothing earlier is changed)."""
    row = ContactCorrection(call_id=call.call_id, user_id=user.id, fields=fields, automatic=automatic)
    session.add(row)
    session.flush()
    return row
