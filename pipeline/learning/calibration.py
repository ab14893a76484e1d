"""Confidence that means something: a map from a detector's confidence to the probability that
its answer is the reviewer's, fitted on reviews (Platt scaling on the logit of the confidence, or
isotonic regression), the expected calibration error, and the reliability diagram (inline SVG).

A map is written as text (``scorecard.calibration`` in a config, read by
:func:`pipeline.analysis.scorecard.parse_calibration_map`): ``"platt A B"`` or
``"isotonic c1:p1 c2:p2 ..."``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.analysis.scorecard import calibrate, parse_calibration_map
from pipeline.evaluation.plots import scatter

METHODS = ("platt", "isotonic")
BINS = 10


def _logit(c: Sequence[float]) -> np.ndarray:
    x = np.clip(np.asarray(c, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(x / (1 - x))


def fit_map(confidence: Sequence[float], correct: Sequence[bool], method: str = "platt") -> str:
    """The map text fitted on (confidence, answer was right) pairs. With one outcome only (all
    right or all wrong) the map is constant at the smoothed rate (k + 1) / (n + 2)."""
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")
    y = np.asarray(correct, dtype=int)
    if len(y) == 0:
        raise ValueError("fit_map: no pairs")
    if y.min() == y.max():
        p = (y.sum() + 1) / (len(y) + 2)
        return f"isotonic 0:{p:.4f} 1:{p:.4f}"
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=10.0).fit(_logit(confidence).reshape(-1, 1), y)
        return f"platt {float(model.coef_[0][0]):.4f} {float(model.intercept_[0]):.4f}"
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(np.clip(np.asarray(confidence, dtype=float), 0, 1), y)
    xs, ys = iso.X_thresholds_, iso.y_thresholds_
    points, last = [], None
    for x, p in zip(xs, ys):
        key = (round(float(x), 4), round(float(p), 4))
        if last is None or key[0] > last[0]:
            points.append(key)
            last = key
    if len(points) == 1:
        points.append((1.0, points[0][1]) if points[0][0] < 1.0 else (0.0, points[0][1]))
        points.sort()
    return "isotonic " + " ".join(f"{x:g}:{p:g}" for x, p in points)


def apply_map(text: str, confidence: Sequence[float]) -> list[float]:
    kind, values = parse_calibration_map(text, "calibration")
    return [calibrate(c, kind, values) for c in confidence]


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> list[dict]:
    """Per equal-width confidence bin with pairs: range, n, mean confidence, share right."""
    out = []
    conf = np.asarray(confidence, dtype=float)
    y = np.asarray(correct, dtype=float)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        mask = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        n = int(mask.sum())
        if n:
            out.append({"lo": lo, "hi": hi, "n": n, "confidence": round(float(conf[mask].mean()), 4),
                        "accuracy": round(float(y[mask].mean()), 4)})
    return out


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float | None:
    """Expected calibration error: sum over equal-width bins of |share right - mean confidence|
    weighted by the bin's share of the pairs. None without pairs."""
    n = len(confidence)
    if not n:
        return None
    return round(sum(abs(b["accuracy"] - b["confidence"]) * b["n"] for b in reliability(confidence, correct, bins)) / n, 4)


def brier(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    if not len(confidence):
        return None
    return round(float(np.mean((np.asarray(confidence, float) - np.asarray(correct, float)) ** 2)), 4)


def reliability_svg(confidence: Sequence[float], correct: Sequence[bool], title: str) -> str:
    """The reliability diagram as inline SVG: one point per confidence bin (mean confidence
    against the share of answers the reviewers agreed with; its tooltip gives the bin and n),
    the diagonal being perfect calibration."""
    points = [(b["confidence"], b["accuracy"], f"{b['lo']:.1f}-{b['hi']:.1f}: n={b['n']}, "
                                               f"confidence {b['confidence']:.2f}, right {b['accuracy']:.2f}")
              for b in reliability(confidence, correct)]
    return scatter(points, title, "confidence", "share agreed with the reviewer")


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
