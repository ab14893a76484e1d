"""Calibration sessions: one call reviewed blind by several reviewers, compared once all submit.

Agreement figures (``answers`` are yes / no / na; a reviewer who left an item unanswered does
not count for that item):

* percent agreement: the share of reviewer pairs giving the same answer; for one item with
  answer counts n_j over n = sum n_j reviewers, sum_j C(n_j, 2) / C(n, 2). Pooled over items or
  sessions it is agreeing pairs over all pairs.
* Fleiss' kappa (:func:`fleiss_kappa`), with the items (one session) or the sessions (one item,
  across sessions) as the rated subjects.
* the majority answer of an item: its most frequent answer, None on a tie for the top; a
  reviewer "agrees with the majority" when their answer is it (their own answer included).
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
    top = Counter(counts).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


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

    * ``items``: {item_id: {"question", "answers": {reviewer: answer or None}, "automatic"
      (the current suggestion or None), "percent_agreement", "kappa" (Fleiss over this one item;
      see :func:`fleiss_kappa` for why it only says whether they disagreed), "majority",
      "agrees_with_majority": {reviewer: bool, or None without a majority or answer},
      "automatic_matches_majority": bool or None}}, in scorecard order;
    * ``percent_agreement``: agreeing reviewer pairs over all pairs, every item pooled;
    * ``kappa``: Fleiss' kappa with the call's items as the subjects (the session's figure);
    * ``mean_kappa``: the mean of the defined per-item kappas (None if none is);
    * ``reviewer_agreement``: {reviewer: {"items", "agree", "rate"}} against the majority,
      over the items that have one; ``automatic_agreement``: the same for the suggestions.

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
    extra = sorted({item for given in answers.values() for item in given} - set(call_items))
    items: dict[str, Any] = {}
    agree_pairs = all_pairs = 0
    kappas: list[float] = []
    subjects: list[Counter[str]] = []
    per_reviewer = {u.username: [0, 0] for u in users}
    automatic = [0, 0]
    for item_id in [*call_items, *extra]:
        given = {name: answers[name].get(item_id) for name in answers}
        counts = Counter(a for a in given.values() if a is not None)
        agree, pairs = _pairs(counts)
        agree_pairs, all_pairs = agree_pairs + agree, all_pairs + pairs
        kappa = fleiss_kappa([counts])
        if kappa is not None:
            kappas.append(kappa)
        subjects.append(counts)
        majority = _majority(counts)
        auto = call_items[item_id].answer if item_id in call_items else None
        agrees = {name: None if majority is None or a is None else a == majority for name, a in given.items()}
        for name, ok in agrees.items():
            if ok is not None:
                per_reviewer[name][0] += ok
                per_reviewer[name][1] += 1
        auto_ok = None if majority is None or auto is None else auto == majority
        if auto_ok is not None:
            automatic[0] += auto_ok
            automatic[1] += 1
        items[item_id] = {
            "question": call_items[item_id].question if item_id in call_items else None,
            "answers": given, "automatic": auto, "percent_agreement": _rate(agree, pairs), "kappa": kappa,
            "majority": majority, "agrees_with_majority": agrees, "automatic_matches_majority": auto_ok,
        }
    return {
        **out, "state": "done", "items": items,
        "percent_agreement": _rate(agree_pairs, all_pairs),
        "kappa": fleiss_kappa(subjects),
        "mean_kappa": sum(kappas) / len(kappas) if kappas else None,
        "reviewer_agreement": {name: {"items": n, "agree": k, "rate": _rate(k, n)}
                               for name, (k, n) in per_reviewer.items()},
        "automatic_agreement": {"items": automatic[1], "agree": automatic[0], "rate": _rate(*automatic)},
    }


def calibration_report(session: Session) -> dict[str, Any]:
    """Calibration across every finished session (one whose reviewers have all submitted):

    ``{"sessions": finished sessions, "waiting": unfinished ones,
    "items": {item_id: {"sessions", "percent_agreement" (pairs pooled over the sessions),
    "kappa" (Fleiss with the sessions as the subjects), "automatic_agreement" (share of the
    sessions with a majority where the suggestion matched it)}},
    "reviewers": {reviewer: {"sessions", "items", "agree", "rate"}} (agreement with the majority
    over every item of every session they took part in that has a majority),
    "percent_agreement" and "kappa" over every (session, item) together}``.
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
            reviewers.setdefault(name, {"sessions": 0, "items": 0, "agree": 0})["sessions"] += 1
        for name, figures in result["reviewer_agreement"].items():
            reviewers[name]["items"] += figures["items"]
            reviewers[name]["agree"] += figures["agree"]
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
                          "kappa": fleiss_kappa(subjects), "automatic_agreement": _rate(sum(matched), len(matched))}
        all_subjects += subjects
        agree_total, pairs_total = agree_total + agree, pairs_total + total
    return {
        "sessions": finished, "waiting": waiting, "items": items,
        "reviewers": {name: {**r, "rate": _rate(r["agree"], r["items"])} for name, r in reviewers.items()},
        "percent_agreement": _rate(agree_total, pairs_total), "kappa": fleiss_kappa(all_subjects),
    }
