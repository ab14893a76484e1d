"""Detectors written conversations need: response times against the channel's policy, every
customer question answered, concise writing, spelling, and the agent's signature.

``response_time`` reads the metrics of the written conversation (pipeline/analysis/written.py),
so it applies to e-mail and chat only. The others read words and apply wherever there are
words (a call's agent answers questions too), though their defaults are set for writing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.analysis.detectors.base import (
    NA, NO, YES, CallContext, Detection, Detector, Evidence, condition, confidence_from_margin, register,
)
from pipeline.analysis.detectors.context import AGENT, CUSTOMER, Unit, normalise
from pipeline.errors import ConfigError
from pipeline.ingest.written import is_sign_off
from pipeline.interaction.record import CHAT, EMAIL

WRITTEN = frozenset({EMAIL, CHAT})


def _message_evidence(ctx: CallContext, number: int | None, rule: str) -> list[Evidence]:
    """Evidence pointing at message ``number`` (1-based) of a written conversation."""
    if number is None:
        return []
    utterance = ctx.by_id.get(f"m{number:03d}")
    if utterance is None:
        return []
    words = utterance.words
    return [Evidence(utterance.start, utterance.end, rule, utterance.id, utterance.role,
                     (0, len(words) - 1) if words else None, utterance.text)]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass
class ResponseTimeParams:
    """Parameters of ``response_time``."""

    check: str = "first"
    """``first``: the first response within the channel's policy (``channels.*.response_s``);
    ``all``: every response within it; ``gaps``: no customer message left longer than the gap
    policy (``channels.chat.gap_s``; e-mail: its response policy)."""


@register("response_time")
class ResponseTimeDetector(Detector):
    """Yes when the responses are within the channel's policy (see ``ResponseTimeParams``),
    counted in business hours when the channel says so; na without a customer message."""

    Params = ResponseTimeParams
    sources = WRITTEN

    def check(self, where: str) -> None:
        if self.params.check not in ("first", "all", "gaps"):
            raise ConfigError(f"{where}: params.check: '{self.params.check}' is not allowed; use first, all or gaps")

    def detect(self, ctx: CallContext) -> Detection:
        metrics = ctx.written_metrics
        times = metrics["response_times"]
        policy = metrics["policy"]
        clock = "business time" if policy.get("business_hours") else "elapsed time"
        first = times.get("first_response")
        if first is None:
            return Detection(NA, 0.9, [], f"the agent's first response (no customer message to answer)")
        limit = policy["response_s"] if self.params.check != "gaps" else (policy.get("gap_s") or policy["response_s"])
        looked_for = {"first": f"the agent's first response within {_hours(limit)} of {clock}",
                      "all": f"every response of the agent within {_hours(limit)} of {clock}",
                      "gaps": f"no customer message waiting over {_hours(limit)} of {clock} for the agent"}[self.params.check]
        waits = [first] if self.params.check == "first" else [first, *times.get("responses", [])]
        unanswered = times.get("unanswered") or []
        if self.params.check == "first" and first.get("business_s") is None:
            return Detection(NO, 0.9, _message_evidence(ctx, first.get("customer_message"), "never answered"),
                             looked_for, {"first_response": first})
        late = [w for w in waits if w.get("business_s") is not None and w["business_s"] > limit]
        ev: list[Evidence] = []
        for w in (late or waits)[:3]:
            rule = f"answered after {_hours(w['business_s'])} of {clock}" + (f" ({_hours(w['wall_s'])} elapsed)" if w.get("wall_s") is not None else "")
            ev += _message_evidence(ctx, w.get("agent_message"), rule)
        details = {"first_response_s": first.get("business_s"), "limit_s": limit}
        if self.params.check != "first" and unanswered:
            details["unanswered_messages"] = unanswered
        if late:
            worst = max(w["business_s"] for w in late)
            return Detection(NO, confidence_from_margin((worst - limit) / max(limit, 1.0), 0.1), ev, looked_for, details)
        slowest = max((w["business_s"] for w in waits if w.get("business_s") is not None), default=0.0)
        return Detection(YES, confidence_from_margin((limit - slowest) / max(limit, 1.0), 0.1), ev, looked_for, details)


# -- questions ---------------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^(how|what|when|where|why|who|whom|which|whose|can|could|would|will|shall|should|is|are|am|was|were|do|does|did|"
    r"have|has|had|may|might|any idea|is there|are there)\b")
_REQUEST = re.compile(
    r"\b(please (let me know|tell me|advise|confirm|explain|clarify)|(can|could) you (tell|let me know|confirm|explain|check)|"
    r"i('d| would) (like|love) to know|i want to know|i need to know|wondering (if|whether|what|when|how|why))\b")
_STOP = frozenset("""a an the and or but if of to in on at for with by from as is are was were be been being do does did
have has had i me my we our you your he she it its they them their this that these those there here what when where
why how who which can could would will shall should may might must not no yes so just please thanks thank hi hello
dear regards any some about into over than then also very really too get got am im i'm you're it's don't can't
know let tell want like need one""".split())


def is_question(unit: Unit) -> bool:
    """A sentence asking something: a question mark, an interrogative opening, or a request for
    information ("please let me know ...", "I'd like to know ...")."""
    text = unit.norm
    if len(text.split()) < 3:
        return False
    return unit.question or bool(_QUESTION_START.match(text) and unit.text.rstrip().endswith("?")) or bool(_REQUEST.search(text))


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry its topic (no function words), crudely stemmed."""
    out = set()
    for w in text.split():
        w = w.strip("'")
        if len(w) < 3 or w in _STOP or w.isdigit():
            continue
        out.add(stem(w))
    return out


