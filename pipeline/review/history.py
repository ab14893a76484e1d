"""What was submitted, what counts, and what was disputed: the trail behind every reviewed call.

* Every submit keeps a copy of the review as submitted (``review_submissions``); a reopen and a
  resubmission add a row, never replace one.
* **The counting rule** (:func:`counted_reviews`, the one place the dashboards ask): among a
  call's reviews that are submitted now, the latest submitted one marked *final* (only a lead or
  an admin can mark a review final, or an upheld dispute does) counts; without a final one, the
  latest submitted review counts. A reopened review does not count until it is submitted again.
* A dispute names one answer of one submitted version, with a reason; a lead or admin upholds
  it (the answer changes: the lead's own review of the call becomes a copy of the disputed
  version with the new answer, submitted and final, so it counts and the disputed version
  stays as it was) or rejects it, with a comment.
* Speaker swaps: who set a call's manual role decision and when; an undo restores the one
  before. Rows are only ever added.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from pipeline.errors import ConfigError
from pipeline.review import tallies
from pipeline.review.scoring import review_score
from pipeline.review.db import Call, Dispute, Review, ReviewAnswer, ReviewSubmission, SpeakerSwap, User, utcnow
from pipeline.analysis.card import ANSWERS

MAX_REASON = 5000
DISPUTE_STATES = ("open", "upheld", "rejected")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def record_submission(session: Session, review: Review) -> ReviewSubmission:
    """Keep ``review`` as it is being submitted (call inside the submitting transaction)."""
    row = ReviewSubmission(
        review_id=review.id, call_id=review.call_id, reviewer_id=review.reviewer_id, version=review.version,
        submitted_at=review.submitted_at or utcnow(), final=review.final, comment=review.comment,
        answers={a.item_id: {"answer": a.answer, "comment": a.comment, "auto_answer": a.auto_answer,
                             "how": a.how or "chosen"} for a in review.answers})
    session.add(row)
    return row


def counted_reviews(session: Session, call_ids: Iterable[str] | None = None) -> dict[str, Review]:
    """{call_id: the review that counts for the call's KPIs} (see the module docstring), for
    every call with a submitted review, or those of ``call_ids``."""
    query = (select(Review).options(selectinload(Review.answers)).where(Review.state == "submitted")
             .order_by(Review.submitted_at, Review.id))
    if call_ids is not None:
        query = query.where(Review.call_id.in_(list(call_ids)))
    latest: dict[str, Review] = {}
    final: dict[str, Review] = {}
    for review in session.scalars(query):  # in submission order: a later one replaces the earlier
        latest[review.call_id] = review
        if review.final:
            final[review.call_id] = review
    return {**latest, **final}


def claim_version(session: Session, review_id: int, expected: int) -> bool:
    """Move review ``review_id`` from version ``expected`` to the next one, in the database, in
    one conditional UPDATE. True when this transaction made the move (it then holds the row
    until it ends); False when the review is at another version, e.g. because a concurrent
    save claimed ``expected`` first."""
    moved = session.execute(update(Review).where(Review.id == review_id, Review.version == expected)
                            .values(version=Review.version + 1).execution_options(synchronize_session=False))
    return moved.rowcount == 1


REFRESH_CHUNK = 500
"""Calls refreshed per query by :func:`refresh_counted`."""


def refresh_counted(session: Session, call_ids: Iterable[str] | None = None) -> None:
    """Keep on each call what counts for its KPIs, so the dashboards aggregate in SQL: the
    counted review's id (``calls.counted_review_id``), its score (``calls.reviewed_score``,
    :func:`pipeline.review.scoring.review_score` of its answers with the suggestions standing
    for items it did not answer) and its answer to each item (``call_items.human_answer``).
    For ``call_ids``, or every call that is reviewed or was. Call it in the transaction that
    submits, reopens, upholds a dispute or reloads a call's suggestions. The item tallies of
    those calls' days follow (:mod:`pipeline.review.tallies`)."""
    if call_ids is None:
        ids = sorted(set(session.scalars(select(Review.call_id).where(Review.state == "submitted")))
                     | set(session.scalars(select(Call.call_id).where(Call.counted_review_id.is_not(None)))))
    else:
        ids = list(dict.fromkeys(call_ids))
    for start in range(0, len(ids), REFRESH_CHUNK):
        chunk = ids[start:start + REFRESH_CHUNK]
        counted = counted_reviews(session, chunk)
        for call in session.scalars(select(Call).options(selectinload(Call.items)).where(Call.call_id.in_(chunk))):
            review = counted.get(call.call_id)
            human = {a.item_id: a.answer for a in review.answers} if review is not None else {}
            call.counted_review_id = review.id if review is not None else None
            call.reviewed_score = (review_score({**{i.item_id: i.answer for i in call.items}, **human}, call.items)
                                   if review is not None else None)
            for item in call.items:
                item.human_answer = human.get(item.item_id)
    session.flush()
    if call_ids is None:
        tallies.rebuild(session)
    else:
        tallies.refresh(session, ids)


