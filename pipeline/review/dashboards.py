"""Figures for the dashboards: per-agent KPIs, trends over time, automatic-vs-human agreement.

A call is *reviewed* when it has a submitted review; when it has several (a calibration call, a
lead's second opinion, an upheld dispute), the one that counts is chosen by one rule,
:func:`pipeline.review.history.counted_reviews`: the latest submitted review marked final by a
lead, else the latest submitted review. Its human answers are
the review's answers, with the automatic suggestion standing for any item the review did not
answer (an item the pipeline added after the review). The *reviewed score* scores those answers
the way the pipeline scores its own (:func:`pipeline.scorecard.score_answers`): a ``yes`` earns
the item's full points, a ``no`` none, an ``na`` leaves the potential; sections are weighted as
in the template; an auto-fail item answered ``no`` zeroes the call. Full points, sections and
weights come from the default template (``load_scorecard(None)``); an item it does not know is
worth 1.0 point, in the section its call item names (weight 1.0), auto-fail as its call item says.

Means and rates are rounded to 4 decimals (as in agents.csv); one that has nothing to average
is None.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from pipeline.errors import ConfigError
from pipeline.evaluation.measures import item_agreement
from pipeline.review.db import Call, CallItem
from pipeline.review.history import counted_reviews
from pipeline.scorecard import ItemSpec, Scorecard, SectionSpec, load_scorecard, score_answers

BUCKETS = ("day", "week", "month")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A CSV text cell starting with one of these is prefixed with ' (spreadsheets would run it)."""


@lru_cache(maxsize=1)
def _default_card() -> Scorecard:
    return load_scorecard(None)


def _mean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(sum(got) / len(got), 4) if got else None


def _card_for(item_ids: Iterable[str], call_items: Sequence[CallItem] = ()) -> Scorecard:
    """The default template plus a 1-point item for every id it lacks (see the module docstring)."""
    card = _default_card()
    known = {i.id for i in card.items}
    by_id = {i.item_id: i for i in call_items}
    missing = [i for i in dict.fromkeys([*item_ids, *by_id]) if i not in known]
    if not missing:
        return card
    sections = [SectionSpec(s.id, s.name, s.weight, list(s.items)) for s in card.sections]
    index = {s.id: s for s in sections}
    for item_id in missing:
        row = by_id.get(item_id)
        section_id = (row.section if row is not None and row.section else None) or item_id.split(".")[0]
        if section_id not in index:
            index[section_id] = SectionSpec(section_id, section_id, 1.0, [])
            sections.append(index[section_id])
        index[section_id].items.append(ItemSpec(item_id, row.question if row is not None else item_id, section_id,
                                                1.0, bool(row.auto_fail) if row is not None else False))
    return Scorecard(card.name, card.version, sections, card.path, card.sha256)


def review_score(answers: Mapping[str, str], call_items: Sequence[CallItem] = ()) -> float | None:
    """The normalized score (0-1) of the answers {item_id: yes/no/na}, scored as the module
    docstring says; None when no item is answered yes or no."""
    return score_answers(_card_for(answers, call_items), dict(answers))["normalized"]


def _calls(session: Session, start: str | None, end: str | None, team: str | None = None,
           agent_id: str | None = None) -> list[Call]:
    query: Select = select(Call).options(selectinload(Call.items))
    if start:
        query = query.where(Call.started_at >= start)
    if end:
        query = query.where(Call.started_at < end)
    if team is not None:
        query = query.where(Call.queue == team)
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    return list(session.scalars(query.order_by(Call.call_id)))