def stem(word: str) -> str:
    """A crude stem, the same for the forms of one word that matter here (close, closes,
    closed, closing -> clos; account, accounts -> account)."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass
class QuestionsAnsweredParams:
    """Parameters of ``questions_answered``."""

    similarity: float = 0.45
    """A later agent sentence this similar (cosine of sentence embeddings) to the question
    answers it ..."""
    shared_words: int = 2
    """... or one sharing this many of its topic words (function words left out)."""
    max_evidence: int = 3


@register("questions_answered")
class QuestionsAnsweredDetector(Detector):
    """Yes when every question the customer asked is followed by an agent sentence on its topic
    (by meaning or by shared topic words); na when the customer asked none."""

    Params = QuestionsAnsweredParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        questions = [u for u in ctx.units if u.role == CUSTOMER and is_question(u)]
        looked_for = "an agent answer after each question the customer asked"
        if not questions:
            return Detection(NA, 0.8, [], looked_for, {"note": "the customer asked no question"})
        answers = [u for u in ctx.units if u.role == AGENT]
        # a short question ("What do I need to do?") is read with the sentence before it in
        # its message; an answer may take two sentences of the agent's message
        asked = [self._with_context(ctx, q) for q in questions]
        q_emb = ctx.models.embed(asked)
        emb = ctx.embeddings
        pairs = [(a, b) for a, b in zip(answers, answers[1:]) if a.utterance_id == b.utterance_id]
        unanswered: list[tuple[Unit, float]] = []
        answered: list[tuple[Unit, Unit, float]] = []
        undecided: list[int] = []
        for k, q in enumerate(questions):
            later = self._later(answers, q)
            if not later:
                unanswered.append((q, 0.0))
                continue
            sims = emb[[a.index for a in later]] @ q_emb[k]
            best = int(np.argmax(sims))
            if sims[best] >= p.similarity:
                answered.append((q, later[best], float(sims[best])))
            else:
                undecided.append(k)
        # A question that one agent sentence answers by meaning is not compared with two
        # sentences at a time (the pair embeddings, long texts, are most of this detector's
        # cost): a pair can only raise its similarity, so it stays answered. The others are
        # judged as before, against single sentences and pairs, so the questions left
        # unanswered, the answer and a no's evidence are those of comparing every question
        # with every pair; a yes may quote a single sentence where a pair was closer.
        needed = {i for k in undecided for i, (_, b) in enumerate(pairs) if self._follows(b, questions[k])}
        pair_ids = sorted(needed)
        vectors = ctx.models.embed([f"{pairs[i][0].text} {pairs[i][1].text}" for i in pair_ids]) if pair_ids else None
        pair_row = {i: r for r, i in enumerate(pair_ids)}
        for k in undecided:
            q = questions[k]
            later = self._later(answers, q)
            sims = emb[[a.index for a in later]] @ q_emb[k]
            later_pairs = [i for i in pair_ids if self._follows(pairs[i][1], q)]
            if later_pairs:
                pair_sims = vectors[[pair_row[i] for i in later_pairs]] @ q_emb[k]
                for i, ps in zip(later_pairs, pair_sims):
                    at = later.index(pairs[i][1])
                    sims[at] = max(sims[at], ps)
            verdict = self._judge(p, asked[k], later, sims)
            if verdict[0]:
                answered.append((q, verdict[1], verdict[2]))
            else:
                unanswered.append((q, verdict[2]))
        order = {q.index: n for n, q in enumerate(questions)}
        answered.sort(key=lambda t: order[t[0].index])
        unanswered.sort(key=lambda t: order[t[0].index])
        details = {"questions": len(questions), "unanswered": len(unanswered)}
        if unanswered:
            ev = [Evidence.of_unit(q, f"not answered (closest agent sentence cosine {s:.2f})", s)
                  for q, s in unanswered[: p.max_evidence]]
            margin = p.similarity - max(s for _, s in unanswered)
            return Detection(NO, max(0.55, confidence_from_margin(margin, 0.15)), ev, looked_for, details)
        ev = []
        for q, a, s in answered[: p.max_evidence]:
            ev.append(Evidence.of_unit(q, "question", None))
            ev.append(Evidence.of_unit(a, f"answer (cosine {s:.2f})", s))
        weakest = min(s for _, _, s in answered)
        return Detection(YES, max(0.6, confidence_from_margin(weakest - p.similarity, 0.15)), ev, looked_for, details)

    @staticmethod
    def _follows(answer: Unit, q: Unit) -> bool:
        """Whether ``answer`` can answer ``q``: said at or after it, in another message."""
        return answer.start >= q.start and answer.utterance_id != q.utterance_id

    @classmethod
    def _later(cls, answers: list[Unit], q: Unit) -> list[Unit]:
        return [a for a in answers if cls._follows(a, q)]

    @staticmethod
    def _judge(p: QuestionsAnsweredParams, asked: str, later: list[Unit],
               sims: np.ndarray) -> tuple[bool, Unit | None, float]:
        """(answered, the answering sentence, its cosine) of a question read as ``asked`` given
        the cosine of each of the ``later`` agent sentences (unanswered: the best cosine)."""
        words = content_words(normalise(asked))
        best = int(np.argmax(sims))
        overlap = [len(words & content_words(a.norm)) for a in later]
        j = int(np.argmax(overlap))
        if sims[best] >= p.similarity:
            return True, later[best], float(sims[best])
        if overlap[j] >= min(p.shared_words, max(1, len(words))):
            return True, later[j], float(sims[j])
        return False, None, float(sims[best])

    @staticmethod
    def _with_context(ctx: CallContext, q: Unit) -> str:
        """The question, after the sentence before it in its message when it says little itself."""
        if len(content_words(q.norm)) >= 3 or q.index == 0:
            return q.text
        before = ctx.units[q.index - 1]
        return f"{before.text} {q.text}" if before.utterance_id == q.utterance_id else q.text


# -- concise writing ---------------------------------------------------------------------------


@dataclass
class ConciseParams:
    """Parameters of ``concise``: the agent's writing is to the point."""

    max_sentence_words: int = 40
    """A sentence longer than this is a run-on ..."""
    max_long_sentences: int = 1
    """... and more than this many of them make the writing not concise."""
    max_mean_sentence_words: float = 24.0
    """The agent's sentences may not be longer than this on average ..."""
    max_message_words: int = 300
    """... nor one message longer than this ..."""
    repeat_similarity: float = 0.9
    """... nor two of its sentences this similar (saying the same thing twice)."""
    max_repeats: int = 1
    """How many such repetitions are tolerated."""


