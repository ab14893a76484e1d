"""Written channels in the analysis stage: their options (the ``channels`` section) and the
measures of an e-mail thread or a chat that replace a call's timing metrics: messages per
role, and response times against the channel's policy in business hours
(pipeline/analysis/response_times.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import check_options
from pipeline.interaction.record import CHAT, EMAIL

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class BusinessHoursOptions:
    """The calendar response times are counted in (``channels.business_hours``)."""

    timezone: str = "UTC"
    """IANA time zone of the opening hours (e.g. Europe/Berlin)."""
    days: list[str] = field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    """Days the team answers."""
    start: str = "00:00"
    """Opening time on those days (HH:MM) ..."""
    end: str = "24:00"
    """... and closing time (HH:MM; 24:00 = midnight at the end of the day)."""
    holidays: list[str] = field(default_factory=list)
    """Dates (YYYY-MM-DD) that do not count."""


@dataclass
class EmailOptions:
    """E-mail threads (``channels.email``)."""

    agent_domains: list[str] = field(default_factory=list)
    """Mail domains the agents write from (a sub-domain counts too); with ``agent_addresses``
    they decide roles. Empty: roles from who answers whom (the thread's starter is the
    customer)."""
    agent_addresses: list[str] = field(default_factory=list)
    """Single addresses that are agents (a shared support mailbox on another domain)."""
    response_s: float = 86400.0
    """Policy: every response (the first too) within this many seconds of the calendar."""
    business_hours: bool = True
    """Count response times in ``channels.business_hours`` (false: every second counts)."""
    reopen_after_s: float = 604800.0
    """A customer writing again this long after the agent's last message reopens the thread."""
    scorecard: str | None = None
    """The template for e-mail; null: configs/scorecards/email_support.yaml."""


@dataclass
class ChatOptions:
    """Chats (``channels.chat``)."""

    response_s: float = 60.0
    """Policy: the agent's first response within this many seconds."""
    gap_s: float = 120.0
    """No customer message waits longer than this for the agent's next message."""
    business_hours: bool = False
    """Count response times in ``channels.business_hours`` (false: every second counts)."""
    reopen_after_s: float = 86400.0
    """A customer writing again this long after the agent's last message reopens the chat."""
    scorecard: str | None = None
    """The template for chats; null: configs/scorecards/chat_support.yaml."""


@dataclass
class ChannelOptions:
    """Written channels (the ``channels`` section)."""

    email: EmailOptions = field(default_factory=EmailOptions)
    chat: ChatOptions = field(default_factory=ChatOptions)
    business_hours: BusinessHoursOptions = field(default_factory=BusinessHoursOptions)


def _hhmm(text: str, allow_24: bool) -> bool:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        return False
    h, m = int(parts[0]), int(parts[1])
    return (0 <= h <= 23 and 0 <= m <= 59) or (allow_24 and h == 24 and m == 0)


def validate(options: ChannelOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    hours = options.business_hours
    try:
        ZoneInfo(hours.timezone)
        known_zone = True
    except (ZoneInfoNotFoundError, ValueError):
        known_zone = False

    def is_date(text: str) -> bool:
        try:
            dt.date.fromisoformat(text)
            return True
        except ValueError:
            return False

    check_options("channels.business_hours", hours, [
        (known_zone, "timezone", "an IANA time zone such as UTC or Europe/Berlin"),
        (bool(hours.days) and all(d in DAY_NAMES for d in hours.days), "days", "a list of " + ", ".join(DAY_NAMES)),
        (_hhmm(hours.start, False), "start", "a time HH:MM"),
        (_hhmm(hours.end, True) and hours.end > hours.start, "end", "a time HH:MM after start (24:00 allowed)"),
        (all(is_date(d) for d in hours.holidays), "holidays", "a list of dates YYYY-MM-DD"),
    ])
    for name, opts in ((EMAIL, options.email), (CHAT, options.chat)):
        checks = [
            (opts.response_s > 0, "response_s", "seconds > 0"),
            (opts.reopen_after_s > 0, "reopen_after_s", "seconds > 0"),
        ]
        if isinstance(opts, ChatOptions):
            checks.append((opts.gap_s > 0, "gap_s", "seconds > 0"))
        else:
            checks.append((all("@" not in d and "." in d for d in opts.agent_domains), "agent_domains",
                           "mail domains such as example.com (no @)"))
            checks.append((all("@" in a for a in opts.agent_addresses), "agent_addresses", "e-mail addresses"))
        check_options(f"channels.{name}", opts, checks)


def calendar(options: ChannelOptions, kind: str) -> Any:
    """The BusinessCalendar the response times of ``kind`` are counted in."""
    from pipeline.analysis.response_times import BusinessCalendar

    opts = options.email if kind == EMAIL else options.chat
    if not opts.business_hours:
        return BusinessCalendar.always()
    import datetime as dt

    hours = options.business_hours
    return BusinessCalendar(timezone=hours.timezone, days=[DAY_NAMES.index(d) for d in hours.days],
                            start=hours.start, end=hours.end,
                            holidays=[dt.date.fromisoformat(d) for d in hours.holidays])


def policy(options: ChannelOptions, kind: str) -> tuple[float, float | None, float]:
    """(response policy, gap policy or None, reopen-after) in seconds for ``kind``."""
    if kind == EMAIL:
        return options.email.response_s, options.email.response_s, options.email.reopen_after_s
    return options.chat.response_s, options.chat.gap_s, options.chat.reopen_after_s


def written_metrics(messages: list[Any], kind: str, options: ChannelOptions) -> dict[str, Any]:
    """The ``metrics`` block of a written conversation: messages per role, and response times
    against the channel's policy (pipeline/analysis/response_times.py)."""
    from pipeline.analysis.response_times import response_times

    response_s, gap_s, reopen_s = policy(options, kind)
    counts: dict[str, int] = {}
    for m in messages:
        role = "auto_reply" if m.auto_reply else (m.role or "unknown")
        counts[role] = counts.get(role, 0) + 1
    span = (messages[-1].time - messages[0].time).total_seconds() if messages else 0.0
    return {
        "channel": kind,
        "messages": len(messages),
        "messages_by_role": counts,
        "span_s": round(span, 1),
        "policy": {"response_s": response_s, "gap_s": gap_s, "business_hours": (
            options.email if kind == EMAIL else options.chat).business_hours},
        "response_times": response_times(messages, calendar(options, kind), response_s, gap_s, reopen_s),
    }
