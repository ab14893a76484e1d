"""Figures for the dashboards: per-agent and per-channel KPIs, trends over time (per team and per
channel too), automatic-vs-human agreement. Calls and written conversations (e-mail threads,
chats) count alike; every figure can be limited to one channel (``voice``, ``email``, ``chat``)
as it can to a team or an agent.

A call is *reviewed* when it has a submitted review; when it has several (a calibration call, a
lead's second opinion, an upheld dispute), the one that counts is chosen by one rule,
:func:`pipeline.review.history.counted_reviews`: the latest submitted review marked final by a
lead, else the latest submitted review. Its human answers are
the review's answers, with the automatic suggestion standing for any item the review did not
answer (an item the pipeline added after the review). The *reviewed score* scores those answers
the way the pipeline scores its own (:mod:`pipeline.review.scoring`).

Means and rates are rounded to 4 decimals (as in agents.csv); one that has nothing to average
is None.

Every figure is aggregated in SQL over columns kept on each call by
:func:`pipeline.review.history.refresh_counted` (the counted review, its score, its answer per
item), so a dashboard over a year of calls reads sums, not calls. A human answer to an item the
call no longer has (the pipeline dropped it after the review) is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.evaluation.measures import item_agreement
from pipeline.interaction.writers import csv_text
from pipeline.review.db import CHANNELS, Call, CallItem, ItemTally
from pipeline.review.history import counted_reviews
from pipeline.review.scoring import default_card

BUCKETS = ("day", "week", "month")


PASS_MARK = 0.8
"""The default ``review.pass_mark``: a call passes when its score (the reviewed one where there
is one, else the automatic one) is at least this."""


def _scope(query: Select, start: str | None, end: str | None, team: str | None = None,
           agent_id: str | None = None, table: Any = Call, channel: str | None = None) -> Select:
    """``query`` limited to calls started in [start, end) (ISO text; either optional) of queue
    ``team``, agent ``agent_id`` and channel ``channel`` (any if None); over ``table``'s
    ``started_at`` (or, for the item tallies, ``day``), ``queue``, ``agent_id`` and ``channel``."""
    time = table.day if table is ItemTally else table.started_at
    if start:
        query = query.where(time >= start)
    if end:
        query = query.where(time < end)
    if team is not None:
        query = query.where(table.queue == team)
    if agent_id is not None:
        query = query.where(table.agent_id == agent_id)
    if channel is not None:
        query = query.where(table.channel == channel)
    return query


def _effective_score() -> Any:
    return func.coalesce(Call.reviewed_score, Call.score)


def _passing(pass_mark: float) -> Any:
    """SQL: 1 for a call whose effective score reaches the pass mark, 0 below it, NULL without
    a score."""
    score = _effective_score()
    return case((score.is_(None), None), (score >= pass_mark, 1), else_=0)


def _rate(num: float | None, den: float | None) -> float | None:
    return round(num / den, 4) if den else None


def human_answers(session: Session, call_ids: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """{call_id: {item_id: answer}} of the review that counts for each reviewed call (see
    :func:`pipeline.review.history.counted_reviews`; all reviewed calls, or those of ``call_ids``)."""
    return {call_id: {a.item_id: a.answer for a in review.answers}
            for call_id, review in counted_reviews(session, call_ids).items()}


def _order_items(first: Mapping[str, int]) -> list[str]:
    """Item ids in the default template's order, then the others by their first position in a
    call (``first``), then by id."""
    template = {item.id: n for n, item in enumerate(default_card().items)}
    return sorted(first, key=lambda i: (i not in template, template.get(i, 0), first[i], i))


def _effective_answer() -> Any:
    return func.coalesce(CallItem.human_answer, CallItem.answer)


def agent_kpis(session: Session, start: str | None = None, end: str | None = None,
               team: str | None = None, pass_mark: float = PASS_MARK, *,
               channel: str | None = None) -> list[dict[str, Any]]:
    """One row per agent_id (sorted; calls without one last, agent_id None) over the calls
    started in [start, end) (ISO text, either optional) of queue ``team`` (any queue if None)
    and channel ``channel`` (``voice``, ``email``, ``chat``; any if None):
    ``{"agent_id", "calls", "mean_score" (automatic), "reviewed_calls", "mean_reviewed_score",
    "pass_rate" (calls whose effective score reaches ``pass_mark``, of those with a score),
    "auto_fails" (automatic), "mean_customer_sentiment_end", "pass_rates": {item_id: yes / (yes
    + no) of the effective answers (the counted review's where it answered, the suggestion
    elsewhere), None without a yes or no}}``. Every row's pass_rates has the same items, in
    scorecard order. Computed in SQL: one pass over the calls, and the item pass rates from the
    item tallies per day (:mod:`pipeline.review.tallies`; ``start`` and ``end`` are whole days,
    YYYY-MM-DD, as every window of the app is)."""
    grouped = _kpis(session, "agent_id", start, end, team, None, channel, pass_mark)
    return [{"agent_id": agent, **row} for agent, row in sorted(grouped, key=lambda r: (r[0] is None, r[0] or ""))]


def channel_kpis(session: Session, start: str | None = None, end: str | None = None, team: str | None = None,
                 agent_id: str | None = None, pass_mark: float = PASS_MARK, *,
                 channel: str | None = None) -> list[dict[str, Any]]:
    """The KPIs of :func:`agent_kpis` split by channel instead of agent: one row per channel
    with calls (``voice``, ``email``, ``chat`` in that order, then any other), ``{"channel",
    "calls", ...}``, over the calls started in [start, end) of queue ``team``, agent
    ``agent_id`` and channel ``channel`` (any if None)."""
    order = {c: n for n, c in enumerate(CHANNELS)}
    grouped = _kpis(session, "channel", start, end, team, agent_id, channel, pass_mark)
    return [{"channel": name, **row}
            for name, row in sorted(grouped, key=lambda r: (order.get(r[0], len(order)), r[0] or ""))]


def _kpis(session: Session, by: str, start: str | None, end: str | None, team: str | None,
          agent_id: str | None, channel: str | None, pass_mark: float) -> list[tuple[Any, dict[str, Any]]]:
    """(group value, KPIs) per value of the column ``by`` (``agent_id`` or ``channel``) of the
    calls in scope (see :func:`agent_kpis`): one pass over the calls, the item pass rates from
    the item tallies. Every group's ``pass_rates`` has the same items, in scorecard order."""
    passing = _passing(pass_mark)
    group, tally_group = getattr(Call, by), getattr(ItemTally, by)
    calls = _scope(select(
        group, func.count(), func.avg(Call.score), func.count(Call.counted_review_id),
        func.avg(Call.reviewed_score), func.sum(passing), func.count(passing),
        func.sum(case((Call.auto_fail.is_(True), 1), else_=0)), func.avg(Call.customer_sentiment_end),
    ), start, end, team, agent_id, channel=channel).group_by(group)
    tallies = _scope(select(tally_group, ItemTally.item_id, func.min(ItemTally.position),
                            func.sum(ItemTally.yes), func.sum(ItemTally.decided)),
                     start, end, team, agent_id, table=ItemTally, channel=channel).group_by(tally_group,
                                                                                          ItemTally.item_id)
    per_group: dict[Any, dict[str, tuple[int, int]]] = {}
    first: dict[str, int] = {}
    for value, item, position, yes, decided in session.execute(tallies):
        per_group.setdefault(value, {})[item] = (int(yes or 0), int(decided or 0))
        first[item] = min(first.get(item, position), position)
    items = _order_items(first)
    rows = []
    for value, n, mean, reviewed, mean_reviewed, passed, scored, fails, sentiment in session.execute(calls):
        got = per_group.get(value, {})
        rows.append((value, {
            "calls": n,
            "mean_score": _round(mean),
            "reviewed_calls": reviewed,
            "mean_reviewed_score": _round(mean_reviewed),
            "pass_rate": _rate(passed, scored),
            "auto_fails": int(fails or 0),
            "mean_customer_sentiment_end": _round(sentiment),
            "pass_rates": {item: _rate(*got.get(item, (0, 0))) for item in items},
        }))
    return rows


