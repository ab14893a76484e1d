"""The customer's experience: how they sound at the end, and whether they voiced a problem.

Sentiment comes per unit from models/sentiment.py (the packaged classifier on sentence
embeddings, blended with VADER); a turn's score is the word-weighted mean of its units'.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analysis.detectors.base import NO, YES, CallContext, Detection, Detector, Evidence, condition, confidence_from_margin, register
from pipeline.analysis.detectors.context import CUSTOMER, Unit
from pipeline.analysis.detectors.phrases import PhraseParams, find_matches


def turn_scores(ctx: CallContext, role: str) -> list[tuple[str, float, list[Unit]]]:
    """(utterance id, sentiment score, units) of each turn of ``role``, in time order."""
    by_utt: dict[str, list[Unit]] = {}
    for u in ctx.units:
        if u.role == role:
            by_utt.setdefault(u.utterance_id, []).append(u)
    out = []
    for uid, units in by_utt.items():
        weights = [max(1, len(u.norm.split())) for u in units]
        score = sum(w * ctx.unit_sentiment[u.index].score for w, u in zip(weights, units)) / sum(weights)
        out.append((uid, score, units))
    return out


@dataclass
class SentimentEndParams:
    """Parameters of ``sentiment_end``."""

    role: str = CUSTOMER
    turns: int = 2
    """How many of the role's last turns are judged."""
    min_words: int = 2
    """Turns shorter than this ("okay", "bye") say little and are skipped (unless no other)."""
    negative_below: float = -0.3
    """Yes unless the mean score of the judged turns is below this (scores run -1..1)."""


@register("sentiment_end")
class SentimentEndDetector(Detector):
    """Yes when the role's last turns are not negative."""

    Params = SentimentEndParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        turns = turn_scores(ctx, p.role)
        looked_for = f"the sentiment of the {p.role}'s last {p.turns} turns (negative below {p.negative_below:g})"
        if not turns:
            return Detection(YES, 0.5, [], looked_for, {"note": f"no {p.role} speech"})
        long_turns = [t for t in turns if sum(len(u.norm.split()) for u in t[2]) >= p.min_words] or turns
        last = long_turns[-p.turns:]
        mean = sum(score for _, score, _ in last) / len(last)
        ev = [Evidence(units[0].start, units[-1].end, f"sentiment {score:+.2f}", uid, p.role,
                       (units[0].word_range[0], units[-1].word_range[1]) if units[0].word_range and units[-1].word_range else None,
                       " ".join(u.text for u in units), score) for uid, score, units in last]
        answer = NO if mean < p.negative_below else YES
        return Detection(answer, confidence_from_margin(mean - p.negative_below, 0.3), ev, looked_for,
                         {"mean_score": round(mean, 3),
                          # the decision score, for callqa tune (re-thresholding without a re-run)
                          "decision": {"param": "negative_below", "score": float(mean), "op": "<", "then": NO,
                                       "else": YES, "fixed": False, **_components(ctx, last, mean)}})


def _components(ctx: CallContext, last: list, mean: float) -> dict:
    """The judged turns' mean score split into the sentiment head's part and VADER's, which
    ``sentiment.vader_weight`` blends (models/sentiment.py: score = (1 - w) x (p_pos - p_neg) +
    w x VADER; the means are word-weighted as the score is): {"components": {"model", "vader",
    "vader_weight"}} when the blend reproduces the recorded score (the classifier and
    transformers backends), else nothing. For callqa tune: the weight re-fitted without a re-run."""
    options = getattr(getattr(getattr(ctx, "models", None), "config", None), "sentiment", None)
    w = getattr(options, "vader_weight", None)
    if options is None or w is None or getattr(options, "backend", None) == "vader" or not last:
        return {}
    model_sum = vader_sum = 0.0
    for _, _, units in last:
        weights = [max(1, len(u.norm.split())) for u in units]
        total = sum(weights)
        scores = [ctx.unit_sentiment[u.index] for u in units]
        model_sum += sum(wt * (s.probabilities.get("positive", 0.0) - s.probabilities.get("negative", 0.0))
                         for wt, s in zip(weights, scores)) / total
        vader_sum += sum(wt * s.vader for wt, s in zip(weights, scores)) / total
    model, vader = model_sum / len(last), vader_sum / len(last)
    if abs((1.0 - w) * model + w * vader - mean) > 1e-6:
        return {}
    return {"components": {"model": model, "vader": vader, "vader_weight": float(w)}}


