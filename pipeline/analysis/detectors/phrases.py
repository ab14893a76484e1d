"""Phrase and script adherence: did a party say something like this, where it should be said?

A unit (a sentence, pipeline/analysis/detectors/context.py) of the chosen role, inside the chosen window
of the call, matches when any of these fires:

* ``words``: single words or ``prefix*`` stems, matched as whole words ("please", "thank*");
* ``phrases``: fuzzy matching (rapidfuzz ``partial_ratio`` on lowercase text without
  punctuation, negations written out: "can't" reads "can not") at or above
  ``fuzzy_threshold``: robust to recognition errors ("thank you for coling"), and to the phrase
  sitting inside a longer sentence;
* ``patterns``: regular expressions on that lowercase text, for structure ("anything else .* help");
* ``examples``: semantic similarity with the packaged sentence-embedding model (cosine with the
  nearest example) at or above ``semantic_threshold``: robust to rewording ("is there
  something more I can do for you" for "anything else I can help with").

Phrases and examples never match across a negation (pipeline/analysis/detectors/negation.py): a phrase
matches only words that are negated exactly when the phrase is ("I can help you" is not the
prohibited "I can't help you"), and a unit is compared only with the examples of its own
polarity. Words and patterns are taken as written.

Phrases, patterns and examples may hold slots: ``{company}`` (the call's company),
``{agent_name}``. A slot with no value drops the phrase. ``must_mention: company`` also requires
the company's name (fuzzily) in the matched unit or its utterance.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from pipeline.analysis.detectors.base import (NO, YES, CallContext, Detection, Detector, Evidence, confidence_from_margin,
                                     register)
from pipeline.analysis.detectors.context import Unit, normalise
from pipeline.analysis.detectors.negation import expand, negated, same_polarity, words_of
from pipeline.errors import ConfigError
from pipeline.speakers.roles import company_key, names_company

ROLES = ("agent", "customer", "any")


@dataclass
class PhraseParams:
    """Parameters of the ``phrase`` detector."""

    role: str = "agent"
    """Whose words: agent, customer or any."""
    first_s: float | None = None
    """Only the first this many seconds of the conversation (from its first word)."""
    last_s: float | None = None
    """Only the last this many seconds of the conversation (to its last word)."""
    after_fraction: float | None = None
    """Only after this fraction of the conversation (0.5: its second half), so that on a short
    call a closing window does not reach back into the opening."""
    first_messages: int | None = None
    """Only the role's first this many messages (a written conversation; a call's utterances)."""
    last_messages: int | None = None
    """Only the role's last this many messages (a written conversation; a call's utterances)."""
    words: list[str] = field(default_factory=list)
    """Whole words, or stems ending in ``*``."""
    phrases: list[str] = field(default_factory=list)
    """Fuzzy phrases."""
    patterns: list[str] = field(default_factory=list)
    """Regular expressions on lowercase text without punctuation."""
    examples: list[str] = field(default_factory=list)
    """Example sentences for semantic matching."""
    fuzzy_threshold: float = 88.0
    """rapidfuzz partial_ratio (0-100) at which a phrase matches."""
    semantic_threshold: float = 0.62
    """Cosine similarity with the nearest example at which a unit matches."""
    must_mention: str | None = None
    """``company``: the match must also name the call's company."""
    company_threshold: float = 80.0
    """Fuzzy score (0-100) at which the company's name counts as said."""
    present: str = "yes"
    """The answer when a match is found (``no`` for prohibited phrases); the other one when none is."""
    max_evidence: int = 3


def fill_slots(text: str, ctx: CallContext) -> str | None:
    """``text`` with its slots filled from the call; None when a slot has no value."""
    values = {"company": ctx.facts.company, "agent_name": ctx.facts.metadata.get("agent_name")}
    for slot, value in values.items():
        if "{" + slot + "}" in text:
            if not value:
                return None
            text = text.replace("{" + slot + "}", str(value))
    return text


@functools.lru_cache(maxsize=256)
def _word_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    alts = [re.escape(w[:-1].lower()) + r"\w*" if w.endswith("*") else re.escape(w.lower()) for w in words]
    return re.compile(r"\b(" + "|".join(alts) + r")\b") if alts else None


