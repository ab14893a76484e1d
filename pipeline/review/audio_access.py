"""Which audio file the app may send for a call: the masked copy by default, the original only
where an admin allows it and only under the run's input folders (never the database); and the
audit trail of who heard a call's audio (``audio_access``: each load of a recording, each
listen-in to a call in progress)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import AudioAccess, Call, User, utcnow
from pipeline.review.options import ReviewOptions

REDACTED_AUDIO = "audio_redacted.wav"
"""The masked copy a run writes beside call.json (pipeline/run/call.py)."""
MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".opus": "audio/ogg", ".m4a": "audio/mp4"}


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def database_files(engine: Any) -> set[Path]:
    """The files of a SQLite database (with its journals), which no route may serve."""
    name = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not name:
        return set()
    base = Path(name).resolve()
    return {base} | {base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal")}


def playable_audio(call: Call, options: ReviewOptions, protected: set[Path]) -> Path:
    """The file the audio route may send for ``call``: its masked copy; else, only when
    ``options.allow_original_audio``, the original recording if it is a regular audio file
    under one of the run's input roots. HTTPException (403 or 404, saying why) otherwise."""
    from pipeline.ingest.discover import AUDIO_EXTENSIONS

    calls_dir = (Path(call.out_dir) / "calls").resolve()
    masked = (calls_dir / call.call_id / REDACTED_AUDIO).resolve()
    if masked.is_file() and _within(masked, calls_dir) and masked not in protected:
        return masked
    if not options.allow_original_audio:
        why = ("its text is redacted but the run wrote no masked copy of its audio (run it again with "
               "pii.redact_audio on, the default)") if call.pii_redacted else "its text is not redacted"
        raise HTTPException(403, f"no masked audio for this call: {why}; the original recording is played only "
                                 "when an admin sets review.allow_original_audio")
    roots = [Path(r).resolve() for r in (call.input_roots or [])]
    if not roots:
        raise HTTPException(403, "the run did not record its input folders: load it again with "
                                 "'callqa db load' after a run of this version")
    if not call.audio_path:
        raise HTTPException(404, "the run recorded no recording for this call")
    path = Path(call.audio_path).resolve()
    if path in protected or path.suffix.lower() not in AUDIO_EXTENSIONS or not any(_within(path, r) for r in roots):
        raise HTTPException(403, "the call's recording is not an audio file under the run's input folders")
    if not path.is_file():
        raise HTTPException(404, "the recording is not where the run found it")
    return path


def is_playback_start(range_header: str | None) -> bool:
    """Whether an audio request starts a playback (no range, or a range from byte 0) rather than
    continuing or seeking one: the audit trail keeps one row per playback, not one per range."""
    if not range_header:
        return True
    return range_header.replace(" ", "").lower().startswith("bytes=0-")


def record_access(session: Session, user_id: int, call_id: str, kind: str, detail: str,
                  client: str | None) -> AudioAccess:
    """Add a row to the audit trail (committed by the caller)."""
    row = AudioAccess(user_id=user_id, call_id=call_id, kind=kind, detail=detail, client=(client or "")[:100] or None,
                      at=utcnow())
    session.add(row)
    session.flush()
    return row


def end_access(session: Session, access_id: int, seconds: float, detail: str) -> None:
    """A listen-in ended: when, the seconds of call audio relayed, and what was sent."""
    row = session.get(AudioAccess, access_id)
    if row is not None:
        row.ended_at, row.seconds, row.detail = utcnow(), round(seconds, 2), detail


def access_trail(session: Session, call_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest rows of the audit trail (of one call), newest first."""
    q = select(AudioAccess, User.username).join(User, User.id == AudioAccess.user_id)
    if call_id:
        q = q.where(AudioAccess.call_id == call_id)
    q = q.order_by(AudioAccess.at.desc(), AudioAccess.id.desc()).limit(limit)
    return [{"id": a.id, "user": name, "call_id": a.call_id, "kind": a.kind, "detail": a.detail, "client": a.client,
             "at": a.at.isoformat(), "ended_at": a.ended_at.isoformat() if a.ended_at else None, "seconds": a.seconds}
            for a, name in session.execute(q)]
