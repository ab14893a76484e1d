"""The metrics of the evaluation harness: transcription, diarization, scorecard agreement.

Pure functions (``read_rttm`` is the only one that reads a file). Every figure is a raw float,
not rounded; a figure that is undefined for its input is ``None``, never NaN. jiwer,
pyannote.metrics, scikit-learn and scipy are imported when first used.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Sequence

from pipeline.errors import InputError
from pipeline.text.normalize import wer_text

Turn = tuple[float, float, str]
"""(start, end, label) in seconds from the start of the recording."""


def _same_length(what: str, a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} against {len(b)}; they must pair up one to one")


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Transcription


def text_errors(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    """Corpus-level word and character errors of paired texts (one pair per call, or per call and
    role), both sides normalised with ``pipeline.text.normalize.wer_text`` (Whisper's English
    normaliser: "four five six" and "456", "colour" and "color", case and punctuation do not
    count as errors; digit strings one digit per word on both sides, so "8-2-1-9" against
    "eight two one nine" is 4 hits). Word and character edits are counted by jiwer over all
    pairs together.

    ``wer`` = (substitutions + deletions + insertions) / ref_words, None when ref_words is 0.
    ``cer`` = char_errors / ref_chars, where the characters are those of the normalised text,
    single spaces between words included; None when ref_chars is 0. A pair whose normalised
    reference is empty counts every hypothesis word as an insertion (and every hypothesis
    character as a character insertion); a pair with both sides empty is skipped. Also returns
    the counts: ``ref_words``, ``hyp_words``, ``hits``, ``substitutions``, ``deletions``,
    ``insertions``, ``ref_chars``, ``char_errors``.
    """
    _same_length("text_errors: references and hypotheses", refs, hyps)
    pairs = [(wer_text(r), wer_text(h)) for r, h in zip(refs, hyps)]
    scored = [(r, h) for r, h in pairs if r]
    unscored = [h for r, h in pairs if not r and h]  # hypothesis text where nothing was said
    hits = substitutions = deletions = 0
    insertions = sum(len(h.split()) for h in unscored)
    char_errors = sum(len(h) for h in unscored)
    if scored:
        import jiwer

        ref_texts, hyp_texts = [r for r, _ in scored], [h for _, h in scored]
        words = jiwer.process_words(ref_texts, hyp_texts)
        hits, substitutions, deletions = words.hits, words.substitutions, words.deletions
        insertions += words.insertions
        chars = jiwer.process_characters(ref_texts, hyp_texts)
        char_errors += chars.substitutions + chars.deletions + chars.insertions
    ref_words = sum(len(r.split()) for r, _ in scored)
    ref_chars = sum(len(r) for r, _ in scored)
    return {
        "wer": _ratio(substitutions + deletions + insertions, ref_words),
        "cer": _ratio(char_errors, ref_chars),
        "ref_words": ref_words,
        "hyp_words": sum(len(h.split()) for _, h in pairs),
        "hits": hits,
        "substitutions": substitutions,
        "deletions": deletions,
        "insertions": insertions,
        "ref_chars": ref_chars,
        "char_errors": char_errors,
    }


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (errors over reference words) after ``wer_text`` on both sides
    (:func:`text_errors`); with no reference words, 1.0 if there are
    hypothesis words and 0.0 if not."""
    errors = text_errors(references, hypotheses)
    if errors["wer"] is None:
        return float(errors["insertions"] > 0)
    return errors["wer"]


def masked_word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Word errors of a PII-masked ``hypothesis`` against an unmasked ``reference`` (edit
    distance after ``wer_text`` on the words), a mask token (``[PERSON]``, ``[NUMBER]`` ...)
    matching any one word: (errors, reference words). For transcripts a person may see, which
    never hold the words the masks replace (the live view against the batch transcript)."""
    from pipeline.text.normalize import wer_text

    ref = wer_text(reference).split()
    hyp = [w for token in hypothesis.split()
           for w in ([token] if token.startswith("[") and token.rstrip(".,?!").endswith("]") else wer_text(token).split())]
    prev = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, b in enumerate(hyp, 1):
            same = b.startswith("[") or a == b
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (0 if same else 1))
        prev = cur
    return prev[-1], len(ref)


# ---------------------------------------------------------------------------------------------
# Diarization


def read_rttm(path: Path) -> list[Turn]:
    """(start, end, speaker) of every SPEAKER line of an RTTM file, in file order, whatever its
    file and channel fields (fields: type file chan start dur ortho stype name conf slat).
    Blank lines and lines starting with ';' or '#' are skipped, as are lines of other types.
    Raises InputError naming the file and line number for a line with fewer than 8 fields, or a
    SPEAKER line whose start or duration is not a finite number, or is negative."""
    path = Path(path)
    turns: list[Turn] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith((";", "#")):
            continue
        fields = stripped.split()
        if len(fields) < 8:
            raise InputError(f"{path}: line {number}: {len(fields)} fields, an RTTM line has at least 8 "
                             f"(type file chan start dur ortho stype name ...): {stripped!r}")
        if fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise InputError(f"{path}: line {number}: start {fields[3]!r} and duration {fields[4]!r} "
                             "must be numbers (seconds)") from None
        if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
            raise InputError(f"{path}: line {number}: start {fields[3]} and duration {fields[4]} must be "
                             "finite and not negative")
        turns.append((start, start + duration, fields[7]))
    return turns


def _annotation(turns: Sequence[Turn], side: str):  # noqa: ANN202 - pyannote.core.Annotation
    """The turns as an Annotation, overlapping (or touching) turns of one label merged:
    pyannote would count the overlap twice."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    for i, (start, end, label) in enumerate(turns):
        if end < start:
            raise ValueError(f"{side} turn {i} ({label!r}) ends at {end} before it starts at {start}")
        if end > start:
            annotation[Segment(float(start), float(end)), i] = str(label)
    return annotation.support()


