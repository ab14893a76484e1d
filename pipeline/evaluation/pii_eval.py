"""PII detection measured against gold spans (the labels' ``pii`` list, pipeline/evaluation/labels.py).

Two views of the same detector: on the gold text (the words a person wrote down, so only the
detector is measured) and on the recogniser's words (what a run redacts, misheard names and
numbers included). A found span and a gold span match when they overlap: in words on the gold
text, in time on the recognised words (gold times are placed within their utterance in
proportion to the characters before them, so a small tolerance is allowed). Figures: span recall
(gold spans touched by a found span) and precision (found spans touching a gold span), each also
with the type required to agree, recall per type, and the share of the gold words (text) or
seconds (audio, with the masking pad) that end up masked, which is what privacy depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.pii.text import PiiOptions, PiiSpan, find_pii
from pipeline.interaction.utterances import Utterance, Word

TIME_TOLERANCE_S = 0.5
"""Slack on each side of a gold span's estimated times when matching in time (they are placed in
proportion to the characters, and speech is not that even)."""


@dataclass
class GoldSpan:
    """One labelled span: its utterance (index among the sorted gold utterances), type, the gold
    words it covers and its estimated times."""

    utterance: int
    type: str
    first_word: int
    last_word: int
    start: float
    end: float


@dataclass
class PiiScore:
    """Counts summed over calls; :meth:`to_dict` gives the figures."""

    gold: int = 0
    found: int = 0
    gold_hit: int = 0
    found_hit: int = 0
    gold_hit_typed: int = 0
    found_hit_typed: int = 0
    covered: float = 0.0
    """Gold words (text) or seconds (recognised) masked."""
    extent: float = 0.0
    """Gold words or seconds in all."""
    per_type: dict[str, list[int]] = field(default_factory=dict)
    """type -> [gold spans, of them matched]."""

    def add(self, other: "PiiScore") -> None:
        for k in ("gold", "found", "gold_hit", "found_hit", "gold_hit_typed", "found_hit_typed", "covered", "extent"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for t, (g, h) in other.per_type.items():
            mine = self.per_type.setdefault(t, [0, 0])
            mine[0], mine[1] = mine[0] + g, mine[1] + h

    def to_dict(self) -> dict[str, Any]:
        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "gold_spans": self.gold, "found_spans": self.found,
            "recall": ratio(self.gold_hit, self.gold), "precision": ratio(self.found_hit, self.found),
            "recall_typed": ratio(self.gold_hit_typed, self.gold),
            "precision_typed": ratio(self.found_hit_typed, self.found),
            "masked_share": ratio(self.covered, self.extent),
            "recall_per_type": {t: ratio(h, g) for t, (g, h) in sorted(self.per_type.items())},
        }


def _tokens(text: str) -> list[tuple[int, int]]:
    """Character range of each whitespace-separated token."""
    out, at = [], 0
    for tok in text.split():
        at = text.index(tok, at)
        out.append((at, at + len(tok)))
        at += len(tok)
    return out


def gold_call(utterances: Sequence[dict[str, Any]]) -> tuple[list[Utterance], list[GoldSpan]]:
    """The gold utterances as records (a word per token, timed in proportion to the characters
    before it) and their gold spans."""
    records, spans = [], []
    for k, u in enumerate(utterances):
        text, start, end = u["text"], u["start"], u["end"]
        toks = _tokens(text)
        per_char = (end - start) / max(len(text), 1)
        words = [Word(text[a:b], start + a * per_char, start + b * per_char, 1.0) for a, b in toks]
        records.append(Utterance(f"g{k:04d}", u.get("channel") or 0, start, end, text, words,
                                 u.get("speaker"), u.get("role")))
        for p in u.get("pii", []):
            covered = [i for i, (a, b) in enumerate(toks) if a < p["end_char"] and p["first_char"] < b]
            spans.append(GoldSpan(k, p["type"], covered[0], covered[-1],
                                  start + p["first_char"] * per_char, start + p["end_char"] * per_char))
    return records, spans


def score_text(utterances: Sequence[dict[str, Any]], options: PiiOptions, organisation: str | None = None) -> PiiScore:
    """The detector on one call's gold text against its gold spans (word overlap)."""
    records, gold = gold_call(utterances)
    found = find_pii(records, options, organisation)
    index = {r.id: k for k, r in enumerate(records)}

    def overlap(g: GoldSpan, s: PiiSpan) -> bool:
        return index[s.utterance_id] == g.utterance and s.first_word <= g.last_word and g.first_word <= s.last_word

    score = _match(gold, found, overlap)
    masked = {(index[s.utterance_id], i) for s in found for i in range(s.first_word, s.last_word + 1)}
    words = {(g.utterance, i) for g in gold for i in range(g.first_word, g.last_word + 1)}
    score.covered, score.extent = len(words & masked), len(words)
    return score


def score_recognised(utterances: Sequence[dict[str, Any]], found: Sequence[PiiSpan], pad_s: float,
                     tolerance_s: float = TIME_TOLERANCE_S) -> PiiScore:
    """Spans found in the recogniser's words of one call against its gold spans (time overlap);
    the masked share counts the gold seconds under a found span widened by ``pad_s`` (as in
    the masked audio)."""
    _, gold = gold_call(utterances)

    def overlap(g: GoldSpan, s: PiiSpan) -> bool:
        return s.start < g.end + tolerance_s and g.start - tolerance_s < s.end

    score = _match(gold, list(found), overlap)
    masks = _merge([(s.start - pad_s, s.end + pad_s) for s in found])
    for g in gold:
        score.extent += g.end - g.start
        score.covered += sum(max(0.0, min(b, g.end) - max(a, g.start)) for a, b in masks)
    return score


def _merge(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def _match(gold: list[GoldSpan], found: list[PiiSpan], overlap: Any) -> PiiScore:
    score = PiiScore(gold=len(gold), found=len(found))
    for g in gold:
        hits = [s for s in found if overlap(g, s)]
        score.gold_hit += bool(hits)
        score.gold_hit_typed += any(s.type == g.type for s in hits)
        row = score.per_type.setdefault(g.type, [0, 0])
        row[0] += 1
        row[1] += bool(hits)
    for s in found:
        hits = [g for g in gold if overlap(g, s)]
        score.found_hit += bool(hits)
        score.found_hit_typed += any(g.type == s.type for g in hits)
    return score
