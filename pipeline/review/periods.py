"""The time window a list or dashboard shows: the last 30 days by default, a picked period, or
dates given by hand.

"The last N days" ends with the day of the newest call in the database (the night's run), not
with the clock: the same database shows the same window whenever it is opened, and an archive
loaded later still opens on its latest month. Days are compared as the text of ``started_at``
(its date as written, no time-zone conversion), the way every filter of the app compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.review.db import Call

PERIODS = {"30d": 30, "90d": 90, "365d": 365, "all": None}
"""Period choices: the last so many days (with calls), or all of them."""
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True)
class Window:
    period: str
    """One of :data:`PERIODS`, or ``custom`` (dates given)."""
    start: str | None
    """First day (YYYY-MM-DD), None: from the first call."""
    end: str | None
    """Day after the last (exclusive), None: to the last call."""

    @property
    def label(self) -> str:
        if self.start and self.end:
            last = (date.fromisoformat(self.end) - timedelta(days=1)).isoformat()
            return f"{self.start} to {last}"
        if self.start:
            return f"from {self.start}"
        return f"before {self.end}" if self.end else "all dates"

    @property
    def last_day(self) -> str | None:
        """The last day included (YYYY-MM-DD), the inclusive form of ``end``."""
        return (date.fromisoformat(self.end) - timedelta(days=1)).isoformat() if self.end else None

    def to_dict(self) -> dict[str, str | None]:
        return {"period": self.period, "start": self.start, "end": self.end, "last_day": self.last_day,
                "label": self.label}


def _day(text: str, name: str) -> str:
    from pipeline.errors import ConfigError

    try:
        return date.fromisoformat(text[:10]).isoformat() if len(text) >= 10 else date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"{name}: a date as YYYY-MM-DD, not {text!r}") from None


def between(first: str | None, last: str | None) -> Window:
    """The window from day ``first`` to day ``last``, both included (either optional).
    ConfigError for a date that is not one."""
    end = (date.fromisoformat(_day(last, "date_to")) + timedelta(days=1)).isoformat() if last else None
    return Window("custom", _day(first, "date_from") if first else None, end)


def newest_day(session: Session) -> date | None:
    """The date written in the newest call's ``started_at`` (None: no dated call)."""
    newest = session.scalar(select(func.max(Call.started_at)).where(Call.started_at.is_not(None)))
    try:
        return date.fromisoformat(newest[:10]) if newest else None
    except ValueError:
        return None


def resolve(session: Session, period: str | None, start: str | None = None, end: str | None = None,
            default: str = DEFAULT_PERIOD) -> Window:
    """The window of a request: ``start``/``end`` (YYYY-MM-DD, end exclusive) when either is
    given, else ``period`` (or ``default``) counted back from the newest call's day.
    ConfigError for an unknown period or a date that is not one."""
    from pipeline.errors import ConfigError

    if start or end:
        return Window("custom", _day(start, "start") if start else None, _day(end, "end") if end else None)
    period = period or default
    if period not in PERIODS:
        raise ConfigError(f"period: one of {', '.join(PERIODS)}, not {period!r}")
    days = PERIODS[period]
    last = newest_day(session) if days else None
    if last is None:
        return Window(period, None, None)
    stop = last + timedelta(days=1)
    return Window(period, (stop - timedelta(days=days)).isoformat(), stop.isoformat())