def human_answers(session: Session, call_ids: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """{call_id: {item_id: answer}} of the review that counts for each reviewed call (see
    :func:`pipeline.review.history.counted_reviews`; all reviewed calls, or those of ``call_ids``)."""
    return {call_id: {a.item_id: a.answer for a in review.answers}
            for call_id, review in counted_reviews(session, call_ids).items()}


def _effective(call: Call, human: Mapping[str, str] | None) -> dict[str, str]:
    """The call's answers: human ones where given, the suggestions elsewhere."""
    return {**{i.item_id: i.answer for i in call.items}, **(human or {})}


def _item_order(calls: Sequence[Call], extra: Iterable[str] = ()) -> list[str]:
    """The item ids of the calls (and ``extra``): the default template's order, then the others
    by their first position in a call, then by id."""
    template = {item.id: n for n, item in enumerate(_default_card().items)}
    first: dict[str, int] = {}
    for call in calls:
        for item in call.items:
            first[item.item_id] = min(first.get(item.item_id, item.position), item.position)
    for item_id in extra:
        first.setdefault(item_id, 1 << 30)
    return sorted(first, key=lambda i: (i not in template, template.get(i, 0), first[i], i))


def agent_kpis(session: Session, start: str | None = None, end: str | None = None,
               team: str | None = None) -> list[dict[str, Any]]:
    """One row per agent_id (sorted; calls without one last, agent_id None) over the calls
    started in [start, end) (ISO text, either optional) of queue ``team`` (any queue if None):
    ``{"agent_id", "calls", "mean_score" (automatic), "reviewed_calls", "mean_reviewed_score",
    "auto_fails" (automatic), "mean_customer_sentiment_end", "pass_rates": {item_id: yes / (yes
    + no), human answers for reviewed calls and suggestions otherwise, None without a yes or no}}``.
    Every row's pass_rates has the same items, in scorecard order."""
    calls = _calls(session, start, end, team)
    human = human_answers(session, [c.call_id for c in calls])
    items = _item_order(calls, (i for answers in human.values() for i in answers))
    groups: dict[str | None, list[Call]] = {}
    for call in calls:
        groups.setdefault(call.agent_id, []).append(call)
    rows = []
    for agent in sorted(groups, key=lambda a: (a is None, a or "")):
        group = groups[agent]
        reviewed = [c for c in group if c.call_id in human]
        tallies = {item: [0, 0] for item in items}
        for call in group:
            for item, answer in _effective(call, human.get(call.call_id)).items():
                if answer in ("yes", "no"):
                    tallies[item][0] += answer == "yes"
                    tallies[item][1] += 1
        rows.append({
            "agent_id": agent,
            "calls": len(group),
            "mean_score": _mean(c.score for c in group),
            "reviewed_calls": len(reviewed),
            "mean_reviewed_score": _mean(review_score(_effective(c, human[c.call_id]), c.items) for c in reviewed),
            "auto_fails": sum(1 for c in group if c.auto_fail),
            "mean_customer_sentiment_end": _mean(c.customer_sentiment_end for c in group),
            "pass_rates": {item: round(y / n, 4) if n else None for item, (y, n) in tallies.items()},
        })
    return rows


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


def trend(session: Session, agent_id: str | None = None, bucket: str = "week", start: str | None = None,
          end: str | None = None, team: str | None = None) -> list[dict[str, Any]]:
    """Per period (see :func:`period_of`; only periods with calls, in time order):
    ``{"period", "start" (first day), "calls", "mean_score", "reviewed_calls",
    "mean_reviewed_score"}`` over the calls of ``agent_id`` (all agents if None), optionally of
    a period [start, end) and a queue. Calls without a readable start date are left out.
    ConfigError for an unknown bucket."""
    if bucket not in BUCKETS:
        raise ConfigError(f"trend: bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    calls = _calls(session, start, end, team, agent_id)
    human = human_answers(session, [c.call_id for c in calls])
    periods: dict[tuple[str, str], list[Call]] = {}
    for call in calls:
        period = period_of(call.started_at, bucket)
        if period is not None:
            periods.setdefault(period, []).append(call)
    rows = []
    for (label, first), group in sorted(periods.items(), key=lambda kv: kv[0][1]):
        reviewed = [c for c in group if c.call_id in human]
        rows.append({"period": label, "start": first, "calls": len(group), "mean_score": _mean(c.score for c in group),
                     "reviewed_calls": len(reviewed),
                     "mean_reviewed_score": _mean(review_score(_effective(c, human[c.call_id]), c.items)
                                                  for c in reviewed)})
    return rows


def agreement_by_item(session: Session, start: str | None = None, end: str | None = None) -> dict[str, dict[str, Any]]:
    """{item_id: :func:`pipeline.evaluation.measures.item_agreement` result} of the current
    automatic suggestions against the human answers (gold), one pair per reviewed call and item
    that has both, calls started in [start, end) (optional); items in scorecard order, only those
    with at least one pair."""
    calls = _calls(session, start, end)
    human = human_answers(session, [c.call_id for c in calls])
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    reviewed = [c for c in calls if c.call_id in human]
    for call in reviewed:
        answers = human[call.call_id]
        for item in call.items:
            if item.item_id in answers:
                gold, auto = pairs.setdefault(item.item_id, ([], []))
                gold.append(answers[item.item_id])
                auto.append(item.answer)
    return {item: item_agreement(*pairs[item]) for item in _item_order(reviewed) if item in pairs}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = "; ".join("" if v is None else str(v) for v in value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


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
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_cell(c) for c in columns])
    for row in flat:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()