def _round(value: float | None) -> float | None:
    return round(float(value), 4) if value is not None else None


def period_of(started_at: str | None, bucket: str) -> tuple[str, str] | None:
    """(period label, first day) of a start time by the date written in it (no time-zone
    conversion): day ``2026-11-03``; ISO week ``2026-W45`` (from its Monday); month ``2026-11``.
    None when the text does not start with a YYYY-MM-DD date."""
    try:
        day = date.fromisoformat((started_at or "")[:10])
    except ValueError:
        return None
    if bucket == "day":
        return day.isoformat(), day.isoformat()
    if bucket == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", (day - timedelta(days=day.weekday())).isoformat()
    if bucket == "month":
        return f"{day.year}-{day.month:02d}", day.replace(day=1).isoformat()
    raise ConfigError(f"trend: bucket {bucket!r} is not one of {', '.join(BUCKETS)}")


TREND_SUMS = ("calls", "score_sum", "scored", "reviewed_calls", "reviewed_sum", "reviewed_scored", "passed", "pass_n")


def _daily(session: Session, group: Any, start: str | None, end: str | None, team: str | None,
           agent_id: str | None, pass_mark: float, channel: str | None = None) -> list[Sequence[Any]]:
    """Per (group value, day written in started_at): the sums a trend row is made of; with
    ``group`` None, per day (group value None)."""
    day = func.substr(Call.started_at, 1, 10)
    passing = _passing(pass_mark)
    sums = (func.count(), func.sum(Call.score), func.count(Call.score), func.count(Call.counted_review_id),
            func.sum(Call.reviewed_score), func.count(Call.reviewed_score), func.sum(passing), func.count(passing))
    if group is None:
        query = _scope(select(day, *sums), start, end, team, agent_id, channel=channel).group_by(day)
        return [(None, *row) for row in session.execute(query)]
    query = _scope(select(group, day, *sums), start, end, team, agent_id, channel=channel).group_by(group, day)
    return list(session.execute(query))