@register("concise")
class ConciseDetector(Detector):
    """Yes when the agent's sentences and messages are of a readable length and say things once."""

    Params = ConciseParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        units = [u for u in ctx.units if u.role == AGENT and len(u.norm.split()) >= 1]
        looked_for = (f"agent sentences of at most {p.max_sentence_words} words ({p.max_mean_sentence_words:g} on "
                      f"average), messages of at most {p.max_message_words} words, nothing said twice")
        if not units:
            return Detection(NA, 0.8, [], looked_for, {"note": "no agent text"})
        lengths = [len(u.norm.split()) for u in units]
        mean = sum(lengths) / len(lengths)
        long_units = [u for u, n in zip(units, lengths) if n > p.max_sentence_words]
        messages: dict[str, int] = {}
        for u, n in zip(units, lengths):
            messages[u.utterance_id] = messages.get(u.utterance_id, 0) + n
        long_messages = [m for m, n in messages.items() if n > p.max_message_words]
        emb = ctx.embeddings[[u.index for u in units]] if len(units) > 1 else None
        repeats: list[tuple[Unit, Unit, float]] = []
        if emb is not None:
            sims = emb @ emb.T
            for i in range(len(units)):
                for j in range(i + 1, len(units)):
                    if sims[i, j] >= p.repeat_similarity and min(lengths[i], lengths[j]) >= 5:
                        repeats.append((units[i], units[j], float(sims[i, j])))
        problems: list[Evidence] = [Evidence.of_unit(u, f"a sentence of {len(u.norm.split())} words") for u in long_units[:2]]
        problems += [Evidence.of_unit(b, f"says again what an earlier sentence said (cosine {s:.2f})", s) for _, b, s in repeats[:2]]
        for m in long_messages[:1]:
            utterance = ctx.by_id[m]
            problems.append(Evidence(utterance.start, utterance.end, f"a message of {messages[m]} words", m, AGENT,
                                     (0, len(utterance.words) - 1) if utterance.words else None, utterance.text))
        details = {"sentences": len(units), "mean_sentence_words": round(mean, 1), "long_sentences": len(long_units),
                   "repeats": len(repeats), "longest_message_words": max(messages.values())}
        bad = (len(long_units) > p.max_long_sentences or mean > p.max_mean_sentence_words or long_messages
               or len(repeats) > p.max_repeats)
        if bad:
            return Detection(NO, 0.7, problems, looked_for, details)
        margin = min(p.max_mean_sentence_words - mean, p.max_sentence_words - max(lengths)) / max(p.max_mean_sentence_words, 1)
        return Detection(YES, max(0.55, confidence_from_margin(margin, 0.3)), [], looked_for, details)


