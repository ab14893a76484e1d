"""What detectors see of a call: its utterances cut into units, and lazily computed, shared
analyses (unit embeddings, sentiment, conversation metrics, names), each computed once per call
however many items use it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.interaction.record import RECORDING
from pipeline.interaction.utterances import Utterance

AGENT, CUSTOMER = "agent", "customer"

MAX_UNIT_WORDS = 30
"""A sentence longer than this (unpunctuated recogniser output) is cut into windows this long."""

_SENTENCE_END = re.compile(r"[.?!]$")
_NORM_DROP = re.compile(r"[^\w' ]+")


def normalise(text: str) -> str:
    """Lowercase, punctuation out (apostrophes kept), single spaces: the form phrases are
    fuzzily matched in."""
    return " ".join(_NORM_DROP.sub(" ", text.lower().replace("’", "'")).split())


@dataclass
class Unit:
    """A sentence of one utterance (or a window of a long unpunctuated one): what phrase and
    semantic detectors compare, and what evidence quotes."""

    index: int
    """Position among the call's units (time order)."""
    utterance_id: str
    role: str
    start: float
    end: float
    text: str
    norm: str
    word_range: tuple[int, int] | None = None
    """First and last (inclusive) word of the utterance it covers; None for text without words."""

    @property
    def question(self) -> bool:
        return self.text.rstrip().endswith("?")


def split_units(utterance: Utterance, first_index: int) -> list[Unit]:
    """The units of one utterance: its words cut after sentence-final punctuation, and runs of
    more than MAX_UNIT_WORDS words cut into windows."""
    role = utterance.role or "unknown"
    words = utterance.words
    if not words:
        text = utterance.text.strip()
        return [Unit(first_index, utterance.id, role, utterance.start, utterance.end, text, normalise(text))] if text else []
    groups: list[list[int]] = [[]]
    for i, w in enumerate(words):
        groups[-1].append(i)
        if _SENTENCE_END.search(w.word) or len(groups[-1]) >= MAX_UNIT_WORDS:
            groups.append([])
    units = []
    for g in groups:
        if not g:
            continue
        text = " ".join(words[i].word for i in g)
        units.append(Unit(first_index + len(units), utterance.id, role, words[g[0]].start, words[g[-1]].end,
                          text, normalise(text), (g[0], g[-1])))
    return units


def unit_place(unit: Unit, words: tuple[str, list[int]] | None) -> tuple[str, int] | None:
    """The unit's place in its utterance: ``words`` is the utterance's words joined by single
    spaces and the character each word starts at; the result is that text and the character
    where the unit's text (its words joined so) starts in it, or None (a unit of an utterance
    without words)."""
    if unit.word_range is None or words is None:
        return None
    text, starts = words
    start = starts[unit.word_range[0]]
    if text[start:start + len(unit.text)] != unit.text:
        return None
    return text, start


@dataclass
class CallFacts:
    """What a call is, beside its words (from the recording and the manifest)."""

    duration_s: float
    stereo: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    company: str | None = None
    """The company the agent speaks for (manifest column ``company``, else ``roles.company``)."""
    source: str = RECORDING
    """The source kind (pipeline/interaction/record.py): detectors that need timing state which
    they apply to (``Detector.sources``)."""
    messages: list[Any] | None = None
    """A written conversation's messages (pipeline/ingest/written.py Message, in order: message
    n is utterance ``m{n:03d}``), with their times, senders and roles."""


