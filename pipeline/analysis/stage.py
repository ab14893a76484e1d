"""The analysis stage: from a call's attributed words to its scorecard suggestion.

For every call: conversation metrics (pipeline/analysis/conversation.py), sentiment per sentence, turn,
role and quarter of the call (models/sentiment.py), every scorecard item answered by its
detector with a confidence and evidence (pipeline/analysis/detectors, the template from
pipeline/analysis/scorecard.py), the scores, and PII found and redacted (pipeline/pii/text.py) in everything
written: utterances, transcripts, evidence quotes, the role evidence; and the interaction
documented (the contact block, pipeline/analysis/contact.py: reason, actions, outcome,
follow-ups, mentions), from the same context and embeddings, quoting the written words. The models (sentence
embeddings, sentiment head, spaCy) load once per worker process; each call embeds all its
sentences in one batch, shared by every detector and the sentiment model.
"""

from __future__ import annotations

import bisect
import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analysis.detectors import make_detector
from pipeline.analysis.detectors.base import Evidence
from pipeline.analysis.detectors.context import AGENT, CUSTOMER, CallContext, CallFacts
from pipeline.interaction.utterances import Utterance
from pipeline.analysis.card import Scorecard, score_answers
from pipeline.analysis.scorecard import (ScorecardOptions, apply_calibration, load_scorecard, template_for,
                                         template_path)
from pipeline.interaction.record import AUDIO_SOURCES, CHANNEL_OF

QUARTERS = 4


_SHARED: dict[Any, Any] = {}
"""Models loaded in this process, by what decides them: several analysis stages (a sweep
over settings) share one copy."""


Language = tuple[list[tuple[str, str, int, int]], list[tuple[int, int, str]]]
"""What the detectors read of a text's spaCy doc: its entities (text, label, start and end
character) and its proper nouns (start and end character, text)."""

_LANGUAGE: dict[tuple[str, str], Language] = {}
"""spaCy's entities and proper nouns of the texts parsed in this process, by (model, text)."""


def _shared(key: Any, load: Any) -> Any:
    if key not in _SHARED:
        _SHARED[key] = load()
    return _SHARED[key]


