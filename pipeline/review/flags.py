"""Moments of a call flagged by a supervisor while it went on (``live_flags``): made on the live
call page (:mod:`pipeline.live.wall`), shown with their time, author and note on the call's
review page once its result is loaded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import LiveFlag, User, utcnow

MAX_NOTE = 2000
"""The longest note of a flag."""


def add_flag(session: Session, user: User, call_id: str, at_s: float, note: str) -> LiveFlag:
    """Flag ``at_s`` seconds into ``call_id`` with ``note`` (flushed; the caller commits)."""
    flag = LiveFlag(call_id=call_id, at_s=round(at_s, 2), note=note, author_id=user.id, created_at=utcnow())
    session.add(flag)
    session.flush()
    return flag


def flags_of(session: Session, call_id: str) -> list[dict[str, Any]]:
    """The call's flags in call-time order: ``{id, at, note, author, created_at}``."""
    q = (select(LiveFlag, User.username).join(User, User.id == LiveFlag.author_id)
         .where(LiveFlag.call_id == call_id).order_by(LiveFlag.at_s, LiveFlag.id))
    return [{"id": f.id, "at": f.at_s, "note": f.note, "author": name, "created_at": f.created_at.isoformat()}
            for f, name in session.execute(q)]
