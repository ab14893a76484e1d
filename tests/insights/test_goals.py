"""KPI goals: parsing, config errors naming the key (checked when the config loads), team goals
over everyone's, and the KPIs of a period computed from calls, surveys and ACD records."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import coerce_value
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.insights import goals as g
from pipeline.insights import satisfaction as sat
from pipeline.insights.external import import_file
from pipeline.insights.options import InsightsOptions
from pipeline.insights.store import InsightStore
from qa_report_helpers import write_call, write_csv


@pytest.mark.parametrize("text, op, target", [(">= 0.85", ">=", 0.85), ("<=60", "<=", 60.0), (" > -3 ", ">", -3.0),
                                              ("< 1e2", "<", 100.0), (">=.5", ">=", 0.5)])
def test_goal_expressions(text: str, op: str, target: float) -> None:
    goal = g.parse_goal(text, "k")
    assert (goal.op, goal.target) == (op, target)


def test_goal_met() -> None:
    assert g.parse_goal(">= 0.85", "k").met(0.85) is True
    assert g.parse_goal("> 0.85", "k").met(0.85) is False
    assert g.parse_goal("<= 60", "k").met(61) is False
    assert g.parse_goal("< 60", "k").met(None) is None


@pytest.mark.parametrize("text", ["=> 0.85", "0.85", ">= ", "== 1", ">= abc", "at least 3", 5, None, ">= nan",
                                  ">= inf"])
def test_bad_goal_expressions_name_the_key(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^insights\.goals\.csat: .* is not a goal; use OP NUMBER"):
        g.parse_goal(text, "insights.goals.csat")


def test_config_goals_checked_when_loaded(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text('insights:\n  goals: {qa_score: ">= 0.85", hold_s: "<= 60"}\n'
                    '  team_goals:\n    billing: {qa_score: ">= 0.9", csat: ">= 4.2"}\n    tech: {}\n')
    config = load_config(good)
    assert config.insights.team_goals == {"billing": {"qa_score": ">= 0.9", "csat": ">= 4.2"}, "tech": {}}
    merged = g.goals_for(config.insights, "billing")
    assert {k: str(v) for k, v in merged.items()} == {"qa_score": ">= 0.9", "hold_s": "<= 60", "csat": ">= 4.2"}
    assert {k: str(v) for k, v in g.goals_for(config.insights, "tech").items()} == {"qa_score": ">= 0.85",
                                                                                   "hold_s": "<= 60"}
    assert set(g.goals_for(config.insights, None)) == {"qa_score", "hold_s"}

    cases = {
        'insights:\n  goals: {speed: ">= 1"}\n': r"bad\.yaml: insights\.goals\.speed: unknown KPI; allowed: qa_score",
        'insights:\n  goals: {csat: "=> 4"}\n': r"bad\.yaml: insights\.goals\.csat: '=> 4' is not a goal",
        'insights:\n  team_goals: {billing: {nps: "> x"}}\n':
            r"insights\.team_goals\.billing\.nps: '> x' is not a goal",
        'insights:\n  team_goals: {billing: {fast: "> 1"}}\n': r"insights\.team_goals\.billing\.fast: unknown KPI",
        'insights:\n  team_goals: {billing: ">= 1"}\n':
            r"insights\.team_goals\.billing: '>= 1' is not a mapping of names to strings",
        'insights:\n  team_goals: {billing: {csat: 4}}\n':
            r"insights\.team_goals\.billing: .* not a mapping of names to strings",
        'insights:\n  goals: {csat: 4}\n': r"insights\.goals: .* not a mapping of names to strings",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(bad)
    with pytest.raises(ConfigError, match=r"^--set insights\.goals\.fcr=\">= 2x\": insights\.goals\.fcr: '>= 2x'"):
        load_config(None, ['insights.goals.fcr=">= 2x"'])


def test_coerce_value_nested_mapping() -> None:
    tp = dict[str, dict[str, str]]
    assert coerce_value({"a": {"x": "1"}, "b": {}}, tp, "k") == {"a": {"x": "1"}, "b": {}}
    for bad in ([1], {"a": 1}, {"a": {"x": 1}}, {1: {"x": "1"}}):
        with pytest.raises(ConfigError, match="^k"):
            coerce_value(bad, tp, "k")
    assert coerce_value({"x": "1"}, dict[str, str], "k") == {"x": "1"}  # unchanged for flat mappings


@pytest.fixture
def store(tmp_path: Path):
    out = tmp_path / "out"
    # period 2026-11-09 .. 2026-11-15 (billing: a1, a2; tech: t1); baseline the week before
    write_call(out, "p1", "2026-11-09T09:00:00Z", agent="a1", score=0.9, customer="+1 555 000 0001", hold_s=30,
               outcome="resolved")
    write_call(out, "p2", "2026-11-10T09:00:00Z", agent="a1", score=0.7, customer="+1 555 000 0001", hold_s=10,
               outcome="escalated")  # a repeat of p1 (1 day later)
    write_call(out, "p3", "2026-11-11T09:00:00Z", agent="a2", score=0.95, auto_fail=True, customer="+1 555 000 0003",
               outcome="Escalation to team lead")
    write_call(out, "p4", "2026-11-12T09:00:00Z", agent="t1", team="tech", score=0.5, customer="+1 555 000 0004",
               hold_s=90)
    write_call(out, "p5", "2026-11-15T09:00:00Z", agent="a2", score=None, answers={}, customer="+1 555 000 0005")
    # 9 days after p5: not a repeat within 7 days
    write_call(out, "p6", "2026-11-24T09:00:00Z", agent="a2", score=0.8, customer="+1 555 000 0005")
    write_call(out, "b1", "2026-11-03T09:00:00Z", agent="a1", score=0.6)
    write_call(out, "b2", "2026-11-04T09:00:00Z", agent="a2", score=0.8)
    s = InsightStore.for_run(out)
    s.update(out)
    import_file(s, out, "surveys", write_csv(tmp_path / "s.csv", "call_id,csat,nps", "p1,5,10", "p2,3,6", "p4,2,2",
                                             "b1,4,9"), InsightsOptions())
    import_file(s, out, "acd", write_csv(
        tmp_path / "a.csv", "call_id,customer,time,queue,talk_s,hold_s,wrap_s,transfers,abandoned",
        "p1,,2026-11-09T09:00:00Z,billing,100,20,30,0,0",       # ACD hold 20 replaces the call's 30
        "p2,,2026-11-10T09:00:00Z,billing,200,0,40,2,0",
        ",+1 555 111 0000,2026-11-10T12:00:00Z,billing,,,,,1",  # abandoned, no recording: billing by queue
        ",+1 555 111 0001,2026-11-12T12:00:00Z,tech,,,,,1",
        ",+1 555 111 0002,2026-11-20T12:00:00Z,billing,,,,,1"), InsightsOptions())  # outside the period
    yield s
    s.close()


def kpis(store: InsightStore, team: str | None, goals: dict | None = None, min_sample: int = 2) -> dict:
    now = g.collect(store, "2026-11-09", "2026-11-16", team=team, repeat_days=7)
    before = g.collect(store, "2026-11-02", "2026-11-09", team=team, repeat_days=7)
    goals = {k: g.parse_goal(v, k) for k, v in (goals or {}).items()}
    return {r["kpi"]: r for r in g.kpi_table(now, before, goals, pass_mark=0.8, min_sample=min_sample)}


def test_kpis_of_a_team(store: InsightStore) -> None:
    k = kpis(store, "billing", {"qa_score": ">= 0.9", "hold_s": "<= 60", "abandoned_rate": "< 0.2"})
    assert k["qa_score"]["value"] == pytest.approx((0.9 + 0.7 + 0.95) / 3, abs=1e-4) and k["qa_score"]["n"] == 3
    assert k["qa_score"]["goal"] == ">= 0.9" and k["qa_score"]["met"] is False
    assert (k["pass_rate"]["value"], k["pass_rate"]["n"]) == (pytest.approx(1 / 3, abs=1e-4), 3)  # p3 auto-fails
    assert (k["csat"]["value"], k["csat"]["n"]) == (4.0, 2)
    assert (k["nps"]["value"], k["nps"]["n"]) == (0.0, 2)  # one promoter, one detractor
    assert (k["hold_s"]["value"], k["hold_s"]["n"]) == (10.0, 2)  # p1 from the ACD (20, not 30), p2 (0 in the ACD)
    assert k["hold_s"]["met"] is True
    assert (k["aht_s"]["value"], k["aht_s"]["n"]) == ((150 + 240) / 2, 2)
    assert (k["transfer_rate"]["value"], k["transfer_rate"]["n"]) == (0.5, 2)
    assert (k["abandoned_rate"]["value"], k["abandoned_rate"]["n"]) == (pytest.approx(1 / 3, abs=1e-4), 3)
    assert k["abandoned_rate"]["met"] is False
    # p1 repeated by p2 the next day; p2, p3 and p5 not repeated within 7 days (p6 is 9 days after p5)
    assert (k["fcr"]["value"], k["fcr"]["n"]) == (0.75, 4)
    assert (k["escalation_rate"]["value"], k["escalation_rate"]["n"]) == (pytest.approx(2 / 3, abs=1e-4), 3)
    # the baseline: b1, b2 (billing, week before)
    assert (k["qa_score"]["baseline"], k["qa_score"]["baseline_n"]) == (0.7, 2)
    d, lo, hi = sat.welch([0.9, 0.7, 0.95], [0.6, 0.8])
    assert (k["qa_score"]["change"], k["qa_score"]["change_low"], k["qa_score"]["change_high"]) == pytest.approx(
        (d, lo, hi), abs=1e-4)
    d, lo, hi = sat.newcombe(1, 3, 1, 2)  # b2 passes (0.8), b1 does not
    assert k["pass_rate"]["change"] == pytest.approx(d, abs=1e-4) and k["pass_rate"]["change_low"] == pytest.approx(
        lo, abs=1e-4)
    assert k["csat"]["baseline_n"] == 1 and k["csat"]["change"] == 0.0 and k["csat"]["change_low"] is None
    assert k["pass_rate"]["low"] == pytest.approx(sat.wilson(1, 3)[0], abs=1e-4)


def test_kpis_of_another_team_and_of_everyone(store: InsightStore) -> None:
    tech = kpis(store, "tech")
    assert (tech["qa_score"]["value"], tech["hold_s"]["value"], tech["csat"]["value"]) == (0.5, 90.0, 2.0)
    assert (tech["abandoned_rate"]["value"], tech["abandoned_rate"]["n"]) == (1.0, 1)
    assert tech["aht_s"]["value"] is None and tech["aht_s"]["n"] == 0
    assert tech["qa_score"]["baseline"] is None and tech["qa_score"]["change"] is None
    everyone = kpis(store, None, min_sample=5)
    assert everyone["qa_score"]["n"] == 4 and everyone["abandoned_rate"]["n"] == 4
    assert everyone["qa_score"]["too_few"] is True and everyone["fcr"]["too_few"] is False


def test_repeat_contacts(store: InsightStore) -> None:
    facts = list(store.facts("2026-11-09", "2026-11-16"))
    flags = g.repeats(store, facts, 7)
    assert flags == {"p1": True, "p2": False, "p3": False, "p4": False, "p5": False}
    assert g.repeats(store, facts, 9)["p5"] is True  # p6 came 9 days later; the data reach 9 days past p5
    assert g.repeats(store, facts, 10)["p5"] is None  # 10 days after p5 are not all in the data yet
    # p6 is the newest contact: whether its customer comes back within 7 days is not known yet
    assert g.repeats(store, list(store.facts("2026-11-24", "2026-11-25")), 7) == {"p6": None}
