"""Names: did the agent give their own name, and address the customer by theirs?

Names come from what is said: a self-introduction ("my name is ...", "this is ...", "...
speaking", "you're speaking with ...") or a name spaCy's NER tags as a person. A candidate must
look like a name: capitalised by the recogniser or tagged as a proper noun, and not a common
word ("I'm sorry", "this is about my bill"). The customer's name is what the customer says of
themselves, or what the agent asks to confirm ("am I speaking with Mr Jones?"); the agent uses
it when one of its words (first or last name, fuzzily) appears in the agent's words after it
was first said, other than in the agent's own introduction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from pipeline.analysis.detectors.base import NO, YES, CallContext, Detection, Detector, Evidence, register
from pipeline.analysis.detectors.context import AGENT, CUSTOMER, Unit

INTRO = re.compile(
    r"\b(?:my name is|my name's|my names|name is|this is|it's|i'm|i am|you're speaking (?:with|to)|"
    r"you are speaking (?:with|to)|you're through to|speaking with|here is)\s+"
    r"(?P<first>[A-Za-z][A-Za-z'\-]+)(?:\s+(?P<last>[A-Z][A-Za-z'\-]+))?",
    re.IGNORECASE,
)
"""A self-introduction: the word(s) after it are a candidate name."""

SPEAKING = re.compile(r"\b(?P<first>[A-Za-z][A-Za-z'\-]+)\s+(?:speaking|here)(?=[.,!?]|$)", re.IGNORECASE)
"""A telephone self-introduction, "Sam speaking." / "Sam here," (agents' openings), closing its
phrase. The word before it is taken as the name even when the recogniser misheard it as a common
word ("some speaking" for "Sam speaking"): only the words below are not names there."""

NOT_SPEAKING_NAMES = frozenset("""
i i'm im we we're you you're they they're he she it it's is am are was be been who everyone someone anyone nobody
all still right over in out from just not now back up down near around also currently clearly loudly person
there here today now again already
""".split())

TITLE = re.compile(r"\b(?:mr|mrs|ms|miss|mister|missus|dr|doctor)\.?\s+(?P<last>[A-Z][A-Za-z'\-]+)", re.IGNORECASE)

NOT_NAMES = frozenset("""
a about actually afraid after again all also always am an and any anyone anything are around as at away back
be because been being better brilliant busy but by calling can certainly checking coming could customer definitely
do doing done down each either even every everything fine for from frustrated getting glad going gonna good great
happy having he her here hers him his hoping how however i if in indeed into is it its just kind late let like
looking lovely me mine more most much my myself need never new nice no nobody none not nothing now of off ok okay
on one only or other our out over perfect please pleased pretty quite rather ready really regarding right same
see she should so some someone something sorry speaking still such super sure than thank thanks that the their
them then there these they thinking this those through to today too trying unfortunately up upset us very waiting
was we well were what when where which who why will with worried would wondering yeah yes yet you your yours
afternoon morning evening hello hi hey bye goodbye welcome
""".split())
"""Words that follow "I'm" / "this is" but are not names."""


STREET_WORDS = frozenset("""
street st road rd lane avenue ave close drive way court place crescent grove park gardens terrace square hill row
mews walk parade boulevard
""".split())
"""A capitalised word before one of these is part of an address, not a name."""


@dataclass
class NameMention:
    name: str
    unit: Unit
    how: str


def _looks_like_name(word: str, unit_index: int, ctx: CallContext) -> bool:
    if word.lower() in NOT_NAMES or len(word) < 2:
        return False
    proper = ctx.proper_nouns[unit_index]
    return word[0].isupper() or word in proper


def company_words(ctx: CallContext) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z']+", ctx.facts.company or "")}


def introductions(ctx: CallContext, units: list[Unit], speaking_form: bool) -> list[NameMention]:
    """Names that the speakers of ``units`` give for themselves."""
    skip = company_words(ctx)
    out: list[NameMention] = []
    for u in units:
        for m in INTRO.finditer(u.text):
            first, last = m.group("first"), m.group("last")
            if first.lower() in skip or not _looks_like_name(first, u.index, ctx):
                continue
            if last and last.lower() in STREET_WORDS:
                continue
            name = first if not last or last.lower() in NOT_NAMES | skip else f"{first} {last}"
            out.append(NameMention(name, u, f"introduction '{m.group(0)}'"))
        if speaking_form:
            for m in SPEAKING.finditer(u.text):
                first = m.group("first")
                if first.lower() not in NOT_SPEAKING_NAMES | skip:
                    out.append(NameMention(first, u, f"introduction '{m.group(0)}'"))
    return out


def person_entities(ctx: CallContext, units: list[Unit]) -> list[NameMention]:
    out = []
    for u in units:
        for text, label, _, end in ctx.entities[u.index]:
            around = text.split()[-1:] + u.text[end:].split()[:1]
            if any(w.strip(".,!?").lower() in STREET_WORDS for w in around):
                continue  # "Hazel Grove", "Baker Street": an address
            if label == "PERSON" and any(_looks_like_name(w, u.index, ctx) for w in text.split()):
                out.append(NameMention(text, u, f"person named '{text}'"))
        for m in TITLE.finditer(u.text):
            out.append(NameMention(m.group("last"), u, f"addressed as '{m.group(0)}'"))
    return out


def header_name_tokens(ctx: CallContext, role: str) -> set[str]:
    """The name words a written conversation's messages give for ``role``'s writers (the
    From display name of an e-mail, a chat's sender name; pipeline/ingest/written.py)."""
    from pipeline.ingest.written import person_names

    return {w for w in person_names(ctx.facts.messages or []).get(role, set()) if w not in NOT_NAMES}


def name_tokens(names: list[NameMention]) -> set[str]:
    return {w.lower().strip("'") for n in names for w in n.name.split() if w.lower() not in NOT_NAMES}


def said_in(unit: Unit, tokens: set[str], threshold: float) -> str | None:
    """The token of ``tokens`` found among the unit's words (fuzzily), or None."""
    for word in unit.norm.split():
        for t in tokens:
            if len(t) >= 3 and fuzz.ratio(word, t) >= threshold:
                return t
    return None


@dataclass
class AgentNameParams:
    """Parameters of ``agent_name``."""

    first_s: float | None = 60.0
    """Only introductions in the first this many seconds count (null: anywhere)."""


@register("agent_name")
class AgentNameDetector(Detector):
    """Yes when the agent introduces themselves by name."""

    Params = AgentNameParams

    def detect(self, ctx: CallContext) -> Detection:
        units = ctx.select(AGENT, first_s=self.params.first_s)
        where = "the agent's words" + (f" in the first {self.params.first_s:g} s" if self.params.first_s else "")
        looked_for = f"a self-introduction with a name ('my name is ...', 'this is ...', '... speaking') in {where}"
        found = introductions(ctx, units, speaking_form=True)
        if found:
            ev = [Evidence.of_unit(n.unit, n.how) for n in found[:2]]
            capitalised = any(n.name[0].isupper() for n in found)
            return Detection(YES, 0.9 if capitalised else 0.7, ev, looked_for)
        return Detection(NO, 0.8 if units else 0.6, [], looked_for)


@dataclass
class CustomerNameParams:
    """Parameters of ``customer_name``."""

    fuzzy_threshold: float = 85.0
    """rapidfuzz ratio (0-100) at which an agent's word is the customer's name."""


@register("customer_name")
class CustomerNameDetector(Detector):
    """Yes when the agent addresses the customer by (first or last) name."""

    Params = CustomerNameParams

    def detect(self, ctx: CallContext) -> Detection:
        customer_units = ctx.select(CUSTOMER)
        agent_units = ctx.select(AGENT)
        given = introductions(ctx, customer_units, speaking_form=False) + person_entities(ctx, customer_units)
        own = name_tokens(introductions(ctx, agent_units, speaking_form=True))
        asked = [n for n in person_entities(ctx, agent_units) if not name_tokens([n]) <= own]
        header = header_name_tokens(ctx, CUSTOMER) - own  # a written conversation: the From name, the chat name
        tokens = (name_tokens(given) | header) - own
        looked_for = "the customer's name (as they gave it) in the agent's words"
        details = {"customer_name_given": bool(given)}  # never the name itself: details are not redacted
        if not tokens:
            # no name given by the customer: a name the agent says that is not their own counts
            if asked:
                ev = [Evidence.of_unit(n.unit, n.how) for n in asked[:2]]
                return Detection(YES, 0.6, ev, looked_for, details)
            return Detection(NO, 0.7, [], looked_for + " (the customer gave no name that was recognised)", details)
        first_said = min(n.unit.start for n in given) if given and not header else float("-inf")
        hits = []
        for u in agent_units:
            if u.end < first_said:
                continue
            token = said_in(u, tokens, self.params.fuzzy_threshold)
            if token is not None:
                hits.append(Evidence.of_unit(u, f"customer's name '{token}'"))
        hits += [Evidence.of_unit(n.unit, n.how) for n in asked if name_tokens([n]) & tokens and n.unit.end >= first_said
                 and all(e.utterance_id != n.unit.utterance_id for e in hits)]
        if hits:
            hits.sort(key=lambda e: e.start)
            return Detection(YES, 0.9, hits[:3], looked_for, details)
        ev = [Evidence.of_unit(given[0].unit, f"the customer's name: {given[0].how}")] if given else []
        return Detection(NO, 0.8, ev, looked_for, details)
