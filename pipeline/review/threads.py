"""What the call page shows of a written conversation (an e-mail thread or a chat): its messages
and a summary of the thread, from its record.

A written record (pipeline/run/written.py) holds one utterance per message (message n is
utterance ``m{n:03d}``, its ``text`` the message's text as written, PII masked) and a top-level
``messages`` list with each message's number, time, role, the agent's name, subject,
attachments and auto-reply flag. The page needs both joined: :func:`thread_messages` gives each
message with its text. Only the keys listed here are passed on (never an address), each checked
for its type, so a malformed record shows what it can rather than failing the page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.interaction.record import Interaction


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def time_label(iso: str | None) -> str:
    """``2026-11-02T09:15:00+00:00`` as ``2026-11-02 09:15 UTC`` (another offset is written
    after the time, ``+01:00``); text that is not an ISO time as it is, None as ""."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00") if iso.endswith("Z") else iso)
    except ValueError:
        return iso
    offset = t.utcoffset()
    if offset is None:
        return t.strftime("%Y-%m-%d %H:%M")
    if offset == timedelta(0):
        return t.strftime("%Y-%m-%d %H:%M") + " UTC"
    return t.strftime("%Y-%m-%d %H:%M ") + t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]


def size_label(size: int | None) -> str:
    """A file size for people: ``512 B``, ``12.3 KB``, ``1.2 MB`` (1 KB = 1024 bytes)."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{size} B"  # not reached


def duration_label(seconds: float | None) -> str:
    """A wait or a span for people: ``45 s``, ``12 min``, ``3.5 h``, ``2.0 days``."""
    if seconds is None:
        return ""
    s = max(float(seconds), 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _attachments(value: Any) -> list[dict[str, Any]]:
    out = []
    for a in value if isinstance(value, list) else []:
        if not isinstance(a, dict):
            continue
        size = _whole(a.get("size"))
        out.append({"name": _text(a.get("name")) or "(no name)", "size": size, "size_label": size_label(size),
                    "content_type": _text(a.get("content_type"))})
    return out


def thread_messages(record: Interaction) -> list[dict[str, Any]]:
    """The messages of a written record in order, each ``{"n", "utterance_id", "time",
    "time_label", "role", "speaker", "name", "subject", "attachments": [{"name", "size",
    "size_label", "content_type"}], "auto_reply", "signature", "text"}`` (``text``: its
    utterance's text, the text evidence ``chars`` count in). A record without a ``messages``
    list gives one message per utterance."""
    utterances = [u for u in record.utterance_dicts() if isinstance(u, dict)]
    by_id = {u.get("id"): u for u in utterances}
    listed = record.extra.get("messages")
    if not isinstance(listed, list):
        listed = [{"n": n, "utterance_id": u.get("id"), "role": u.get("role")} for n, u in enumerate(utterances, 1)]
    out = []
    for position, m in enumerate(listed, 1):
        if not isinstance(m, dict):
            continue
        n = _whole(m.get("n")) or position
        utterance_id = _text(m.get("utterance_id")) or f"m{n:03d}"
        u = by_id.get(utterance_id) or {}
        time = _text(m.get("time"))
        out.append({
            "n": n, "utterance_id": utterance_id, "time": time, "time_label": time_label(time),
            "role": _text(m.get("role")) or _text(u.get("role")) or "unknown", "speaker": _text(u.get("speaker")),
            "name": _text(m.get("name")), "subject": _text(m.get("subject")),
            "attachments": _attachments(m.get("attachments")), "auto_reply": m.get("auto_reply") is True,
            "signature": _text(m.get("signature")), "text": u.get("text") if isinstance(u.get("text"), str) else "",
        })
    return out


def thread_summary(record: Interaction) -> dict[str, Any]:
    """What the page says of the thread as a whole: ``{"kind", "format", "messages",
    "participants", "started_at", "ended_at", "span_s", "span_label", "response"}``;
    ``response`` (None without response times): ``{"first": {"customer_message",
    "agent_message", "business_s", "wall_s", "within_policy", "label"} or None, "policy_s",
    "policy_label", "breaches", "unanswered"}``."""
    source = record.source
    extra = source.extra
    listed = record.extra.get("messages")
    span = _number(source.duration_s)
    summary: dict[str, Any] = {
        "kind": source.kind, "format": _text(source.format),
        "messages": len(listed) if isinstance(listed, list) else _whole(extra.get("messages")),
        "participants": _whole(extra.get("participants")),
        "started_at": _text(extra.get("started_at")), "ended_at": _text(extra.get("ended_at")),
        "span_s": span, "span_label": duration_label(span), "response": None,
    }
    times = (record.metrics or {}).get("response_times") if isinstance(record.metrics, dict) else None
    if isinstance(times, dict):
        first = times.get("first_response")
        if isinstance(first, dict):
            business = _number(first.get("business_s"))
            first = {"customer_message": _whole(first.get("customer_message")),
                     "agent_message": _whole(first.get("agent_message")), "business_s": business,
                     "wall_s": _number(first.get("wall_s")), "within_policy": first.get("within_policy") is True,
                     "label": duration_label(business)}
        else:
            first = None
        policy = _number(times.get("policy_s"))
        unanswered = times.get("unanswered")
        summary["response"] = {
            "first": first, "policy_s": policy, "policy_label": duration_label(policy),
            "breaches": _whole(times.get("breaches")),
            "unanswered": [n for n in unanswered if _whole(n) is not None] if isinstance(unanswered, list) else [],
        }
    return summary