def _fold(daily: Iterable[Sequence[Any]], bucket: str) -> dict[Any, list[dict[str, Any]]]:
    """{group: trend rows} from per-day sums: days folded into periods (see :func:`period_of`),
    only periods with calls, in time order; days that are not dates are left out."""
    sums: dict[Any, dict[tuple[str, str], list[float]]] = {}
    for group, day, *values in daily:
        period = period_of(day, bucket)
        if period is None:
            continue
        acc = sums.setdefault(group, {}).setdefault(period, [0.0] * len(TREND_SUMS))
        for n, value in enumerate(values):
            acc[n] += value or 0
    out: dict[Any, list[dict[str, Any]]] = {}
    for group, periods in sums.items():
        out[group] = [{"period": label, "start": first, "calls": int(v[0]), "mean_score": _rate(v[1], v[2]),
                       "reviewed_calls": int(v[3]), "mean_reviewed_score": _rate(v[4], v[5]),
                       "pass_rate": _rate(v[6], v[7])}
                      for (label, first), v in sorted(periods.items(), key=lambda kv: kv[0][1])]
    return out


def trend(session: Session, agent_id: str | None = None, bucket: str = "week", start: str | None = None,
          end: str | None = None, team: str | None = None, pass_mark: float = PASS_MARK, *,
          channel: str | None = None) -> list[dict[str, Any]]:
    """Per period (see :func:`period_of`; only periods with calls, in time order):
    ``{"period", "start" (first day), "calls", "mean_score", "reviewed_calls",
    "mean_reviewed_score", "pass_rate"}`` over the calls of ``agent_id`` (all agents if None),
    optionally of a period [start, end), a queue and a channel. Calls without a readable start
    date are left out. ConfigError for an unknown bucket. Summed per day in SQL, folded here."""
    if bucket not in BUCKETS:
        raise ConfigError(f"trend: bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    return _fold(_daily(session, None, start, end, team, agent_id, pass_mark, channel), bucket).get(None, [])


def team_trends(session: Session, bucket: str = "week", start: str | None = None, end: str | None = None,
                agent_id: str | None = None, pass_mark: float = PASS_MARK, *,
                channel: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """{team (queue): its :func:`trend` rows}, teams sorted; calls without a queue are left out."""
    if bucket not in BUCKETS:
        raise ConfigError(f"trend: bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    folded = _fold(_daily(session, Call.queue, start, end, None, agent_id, pass_mark, channel), bucket)
    return {team: folded[team] for team in sorted(t for t in folded if t is not None)}


def channel_trends(session: Session, bucket: str = "week", start: str | None = None, end: str | None = None,
                   team: str | None = None, agent_id: str | None = None, pass_mark: float = PASS_MARK, *,
                   channel: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """{channel: its :func:`trend` rows}, channels in the order of :data:`CHANNELS` (only those
    with calls), of a queue ``team`` and agent (any if None)."""
    if bucket not in BUCKETS:
        raise ConfigError(f"trend: bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    folded = _fold(_daily(session, Call.channel, start, end, team, agent_id, pass_mark, channel), bucket)
    order = {c: n for n, c in enumerate(CHANNELS)}
    return {name: folded[name] for name in sorted((c for c in folded if c is not None),
                                                  key=lambda c: (order.get(c, len(order)), c))}


def agreement_by_item(session: Session, start: str | None = None, end: str | None = None,
                      team: str | None = None, agent_id: str | None = None, *,
                      channel: str | None = None) -> dict[str, dict[str, Any]]:
    """{item_id: :func:`pipeline.evaluation.measures.item_agreement` result} of the current
    automatic suggestions against the human answers (gold), one pair per reviewed call and item
    that has both, calls started in [start, end) (optional) of a queue, agent and channel; items
    in scorecard order, only those with at least one pair. Counted in SQL per (item, human answer, suggestion)."""
    query = _scope(select(CallItem.item_id, CallItem.human_answer, CallItem.answer, func.count(),
                          func.min(CallItem.position))
                   .join(Call, Call.call_id == CallItem.call_id)
                   # only the counted review's answers are kept on the items: no condition on the
                   # calls, so the plan starts from the (partial) index of the reviewed answers
                   .where(CallItem.human_answer.is_not(None)),
                   start, end, team, agent_id, channel=channel).group_by(CallItem.item_id, CallItem.human_answer,
                                                                          CallItem.answer)
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    first: dict[str, int] = {}
    for item, human, auto, n, position in session.execute(query):
        gold, got = pairs.setdefault(item, ([], []))
        gold.extend([human] * n)
        got.extend([auto] * n)
        first[item] = min(first.get(item, position), position)
    return {item: item_agreement(*pairs[item]) for item in _order_items(first)}


def agreement_weekly(session: Session, start: str | None = None, end: str | None = None,
                     team: str | None = None, agent_id: str | None = None, *,
                     channel: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """{item_id: [{"period" (ISO week of the calls), "start" (its Monday), "n" (reviewed
    answers), "agreed" (the suggestion equal to the counted review's answer), "agreement"}, ...]
    in time order}: the per-item agreement of :func:`agreement_by_item`, week by week (only
    weeks with reviewed answers; calls in [start, end), of a queue, agent and channel); items in
    scorecard order. Summed per item and day in SQL, folded into weeks here."""
    day = func.substr(Call.started_at, 1, 10)
    agreed = func.sum(case((CallItem.human_answer == CallItem.answer, 1), else_=0))
    query = _scope(select(CallItem.item_id, day, func.count(), agreed, func.min(CallItem.position))
                   .join(Call, Call.call_id == CallItem.call_id)
                   .where(CallItem.human_answer.is_not(None)),
                   start, end, team, agent_id, channel=channel).group_by(CallItem.item_id, day)
    sums: dict[str, dict[tuple[str, str], list[int]]] = {}
    first: dict[str, int] = {}
    for item, when, n, ok, position in session.execute(query):
        period = period_of(when, "week")
        if period is None:
            continue
        acc = sums.setdefault(item, {}).setdefault(period, [0, 0])
        acc[0] += int(n or 0)
        acc[1] += int(ok or 0)
        first[item] = min(first.get(item, position), position)
    return {item: [{"period": label, "start": monday, "n": n, "agreed": ok, "agreement": _rate(ok, n)}
                   for (label, monday), (n, ok) in sorted(sums[item].items(), key=lambda kv: kv[0][1])]
            for item in _order_items(first)}


def agreement_drift(session: Session, start: str | None = None, end: str | None = None,
                    team: str | None = None, agent_id: str | None = None, *, channel: str | None = None,
                    baseline_weeks: int = 8) -> dict[str, Any]:
    """The weekly agreement per item of the window [start, end) and the drift alerts
    (:func:`pipeline.learning.drift.drift_alerts`: each item's latest week against up to
    ``baseline_weeks`` weeks before it, those before ``start`` included): ``{"weekly": {item:
    rows}, "alerts": [...], "min_n": the fewest reviewed answers a side of the test needs (a week
    with fewer is too few to test on its own), "test": what was tested}``."""
    from pipeline.learning import drift

    since = None
    if start:
        try:
            since = (date.fromisoformat(start[:10]) - timedelta(weeks=baseline_weeks)).isoformat()
        except ValueError:
            since = start
    weekly = agreement_weekly(session, since, end, team, agent_id, channel=channel)
    alerts = drift.drift_alerts(weekly, baseline_weeks=baseline_weeks)
    shown = {item: [w for w in weeks if not start or w["start"] >= _monday(start)] for item, weeks in weekly.items()}
    return {"weekly": {item: weeks for item, weeks in shown.items() if weeks}, "alerts": alerts,
            "min_n": drift.MIN_N,
            "test": (f"each item's latest week against its previous {baseline_weeks} weeks: one-sided "
                     f"Fisher's exact test, at least {drift.MIN_N} reviewed answers on each side, a drop of "
                     f"{drift.MIN_DROP:.0%} or more, p below {drift.ALPHA} divided by the items tested")}


def _monday(day: str) -> str:
    try:
        d = date.fromisoformat(day[:10])
    except ValueError:
        return day
    return (d - timedelta(days=d.weekday())).isoformat()


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text (a header line, then one line per row; RFC 4180 quoting and CRLF line ends).
    A dict value is spread over ``key.subkey`` columns (``pass_rates.opening.greeting``), a list
    joined with "; ", None left empty. Columns: ``columns`` if given, else every key in order of
    first appearance over the rows. Text starting with = + - @ is prefixed with ' so that a
    spreadsheet shows it rather than running it. No rows and no columns: an empty string."""
    flat: list[dict[str, Any]] = []
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, Mapping):
                out.update({f"{key}.{sub}": v for sub, v in value.items()})
            else:
                out[key] = value
        flat.append(out)
    if columns is None:
        columns = list(dict.fromkeys(key for row in flat for key in row))
    if not columns:
        return ""
    return csv_text(flat, list(columns), line_end="\r\n")
