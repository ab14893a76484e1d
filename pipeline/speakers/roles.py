"""Which speaker is the agent: decided from what each speaker says.

Every scorecard item asks "did the agent...?", so each speaker of a call (a channel of a stereo
recording, or a diarized speaker of a mono one) is given a role, ``agent``, ``customer`` or
``unknown``, with a confidence and the evidence used.

A speaker's agent-likeness score (positive: agent-like, negative: customer-like) adds up:

* **What they do** (semantic cue, the main one). Each utterance is cut into units (sentences;
  long unpunctuated stretches into windows of words) and every unit of the call is embedded in
  one batch (models/text_embedding.py). A unit is compared with ``ACTS``, a table of short
  generic examples of what agents do (greet on behalf of a company, offer help, introduce
  themselves as a representative, verify identity, explain or resolve, put on hold, ask
  "anything else", thank for calling...), what customers do (state a problem, complain, ask
  about their own account, bill or order, give personal details...), role-free small talk and
  automated (IVR) prompts. A softmax of the similarities to all examples and to a "none of
  the above" example of similarity ``min_similarity`` (``temperature``) gives the unit's
  probability of being an agent act and of being a customer act; it scores ``content_scale``
  times their difference, so small talk, prompts and off-script talk score about nothing.
  An utterance scores its most agent-like unit plus its most customer-like one.
* **Where they do it** (position cue). Utterances among the first ``opening_turns`` turns of
  the call count ``opening_weight`` times: the greeting, the "how can I help" and the reason
  for the call are where roles show most plainly.
* **Company name**: the company (option ``company`` or the call's own ``company``) fuzzily
  found in one of a speaker's first ``company_turns`` turns adds ``company_weight``.
* **Perspective**: agents talk about "your account", customers about "my account"; each
  utterance with more "your" than "my" adds ``perspective_weight``, more "my" subtracts it.
* **Questions vs answers**: agents lead with questions (verification, diagnosis, "anything
  else?"); of the two main speakers, the one asking the larger share of questions gains
  ``question_weight`` times the difference of the two shares.
* **First to speak**: a weak prior, ``first_speaker_weight``, for the speaker who talks first
  (the one answering an inbound call), so that content decides and order only breaks ties.

The two main speakers are the two who say most (speakers who mostly sound like automated
prompts are left out when there are others); the higher-scoring one is the agent and the
other the customer, with confidence ``1 / (1 + exp(-confidence_slope * margin))`` of the
margin between their scores (0.5 when nothing tells them apart). Extra speakers (an IVR
prompt, a transferred party, a stray diarization cluster) stay ``unknown`` unless their own
score reaches ``extra_min_score`` towards one role (prompts always stay ``unknown``). A call
with one talking speaker is an agent-only side of a call or a customer's voicemail: the sign
of the score decides, the confidence comes from its size (an automated prompt alone stays
``unknown``, confidence 0).
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.text_embedding import SentenceEmbedder
from pipeline.errors import check_options

AGENT, CUSTOMER, UNKNOWN = "agent", "customer", "unknown"
"""The role names (the same strings as pipeline.speakers.stage uses)."""
NEUTRAL, SYSTEM = "neutral", "system"
"""Kinds of act that are no role: small talk either party says, and automated prompts."""

Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Act:
    """One kind of thing a party says, with a few short generic examples of it."""

    kind: str
    """``agent``, ``customer``, ``neutral`` (either party) or ``system`` (automated prompt)."""
    cue: str
    """The name the evidence gives it."""
    examples: tuple[str, ...]


ACTS: tuple[Act, ...] = (
    # What agents do. Examples are generic (no company, product or person of any real call) and
    # spread over industries, so that the nearest example measures the act, not the topic.
    Act(AGENT, "greeting", (
        "Thank you for calling, this is customer service.",
        "Good morning, you've reached the support team.",
        "Hello and welcome to the help desk.",
        "Thanks for calling the billing department.",
    )),
    Act(AGENT, "offer of help", (
        "How can I help you today?",
        "What can I do for you?",
        "How may I assist you?",
        "I'd be happy to help you with that.",
    )),
    Act(AGENT, "self-introduction", (
        "My name is Sarah and I'll be assisting you today.",
        "This is Mike speaking, I'm a representative here.",
        "You're speaking with Priya from the accounts team.",
        "Hi, this is Tom calling from the clinic about your appointment.",
    )),
    Act(AGENT, "verification question", (
        "Can I have your account number, please?",
        "Could you confirm your date of birth for security purposes?",
        "Can you verify the name and address on the account?",
        "What is the email address associated with your account?",
        "May I have the last four digits of the card?",
        "Am I speaking with the account holder?",
    )),
    Act(AGENT, "explanation or resolution", (
        "I've gone ahead and applied a credit to your account.",
        "I can see here that the payment was processed twice.",
        "I'll reset that for you now and it should work within a few minutes.",
        "I've updated your details in our system.",
        "Your replacement will be shipped out today and arrive in three to five business days.",
        "The reason for the higher charge is that your promotional rate ended last month.",
        "We have an opening on Thursday morning if that works for you.",
    )),
    Act(AGENT, "hold", (
        "Let me check that for you.",
        "Please bear with me for a moment while I look into this.",
        "I'm going to place you on a brief hold.",
        "Thank you for holding, I'm back with you.",
    )),
    Act(AGENT, "anything else", (
        "Is there anything else I can help you with today?",
        "Is there anything else I can do for you?",
        "Do you have any other questions for me?",
    )),
    Act(AGENT, "thanks for calling", (
        "Thank you for calling, have a great day.",
        "Thanks for being a valued customer, goodbye.",
        "We appreciate your business, take care.",
    )),
    Act(AGENT, "apology on behalf of the company", (
        "I'm sorry for the inconvenience this has caused you.",
        "I completely understand your frustration and I apologize.",
        "I apologize for the wait.",
    )),
    # What customers do.
    Act(CUSTOMER, "problem statement", (
        "I'm calling because my internet keeps dropping.",
        "I have a problem with my order, it never arrived.",
        "My card was declined and I don't know why.",
        "There's something wrong with my bill this month.",
        "The app won't let me log in to my account.",
    )),
    Act(CUSTOMER, "complaint", (
        "This is the third time I've called about this and nobody has fixed it.",
        "I'm really frustrated, this is unacceptable.",
        "I was charged twice and I want my money back.",
        "I've been waiting on hold for an hour.",
    )),
    Act(CUSTOMER, "request about own account", (
        "I'd like to cancel my subscription.",
        "Can you tell me why my bill is so high?",
        "I want to change the address on my account.",
        "I need to check the status of my order.",
        "I was hoping you could help me with a payment.",
    )),
    Act(CUSTOMER, "personal details", (
        "My account number is four five six seven eight.",
        "Sure, my date of birth is March third, nineteen eighty.",
        "It's john dot smith at gmail dot com.",
        "The account is under my name and I live at twenty two Oak Street.",
        "My phone number is five five five, one two three four.",
    )),
    Act(CUSTOMER, "acceptance or thanks", (
        "Thank you so much for your help.",
        "Great, that's all I needed, thanks for sorting it out.",
        "Okay, I appreciate it.",
        "Yes, that works for me.",
    )),
    # Either party: small talk that says nothing about the role.
    Act(NEUTRAL, "small talk", (
        "Okay.",
        "Yes, that's right.",
        "Sure.",
        "Alright.",
        "Hello?",
        "Goodbye.",
        "Uh huh.",
        "Sorry, can you repeat that?",
        "Yeah, I can hear you.",
    )),
    # Recordings: an IVR or hold message.
    Act(SYSTEM, "automated prompt", (
        "Your call may be recorded for quality and training purposes.",
        "Please press one for billing or press two for technical support.",
        "All of our representatives are currently busy, please stay on the line.",
        "Your call is important to us, please continue to hold.",
        "Please say or enter your account number followed by the pound key.",
    )),
)

EXAMPLE_ACTS = np.asarray([i for i, act in enumerate(ACTS) for _ in act.examples])
"""For each example of ACTS in order, the index of its act."""
EXAMPLE_KINDS = np.asarray([ACTS[i].kind for i in EXAMPLE_ACTS])
"""For each example of ACTS in order, the kind of its act."""

WINDOW_WORDS = 16
"""Unpunctuated stretches longer than this are cut into windows of this many words (half-
overlapping): a sentence embedding of a long run-on turn blurs the acts within it."""

_QUESTION_START = frozenset(
    "what when where which who whom whose why how can could would will do does did is are was were "
    "have has may might should shall am".split()
)
QUESTION_MIN_WORDS = 3
"""Shorter turns ending in a question mark are checks or backchannels, not questions."""
_COMPANY_SUFFIXES = frozenset("inc incorporated llc ltd limited co corp corporation company plc the".split())
_COMPANY_MIN_CHARS = 4


@dataclass
class RoleOptions:
    """How roles are decided from content (the ``roles`` section of the config)."""

    company: str | None = None
    """The company name agents say in greetings; a manifest column ``company`` overrides it per
    call. null: no company-name cue (the semantic greeting cue still works)."""
    min_confidence: float = 0.7
    """Below this confidence roles are still assigned, but the decision is flagged
    low-confidence (``RoleDecision.low_confidence`` and a ``low confidence`` evidence entry)."""
    temperature: float = 0.05
    """Softmax temperature over a unit's cosine similarities to the examples of ``ACTS``: at
    0.05 an example 0.1 nearer than another is e^2 = 7.4 times as probable."""
    min_similarity: float = 0.3
    """Similarity of the "none of the above" example that joins every softmax: a unit no
    nearer than this to any example of ``ACTS`` scores about nothing (all-MiniLM-L6-v2 cosine:
    paraphrases ~0.5-0.9, unrelated sentences ~0-0.2)."""
    content_scale: float = 1.0
    """Score of a unit per unit of difference between its agent-act and customer-act
    probabilities (a clear act: about +-1)."""
    opening_turns: int = 4
    """The first this many turns of the call (all speakers) are its opening."""
    opening_weight: float = 2.0
    """Utterances in the opening count this many times."""
    company_turns: int = 2
    """The company name counts when said in one of a speaker's first this many turns."""
    company_match: float = 85.0
    """Fuzzy-match score (0-100, rapidfuzz partial ratio on lowercased text without spaces or
    punctuation) at which the company name is found: tolerates an ASR error in a name."""
    company_weight: float = 1.5
    """Score added to a speaker who names the company in their first turns."""
    perspective_weight: float = 0.5
    """Score per utterance saying "your" more than "my" (minus, "my" more than "your")."""
    question_weight: float = 1.0
    """Score per unit of difference between the two main speakers' shares of turns that are
    questions."""
    first_speaker_weight: float = 0.3
    """Score added to the main speaker who talks first: a tie-breaker, weaker than one act."""
    confidence_slope: float = 1.0
    """Slope of the logistic mapping the score margin to a confidence (margin 3 -> 0.95)."""
    extra_min_score: float = 3.0
    """An extra speaker (beyond the two main ones) gets a role only with a score at least this
    far towards it; otherwise ``unknown``."""
    evidence_per_speaker: int = 3
    """Utterances quoted as evidence for each speaker's role (the strongest ones)."""


