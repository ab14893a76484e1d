"""Per-item drift: has the machine's agreement with people on an item dropped?

The weekly series (:func:`pipeline.review.dashboards.agreement_weekly`) gives, per item and ISO
week of the calls, how many reviewed answers there were and how many the suggestion got right.
An item's latest week is compared with its previous weeks pooled (up to ``baseline_weeks``) by
a one-sided two-proportion test (Fisher's exact test, whose p-value holds for the small weekly
counts where the z-test's normal approximation fires too often; the z statistic with the
pooled standard error is reported beside it): an alert when agreement dropped by at
least ``min_drop``, both sides have enough answers (``min_n``: a drop measured on three calls
says nothing), and the p-value is below ``alpha`` divided by the number of items tested
(Bonferroni: a dashboard tests every item every week, and one of twenty would fire by chance
at 0.05)."""

from __future__ import annotations

import math
from typing import Any

ALPHA = 0.05
MIN_N = 10
MIN_DROP = 0.1
BASELINE_WEEKS = 8


def two_proportion_drop(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """(z, one-sided p-value) of the test that the second proportion (k2 of n2) is lower than
    the first (k1 of n1): z with the pooled standard error, p from Fisher's exact test; None
    when undefined (no answers on a side, or every answer right or every one wrong)."""
    from scipy.stats import fisher_exact

    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (k1 / n1 - k2 / n2) / se
    p = fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater")[1]
    return z, float(p)


def drift_alerts(weekly: dict[str, list[dict[str, Any]]], alpha: float = ALPHA, min_n: int = MIN_N,
                 min_drop: float = MIN_DROP, baseline_weeks: int = BASELINE_WEEKS) -> list[dict[str, Any]]:
    """Alerts from the weekly series {item: [{"period", "start", "n", "agreed"}, ...] in time
    order}: per item whose latest week dropped significantly, ``{"item", "week", "n", "agreed",
    "agreement", "baseline_weeks" (labels), "baseline_n", "baseline_agreement", "drop", "z",
    "p", "alpha" (after Bonferroni), "tested" (items tested)}``, items in the order given."""
    tests = []
    for item, weeks in weekly.items():
        if len(weeks) < 2:
            continue
        last, before = weeks[-1], weeks[-1 - baseline_weeks:-1]
        n1, k1 = sum(w["n"] for w in before), sum(w["agreed"] for w in before)
        n2, k2 = last["n"], last["agreed"]
        if n1 < min_n or n2 < min_n:
            continue
        tests.append((item, last, before, n1, k1, n2, k2, two_proportion_drop(k1, n1, k2, n2)))
    if not tests:
        return []
    level = alpha / len(tests)
    alerts = []
    for item, last, before, n1, k1, n2, k2, test in tests:
        if test is None:
            continue
        z, p = test
        drop = k1 / n1 - k2 / n2
        if p < level and drop >= min_drop:
            alerts.append({"item": item, "week": last["period"], "n": n2, "agreed": k2, "agreement": round(k2 / n2, 4),
                           "baseline_weeks": [w["period"] for w in before], "baseline_n": n1,
                           "baseline_agreement": round(k1 / n1, 4), "drop": round(drop, 4), "z": round(z, 3),
                           "p": float(f"{p:.3g}"), "alpha": float(f"{level:.3g}"), "tested": len(tests)})
    return alerts
