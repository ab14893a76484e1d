"""Calibration sessions: one call reviewed blind by several reviewers, compared once all submit.

Agreement figures (``answers`` are yes / no / na; a reviewer who left an item unanswered does
not count for that item):

* percent agreement: the share of reviewer pairs giving the same answer; for one item with
  answer counts n_j over n = sum n_j reviewers, sum_j C(n_j, 2) / C(n, 2). Pooled over items or
  sessions it is agreeing pairs over all pairs.
* Fleiss' kappa (:func:`fleiss_kappa`), with the items (one session) or the sessions (one item,
  across sessions) as the rated subjects.
* the majority answer of an item: its most frequent answer. When two or more answers share the
  top count (an even split: 1-1, 2-2, or yes/no/na once each) there is no majority: the item is
  a *tie*, and a tie is neither agreement nor disagreement with the majority; it is left out of
  every agreement-with-the-majority rate (the reviewers' and the suggestions') and counted apart
  as ``ties``. A reviewer "agrees with the majority" when their answer is it (their own answer
  included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import Assignment, Calibration, Call, CallItem, Review, User
from pipeline.review.sampling import resolve_reviewers


def fleiss_kappa(subjects: Iterable[Mapping[str, int]]) -> float | None:
    """Fleiss' kappa of ratings given as one {category: count of raters} per subject.

    With N subjects, n_i raters of subject i and n_ij of them choosing category j:
    P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)) (agreeing rater pairs of subject i),
    P_bar = mean of P_i, p_j = sum_i n_ij / sum_i n_i (share of all ratings in category j),
    P_e = sum_j p_j^2, and kappa = (P_bar - P_e) / (1 - P_e). With the same n for every subject
    this is Fleiss (1971); a varying n_i is allowed (each subject weighs the same in P_bar).
    Subjects with fewer than two ratings are skipped. None when undefined: no subject left, or
    P_e = 1 (every rating in one category). Computed in exact fractions.

    One subject alone gives kappa = -1/(n - 1) whenever the raters are not unanimous (and None
    when they are), so a per-item kappa of a single session carries no more than "disagreed".
    """
    rows = []
    for counts in subjects:
        if any(c < 0 for c in counts.values()):
            raise ValueError(f"fleiss_kappa: negative count in {dict(counts)}")
        if sum(counts.values()) >= 2:
            rows.append(counts)
    if not rows:
        return None
    p_bar = sum((Fraction(sum(c * (c - 1) for c in row.values()), sum(row.values()) * (sum(row.values()) - 1))
                 for row in rows), Fraction(0)) / len(rows)
    totals: Counter[str] = Counter()
    for row in rows:
        totals.update(row)
    ratings = sum(totals.values())
    p_e = sum((Fraction(c, ratings) ** 2 for c in totals.values()), Fraction(0))
    if p_e == 1:
        return None
    return float((p_bar - p_e) / (1 - p_e))


def _pairs(counts: Mapping[str, int]) -> tuple[int, int]:
    """(agreeing pairs, all pairs) of one item's answer counts."""
    n = sum(counts.values())
    return sum(c * (c - 1) // 2 for c in counts.values()), n * (n - 1) // 2


def _majority(counts: Mapping[str, int]) -> str | None:
    """The most frequent answer; None without answers or on a tie for the top (see :func:`_tied`)."""
    if not counts or _tied(counts):
        return None
    return Counter(counts).most_common(1)[0][0]


def _tied(counts: Mapping[str, int]) -> bool:
    """Whether two or more answers share the top count, so that there is no majority."""
    top = [c for _, c in Counter(counts).most_common(2) if c > 0]
    return len(top) == 2 and top[0] == top[1]


def _rate(agree: int, total: int) -> float | None:
    return agree / total if total else None


def create_calibration(session: Session, name: str, call_id: str, reviewers: list[str],
                       created_by: int | None = None) -> Calibration:
    """A calibration session of ``call_id``, assigned (kind ``calibration``) to each reviewer
    named. ConfigError for an empty name, an unknown call, fewer than 2 distinct reviewers, a bad
    user (see :func:`~pipeline.review.sampling.resolve_reviewers`), or a reviewer who is assigned
    the call already or has reviewed it (one review per reviewer and call: it would not be blind)."""
    what = f"calibration {name!r}"
    if not name.strip():
        raise ConfigError("calibration: give the session a name")
    if session.get(Call, call_id) is None:
        raise ConfigError(f"{what}: no such call: {call_id}")
    users = resolve_reviewers(session, reviewers, what)
    if len(users) < 2:
        raise ConfigError(f"{what}: a calibration needs at least 2 reviewers, {len(users)} named")
    if created_by is not None and session.get(User, created_by) is None:
        raise ConfigError(f"{what}: created_by {created_by} is not a user id")
    ids = [u.id for u in users]
    busy = set(session.scalars(select(Assignment.reviewer_id).where(Assignment.call_id == call_id,
                                                                    Assignment.reviewer_id.in_(ids))))
    busy |= set(session.scalars(select(Review.reviewer_id).where(Review.call_id == call_id,
                                                                 Review.reviewer_id.in_(ids))))
    if busy:
        names = ", ".join(u.username for u in users if u.id in busy)
        raise ConfigError(f"{what}: {names} already assigned or reviewed call {call_id}")
    calibration = Calibration(name=name.strip(), call_id=call_id, created_by=created_by)
    session.add(calibration)
    session.flush()
    session.add_all([Assignment(call_id=call_id, reviewer_id=u.id, kind="calibration", created_by=created_by,
                                reason=f"calibration session {calibration.name!r}", calibration_id=calibration.id)
                     for u in users])
    session.flush()
    return calibration


def _session_data(session: Session, calibration: Calibration) -> tuple[list[User], dict[int, Review]]:
    """The session's reviewers (assignment order) and their submitted reviews of its call."""
    users = list(session.scalars(select(User).join(Assignment, Assignment.reviewer_id == User.id)
                                 .where(Assignment.calibration_id == calibration.id).order_by(Assignment.id)))
    reviews = session.scalars(select(Review).where(Review.call_id == calibration.call_id, Review.state == "submitted",
                                                   Review.reviewer_id.in_([u.id for u in users])))
    return users, {r.reviewer_id: r for r in reviews}


def calibration_result(session: Session, calibration_id: int) -> dict[str, Any]:
    """The comparison of a calibration session.

    Until every assigned reviewer has submitted a review of the call: ``{"id", "name",
    "call_id", "state": "waiting", "reviewers", "submitted", "waiting_for"}`` (user names; no
    answers are shown). Then ``state`` is ``"done"`` and there are also

    * ``items``: {item_id: {"question", "answers": {reviewer: answer or None}, "comments":
      {reviewer: their comment on the item, "" for none}, "automatic" (the current suggestion or
      None), "percent_agreement", "kappa" (Fleiss over this one item; see :func:`fleiss_kappa`
      for why it only says whether they disagreed), "majority" (None on a tie), "tie" (the
      answers split evenly at the top: no majority), "agrees_with_majority": {reviewer: bool, or
      None on a tie or without an answer}, "automatic_matches_majority": bool or None}}, in
      scorecard order;
    * ``ties``: the ids of the tied items;
    * ``comments``: {reviewer: their comment on the whole call};
    * ``percent_agreement``: agreeing reviewer pairs over all pairs, every item pooled;
    * ``kappa``: Fleiss' kappa with the call's items as the subjects (the session's figure);
    * ``mean_kappa``: the mean of the defined per-item kappas (None if none is);
    * ``reviewer_agreement``: {reviewer: {"items", "agree", "rate", "ties"}} against the
      majority: ``items`` and ``rate`` count only the items that have a majority, ``ties`` the
      tied items the reviewer answered (left out of the rate); ``automatic_agreement``: the same
      for the suggestions.

    Comments, like answers, are shown only once every reviewer has submitted.

    ConfigError for an unknown calibration id.
    """
    calibration = session.get(Calibration, calibration_id)
    if calibration is None:
        raise ConfigError(f"calibration {calibration_id}: no such calibration session")
    users, reviews = _session_data(session, calibration)
    out: dict[str, Any] = {"id": calibration.id, "name": calibration.name, "call_id": calibration.call_id,
                           "reviewers": [u.username for u in users]}
    if not users or len(reviews) < len(users):
        return {**out, "state": "waiting", "submitted": [u.username for u in users if u.id in reviews],
                "waiting_for": [u.username for u in users if u.id not in reviews]}

    call_items = {i.item_id: i for i in session.scalars(select(CallItem).where(CallItem.call_id == calibration.call_id)
                                                        .order_by(CallItem.position))}
    answers = {u.username: {a.item_id: a.answer for a in reviews[u.id].answers} for u in users}
    comments = {u.username: {a.item_id: a.comment or "" for a in reviews[u.id].answers} for u in users}
    extra = sorted({item for given in answers.values() for item in given} - set(call_items))
    items: dict[str, Any] = {}
    agree_pairs = all_pairs = 0
    kappas: list[float] = []
    subjects: list[Counter[str]] = []
    per_reviewer = {u.username: [0, 0, 0] for u in users}  # agree, items with a majority, ties
    automatic = [0, 0, 0]
    for item_id in [*call_items, *extra]:
        given = {name: answers[name].get(item_id) for name in answers}
        counts = Counter(a for a in given.values() if a is not None)
        agree, pairs = _pairs(counts)
        agree_pairs, all_pairs = agree_pairs + agree, all_pairs + pairs
        kappa = fleiss_kappa([counts])
        if kappa is not None:
            kappas.append(kappa)
        subjects.append(counts)
        majority, tie = _majority(counts), _tied(counts)
        auto = call_items[item_id].answer if item_id in call_items else None
        agrees = {name: None if majority is None or a is None else a == majority for name, a in given.items()}
        for name, ok in agrees.items():
            if ok is not None:
                per_reviewer[name][0] += ok
                per_reviewer[name][1] += 1
            elif tie and given[name] is not None:
                per_reviewer[name][2] += 1
        auto_ok = None if majority is None or auto is None else auto == majority
        if auto_ok is not None:
            automatic[0] += auto_ok
            automatic[1] += 1
        elif tie and auto is not None:
            automatic[2] += 1
        items[item_id] = {
            "question": call_items[item_id].question if item_id in call_items else None,
            "answers": given, "comments": {name: comments[name].get(item_id, "") for name in given},
            "automatic": auto, "percent_agreement": _rate(agree, pairs), "kappa": kappa,
            "majority": majority, "tie": tie, "agrees_with_majority": agrees, "automatic_matches_majority": auto_ok,
        }
    return {
        **out, "state": "done", "items": items, "ties": [i for i, v in items.items() if v["tie"]],
        "comments": {u.username: reviews[u.id].comment or "" for u in users},
        "percent_agreement": _rate(agree_pairs, all_pairs),
        "kappa": fleiss_kappa(subjects),
        "mean_kappa": sum(kappas) / len(kappas) if kappas else None,
        "reviewer_agreement": {name: {"items": n, "agree": k, "rate": _rate(k, n), "ties": t}
                               for name, (k, n, t) in per_reviewer.items()},
        "automatic_agreement": {"items": automatic[1], "agree": automatic[0], "rate": _rate(*automatic[:2]),
                                "ties": automatic[2]},
    }


def calibration_report(session: Session) -> dict[str, Any]:
    """Calibration across every finished session (one whose reviewers have all submitted):

    ``{"sessions": finished sessions, "waiting": unfinished ones,
    "items": {item_id: {"sessions", "percent_agreement" (pairs pooled over the sessions),
    "kappa" (Fleiss with the sessions as the subjects), "automatic_agreement" (share of the
    sessions with a majority where the suggestion matched it), "ties" (sessions where the item
    was a tie, left out of automatic_agreement)}},
    "reviewers": {reviewer: {"sessions", "items", "agree", "rate", "ties"}} (agreement with the
    majority over every item of every session they took part in that has a majority; ``ties``
    counts their answered items that were ties, which are in neither ``items`` nor ``rate``),
    "ties": how many (session, item) pairs were ties, "percent_agreement" and "kappa" over every
    (session, item) together}``.
    Items are in order of first appearance (sessions by id, scorecard order within one).
    """
    finished = waiting = 0
    by_item: dict[str, list[dict[str, Any]]] = {}
    reviewers: dict[str, dict[str, int]] = {}
    for calibration_id in session.scalars(select(Calibration.id).order_by(Calibration.id)):
        result = calibration_result(session, calibration_id)
        if result["state"] != "done":
            waiting += 1
            continue
        finished += 1
        for name in result["reviewers"]:
            reviewers.setdefault(name, {"sessions": 0, "items": 0, "agree": 0, "ties": 0})["sessions"] += 1
        for name, figures in result["reviewer_agreement"].items():
            for key in ("items", "agree", "ties"):
                reviewers[name][key] += figures[key]
        for item_id, item in result["items"].items():
            by_item.setdefault(item_id, []).append(item)

    items: dict[str, Any] = {}
    all_subjects: list[Counter[str]] = []
    agree_total = pairs_total = 0
    for item_id, results in by_item.items():
        subjects = [Counter(a for a in r["answers"].values() if a is not None) for r in results]
        pairs = [_pairs(s) for s in subjects]
        agree, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        matched = [r["automatic_matches_majority"] for r in results if r["automatic_matches_majority"] is not None]
        items[item_id] = {"sessions": len(results), "percent_agreement": _rate(agree, total),
                          "kappa": fleiss_kappa(subjects), "automatic_agreement": _rate(sum(matched), len(matched)),
                          "ties": sum(r["tie"] for r in results)}
        all_subjects += subjects
        agree_total, pairs_total = agree_total + agree, pairs_total + total
    return {
        "sessions": finished, "waiting": waiting, "items": items,
        "reviewers": {name: {**r, "rate": _rate(r["agree"], r["items"])} for name, r in reviewers.items()},
        "ties": sum(v["ties"] for v in items.values()),
        "percent_agreement": _rate(agree_total, pairs_total), "kappa": fleiss_kappa(all_subjects),
    }


def to_do(session: Session, reviewer_id: int) -> list[dict[str, Any]]:
    """The calls assigned to a reviewer that they have not submitted yet, oldest assignment first:
    ``{"call_id", "kind", "reason", "calibration" (the session's name, or None), "assigned_at",
    "my_review" (``"draft"`` or None), "agent_id", "started_at"}``.

    The list depends on the reviewer's own review only, never on the queue's filters or on other
    reviewers: a calibration call stays in each scorer's list until that scorer submits, however
    many of the others have.
    """
    mine = {r.call_id: r.state for r in session.scalars(select(Review).where(Review.reviewer_id == reviewer_id))}
    rows = session.execute(select(Assignment, Call, Calibration.name)
                           .join(Call, Call.call_id == Assignment.call_id)
                           .outerjoin(Calibration, Calibration.id == Assignment.calibration_id)
                           .where(Assignment.reviewer_id == reviewer_id)
                           .order_by(Assignment.created_at, Assignment.id))
    out, seen = [], set()
    for assignment, call, calibration in rows:
        if mine.get(call.call_id) == "submitted" or call.call_id in seen:
            continue
        seen.add(call.call_id)
        out.append({"call_id": call.call_id, "kind": assignment.kind, "reason": assignment.reason,
                    "calibration": calibration, "assigned_at": assignment.created_at.isoformat(),
                    "my_review": mine.get(call.call_id), "agent_id": call.agent_id, "started_at": call.started_at})
    return out
