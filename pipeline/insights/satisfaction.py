"""What goes with satisfied customers: the QA score against CSAT, each scorecard item's answer
against CSAT, the share of satisfied customers and the NPS, each with its uncertainty and its
sample size, and an honest verdict where the data are too few to judge.

Every interval is a 95% one, computed in closed form (no random resampling, so a report is the
same each time it is made):

* Spearman's rank correlation with the Fisher z interval (standard error sqrt(1.06 / (n - 3)),
  Fieller, Hartley and Pearson 1957); n < 4 has none.
* A difference of two means (CSAT when an item was "yes" minus when "no") with Welch's t
  interval (unequal variances, Welch-Satterthwaite degrees of freedom).
* A proportion (satisfied: CSAT 4-5) with the Wilson score interval; a difference of two
  proportions with Newcombe's hybrid score interval (method 10).
* The NPS (% promoters 9-10 minus % detractors 0-6) with the normal interval of a difference of
  multinomial shares.

Verdicts: ``too few`` when a group has fewer than ``insights.min_sample`` answers, ``no clear
difference`` when the interval spans 0, else ``higher when yes`` / ``lower when yes``; for the
score against CSAT ``too few``, ``no clear correlation``, ``positive`` or ``negative``. Means of
CSAT and of the score have their intervals clipped to the scale (1-5, 0-1).
A survey is joined to its interaction (pipeline/insights/external.py); an interaction with
several surveys counts with the mean of their CSATs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scipy import stats

Z95 = 1.959963984540054
TOO_FEW, NO_CLEAR, HIGHER, LOWER = "too few", "no clear difference", "higher when yes", "lower when yes"


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float] | None:
    """p1 - p2 with Newcombe's hybrid score interval: (difference, low, high); None when a
    group is empty."""
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    if a is None or b is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    high = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return d, low, high


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """mean(a) - mean(b) with Welch's t interval: (difference, low, high); None when a group has
    fewer than 2 values. Two groups without any spread give a zero-width interval."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = sum(a) / n1, sum(b) / n2
    v1 = sum((x - m1) ** 2 for x in a) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in b) / (n2 - 1)
    se2 = v1 / n1 + v2 / n2
    d = m1 - m2
    if se2 <= 0:
        return d, d, d
    df = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return d, d - half, d + half


def mean_ci(values: Sequence[float], level: float = 0.95,
            bounds: tuple[float | None, float | None] = (None, None)) -> tuple[float, float] | None:
    """Student t interval of a mean, clipped to ``bounds`` (the range the values can take: a
    mean of CSATs is never above 5); None under 2 values."""
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    low, high = m - half, m + half
    if bounds[0] is not None:
        low = max(bounds[0], low)
    if bounds[1] is not None:
        high = min(bounds[1], high)
    return low, high


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Spearman's rho of paired values with its Fisher z interval and n."""
    n = len(x)
    out: dict[str, Any] = {"n": n, "rho": None, "low": None, "high": None, "p_value": None}
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return out
    res = stats.spearmanr(x, y)
    rho = float(res.statistic)
    out["rho"], out["p_value"] = _r(rho), _r(float(res.pvalue))
    if n >= 4 and abs(rho) < 1:
        z, se = math.atanh(rho), math.sqrt(1.06 / (n - 3))
        out["low"], out["high"] = _r(math.tanh(z - Z95 * se)), _r(math.tanh(z + Z95 * se))
    return out


def nps(scores: Sequence[float]) -> dict[str, Any]:
    """The Net Promoter Score (-100 to 100) with a 95% interval and n."""
    n = len(scores)
    if not n:
        return {"nps": None, "low": None, "high": None, "n": 0, "promoters": 0, "detractors": 0}
    pro = sum(1 for s in scores if s >= 9)
    det = sum(1 for s in scores if s <= 6)
    p, d = pro / n, det / n
    value = p - d
    se = math.sqrt(max(0.0, p + d - value ** 2) / n)
    return {"nps": _r(100 * value, 1), "low": _r(100 * max(-1.0, value - Z95 * se), 1),
            "high": _r(100 * min(1.0, value + Z95 * se), 1), "n": n, "promoters": pro, "detractors": det}