# -- spelling ----------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z']*[A-Za-z]|[A-Za-z]")
_SKIP_TOKEN = re.compile(r"(https?://|www\.|@|\d|[#/\\_=<>|~])")


@functools.lru_cache(maxsize=1)
def dictionary() -> Any:
    """The packaged English dictionary (pyspellchecker's word-frequency list), loaded once."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


def describe_dictionary() -> dict[str, Any]:
    import importlib.metadata as md

    return {"name": "pyspellchecker English word list", "version": md.version("pyspellchecker")}


@dataclass
class SpellingParams:
    """Parameters of ``spelling``."""

    allow: list[str] = field(default_factory=list)
    """Words that are right although no dictionary has them: company, product and brand names
    (the interaction's company, the people's names and capitalised names inside a sentence are
    allowed already)."""
    max_errors: int = 0
    """More misspelled words than this make the answer no."""
    min_word_length: int = 3
    """Shorter words are not checked (abbreviations, interjections)."""


@register("spelling")
class SpellingDetector(Detector):
    """Yes when the agent's words are spelled right: every word of the agent's messages is in the
    packaged English dictionary, is allowed, or is a name (capitalised inside a sentence,
    tagged as a proper noun, or the interaction's company); a word is counted as misspelled only
    when the dictionary knows a word one edit away (so that unknown rare words are not errors)."""

    Params = SpellingParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        units = [u for u in ctx.units if u.role == AGENT]
        looked_for = "misspelled words in the agent's text (packaged English dictionary; names and allowed words excepted)"
        if not units:
            return Detection(NA, 0.8, [], looked_for, {"note": "no agent text"})
        allowed = {w.lower() for w in p.allow}
        company = ctx.facts.company or ""
        allowed |= {w.lower() for w in _WORD.findall(company)}
        for key in ("agent_name", "customer_name"):
            allowed |= {w.lower() for w in _WORD.findall(str(ctx.facts.metadata.get(key) or ""))}
        propn = ctx.proper_nouns
        checker = dictionary()
        errors: list[tuple[Unit, str, str]] = []
        for u in units:
            tokens = u.text.split()
            for i, raw in enumerate(tokens):
                if _SKIP_TOKEN.search(raw):
                    continue
                for word in _WORD.findall(raw):
                    lower = word.lower().strip("'")
                    if lower.endswith("'s"):
                        lower = lower[:-2]
                    if len(lower) < p.min_word_length or lower in allowed:
                        continue
                    if (word[0].isupper() and i > 0) or word in propn[u.index] or word.isupper():
                        continue  # a name (or an acronym), not a dictionary word
                    if lower in checker:
                        continue
                    fix = checker.correction(lower)
                    if fix and fix != lower:
                        errors.append((u, word, fix))
        details = {"misspelled": [{"word": w, "suggestion": f} for _, w, f in errors[:10]]}
        looked = looked_for + (f"; allowed: {', '.join(sorted(p.allow))}" if p.allow else "")
        if len(errors) > p.max_errors:
            ev = [Evidence.of_unit(u, f"'{w}' (did you mean '{f}'?)") for u, w, f in errors[:3]]
            return Detection(NO, 0.8 if len(errors) > 1 else 0.65, ev, looked, details)
        return Detection(YES, 0.8, [], looked, details)


# -- signature ---------------------------------------------------------------------------------

@dataclass
class SignatureParams:
    """Parameters of ``signature``."""

    tail_words: int = 12
    """A sign-off counts among the last this many words of the agent's message (or in the
    signature block the reader set apart)."""


@register("signature")
class SignatureDetector(Detector):
    """Yes when the agent's last message closes with a sign-off and a name (their own, or the
    team's): in the signature block the e-mail reader set apart, or at the end of the text."""

    Params = SignatureParams
    sources = WRITTEN

    def detect(self, ctx: CallContext) -> Detection:
        messages = ctx.facts.messages or []
        looked_for = "a sign-off and a name at the end of the agent's last message"
        agent = [(n, m) for n, m in enumerate(messages, 1) if m.role == AGENT and not m.auto_reply and m.text.strip()]
        if not agent:
            return Detection(NA, 0.8, [], looked_for, {"note": "no agent message"})
        n, m = agent[-1]
        names = {w.lower() for w in _WORD.findall(" ".join(filter(None, [m.name, ctx.facts.company,
                                                                         str(ctx.facts.metadata.get("agent_name") or "")])))}
        names |= {"team", "support", "care", "service", "desk", "customer"}
        lines = [ln.strip() for ln in (m.text.strip() + "\n" + (m.signature or "")).splitlines() if ln.strip()]
        tail = lines[-6:]
        sign_off = next((i for i, ln in enumerate(tail) if is_sign_off(ln)), None)
        after = tail[sign_off + 1:] if sign_off is not None else []
        sign_line = tail[sign_off] if sign_off is not None else ""
        named = any(w.lower() in names or (w[:1].isupper() and len(w) > 1) for ln in after for w in _WORD.findall(ln))
        named = named or any(w.lower() in names for w in _WORD.findall(sign_line.split(",")[-1]) if sign_off is not None
                             and "," in sign_line)
        ev = _message_evidence(ctx, n, "the agent's last message")
        if sign_off is not None and named:
            return Detection(YES, 0.85, ev, looked_for)
        why = "no sign-off" if sign_off is None else "a sign-off without a name"
        return Detection(NO, 0.75, ev, looked_for, {"note": why})


@condition("no_customer_reply")
def no_customer_reply(ctx: CallContext) -> tuple[bool, list[Evidence], str]:
    """Holds when the customer wrote (or said) nothing after the agent's first message."""
    agent = [u.start for u in ctx.units if u.role == AGENT]
    if not agent:
        return (not ctx.has_role(CUSTOMER)), [], "no agent and no customer words"
    later = [u for u in ctx.units if u.role == CUSTOMER and u.start > min(agent)]
    return (not later), [], "the customer wrote nothing after the agent's first reply"
