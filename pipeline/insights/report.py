"""The manager report of a period (``callqa report OUT --period week --out DIR``) and one
coaching report per agent.

:func:`build_report` reads the insight store (its facts, and the surveys and ACD rows joined to
them) and returns everything as one JSON-able dict; :func:`write_report` writes it as
``report.html`` (self-contained: inline CSS and SVG, no script, every text escaped),
``report.json``, ``kpis.csv``, ``agents.csv``, ``items.csv``, ``satisfaction.csv`` and
``coaching/<agent>.html``. The review app can call :func:`build_report`,
:func:`render_report_html` and :func:`render_coaching_html` itself.

The period: ``day``, ``week`` (ISO, Monday to Sunday) or ``month`` holding ``end`` (default: the
day of the newest interaction in the store), or the days ``start`` to ``to`` (both included).
The baseline: the ``insights.baseline_days`` days before the period, or the days given.

Sample sizes are stated beside every figure; a weekly trend point with fewer than
``insights.min_sample`` interactions is not drawn, a difference with fewer is marked too few.

Coaching: per agent, the scorecard items where the agent's yes-rate is below the rest of the
team's (difference with Newcombe's 95% interval and both n), the agent's weekly trend, and the
clips to listen to: the agent's calls of the period answered "no" on those items, each with the
evidence quote and time read from the call's record (``OUT/calls/<id>/call.json``, read for
those calls only), linked to the review app's ``/calls/<id>?t=<seconds>``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.errors import CallqaError, ConfigError
from pipeline.evaluation.plots import FONT, GRID, MUTED, esc, number
from pipeline.insights import goals as goals_mod
from pipeline.insights import satisfaction as sat
from pipeline.insights.external import rematch, unmatched_count
from pipeline.insights.store import InsightStore
from pipeline.interaction.record import Interaction, RecordError, record_path
from pipeline.interaction.writers import csv_text, write_atomic

PERIODS = ("day", "week", "month")
CLIPS_PER_ITEM = 5
TREND_WEEKS_MIN = 4
"""A trend shows at least this many weeks (back from the period's end)."""
GOOD, BAD, NEUTRAL = "#2e7d32", "#c62828", "#3b6ea5"


class ReportError(CallqaError):
    """A report cannot be made (no data to place the period, a bad date...)."""


# -- windows -----------------------------------------------------------------------------------


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        raise ConfigError(f"{name}: a date as YYYY-MM-DD, not {text!r}") from None


def newest_day(store: InsightStore) -> date | None:
    row = store.conn.execute("SELECT MAX(day) FROM interactions WHERE day IS NOT NULL").fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def window(period: str = "week", end: str | None = None, start: str | None = None, to: str | None = None,
           newest: date | None = None) -> dict[str, Any]:
    """The period as ``{kind, start, end (exclusive), last_day, label}``."""
    if start or to:
        if not (start and to):
            raise ConfigError("--from and --to: give both (the first and the last day of the period)")
        first, last = _day(start, "--from"), _day(to, "--to")
        if last < first:
            raise ConfigError(f"--to {to} is before --from {start}")
        kind = "custom"
    else:
        if period not in PERIODS:
            raise ConfigError(f"--period: one of {', '.join(PERIODS)}, not {period!r}")
        anchor = _day(end, "--end") if end else newest
        if anchor is None:
            raise ReportError("the insight store has no dated interaction: nothing to report (give --end, "
                              "or run callqa on some calls first)")
        kind = period
        if period == "day":
            first = last = anchor
        elif period == "week":
            first = anchor - timedelta(days=anchor.weekday())
            last = first + timedelta(days=6)
        else:
            first = anchor.replace(day=1)
            last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    label = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    if kind == "week":
        label = f"{iso_week_of(first)} ({label})"
    return {"kind": kind, "start": first.isoformat(), "end": (last + timedelta(days=1)).isoformat(),
            "last_day": last.isoformat(), "label": label}


def iso_week_of(day: date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def baseline_window(period: Mapping[str, Any], days: int, given: str | None = None) -> dict[str, Any]:
    """The baseline: ``given`` (``FROM:TO``, both days included) or the ``days`` days before."""
    if given:
        first_text, sep, last_text = given.partition(":")
        if not sep:
            raise ConfigError(f"--baseline: FROM:TO (two dates, e.g. 2026-10-01:2026-10-31), not {given!r}")
        first, last = _day(first_text, "--baseline"), _day(last_text, "--baseline")
        if last < first:
            raise ConfigError(f"--baseline: {last_text} is before {first_text}")
    else:
        last = date.fromisoformat(period["start"]) - timedelta(days=1)
        first = last - timedelta(days=days - 1)
    return {"kind": "given" if given else f"{days} days before", "start": first.isoformat(),
            "end": (last + timedelta(days=1)).isoformat(), "last_day": last.isoformat(),
            "label": f"{first.isoformat()} to {last.isoformat()}"}


# -- figures -----------------------------------------------------------------------------------


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _rate(k: int, n: int) -> dict[str, Any]:
    ci = sat.wilson(k, n)
    return {"rate": _r(k / n) if n else None, "low": _r(ci[0]) if ci else None, "high": _r(ci[1]) if ci else None,
            "yes": k, "n": n}


def item_counts(facts: Iterable[Any]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for f in facts:
        for item, answer in f.answers.items():
            counts[item][answer] += 1
    return counts


def item_rows(now: Sequence[Any], before: Sequence[Any], min_sample: int) -> list[dict[str, Any]]:
    """Per item: yes / no / na counts, the yes-rate of yes+no with its interval, the baseline's
    and the change with Newcombe's interval."""
    c_now, c_before = item_counts(now), item_counts(before)
    rows = []
    for item in sorted(set(c_now) | set(c_before)):
        a, b = c_now[item], c_before[item]
        n1, n0 = a["yes"] + a["no"], b["yes"] + b["no"]
        cur = _rate(a["yes"], n1)
        diff = sat.newcombe(a["yes"], n1, b["yes"], n0)
        rows.append({"item": item, "yes": a["yes"], "no": a["no"], "na": a["na"], "yes_rate": cur["rate"],
                     "low": cur["low"], "high": cur["high"], "n": n1,
                     "baseline_yes_rate": _r(b["yes"] / n0) if n0 else None, "baseline_n": n0,
                     "change": _r(diff[0]) if diff else None, "change_low": _r(diff[1]) if diff else None,
                     "change_high": _r(diff[2]) if diff else None, "too_few": n1 < min_sample})
    return rows


def weekly_trend(facts: Iterable[Any], csat: Mapping[str, float], pass_mark: float, weeks: Sequence[str],
                 min_sample: int) -> list[dict[str, Any]]:
    """One point per ISO week of ``weeks``: n, mean QA score, pass rate, mean CSAT (and its n);
    ``too_few`` when n < ``min_sample`` (such points are not drawn)."""
    by_week: dict[str, list[Any]] = defaultdict(list)
    for f in facts:
        if f.week:
            by_week[f.week].append(f)
    out = []
    for week in weeks:
        fs = by_week.get(week, [])
        scored = [f for f in fs if f.score is not None]
        cs = [csat[f.call_id] for f in fs if f.call_id in csat]
        out.append({"week": week, "n": len(fs), "scored": len(scored),
                    "qa_score": _r(sat.mean([f.score for f in scored])),
                    "pass_rate": _r(sum(1 for f in scored if f.score >= pass_mark and not f.auto_fail) / len(scored))
                    if scored else None,
                    "csat": _r(sat.mean(cs)), "csat_n": len(cs), "too_few": len(scored) < min_sample,
                    "csat_too_few": len(cs) < min_sample})
    return out


def weeks_between(first: str, end: str) -> list[str]:
    """ISO weeks of the days from ``first`` to the day before ``end``."""
    out: list[str] = []
    day, stop = date.fromisoformat(first), date.fromisoformat(end)
    while day < stop:
        week = iso_week_of(day)
        if not out or out[-1] != week:
            out.append(week)
        day += timedelta(days=1)
    return out


def agent_rows(facts: Sequence[Any], csat: Mapping[str, float], pass_mark: float,
               min_sample: int) -> list[dict[str, Any]]:
    by_agent: dict[str, list[Any]] = defaultdict(list)
    for f in facts:
        if f.agent_id:
            by_agent[f.agent_id].append(f)
    rows = []
    for agent in sorted(by_agent):
        fs = by_agent[agent]
        scored = [f for f in fs if f.score is not None]
        cs = [csat[f.call_id] for f in fs if f.call_id in csat]
        ci = sat.mean_ci([f.score for f in scored], bounds=(0.0, 1.0))
        passed = _rate(sum(1 for f in scored if f.score >= pass_mark and not f.auto_fail), len(scored))
        rows.append({"agent_id": agent, "team": Counter(f.team for f in fs).most_common(1)[0][0],
                     "interactions": len(fs), "scored": len(scored),
                     "qa_score": _r(sat.mean([f.score for f in scored])), "qa_low": _r(ci[0]) if ci else None,
                     "qa_high": _r(ci[1]) if ci else None, "pass_rate": passed["rate"],
                     "auto_fails": sum(1 for f in fs if f.auto_fail), "csat": _r(sat.mean(cs)), "csat_n": len(cs),
                     "too_few": len(scored) < min_sample})
    return rows


def _clip(out_dir: Path, call_id: str, item: str) -> dict[str, Any]:
    """The evidence of ``item`` in the call's record: quote, start, link."""
    clip: dict[str, Any] = {"call_id": call_id, "item": item, "quote": None, "start": None, "looked_for": None,
                            "link": f"/calls/{quote(call_id, safe='')}"}
    try:
        record = Interaction.load(record_path(out_dir, call_id))
    except (RecordError, OSError):
        clip["missing"] = True
        return clip
    for it in record.items:
        if it.get("id") != item:
            continue
        clip["looked_for"] = it.get("looked_for") or None
        for e in it.get("evidence") or []:
            if isinstance(e, Mapping) and number(e.get("start")) is not None:
                clip["start"] = round(float(e["start"]), 1)
                clip["end"] = number(e.get("end"))
                clip["quote"] = e.get("quote") or None
                clip["link"] += f"?t={clip['start']:g}"
                break
        break
    return clip


def coaching(agent: str, facts: Sequence[Any], team_facts: Sequence[Any], trend_facts: Sequence[Any],
             weeks: Sequence[str], csat: Mapping[str, float], out_dir: Path, pass_mark: float, min_sample: int,
             clips_per_item: int = CLIPS_PER_ITEM) -> dict[str, Any]:
    """The coaching report of ``agent`` (facts: the agent's in the period; team_facts: the whole
    team's in the period; trend_facts: the agent's over the trend weeks)."""
    mine = item_counts(facts)
    rest = item_counts([f for f in team_facts if f.agent_id != agent])
    whole = item_counts(team_facts)
    items = []
    for item in sorted(mine):
        a, b, t = mine[item], rest[item], whole[item]
        n_a, n_b = a["yes"] + a["no"], b["yes"] + b["no"]
        if not n_a:
            continue
        diff = sat.newcombe(a["yes"], n_a, b["yes"], n_b)
        if diff is None or diff[0] >= 0:
            continue
        verdict = ("too few" if n_a < min_sample or n_b < min_sample else
                   "below the team" if diff[2] < 0 else "no clear difference")
        agent_rate, rest_rate = _rate(a["yes"], n_a), _rate(b["yes"], n_b)
        items.append({"item": item, "agent_yes_rate": agent_rate["rate"], "agent_low": agent_rate["low"],
                      "agent_high": agent_rate["high"], "agent_n": n_a, "team_yes_rate": rest_rate["rate"],
                      "team_n": n_b, "whole_team_yes_rate": _r(t["yes"] / (t["yes"] + t["no"])),
                      "difference": _r(diff[0]), "low": _r(diff[1]), "high": _r(diff[2]), "verdict": verdict})
    items.sort(key=lambda r: (r["verdict"] != "below the team", r["difference"], r["item"]))
    clips = []
    for row in items:
        calls = [f.call_id for f in facts if f.answers.get(row["item"]) == "no"][:clips_per_item]
        clips.extend(_clip(out_dir, cid, row["item"]) for cid in calls)
    scored = [f for f in facts if f.score is not None]
    cs = [csat[f.call_id] for f in facts if f.call_id in csat]
    return {"agent_id": agent, "team": Counter(f.team for f in facts).most_common(1)[0][0] if facts else None,
            "interactions": len(facts), "scored": len(scored), "qa_score": _r(sat.mean([f.score for f in scored])),
            "pass_rate": _r(sum(1 for f in scored if f.score >= pass_mark and not f.auto_fail) / len(scored))
            if scored else None, "csat": _r(sat.mean(cs)), "csat_n": len(cs), "items_below_team": items,
            "trend": weekly_trend(trend_facts, csat, pass_mark, weeks, min_sample), "clips": clips,
            "min_sample": min_sample}


def build_report(store: InsightStore, config: Any, period: str = "week", *, end: str | None = None,
                 start: str | None = None, to: str | None = None, team: str | None = None,
                 baseline: str | None = None, out_dir: str | Path | None = None,
                 clips_per_item: int = CLIPS_PER_ITEM) -> dict[str, Any]:
    """The report of a period as one dict (see the module docstring). ``out_dir``: the run
    folder whose call.json files hold the clips' evidence (default: the store's folder).
    Surveys and ACD rows unmatched so far are matched again first."""
    options = config.insights
    pass_mark = float(config.review.pass_mark)
    min_sample = options.min_sample
    out = Path(out_dir) if out_dir else store.path.parent
    rematched = rematch(store, options)
    win = window(period, end, start, to, newest_day(store))
    base = baseline_window(win, options.baseline_days, baseline)
    trend_start = min(base["start"], (date.fromisoformat(win["end"]) - timedelta(weeks=TREND_WEEKS_MIN)).isoformat())
    weeks = weeks_between(trend_start, win["end"])
    trend_first = (date.fromisoformat(trend_start) - timedelta(days=date.fromisoformat(trend_start).weekday()))

    now_all = goals_mod.collect(store, win["start"], win["end"], team=team, repeat_days=options.repeat_days)
    before_all = goals_mod.collect(store, base["start"], base["end"], team=team, repeat_days=options.repeat_days)
    trend_facts = list(store.facts(trend_first.isoformat(), win["end"], team=team))
    from pipeline.insights.external import survey_rows

    ids = {f.call_id for f in trend_facts} | {f.call_id for f in now_all.facts}
    csat_all = sat.call_csat(survey_rows(store.conn, ids))

    scopes = [(team, now_all, before_all)] if team else [(None, now_all, before_all)]
    if not team:
        for name in sorted({f.team for f in now_all.facts if f.team}):
            scopes.append((name, goals_mod.collect(store, win["start"], win["end"], team=name,
                                                   repeat_days=options.repeat_days),
                           goals_mod.collect(store, base["start"], base["end"], team=name,
                                             repeat_days=options.repeat_days)))
    teams = [{"team": name or "all teams", "scope": name, "interactions": len(now.facts),
              "kpis": goals_mod.kpi_table(now, before, goals_mod.goals_for(options, name), pass_mark, min_sample)}
             for name, now, before in scopes]

    agents = agent_rows(now_all.facts, csat_all, pass_mark, min_sample)
    by_team: dict[str | None, list[Any]] = defaultdict(list)
    for f in now_all.facts:
        by_team[f.team].append(f)
    coaching_reports = {}
    for row in agents:
        agent = row["agent_id"]
        facts = [f for f in now_all.facts if f.agent_id == agent]
        coaching_reports[agent] = coaching(
            agent, facts, by_team[row["team"]], [f for f in trend_facts if f.agent_id == agent], weeks, csat_all,
            out, pass_mark, min_sample, clips_per_item)
    satisfaction = sat.analyse(now_all.facts, now_all.surveys, min_sample)
    return {
        "title": f"QA report {win['label']}" + (f", team {team}" if team else ""),
        "period": win, "baseline": base, "team": team, "pass_mark": pass_mark, "min_sample": min_sample,
        "counts": {"interactions": len(now_all.facts), "baseline_interactions": len(before_all.facts),
                   "surveys": len(now_all.surveys), "acd": len(now_all.acd),
                   "unmatched_surveys": unmatched_count(store.conn, "surveys"),
                   "unmatched_acd": unmatched_count(store.conn, "acd"), "rematched": rematched,
                   "no_agent": sum(1 for f in now_all.facts if not f.agent_id)},
        "teams": teams, "agents": agents,
        "items": item_rows(now_all.facts, before_all.facts, min_sample),
        "satisfaction": satisfaction,
        "trend": weekly_trend(trend_facts, csat_all, pass_mark, weeks, min_sample),
        "coaching": coaching_reports,
    }


# -- files -------------------------------------------------------------------------------------


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` at ``columns`` (true/false as 1/0; cells as in summary.csv)."""
    return csv_text([{c: int(v) if isinstance(v, bool) else v for c, v in r.items()} for r in rows], tuple(columns))


KPI_COLUMNS = ("team", "kpi", "value", "low", "high", "n", "goal", "met", "baseline", "baseline_n", "change",
               "change_low", "change_high", "too_few")
AGENT_COLUMNS = ("agent_id", "team", "interactions", "scored", "qa_score", "qa_low", "qa_high", "pass_rate",
                 "auto_fails", "csat", "csat_n", "too_few")
ITEM_COLUMNS = ("item", "yes", "no", "na", "yes_rate", "low", "high", "n", "baseline_yes_rate", "baseline_n",
                "change", "change_low", "change_high", "too_few")
SAT_COLUMNS = ("item", "n_yes", "n_no", "csat_yes", "csat_no", "difference", "low", "high", "verdict")


def agent_file(agent: str) -> str:
    """The coaching file name of ``agent`` (a safe name; a hash added when it had to change)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", agent).strip(".") or "agent"
    if safe != agent:
        safe += "-" + hashlib.sha256(agent.encode("utf-8")).hexdigest()[:8]
    return f"{safe}.html"


def write_report(data: Mapping[str, Any], out: str | Path) -> list[Path]:
    """Write the report's files into folder ``out``; the paths written."""
    out = Path(out)
    (out / "coaching").mkdir(parents=True, exist_ok=True)
    files = {
        "report.json": json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
        "report.html": render_report_html(data),
        "kpis.csv": to_csv([{"team": t["team"], **k} for t in data["teams"] for k in t["kpis"]], KPI_COLUMNS),
        "agents.csv": to_csv(data["agents"], AGENT_COLUMNS),
        "items.csv": to_csv(data["items"], ITEM_COLUMNS),
        "satisfaction.csv": to_csv(data["satisfaction"]["items"], SAT_COLUMNS),
    }
    written = []
    for name, text in files.items():
        write_atomic(out / name, text)  # private, as every result is
        written.append(out / name)
    for agent in data["coaching"]:
        path = out / "coaching" / agent_file(agent)
        write_atomic(path, render_coaching_html(data, agent))
        written.append(path)
    return written


# -- HTML --------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
.met{color:#2e7d32;font-weight:600}.notmet{color:#c62828;font-weight:600}.few{color:#777;font-style:italic}
.note{color:#555;font-size:13px}.quote{font-style:italic}.charts{display:flex;flex-wrap:wrap;gap:16px}
"""


def _fmt(value: Any, unit: str = "", kind: str = "mean", digits: int = 3) -> str:
    v = number(value)
    if v is None:
        return "n/a"
    if kind == "proportion":
        return f"{100 * v:.1f}%"
    if kind == "nps":
        return f"{v:.0f}"
    return f"{v:.{0 if unit == 's' else digits}f}{' s' if unit == 's' else ''}"


def _ci(low: Any, high: Any, unit: str = "", kind: str = "mean") -> str:
    if number(low) is None or number(high) is None:
        return ""
    return f" [{_fmt(low, unit, kind)}, {_fmt(high, unit, kind)}]"


def _change(row: Mapping[str, Any]) -> str:
    kind, unit = row["kind"], row.get("unit", "")
    if number(row.get("change")) is None:
        return "n/a"
    sign = "+" if row["change"] > 0 else ""
    if kind == "proportion":
        text = f"{sign}{100 * row['change']:.1f} pts"
        ci = (f" [{100 * row['change_low']:.1f}, {100 * row['change_high']:.1f}]"
              if number(row.get("change_low")) is not None else "")
    else:
        text = f"{sign}{_fmt(row['change'], unit, kind)}"
        ci = _ci(row.get("change_low"), row.get("change_high"), unit, kind)
    return text + ci


def _page(title: str, body: Iterable[str]) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{esc(title)}</title><style>{CSS}</style></head><body>", *body, "</body></html>"]) + "\n"


def _svg(width: float, height: float, title: str, body: Iterable[str]) -> str:
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                      f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(title)}" '
                      f'font-family="{esc(FONT)}" font-size="12"><title>{esc(title)}</title>',
                      f'<text x="4" y="15" font-size="13" font-weight="600">{esc(title)}</text>', *body, "</svg>"])


def kpi_goal_chart(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    """One bar per KPI with a goal or a value: the value (green: goal met, red: not met, blue:
    no goal), a black mark at the goal; each row on its own scale, n beside it."""
    rows = [r for r in rows if r.get("goal") or number(r.get("value")) is not None]
    label_w, bar_w, row_h, y0 = 170.0, 260.0, 22.0, 28.0
    height = y0 + row_h * max(1, len(rows)) + 8
    body = []
    if not rows:
        body.append(f'<text x="4" y="40" fill="{MUTED}">no data</text>')
    for i, r in enumerate(rows):
        y = y0 + i * row_h
        value = number(r.get("value"))
        goal = goals_mod.parse_goal(r["goal"], "goal") if r.get("goal") else None
        nums = [v for v in (value, goal.target if goal else None, number(r.get("baseline"))) if v is not None]
        lo = min([0.0, *nums]) if r["kind"] != "nps" else -100.0
        hi = max([*nums, 1e-9]) * 1.15 if r["kind"] not in ("proportion", "nps") else (1.0 if r["kind"] == "proportion"
                                                                                     else 100.0)
        hi = max(hi, lo + 1e-9)

        def x(v: float) -> float:
            return label_w + max(0.0, min(1.0, (v - lo) / (hi - lo))) * bar_w

        body.append(f'<text x="{label_w - 6:.1f}" y="{y + 15:.1f}" text-anchor="end">{esc(r["label"])}</text>')
        body.append(f'<rect x="{label_w:.1f}" y="{y + 4:.1f}" width="{bar_w:.1f}" height="14" fill="#f1f1f1"/>')
        colour = NEUTRAL if r.get("met") is None else (GOOD if r["met"] else BAD)
        text = f"{_fmt(value, r.get('unit', ''), r['kind'])} (n={r['n']})"
        if value is not None:
            x0 = x(min(max(0.0, lo), hi))  # bars start at zero
            body.append(f'<rect x="{min(x0, x(value)):.1f}" y="{y + 4:.1f}" width="{abs(x(value) - x0):.1f}" '
                        f'height="14" '
                        f'fill="{colour}"><title>{esc(r["label"])}: {esc(text)}</title></rect>')
        if goal is not None:
            gx = x(goal.target)
            body.append(f'<line x1="{gx:.1f}" y1="{y + 1:.1f}" x2="{gx:.1f}" y2="{y + 21:.1f}" stroke="#000" '
                        f'stroke-width="2"><title>goal {esc(str(goal))}</title></line>')
            text += f", goal {goal}"
        if r.get("too_few"):
            text += ", too few"
        body.append(f'<text x="{label_w + bar_w + 6:.1f}" y="{y + 15:.1f}">{esc(text)}</text>')
    return _svg(label_w + bar_w + 240, height, title, body)


def trend_chart(points: Sequence[Mapping[str, Any]], key: str, title: str, lo: float, hi: float,
                few_key: str = "too_few", n_key: str = "scored", kind: str = "mean") -> str:
    """A line over the weeks; weeks with too few interactions are left out (a gap), and the
    chart says so. No line at all under two weeks with enough data."""
    left, width_plot, top, h = 44.0, 420.0, 26.0, 150.0
    n = len(points)
    step = width_plot / max(1, n - 1)
    body = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = top + h - h * k / 4
        body.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + width_plot:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 4:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
                    f'{esc(_fmt(v, kind=kind, digits=2))}</text>')
    drawn, segment, segments = 0, [], []
    for i, p in enumerate(points):
        x = left + (i * step if n > 1 else width_plot / 2)
        body.append(f'<text x="{x:.1f}" y="{top + h + 14:.1f}" text-anchor="middle" font-size="9">'
                    f'{esc(str(p["week"])[-3:])}</text>')
        v = number(p.get(key))
        if v is None or p.get(few_key):
            if segment:
                segments.append(segment)
            segment = []
            continue
        y = top + h - h * max(0.0, min(1.0, (v - lo) / (hi - lo)))
        segment.append((x, y))
        drawn += 1
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{NEUTRAL}"><title>{esc(p["week"])}: '
                    f'{esc(_fmt(v, kind=kind))} (n={p.get(n_key)})</title></circle>')
    if segment:
        segments.append(segment)
    if drawn >= 2:
        for seg in segments:
            if len(seg) > 1:
                body.append(f'<polyline fill="none" stroke="{NEUTRAL}" stroke-width="2" points="'
                            + " ".join(f"{x:.1f},{y:.1f}" for x, y in seg) + '"/>')
    left_out = sum(1 for p in points if p.get(few_key))
    note = ("no trend: fewer than two weeks with enough data" if drawn < 2 else
            f"{left_out} week(s) with fewer than the minimum sample not drawn" if left_out else "")
    if note:
        body.append(f'<text x="{left:.1f}" y="{top + h + 30:.1f}" fill="{MUTED}" font-size="11">{esc(note)}</text>')
    return _svg(left + width_plot + 20, top + h + 38, title, body)


def _table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> str:
    """``columns``: (header, css class); rows of already-escaped HTML cells."""
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kpi_section(team: Mapping[str, Any]) -> list[str]:
    rows = []
    for k in team["kpis"]:
        unit, kind = k.get("unit", ""), k["kind"]
        met = ('<span class="met">met</span>' if k["met"] else '<span class="notmet">not met</span>'
               if k["met"] is False else "")
        few = ' <span class="few">(too few)</span>' if k["too_few"] else ""
        rows.append([esc(k["label"]), esc(_fmt(k["value"], unit, kind) + _ci(k["low"], k["high"], unit, kind)) + few,
                     esc(k["n"]), esc(k["goal"] or ""), met, esc(_fmt(k["baseline"], unit, kind)),
                     esc(k["baseline_n"]), esc(_change(k))])
    return [f'<h3>{esc(team["team"])} ({esc(team["interactions"])} interactions)</h3>',
            _table([("KPI", ""), ("value [95% CI]", ""), ("n", ""), ("goal", ""), ("", ""), ("baseline", ""),
                    ("baseline n", ""), ("change [95% CI]", "")], rows),
            kpi_goal_chart(team["kpis"], f"{team['team']}: KPIs against goals")]


def render_report_html(data: Mapping[str, Any], coaching_href: str = "coaching/{file}") -> str:
    """The manager report as one self-contained HTML page (``coaching_href``: where an agent's
    coaching page is, ``{file}`` its file name, URL-quoted)."""
    c, ms = data["counts"], data["min_sample"]
    body = [f"<h1>{esc(data['title'])}</h1>",
            f'<p class="note">Period {esc(data["period"]["label"])}; baseline {esc(data["baseline"]["label"])} '
            f'({esc(c["baseline_interactions"])} interactions). {esc(c["interactions"])} interactions, '
            f'{esc(c["surveys"])} surveys and {esc(c["acd"])} ACD records in the period. Pass mark '
            f'{esc(data["pass_mark"])}. Figures from fewer than {esc(ms)} are marked too few and not drawn as '
            f'trends. 95% intervals in brackets.</p>']
    if c["unmatched_surveys"] or c["unmatched_acd"]:
        body.append(f'<p class="note">Not joined to any interaction: {esc(c["unmatched_surveys"])} survey rows, '
                    f'{esc(c["unmatched_acd"])} ACD rows (kept; matched again on each import and report).</p>')
    body.append("<h2>KPIs</h2>")
    for team in data["teams"]:
        body.extend(_kpi_section(team))
    body.append("<h2>Weekly trend</h2><div class=\"charts\">")
    body.append(trend_chart(data["trend"], "qa_score", "QA score by week", 0.0, 1.0))
    body.append(trend_chart(data["trend"], "pass_rate", "Pass rate by week", 0.0, 1.0, kind="proportion"))
    body.append(trend_chart(data["trend"], "csat", "CSAT by week", 1.0, 5.0, few_key="csat_too_few", n_key="csat_n"))
    body.append("</div>")
    body.append(_table([("week", ""), ("interactions", ""), ("QA score", ""), ("pass rate", ""), ("CSAT", ""),
                        ("surveys", "")],
                       [[esc(p["week"]), esc(p["n"]), esc(_fmt(p["qa_score"])),
                         esc(_fmt(p["pass_rate"], kind="proportion")), esc(_fmt(p["csat"], digits=2)),
                         esc(p["csat_n"])] for p in data["trend"]]))
    body.append("<h2>Agents</h2>")
    body.append(_table(
        [("agent", ""), ("team", ""), ("interactions", ""), ("QA score [95% CI]", ""), ("pass rate", ""),
         ("auto-fails", ""), ("CSAT (n)", ""), ("coaching", "")],
        [[esc(a["agent_id"]), esc(a["team"] or ""), esc(a["interactions"]),
          esc(_fmt(a["qa_score"]) + _ci(a["qa_low"], a["qa_high"]))
          + (' <span class="few">(too few)</span>' if a["too_few"] else ""),
          esc(_fmt(a["pass_rate"], kind="proportion")), esc(a["auto_fails"]),
          esc(f"{_fmt(a['csat'], digits=2)} ({a['csat_n']})"),
          f'<a href="{esc(coaching_href.format(file=quote(agent_file(a["agent_id"]))))}">coaching</a>']
         for a in data["agents"]]))
    body.append("<h2>Scorecard items</h2>")
    body.append(_table(
        [("item", ""), ("yes", ""), ("no", ""), ("n/a", ""), ("yes-rate [95% CI]", ""), ("baseline", ""),
         ("change [95% CI]", "")],
        [[esc(i["item"]), esc(i["yes"]), esc(i["no"]), esc(i["na"]),
          esc(_fmt(i["yes_rate"], kind="proportion") + _ci(i["low"], i["high"], kind="proportion"))
          + (' <span class="few">(too few)</span>' if i["too_few"] else ""),
          esc(f"{_fmt(i['baseline_yes_rate'], kind='proportion')} (n={i['baseline_n']})"),
          esc(_change({**i, "kind": "proportion"}))] for i in data["items"]]))
    body.extend(_satisfaction_section(data["satisfaction"]))
    return _page(data["title"], body)


def _satisfaction_section(s: Mapping[str, Any]) -> list[str]:
    corr, csat, share, nps = s["score_vs_csat"], s["csat"], s["satisfied"], s["nps"]
    out = ["<h2>Satisfaction</h2>",
           f'<p>CSAT {esc(_fmt(csat["mean"], digits=2) + _ci(csat["low"], csat["high"]))} (n={esc(csat["n"])}); '
           f'satisfied (4-5) {esc(_fmt(share["share"], kind="proportion"))}'
           f'{esc(_ci(share["low"], share["high"], kind="proportion"))} '
           f'(n={esc(share["n"])}); NPS {esc(_fmt(nps["nps"], kind="nps") + _ci(nps["low"], nps["high"], kind="nps"))} '
           f'(n={esc(nps["n"])}).</p>',
           f'<p>QA score against CSAT: Spearman rho {esc(_fmt(corr["rho"], digits=2) + _ci(corr["low"], corr["high"]))}'
           f' (n={esc(corr["n"])}): {esc(corr["verdict"])}.</p>',
           "<h3>Which script steps go with satisfied customers</h3>",
           f'<p class="note">Mean CSAT of the calls where the item was done minus where it was not, with Welch\'s 95% '
           f'interval; fewer than {esc(s["min_sample"])} calls in a group: too few to judge.</p>',
           _table([("item", ""), ("CSAT when yes (n)", ""), ("CSAT when no (n)", ""), ("difference [95% CI]", ""),
                   ("verdict", "")],
                  [[esc(i["item"]), esc(f"{_fmt(i['csat_yes'], digits=2)} ({i['n_yes']})"),
                    esc(f"{_fmt(i['csat_no'], digits=2)} ({i['n_no']})"),
                    esc(_fmt(i["difference"], digits=2) + _ci(i["low"], i["high"])),
                    esc(i["verdict"])] for i in s["items"]])]
    return out


def render_coaching_html(data: Mapping[str, Any], agent_id: str, app_url: str = "") -> str:
    """The coaching report of one agent as a self-contained page (links to the review app at
    ``app_url``, default: relative to the server that shows it). KeyError for an agent not in
    the report."""
    c = data["coaching"][agent_id]
    title = f"Coaching: {agent_id}, {data['period']['label']}"
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="note">Team {esc(c["team"] or "n/a")}. {esc(c["interactions"])} interactions, QA score '
            f'{esc(_fmt(c["qa_score"]))} (n={esc(c["scored"])}), pass rate '
            f'{esc(_fmt(c["pass_rate"], kind="proportion"))},'
            f' CSAT {esc(_fmt(c["csat"], digits=2))} (n={esc(c["csat_n"])}). Differences from fewer than '
            f'{esc(c["min_sample"])} answers are marked too few.</p>',
            "<h2>Where the agent is below the team</h2>"]
    if c["items_below_team"]:
        body.append('<p class="note">Yes-rate of the agent against the rest of the team, with the difference '
                    "and its 95% interval.</p>")
        body.append(_table(
            [("item", ""), ("agent (n)", ""), ("rest of team (n)", ""), ("difference [95% CI]", ""), ("verdict", "")],
            [[esc(i["item"]), esc(f"{_fmt(i['agent_yes_rate'], kind='proportion')} ({i['agent_n']})"),
              esc(f"{_fmt(i['team_yes_rate'], kind='proportion')} ({i['team_n']})"),
              esc(_change({"kind": "proportion", "change": i["difference"], "change_low": i["low"],
                           "change_high": i["high"]})), esc(i["verdict"])] for i in c["items_below_team"]]))
    else:
        body.append("<p>No item below the rest of the team in this period.</p>")
    body.append("<h2>Trend</h2>")
    body.append(trend_chart(c["trend"], "qa_score", "QA score by week", 0.0, 1.0))
    body.append("<h2>Clips to listen to</h2>")
    if not c["clips"]:
        body.append("<p>None.</p>")
    else:
        lis = []
        for clip in c["clips"]:
            when = f" at {clip['start']:.1f} s" if clip.get("start") is not None else ""
            looked = esc(clip.get("looked_for") or "n/a")
            said = (f' <span class="quote">\u201c{esc(clip["quote"])}\u201d</span>' if clip.get("quote") else
                    f' <span class="few">(no words; looked for: {looked})</span>' if clip.get("start") is not None else
                    f' <span class="few">nothing found; looked for: {looked}</span>')
            lis.append(f'<li><a href="{esc(app_url + clip["link"])}">{esc(clip["call_id"])}</a>{esc(when)}: '
                       f'{esc(clip["item"])}{said}</li>')
        body.append("<ul>" + "".join(lis) + "</ul>")
    return _page(title, body)