class DiarizationTotals:
    """Diarization errors call by call and pooled over the calls added (see ``add`` and
    ``overall``); ``collar`` as in :func:`diarization_errors`."""

    def __init__(self, collar: float = 0.0):
        from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

        if collar < 0:
            raise ValueError(f"collar {collar} must not be negative")
        self.collar = collar
        self._der = DiarizationErrorRate(collar=collar, skip_overlap=False)
        self._jer = JaccardErrorRate(collar=collar, skip_overlap=False)
        self._seconds = {"missed": 0.0, "false_alarm": 0.0, "confusion": 0.0, "total": 0.0}

    def add(self, reference: Sequence[Turn], hypothesis: Sequence[Turn], duration_s: float) -> dict[str, Any]:
        """Score one call and add it to the totals; returns that call's figures
        (:func:`diarization_errors`)."""
        from pyannote.core import Segment, Timeline

        if not duration_s > 0:
            raise ValueError(f"duration_s {duration_s} must be positive")
        ref, hyp = _annotation(reference, "reference"), _annotation(hypothesis, "hypothesis")
        uem = Timeline([Segment(0.0, float(duration_s))])
        der = self._der(ref, hyp, uem=uem, detailed=True)
        jer = self._jer(ref, hyp, uem=uem, detailed=True)
        seconds = {"missed": der["missed detection"], "false_alarm": der["false alarm"],
                   "confusion": der["confusion"], "total": der["total"]}
        for key, value in seconds.items():
            self._seconds[key] += value
        return {
            # pyannote gives 1.0 (DER, with false alarm) or 0.0 when there is no reference speech,
            # and a JER of 1.0 when there is no reference speaker: undefined here.
            "der": _finite(der["diarization error rate"]) if der["total"] else None,
            "jer": _finite(jer["jaccard error rate"]) if jer["speaker count"] else None,
            **{key: float(value) for key, value in seconds.items()},
        }

    def overall(self) -> dict[str, Any]:
        """The calls added so far pooled: ``missed``, ``false_alarm``, ``confusion`` and ``total``
        are summed seconds; ``der`` = (missed + false_alarm + confusion) / total of the sums
        (None when total is 0); ``jer`` = pyannote's accumulated JER, which is the mean of the
        per-speaker Jaccard errors over every reference speaker of every call (each speaker
        weighs the same whatever its call or amount of speech; not the mean of per-call JERs),
        None when no call had a reference speaker."""
        s = self._seconds
        return {
            "der": _ratio(s["missed"] + s["false_alarm"] + s["confusion"], s["total"]),
            "jer": _finite(abs(self._jer)) if self._jer["speaker count"] else None,
            **s,
        }


def diarization_errors(reference: Sequence[Turn], hypothesis: Sequence[Turn], duration_s: float,
                       collar: float = 0.0) -> dict[str, Any]:
    """Diarization errors of one call by pyannote.metrics (``DiarizationErrorRate`` and
    ``JaccardErrorRate``, optimal one-to-one speaker mapping, so label names do not matter),
    scored over [0, duration_s] with overlapped speech scored (skip_overlap False). Turns are
    (start, end, label); overlapping or touching turns of one label are merged first (so there
    is no collar where one speaker's turn ends and the same speaker's next turn starts).

    ``collar`` is pyannote's: the TOTAL width of the no-score zone centred on each reference
    turn boundary (collar=0.25 ignores +-0.125 s; NIST md-eval's "0.25 s collar" is collar=0.5).
    ``missed``, ``false_alarm``, ``confusion``: seconds of each error; ``total``: seconds of
    reference speech scored (overlapped speech counts once per speaker). ``der`` =
    (missed + false_alarm + confusion) / total, None when total is 0 (false alarm seconds are
    still reported). ``jer``: 1 - |ref ∩ hyp| / |ref ∪ hyp| for each reference speaker and the
    hypothesis speaker mapped to it (1 for an unmapped reference speaker), averaged over the
    reference speakers, with the same collar; None when there is no reference speaker.
    """
    return DiarizationTotals(collar).add(reference, hypothesis, duration_s)


