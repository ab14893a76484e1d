"""Response times of written conversations: the business calendar (weekends, holidays, summer
time) and the waits of e-mail threads and chats against a policy."""

from __future__ import annotations

import json
import pickle
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.analysis.response_times import BusinessCalendar, response_times
from pipeline.errors import ConfigError
from pipeline.ingest.written import Message

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0


def at(tz: ZoneInfo | timezone, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[misc]


# --------------------------------------------------------------------------- the calendar


def test_weekend_is_not_business_time():
    cal = BusinessCalendar(start="09:00", end="17:00")  # UTC, Mon-Fri
    friday_4pm, monday_10am = at(UTC, 2026, 3, 6, 16), at(UTC, 2026, 3, 9, 10)
    assert cal.seconds_between(friday_4pm, monday_10am) == 2 * HOUR
    assert cal.seconds_between(at(UTC, 2026, 3, 7, 10), at(UTC, 2026, 3, 8, 20)) == 0.0  # Saturday to Sunday
    assert cal.seconds_between(at(UTC, 2026, 3, 9, 9), at(UTC, 2026, 3, 16, 9)) == 5 * 8 * HOUR  # a week
    assert cal.seconds_between(at(UTC, 2026, 3, 9, 8), at(UTC, 2026, 3, 9, 18)) == 8 * HOUR
    assert cal.seconds_between(at(UTC, 2026, 3, 9, 11), at(UTC, 2026, 3, 9, 10)) == 0.0  # b before a
    # whole weekdays (the default hours)
    assert BusinessCalendar().seconds_between(friday_4pm, monday_10am) == 8 * HOUR + 10 * HOUR


def test_holiday_is_not_business_time():
    xmas_eve_4pm, monday_10am = at(UTC, 2026, 12, 24, 16), at(UTC, 2026, 12, 28, 10)
    plain = BusinessCalendar(start="09:00", end="17:00")
    assert plain.seconds_between(xmas_eve_4pm, monday_10am) == (1 + 8 + 1) * HOUR
    for holidays in (["2026-12-25"], [date(2026, 12, 25)]):
        cal = BusinessCalendar(start="09:00", end="17:00", holidays=holidays)
        assert cal.seconds_between(xmas_eve_4pm, monday_10am) == 2 * HOUR
        assert not cal.is_business_day(date(2026, 12, 25)) and cal.is_business_day(date(2026, 12, 24))


def test_summer_time_in_berlin():
    cal = BusinessCalendar(timezone="Europe/Berlin", start="09:00", end="17:00")
    # Friday 16:00 CET to Monday 10:00 CEST, the clocks changed on Sunday 29 March 2026
    a, b = at(BERLIN, 2026, 3, 27, 16), at(BERLIN, 2026, 3, 30, 10)
    assert cal.seconds_between(a, b) == 2 * HOUR
    assert (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() == 65 * HOUR
    # the same instants given in UTC: the calendar's local hours still decide
    assert cal.seconds_between(a.astimezone(UTC), b.astimezone(UTC)) == 2 * HOUR
    # whole Sundays: 23 hours in spring, 25 in autumn
    sundays = BusinessCalendar(timezone="Europe/Berlin", days=[6])
    assert sundays.seconds_between(at(BERLIN, 2026, 3, 27), at(BERLIN, 2026, 3, 31)) == 23 * HOUR
    assert sundays.seconds_between(at(BERLIN, 2026, 10, 23), at(BERLIN, 2026, 10, 27)) == 25 * HOUR
    # every day 09:00-17:00 is eight hours on the day of the change too
    daily = BusinessCalendar(timezone="Europe/Berlin", days=list(range(7)), start="09:00", end="17:00")
    assert daily.seconds_between(at(BERLIN, 2026, 3, 29, 0), at(BERLIN, 2026, 3, 30, 0)) == 8 * HOUR


def test_summer_time_in_new_york():
    # business hours around the change itself: 02:00-03:00 does not exist on 8 March 2026
    night = BusinessCalendar(timezone="America/New_York", days=list(range(7)), start="01:00", end="04:00")
    assert night.seconds_between(at(NEW_YORK, 2026, 3, 8, 0), at(NEW_YORK, 2026, 3, 8, 12)) == 2 * HOUR
    # ... and 01:00-02:00 comes twice on 1 November 2026
    late = BusinessCalendar(timezone="America/New_York", days=list(range(7)), start="00:00", end="03:00")
    assert late.seconds_between(at(NEW_YORK, 2026, 11, 1, 0), at(NEW_YORK, 2026, 11, 1, 12)) == 4 * HOUR
    office = BusinessCalendar(timezone="America/New_York", start="09:00", end="17:00")
    # Friday 6 March 16:30 EST to Monday 9 March 09:45 EDT
    assert office.seconds_between(at(NEW_YORK, 2026, 3, 6, 16, 30), at(NEW_YORK, 2026, 3, 9, 9, 45)) == 1.25 * HOUR


def test_always_counts_every_second():
    cal = BusinessCalendar.always()
    a = at(UTC, 2026, 3, 7, 23, 59, 30)  # a Saturday night
    assert cal.seconds_between(a, a + timedelta(seconds=45.5)) == 45.5
    assert cal.seconds_between(a, a + timedelta(days=400)) == 400 * 86400
    assert cal.seconds_between(a + timedelta(seconds=1), a) == 0.0


def test_long_spans_are_fast_and_the_calendar_pickles():
    cal = BusinessCalendar(timezone="Europe/Berlin", start="09:00", end="17:00", holidays=["2026-12-25"])
    a = at(BERLIN, 2026, 1, 5, 9)
    assert cal.seconds_between(a, a + timedelta(days=3 * 365)) > 0
    copy = pickle.loads(pickle.dumps(cal))
    assert copy == cal and copy.seconds_between(a, a + timedelta(days=7)) == 5 * 8 * HOUR


@pytest.mark.parametrize("settings, key", [
    ({"timezone": "Mars/Olympus_Mons"}, "calendar.timezone"),
    ({"timezone": ""}, "calendar.timezone"),
    ({"start": "17:00", "end": "09:00"}, "calendar.start"),
    ({"start": "09:00", "end": "09:00"}, "calendar.start"),
    ({"start": "9am"}, "calendar.start"),
    ({"end": "24:30"}, "calendar.end"),
    ({"start": "24:00"}, "calendar.start"),
    ({"days": [7]}, "calendar.days"),
    ({"days": []}, "calendar.days"),
    ({"days": ["mon"]}, "calendar.days"),
    ({"holidays": ["25 December"]}, "calendar.holidays"),
])
def test_invalid_calendar_is_a_config_error_naming_the_key(settings: dict, key: str):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        BusinessCalendar(**settings)


# --------------------------------------------------------------------------- response times


def m(t: datetime, role: str, text: str = "...", *, auto: bool = False, sender: str | None = None) -> Message:
    return Message(time=t, sender=sender or role, text=text, role=role, auto_reply=auto)


def test_email_thread_friday_evening_answered_monday():
    cal = BusinessCalendar(timezone="Europe/Berlin", start="09:00", end="17:00")
    thread = [
        m(at(BERLIN, 2026, 3, 6, 18, 30), "customer", "My invoice is wrong."),                   # 1 Friday evening
        m(at(BERLIN, 2026, 3, 6, 18, 30, 5), "agent", "We received your e-mail.", auto=True),    # 2 auto-reply
        m(at(BERLIN, 2026, 3, 9, 10, 15), "agent", "Sorry, here is the corrected invoice."),     # 3 Monday
        m(at(BERLIN, 2026, 3, 9, 11), "customer", "Thanks, but the date is wrong too."),         # 4
        m(at(BERLIN, 2026, 3, 9, 11, 20), "customer", "And the address."),                       # 5 same wait
        m(at(BERLIN, 2026, 3, 10, 9, 30), "agent", "Both fixed."),                               # 6 Tuesday
        m(at(BERLIN, 2026, 3, 10, 9, 31), "system", "Ticket closed."),                           # 7
    ]
    r = response_times(thread, cal, policy_s=8 * HOUR, gap_policy_s=4 * HOUR)
    assert r["first_response"] == {"customer_message": 1, "agent_message": 3, "business_s": 4500.0,
                                   "wall_s": 229500.0, "within_policy": True}
    assert r["responses"] == [{"customer_message": 4, "agent_message": 6, "business_s": 23400.0, "wall_s": 81000.0,
                               "within_policy": True, "within_gap_policy": False}]
    assert r["slowest"]["customer_message"] == 4
    assert r["breaches"] == 0 and r["gap_breaches"] == 1
    assert r["unanswered"] == [] and r["back_and_forths"] == 2 and r["outbound"] is False
    assert r["reopened"] == {"count": 0, "messages": []}
    assert r["skipped"] == {"system": 1, "auto_reply": 1, "no_role": 0}
    assert json.loads(json.dumps(r)) == r


def test_chat_in_seconds_with_bot_and_system_messages():
    t0 = at(UTC, 2026, 3, 2, 10)

    def s(sec: float) -> datetime:
        return t0 + timedelta(seconds=sec)

    chat = [
        m(s(0), "customer", "Hi"),                                      # 1
        m(s(1), "system", "Anna joined the chat"),                      # 2
        m(s(2), "agent", "Thanks for waiting!", auto=True),             # 3 bot
        m(s(45.04), "agent", "Hi, I'm Anna"),                           # 4
        m(s(60), "customer", "My parcel..."),                           # 5
        m(s(90), "customer", "...has not arrived"),                     # 6
        m(s(190), "agent", "Let me check"),                             # 7
        m(s(200), "customer", "Hello?"),                                # 8 unanswered
    ]
    r = response_times(chat, BusinessCalendar.always(), policy_s=60, gap_policy_s=120)
    assert r["first_response"] == {"customer_message": 1, "agent_message": 4, "business_s": 45.0, "wall_s": 45.0,
                                   "within_policy": True}
    assert r["responses"] == [{"customer_message": 5, "agent_message": 7, "business_s": 130.0, "wall_s": 130.0,
                               "within_policy": False, "within_gap_policy": False}]
    assert r["slowest"] == {**r["responses"][0]}
    assert r["breaches"] == 1 and r["gap_breaches"] == 1
    assert r["unanswered"] == [8] and r["back_and_forths"] == 2
    assert r["skipped"] == {"system": 1, "auto_reply": 1, "no_role": 0}
    # without a gap policy: no gap figures
    r = response_times(chat, BusinessCalendar.always(), policy_s=200)
    assert r["gap_breaches"] is None and "within_gap_policy" not in r["responses"][0] and r["breaches"] == 0


def test_outbound_thread_waits_from_the_customers_first_message():
    t0 = at(UTC, 2026, 3, 2, 9)
    thread = [m(t0, "agent", "Your contract ends soon."), m(t0 + timedelta(minutes=5), "agent", "Any questions?"),
              m(t0 + timedelta(hours=1), "customer", "Yes, the price?"),
              m(t0 + timedelta(hours=1, minutes=10), "agent", "It stays the same.")]
    r = response_times(thread, BusinessCalendar.always(), policy_s=3600)
    assert r["outbound"] is True
    assert r["first_response"]["customer_message"] == 3 and r["first_response"]["agent_message"] == 4
    assert r["first_response"]["wall_s"] == 600.0 and r["responses"] == [] and r["back_and_forths"] == 1


def test_reopened_thread_and_unanswered_run():
    cal = BusinessCalendar()  # whole weekdays, UTC
    d0 = at(UTC, 2026, 3, 2, 10)  # Monday
    thread = [
        m(d0, "customer", "Broken kettle"),                                       # 1
        m(d0 + timedelta(minutes=30), "agent", "A new one is on its way"),        # 2
        m(d0 + timedelta(days=10), "customer", "The new one is broken too"),     # 3 reopens (10 days later)
        m(d0 + timedelta(days=10, hours=1), "agent", "Sorry! A refund then"),     # 4
        m(d0 + timedelta(days=10, hours=2), "customer", "Where is it?"),          # 5
        m(d0 + timedelta(days=20), "customer", "Still nothing"),                  # 6 waiting, not a reopening
    ]
    r = response_times(thread, cal, policy_s=8 * HOUR)
    assert r["reopened"] == {"count": 1, "messages": [3]}
    assert r["responses"][0]["customer_message"] == 3 and r["responses"][0]["reopened"] is True
    assert "reopened" not in r["first_response"]
    assert r["unanswered"] == [5, 6] and r["back_and_forths"] == 2
    # a shorter reopening threshold also counts message 5 (an hour after the agent)
    assert response_times(thread, cal, policy_s=8 * HOUR, reopen_after_s=1800)["reopened"]["messages"] == [3, 5]


def test_no_customer_message_and_nothing_answered():
    t0 = at(UTC, 2026, 3, 2, 9)
    r = response_times([m(t0, "agent", "Hello"), m(t0, "system", "closed")], BusinessCalendar.always(), 60)
    assert r["first_response"] is None and r["responses"] == [] and r["slowest"] is None
    assert r["unanswered"] == [] and r["back_and_forths"] == 0 and r["breaches"] == 0
    r = response_times([m(t0, "customer", "Hello?")], BusinessCalendar.always(), 60)
    assert r["first_response"] is None and r["unanswered"] == [1]
    assert response_times([], BusinessCalendar.always(), 60)["first_response"] is None


def test_messages_are_taken_in_time_order_and_numbered_as_given():
    t0 = at(UTC, 2026, 3, 2, 9)
    thread = [m(t0 + timedelta(seconds=30), "agent", "Hi"), m(t0, "customer", "Hello"),
              Message(time=t0 + timedelta(seconds=40), sender="x", text="?", role=None)]
    r = response_times(thread, BusinessCalendar.always(), 60)
    assert r["first_response"]["customer_message"] == 2 and r["first_response"]["agent_message"] == 1
    assert r["skipped"]["no_role"] == 1 and r["outbound"] is False


@pytest.mark.parametrize("kwargs, key", [
    ({"policy_s": -1}, "policy_s"), ({"policy_s": 60, "gap_policy_s": "fast"}, "gap_policy_s"),
    ({"policy_s": 60, "reopen_after_s": None}, "reopen_after_s"),
])
def test_invalid_policy_is_a_config_error(kwargs: dict, key: str):
    with pytest.raises(ConfigError, match=key):
        response_times([], BusinessCalendar.always(), **kwargs)