def mentions(unit_norm: str, name: str, threshold: float) -> float:
    """How well ``name`` is found in ``unit_norm`` (0-100, fuzzy): the whole name (also with
    the spaces taken out, as recognisers split and join brand names), or, for a name of several
    words, at least half of its words each found as a word (a misheard word of the brand must
    not hide the rest)."""
    target = normalise(name)
    if not target:
        return 0.0
    if len(target) < 4:
        return 100.0 if re.search(rf"\b{re.escape(target)}\b", unit_norm) else 0.0
    whole = max(fuzz.partial_ratio(target, unit_norm), names_company(unit_norm, company_key(name), 0.0))
    parts = [w for w in target.split() if len(w) >= 3]
    if len(parts) >= 2:
        words = unit_norm.split()
        found = [max((fuzz.ratio(p, w) for w in words), default=0.0) for p in parts]
        hits = sorted(found, reverse=True)[: -(-len(parts) // 2)]
        whole = max(whole, min(hits))
    return float(whole)


class PhraseMatcher:
    """The matching rules of PhraseParams, compiled for one call's slots."""

    def __init__(self, p: PhraseParams, ctx: CallContext):
        self.p = p
        self.word_re = _word_regex(tuple(p.words))
        filled = [normalise(t) for t in (fill_slots(x, ctx) for x in p.phrases) if t]
        self.phrases = {expand(t): t for t in filled}  # as compared (negations written out): as written
        self.patterns = [re.compile(t) for t in (fill_slots(x, ctx) for x in p.patterns) if t]
        self.examples = tuple(t for t in (fill_slots(x, ctx) for x in p.examples) if t)
        self.negated_examples = tuple(t for t in self.examples if negated(words_of(t)))
        self.plain_examples = tuple(t for t in self.examples if t not in self.negated_examples)

    def similarity(self, ctx: CallContext, units: list[Unit]) -> list[float] | None:
        """Each unit's cosine similarity to the nearest example of its own polarity (0 when
        there is none), by unit index; None without examples."""
        if not self.examples or not units:
            return None
        sims = {False: ctx.similarity(self.plain_examples) if self.plain_examples else None,
                True: ctx.similarity(self.negated_examples) if self.negated_examples else None}
        out = [0.0] * len(ctx.units)
        for u in units:
            polar = sims[unit_negated(ctx, u)]
            out[u.index] = float(polar[u.index]) if polar is not None else 0.0
        return out

    def match(self, unit: Unit, semantic: float) -> tuple[float, str] | None:
        """(strength 0-1, rule) of the best rule this unit fires, or None."""
        if self.word_re is not None and (m := self.word_re.search(unit.norm)):
            return 1.0, f"word '{m.group(0)}'"
        for pat in self.patterns:
            if m := pat.search(unit.norm):
                return 1.0, f"pattern '{pat.pattern}'"
        text = expand(unit.norm)
        # only the phrases scoring at least the threshold are looked at (best first, as sorted
        # by score, then phrase): rapidfuzz gives 0 below ``score_cutoff`` and the same score
        # above it, and skips most of the work for a phrase that cannot reach it
        threshold = self.p.fuzzy_threshold
        scored = []
        for ph in self.phrases:
            if len(ph) <= len(text) + 3:
                score = fuzz.partial_ratio(ph, text, score_cutoff=threshold)
                if score >= threshold:
                    scored.append((score, ph))
        scored.sort(reverse=True)
        for score, ph in scored:
            if same_polarity(ph, text):
                return score / 100.0, f"phrase '{self.phrases[ph]}' (fuzzy {score:.0f})"
        if self.examples and semantic >= self.p.semantic_threshold:
            return float(semantic), f"similar to the examples (cosine {semantic:.2f})"
        return None


_MATCHERS: dict[tuple[int, str | None, str | None], PhraseMatcher] = {}
"""Compiled matchers by their params (identity) and the slot values they were filled with."""
MATCHER_MEMO = 1024


def matcher_for(p: PhraseParams, ctx: CallContext) -> PhraseMatcher:
    """The PhraseMatcher of ``p`` for this call: compiled once per process for each value of
    the slots (``{company}``, ``{agent_name}``: all a matcher takes from the call), as an item's
    phrases, patterns and examples are the same for every call of a run."""
    slots = (ctx.facts.company, ctx.facts.metadata.get("agent_name"))
    key = (id(p), *(str(v) if v else None for v in slots))
    matcher = _MATCHERS.get(key)
    if matcher is None or matcher.p is not p:  # not compiled yet, or another params at a reused id
        if len(_MATCHERS) >= MATCHER_MEMO:
            del _MATCHERS[next(iter(_MATCHERS))]  # the oldest
        matcher = _MATCHERS[key] = PhraseMatcher(p, ctx)
    return matcher


def describe_rules(p: PhraseParams, ctx: CallContext) -> str:
    """A reviewer-readable account of what was looked for and where."""
    where = {"any": "anyone's", "agent": "the agent's", "customer": "the customer's"}[p.role] + " words"
    if p.first_s is not None:
        where += f" in the first {p.first_s:g} s"
    if p.last_s is not None:
        where += f" in the last {p.last_s:g} s"
    if p.after_fraction is not None:
        where += f" after {p.after_fraction:.0%} of the call"
    if p.first_messages is not None:
        where += f" in their first {p.first_messages} message" + ("s" if p.first_messages > 1 else "")
    if p.last_messages is not None:
        where += f" in their last {p.last_messages} message" + ("s" if p.last_messages > 1 else "")
    what = []
    if p.words:
        what.append("the words " + ", ".join(f"'{w}'" for w in p.words[:6]))
    shown = [t for t in (fill_slots(x, ctx) for x in p.phrases[:4]) if t]
    if shown:
        what.append("phrases such as " + ", ".join(f"'{t}'" for t in shown))
    if p.examples:
        what.append(f"sentences like '{fill_slots(p.examples[0], ctx) or p.examples[0]}'")
    if p.must_mention:
        what.append(f"naming the {p.must_mention}" + (f" ('{ctx.facts.company}')" if ctx.facts.company else ""))
    return f"{' or '.join(what) or 'a match'} in {where}"


def select_units(p: PhraseParams, ctx: CallContext) -> list[Unit]:
    """The units of the role inside the window."""
    after = None
    if p.after_fraction is not None:
        after = ctx.start_of_speech + p.after_fraction * (ctx.end_of_speech - ctx.start_of_speech)
    units = ctx.select(None if p.role == "any" else p.role, p.first_s, p.last_s)
    if p.first_messages is not None or p.last_messages is not None:
        keep = ctx.utterance_ids(None if p.role == "any" else p.role, p.first_messages, p.last_messages)
        units = [u for u in units if u.utterance_id in keep]
    return units if after is None else [u for u in units if u.start >= after]


def unit_negated(ctx: CallContext, unit: Unit) -> bool:
    """Whether the unit's words are negated (:func:`negated`), worked out once per unit of the
    call however many items compare it with their examples."""
    memo = ctx.__dict__.setdefault("_unit_negated", {})
    found = memo.get(unit.norm)
    if found is None:
        found = memo[unit.norm] = negated(words_of(unit.norm))
    return found


def find_matches(p: PhraseParams, ctx: CallContext, units: list[Unit] | None = None) -> tuple[list[tuple[Unit, float, str]], tuple[Unit, float] | None]:
    """Units that match ``p`` (with strength and rule), and the closest unit that did not
    (by semantic similarity), for the evidence of a "no"."""
    return _find_matches(p, ctx, units)[:2]


def _find_matches(p: PhraseParams, ctx: CallContext, units: list[Unit] | None = None
                  ) -> tuple[list[tuple[Unit, float, str]], tuple[Unit, float] | None, list[Unit], list[float] | None]:
    """:func:`find_matches`, and the units looked at with their similarities to the examples
    (:meth:`PhraseMatcher.similarity`), which the detector's decision reads again."""
    if units is None:
        units = select_units(p, ctx)
    matcher = matcher_for(p, ctx)
    sims = matcher.similarity(ctx, units)
    found: list[tuple[Unit, float, str]] = []
    closest: tuple[Unit, float] | None = None
    for u in units:
        semantic = float(sims[u.index]) if sims is not None else 0.0
        hit = matcher.match(u, semantic)
        if hit is not None and p.must_mention == "company" and ctx.facts.company:
            said = max(mentions(u.norm, ctx.facts.company, p.company_threshold),
                       mentions(normalise(ctx.by_id[u.utterance_id].text), ctx.facts.company, p.company_threshold))
            if said < p.company_threshold:
                hit = None
            else:
                hit = (hit[0], hit[1] + f" + company named (fuzzy {said:.0f})")
        if hit is not None:
            found.append((u, hit[0], hit[1]))
        elif sims is not None and (closest is None or semantic > closest[1]):
            closest = (u, semantic)
    return found, closest, units, sims


@register("phrase")
class PhraseDetector(Detector):
    """Yes when a unit of the role, in the window, matches (see the module docstring); the
    answer is inverted with ``present: no`` (prohibited phrases)."""

    Params = PhraseParams

    def check(self, where: str) -> None:
        p = self.params
        if p.role not in ROLES:
            raise ConfigError(f"{where}: params.role: '{p.role}' is not allowed; use {', '.join(ROLES)}")
        if p.present not in (YES, NO):
            raise ConfigError(f"{where}: params.present: '{p.present}' is not allowed; use yes or no")
        if p.must_mention not in (None, "company"):
            raise ConfigError(f"{where}: params.must_mention: '{p.must_mention}' is not allowed; use company or null")
        if not (p.words or p.phrases or p.patterns or p.examples):
            raise ConfigError(f"{where}: params: give at least one of words, phrases, patterns, examples")
        for pat in p.patterns:
            try:
                re.compile(pat)
            except re.error as e:
                raise ConfigError(f"{where}: params.patterns: '{pat}' is not a regular expression: {e}") from e
        if p.after_fraction is not None and not 0 <= p.after_fraction < 1:
            raise ConfigError(f"{where}: params.after_fraction: {p.after_fraction} is not allowed; use a fraction in [0, 1)")
        if not 0 <= p.fuzzy_threshold <= 100 or not 0 < p.semantic_threshold <= 1:
            raise ConfigError(f"{where}: params: fuzzy_threshold must be in 0-100, semantic_threshold in (0, 1]")

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        absent = NO if p.present == YES else YES
        found, closest, units, sims = _find_matches(p, ctx)
        looked_for = describe_rules(p, ctx)
        details = {}
        decision = self._decision(p, ctx, found, absent, units, sims)
        if p.must_mention == "company" and not ctx.facts.company:
            details["note"] = "the call's company is unknown (manifest column company or roles.company): not checked"
        if found:
            found.sort(key=lambda f: -f[1])
            strength = found[0][1]
            margin = strength - (p.semantic_threshold if "cosine" in found[0][2] else p.fuzzy_threshold / 100.0)
            conf = max(confidence_from_margin(margin, 0.1), 0.8 if "cosine" not in found[0][2] else 0.5)
            if details:
                conf = min(conf, 0.7)
            ev = [Evidence.of_unit(u, rule, s) for u, s, rule in sorted(found[: p.max_evidence], key=lambda f: f[0].start)]
            if decision is not None:
                details["decision"] = decision
            return Detection(p.present, conf, ev, looked_for, details)
        ev = []
        conf = 0.75
        if closest is not None:
            ev.append(Evidence.of_unit(closest[0], f"closest, not enough (cosine {closest[1]:.2f} < "
                                                   f"{p.semantic_threshold:.2f})", closest[1]))
            conf = confidence_from_margin(p.semantic_threshold - closest[1], 0.15)
        if not units:
            details["note"] = "no words of that role in the window"
        if decision is not None:
            details["decision"] = decision
        return Detection(absent, conf, ev, looked_for, details)

    @staticmethod
    def _decision(p: PhraseParams, ctx: CallContext, found: list[tuple[Unit, float, str]],
                  absent: str, units: list[Unit] | None = None, sims: list[float] | None = None) -> dict | None:
        """The recorded decision score (for ``callqa tune``; it never changes the answer): the
        highest cosine, over the units in the window that a lower ``semantic_threshold`` could
        make match (the company named where ``must_mention`` asks for it), and whether a rule
        that does not depend on that threshold (a word, a pattern, a fuzzy phrase) matched.
        The answer is ``then`` when ``fixed`` or ``score >= semantic_threshold``, else ``else``.
        None without examples (no threshold to move). ``units`` and ``sims``: the units in the
        window and their similarities as :func:`_find_matches` found them (else worked out)."""
        if not p.examples:
            return None
        matcher = matcher_for(p, ctx)
        if units is None:
            units = select_units(p, ctx)
            sims = matcher.similarity(ctx, units) if units else None
        if not matcher.examples:
            return None
        hit_ids = {u.index for u, _, _ in found}
        fixed = any("cosine" not in rule for _, _, rule in found)
        best = None
        for u in units:
            sim = float(sims[u.index]) if sims is not None else 0.0
            if u.index not in hit_ids and p.must_mention == "company" and ctx.facts.company:
                said = max(mentions(u.norm, ctx.facts.company, p.company_threshold),
                           mentions(normalise(ctx.by_id[u.utterance_id].text), ctx.facts.company, p.company_threshold))
                if said < p.company_threshold:
                    continue
            if u.index in hit_ids and not any(f[0].index == u.index and "cosine" in f[2] for f in found):
                continue  # matched by a fixed rule: its cosine decides nothing
            best = sim if best is None else max(best, sim)
        return {"param": "semantic_threshold", "score": best, "op": ">=", "then": p.present, "else": absent,
                "fixed": fixed}