def submissions(session: Session, call_id: str, reviewer_id: int | None = None) -> list[dict[str, Any]]:
    """Every kept submission of the call (of one reviewer if given), oldest first, with who and
    when, each marked ``counted`` when it is the current version of the review that counts."""
    counted = counted_reviews(session, [call_id]).get(call_id)
    query = (select(ReviewSubmission, User.username).join(User, User.id == ReviewSubmission.reviewer_id)
             .where(ReviewSubmission.call_id == call_id).order_by(ReviewSubmission.submitted_at, ReviewSubmission.id))
    if reviewer_id is not None:
        query = query.where(ReviewSubmission.reviewer_id == reviewer_id)
    return [{"id": row.id, "review_id": row.review_id, "reviewer": name, "version": row.version,
             "submitted_at": _iso(row.submitted_at), "final": row.final, "comment": row.comment,
             "answers": row.answers,
             "counted": counted is not None and counted.id == row.review_id and counted.version == row.version}
            for row, name in session.execute(query)]


def disputes(session: Session, call_id: str, submission_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The call's disputes (of the given submissions only, if given), oldest first."""
    query = select(Dispute).where(Dispute.call_id == call_id).order_by(Dispute.raised_at, Dispute.id)
    if submission_ids is not None:
        query = query.where(Dispute.submission_id.in_(list(submission_ids)))
    names = dict(session.execute(select(User.id, User.username)).all())
    return [{"id": d.id, "submission_id": d.submission_id, "item_id": d.item_id, "answer": d.answer,
             "proposed": d.proposed, "reason": d.reason, "raised_by": names.get(d.raised_by),
             "raised_at": _iso(d.raised_at), "state": d.state, "resolved_by": names.get(d.resolved_by),
             "resolved_at": _iso(d.resolved_at), "new_answer": d.new_answer, "resolution": d.resolution,
             "result_submission_id": d.result_submission_id}
            for d in session.scalars(query)]


def raise_dispute(session: Session, user: User, submission: ReviewSubmission, item_id: str, reason: str,
                  proposed: str | None = None) -> Dispute:
    """An open dispute of ``submission``'s answer to ``item_id``. ConfigError: the item was not
    answered in it, no reason, a bad proposed answer, or an open dispute of it already."""
    if item_id not in submission.answers:
        raise ConfigError(f"{item_id}: not answered in this submitted review")
    if not reason.strip():
        raise ConfigError("reason: say why the answer is wrong")
    if proposed is not None and proposed not in ANSWERS:
        raise ConfigError(f"proposed: one of {', '.join(ANSWERS)}")
    if session.scalar(select(Dispute.id).where(Dispute.submission_id == submission.id, Dispute.item_id == item_id,
                                               Dispute.state == "open")) is not None:
        raise ConfigError(f"{item_id}: this answer is disputed already; wait for the lead's decision")
    dispute = Dispute(call_id=submission.call_id, submission_id=submission.id, item_id=item_id,
                      answer=submission.answers[item_id]["answer"], proposed=proposed, reason=reason.strip()[:MAX_REASON],
                      raised_by=user.id, raised_at=utcnow(), state="open", resolution="")
    session.add(dispute)
    session.flush()
    return dispute


def resolve_dispute(session: Session, lead: User, dispute: Dispute, upheld: bool, answer: str | None,
                    comment: str) -> Dispute:
    """Uphold (the answer becomes ``answer``, through the lead's final review; see the module
    docstring) or reject an open dispute. The database decides which of two concurrent decisions
    wins (a conditional UPDATE of the open dispute, as for review versions). ConfigError: not
    open, upheld without a valid answer different from the disputed one, or the lead has a draft
    of their own on the call (it would be replaced: they submit or clear it first)."""
    if upheld and (answer not in ANSWERS or answer == dispute.answer):
        raise ConfigError(f"answer: the right answer, one of {', '.join(ANSWERS)}, not the disputed one")
    now = utcnow()
    claimed = session.execute(update(Dispute).where(Dispute.id == dispute.id, Dispute.state == "open")
                              .values(state="upheld" if upheld else "rejected", resolved_by=lead.id, resolved_at=now)
                              .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        session.rollback()
        session.refresh(dispute)
        raise ConfigError(f"dispute {dispute.id} is {dispute.state} already")
    session.refresh(dispute)
    if upheld:
        disputed = session.get(ReviewSubmission, dispute.submission_id)
        review = session.scalar(select(Review).where(Review.call_id == dispute.call_id, Review.reviewer_id == lead.id))
        if review is None:
            review = Review(call_id=dispute.call_id, reviewer_id=lead.id, state="draft", version=1, comment="")
            session.add(review)
            try:
                session.flush()
            except IntegrityError:  # the lead's review was created meanwhile (another tab)
                session.rollback()
                raise ConfigError("your review of this call was saved meanwhile; try again") from None
        elif review.state == "draft" and review.answers:
            session.rollback()
            raise ConfigError("you have a draft review of this call: submit it or clear its answers before "
                              "upholding a dispute (the upheld answers become your review)")
        elif not claim_version(session, review.id, review.version):
            session.rollback()
            raise ConfigError("your review of this call was saved meanwhile; try again")
        else:
            session.refresh(review)  # at the version the claim moved it to
        answers = {k: dict(v) for k, v in disputed.answers.items()}
        answers[dispute.item_id] = {**answers[dispute.item_id], "answer": answer,
                                    "comment": f"dispute {dispute.id} upheld: {comment}".strip()}
        for row in list(review.answers):
            review.answers.remove(row)
        session.flush()
        review.answers.extend(ReviewAnswer(item_id=k, answer=v["answer"], comment=v.get("comment") or "",
                                           auto_answer=v.get("auto_answer"), answered_at=now,
                                           how=v.get("how") or "chosen")
                              for k, v in answers.items())
        review.state, review.submitted_at, review.final, review.updated_at = "submitted", now, True, now
        author = session.get(User, disputed.reviewer_id).username
        review.comment = f"{author}'s review (version {disputed.version}) with dispute {dispute.id} upheld"
        session.flush()
        result = record_submission(session, review)
        session.flush()
        dispute.new_answer, dispute.result_submission_id = answer, result.id
        refresh_counted(session, [dispute.call_id])
    dispute.resolution = comment.strip()[:MAX_REASON]
    session.flush()
    return dispute


# -- speaker roles ----------------------------------------------------------------------------------

def current_swap(session: Session, call: Call) -> dict[str, Any] | None:
    """The call's latest role decision made in the app: ``{"agent", "by", "at", "pending"}``
    (pending: set after the call's results were last loaded, so the pipeline has not applied it
    yet), or None when there is none in force."""
    row = session.scalar(select(SpeakerSwap).where(SpeakerSwap.call_id == call.call_id)
                         .order_by(SpeakerSwap.set_at.desc(), SpeakerSwap.id.desc()).limit(1))
    if row is None or not row.agent:
        return None
    loaded = call.loaded_at if call.loaded_at.tzinfo else call.loaded_at.replace(tzinfo=row.set_at.tzinfo)
    set_at = row.set_at if row.set_at.tzinfo else row.set_at.replace(tzinfo=loaded.tzinfo)
    return {"agent": row.agent, "by": session.get(User, row.set_by).username, "at": _iso(set_at),
            "pending": loaded <= set_at}


def record_swap(session: Session, user: User, call: Call, agent: str, previous: str) -> SpeakerSwap:
    row = SpeakerSwap(call_id=call.call_id, agent=agent, previous=previous, set_by=user.id, set_at=utcnow())
    session.add(row)
    session.flush()
    return row


def undo_target(session: Session, call: Call) -> str:
    """The decision an undo restores: the one the latest decision replaced. ConfigError when
    the app recorded none for the call."""
    row = session.scalar(select(SpeakerSwap).where(SpeakerSwap.call_id == call.call_id)
                         .order_by(SpeakerSwap.set_at.desc(), SpeakerSwap.id.desc()).limit(1))
    if row is None:
        raise ConfigError(f"{call.call_id}: no role decision was made in the app to undo")
    return row.previous
