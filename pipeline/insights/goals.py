"""KPI goals per team and the KPIs of a period against them and against a baseline.

Goals come from the config: ``insights.goals`` for every team, ``insights.team_goals[team]``
over them, each ``KPI: "OP NUMBER"`` with OP one of ``>=``, ``<=``, ``>``, ``<`` (e.g.
``qa_score: ">= 0.85"``, ``hold_s: "<= 60"``). A goal naming an unknown KPI, or one that is not
of that form, is a ConfigError naming its key, raised when the config is loaded (before any
work).

The KPIs (:data:`KPIS`):

* ``qa_score``: mean suggested score (0-1) of the interactions scored.
* ``pass_rate``: share of scored interactions with score >= ``review.pass_mark`` and no auto-fail.
* ``csat``: mean CSAT (1-5) of the surveys matched to the period's interactions.
* ``nps``: Net Promoter Score (-100 to 100) of those surveys.
* ``hold_s``: mean hold seconds per call: the ACD record's ``hold_s`` when one is matched, else
  the call's own measured holds.
* ``aht_s``: mean handle time, talk + hold + wrap seconds of the ACD records (answered calls).
* ``fcr``: first-contact resolution, the share of contacts (with a known customer) not followed
  by another contact of the same customer within ``insights.repeat_days`` days (found in the
  whole store, so contacts after the period count); a contact of the last ``repeat_days`` days
  of the data without a repeat so far is not yet knowable and left out, as in ``callqa insights``.
* ``transfer_rate``: share of answered ACD calls transferred at least once.
* ``abandoned_rate``: share of ACD calls abandoned before an agent answered.
* ``escalation_rate``: share of interactions with an outcome whose outcome label starts with
  ``escalat`` (``escalated``, ``escalation``).

ACD records count in the period of their ``time``, and for the team of their matched call (else
their ``queue``). Means carry a t interval, proportions a Wilson one, changes against the
baseline Welch's (means) or Newcombe's (proportions) interval; n is stated with each.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pipeline.errors import ConfigError

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt,
                                                    "<": operator.lt}
_GOAL = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class KPI:
    label: str
    kind: str
    """``mean``, ``proportion`` or ``nps``."""
    better: str
    """``higher`` or ``lower``."""
    unit: str = ""
    bounds: tuple[float | None, float | None] = (None, None)
    """The range a mean can take (its interval is clipped to it)."""


KPIS: dict[str, KPI] = {
    "qa_score": KPI("QA score", "mean", "higher", bounds=(0.0, 1.0)),
    "pass_rate": KPI("Pass rate", "proportion", "higher"),
    "csat": KPI("CSAT (1-5)", "mean", "higher", bounds=(1.0, 5.0)),
    "nps": KPI("NPS", "nps", "higher"),
    "hold_s": KPI("Hold time", "mean", "lower", "s", (0.0, None)),
    "aht_s": KPI("Handle time", "mean", "lower", "s", (0.0, None)),
    "fcr": KPI("First-contact resolution", "proportion", "higher"),
    "transfer_rate": KPI("Transfer rate", "proportion", "lower"),
    "abandoned_rate": KPI("Abandoned rate", "proportion", "lower"),
    "escalation_rate": KPI("Escalation rate", "proportion", "lower"),
}


@dataclass(frozen=True)
class Goal:
    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        return None if value is None else OPS[self.op](value, self.target)

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


def parse_goal(text: Any, where: str) -> Goal:
    """``">= 0.85"`` as a Goal; ConfigError naming ``where`` otherwise."""
    m = _GOAL.match(text) if isinstance(text, str) else None
    if not m or not math.isfinite(float(m.group(2))):
        raise ConfigError(f"{where}: {text!r} is not a goal; use OP NUMBER with OP one of >=, <=, >, < "
                          "(e.g. \">= 0.85\")")
    return Goal(m.group(1), float(m.group(2)))


def _check_map(goals: Any, where: str) -> dict[str, Goal]:
    if not isinstance(goals, Mapping):
        raise ConfigError(f"{where}: {goals!r} is not a mapping of KPI names to goals")
    out = {}
    for kpi, text in goals.items():
        if kpi not in KPIS:
            raise ConfigError(f"{where}.{kpi}: unknown KPI; allowed: {', '.join(KPIS)}")
        out[kpi] = parse_goal(text, f"{where}.{kpi}")
    return out


def check_goals(goals: Any, team_goals: Any) -> None:
    """ConfigError naming the key of the first bad goal or unknown KPI (``insights.goals`` and
    ``insights.team_goals``)."""
    _check_map(goals, "insights.goals")
    if not isinstance(team_goals, Mapping):
        raise ConfigError(f"insights.team_goals: {team_goals!r} is not a mapping of teams to goals")
    for team, goals_of in team_goals.items():
        _check_map(goals_of, f"insights.team_goals.{team}")


def goals_for(options: Any, team: str | None) -> dict[str, Goal]:
    """The goals of ``team`` (None: every team's): ``goals`` with ``team_goals[team]`` over them."""
    merged = dict(options.goals or {})
    if team is not None:
        merged.update((options.team_goals or {}).get(team) or {})
    return {k: parse_goal(v, f"insights.goals.{k}") for k, v in merged.items()}


# -- the data of a window ----------------------------------------------------------------------


@dataclass
class Window:
    """What the KPIs of one window and scope are computed from."""

    facts: list[Any] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    acd: list[dict[str, Any]] = field(default_factory=list)
    repeat: dict[str, bool | None] = field(default_factory=dict)
    """call id -> followed by another contact of the same customer within repeat_days (None:
    not yet knowable, the contact is in the last repeat_days of the data)."""


def repeats(store: Any, facts: Iterable[Any], repeat_days: int) -> dict[str, bool | None]:
    """For each fact with a customer and a start: whether the same customer made another contact
    (any channel, any team) in the ``repeat_days`` days after it; None when the contact is in the
    last ``repeat_days`` days of the store's data (not yet knowable, whatever came so far)."""
    from pipeline.insights.store import utc_start

    by_customer: dict[str, list[tuple[Any, str]]] = {}
    for f in facts:
        when = utc_start(f.started_at)
        if f.customer_hash and when is not None:
            by_customer.setdefault(f.customer_hash, []).append((when, f.call_id))
    out: dict[str, bool | None] = {}
    window = timedelta(days=repeat_days)
    latest = store.latest_day()
    knowable_until = latest - window if latest else None
    conn = store.conn
    hashes = sorted(by_customer)
    for i in range(0, len(hashes), 500):
        chunk = hashes[i:i + 500]
        starts: dict[str, list[tuple[Any, str]]] = {}
        for h, started, cid in conn.execute(
                f"SELECT customer_hash, started_at, call_id FROM interactions WHERE customer_hash IN "
                f"({','.join('?' * len(chunk))}) AND started_at IS NOT NULL", chunk):
            when = utc_start(started)
            if when is not None:
                starts.setdefault(h, []).append((when, cid))
        for h in chunk:
            for when, cid in by_customer[h]:
                repeated = any(cid2 != cid and (when < w2 or (w2 == when and cid2 > cid)) and w2 - when <= window
                               for w2, cid2 in starts.get(h, []))
                knowable = knowable_until is not None and when.date() <= knowable_until
                out[cid] = repeated if knowable else None  # a repeat is known early, its absence only later:
                # counting the early repeats alone would bias the rate down
    return out


def collect(store: Any, start: str | None, end: str | None, *, team: str | None = None,
            agent_id: str | None = None, repeat_days: int = 7) -> Window:
    """The facts, matched surveys, ACD rows and repeat flags of [start, end) for a team or an
    agent (either optional)."""
    from pipeline.insights.external import acd_rows, survey_rows

    facts = list(store.facts(start, end, team=team, agent_id=agent_id))
    ids = {f.call_id for f in facts}
    teams = {f.call_id: (f.team, f.agent_id) for f in facts}
    acd = []
    for row in acd_rows(store.conn, start, end):
        if row["call_id"] is not None and row["call_id"] not in ids and (team or agent_id):
            continue
        row_team = row["team"] if row["call_id"] else row["queue"]
        row_agent = teams.get(row["call_id"], (None, row["agent_id"]))[1] if row["call_id"] else row["agent_id"]
        if (team is not None and row_team != team) or (agent_id is not None and row_agent != agent_id):
            continue
        acd.append(row)
    return Window(facts, survey_rows(store.conn, ids), acd, repeats(store, facts, repeat_days))


# -- KPIs --------------------------------------------------------------------------------------


def samples(w: Window, pass_mark: float) -> dict[str, Any]:
    """The raw sample of each KPI: a list of values (means, NPS) or (successes, n) (proportions)."""
    scored = [f for f in w.facts if f.score is not None]
    acd_hold = {}
    for row in w.acd:
        if row["call_id"] and row["hold_s"] is not None:
            acd_hold[row["call_id"]] = row["hold_s"]
    holds = [acd_hold.get(f.call_id, f.hold_s) for f in w.facts]
    answered = [r for r in w.acd if not r["abandoned"]]
    with_outcome = [f for f in w.facts if f.outcome]
    return {
        "qa_score": [float(f.score) for f in scored],
        "pass_rate": (sum(1 for f in scored if f.score >= pass_mark and not f.auto_fail), len(scored)),
        "csat": [float(s["csat"]) for s in w.surveys if s["csat"] is not None],
        "nps": [float(s["nps"]) for s in w.surveys if s["nps"] is not None],
        "hold_s": [float(h) for h in holds if h is not None],
        "aht_s": [float(r["talk_s"]) + float(r["hold_s"] or 0) + float(r["wrap_s"] or 0)
                  for r in answered if r["talk_s"] is not None],
        "fcr": (sum(1 for v in w.repeat.values() if v is False), sum(1 for v in w.repeat.values() if v is not None)),
        "transfer_rate": (sum(1 for r in answered if (r["transfers"] or 0) > 0),
                          sum(1 for r in answered if r["transfers"] is not None)),
        "abandoned_rate": (sum(1 for r in w.acd if r["abandoned"]),
                           sum(1 for r in w.acd if r["abandoned"] is not None)),
        "escalation_rate": (sum(1 for f in with_outcome if f.outcome.lower().startswith("escalat")),
                            len(with_outcome)),
    }


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def summarise(kpi: str, sample: Any) -> dict[str, Any]:
    """Value, 95% interval and n of one KPI's sample."""
    from pipeline.insights import satisfaction as sat

    kind = KPIS[kpi].kind
    if kind == "proportion":
        k, n = sample
        ci = sat.wilson(k, n)
        return {"value": _r(k / n) if n else None, "low": _r(ci[0]) if ci else None,
                "high": _r(ci[1]) if ci else None, "n": n}
    if kind == "nps":
        res = sat.nps(sample)
        return {"value": res["nps"], "low": res["low"], "high": res["high"], "n": res["n"]}
    ci = sat.mean_ci(sample, bounds=KPIS[kpi].bounds)
    return {"value": _r(sat.mean(sample)), "low": _r(ci[0]) if ci else None, "high": _r(ci[1]) if ci else None,
            "n": len(sample)}


def change(kpi: str, now: Any, before: Any) -> tuple[float | None, float | None, float | None]:
    """(change, low, high) of a KPI from the baseline sample to the period's."""
    from pipeline.insights import satisfaction as sat

    kind = KPIS[kpi].kind
    if kind == "proportion":
        res = sat.newcombe(now[0], now[1], before[0], before[1])
        return (None, None, None) if res is None else (_r(res[0]), _r(res[1]), _r(res[2]))
    if kind == "nps":
        a, b = sat.nps(now), sat.nps(before)
        if not a["n"] or not b["n"]:
            return None, None, None
        d = a["nps"] - b["nps"]

        def se(res: dict[str, Any]) -> float:
            p, q = res["promoters"] / res["n"], res["detractors"] / res["n"]
            return 100 * math.sqrt(max(0.0, p + q - (p - q) ** 2) / res["n"])

        half = sat.Z95 * math.hypot(se(a), se(b))
        return _r(d, 1), _r(d - half, 1), _r(d + half, 1)
    res = sat.welch(now, before)
    if res is None:
        m1, m0 = sat.mean(now), sat.mean(before)
        return (_r(m1 - m0) if m1 is not None and m0 is not None else None), None, None
    return _r(res[0]), _r(res[1]), _r(res[2])


def kpi_table(now: Window, baseline: Window, goals: Mapping[str, Goal], pass_mark: float,
              min_sample: int) -> list[dict[str, Any]]:
    """One row per KPI: value, interval, n, goal, met, baseline, change with its interval,
    and whether the sample is too few to judge (n < ``min_sample``)."""
    s_now, s_before = samples(now, pass_mark), samples(baseline, pass_mark)
    rows = []
    for kpi, spec in KPIS.items():
        cur, base = summarise(kpi, s_now[kpi]), summarise(kpi, s_before[kpi])
        goal = goals.get(kpi)
        ch, lo, hi = change(kpi, s_now[kpi], s_before[kpi])
        rows.append({
            "kpi": kpi, "label": spec.label, "kind": spec.kind, "better": spec.better, "unit": spec.unit,
            **cur, "goal": str(goal) if goal else None, "met": goal.met(cur["value"]) if goal else None,
            "baseline": base["value"], "baseline_n": base["n"], "change": ch, "change_low": lo, "change_high": hi,
            "too_few": cur["n"] < min_sample,
        })
    return rows
