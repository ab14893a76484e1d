"""Log-in throttling and temporary lockout, kept in the review database (``login_throttle``) so
that every server process over one database shares it.

Failures are counted per user name (``user:NAME``, whether the name exists or not, so a lockout
says nothing about which names exist) and per client address (``addr:IP``) over a window of
``login_window_s``; reaching ``login_max_failures_account`` or ``login_max_failures_address``
locks that name or address for ``login_lockout_s`` (:class:`~pipeline.review.options.ReviewOptions`).
While locked, a log-in is refused before its password is checked, the right one too. A
successful log-in clears its name's count (not the address's: one good account must not
reset an attacker's count). Counters are changed with single UPDATE statements, so two
processes failing at once both count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.review.db import LoginThrottle, utcnow
from pipeline.review.options import ReviewOptions
from pipeline.review.users import USERNAME


@dataclass(frozen=True)
class LoginKeys:
    """The two counters a log-in attempt touches."""

    account: str
    address: str


def keys_for(username: str, address: str | None) -> LoginKeys:
    """The counters for ``username`` from ``address``; names that cannot exist share one."""
    name = username if USERNAME.match(username) else "(malformed)"
    return LoginKeys(account=f"user:{name}", address=f"addr:{(address or 'unknown')[:150]}")


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def locked(session: Session, keys: LoginKeys, now: datetime | None = None) -> bool:
    """Whether the name or the address is locked now."""
    now = now or utcnow()
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_((keys.account, keys.address))))
    return any(r.locked_until is not None and _aware(r.locked_until) > now for r in rows)


def record_failure(session: Session, keys: LoginKeys, options: ReviewOptions, now: datetime | None = None) -> bool:
    """Count a failed log-in against the name and the address; True when this failure locked
    either. The caller commits."""
    now = now or utcnow()
    window_start = now - timedelta(seconds=options.login_window_s)
    session.execute(delete(LoginThrottle).where(  # forget what is over
        LoginThrottle.window_start < window_start,
        or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now)))
    now_locked = False
    for key, limit in ((keys.account, options.login_max_failures_account),
                       (keys.address, options.login_max_failures_address)):
        row = _count(session, key, window_start, now)
        if row.failures >= limit:
            row.failures, row.window_start = 0, now
            row.locked_until = now + timedelta(seconds=options.login_lockout_s)
            now_locked = True
    session.flush()
    return now_locked


def _count(session: Session, key: str, window_start: datetime, now: datetime) -> LoginThrottle:
    """One more failure for ``key`` (a new window when the old one is over), in one statement."""
    expired = LoginThrottle.window_start < window_start
    bump = (update(LoginThrottle).where(LoginThrottle.key == key)
            .values(failures=case((expired, 1), else_=LoginThrottle.failures + 1),
                    window_start=case((expired, now), else_=LoginThrottle.window_start))
            .execution_options(synchronize_session=False))
    if session.execute(bump).rowcount == 0:
        try:
            with session.begin_nested():
                session.add(LoginThrottle(key=key, failures=1, window_start=now, locked_until=None))
        except IntegrityError:  # another process counted the first failure at the same moment
            session.execute(bump)
    return session.execute(select(LoginThrottle).where(LoginThrottle.key == key)
                           .execution_options(populate_existing=True)).scalar_one()


def record_success(session: Session, keys: LoginKeys) -> None:
    """A successful log-in clears the name's failures (the caller commits)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys.account))