def verdict(diff: tuple[float, float, float] | None, n_yes: int, n_no: int, min_sample: int) -> str:
    if diff is None or n_yes < min_sample or n_no < min_sample:
        return TOO_FEW
    _, low, high = diff
    if low <= 0 <= high:
        return NO_CLEAR
    return HIGHER if low > 0 else LOWER


def call_csat(surveys: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """call id -> the mean CSAT of its surveys (those with a CSAT)."""
    values: dict[str, list[float]] = defaultdict(list)
    for s in surveys:
        if s.get("call_id") and s.get("csat") is not None:
            values[s["call_id"]].append(float(s["csat"]))
    return {cid: sum(v) / len(v) for cid, v in values.items()}


def item_effects(answers: Mapping[str, Mapping[str, str]], csat: Mapping[str, float],
                 min_sample: int) -> list[dict[str, Any]]:
    """Per scorecard item, the mean CSAT of the calls answered yes and of those answered no,
    the difference (yes - no) with Welch's interval, n per group and the verdict; ranked by
    the difference (largest first), items too few to judge after the others."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"yes": [], "no": []})
    for call_id, items in answers.items():
        if call_id not in csat:
            continue
        for item, answer in items.items():
            if answer in ("yes", "no"):
                groups[item][answer].append(csat[call_id])
    rows = []
    for item in sorted(groups):
        yes, no = groups[item]["yes"], groups[item]["no"]
        diff = welch(yes, no)
        v = verdict(diff, len(yes), len(no), min_sample)
        rows.append({"item": item, "n_yes": len(yes), "n_no": len(no), "csat_yes": _r(mean(yes)),
                     "csat_no": _r(mean(no)), "difference": _r(diff[0]) if diff else (
                         _r(mean(yes) - mean(no)) if yes and no else None),
                     "low": _r(diff[1]) if diff else None, "high": _r(diff[2]) if diff else None, "verdict": v})
    rows.sort(key=lambda r: (r["verdict"] == TOO_FEW, -(r["difference"] if r["difference"] is not None else -1e9),
                             r["item"]))
    return rows


def satisfied_share(csats: Sequence[float]) -> dict[str, Any]:
    """Share of CSATs of 4 or 5 with the Wilson interval."""
    n = len(csats)
    k = sum(1 for c in csats if c >= 4)
    ci = wilson(k, n)
    return {"share": _r(k / n) if n else None, "low": _r(ci[0]) if ci else None, "high": _r(ci[1]) if ci else None,
            "satisfied": k, "n": n}


def analyse(facts: Iterable[Any], surveys: Iterable[Mapping[str, Any]], min_sample: int) -> dict[str, Any]:
    """The satisfaction analysis of ``facts`` (store Facts) and the survey rows matched to them."""
    facts = list(facts)
    ids = {f.call_id for f in facts}
    surveys = [s for s in surveys if s.get("call_id") in ids]
    csat = call_csat(surveys)
    scored = [(f.score, csat[f.call_id]) for f in facts if f.call_id in csat and f.score is not None]
    corr = spearman([s for s, _ in scored], [c for _, c in scored])
    corr["verdict"] = (TOO_FEW if corr["n"] < min_sample or corr["rho"] is None else
                       "no clear correlation" if corr["low"] is None or corr["low"] <= 0 <= corr["high"] else
                       "positive" if corr["rho"] > 0 else "negative")
    csats = [float(s["csat"]) for s in surveys if s.get("csat") is not None]
    ci = mean_ci(csats, bounds=(1.0, 5.0))
    return {
        "surveys": len(surveys), "calls_with_csat": len(csat),
        "csat": {"mean": _r(mean(csats)), "low": _r(ci[0]) if ci else None, "high": _r(ci[1]) if ci else None,
                 "n": len(csats)},
        "satisfied": satisfied_share(csats),
        "nps": nps([float(s["nps"]) for s in surveys if s.get("nps") is not None]),
        "score_vs_csat": corr,
        "items": item_effects({f.call_id: f.answers for f in facts}, csat, min_sample),
        "min_sample": min_sample,
    }