# ---------------------------------------------------------------------------------------------
# Scorecard answers and scores


def _kappa(gold: Sequence[str], auto: Sequence[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "only one label": undefined, returned as NaN
        return _finite(cohen_kappa_score(list(gold), list(auto)))


def item_agreement(gold: list[str], auto: list[str], labels: Sequence[str] = ("yes", "no", "na")) -> dict[str, Any]:
    """Agreement of the automatic answers of one scorecard item with the gold answers, one pair
    per call (scikit-learn). ``n``: pairs; ``accuracy``: share of equal answers; ``precision``,
    ``recall``, ``f1``: macro averages over ``labels_present`` (the labels occurring in gold or
    auto, in ``labels`` order; a label never predicted has precision 0, never in gold recall 0);
    ``kappa``: Cohen's kappa, None when undefined (both sides one and the same label);
    ``confusion``: {gold label: {auto label: count}} for every label of ``labels``, zeros
    included; ``classes``: {label: {precision, recall, f1, support}} for the present labels
    (support = gold count). An answer not in ``labels`` raises ValueError. No pairs: ``n`` 0,
    ``labels_present`` [] and every other figure None.
    """
    _same_length("item_agreement: gold and auto answers", gold, auto)
    labels = list(labels)
    unknown = sorted({a for a in [*gold, *auto] if a not in labels})
    if unknown:
        raise ValueError(f"item_agreement: answers {unknown} are not among the labels {labels}")
    if not gold:
        return {"n": 0, "accuracy": None, "precision": None, "recall": None, "f1": None, "kappa": None,
                "confusion": None, "classes": None, "labels_present": []}
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    present = [label for label in labels if label in gold or label in auto]
    precision, recall, f1, _ = precision_recall_fscore_support(gold, auto, labels=present, average="macro",
                                                               zero_division=0)
    per_class = precision_recall_fscore_support(gold, auto, labels=present, average=None, zero_division=0)
    confusion = {g: {a: 0 for a in labels} for g in labels}
    for g, a in zip(gold, auto):
        confusion[g][a] += 1
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, auto)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "kappa": _kappa(gold, auto),
        "confusion": confusion,
        "classes": {label: {"precision": float(per_class[0][i]), "recall": float(per_class[1][i]),
                            "f1": float(per_class[2][i]), "support": int(per_class[3][i])}
                    for i, label in enumerate(present)},
        "labels_present": present,
    }


def pooled_agreement(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Agreement over the (gold, auto) answer pairs of all items and calls together: ``answers``
    (pairs), ``accuracy`` (share equal) and Cohen's ``kappa`` over all pairs (None when undefined,
    e.g. every answer on both sides the same); both None for no pairs."""
    if not pairs:
        return {"answers": 0, "accuracy": None, "kappa": None}
    gold, auto = [g for g, _ in pairs], [a for _, a in pairs]
    return {"answers": len(pairs), "accuracy": sum(g == a for g, a in pairs) / len(pairs), "kappa": _kappa(gold, auto)}


def score_agreement(gold: list[float], auto: list[float]) -> dict[str, Any]:
    """Agreement of automatic scores with gold scores, one pair per call: ``n``; ``mae`` = mean of
    |auto - gold|; ``bias`` = mean of (auto - gold) (positive: automatic scores too high);
    ``pearson`` and ``spearman`` correlation coefficients (scipy.stats), None when n < 2 or
    either side is constant. mae and bias are None for no pairs."""
    _same_length("score_agreement: gold and auto scores", gold, auto)
    n = len(gold)
    if n == 0:
        return {"n": 0, "mae": None, "bias": None, "pearson": None, "spearman": None}
    g, a = [float(x) for x in gold], [float(x) for x in auto]
    out: dict[str, Any] = {"n": n, "mae": sum(abs(y - x) for x, y in zip(g, a)) / n,
                           "bias": sum(y - x for x, y in zip(g, a)) / n, "pearson": None, "spearman": None}
    if n >= 2 and len(set(g)) > 1 and len(set(a)) > 1:
        from scipy.stats import pearsonr, spearmanr

        out["pearson"] = _finite(pearsonr(g, a).statistic)
        out["spearman"] = _finite(spearmanr(g, a).statistic)
    return out
