"""Choosing calls for human review: a random sample per agent and period, plus every call the
pipeline flagged (auto-fail, low-confidence answers), shared out among the named reviewers.

The random sample is drawn from all of an agent's eligible calls, flagged or not, so that it
stays a fair sample of the agent's work; a call picked for several reasons is assigned once, as
its strongest reason (auto_fail > low_confidence > sample), and its ``reason`` text lists every
reason. A call that already has an assignment (to anyone, of any kind) is never picked again.

Sampling that learns (``review.uncertain_share``): that share of the period's sample (per_agent
calls of every agent) goes instead to the calls where the machine is least sure (at most
per_agent of one agent; an agent's random draw shrinks by its uncertain picks). A call's uncertainty is its
highest chance of a wrong item, 1 - confidence x recent agreement, over its items: the item's
confidence as suggested, and the share of the item's reviewed answers of recent calls
(``review.uncertain_recent_days`` before the period's end) that the suggestion got right (1
without reviews). The most uncertain calls come first (ties by call_id): no randomness, so the
same database gives the same picks; the rest of the agent's sample is drawn at random from the
other calls as before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, case, exists, func, select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import Assignment, Call, CallItem, Review, User
from pipeline.review.options import ReviewOptions

UNCERTAIN_SHARE = ReviewOptions().uncertain_share
"""``review.uncertain_share``'s default: what ``callqa sample`` uses unless told otherwise
(:func:`plan_sample` itself defaults to 0, a purely random sample)."""
RECENT_DAYS = ReviewOptions().uncertain_recent_days

REVIEWER_ROLES = ("reviewer", "lead")
"""Roles whose users can be given calls to review."""
KIND_RANK = {"auto_fail": 0, "low_confidence": 1, "uncertain": 2, "sample": 3}
"""Strength of a reason to review a call (lower is stronger)."""


def resolve_reviewers(session: Session, usernames: Sequence[str], what: str = "sample") -> list[User]:
    """The users named (duplicates dropped, order kept); ConfigError for an empty list, an unknown
    or inactive user, or one whose role is not reviewer or lead. ``what`` prefixes the messages."""
    names = list(dict.fromkeys(usernames))
    if not names:
        raise ConfigError(f"{what}: name at least one reviewer")
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(names)))}
    unknown = [n for n in names if n not in users]
    if unknown:
        raise ConfigError(f"{what}: no such user: {', '.join(unknown)}")
    for name in names:
        user = users[name]
        if not user.active:
            raise ConfigError(f"{what}: user {name} is deactivated")
        if user.role not in REVIEWER_ROLES:
            raise ConfigError(f"{what}: user {name} is {user.role!r}; only {' and '.join(REVIEWER_ROLES)} users "
                              "review calls")
    return [users[n] for n in names]


def open_assignments(session: Session, reviewer_ids: Sequence[int]) -> dict[int, int]:
    """Open assignments per reviewer id (every id given, 0 included): assignments of any kind for
    which that reviewer has no submitted review of the call."""
    submitted = exists().where(Review.call_id == Assignment.call_id, Review.reviewer_id == Assignment.reviewer_id,
                               Review.state == "submitted")
    rows = session.execute(select(Assignment.reviewer_id, func.count())
                           .where(Assignment.reviewer_id.in_(list(reviewer_ids)), ~submitted)
                           .group_by(Assignment.reviewer_id))
    counts = {rid: 0 for rid in reviewer_ids}
    counts.update({rid: n for rid, n in rows})
    return counts


def _agent_key(agent: str | None) -> tuple[bool, str]:
    return (agent is None, agent or "")


def _period(start: str | None, end: str | None) -> str:
    if start and end:
        return f"{start} to {end}"
    if start:
        return f"from {start}"
    return f"before {end}" if end else "all dates"


def plan_sample(session: Session, per_agent: int, start: str | None, end: str | None, reviewers: list[str],
                seed: int, low_confidence_min: int = 1, created_by: int | None = None,
                apply: bool = True, uncertain_share: float = 0.0,
                recent_days: int = RECENT_DAYS) -> list[Assignment]:
    """Pick and assign calls started in [start, end) (ISO strings compared as text; either may be
    None; with a bound, calls without a start time are left out) that nobody is assigned yet:

    * ``per_agent`` calls at random per agent_id (calls without one form one group), drawn with
      ``random.Random(seed)`` from the agent's calls sorted by call_id, agents in sorted order
      (so one seed and one database give one plan); fewer when the agent has fewer;
    * of that sample (``per_agent`` per agent), the share ``uncertain_share`` (rounded) is
      instead the period's most uncertain calls (kind ``uncertain``; see the module docstring and
      :func:`uncertainty`; ties by call_id; at most ``per_agent`` of one agent), each agent's
      random draw shrinking by its uncertain picks;
    * every automatic auto-fail (kind ``auto_fail``) and every call with at least
      ``low_confidence_min`` low-confidence answers (kind ``low_confidence``).

    Calls are dealt out strongest reason first (then by agent, start time, call_id), each to the
    reviewer with the fewest open assignments (existing ones counted, see
    :func:`open_assignments`; ties in the order of ``reviewers``). Returns the new Assignments,
    added and flushed; with ``apply=False`` the same plan, not added to the session.
    ConfigError for a bad reviewer list (:func:`resolve_reviewers`), a negative ``per_agent``,
    a ``low_confidence_min`` below 1, an empty period or an unknown ``created_by``.
    """
    if per_agent < 0:
        raise ConfigError(f"sample: per_agent {per_agent} must be 0 or more")
    if not 0.0 <= uncertain_share <= 1.0:
        raise ConfigError(f"sample: uncertain_share {uncertain_share} must be between 0 and 1")
    if low_confidence_min < 1:
        raise ConfigError(f"sample: low_confidence_min {low_confidence_min} must be 1 or more")
    if start and end and start >= end:
        raise ConfigError(f"sample: the period {start} to {end} is empty (the end is excluded)")
    users = resolve_reviewers(session, reviewers)
    if created_by is not None and session.get(User, created_by) is None:
        raise ConfigError(f"sample: created_by {created_by} is not a user id")

    def eligible(query: Select) -> Select:
        query = query.where(~exists().where(Assignment.call_id == Call.call_id))
        if start:
            query = query.where(Call.started_at >= start)
        if end:
            query = query.where(Call.started_at < end)
        return query

    # the columns the choice needs, not whole calls: a year of calls stays a light read
    calls = list(session.execute(eligible(select(Call.call_id, Call.agent_id, Call.started_at, Call.auto_fail,
                                                 Call.low_confidence_items)).order_by(Call.call_id)))
    failed_items: dict[str, list[str]] = {}
    for call_id, item_id in session.execute(eligible(
            select(CallItem.call_id, CallItem.item_id).join(Call, Call.call_id == CallItem.call_id)
            .where(Call.auto_fail.is_(True), CallItem.auto_fail.is_(True), CallItem.answer == "no"))
            .order_by(CallItem.call_id, CallItem.position)):
        failed_items.setdefault(call_id, []).append(item_id)

    by_agent: dict[str | None, list[Call]] = {}
    for call in calls:
        by_agent.setdefault(call.agent_id, []).append(call)
    rng = random.Random(seed)
    sampled: set[str] = set()
    # the period's sample is per_agent calls of every agent (fewer when an agent has fewer);
    # uncertain_share of it goes to the calls the machine is least sure of, first
    total = sum(min(per_agent, len(group)) for group in by_agent.values())
    n_uncertain = int(total * uncertain_share + 0.5)
    uncertain: dict[str, str] = {}
    if n_uncertain:
        unsure = uncertainty(session, [c.call_id for c in calls], end, recent_days)
        taken: dict[str | None, int] = {}
        for c in sorted((c for c in calls if c.call_id in unsure), key=lambda c: (-unsure[c.call_id][0], c.call_id)):
            if len(uncertain) >= n_uncertain:
                break
            if taken.get(c.agent_id, 0) < per_agent:  # no agent gets more than its share of the sample
                taken[c.agent_id] = taken.get(c.agent_id, 0) + 1
                uncertain[c.call_id] = unsure[c.call_id][1]
    for agent in sorted(by_agent, key=_agent_key):
        group = [c for c in by_agent[agent] if c.call_id not in uncertain]
        k = min(per_agent, len(by_agent[agent])) - (len(by_agent[agent]) - len(group))
        sampled.update(c.call_id for c in rng.sample(group, min(k, len(group))))

    period = _period(start, end)
    picks: list[tuple[tuple[Any, ...], Any, str, str]] = []
    for call in calls:
        reasons: list[tuple[str, str]] = []
        if call.auto_fail:
            failed = failed_items.get(call.call_id, [])
            reasons.append(("auto_fail", "automatic auto-fail" + (f" ({', '.join(failed)} answered no)" if failed
                                                                   else "")))
        if call.low_confidence_items >= low_confidence_min:
            reasons.append(("low_confidence", f"{call.low_confidence_items} low-confidence automatic answer(s) "
                                              f"(threshold {low_confidence_min})"))
        if call.call_id in uncertain:
            reasons.append(("uncertain", f"machine least sure ({uncertain_share:.0%} of the sample, {period}): "
                                         f"{uncertain[call.call_id]}"))
        if call.call_id in sampled:
            reasons.append(("sample", f"random sample of {per_agent} per agent for agent {call.agent_id or '?'}, "
                                      f"{period}, seed {seed}"))
        if not reasons:
            continue
        kind = min((k for k, _ in reasons), key=KIND_RANK.__getitem__)
        order = (KIND_RANK[kind], _agent_key(call.agent_id), call.started_at or "", call.call_id)
        picks.append((order, call, kind, "; ".join(text for _, text in reasons)))
    picks.sort(key=lambda p: p[0])

    load = open_assignments(session, [u.id for u in users])
    plan: list[Assignment] = []
    for _, call, kind, reason in picks:
        reviewer = min(enumerate(users), key=lambda iu: (load[iu[1].id], iu[0]))[1]
        load[reviewer.id] += 1
        plan.append(Assignment(call_id=call.call_id, reviewer_id=reviewer.id, kind=kind, reason=reason,
                               created_by=created_by))
    if apply and plan:
        session.add_all(plan)
        session.flush()
    return plan


def recent_agreement(session: Session, end: str | None, days: int) -> dict[str, tuple[int, int]]:
    """{item_id: (reviewed answers, answers the suggestion got right)} over the calls started in
    the ``days`` days before ``end`` (ISO text; all reviewed calls when None), the counted review's
    answers (kept on the items by pipeline/review/history.py)."""
    from datetime import date, timedelta

    query = (select(CallItem.item_id, func.count(),
                    func.sum(case((CallItem.human_answer == CallItem.answer, 1), else_=0)))
             .join(Call, Call.call_id == CallItem.call_id).where(CallItem.human_answer.is_not(None)))
    if end:
        try:
            since = (date.fromisoformat(end[:10]) - timedelta(days=days)).isoformat()
        except ValueError:
            since = None
        query = query.where(Call.started_at < end)
        if since:
            query = query.where(Call.started_at >= since)
    return {item: (int(n), int(ok or 0)) for item, n, ok in session.execute(query.group_by(CallItem.item_id))}


def uncertainty(session: Session, call_ids: Sequence[str], end: str | None = None,
                recent_days: int = RECENT_DAYS) -> dict[str, tuple[float, str]]:
    """{call_id: (uncertainty 0-1, why)} of the calls with items: the highest 1 - confidence x
    agreement over the call's items, agreement being the item's recent agreement with reviewers
    (:func:`recent_agreement`; 1 without reviewed answers). Read in chunks of calls."""
    agree = recent_agreement(session, end, recent_days)
    out: dict[str, tuple[float, str]] = {}
    ids = list(call_ids)
    for i in range(0, len(ids), 500):
        rows = session.execute(select(CallItem.call_id, CallItem.item_id, CallItem.confidence)
                               .where(CallItem.call_id.in_(ids[i:i + 500]))
                               .order_by(CallItem.call_id, CallItem.position))
        for call_id, item_id, confidence in rows:
            n, ok = agree.get(item_id, (0, 0))
            rate = ok / n if n else 1.0
            risk = 1.0 - float(confidence if confidence is not None else 0.5) * rate
            if call_id not in out or risk > out[call_id][0]:
                why = f"{item_id} confidence {confidence:.2f}" + (f", recent agreement {rate:.0%} of {n}" if n else "")
                out[call_id] = (round(risk, 6), why)
    return out


def assignment_rows(session: Session, assignments: Sequence[Assignment]) -> list[dict[str, Any]]:
    """The assignments as rows to print or export (a dry-run plan too): call_id, reviewer (user
    name), agent_id, queue, started_at, kind, reason."""
    names = dict(session.execute(select(User.id, User.username)).all())
    calls = {c.call_id: c for c in session.scalars(select(Call).where(
        Call.call_id.in_({a.call_id for a in assignments})))}
    rows = []
    for a in assignments:
        call = calls.get(a.call_id)
        rows.append({"call_id": a.call_id, "reviewer": names.get(a.reviewer_id), "agent_id": call and call.agent_id,
                     "queue": call and call.queue, "started_at": call and call.started_at, "kind": a.kind,
                     "reason": a.reason})
    return rows
