"""The satisfaction figures: intervals against scipy and published values, verdicts on too few
data and on differences whose interval spans zero, the ranked list of items."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from scipy import stats

from pipeline.insights import satisfaction as sat


def test_wilson_against_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605
    lo, hi = sat.wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = sat.wilson(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)
    assert sat.wilson(0, 0) is None
    lo, hi = sat.wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    # scipy's own Wilson interval agrees
    ci = stats.binomtest(8, 10).proportion_ci(method="wilson")
    assert sat.wilson(8, 10) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_newcombe_difference_against_the_published_example() -> None:
    # Newcombe (1998), method 10, example (a): 56/70 - 48/80 = 0.2000, 0.0524 to 0.3339
    d, lo, hi = sat.newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.2, 0.0524, 0.3339)
    # example (e): 5/56 - 0/29 = 0.0893, -0.0381 to 0.1926
    d, lo, hi = sat.newcombe(5, 56, 0, 29)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.0893, -0.0381, 0.1926)
    assert sat.newcombe(1, 0, 1, 2) is None


def test_welch_interval_equals_scipy() -> None:
    rng = random.Random(3)
    a = [rng.gauss(4.2, 0.7) for _ in range(23)]
    b = [rng.gauss(3.6, 1.3) for _ in range(14)]
    d, lo, hi = sat.welch(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert sat.welch([4.0], [3.0, 5.0]) is None
    assert sat.welch([4.0, 4.0], [3.0, 3.0]) == (1.0, 1.0, 1.0)


def test_mean_interval_equals_scipy() -> None:
    values = [5, 4, 4, 3, 5, 2, 4, 5]
    lo, hi = sat.mean_ci(values)
    ref = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=stats.sem(values))
    assert (lo, hi) == pytest.approx(ref)
    assert sat.mean_ci([3.0]) is None


def test_spearman_with_fisher_interval() -> None:
    rng = random.Random(7)
    x = [rng.random() for _ in range(40)]
    y = [min(5, max(1, round(1 + 4 * v + rng.gauss(0, 1)))) for v in x]
    res = sat.spearman(x, y)
    rho = stats.spearmanr(x, y).statistic
    assert res["rho"] == pytest.approx(rho, abs=1e-4) and res["n"] == 40
    se = math.sqrt(1.06 / 37)
    assert res["low"] == pytest.approx(math.tanh(math.atanh(rho) - 1.959964 * se), abs=1e-4)
    assert res["high"] == pytest.approx(math.tanh(math.atanh(rho) + 1.959964 * se), abs=1e-4)
    assert res["low"] < res["rho"] < res["high"]
    assert sat.spearman([0.5, 0.6], [4, 5])["rho"] is None  # too few for a correlation
    assert sat.spearman([0.5, 0.5, 0.5, 0.5], [1, 2, 3, 4])["rho"] is None  # no spread


def test_nps_and_satisfied_share() -> None:
    res = sat.nps([10, 9, 9, 10, 9, 8, 7, 7, 3, 0])  # 5 promoters, 2 detractors of 10
    assert (res["nps"], res["n"], res["promoters"], res["detractors"]) == (30.0, 10, 5, 2)
    p, d = 0.5, 0.2
    half = 100 * 1.959964 * math.sqrt((p + d - (p - d) ** 2) / 10)
    assert res["low"] == pytest.approx(30 - half, abs=0.1) and res["high"] == pytest.approx(30 + half, abs=0.1)
    assert sat.nps([])["nps"] is None
    share = sat.satisfied_share([5, 4, 4, 3, 1, 5, 2, 4])
    assert (share["satisfied"], share["n"], share["share"]) == (5, 8, 0.625)
    assert (share["low"], share["high"]) == pytest.approx(sat.wilson(5, 8), abs=1e-4)


def test_item_effects_verdicts_and_ranking() -> None:
    answers, csat = {}, {}
    rng = random.Random(11)
    for i in range(60):
        cid = f"c{i}"
        empathy = "yes" if i % 2 else "no"
        greeting = "yes" if i % 3 else "no"
        rare = "no" if i < 4 else "yes"  # only 4 "no": too few
        answers[cid] = {"courtesy.empathy": empathy, "opening.greeting": greeting, "closing.rare": rare,
                        "x.na": "na"}
        csat[cid] = (4.5 if empathy == "yes" else 2.5) + rng.choice([-0.5, 0, 0.5])
    rows = sat.item_effects(answers, csat, min_sample=10)
    by = {r["item"]: r for r in rows}
    assert "x.na" not in by  # never answered yes or no
    e = by["courtesy.empathy"]
    assert (e["n_yes"], e["n_no"], e["verdict"]) == (30, 30, sat.HIGHER) and e["low"] > 0
    g = by["opening.greeting"]
    assert g["verdict"] == sat.NO_CLEAR and g["low"] <= 0 <= g["high"]
    assert by["closing.rare"]["verdict"] == sat.TOO_FEW and by["closing.rare"]["n_no"] == 4
    assert [r["item"] for r in rows] == ["courtesy.empathy", "opening.greeting", "closing.rare"]
    lower = sat.item_effects({k: {"i": "yes" if v < 3.5 else "no"} for k, v in csat.items()}, csat, 10)
    assert lower[0]["verdict"] == sat.LOWER


@dataclass
class F:
    call_id: str
    score: float | None
    answers: dict = field(default_factory=dict)


def test_analyse_says_too_few_on_little_data() -> None:
    facts = [F("a", 0.9, {"i": "yes"}), F("b", 0.4, {"i": "no"}), F("c", 0.7, {"i": "yes"}), F("d", 0.2, {"i": "no"})]
    surveys = [{"call_id": "a", "csat": 5, "nps": 10}, {"call_id": "b", "csat": 2, "nps": 3},
               {"call_id": "c", "csat": 4, "nps": None}, {"call_id": "c", "csat": 5, "nps": None},
               {"call_id": "zzz", "csat": 1, "nps": 0}]  # not one of the facts: not counted
    res = sat.analyse(facts, surveys, min_sample=10)
    assert res["surveys"] == 4 and res["calls_with_csat"] == 3
    assert res["csat"]["n"] == 4 and res["csat"]["mean"] == 4.0
    assert res["score_vs_csat"]["n"] == 3 and res["score_vs_csat"]["verdict"] == sat.TOO_FEW
    assert res["items"][0]["verdict"] == sat.TOO_FEW
    assert res["nps"]["n"] == 2
    assert sat.call_csat(surveys)["c"] == 4.5  # several surveys of one call: their mean


def test_mean_interval_clipped_to_the_scale() -> None:
    lo, hi = sat.mean_ci([5, 5, 5, 1], bounds=(1.0, 5.0))
    raw = sat.mean_ci([5, 5, 5, 1])
    assert raw[0] < 1 and raw[1] > 5 and (lo, hi) == (1.0, 5.0)
    lo, hi = sat.mean_ci([5, 5, 4, 4, 5, 3, 5], bounds=(1.0, 5.0))
    raw = sat.mean_ci([5, 5, 4, 4, 5, 3, 5])
    assert raw[1] > 5 and hi == 5.0 and lo == pytest.approx(raw[0]) and lo > 1


def test_score_against_csat_verdicts() -> None:
    facts = [F(f"c{i}", i / 20) for i in range(20)]
    rising = [{"call_id": f"c{i}", "csat": 1 + (i * 4) // 19} for i in range(20)]
    assert sat.analyse(facts, rising, min_sample=10)["score_vs_csat"]["verdict"] == "positive"
    flat = [{"call_id": f"c{i}", "csat": (5, 1, 3, 4)[i % 4]} for i in range(20)]
    assert sat.analyse(facts, flat, min_sample=10)["score_vs_csat"]["verdict"] == "no clear correlation"
