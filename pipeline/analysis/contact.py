"""The interaction documented (the ``contact`` block of the record): why the customer made
contact, what the agent did, the outcome, follow-ups promised, products and accounts mentioned.
Extractive and evidence-backed: every text is a quote of the interaction (masked as the
transcript is), with its time or message.

How each part is found (``contact_block``; the units, their embeddings, roles and sentiment
are the ones the scorecard's detectors use, ``CallContext``):

- **reason**: among the customer's sentences in the first part of the interaction (their first
  turns), the one that best states why they got in touch: cosine similarity of its sentence
  embedding to prototypes of "stating why I contact you" (problem, request, question), minus
  the similarity to greetings, self-identification and small talk, with structural cues: a
  first-person need, problem or question helps; an answer to the agent's verification question
  (account number, date of birth, address), a bare name or greeting, a very short sentence and
  a late turn count against. ``confidence`` grows with the winning score and its margin.
- **actions**: the agent's sentences that say what they did or are doing (first person, or the
  account's state after an action), each given the kind whose prototypes it is most similar to.
- **outcome**: the last part of the interaction classified by similarity to prototypes of each
  outcome, with cues: an agent's transfer or escalation statement, an agent's promise of later
  action with a time (a follow-up) unless the customer confirms it is sorted, the customer's
  closing sentiment (negative: unresolved). ``confidence`` from the margin between the best two.
- **follow_ups**: the agent's commitments of later action ("I'll send", "we will call you
  back", "you'll receive ... within 3 working days"), each with its due date resolved by
  ``parse_due`` against the interaction's start (a written message: its own time).
- **mentions**: products (spaCy PRODUCT / ORG / WORK_OF_ART entities that are not the company,
  and the configured ``contact.products`` names, case-insensitive) and account or card numbers
  (PII spans, as their masked tokens) with counts and first time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np


@dataclass
class ContactOptions:
    """The ``contact`` section."""

    enabled: bool = True
    """Write the contact block (reason, actions, outcome, follow-ups, mentions)."""
    products: list[str] = field(default_factory=list)
    """Product, plan and service names to find as mentions (beside the ones found by the
    language model), e.g. [Fibre 500, Premium Cover]."""


OUTCOMES = ("resolved", "follow_up", "escalated", "transferred", "unresolved")
ACTION_KINDS = ("verified_identity", "looked_up", "explained", "changed", "refunded", "sent", "scheduled",
                "transferred", "escalated", "other")
ACCOUNT_TYPES = ("ACCOUNT_NUMBER", "CREDIT_CARD")
PRODUCT_LABELS = ("PRODUCT", "ORG", "WORK_OF_ART")

# -- prototypes (sentence embeddings: meaning, not wording) --------------------------------------

REASON_PROTOTYPES = (
    "I'm calling because I have a problem with my bill.",
    "I'm writing to ask about a charge on my account.",
    "I need help with my order, it hasn't arrived.",
    "I would like to cancel my subscription.",
    "My internet connection keeps dropping and it isn't working.",
    "I want to change my plan.",
    "I've been charged twice and I want a refund.",
    "I can't log in to my account.",
    "Could you tell me why my payment was declined?",
    "I'd like to know how to set up this service.",
    "I received a letter saying my claim was rejected and I don't understand why.",
    "I'm moving house and need to update my address.",
    "The product I bought is broken and I'd like to return it.",
)
NOT_REASON_PROTOTYPES = (
    "Hello, good morning.",
    "Hi, thanks.",
    "My name is John Smith.",
    "Yes, that's right.",
    "It's four five six seven.",
    "My date of birth is the third of May.",
    "The first line of my address is twelve High Street.",
    "Thank you very much, that's great.",
    "Okay.",
    "Kind regards.",
)
VERIFY_PROTOTYPES = (
    "Could you please confirm your account number?",
    "Can I take your date of birth, please?",
    "And the first line of your address?",
    "Can I have your full name, please?",
    "What's the postcode on the account?",
    "Can you confirm the last four digits of the card?",
)

ACTION_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "verified_identity": ("Thank you, I've verified your identity.", "Thanks for confirming, you're verified.",
                          "Those details match, thank you for confirming."),
    "looked_up": ("Let me check your account.", "I can see your last payment on the system.",
                  "I'm looking at your account now.", "I've checked the order history."),
    "explained": ("The reason for this is that your last reading was estimated.",
                  "This happened because the payment was made after the due date.",
                  "That charge is the annual fee for the card.",
                  "The way it works is that the plan renews each month."),
    "changed": ("I've updated your address on the account.", "I've corrected the bill.",
                "I've cancelled the subscription for you.", "I've blocked the card.", "I've reset your password.",
                "I've changed your plan."),
    "refunded": ("I've refunded the charge to your card.", "I've applied a credit to your account.",
                 "The refund has been processed.", "I've waived the late fee."),
    "sent": ("I've sent you an email with the details.", "I'll send you a confirmation by text.",
             "A new card has been sent out to you.", "I've emailed you the form."),
    "scheduled": ("I've booked an engineer visit for Thursday.", "I've scheduled a callback for tomorrow morning.",
                  "Your appointment is booked for next week."),
    "transferred": ("I'm transferring you to our billing team now.", "I'll put you through to the right department.",
                    "Let me connect you with a specialist."),
    "escalated": ("I've escalated this to my supervisor.", "I've raised a complaint with the team.",
                  "I'm referring this to our specialist team to investigate."),
}
OUTCOME_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "resolved": ("That's sorted now, thank you.", "Great, that fixed it.", "Perfect, that's everything I needed.",
                 "It's working now, thanks.", "That's been done and you're all set.",
                 "Oh, that's a relief, thank you so much."),
    "follow_up": ("We'll call you back within two working days with an update.",
                  "I'll look into it and get back to you by Friday.",
                  "You'll receive an email once the investigation is complete.",
                  "Someone from the team will contact you tomorrow."),
    "escalated": ("I've escalated this to my manager, who will review it.",
                  "I've raised this with our complaints team.", "I'll pass this on to a supervisor."),
    "transferred": ("I'm transferring you to the right team now, please hold.",
                    "I'll put you through to the technical department.", "Let me connect you with our sales team."),
    "unresolved": ("That doesn't help me at all.", "This still isn't fixed and I'm not happy.",
                   "I'm sorry, there's nothing more I can do.", "So you can't do anything about it?",
                   "I'll take my business elsewhere then."),
}
COMMITMENT_PROTOTYPES = (
    "I'll send you an email with the details.",
    "We will call you back tomorrow.",
    "You'll receive a confirmation within three working days.",
    "Someone will be in touch by Friday.",
    "I'll look into it and get back to you.",
    "The engineer will visit on Monday.",
    "The refund will reach your account within five days.",
)

# -- structural cues (grammar, not topic words) ---------------------------------------------------

_FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|ive|i'd|id|i'll|my|me|we|we're|we've|our|us)\b")
_NEED = re.compile(r"\b(need|needs|want|wanted|would like|'d like|wondering|trying|can't|cannot|couldn't|won't|"
                   r"doesn't|didn't|isn't|wasn't|haven't|hasn't|not|never|problem|issue|wrong|help|why|how|"
                   r"because|about)\b")
_GREETING_ONLY = re.compile(r"^(hi|hello|hey|good (morning|afternoon|evening)|dear|yes|yeah|yep|no|ok|okay|sure|"
                            r"thanks?|thank you|right|great|fine)\b")
_SELF_ID = re.compile(r"\b(my name is|my name's|this is|it's|i am|i'm)\s+\[?(person|[a-z]+)\]?$")
_REQUEST = re.compile(r"\b(can you|could you|can i|could i|would you|will you|please|i need|i'd like|i would like|"
                      r"i want|we need|we'd like|we want|is it possible|is there)\b")
_AGENT_FIRST = re.compile(r"\b(i|i've|i'll|i'm|i have|i will|we|we've|we'll|we have|we will|let me|it's been|"
                          r"has been|have been|is now|are now|will be)\b")
_COMMIT = re.compile(r"\b(will|\w+'ll|going to|shall|you should (get|receive|see|hear)|should (arrive|reach)|"
                     r"expect)\b")
_IMMEDIATE = re.compile(r"\b(hold|one moment|a moment|a second|transfer|put you through|connect you)\b")
_DONE = re.compile(r"\b(i've|i have|we've|we have|has (now )?been|have (now )?been|is now|are now|it's now|done|"
                   r"i (updated|changed|corrected|cancelled|canceled|processed|refunded|removed|reset|blocked|"
                   r"unblocked|moved|added|applied|credited|sent|fixed|reissued|approved))\b")
_SCHEDULED = re.compile(r"\b(book(ed)?|schedul\w*|appointment|visit|engineer|technician|investigat\w*|look into|"
                        r"get back to you|call you back|be in touch|update you)\b")
_CONDITIONAL = re.compile(r"\b(once|as soon as|when we|after we|if you|until)\b")
_TRANSFER = re.compile(r"\b(transfer(ring|red)? (you|your call|the call)|put(ting)? you (through|over)|"
                       r"connect(ing)? you|pass(ing)? you (over|on|through|across|back)|"
                       r"hand(ing)? you (over|on|across)|mov(e|ing) you (over |across )?to)\b")
"""The agent handing the customer over, now: a person is the object (a money transfer is not)."""
_ESCALATE = re.compile(r"\b(escalat\w*|supervisor|manager|team lead(er)?|complaints? (team|department)|"
                       r"(raised?|raising|logged?|logging|filed?|filing|lodged?|lodging) (a |an |this |it |the |your )?"
                       r"(formal )?(complaint|case|ticket)|"
                       r"(raised?|raising|passed?|passing|flagged?|flagging|referred|referring|refer) "
                       r"(this|it|your (case|complaint|claim|issue)) (on |up )?(to|with))\b")
"""The agent passing the case up or on, to be dealt with later: a role above the agent, a formal
complaint or case opened, the case referred to someone."""


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w'\[\] ]+", " ", text.lower().replace("’", "'")).split())


# -- the due date of a commitment -----------------------------------------------------------------

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
            "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
            "thirty": 30, "forty": 40, "forty-eight": 48, "seventy-two": 72, "twenty-four": 24,
            "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3, "several": 5}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
             "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
             "twentieth": 20, "twenty-first": 21, "twenty-second": 22, "twenty-third": 23, "twenty-fourth": 24,
             "twenty-fifth": 25, "twenty-sixth": 26, "twenty-seventh": 27, "twenty-eighth": 28,
             "twenty-ninth": 29, "thirtieth": 30, "thirty-first": 31}

_NUM = (r"(\d{1,3}|" + "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True)) +
        r"|(?:twenty|thirty|forty|fifty|sixty|seventy)[ -](?:one|two|three|four|five|six|seven|eight|nine))")
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DAYNUM = r"(\d{1,2})(?:st|nd|rd|th)?|(" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + r")"
_WEEKDAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"

_DUE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(p, re.IGNORECASE)) for name, p in [
    ("iso", r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"),
    ("slash", r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?\b"),
    ("range", r"\b(?:within|in|over|takes?|take up to|up to)?\s*(?:the next\s+)?" + _NUM + r"\s*(?:-|to|or)\s*" + _NUM +
     r"\s+(working |business |calendar )?(hours?|days?|weeks?|months?)\b"),
    ("within", r"\b(?:within|in|over|inside|after|up to|about|around)\s+(?:the next\s+|the\s+|another\s+)?" + _NUM +
     r"\s+(working |business |calendar )?(hours?|days?|weeks?|months?|minutes?)\b"),
    ("within_bare", r"\b(?:within|in)\s+(?:the next\s+|an?\s+)?(hour|day|week|month|fortnight)\b"),
    ("n_days_time", r"\b" + _NUM + r"\s+(working |business )?(days?|weeks?)(?:'|’)?\s+time\b"),
    ("day_month", r"\b(?:the\s+)?(?:" + _DAYNUM + r")\s+(?:of\s+)?" + _MONTH + r"\b(?:,?\s+(\d{4}))?"),
    ("month_day", r"\b" + _MONTH + r"\s+(?:the\s+)?(?:" + _DAYNUM + r")\b(?:,?\s+(\d{4}))?"),
    ("day_after_tomorrow", r"\bday after tomorrow\b"),
    ("tomorrow", r"\btomorrow\b"),
    ("today", r"\b(today|tonight|this (?:morning|afternoon|evening)|later on|end of (?:the )?day|close of business|"
              r"by eod|by cob|right away|straight away|within the hour)\b"),
    ("next_weekday", r"\b(next|this coming|coming|this)\s+" + _WEEKDAY + r"\b"),
    ("weekday", r"\b(?:on|by|until|till|before|from|this|next|this coming|coming)?\s*" + _WEEKDAY + r"\b"),
    ("end_of_week", r"\b(?:the )?end of (?:the |this )?week\b|\bthis week\b"),
    ("next_week", r"\b(?:early |late |the end of |end of )?next week\b"),
    ("end_of_month", r"\b(?:the )?end of (?:the |this )?month\b|\bthis month\b"),
    ("next_month", r"\bnext month\b"),
    ("ordinal_day", r"\b(?:on|by|before|until)\s+the\s+(?:" + _DAYNUM + r")\b"),
]]


def _number(text: str) -> int | None:
    t = text.lower().strip()
    if t.isdigit():
        return int(t)
    if t in _NUMBERS:
        return _NUMBERS[t]
    parts = re.split(r"[ -]", t)
    if len(parts) == 2 and parts[0] in _NUMBERS and parts[1] in _NUMBERS:
        return _NUMBERS[parts[0]] + _NUMBERS[parts[1]]
    return None


def _month(text: str) -> int:
    t = text.lower()[:3]
    return [m[:3] for m in _MONTHS].index(t) + 1


def _day(digits: str | None, word: str | None) -> int | None:
    if digits:
        return int(digits)
    if word:
        return _ORDINALS.get(word.lower())
    return None


def add_working_days(start: date, n: int) -> date:
    """``n`` working days (Monday-Friday) after ``start``."""
    d = start
    while n > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n -= 1
    return d


def _weekday_index(text: str) -> int:
    t = text.lower()[:3]
    return [w[:3] for w in _WEEKDAYS].index(t)


def _on_or_after(ref: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year if year > 99 else 2000 + year, month, day)
        d = date(ref.year, month, day)
        return d if d >= ref else date(ref.year + 1, month, day)
    except ValueError:
        return None


def parse_due(text: str, ref: datetime | date | None) -> tuple[str | None, str | None]:
    """The due date of a commitment in ``text`` (ISO ``YYYY-MM-DD``; None without a reference
    time or a resolvable expression) and the words that gave it (None when there are none).

    ``ref`` is when it was said. Understood: today / tonight / this afternoon / end of day,
    tomorrow, the day after tomorrow, weekday names (the next such day after ``ref``; "next
    Monday": the Monday of next week), this week / end of the week (its Friday), next week (its Friday: the
    latest day it covers on working days), end of the month / next month (the last day), "within
    / in N (working | business) days | hours | weeks | months" (N in digits or words, "a couple
    of", "a few"; a range "3-5 working days" takes its upper end; working days skip Saturday and
    Sunday), "N days' time", explicit dates ("19 November", "November 19th", "the 19th of
    November 2026", "19/11", "2026-11-19": day first, the next such date on or after ``ref``
    without a year), "by the 21st" (that day this month or next). The first expression in the
    text wins."""
    low = text.replace("’", "'")
    found: list[tuple[str, re.Match[str]]] = []
    for name, pattern in _DUE_PATTERNS:
        for m in pattern.finditer(low):
            if not m.group(0).strip():
                continue
            if name == "weekday" and re.fullmatch(r"\s*(sat|sun|mon|wed)\s*", m.group(0), re.IGNORECASE):
                continue  # "sat", "sun" ... alone are words, not days
            if name == "slash" and not _plausible_slash(m):
                continue
            if name == "range" and (_number(m.group(1)) or 0) >= (_number(m.group(2)) or 0):
                continue  # "twenty-one" is no range
            found.append((name, m))
            break
    if not found:
        return None, None
    first = min(found, key=lambda f: f[1].start())[1]
    # the longest expression among those overlapping the first ("on the 21st of December")
    name, m = max((f for f in found if f[1].start() < first.end() and f[1].end() > first.start()),
                  key=lambda f: (len(f[1].group(0).strip()), -f[1].start()))
    due_text = m.group(0).strip()
    if ref is None:
        return None, due_text
    ref_dt = ref if isinstance(ref, datetime) else datetime(ref.year, ref.month, ref.day)
    day0 = ref_dt.date()
    due: date | None = None
    g = m.groups()
    if name == "iso":
        due = _on_or_after(day0, int(g[1]), int(g[2]), int(g[0])) if 1 <= int(g[1]) <= 12 else None
    elif name == "slash":
        due = _on_or_after(day0, int(g[1]), int(g[0]), int(g[2]) if g[2] else None)
    elif name in ("range", "within", "n_days_time", "within_bare"):
        if name == "within_bare":
            n, working, unit = 1, None, g[0].lower()
            if unit == "fortnight":
                n, unit = 14, "days"
        elif name == "range":
            n, working, unit = _number(g[1]), g[2], g[3].lower()
        else:
            n, working, unit = _number(g[0]), g[1], g[2].lower()
        if n is None:
            return None, due_text
        if unit.startswith("minute"):
            due = (ref_dt + timedelta(minutes=n)).date()
        elif unit.startswith("hour"):
            due = (ref_dt + timedelta(hours=n)).date()
        elif unit.startswith("day"):
            due = add_working_days(day0, n) if working and working.strip() != "calendar" else day0 + timedelta(days=n)
        elif unit.startswith("week"):
            due = day0 + timedelta(days=7 * n)
        elif unit.startswith("month"):
            month = day0.month - 1 + n
            year, month = day0.year + month // 12, month % 12 + 1
            due = _clamp_date(year, month, day0.day)
    elif name in ("day_month", "month_day"):
        if name == "day_month":
            day, month, year = _day(g[0], g[1]), _month(g[2]), g[3]
        else:
            month, day, year = _month(g[0]), _day(g[1], g[2]), g[3]
        due = _on_or_after(day0, month, day, int(year) if year else None) if day else None
    elif name == "day_after_tomorrow":
        due = day0 + timedelta(days=2)
    elif name == "tomorrow":
        due = day0 + timedelta(days=1)
    elif name == "today":
        due = day0
    elif name in ("next_weekday", "weekday"):
        wd = _weekday_index(re.search(_WEEKDAY, m.group(0), re.IGNORECASE).group(0))
        if re.match(r"\s*next\s", m.group(0), re.IGNORECASE):  # that day of next week
            due = day0 + timedelta(days=7 - day0.weekday() + wd)
        else:
            due = day0 + timedelta(days=(wd - day0.weekday()) % 7 or 7)
    elif name == "end_of_week":
        due = day0 + timedelta(days=max(4 - day0.weekday(), 0))
    elif name == "next_week":
        due = day0 + timedelta(days=7 - day0.weekday() + 4)
    elif name == "end_of_month":
        due = _last_day(day0.year, day0.month)
    elif name == "next_month":
        y, mth = (day0.year + 1, 1) if day0.month == 12 else (day0.year, day0.month + 1)
        due = _last_day(y, mth)
    elif name == "ordinal_day":
        day = _day(g[0], g[1])
        if day:
            due = _clamp_date(day0.year, day0.month, day) if day >= day0.day else None
            if due is None or due.day != day:
                y, mth = (day0.year + 1, 1) if day0.month == 12 else (day0.year, day0.month + 1)
                due = _clamp_date(y, mth, day)
    return (due.isoformat() if due else None), due_text


def _plausible_slash(m: re.Match[str]) -> bool:
    a, b = int(m.group(1)), int(m.group(2))
    return 1 <= a <= 31 and 1 <= b <= 12 and (m.group(3) is not None or "/" in m.group(0))


def _last_day(year: int, month: int) -> date:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return nxt - timedelta(days=1)


def _clamp_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, _last_day(year, month).day))


def reference_time(value: Any) -> datetime | None:
    """A datetime from an ISO string (``Z`` allowed) or a datetime; None otherwise."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