class AnalysisModels:
    """The models detectors use, loaded on first use and kept for the process's life (shared
    by every stage with the same model settings)."""

    def __init__(self, config: Any, threads: int):
        self.config = config
        self.threads = threads
        self._described: dict[str, dict[str, Any]] = {}
        """Each used model's provenance, by its key in ``describe``."""

    @functools.cached_property
    def embedder(self) -> Any:
        from models.text_embedding import SentenceEmbedder

        return _shared(("embedder", self.threads), lambda: SentenceEmbedder(self.threads))

    @functools.cached_property
    def sentiment_model(self) -> Any:
        import dataclasses
        import json

        from models.sentiment import load_sentiment

        key = ("sentiment", json.dumps(dataclasses.asdict(self.config.sentiment), sort_keys=True), self.threads)
        return _shared(key, lambda: load_sentiment(self.config.sentiment, self.threads))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts)

    def embed_examples(self, examples: tuple[str, ...]) -> np.ndarray:
        """Embeddings of a detector's examples, computed once per process."""
        return _shared(("examples", examples), lambda: self.embedder.encode(list(examples)))

    def sentiment(self, texts: list[str], embeddings: np.ndarray) -> list[Any]:
        return self.sentiment_model.score(texts, embeddings)

    def conversation(self, utterances: list[Utterance], facts: CallFacts) -> Any:
        from pipeline.analysis.conversation import conversation_metrics

        return conversation_metrics(utterances, facts.duration_s, facts.stereo, self.config.conversation)

    def written(self, facts: CallFacts) -> dict[str, Any]:
        """The metrics block of a written conversation (pipeline/analysis/written.py)."""
        from pipeline.analysis.written import written_metrics

        return written_metrics(facts.messages or [], facts.source, self.config.channels)

    def language(self, texts: list[str]) -> list[Language]:
        """spaCy entities and proper nouns of each text (one batch), read from each text's doc
        once per process (templates and sign-offs repeat in every conversation); callers only
        read them. The texts are whole utterances (CallContext cuts them at its sentences),
        those PII detection parsed already: models.ner.parse keeps their docs."""
        from models.ner import DOC_MEMO, parse

        name = self.config.pii.spacy_model
        found = {t: _LANGUAGE[(name, t)] for t in dict.fromkeys(texts) if (name, t) in _LANGUAGE}
        new = [t for t in dict.fromkeys(texts) if t not in found]
        for text, doc in zip(new, parse(new, name)):
            ents = [(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents]
            found[text] = (ents, [(t.idx, t.idx + len(t.text), t.text) for t in doc if t.tag_ in ("NNP", "NNPS")])
            if len(_LANGUAGE) >= DOC_MEMO:
                del _LANGUAGE[next(iter(_LANGUAGE))]  # the oldest
            _LANGUAGE[(name, text)] = found[text]
        return [found[t] for t in texts]

    def describe(self) -> dict[str, Any]:
        """Provenance of the models this worker has used (describing one never loads it).
        A model's description is made once, when it is first described after loading (package
        versions, the sentiment head's hash: the same for the process's life), and copied."""
        from models.ner import describe as ner_describe, load_nlp

        used = {"text_embedding": "embedder" in self.__dict__, "sentiment": "sentiment_model" in self.__dict__,
                "ner": bool(load_nlp.cache_info().currsize)}
        for key in (k for k, on in used.items() if on and k not in self._described):
            self._described[key] = (self.embedder.describe() if key == "text_embedding" else
                                    self.sentiment_model.describe() if key == "sentiment" else
                                    ner_describe(self.config.pii.spacy_model))
        return {key: copy.deepcopy(self._described[key]) for key in used if used[key]}


def quote(utterance: Utterance | None, start: float, end: float) -> str:
    """The words of ``utterance`` that overlap ``start``-``end`` (its written, redacted form;
    :class:`WordIndex`)."""
    return "" if utterance is None else WordIndex(utterance).quote(start, end)


def message_number(utterance_id: str | None) -> int | None:
    """The message number of a written conversation's utterance id (``m007`` -> 7), else None."""
    if not utterance_id or utterance_id[0] != "m" or not utterance_id[1:].isdigit():
        return None
    return int(utterance_id[1:])


def quote_span(utterance: Utterance, start: float, end: float) -> tuple[int, int] | None:
    """The character span, in the utterance's text, of the words ``quote`` takes (a written
    message's text is its words joined by single spaces; None otherwise)."""
    return WordIndex(utterance).span(start, end)


class WordIndex:
    """One utterance's words as quotes read them (:func:`quote`, :func:`quote_span`), worked out
    once for all the quotes taken from it: the words' times, whether the text is the words
    joined by single spaces, and each word's character offset there. A word is taken when it
    overlaps the span (a zero-length word, at a segment's end, when it lies inside it). When the
    words are in time order (starts and ends never decreasing) and none is of zero length, the
    words a span takes are one run, found by bisection; otherwise every word is tested
    (:meth:`scan`)."""

    __slots__ = ("utterance", "tokens", "starts", "ends", "ordered", "offsets")

    def __init__(self, utterance: Utterance):
        self.utterance = utterance
        words = utterance.words
        self.tokens = [w.word for w in words]
        self.starts = [w.start for w in words]
        self.ends = [w.end for w in words]
        self.ordered = (all(b - a > 1e-3 for a, b in zip(self.starts, self.ends))
                        and all(a <= b for a, b in zip(self.starts, self.starts[1:]))
                        and all(a <= b for a, b in zip(self.ends, self.ends[1:])))
        self.offsets: list[int] | None = None
        """Each word's first character in the text, when the text is the words joined by single spaces."""
        if words and utterance.text == " ".join(self.tokens):
            self.offsets, at = [], 0
            for t in self.tokens:
                self.offsets.append(at)
                at += len(t) + 1

    def inside(self, start: float, end: float) -> range | list[int]:
        """The indices of the words a quote of ``start``-``end`` takes, in order."""
        if self.ordered:
            lo = bisect.bisect_right(self.ends, start + 1e-3)  # the first word ending after the start
            hi = bisect.bisect_left(self.starts, end - 1e-3)  # the first word starting at or after the end
            return range(lo, max(lo, hi))
        return self.scan(start, end)

    def scan(self, start: float, end: float) -> list[int]:
        """:meth:`inside`, every word tested."""
        out = []
        for i, (a, b) in enumerate(zip(self.starts, self.ends)):
            if (start - 1e-3 <= a <= end + 1e-3) if b - a <= 1e-3 else (b > start + 1e-3 and a < end - 1e-3):
                out.append(i)
        return out

    def quote(self, start: float, end: float) -> str:
        """The words taken, joined by spaces (the utterance's text when none is, or it has no words)."""
        if not self.tokens:
            return self.utterance.text
        taken = self.inside(start, end)
        return " ".join([self.tokens[i] for i in taken]) if taken else self.utterance.text

    def span(self, start: float, end: float) -> tuple[int, int] | None:
        """The character span of the words taken in the utterance's text (None when no word is,
        or the text is not its words joined by single spaces)."""
        if self.offsets is None:
            return None
        taken = self.inside(start, end)
        if not taken:
            return None
        return self.offsets[taken[0]], self.offsets[taken[-1]] + len(self.tokens[taken[-1]])


def sentiment_block(ctx: CallContext) -> dict[str, Any]:
    """Sentiment per turn, per role, per quarter of the call, and the customer's start and end."""
    if not ctx.units:
        return {"turns": [], "roles": {}, "quarters": [], "customer_start": None, "customer_end": None}
    from pipeline.analysis.detectors.experience import turn_scores

    low, high = ctx.models.config.sentiment.negative_threshold, ctx.models.config.sentiment.positive_threshold
    turns = []
    for role in (AGENT, CUSTOMER):
        for uid, score, units in turn_scores(ctx, role):
            label = "negative" if score <= low else "positive" if score >= high else "neutral"
            turns.append({"utterance_id": uid, "role": role, "start": round(units[0].start, 3), "score": round(score, 3),
                          "label": label})
    turns.sort(key=lambda t: t["start"])
    span = max(ctx.end_of_speech - ctx.start_of_speech, 1e-6)

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    quarters = []
    for q in range(QUARTERS):
        lo = ctx.start_of_speech + span * q / QUARTERS
        hi = ctx.start_of_speech + span * (q + 1) / QUARTERS
        inside = [t for t in turns if lo <= t["start"] < hi or (q == QUARTERS - 1 and t["start"] >= hi)]
        quarters.append({"quarter": q + 1, "start": round(lo, 3), "end": round(hi, 3),
                         **{role: mean([t["score"] for t in inside if t["role"] == role]) for role in (AGENT, CUSTOMER)}})
    customer = [t["score"] for t in turns if t["role"] == CUSTOMER]
    return {
        "turns": turns,
        "roles": {role: mean([t["score"] for t in turns if t["role"] == role]) for role in (AGENT, CUSTOMER)},
        "quarters": quarters,
        "customer_start": mean(customer[:2]),
        "customer_end": mean(customer[-2:]),
    }


class AnalysisStage:
    """Loads the scorecard templates and their detectors once (each on first use); ``run``
    analyses one interaction with the template of its channel and queue."""

    def __init__(self, config: Any, threads: int):
        self.config = config
        self.options: ScorecardOptions = config.scorecard
        self.card: Scorecard | None = load_scorecard(self.options.template) if self.options.enabled else None
        """The default template (calls)."""
        self.detectors = [make_detector(item) for item in self.card.items] if self.card else []
        self._cards: dict[Path, tuple[Scorecard, list[Any]]] = {}
        if self.card is not None:
            self._cards[template_path(self.options)] = (self.card, self.detectors)
        self.models = AnalysisModels(config, threads)

    def card_for(self, facts: CallFacts) -> tuple[Scorecard, list[Any]] | None:
        """The template (and its detectors) an interaction is scored with; None when off."""
        if self.card is None:
            return None
        channel_templates = self.config.channel_templates() if hasattr(self.config, "channel_templates") else {}
        path = template_for(self.options, channel_templates, CHANNEL_OF.get(facts.source, "voice"),
                            facts.metadata.get("queue"))
        if path not in self._cards:
            card = load_scorecard(str(path))
            self._cards[path] = (card, [make_detector(item) for item in card.items])
        return self._cards[path]

    def describe(self) -> dict[str, Any]:
        return self.models.describe()

    def run(self, utterances: list[Utterance], facts: CallFacts) -> tuple[dict[str, Any], list[Utterance], list[Any]]:
        """(blocks for call.json, the utterances as written (redacted), the PII spans)."""
        from pipeline.ingest.written import person_names
        from pipeline.pii.text import find_pii, redact_utterances

        pii_options = self.config.pii
        names = set().union(*person_names(facts.messages).values()) if facts.messages else set()
        spans = find_pii(utterances, pii_options, facts.company, names) if pii_options.enabled else []
        written = redact_utterances(utterances, spans) if pii_options.enabled and pii_options.redact else utterances
        blocks: dict[str, Any] = {}
        chosen = self.card_for(facts)
        contact_on = bool(getattr(getattr(self.config, "contact", None), "enabled", False))
        by_id = {u.id: u for u in written}
        words: dict[str, WordIndex] = {}
        if chosen is None:
            if contact_on:
                blocks["contact"] = self._contact(CallContext(utterances, facts, self.models), by_id, spans, words)
            blocks["pii"] = self._pii_block(spans)
            return blocks, written, spans
        card, detectors = chosen
        ctx = CallContext(utterances, facts, self.models)
        items = []
        answers = {}
        for item, detector in zip(card.items, detectors):
            d = detector(ctx)
            answers[item.id] = d.answer
            items.append({
                "id": item.id, "section": item.section, "question": item.question, "answer": d.answer,
                "confidence": round(float(d.confidence), 3),
                "points": item.points if d.answer == "yes" else 0.0,
                "potential": 0.0 if d.answer == "na" else item.points,
                "auto_fail": item.auto_fail, "detector": item.detector, "looked_for": d.looked_for,
                "evidence": [self._evidence(e, by_id, facts.duration_s, words) for e in d.evidence],
                **({"details": d.details} if d.details else {}),
            })
        if written is not utterances:  # the detectors' rule texts may name what the quotes mask
            items = redact_strings(items, pii_texts(utterances, spans))
        items = apply_calibration(items, self.options.calibration, card.name)  # confidences fitted on reviews, if any
        blocks["scorecard"] = {"template": card.describe(), "items": items, "score": score_answers(card, answers)}
        blocks["sentiment"] = sentiment_block(ctx)
        blocks["metrics"] = ctx.metrics.to_dict() if facts.source in AUDIO_SOURCES else ctx.written_metrics
        if contact_on:
            blocks["contact"] = self._contact(ctx, by_id, spans, words)
        blocks["pii"] = self._pii_block(spans)
        return blocks, written, spans

    def _contact(self, ctx: CallContext, by_id: dict[str, Utterance], spans: list[Any],
                 words: dict[str, WordIndex] | None = None) -> dict[str, Any]:
        """The contact block (pipeline/analysis/contact.py) from the detectors' context (its
        units, embeddings, sentiment), every quote from the written (redacted) utterances."""
        from pipeline.analysis.contact import contact_block

        duration = ctx.facts.duration_s
        words = {} if words is None else words
        return contact_block(ctx, self.config.contact, spans, lambda e: self._evidence(e, by_id, duration, words))

    @staticmethod
    def _evidence(e: Evidence, by_id: dict[str, Utterance], duration_s: float,
                  words: dict[str, "WordIndex"] | None = None) -> dict[str, Any]:
        """The evidence as written: its times inside the recording, its quote from the written
        (redacted) words; in a written conversation also the message's number and the quote's
        character span in its written text (``message``, ``chars``). ``words``: the
        :class:`WordIndex` of each utterance of ``by_id`` quoted so far (filled here), so that
        the many quotes of one interaction find their words without reading every word."""
        d = e.to_dict()
        d["start"], d["end"] = (round(min(max(t, 0.0), duration_s), 3) for t in (e.start, e.end))
        utterance = by_id.get(e.utterance_id) if e.utterance_id else None
        index = None
        if utterance is not None:
            words = {} if words is None else words
            index = words.get(utterance.id)
            if index is None or index.utterance is not utterance:
                index = words[utterance.id] = WordIndex(utterance)
        d["quote"] = index.quote(e.start, e.end) if index is not None else ""
        number = message_number(e.utterance_id)
        if number is not None and index is not None:
            d["message"] = number
            span = index.span(e.start, e.end)
            if span is not None:
                d["chars"] = list(span)
        return d

    def _pii_block(self, spans: list[Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in spans:
            counts[s.type] = counts.get(s.type, 0) + 1
        return {"enabled": self.config.pii.enabled, "redacted": bool(self.config.pii.enabled and self.config.pii.redact),
                "counts": counts, "spans": [s.to_dict() for s in spans]}


def pii_texts(utterances: list[Utterance], spans: list[Any]) -> dict[str, str]:
    """The text of every PII span (``{"Priyanka Desai": "[PERSON]"}``), longest first, from the
    unredacted words, to mask it wherever a detector wrote it into a rule or a detail."""
    by_id = {u.id: u for u in utterances}
    out: dict[str, str] = {}
    for span in spans:
        u = by_id.get(span.utterance_id)
        if u is None:
            continue
        tokens = [w.word for w in u.words] if u.words else u.text.split()
        text = " ".join(tokens[span.first_word:span.last_word + 1]).strip(" ,.?!;:\"'")
        if len(text) >= 2:
            out[text] = f"[{span.type}]"
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def redact_strings(obj: Any, texts: dict[str, str]) -> Any:
    """``obj`` (nested dicts, lists, strings) with every occurrence of a key of ``texts`` replaced
    (case-insensitive, whole words) by its value; quotes are already redacted and stay as they are."""
    import re

    if not texts:
        return obj
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in texts) + r")(?!\w)", re.IGNORECASE)
    lower = {k.lower(): v for k, v in texts.items()}

    def walk(x: Any, key: str = "") -> Any:
        if isinstance(x, str):
            return x if key == "quote" else pattern.sub(lambda m: lower.get(m.group(0).lower(), m.group(0)), x)
        if isinstance(x, dict):
            return {k: walk(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v, key) for v in x]
        return x

    return walk(obj)


def redact_speaker_evidence(speakers: dict[str, Any], written: list[Utterance]) -> dict[str, Any]:
    """The speakers block with the quotes of its role evidence taken from the written
    (redacted) utterances, by time."""
    out = dict(speakers)
    evidence = []
    for ev in speakers.get("evidence", []):
        if "text" in ev and "start" in ev:
            inside = [u for u in written if u.end > ev["start"] and u.start < ev["end"]]
            ev = {**ev, "text": " ".join(quote(u, ev["start"], ev["end"]) for u in inside)}
        evidence.append(ev)
    out["evidence"] = evidence
    if isinstance(speakers.get("automatic"), dict):
        out["automatic"] = redact_speaker_evidence(speakers["automatic"], written)
    return out
