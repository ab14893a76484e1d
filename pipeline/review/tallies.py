"""Item tallies per day and agent: what the dashboards' item pass rates add up, kept so a year
of calls is read as a few hundred thousand sums rather than 1.5 million answers.

One row per (day written in ``started_at``, agent, queue, channel, item): how many of the day's
calls of that agent, queue and channel answered the item ``yes`` and how many ``yes`` or ``no``, by the effective
answer (the counted review's where it gave one, else the suggestion), and the item's first
position. The rows of a day and agent are computed again from the calls whenever one of their
calls changes: on load (:mod:`pipeline.review.loader`), on every change of what counts
(:func:`pipeline.review.history.refresh_counted`), and all of them when a database is upgraded
across the migration that added them. A day is the first 10 characters of ``started_at`` (a
call without one has none), so a window of whole days reads the same calls from the tallies as
from the calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal_column, or_, select
from sqlalchemy.orm import Session

from pipeline.review.db import Call, CallItem, ItemTally

KEYS_PER_STATEMENT = 300
"""(day, agent) groups rewritten per statement."""
CALLS_PER_LOOKUP = 500


def _day() -> Any:
    """SQL: the day written in ``started_at`` (its numbers literal, so that PostgreSQL sees the
    same expression in the select list and in GROUP BY)."""
    return func.substr(Call.started_at, literal_column("1"), literal_column("10"))


def _aggregate() -> Any:
    answer = func.coalesce(CallItem.human_answer, CallItem.answer)
    return (select(_day(), Call.agent_id, Call.queue, Call.channel, CallItem.item_id, func.min(CallItem.position),
                   func.sum(case((answer == "yes", 1), else_=0)),
                   func.sum(case((answer.in_(("yes", "no")), 1), else_=0)))
            .join(Call, Call.call_id == CallItem.call_id)
            .group_by(_day(), Call.agent_id, Call.queue, Call.channel, CallItem.item_id))


COLUMNS = ("day", "agent_id", "queue", "channel", "item_id", "position", "yes", "decided")


def rebuild(session: Session) -> None:
    """Every tally computed again from the calls."""
    session.execute(delete(ItemTally))
    session.execute(insert(ItemTally).from_select(list(COLUMNS), _aggregate()))


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def refresh(session: Session, call_ids: Iterable[str]) -> None:
    """The tallies of the (day, agent) groups of ``call_ids`` computed again from their calls
    (call after their rows and counted answers are written)."""
    ids = list(dict.fromkeys(call_ids))
    keys: set[tuple[str | None, str | None]] = set()
    for start in range(0, len(ids), CALLS_PER_LOOKUP):
        keys.update(tuple(row) for row in session.execute(select(_day(), Call.agent_id).where(
            Call.call_id.in_(ids[start:start + CALLS_PER_LOOKUP]))).all())
    ordered = sorted(keys, key=lambda k: (k[0] or "", k[1] or ""))
    for start in range(0, len(ordered), KEYS_PER_STATEMENT):
        chunk = ordered[start:start + KEYS_PER_STATEMENT]
        session.execute(delete(ItemTally).where(or_(*(and_(_same(ItemTally.day, d), _same(ItemTally.agent_id, a))
                                                      for d, a in chunk))))
        session.execute(insert(ItemTally).from_select(list(COLUMNS), _aggregate().where(
            or_(*(and_(_same(_day(), d), _same(Call.agent_id, a)) for d, a in chunk)))))