class CallContext:
    """One call as the detectors see it. Analyses are computed on first use and kept."""

    def __init__(self, utterances: list[Utterance], facts: CallFacts, models: Any):
        self.utterances = sorted(utterances, key=lambda u: (u.start, u.id))
        self.by_id = {u.id: u for u in self.utterances}
        self.facts = facts
        self.models = models
        self.units: list[Unit] = []
        for u in self.utterances:
            self.units.extend(split_units(u, len(self.units)))

    # -- selection ------------------------------------------------------------------------

    def select(self, role: str | None = None, first_s: float | None = None, last_s: float | None = None,
               after: float | None = None, before: float | None = None) -> list[Unit]:
        """Units of ``role`` (None: anyone) that start within the first ``first_s`` seconds of
        the call, end within its last ``last_s`` seconds, and lie between ``after`` and
        ``before`` (seconds), in time order."""
        end_of_call = self.end_of_speech
        out = []
        for u in self.units:
            if role is not None and u.role != role:
                continue
            if first_s is not None and u.start > self.start_of_speech + first_s:
                continue
            if last_s is not None and u.end < end_of_call - last_s:
                continue
            if after is not None and u.end <= after:
                continue
            if before is not None and u.start >= before:
                continue
            out.append(u)
        return out

    def utterance_ids(self, role: str | None, first: int | None = None, last: int | None = None) -> set[str]:
        """Ids of the role's first ``first`` and (or) last ``last`` utterances that have words
        (a written conversation's messages), in time order."""
        ids = [u.id for u in self.utterances if (role is None or u.role == role) and u.text.strip()]
        keep = set(ids) if first is None and last is None else set()
        if first is not None:
            keep |= set(ids[:first])
        if last is not None:
            keep |= set(ids[-last:] if last > 0 else [])
        return keep

    @functools.cached_property
    def start_of_speech(self) -> float:
        """Where the conversation starts: windows such as "the first 30 s" count from here, so
        a ring or an IVR silence before the answer does not eat the window."""
        return min((u.start for u in self.utterances), default=0.0)

    @functools.cached_property
    def end_of_speech(self) -> float:
        return max((u.end for u in self.utterances), default=self.facts.duration_s)

    def has_role(self, role: str) -> bool:
        return any(u.role == role for u in self.units)

    # -- shared analyses ------------------------------------------------------------------

    @functools.cached_property
    def embeddings(self) -> np.ndarray:
        """Sentence embeddings of every unit (one batch), rows of unit length."""
        return self.models.embed([u.text for u in self.units])

    def similarity(self, examples: tuple[str, ...]) -> np.ndarray:
        """Each unit's highest cosine similarity to any of ``examples`` (n_units,)."""
        if not self.units or not examples:
            return np.zeros(len(self.units), dtype=np.float32)
        return (self.embeddings @ self.models.embed_examples(tuple(examples)).T).max(axis=1)

    @functools.cached_property
    def unit_sentiment(self) -> list[Any]:
        """A models.sentiment.SentimentScore per unit."""
        return self.models.sentiment([u.text for u in self.units], self.embeddings)

    @functools.cached_property
    def metrics(self) -> Any:
        """pipeline.analysis.conversation.ConversationMetrics of the call."""
        return self.models.conversation(self.utterances, self.facts)

    @functools.cached_property
    def written_metrics(self) -> dict[str, Any]:
        """A written conversation's metrics block: messages per role and response times against
        the channel's policy (pipeline/analysis/written.py)."""
        return self.models.written(self.facts)

    @functools.cached_property
    def _language(self) -> list[tuple[list[tuple[str, str, int, int]], set[str]]]:
        """Each unit's spaCy entities and proper nouns, read from the doc of its utterance's
        words (one parse per utterance, the one PII detection made of the same text:
        pipeline/pii/text.py) and cut at the unit's characters: an entity across a unit's edge
        keeps its part inside. A unit of an utterance without words is parsed alone."""
        joined: dict[str, tuple[str, list[int]]] = {}
        for u in self.utterances:
            if u.words:
                starts, at = [], 0
                for w in u.words:
                    starts.append(at)
                    at += len(w.word) + 1
                joined[u.id] = (" ".join(w.word for w in u.words), starts)
        places = [unit_place(u, joined.get(u.utterance_id)) for u in self.units]
        texts = [place[0] if place else u.text for u, place in zip(self.units, places)]
        distinct = list(dict.fromkeys(texts))
        found = dict(zip(distinct, self.models.language(distinct)))
        out = []
        for u, text, place in zip(self.units, texts, places):
            ents, propn = found[text]
            if place is None:
                out.append((list(ents), {t for _, _, t in propn}))
                continue
            start, end = place[1], place[1] + len(u.text)
            inside = []
            for name, label, a, b in ents:
                if a >= start and b <= end:
                    inside.append((name, label, a - start, b - start))
                elif a < end and b > start:  # across the unit's edge: its part inside
                    a, b = max(a, start), min(b, end)
                    piece = text[a:b]
                    a += len(piece) - len(piece.lstrip())
                    piece = piece.strip()
                    if piece:
                        inside.append((piece, label, a - start, a + len(piece) - start))
            out.append((inside, {t for a, b, t in propn if a >= start and b <= end}))
        return out

    @property
    def entities(self) -> list[list[tuple[str, str, int, int]]]:
        """spaCy entities of every unit: (text, label, start char, end char) in ``unit.text``."""
        return [ents for ents, _ in self._language]

    @property
    def proper_nouns(self) -> list[set[str]]:
        """The words of every unit that spaCy tags as proper nouns."""
        return [propn for _, propn in self._language]
