"""Choosing calls for human review: a random sample per agent and period, plus every call the
pipeline flagged (auto-fail, low-confidence answers), shared out among the named reviewers.

The random sample is drawn from all of an agent's eligible calls, flagged or not, so that it
stays a fair sample of the agent's work; a call picked for several reasons is assigned once, as
its strongest reason (auto_fail > low_confidence > sample), and its ``reason`` text lists every
reason. A call that already has an assignment (to anyone, of any kind) is never picked again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import Assignment, Call, CallItem, Review, User

REVIEWER_ROLES = ("reviewer", "lead")
"""Roles whose users can be given calls to review."""
KIND_RANK = {"auto_fail": 0, "low_confidence": 1, "sample": 2}
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
                apply: bool = True) -> list[Assignment]:
    """Pick and assign calls started in [start, end) (ISO strings compared as text; either may be
    None; with a bound, calls without a start time are left out) that nobody is assigned yet:

    * ``per_agent`` calls at random per agent_id (calls without one form one group), drawn with
      ``random.Random(seed)`` from the agent's calls sorted by call_id, agents in sorted order
      (so one seed and one database give one plan); fewer when the agent has fewer;
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
    for agent in sorted(by_agent, key=_agent_key):
        group = by_agent[agent]
        sampled.update(c.call_id for c in rng.sample(group, min(per_agent, len(group))))

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
