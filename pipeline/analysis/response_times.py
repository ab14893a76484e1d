"""Response times of written conversations (e-mail threads, chats) against a policy.

How long the customer waited for the agent, counted in the business hours of a
:class:`BusinessCalendar` (a mail sent on Friday evening and answered on Monday at 09:30 waited
half an hour of business time), and in wall-clock time beside it.

The measures (:func:`response_times`), over the messages in time order:

- **first response**: from the customer's first message to the agent's first real reply. An
  agent's automatic reply (``Message.auto_reply``: out of office, ticket acknowledgement, a
  chat bot's "please wait") is no reply, and system messages ("Anna joined the chat") are
  neither waits nor replies; both are skipped. When the agent writes first (an outbound
  contact), the wait starts at the first customer message after it.
- **responses**: every later wait. A customer message, or a run of customer messages with no
  agent message between them (timed from the first of the run), is answered by the next agent
  message.
- **unanswered**: the customer messages no agent message follows. How long they have waited
  is not known (the conversation as read ends there, not the waiting), so only that they are
  unanswered is reported.
- **reopened**: a customer writes again more than ``reopen_after_s`` (wall clock) after the
  agent's last message, the conversation otherwise being settled (no customer message waiting).
- **breaches**: the measured waits (the first response included) over ``policy_s`` business
  seconds; **gap_breaches**: the later waits (the first response not included) over
  ``gap_policy_s``, when that is given (e.g. 60 s for the first answer of a chat, 120 s for
  each answer after it).

Every wait at exactly the policy is within it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import ConfigError
from pipeline.ingest.written import AGENT, CUSTOMER, SYSTEM, Message

WEEKDAYS = (0, 1, 2, 3, 4)
"""Monday to Friday (``datetime.weekday()`` numbers: 0 = Monday ... 6 = Sunday)."""
ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)
DAY_MINUTES = 24 * 60
DEFAULT_REOPEN_AFTER_S = 7 * 86400.0

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_UTC = timezone.utc


def _utc(t: datetime) -> datetime:
    """``t`` in UTC (a time without a timezone is taken as UTC)."""
    return t.replace(tzinfo=_UTC) if t.tzinfo is None or t.utcoffset() is None else t.astimezone(_UTC)


@dataclass(frozen=True)
class BusinessCalendar:
    """The hours that count: the business days of a timezone, from ``start`` to ``end`` each,
    except the holidays. The default counts whole weekdays in UTC; :meth:`always` counts every
    second. Invalid settings are a :class:`ConfigError` naming the key (``calendar.start``)."""

    timezone: str = "UTC"
    """An IANA time zone name (``Europe/Berlin``): business hours are its local hours, summer
    time included."""
    days: list[int] = field(default_factory=lambda: list(WEEKDAYS))
    """Business days: 0 = Monday ... 6 = Sunday."""
    start: str = "00:00"
    """When the business day starts, ``HH:MM`` local time."""
    end: str = "24:00"
    """When it ends, ``HH:MM`` (``24:00``: midnight at the end of the day); after ``start``."""
    holidays: list[date] = field(default_factory=list)
    """Dates (in the calendar's timezone) that are no business days; ISO text is accepted."""

    SECTION: ClassVar[str] = "calendar"
    """The config section named in errors."""

    def __post_init__(self) -> None:
        key = self.SECTION
        if not isinstance(self.timezone, str) or not self.timezone.strip():
            raise ConfigError(f"{key}.timezone: {self.timezone!r} is not allowed; use an IANA time zone name "
                              "such as UTC or Europe/Berlin")
        try:
            tz = ZoneInfo(self.timezone.strip())
        except (ZoneInfoNotFoundError, ValueError, TypeError) as e:
            raise ConfigError(f"{key}.timezone: {self.timezone!r} is not a known IANA time zone "
                              "(e.g. UTC, Europe/Berlin, America/New_York)") from e
        if isinstance(self.days, (str, bytes)) or not isinstance(self.days, (list, tuple, set, frozenset)):
            raise ConfigError(f"{key}.days: {self.days!r} is not a list of weekday numbers (0 = Monday ... 6 = Sunday)")
        bad = [d for d in self.days if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6]
        if bad or not self.days:
            raise ConfigError(f"{key}.days: {list(self.days)!r} is not allowed; use weekday numbers "
                              "0 = Monday ... 6 = Sunday, at least one")
        start = self._minutes("start", self.start)
        end = self._minutes("end", self.end)
        if start >= DAY_MINUTES:
            raise ConfigError(f"{key}.start: {self.start!r} is not allowed; the day starts before 24:00")
        if start >= end:
            raise ConfigError(f"{key}.start: {self.start!r} is not before {key}.end {self.end!r}")
        if isinstance(self.holidays, (str, bytes)) or not isinstance(self.holidays, (list, tuple, set, frozenset)):
            raise ConfigError(f"{key}.holidays: {self.holidays!r} is not a list of dates (YYYY-MM-DD)")
        holidays: set[date] = set()
        for h in self.holidays:
            if isinstance(h, datetime):
                holidays.add(h.date())
            elif isinstance(h, date):
                holidays.add(h)
            else:
                try:
                    holidays.add(date.fromisoformat(str(h).strip()))
                except ValueError as e:
                    raise ConfigError(f"{key}.holidays: {h!r} is not a date (YYYY-MM-DD)") from e
        # the checked settings, in the forms the computation uses (frozen: set once)
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_days", frozenset(self.days))
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_end", end)
        object.__setattr__(self, "_holidays", frozenset(holidays))
        object.__setattr__(self, "_every_second",
                           len(self._days) == 7 and start == 0 and end == DAY_MINUTES and not holidays)

    def _minutes(self, name: str, value: Any) -> int:
        m = _HHMM.match(value.strip()) if isinstance(value, str) else None
        h, mi = (int(m[1]), int(m[2])) if m else (99, 99)
        if not m or mi > 59 or h > 24 or (h == 24 and mi):
            raise ConfigError(f"{self.SECTION}.{name}: {value!r} is not allowed; use a time of day HH:MM "
                              "(00:00 to 24:00)")
        return h * 60 + mi

    @classmethod
    def always(cls) -> BusinessCalendar:
        """The calendar in which every second counts (business time = wall-clock time)."""
        return cls(timezone="UTC", days=list(ALL_DAYS), start="00:00", end="24:00", holidays=[])

    def _instant(self, day: date, minutes: int) -> datetime:
        """The UTC instant of local time ``minutes`` after midnight of ``day`` (24:00: the next
        midnight). A local time that a clock change skips or repeats is taken as PEP 495's
        ``fold=0`` reads it."""
        if minutes >= DAY_MINUTES:
            day, minutes = day + timedelta(days=1), minutes - DAY_MINUTES
        local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=self._tz)
        return local.astimezone(_UTC)

    def is_business_day(self, day: date) -> bool:
        """Whether a (local) date is a business day: one of :attr:`days`, not a holiday."""
        return day.weekday() in self._days and day not in self._holidays

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds from ``a`` to ``b`` (0 when ``b`` is not after ``a``): the real
        seconds elapsed inside business hours, exact across clock changes (a 09:00-17:00 day is
        8 hours on the day summer time starts too; a whole day then has 23), weekends and
        holidays. One step per local date between them. Times without a timezone are UTC."""
        ua, ub = _utc(a), _utc(b)
        if ub <= ua:
            return 0.0
        if self._every_second:
            return (ub - ua).total_seconds()
        first = ua.astimezone(self._tz).date()
        last = ub.astimezone(self._tz).date()
        total = timedelta(0)
        day = first
        while day <= last:
            if self.is_business_day(day):
                lo = max(self._instant(day, self._start), ua)
                hi = min(self._instant(day, self._end), ub)
                if hi > lo:
                    total += hi - lo  # both in UTC: the real time elapsed
            day += timedelta(days=1)
        return total.total_seconds()


def _check_seconds(name: str, value: Any, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"response_times.{name}: {value!r} is not allowed; use a number of seconds >= 0"
                          + (" or null" if optional else ""))
    return float(value)


def _wait(calendar: BusinessCalendar, asked: tuple[int, datetime], answered: tuple[int, datetime],
          policy_s: float) -> dict[str, Any]:
    business = calendar.seconds_between(asked[1], answered[1])
    return {"customer_message": asked[0], "agent_message": answered[0], "business_s": round(business, 1),
            "wall_s": round((answered[1] - asked[1]).total_seconds(), 1), "within_policy": business <= policy_s,
            "_business": business}


def response_times(messages: list[Message], calendar: BusinessCalendar, policy_s: float,
                   gap_policy_s: float | None = None,
                   reopen_after_s: float = DEFAULT_REOPEN_AFTER_S) -> dict[str, Any]:
    """The response times of one written conversation (see the module's description), as a
    JSON-ready dict (seconds rounded to 0.1 s; message numbers are 1-based positions in
    ``messages``):

    - ``first_response``: ``{customer_message, agent_message, business_s, wall_s,
      within_policy}``, or None (no customer message, or none answered);
    - ``responses``: the later waits, each as the first response, with ``within_gap_policy``
      when ``gap_policy_s`` is given and ``reopened: true`` for the wait of a reopening message;
    - ``slowest``: the longest wait in business seconds (the first response included), or None;
    - ``unanswered``: the numbers of the customer messages no agent message follows;
    - ``back_and_forths``: the customer -> agent exchanges (the waits measured);
    - ``reopened``: ``{count, messages}``;
    - ``breaches``: the waits over ``policy_s``; ``gap_breaches``: the later waits over
      ``gap_policy_s`` (None when it is not given);
    - ``outbound``: the agent wrote first;
    - ``skipped``: ``{system, auto_reply, no_role}`` messages that are neither waits nor replies;
    - ``policy_s``, ``gap_policy_s``, ``reopen_after_s``: the settings used.

    Messages are taken in time order (stably: equal times keep their order in the list).
    Invalid settings are a :class:`ConfigError`.
    """
    policy = _check_seconds("policy_s", policy_s)
    gap_policy = _check_seconds("gap_policy_s", gap_policy_s, optional=True)
    reopen_after = _check_seconds("reopen_after_s", reopen_after_s)
    assert policy is not None and reopen_after is not None
    skipped = {"system": 0, "auto_reply": 0, "no_role": 0}
    events: list[tuple[int, str, datetime]] = []
    for n, m in sorted(enumerate(messages, start=1), key=lambda nm: _utc(nm[1].time)):
        if m.role == SYSTEM:
            skipped["system"] += 1
        elif m.role not in (AGENT, CUSTOMER):
            skipped["no_role"] += 1
        elif m.auto_reply:
            skipped["auto_reply"] += 1
        else:
            events.append((n, m.role, _utc(m.time)))

    waits: list[dict[str, Any]] = []
    reopened: list[int] = []
    asked: tuple[int, datetime] | None = None  # the first customer message of the waiting run
    asked_reopens = False
    waiting: list[int] = []
    last_agent: datetime | None = None
    for n, role, t in events:
        if role == CUSTOMER:
            if asked is None:
                asked = (n, t)
                asked_reopens = last_agent is not None and (t - last_agent).total_seconds() > reopen_after
                if asked_reopens:
                    reopened.append(n)
            waiting.append(n)
            continue
        if asked is not None:
            w = _wait(calendar, asked, (n, t), policy)
            if waits:  # a later wait
                if gap_policy is not None:
                    w["within_gap_policy"] = w["_business"] <= gap_policy
                if asked_reopens:
                    w["reopened"] = True
            waits.append(w)
            asked, asked_reopens, waiting = None, False, []
        last_agent = t

    slowest = 0  # the first of equal waits
    for i, w in enumerate(waits):
        if w["_business"] > waits[slowest]["_business"]:
            slowest = i
    result: dict[str, Any] = {
        "policy_s": round(policy, 1),
        "gap_policy_s": None if gap_policy is None else round(gap_policy, 1),
        "reopen_after_s": round(reopen_after, 1),
        "outbound": bool(events) and events[0][1] == AGENT,
        "first_response": None,
        "responses": [],
        "slowest": None,
        "unanswered": waiting,
        "back_and_forths": len(waits),
        "reopened": {"count": len(reopened), "messages": reopened},
        "breaches": sum(1 for w in waits if w["_business"] > policy),
        "gap_breaches": None if gap_policy is None else sum(1 for w in waits[1:] if w["_business"] > gap_policy),
        "skipped": skipped,
    }
    public = [{k: v for k, v in w.items() if k != "_business"} for w in waits]
    if public:
        result["first_response"] = public[0]
        result["responses"] = public[1:]
        result["slowest"] = dict(public[slowest])
    return result