def validate(options: RoleOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    checks = [
        (0 <= options.min_confidence <= 1, "min_confidence", "a confidence in [0, 1]"),
        (options.temperature > 0, "temperature", "a temperature > 0"),
        (-1 <= options.min_similarity <= 1, "min_similarity", "a cosine similarity in [-1, 1]"),
        (options.content_scale >= 0, "content_scale", "a scale >= 0"),
        (options.opening_turns >= 0, "opening_turns", "a number of turns >= 0"),
        (options.opening_weight >= 0, "opening_weight", "a weight >= 0"),
        (options.company_turns >= 0, "company_turns", "a number of turns >= 0"),
        (0 <= options.company_match <= 100, "company_match", "a fuzzy-match score from 0 to 100"),
        (options.company_weight >= 0, "company_weight", "a weight >= 0"),
        (options.perspective_weight >= 0, "perspective_weight", "a weight >= 0"),
        (options.question_weight >= 0, "question_weight", "a weight >= 0"),
        (options.first_speaker_weight >= 0, "first_speaker_weight", "a weight >= 0"),
        (options.confidence_slope > 0, "confidence_slope", "a slope > 0"),
        (options.extra_min_score >= 0, "extra_min_score", "a score >= 0"),
        (options.evidence_per_speaker >= 0, "evidence_per_speaker", "a number of utterances >= 0"),
    ]
    check_options("roles", options, checks)


@dataclass
class RoleDecision:
    """The roles of one call's speakers and why."""

    roles: dict[str, str]
    """Speaker -> ``agent``, ``customer`` or ``unknown``."""
    confidence: float
    """0-1: how sure the agent/customer split is (0 when there is no speech)."""
    evidence: list[dict[str, Any]]
    """The cues behind the decision: quoted utterances (``speaker``, ``start``, ``end``,
    ``text``, ``cue``, ``score``) and speaker-level cues (``speaker``, ``cue``, ``score`` and a
    ``value``: company named, perspective, questions, who spoke first, automated prompt)."""
    scores: dict[str, float]
    """Per-speaker agent-likeness (positive: agent-like, negative: customer-like)."""
    low_confidence: bool = False
    """True when ``confidence`` is below ``RoleOptions.min_confidence``."""


@dataclass
class _Utterance:
    """One turn of the call with what was read from it."""

    speaker: str
    start: float
    end: float
    text: str
    order: int
    """Position of the turn in the call (0: the first turn of any speaker)."""
    score: float = 0.0
    """Agent-likeness of what is said (position weight included)."""
    cue: str = ""
    """The act behind ``score``: that of its strongest unit."""
    unit: str = ""
    """The text of that unit."""
    units: int = 0
    """Units (sentences or windows of words) the turn was cut into."""
    prompts: int = 0
    """Units that sound like an automated prompt."""


@dataclass
class _Speaker:
    """What was read from one speaker's turns."""

    name: str
    utterances: list[_Utterance] = field(default_factory=list)
    score: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def words(self) -> int:
        return sum(len(u.text.split()) for u in self.utterances)

    @property
    def system_like(self) -> bool:
        """Most of what the speaker says sounds like an automated prompt."""
        return 2 * sum(u.prompts for u in self.utterances) > sum(u.units for u in self.utterances)

    def add(self, cue: str, score: float, value: Any = None) -> None:
        """Add a speaker-level cue to the score and the evidence."""
        self.score += score
        entry: dict[str, Any] = {"speaker": self.name, "cue": cue, "score": round(float(score), 3)}
        if value is not None:
            entry["value"] = value
        self.evidence.append(entry)


# -- reading the text -------------------------------------------------------------------------


def split_units(text: str) -> list[str]:
    """Sentences of ``text``; stretches longer than WINDOW_WORDS words become half-overlapping
    windows of WINDOW_WORDS words."""
    units: list[str] = []
    for sentence in re.split(r"(?<=[.?!;])\s+", text.strip()):
        words = sentence.split()
        if len(words) <= WINDOW_WORDS:
            if words:
                units.append(" ".join(words))
            continue
        step = WINDOW_WORDS // 2
        for i in range(0, len(words) - step, step):
            units.append(" ".join(words[i : i + WINDOW_WORDS]))
    return units


def is_question(text: str) -> bool:
    """A question mark, or (unpunctuated ASR text) an opening question word or auxiliary verb;
    turns shorter than QUESTION_MIN_WORDS ("Hello?", "Sorry?") are checks, not questions."""
    words = re.findall(r"[a-z']+", text.lower())
    if len(words) < QUESTION_MIN_WORDS:
        return False
    if "?" in text:
        return True
    return not re.search(r"[.!]\s*$", text) and words[0] in _QUESTION_START


def perspective(text: str) -> int:
    """How many more times ``text`` says "your" than "my" ("my name" is no customer's)."""
    words = re.findall(r"[a-z]+", text.lower())
    your = sum(w in ("your", "yours") for w in words)
    mine = sum(w in ("my", "mine") for w in words) - len(re.findall(r"\bmy name\b", text.lower()))
    return your - mine


def _squash(text: str) -> str:
    """Lowercase letters and digits only (spaces out: ASR splits and joins names freely)."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def company_key(company: str) -> str:
    """The part of a company name to look for: legal suffixes and "the" dropped, squashed."""
    return "".join(w for w in re.findall(r"[a-z0-9]+", company.lower()) if w not in _COMPANY_SUFFIXES)


def names_company(text: str, key: str, threshold: float) -> float:
    """Fuzzy score (0-100) of the company ``key`` in ``text``; 0 below ``threshold``."""
    from rapidfuzz import fuzz

    if len(key) < _COMPANY_MIN_CHARS:
        return 0.0
    return float(fuzz.partial_ratio(key, _squash(text), score_cutoff=threshold))


# -- the semantic cue -------------------------------------------------------------------------


_PROTOTYPES: weakref.WeakKeyDictionary[SentenceEmbedder, np.ndarray] = weakref.WeakKeyDictionary()
"""Embeddings of the examples of ACTS, per embedder (computed once)."""


def example_similarities(units: list[str], embedder: SentenceEmbedder) -> np.ndarray:
    """Cosine similarity of each unit to each example of ACTS, shape (units, examples)."""
    if embedder not in _PROTOTYPES:
        _PROTOTYPES[embedder] = embedder.encode([ex for act in ACTS for ex in act.examples])
    return embedder.encode(units) @ _PROTOTYPES[embedder].T


def unit_score(sims: np.ndarray, options: RoleOptions) -> tuple[float, str, bool]:
    """Agent-likeness of one unit from its similarities to the examples, the act behind it (the
    nearest example of the winning role), and whether it sounds most like an automated prompt."""
    prompt = bool(EXAMPLE_KINDS[int(np.argmax(sims))] == SYSTEM)
    top = max(float(sims.max()), options.min_similarity)
    p = np.exp((sims - top) / options.temperature)
    p /= p.sum() + math.exp((options.min_similarity - top) / options.temperature)
    score = options.content_scale * float(p[EXAMPLE_KINDS == AGENT].sum() - p[EXAMPLE_KINDS == CUSTOMER].sum())
    side = EXAMPLE_KINDS == (AGENT if score > 0 else CUSTOMER)
    nearest = int(np.flatnonzero(side)[np.argmax(sims[side])])
    return score, ACTS[EXAMPLE_ACTS[nearest]].cue, prompt


def read_utterances(utterances: list[_Utterance], options: RoleOptions, embedder: SentenceEmbedder) -> None:
    """Score every utterance from its units (all units of the call embedded in one batch)."""
    units = [split_units(u.text) for u in utterances]
    sims = example_similarities([t for us in units for t in us], embedder)
    k = 0
    for u, texts in zip(utterances, units):
        scored = [(*unit_score(sims[k + i], options), t) for i, t in enumerate(texts)]
        k += len(texts)
        u.units, u.prompts = len(scored), sum(s[2] for s in scored)
        top, bottom = max(scored, key=lambda s: s[0]), min(scored, key=lambda s: s[0])
        weight = options.opening_weight if u.order < options.opening_turns else 1.0
        u.score = weight * (max(top[0], 0.0) + min(bottom[0], 0.0))
        strongest = top if top[0] >= -bottom[0] else bottom
        u.cue, u.unit = strongest[1], strongest[3]


# -- the cues of a speaker --------------------------------------------------------------------


def _quote(u: _Utterance, cue: str, score: float) -> dict[str, Any]:
    return {"speaker": u.speaker, "start": round(u.start, 3), "end": round(u.end, 3), "text": u.unit or u.text,
            "cue": cue, "score": round(float(score), 3)}


def _company_cue(s: _Speaker, key: str, options: RoleOptions) -> None:
    for u in s.utterances[: options.company_turns]:
        match = names_company(u.text, key, options.company_match)
        if match:
            s.score += options.company_weight
            s.evidence.append({**_quote(u, "greeting with company name", options.company_weight),
                               "text": u.text, "match": round(match, 1)})
            return


def _perspective_cue(s: _Speaker, options: RoleOptions) -> None:
    signs = [int(np.sign(perspective(u.text))) for u in s.utterances]
    if any(signs):
        s.add("says 'your' rather than 'my'", options.perspective_weight * sum(signs),
              {"your": signs.count(1), "my": signs.count(-1)})


def _question_cue(main: list[_Speaker], options: RoleOptions) -> None:
    shares = [sum(is_question(u.text) for u in s.utterances) / len(s.utterances) for s in main]
    for s, own, other in zip(main, shares, shares[::-1]):
        s.add("share of turns that are questions", options.question_weight * (own - other), round(own, 3))


def _first_speaker_cue(main: list[_Speaker], options: RoleOptions) -> None:
    min(main, key=lambda s: s.utterances[0].order).add("spoke first", options.first_speaker_weight)


def _quotes(s: _Speaker, role: str, options: RoleOptions) -> list[dict[str, Any]]:
    """The speaker's strongest utterances for ``role`` (agent: positive, customer: negative)."""
    sign = 1.0 if role == AGENT else -1.0
    backing = sorted((u for u in s.utterances if sign * u.score > 0), key=lambda u: -sign * u.score)
    return [_quote(u, u.cue, u.score) for u in backing[: options.evidence_per_speaker]]


# -- the decision -----------------------------------------------------------------------------


def _speakers(turns: dict[str, list[Turn]]) -> list[_Speaker]:
    """Talking speakers (in order of their first turn) with their non-empty turns, each turn
    numbered in call order."""
    everything = sorted(
        (float(start), float(end), speaker, text.strip())
        for speaker, ts in turns.items() for start, end, text in ts if text and text.strip()
    )
    speakers: dict[str, _Speaker] = {}
    for order, (start, end, speaker, text) in enumerate(everything):
        speakers.setdefault(speaker, _Speaker(speaker)).utterances.append(_Utterance(speaker, start, end, text, order))
    return list(speakers.values())


def _main_speakers(speakers: list[_Speaker]) -> list[_Speaker]:
    """The (at most) two speakers who say most, prompt-like speakers left out when others talk."""
    people = [s for s in speakers if not s.system_like] or speakers
    return sorted(people, key=lambda s: -s.words)[:2]


def _extra_role(s: _Speaker, options: RoleOptions) -> str:
    if s.system_like:
        s.add("automated prompt", 0.0)
        return UNKNOWN
    if s.score >= options.extra_min_score:
        return AGENT
    if s.score <= -options.extra_min_score:
        return CUSTOMER
    return UNKNOWN


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def assign_roles(
    turns: dict[str, list[Turn]],
    options: RoleOptions,
    embedder: SentenceEmbedder | None = None,
    company: str | None = None,
) -> RoleDecision:
    """Roles of the speakers of one call from what they say.

    ``turns`` maps each speaker to its utterances ``(start s, end s, text)``; ``company`` (the
    call's manifest column) overrides ``options.company``; ``embedder`` defaults to a one-thread
    SentenceEmbedder. With two or more talking speakers exactly one of the two main ones is the
    agent and the other the customer (see the module docstring for the cues and extras).
    """
    speakers = _speakers(turns)
    if not speakers:
        return RoleDecision(roles={}, confidence=0.0, evidence=[], scores={})
    read_utterances([u for s in speakers for u in s.utterances], options, embedder or SentenceEmbedder())
    name = company or options.company
    key = company_key(name) if name else ""
    for s in speakers:
        s.score += sum(u.score for u in s.utterances)
        if key:
            _company_cue(s, key, options)
        _perspective_cue(s, options)
    main = _main_speakers(speakers)
    roles = {s.name: UNKNOWN for s in speakers}
    if len(main) == 2:
        _question_cue(main, options)
        _first_speaker_cue(main, options)
        agent, customer = sorted(main, key=lambda s: -s.score)
        roles[agent.name], roles[customer.name] = AGENT, CUSTOMER
        confidence = _logistic(options.confidence_slope * (agent.score - customer.score))
    elif main[0].system_like:  # nothing but an automated prompt (the caller hung up in the IVR)
        main[0].add("automated prompt", 0.0)
        confidence = 0.0
    else:
        only = main[0]
        roles[only.name] = AGENT if only.score > 0 else CUSTOMER if only.score < 0 else UNKNOWN
        confidence = _logistic(options.confidence_slope * abs(only.score)) if only.score else 0.0
    for s in speakers:
        if s not in main:
            roles[s.name] = _extra_role(s, options)
    evidence = [e for s in speakers for e in s.evidence]
    evidence += [q for s in speakers if roles[s.name] != UNKNOWN for q in _quotes(s, roles[s.name], options)]
    low = confidence < options.min_confidence
    if low:
        evidence.append({"cue": "low confidence", "score": round(confidence, 3), "threshold": options.min_confidence})
    return RoleDecision(roles=roles, confidence=float(confidence), evidence=evidence,
                        scores={s.name: float(s.score) for s in speakers}, low_confidence=low)
