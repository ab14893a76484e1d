"""The analysis stage's cheaper paths give what the full ones give (real packaged models, the
sample conversations of interactions_sample/):

- the detectors read each sentence's entities and proper nouns from the spaCy doc of its
  whole message (the one PII detection parsed), cut at the sentence: no second parse;
- ``questions_answered`` compares a question with pairs of agent sentences only when no single
  sentence answers it by meaning: the same answers as comparing every question with every pair,
  and on a "no" the same confidence and evidence, for far fewer embeddings;
- a conversation's result does not depend on what the worker analysed before (the memos);
- evidence quotes find their words through one WordIndex per utterance (bisection on words in
  time order): the quotes and character spans of quote and quote_span;
- phrases are scored with rapidfuzz's score_cutoff at the fuzzy threshold: the matches of
  scoring every phrase and sorting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from pipeline.analysis.detectors import make_detector
from pipeline.analysis.detectors.base import NA, NO, YES, Detection, Evidence, confidence_from_margin
from pipeline.analysis.detectors.context import AGENT, CUSTOMER, CallContext, CallFacts, normalise, unit_place
from pipeline.analysis.detectors.writing import QuestionsAnsweredDetector, content_words, is_question
from pipeline.analysis.scorecard import load_scorecard
from pipeline.analysis.stage import AnalysisModels, AnalysisStage
from pipeline.config import Config, load_config
from pipeline.interaction.utterances import Utterance, Word

WRITTEN = ROOT / "interactions_sample"


def conversations() -> list[tuple[str, list[Utterance], CallFacts]]:
    """Every sample e-mail thread and chat as the analysis stage is given it."""
    from pipeline.ingest.discover import discover
    from pipeline.ingest.sources import SOURCES

    config = load_config()
    out = []
    for call in discover(WRITTEN):
        source = SOURCES.get(call.kind)(config, Path("/nonexistent"), 1)
        with source.open(call, "0" * 64, Path("/nonexistent")) as conv:
            facts = CallFacts(conv.duration_s, stereo=False, metadata=call.metadata,
                              company=call.metadata.get("company") or config.roles.company,
                              source=conv.source.kind, messages=conv.messages)
            out.append((call.call_id, conv.utterances, facts))
    return out


@pytest.fixture(scope="module")
def samples() -> list[tuple[str, list[Utterance], CallFacts]]:
    found = conversations()
    assert len(found) == 30
    return found


@pytest.fixture(scope="module")
def models() -> AnalysisModels:
    return AnalysisModels(Config(), threads=1)


def written(uid: str, role: str, at: float, text: str) -> Utterance:
    """A message as the written sources make it: whitespace tokens 10 ms apart."""
    tokens = text.split()
    words = [Word(t, at + i * 0.01, at + (i + 1) * 0.01, 1.0) for i, t in enumerate(tokens)]
    return Utterance(uid, 0, at, at + len(tokens) * 0.01, " ".join(tokens), words, role=role)


# -- entities and proper nouns from the message's doc --------------------------------------------


@pytest.mark.slow  # the 30 sample conversations through the models
def test_units_read_their_messages_doc_cut_at_the_unit(samples, models):
    from models.ner import parse

    checked = cut = 0
    for _, utterances, facts in samples:
        ctx = CallContext(utterances, facts, models)
        for u, ents, propn in zip(ctx.units, ctx.entities, ctx.proper_nouns):
            utterance = ctx.by_id[u.utterance_id]
            doc = parse([" ".join(w.word for w in utterance.words)])[0]
            start = doc.text.index(u.text, sum(len(w.word) + 1 for w in utterance.words[:u.word_range[0]]))
            end = start + len(u.text)
            expected = []
            for e in doc.ents:
                if e.start_char >= start and e.end_char <= end:
                    expected.append((e.text, e.label_, e.start_char - start, e.end_char - start))
                elif e.start_char < end and e.end_char > start:  # across the unit's edge: the part inside
                    a, b = max(e.start_char, start) - start, min(e.end_char, end) - start
                    piece = u.text[a:b]
                    a += len(piece) - len(piece.lstrip())
                    if piece.strip():
                        expected.append((piece.strip(), e.label_, a, a + len(piece.strip())))
                        cut += 1
            assert ents == expected
            assert all(u.text[a:b] == text for text, _, a, b in ents)
            assert propn == {t.text for t in doc if t.tag_ in ("NNP", "NNPS") and start <= t.idx < end}
            checked += bool(ents)
    assert checked >= 20  # names, places and dates were found in the samples' sentences
    assert cut >= 1  # and some across a sentence's edge (a date over two sentences, a 30-word window)


@pytest.mark.slow  # a sample conversation through the models (the models loaded)
def test_the_detectors_parse_nothing_pii_detection_has_not_parsed(samples, monkeypatch):
    from models import ner
    from pipeline.analysis import stage as stage_module

    stage = AnalysisStage(load_config(), threads=1)
    parsed: list[str] = []
    real = ner.parse

    def counting(texts, name=ner.DEFAULT_MODEL):
        parsed.extend(t for t in texts if (name, t) not in ner._DOCS)
        return real(texts, name)

    monkeypatch.setattr(ner, "parse", counting)
    monkeypatch.setattr(stage_module, "_LANGUAGE", {})
    monkeypatch.setattr(ner, "_DOCS", {})
    _, utterances, facts = next(s for s in samples if s[0] == "e006")  # six messages
    stage.run(utterances, facts)
    messages = {" ".join(w.word for w in u.words) for u in utterances}
    assert len(parsed) == len(set(parsed)) and set(parsed) == messages  # each message once, nothing else


class _Language:
    """A stand-in for AnalysisModels.language: the entities and proper nouns given per text."""

    def __init__(self, found: dict[str, tuple[list, list]]):
        self.found = found
        self.asked: list[str] = []

    def language(self, texts: list[str]) -> list[tuple[list, list]]:
        self.asked += texts
        return [self.found.get(t, ([], [])) for t in texts]


def test_an_entity_across_a_unit_edge_keeps_its_part_inside():
    u = written("m001", CUSTOMER, 0.0, "I spoke to Mary. Jones said no.")
    text = u.text  # "I spoke to Mary. Jones said no."
    a = text.index("Mary")
    models = _Language({text: ([("Mary. Jones", "PERSON", a, a + len("Mary. Jones"))],
                               [(a, a + 4, "Mary"), (text.index("Jones"), text.index("Jones") + 5, "Jones")])})
    ctx = CallContext([u], CallFacts(1.0, False), models)
    assert [x.text for x in ctx.units] == ["I spoke to Mary.", "Jones said no."]
    assert ctx.entities == [[("Mary.", "PERSON", 11, 16)], [("Jones", "PERSON", 0, 5)]]
    assert ctx.proper_nouns == [{"Mary"}, {"Jones"}]
    assert models.asked == [text]  # the message once, not its sentences


def test_a_unit_of_an_utterance_without_words_is_parsed_alone():
    u = Utterance("u1", 0, 0.0, 1.0, "  Hello there, Anna.  ", [], role=AGENT)
    models = _Language({"Hello there, Anna.": ([("Anna", "PERSON", 13, 17)], [(13, 17, "Anna")])})
    ctx = CallContext([u], CallFacts(1.0, False), models)
    assert ctx.entities == [[("Anna", "PERSON", 13, 17)]] and ctx.proper_nouns == [{"Anna"}]
    assert models.asked == ["Hello there, Anna."]
    assert unit_place(ctx.units[0], None) is None


# -- questions answered: pairs only where no single sentence answers ------------------------------


def full_path(detector: QuestionsAnsweredDetector, ctx: CallContext) -> Detection:
    """The detector as it was before the cheaper path: every question compared with every
    later agent sentence and every later pair of sentences of one agent message."""
    p = detector.params
    questions = [u for u in ctx.units if u.role == CUSTOMER and is_question(u)]
    if not questions:
        return Detection(NA, 0.8, [], "")
    answers = [u for u in ctx.units if u.role == AGENT]
    asked = [detector._with_context(ctx, q) for q in questions]
    pairs = [f"{a.text} {b.text}" for a, b in zip(answers, answers[1:]) if a.utterance_id == b.utterance_id]
    pair_units = [b for a, b in zip(answers, answers[1:]) if a.utterance_id == b.utterance_id]
    vectors = ctx.models.embed(asked + pairs)
    q_emb, pair_emb = vectors[: len(asked)], vectors[len(asked):]
    emb = ctx.embeddings
    unanswered, answered = [], []
    for k, q in enumerate(questions):
        later = [a for a in answers if a.start >= q.start and a.utterance_id != q.utterance_id]
        if not later:
            unanswered.append((q, 0.0))
            continue
        sims = emb[[a.index for a in later]] @ q_emb[k]
        later_pairs = [i for i, u in enumerate(pair_units) if u.start >= q.start and u.utterance_id != q.utterance_id]
        if later_pairs:
            for i, ps in zip(later_pairs, pair_emb[later_pairs] @ q_emb[k]):
                at = later.index(pair_units[i])
                sims[at] = max(sims[at], ps)
        words = content_words(normalise(asked[k]))
        best = int(np.argmax(sims))
        overlap = [len(words & content_words(a.norm)) for a in later]
        j = int(np.argmax(overlap))
        if sims[best] >= p.similarity:
            answered.append((q, later[best], float(sims[best])))
        elif overlap[j] >= min(p.shared_words, max(1, len(words))):
            answered.append((q, later[j], float(sims[j])))
        else:
            unanswered.append((q, float(sims[best])))
    if unanswered:
        ev = [Evidence.of_unit(q, f"not answered (closest agent sentence cosine {s:.2f})", s)
              for q, s in unanswered[: p.max_evidence]]
        margin = p.similarity - max(s for _, s in unanswered)
        return Detection(NO, max(0.55, confidence_from_margin(margin, 0.15)), ev, "")
    weakest = min(s for _, _, s in answered)
    return Detection(YES, max(0.6, confidence_from_margin(weakest - p.similarity, 0.15)), [], "")


@pytest.mark.slow  # the 30 sample conversations through the models
def test_questions_answered_gives_the_full_paths_answers_for_fewer_embeddings(samples, models, monkeypatch):
    cards = {name: load_scorecard(str(ROOT / "configs" / "scorecards" / f"{name}_support.yaml"))
             for name in ("email", "chat")}
    embedded = {"fast": 0, "full": 0}
    real = AnalysisModels.embed
    counting = {"on": None}

    def embed(self, texts):
        if counting["on"]:
            embedded[counting["on"]] += len(texts)
        return real(self, texts)

    monkeypatch.setattr(AnalysisModels, "embed", embed)
    compared = nos = 0
    for call_id, utterances, facts in samples:
        item = next(i for i in cards[facts.source].items if i.detector == "questions_answered")
        detector = make_detector(item)
        ctx = CallContext(utterances, facts, models)
        ctx.embeddings  # the sentences' embeddings, shared by both paths
        counting["on"] = "fast"
        fast = detector(ctx)
        counting["on"] = "full"
        full = full_path(detector, ctx)
        counting["on"] = None
        if fast.answer == "na":
            continue
        compared += 1
        assert fast.answer == full.answer, call_id
        if full.answer == NO:
            nos += 1
            assert fast.confidence == full.confidence, call_id
            assert [(e.utterance_id, e.start, e.rule) for e in fast.evidence] == \
                   [(e.utterance_id, e.start, e.rule) for e in full.evidence], call_id
    assert compared >= 20 and nos >= 2
    assert embedded["fast"] < 0.6 * embedded["full"], embedded


def test_a_question_only_two_sentences_answer_is_still_answered(models):
    """The pairs are there for an answer spread over two sentences: such a question is still
    compared with them (and one a single sentence answers is not)."""
    card = load_scorecard(str(ROOT / "configs" / "scorecards" / "email_support.yaml"))
    item = next(i for i in card.items if i.detector == "questions_answered")
    detector = make_detector(item)
    customer = written("m001", CUSTOMER, 0.0, "Hello. Why was I charged twice for the March invoice?")
    agent = written("m002", AGENT, 3600.0, "Thanks for writing in. We looked into it. "
                                            "The duplicate payment was a bank error and the second charge is refunded.")
    ctx = CallContext([customer, agent], CallFacts(3601.0, False, source="email"), models)
    d = detector(ctx)
    assert d.answer == full_path(detector, ctx).answer == YES


@pytest.mark.slow  # the 30 sample conversations through the models
def test_a_conversations_result_does_not_depend_on_what_was_analysed_before(samples):
    """The memos (embeddings, spaCy docs, entities) and the lazy pairs: each sample analysed
    in one order and again in the reverse order, the memos emptied before each pass, gives the
    same blocks."""
    from models import ner, text_embedding
    from pipeline.analysis import stage as stage_module

    def analyse(order):
        text_embedding._MEMO.clear()
        ner._DOCS.clear()
        stage_module._LANGUAGE.clear()
        stage = AnalysisStage(load_config(), threads=1)
        return {call_id: stage.run(utterances, facts)[0] for call_id, utterances, facts in order}

    forward = analyse(samples)
    backward = analyse(samples[::-1])
    assert forward.keys() == backward.keys()
    for call_id in forward:
        assert forward[call_id] == backward[call_id], call_id


# -- quotes, phrases and polarity, once per interaction ------------------------------------------


def test_word_index_finds_by_bisection_the_words_a_scan_finds():
    """WordIndex (one utterance's words read once for all its quotes, a run found by bisection
    when the words are in time order) against every word tested (``scan``), and the quote and
    span built from those words: written messages (words 10 ms apart), recognised words (gaps,
    zero-length words at a segment's end), words out of order, and a text that is not the words
    joined."""
    import random

    from pipeline.analysis.stage import WordIndex, quote, quote_span

    rng = random.Random(20)
    checked = 0
    for _ in range(1500):
        kind = rng.choice(["written", "recognised", "unordered"])
        words, t = [], rng.uniform(0.0, 5.0)
        for i in range(rng.randint(0, 12)):
            if kind == "written":
                a, b = t + i * 0.01, t + (i + 1) * 0.01
            elif kind == "recognised":
                a = t
                b = t + rng.choice([0.0, 0.0005, 0.2, 0.5])
                t = b + rng.choice([0.0, 0.1])
            else:
                a = rng.uniform(0.0, 3.0)
                b = a + rng.choice([0.0, 0.001, 0.3])
            words.append(Word(rng.choice(["a", "bb", "[PERSON]", "ccc."]), round(a, 3), round(b, 3), 1.0))
        text = " ".join(w.word for w in words) if rng.random() < 0.8 else "another text"
        u = Utterance("m001", 0, 0.0, 1.0, text, words)
        index = WordIndex(u)
        for _ in range(20):
            start = rng.uniform(-0.5, 6.0)
            end = start + rng.choice([0.0, 0.001, 0.01, 0.05, 1.0, 5.0])
            if words and rng.random() < 0.3:  # a span of whole words, as evidence of a unit has
                start, end = rng.choice(words).start, rng.choice(words).end
            taken = index.scan(start, end)
            assert list(index.inside(start, end)) == taken
            assert quote(u, start, end) == (" ".join(words[i].word for i in taken) if taken else text)
            offsets = [sum(len(w.word) + 1 for w in words[:i]) for i in range(len(words))]
            assert quote_span(u, start, end) == (
                (offsets[taken[0]], offsets[taken[-1]] + len(words[taken[-1]].word))
                if taken and text == " ".join(w.word for w in words) else None)
            checked += 1
    assert checked == 30000


def test_phrases_are_scored_with_a_cutoff_as_without(samples):
    """The phrase detector scores phrases with rapidfuzz's ``score_cutoff`` at the item's fuzzy
    threshold and looks only at those reaching it: every unit of the samples, for every phrase
    item of the written scorecards, matches as when all phrases are scored and sorted (the
    matcher before the cutoff, written out here)."""
    from rapidfuzz import fuzz

    from pipeline.analysis.detectors.negation import expand, same_polarity
    from pipeline.analysis.detectors.phrases import matcher_for

    def full_match(m, unit):  # PhraseMatcher.match scoring every phrase (semantic 0: no example matches)
        if m.word_re is not None and (found := m.word_re.search(unit.norm)):
            return 1.0, f"word '{found.group(0)}'"
        for pat in m.patterns:
            if pat.search(unit.norm):
                return 1.0, f"pattern '{pat.pattern}'"
        text = expand(unit.norm)
        scored = sorted(((fuzz.partial_ratio(ph, text), ph) for ph in m.phrases if len(ph) <= len(text) + 3),
                        reverse=True)
        for score, ph in scored:
            if score < m.p.fuzzy_threshold:
                break
            if same_polarity(ph, text):
                return score / 100.0, f"phrase '{m.phrases[ph]}' (fuzzy {score:.0f})"
        return None

    items = []
    for name in ("email_support.yaml", "chat_support.yaml"):
        card = load_scorecard(str(ROOT / "configs" / "scorecards" / name))
        items += [make_detector(i).params for i in card.items if i.detector == "phrase" and i.params.get("phrases")]
    assert len(items) >= 4
    compared = phrased = 0
    for _, utterances, facts in samples:
        ctx = CallContext(utterances, facts, models=None)
        for p in items:
            matcher = matcher_for(p, ctx)
            for unit in ctx.units:
                expected = full_match(matcher, unit)
                assert matcher.match(unit, 0.0) == expected, (unit.text, p.phrases[:3])
                compared += 1
                phrased += bool(expected and expected[1].startswith("phrase"))
    assert compared > 1000 and phrased > 20