PROBLEM = PhraseParams(
    role=CUSTOMER,
    examples=[
        "It's not working and I don't know why.", "I've been charged twice this month.",
        "My order still hasn't arrived.", "I lost my card.", "The service keeps cutting out.",
        "There's a mistake on my bill.", "I can't log in to my account.", "My refund never came through.",
        "Nobody has called me back.", "The engineer didn't turn up.", "This is the third time I've called about this.",
        "I'm really unhappy with the service.", "It broke after a week.", "I was overcharged.",
        "The payment went out but it says I haven't paid.", "I'm worried something is wrong with my account.",
    ],
    semantic_threshold=0.45,
)
"""What a customer says when something is wrong (a problem, a complaint, a worry)."""

TROUBLE = PhraseParams(
    role=CUSTOMER,
    words=["frustrated", "frustrating", "annoyed", "annoying", "angry", "upset", "unhappy", "disappointed",
           "disappointing", "worried", "worrying", "stressed", "stressful", "furious", "unacceptable", "ridiculous",
           "terrible", "awful", "useless", "hopeless", "disgusted", "appalling", "complaint", "complain", "broken",
           "faulty", "overcharged", "wrong", "mistake", "error", "problem", "problems", "issue", "issues", "missing",
           "lost", "stolen", "late", "delayed", "cancelled", "declined", "refused", "outage", "fault", "damage",
           "damaged", "leak", "leaking", "burst", "flooded", "flooding", "smashed", "cracked", "crashed", "stuck",
           "stranded", "emergency", "urgent", "incorrect", "wrongly", "overdue", "scam", "fraud", "hacked"],
    phrases=["fed up", "sick of", "not happy", "not good enough", "not working", "doesn't work", "isn't working",
             "won't work", "stopped working", "keeps dropping", "keeps cutting", "charged twice", "still hasn't",
             "still haven't", "never arrived", "hasn't arrived", "no one has", "nobody has", "no water", "no power",
             "no heating", "no hot water", "no signal", "no internet", "no electricity", "can't get", "can't access"],
)
"""Words and phrases of trouble or bad feeling: general call-centre vocabulary, beside the
semantic problem examples (which miss trouble with an unusual topic)."""

REQUEST = (
    "I'd like to change my address.", "Can you tell me how to set this up?", "I want to move my payment date.",
    "I'm calling to update my details.", "I'd like to book an appointment.", "I have a quick question about my plan.",
    "Can I add someone to my account?", "How do I turn this feature on?",
)
"""Plain requests: close to problem statements in wording, but nothing is wrong."""


CLEARLY_NEGATIVE_VADER = -0.3
"""A single negative sentence counts as a negative feeling when VADER's lexicon agrees this
strongly; otherwise it takes two (one sentence misread by the classifier must not decide)."""


@condition("no_customer_problem")
def no_customer_problem(ctx: CallContext) -> tuple[bool, list[Evidence], str]:
    """Holds when the customer voices no problem and no negative feeling: fewer than two
    negative customer sentences (and none that VADER also finds clearly negative), no word of
    trouble (TROUBLE), and no sentence closer to a problem statement than to a plain request."""
    units = ctx.select(CUSTOMER)
    negative = [u for u in units if ctx.unit_sentiment[u.index].label == "negative"]
    clear = [u for u in negative if ctx.unit_sentiment[u.index].vader <= CLEARLY_NEGATIVE_VADER]
    if len(negative) >= 2 or clear:
        u = (clear or negative)[0]
        return False, [Evidence.of_unit(u, "negative customer sentiment")], "the customer sounds negative"
    trouble, _ = find_matches(TROUBLE, ctx, units)
    if trouble:
        u, _, rule = trouble[0]
        return False, [Evidence.of_unit(u, f"trouble: {rule}")], "the customer voices trouble or bad feeling"
    found, _ = find_matches(PROBLEM, ctx, units)
    if found:
        requests = ctx.similarity(REQUEST)
        real = [(u, s, r) for u, s, r in found if s > float(requests[u.index]) + 0.02]
        if real:
            u, _, rule = max(real, key=lambda f: f[1])
            return False, [Evidence.of_unit(u, f"problem statement: {rule}")], "the customer states a problem"
    return True, [], "the customer voices no problem or negative feeling"


@condition("no_customer_speech")
def no_customer_speech(ctx: CallContext) -> tuple[bool, list[Evidence], str]:
    """Holds when nobody is heard as the customer (voicemail, one-sided recording)."""
    return (not ctx.has_role(CUSTOMER)), [], "no customer speech in the call"
