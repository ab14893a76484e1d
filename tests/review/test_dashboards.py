"""Dashboard figures on a tiny dataset worked out by hand: per-agent KPIs (automatic and
reviewed scores, pass rates), trend buckets, automatic-vs-human agreement, CSV export.

Default template points used below: opening.greeting 1, opening.verification 2, closing.thanks 1,
courtesy.no_prohibited 2 (auto-fail); every section weighs 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline.errors import ConfigError
from pipeline.review.dashboards import agent_kpis, agreement_by_item, period_of, to_csv, trend
from pipeline.review.scoring import review_score
from pipeline.review.db import sessions
from review_helpers import db_url, engine, load, postgres_url, record, submit, users  # noqa: F401  (fixtures)

G, V, T, P = "opening.greeting", "opening.verification", "closing.thanks", "courtesy.no_prohibited"


@pytest.fixture
def db(engine, tmp_path: Path):  # noqa: F811
    """d1, d2 (a1, billing, ISO week 45), d3 (a1, sales, week 46, automatic auto-fail), d4 (a2, billing,
    week 49), d5 (no agent, no start time). Reviews: d1 by rita then, later, by sam (sam's counts);
    d3 by rita (the auto-fail overturned); d4 by sam (thanks left unanswered); d2 only a draft."""
    with sessions(engine).begin() as s:
        load(s, tmp_path, [
            record("d1", "a1", "2026-11-02T09:00:00Z", {G: "yes", V: "yes", T: "no"}, score=0.8, sentiment=0.5),
            record("d2", "a1", "2026-11-04T17:30:00Z", {G: "no", V: "yes", T: "yes"}, score=0.4, sentiment=-0.1),
            record("d3", "a1", "2026-11-10T08:00:00Z", {G: "yes", P: "no"}, score=0.0, auto_fail=True,
                   auto_fail_items=(P,), queue="sales", sentiment=None),
            record("d4", "a2", "2026-12-01T11:00:00+01:00", {G: "yes", V: "no", T: "yes"}, score=0.6, sentiment=0.3),
            record("d5", None, None, {G: "yes"}, score=1.0, sentiment=0.2),
        ])
        ids = users(s, "rita", "sam")
        submit(s, "d1", ids["rita"], {G: "yes", V: "no", T: "yes"}, minutes=0)
        submit(s, "d1", ids["sam"], {G: "yes", V: "no", T: "no"}, minutes=10)
        submit(s, "d3", ids["rita"], {G: "yes", P: "yes"}, minutes=5)
        submit(s, "d4", ids["sam"], {G: "na", V: "no"}, minutes=20)
        submit(s, "d2", ids["rita"], {G: "yes", V: "yes", T: "yes"}, state="draft")
    return engine


# reviewed scores by hand (sections: got / potential, then the mean of the sections with potential):
D1 = (1 / 3 + 0 / 1) / 2  # sam: opening 1 of 1+2, closing 0 of 1
D3 = (1 / 1 + 2 / 2) / 2  # rita: opening 1/1, courtesy 2/2 (no auto-fail any more) = 1.0
D4 = (0 / 2 + 1 / 1) / 2  # sam: greeting na, verification no: opening 0/2; thanks (suggestion, yes) 1/1


def test_review_score_scores_like_the_pipeline():
    assert review_score({G: "yes", V: "no", T: "no"}) == round(D1, 4)
    assert review_score({G: "yes", P: "no"}) == 0.0  # an auto-fail item answered no
    assert review_score({G: "na"}) is None
    # an item the template does not know: 1 point, in its own section: (1/3 + 1/1) / 2
    assert review_score({G: "yes", V: "no", "custom.extra": "yes"}) == round(2 / 3, 4)


def test_agent_kpis(db):
    with sessions(db)() as s:
        rows = agent_kpis(s)
    assert [r["agent_id"] for r in rows] == ["a1", "a2", None]
    a1, a2, nobody = rows
    assert {k: v for k, v in a1.items() if k not in ("mean_reviewed_score", "pass_rates")} == {
        "agent_id": "a1", "calls": 3, "mean_score": round((0.8 + 0.4 + 0.0) / 3, 4), "reviewed_calls": 2,
        "auto_fails": 1, "mean_customer_sentiment_end": 0.2,  # (0.5 - 0.1) / 2, d3 has none
        "pass_rate": 0.3333}  # pass mark 0.8 on the effective scores: d1 D1 (reviewed), d2 0.4, d3 D3 = 1.0
    assert a1["mean_reviewed_score"] == pytest.approx((D1 + D3) / 2, abs=1e-4)
    # every row has the same items, in template order; d1 by sam's review, d2 by the suggestions, d3 by rita's:
    # greeting yes/no/yes, verification no/yes, thanks no/yes, no_prohibited yes
    assert a1["pass_rates"] == {G: 0.6667, V: 0.5, P: 1.0, T: 0.5}
    assert a2 == {"agent_id": "a2", "calls": 1, "mean_score": 0.6, "reviewed_calls": 1, "mean_reviewed_score": D4,
                  "pass_rate": 0.0, "auto_fails": 0, "mean_customer_sentiment_end": 0.3, "pass_rates": {G: None, V: 0.0, P: None, T: 1.0}}
    assert nobody == {"agent_id": None, "calls": 1, "mean_score": 1.0, "reviewed_calls": 0,
                      "mean_reviewed_score": None, "pass_rate": 1.0, "auto_fails": 0, "mean_customer_sentiment_end": 0.2,
                      "pass_rates": {G: 1.0, V: None, P: None, T: None}}


def test_agent_kpis_by_team_and_period(db):
    with sessions(db)() as s:
        billing = agent_kpis(s, team="billing")
        period = agent_kpis(s, start="2026-11-03", end="2026-12-01")
    assert [(r["agent_id"], r["calls"], r["mean_score"], r["reviewed_calls"], r["auto_fails"]) for r in billing] == [
        ("a1", 2, 0.6, 1, 0), ("a2", 1, 0.6, 1, 0), (None, 1, 1.0, 0, 0)]
    assert billing[0]["mean_reviewed_score"] == round(D1, 4)
    # d2 and d3 only: d4 starts on 2026-12-01, which the end excludes; d5 has no start time
    assert [(r["agent_id"], r["calls"], r["mean_score"], r["mean_reviewed_score"]) for r in period] == [
        ("a1", 2, 0.2, 1.0)]
    assert period[0]["pass_rates"] == {G: 0.5, V: 1.0, P: 1.0, T: 1.0}


def test_trend_buckets(db):
    with sessions(db)() as s:
        weeks = trend(s)
        months = trend(s, bucket="month")
        days = trend(s, agent_id="a1", bucket="day")
        with pytest.raises(ConfigError, match="bucket 'year'"):
            trend(s, bucket="year")
    # 2026-11-02 is a Monday (ISO week 45); 2026-11-10 is in week 46; 2026-12-01 in week 49 (from Monday 30th)
    assert weeks == [
        {"period": "2026-W45", "start": "2026-11-02", "calls": 2, "mean_score": 0.6, "reviewed_calls": 1,
         "mean_reviewed_score": round(D1, 4), "pass_rate": 0.0},
        {"period": "2026-W46", "start": "2026-11-09", "calls": 1, "mean_score": 0.0, "reviewed_calls": 1,
         "mean_reviewed_score": 1.0, "pass_rate": 1.0},  # d3: automatic auto-fail, overturned by the review
        {"period": "2026-W49", "start": "2026-11-30", "calls": 1, "mean_score": 0.6, "reviewed_calls": 1,
         "mean_reviewed_score": 0.5, "pass_rate": 0.0},
    ]
    assert [(m["period"], m["start"], m["calls"], m["mean_score"], m["reviewed_calls"]) for m in months] == [
        ("2026-11", "2026-11-01", 3, 0.4, 2), ("2026-12", "2026-12-01", 1, 0.6, 1)]
    assert months[0]["mean_reviewed_score"] == pytest.approx((D1 + D3) / 2, abs=1e-4)
    assert [(d["period"], d["calls"], d["mean_score"], d["mean_reviewed_score"]) for d in days] == [
        ("2026-11-02", 1, 0.8, round(D1, 4)), ("2026-11-04", 1, 0.4, None), ("2026-11-10", 1, 0.0, 1.0)]


def test_period_of():
    # 2027-01-01 is a Friday: ISO week 53 of 2026 (2026 starts on a Thursday), which starts on Monday 28 December
    assert period_of("2027-01-01T08:00:00Z", "week") == ("2026-W53", "2026-12-28")
    assert period_of("2026-02-28 23:59", "month") == ("2026-02", "2026-02-01")
    assert period_of("2026-11-04", "day") == ("2026-11-04", "2026-11-04")
    assert period_of(None, "week") is None and period_of("yesterday", "day") is None


def test_agreement_by_item(db):
    with sessions(db)() as s:
        agreement = agreement_by_item(s)
        assert list(agreement_by_item(s, start="2026-11-05")) == [G, V, P]  # d3 and d4 (no T answer)
    # pairs (human, automatic): d1 (sam) G yes/yes V no/yes T no/no; d3 G yes/yes P yes/no; d4 G na/yes V no/no
    assert list(agreement) == [G, V, P, T]
    g = agreement[G]
    assert (g["n"], g["accuracy"]) == (3, pytest.approx(2 / 3))
    # Cohen: p_o = 2/3, p_e = (2/3)(3/3) + (1/3)(0) = 2/3, kappa = 0
    assert g["kappa"] == pytest.approx(0.0)
    assert g["confusion"]["na"] == {"yes": 1, "no": 0, "na": 0}
    assert (agreement[V]["n"], agreement[V]["accuracy"], agreement[V]["kappa"]) == (2, 0.5, pytest.approx(0.0))
    assert (agreement[P]["n"], agreement[P]["accuracy"]) == (1, 0.0)
    assert (agreement[T]["n"], agreement[T]["accuracy"], agreement[T]["kappa"]) == (1, 1.0, None)  # one label


def test_to_csv():
    rows = [{"a": 1, "b": None, "n": {"x": 0.5}}, {"a": "=HYPERLINK(1)", "c": ["p", "q"], "b": "x, y", "n": {}}]
    assert to_csv(rows) == "a,b,n.x,c\r\n1,,0.5,\r\n'=HYPERLINK(1),\"x, y\",,p; q\r\n"
    assert to_csv(rows, columns=["c", "a"]) == "c,a\r\n,1\r\np; q,'=HYPERLINK(1)\r\n"
    assert to_csv([]) == "" and to_csv([], columns=["a"]) == "a\r\n"
    assert to_csv([{"s": -0.25, "t": "-5"}]) == "s,t\r\n-0.25,'-5\r\n"  # numbers stay numbers


def test_kpis_as_csv(db):
    with sessions(db)() as s:
        text = to_csv(agent_kpis(s))
    lines = text.split("\r\n")
    assert lines[0] == ("agent_id,calls,mean_score,reviewed_calls,mean_reviewed_score,pass_rate,auto_fails,"
                        f"mean_customer_sentiment_end,pass_rates.{G},pass_rates.{V},pass_rates.{P},pass_rates.{T}")
    assert lines[2] == "a2,1,0.6,1,0.5,0.0,0,0.3,,0.0,,1.0"
    assert lines[3] == ",1,1.0,0,,1.0,0,0.2,1.0,,," and lines[4] == ""