# -- the block ------------------------------------------------------------------------------------

def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class ContactBuilder:
    """Builds the contact block of one interaction from its CallContext (``ctx``: the
    unredacted units the detectors read, their embeddings and sentiment) and its written
    (redacted) utterances, which every quote is taken from; ``evidence`` turns a detector
    Evidence into the record's form (stage.AnalysisStage._evidence: written quote, message
    number and character span)."""

    def __init__(self, ctx: Any, options: ContactOptions, spans: list[Any], evidence: Any):
        self.ctx = ctx
        self.options = options
        self.spans = spans
        self.evidence = evidence
        self.units = ctx.units
        self._emb = ctx.embeddings if ctx.units else np.zeros((0, 1), dtype=np.float32)

    # helpers
    def sim(self, examples: tuple[str, ...]) -> np.ndarray:
        if not self.units or not examples:
            return np.zeros(len(self.units), dtype=np.float32)
        return (self._emb @ self.ctx.models.embed_examples(tuple(examples)).T).max(axis=1)

    def item(self, unit: Any, **extra: Any) -> dict[str, Any]:
        """A unit as the record quotes it: its written text, id, times (and message, chars)."""
        from pipeline.analysis.detectors.base import Evidence

        d = self.evidence(Evidence.of_unit(unit, "contact"))
        out: dict[str, Any] = {"text": d["quote"], "utterance_id": d.get("utterance_id"), "start": d["start"],
                               "end": d["end"]}
        if "message" in d:
            out["message"] = d["message"]
        if "chars" in d:
            out["chars"] = d["chars"]
        out.update(extra)
        return out

    def build(self) -> dict[str, Any]:
        from pipeline.analysis.detectors.context import AGENT, CUSTOMER

        self.agent = [u for u in self.units if u.role == AGENT]
        self.customer = [u for u in self.units if u.role == CUSTOMER]
        follow_ups = self.follow_ups()
        return {
            "reason": self.reason(),
            "actions": self.actions(),
            "outcome": self.outcome(follow_ups),
            "follow_ups": [f for f, _ in follow_ups],
            "mentions": {"products": self.products(), "accounts": self.accounts()},
            "method": "extractive",
        }

    # reason
    def reason(self) -> dict[str, Any] | None:
        if not self.customer:
            return None
        turns: list[str] = []
        for u in self.customer:
            if u.utterance_id not in turns:
                turns.append(u.utterance_id)
        early = set(turns[:3])
        candidates = [u for u in self.customer if u.utterance_id in early]
        pro, con = self.sim(REASON_PROTOTYPES), self.sim(NOT_REASON_PROTOTYPES)
        verify = self.sim(VERIFY_PROTOTYPES)
        previous_agent: dict[int, Any] = {}
        last = None
        for u in self.units:
            previous_agent[u.index] = last
            if u.role != CUSTOMER_ROLE:
                last = u if u.role == AGENT_ROLE else last
        scored = []
        for u in candidates:
            words = u.norm.split()
            s = float(pro[u.index]) - 0.5 * float(con[u.index])
            if _FIRST_PERSON.search(u.norm):
                s += 0.05
            if _NEED.search(u.norm) or u.question:
                s += 0.05
            if u.question or _REQUEST.search(u.norm):
                s += 0.06  # asks for something: the request itself
            if len(words) < 4:
                s -= 0.2
            elif len(words) < 7:
                s -= 0.05
            if _GREETING_ONLY.match(u.norm) and len(words) < 6:
                s -= 0.1
            if _SELF_ID.search(u.norm) and len(words) < 8:
                s -= 0.2
            prev = previous_agent.get(u.index)
            first_of_turn = u.index == 0 or self.units[u.index - 1].utterance_id != u.utterance_id
            if prev is not None and first_of_turn and prev.question and float(verify[prev.index]) > 0.5:
                s -= 0.25  # the answer to a verification question
            s -= 0.06 * turns.index(u.utterance_id)  # the earlier turn states it
            scored.append((s, u))
        if not scored:
            return None
        scored.sort(key=lambda t: (-t[0], t[1].index))
        best, unit = scored[0]
        second = scored[1][0] if len(scored) > 1 else best - 0.2
        confidence = _sigmoid(8 * (best - 0.25)) * 0.7 + _sigmoid(15 * (best - second)) * 0.3
        return self.item(unit, confidence=round(float(confidence), 3))

    # actions
    def actions(self) -> list[dict[str, Any]]:
        if not self.agent:
            return []
        kinds = list(ACTION_PROTOTYPES)
        sims = np.stack([self.sim(ACTION_PROTOTYPES[k]) for k in kinds], axis=1)  # (units, kinds)
        found = []
        for u in self.agent:
            if u.question or len(u.norm.split()) < 3:
                continue
            row = sims[u.index]
            k = int(np.argmax(row))
            score = float(row[k])
            kind = kinds[k]
            if _TRANSFER.search(u.norm):
                kind, score = "transferred", max(score, 0.6)
            elif _ESCALATE.search(u.norm) and kind not in ("escalated",):
                kind, score = ("escalated", max(score, 0.55)) if _AGENT_FIRST.search(u.norm) else (kind, score)
            if score < 0.5 or not _AGENT_FIRST.search(u.norm) and kind != "explained":
                continue
            if kind == "explained" and score < 0.55:
                continue
            found.append((u.index, kind, score, u))
        # one per kind and utterance, the strongest; at most 8, in time order
        keep: dict[tuple[str, str], tuple[int, str, float, Any]] = {}
        for f in found:
            key = (f[1], f[3].utterance_id)
            if key not in keep or f[2] > keep[key][2]:
                keep[key] = f
        chosen = sorted(sorted(keep.values(), key=lambda f: -f[2])[:8], key=lambda f: f[0])
        return [self.item(u, kind=kind) for _, kind, _, u in chosen]

    # follow-ups
    def follow_ups(self) -> list[tuple[dict[str, Any], Any]]:
        if not self.agent:
            return []
        sims = self.sim(COMMITMENT_PROTOTYPES)
        out = []
        started = reference_time(self.ctx.facts.metadata.get("started_at"))
        for u in self.agent:
            if u.question:
                continue
            commit = _COMMIT.search(u.norm)
            if not commit or _IMMEDIATE.search(u.norm):
                continue
            quoted = self.item(u)  # the written (masked) words: what the due date is read from
            due, due_text = parse_due(quoted["text"], self._said_at(u, started))
            score = float(sims[u.index]) + (0.1 if due_text else 0.0)
            if score < 0.5:
                continue
            out.append(({**quoted, "due": due, "due_text": due_text}, u))
        return out

    def _said_at(self, unit: Any, started: datetime | None) -> datetime | None:
        messages = self.ctx.facts.messages
        uid = unit.utterance_id or ""
        n = int(uid[1:]) if uid[:1] == "m" and uid[1:].isdigit() else None  # m007: message 7
        if messages and n is not None and 1 <= n <= len(messages):
            return messages[n - 1].time
        if started is None:
            return None
        return started + timedelta(seconds=unit.start)

    # outcome
    def outcome(self, follow_ups: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
        from pipeline.analysis.detectors.context import AGENT, CUSTOMER

        if not self.units:
            return {"label": "unresolved", "confidence": 0.0, "evidence": []}
        n = len(self.units)
        start = min(int(n * 0.5), max(n - 12, 0))
        tail = [u for u in self.units[start:] if u.role in (AGENT, CUSTOMER) and len(u.norm.split()) >= 2]
        if not tail:
            tail = [u for u in self.units if u.role in (AGENT, CUSTOMER)][-4:]
        scores: dict[str, float] = {}
        best_unit: dict[str, Any] = {}
        for label in OUTCOMES:
            sims = self.sim(OUTCOME_PROTOTYPES[label])
            if label in ("transferred", "escalated", "follow_up"):
                pool = [u for u in tail if u.role == AGENT and not u.question]
            elif label == "resolved":
                pool = [u for u in tail if not u.question]
            else:
                pool = [u for u in tail if u.role == CUSTOMER or not u.question]
            if not pool:
                scores[label] = 0.0
                continue
            u = max(pool, key=lambda x: (float(sims[x.index]), -x.index))
            scores[label] = float(sims[u.index])
            best_unit[label] = u
        # cues
        agent_acts = [u for u in tail if u.role == AGENT and not u.question]
        for label, cue in (("transferred", _TRANSFER), ("escalated", _ESCALATE)):
            said = [u for u in agent_acts if cue.search(u.norm) and _AGENT_FIRST.search(u.norm)]
            if said:  # the agent says it is done or being done
                scores[label] += 0.2
                best_unit[label] = last = max(said, key=lambda x: x.index)
                if not any(u.index > last.index and _DONE.search(u.norm) for u in agent_acts):
                    # the hand-over is the agent's last act: what follows is courtesy ("okay,
                    # thanks"), not the need met
                    scores[label] += 0.1
            else:  # no such statement: a similar-sounding sentence is not enough
                scores[label] -= 0.15
        later = [(f, u) for f, u in follow_ups if u.index >= start]
        if later:
            f, u = max(later, key=lambda fu: (fu[0]["due_text"] is not None, fu[1].index))
            scores["follow_up"] += 0.05 + (0.05 if f["due_text"] else 0.0)
            best_unit["follow_up"] = u
        else:  # no commitment of later action: a closing courtesy is no follow-up
            scores["follow_up"] -= 0.15
        customer_tail = [u for u in tail if u.role == CUSTOMER]
        if customer_tail:
            sentiment = self.ctx.unit_sentiment
            mood = float(np.mean([sentiment[u.index].score for u in customer_tail[-3:]]))
            last_word_agent = tail[-1].role == AGENT
            if mood < -0.3:
                scores["unresolved"] += 0.05 if last_word_agent else 0.1
                u = min(customer_tail[-3:], key=lambda x: sentiment[x.index].score)
                best_unit.setdefault("unresolved", u)
            elif mood > 0.3:
                scores["resolved"] += 0.05
        # a commitment that only delivers what the agent has already done (a refund on its way,
        # a bill re-sent) is no follow-up: the need was met in the interaction
        done = [u for u in tail if u.role == AGENT and not u.question and _DONE.search(u.norm)
                and not _SCHEDULED.search(u.norm) and not _CONDITIONAL.search(u.norm)]
        pending = [u for _, u in later if _CONDITIONAL.search(u.norm) or _SCHEDULED.search(u.norm)]
        if done and not pending:
            scores["resolved"] += 0.1
            scores["follow_up"] -= 0.1
            best_unit.setdefault("resolved", done[-1])
        elif pending:  # the need waits for a booked visit, a call back, a document
            scores["follow_up"] += 0.1
            scores["resolved"] -= 0.05
        self.scores = dict(scores)
        ranked = sorted(OUTCOMES, key=lambda k: (-scores[k], OUTCOMES.index(k)))
        label, runner = ranked[0], ranked[1]
        margin = scores[label] - scores[runner]
        # the margin over the runner-up, scaled down when even the best outcome matched weakly
        strength = min(1.0, max(scores[label], 0.0) / 0.6 + 0.2)
        confidence = round(float(0.5 + 0.5 * (2 * _sigmoid(12 * margin) - 1)) * strength, 3)
        evidence = []
        u = best_unit.get(label)
        if u is not None:
            evidence.append(self.item(u, role=u.role))
        return {"label": label, "confidence": min(confidence, 1.0), "evidence": evidence}

    # mentions
    def products(self) -> list[dict[str, Any]]:
        import re as _re

        companies = self._company_names()
        found: dict[str, dict[str, Any]] = {}
        written = self._written_units()

        def add(text: str, start: float) -> None:
            key = text.lower()
            if key in found:
                found[key]["count"] += 1
                found[key]["first_start"] = min(found[key]["first_start"], round(start, 3))
            else:
                found[key] = {"text": text, "count": 1, "first_start": round(start, 3)}

        for u, wtext in zip(self.units, written):
            if u.role not in ("agent", "customer"):
                continue
            low = wtext.lower()
            taken: list[tuple[int, int]] = []
            for name in self.options.products:
                for m in _re.finditer(r"(?<!\w)" + _re.escape(name.lower()) + r"(?!\w)", low):
                    add(name, u.start)
                    taken.append(m.span())
            for text, label, _, _ in self.ctx.entities[u.index]:
                if label not in PRODUCT_LABELS:
                    continue
                name = _LEADING.sub("", text.strip(" ,.;:!?\"'()")).strip()
                if not _product_like(name) or any(_same_name(_norm(name), c) for c in companies):
                    continue
                m = _re.search(r"(?<!\w)" + _re.escape(name.lower()) + r"(?!\w)", low)
                if m is None or any(a <= m.start() < b for a, b in taken):
                    continue  # masked in the written text, or a configured name already
                add(name, u.start)
        return sorted(found.values(), key=lambda d: (d["first_start"], d["text"]))

    def _company_names(self) -> list[str]:
        """The company's name (``facts.company``) and the organisations the agent speaks for
        ("thank you for calling X", "welcome to X", "X team"), normalised: not products."""
        names = [_norm(self.ctx.facts.company or "")]
        for u in self.units:
            if u.role != AGENT_ROLE:
                continue
            for text, label, _, _ in self.ctx.entities[u.index]:
                n = _norm(_LEADING.sub("", text))
                if label == "ORG" and n and re.search(
                        r"\b(calling|contacting|chatting with|welcome to|here at|from|at|with|thanks?)\s+(the\s+)?"
                        + re.escape(n) + r"\b|\b" + re.escape(n) + r"\s+(team|support|customer)", u.norm):
                    names.append(n)
        return [n for n in dict.fromkeys(names) if n]

    def _written_units(self) -> list[str]:
        """Each unit's written (masked) text."""
        from pipeline.analysis.detectors.base import Evidence

        return [self.evidence(Evidence.of_unit(u, "contact"))["quote"] for u in self.units]

    def accounts(self) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for s in self.spans:
            if s.type not in ACCOUNT_TYPES:
                continue
            if s.type in found:
                found[s.type]["count"] += 1
                found[s.type]["first_start"] = min(found[s.type]["first_start"], round(float(s.start), 3))
            else:
                found[s.type] = {"type": s.type, "text": f"[{s.type}]", "count": 1,
                                 "first_start": round(float(s.start), 3)}
        return sorted(found.values(), key=lambda d: (d["first_start"], d["type"]))


AGENT_ROLE, CUSTOMER_ROLE = "agent", "customer"
_LEADING = re.compile(r"^(the|a|an|dear|hi|hello|our|your|my)\s+", re.IGNORECASE)


def _product_like(name: str) -> bool:
    """A name that can be a product or service: capitalised words, not a bare short acronym,
    number, time or address-like list, and nothing masked."""
    words = name.split()
    if not words or "[" in name or "," in name or len(words) > 5:
        return False
    if not any(ch.isalpha() for ch in name) or re.search(r"\d[:.]\d|\b\d+(am|pm)\b", name, re.IGNORECASE):
        return False
    if not (name[0].isupper() or name[0].isdigit()):
        return False
    if len(words) == 1 and name.isupper() and len(name) <= 4:  # GP, PDF, ASAP: abbreviations
        return False
    return True


def _same_name(a: str, b: str) -> bool:
    return bool(a) and bool(b) and (a == b or a in b.split() or b in a or a in b)


def contact_block(ctx: Any, options: ContactOptions, spans: list[Any], evidence: Any) -> dict[str, Any]:
    """The ``contact`` block of one interaction (see the module docstring)."""
    return ContactBuilder(ctx, options, spans, evidence).build()
