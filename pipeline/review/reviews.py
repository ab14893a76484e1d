"""Saving a reviewer's answers so that no edit is lost or silently overwritten.

Every save names the review version it was based on (the one the page was loaded with, 0 for
a new review). The database decides whether that version is still current, not the server
process: an existing review moves to the next version in one conditional
``UPDATE reviews SET version = version + 1 WHERE id = :id AND version = :expected``, and a new
review is an INSERT that the unique (call, reviewer) constraint refuses when another request
created it first. However many server processes share the database, exactly one save per
version is accepted; the others get a typed :class:`ReviewConflict`. The answers are written in
the same transaction, after the version is claimed (the claim holds the row's write lock on
PostgreSQL; SQLite lets one writer at a time in).

Blind confirmation: a submit needs an explicit answer for every item (the page pre-selects
none); only ``accept_all`` fills the unanswered items with the suggestions, and only where the
caller allows one-click accept (``review.one_click_accept``; never on a calibration call). Every
submit is kept in ``review_submissions`` (:mod:`pipeline.review.history`), so a reopen and a
resubmission never replace what was submitted before. A lead or admin may mark their review
``final``: it then counts for the call's KPIs (:func:`pipeline.review.history.counted_reviews`).

A submitted review takes no more saves (:class:`AlreadySubmitted`, whatever version the save
names) unless the save reopens it, so an autosave that arrives after a submit is told exactly
that rather than reported as a conflicting edit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.review.db import Call, Review, ReviewAnswer, User, utcnow
from pipeline.review.history import claim_version, record_submission, refresh_counted
from pipeline.analysis.card import ANSWERS

MAX_COMMENT = 20000
"""Characters kept of the comment on the whole call."""
MAX_ITEM_COMMENT = 5000
"""Characters kept of the comment on one item."""
MAX_VERSION = 2**31 - 1
"""The largest version a save may name (an INTEGER column in PostgreSQL)."""


@dataclass(frozen=True)
class ReviewEdit:
    """One save from the call page (``PUT /api/calls/{call_id}/review``)."""

    version: int
    """The review's version the page was loaded with (0: there was no review yet)."""
    answers: dict[str, tuple[str, str]] = field(default_factory=dict)
    """item id -> (answer: yes / no / na, the reviewer's comment on the item)."""
    comment: str = ""
    """The reviewer's comment on the whole call."""
    submit: bool = False
    """Submit the review (every item of the scorecard must then be answered)."""
    reopen: bool = False
    """Turn a submitted review back into a draft."""
    final: bool = False
    """With ``submit``: mark the review final (leads and admins only): it counts for the KPIs."""
    accept_all: bool = False
    """Answer every item not answered yet with its suggestion (one-click accept, where allowed)."""

    @classmethod
    def from_json(cls, body: dict[str, Any], item_ids: Collection[str]) -> ReviewEdit:
        """The edit in a request body ``{"version": N, "answers": {item: {"answer", "comment"}},
        "comment", "submit", "reopen"}``, checked against the call's scorecard items (comments
        longer than the limits are cut). InvalidEdit saying what is wrong."""
        version = body.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
            raise InvalidEdit(f"version: the review version the page was loaded with, a whole number from 0 to "
                              f"{MAX_VERSION}")
        raw = body.get("answers") or {}
        if not isinstance(raw, dict):
            raise InvalidEdit('answers: {item: {"answer": "yes", "comment": ""}}')
        answers = {}
        for item_id, a in raw.items():
            if item_id not in item_ids:
                raise InvalidEdit(f"{item_id}: not an item of this call's scorecard")
            if not isinstance(a, dict) or a.get("answer") not in ANSWERS:
                raise InvalidEdit(f"{item_id}: the answer must be one of {', '.join(ANSWERS)}")
            answers[item_id] = (a["answer"], _text(a, "comment", f"{item_id}: comment")[:MAX_ITEM_COMMENT])
        return cls(version=version, answers=answers, comment=_text(body, "comment", "comment")[:MAX_COMMENT],
                   submit=_flag(body, "submit"), reopen=_flag(body, "reopen"), final=_flag(body, "final"),
                   accept_all=_flag(body, "accept_all"))


def _text(body: dict[str, Any], key: str, name: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidEdit(f"{name}: text (without NUL characters)")
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidEdit(f"{key}: true or false")
    return bool(value)


class InvalidEdit(ValueError):
    """The save is malformed or does not fit the call's scorecard (HTTP 422)."""


class IncompleteReview(InvalidEdit):
    """A submit with items still unanswered (HTTP 422); nothing was saved."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"answer every item before submitting; missing: {', '.join(missing)}")
        self.missing = missing


class ReviewConflict(Exception):
    """The save was refused because the review is not as the page saw it (HTTP 409); nothing
    was saved. ``reason`` names the case for the page."""

    reason = "conflict"


class StaleVersion(ReviewConflict):
    """The review was saved elsewhere (another tab, another reviewer's session) since the page
    loaded it."""

    reason = "stale"

    def __init__(self) -> None:
        super().__init__("conflict: this review was saved elsewhere since you opened it; your changes are not "
                         "saved yet; reload to see the newer version, then apply your changes again")


class AlreadySubmitted(ReviewConflict):
    """The review is submitted; a save that does not reopen it changes nothing."""

    reason = "submitted"

    def __init__(self) -> None:
        super().__init__("this review is submitted already; nothing was changed (reopen it to edit)")


def save_review(session: Session, user: User, call: Call, edit: ReviewEdit, one_click: bool = False) -> Review:
    """Apply ``edit`` to ``user``'s review of ``call`` and commit: the review as saved, at its
    new version. ``one_click``: whether ``accept_all`` is allowed on this call. On a refusal
    (ReviewConflict, InvalidEdit) the transaction is rolled back and nothing is written."""
    if edit.accept_all and not one_click:
        raise InvalidEdit("accept_all: one-click accept is not allowed on this call; answer every item")
    if edit.final and user.role not in ("lead", "admin"):
        raise InvalidEdit("final: only a lead or an admin marks a review final")
    try:
        return _save(session, user, call, edit)
    except BaseException:
        session.rollback()
        raise


def _save(session: Session, user: User, call: Call, edit: ReviewEdit) -> Review:
    review = current_review(session, call.call_id, user.id)
    if review is not None and review.state == "submitted" and not edit.reopen:
        raise AlreadySubmitted()
    if review is None:
        if edit.version != 0:
            raise StaleVersion()
        review = _create(session, call.call_id, user.id)
    elif claim_version(session, review.id, edit.version):
        session.expire(review)  # read again what the claim now holds
    else:
        raise _refusal(session, call.call_id, user.id, edit)

    suggested = {i.item_id: i.answer for i in call.items}
    existing = {a.item_id: a for a in review.answers}
    now = utcnow()
    given = {item_id: (answer, comment, "chosen") for item_id, (answer, comment) in edit.answers.items()}
    if edit.accept_all:  # marked, so a lead can tell accepted suggestions from chosen answers
        for item_id, answer in suggested.items():
            if item_id not in given and item_id not in existing:
                given[item_id] = (answer, "", "accept_all")
    for item_id, (answer, comment, how) in given.items():
        row = existing.get(item_id)
        if row is None:
            row = existing[item_id] = ReviewAnswer(item_id=item_id)
            review.answers.append(row)
        if row.answer != answer or row.auto_answer is None:
            row.auto_answer = suggested[item_id]  # the suggestion this answer was given against
            row.answered_at = now
            row.how = how
        row.answer, row.comment = answer, comment
    review.comment = edit.comment
    review.updated_at = now
    if edit.submit:
        missing = [i for i in suggested if i not in existing]
        if missing:
            raise IncompleteReview(missing)
        review.state, review.submitted_at, review.final = "submitted", now, edit.final
        session.flush()
        record_submission(session, review)
        refresh_counted(session, [call.call_id])
    elif edit.reopen:
        review.state, review.submitted_at, review.final = "draft", None, False
        session.flush()
        refresh_counted(session, [call.call_id])
    session.commit()
    return review


def current_review(session: Session, call_id: str, reviewer_id: int) -> Review | None:
    return session.scalar(select(Review).where(Review.call_id == call_id, Review.reviewer_id == reviewer_id))


def _create(session: Session, call_id: str, reviewer_id: int) -> Review:
    """A new review at version 1; when a concurrent request created it first, the unique
    (call, reviewer) constraint refuses this one: a conflict."""
    review = Review(call_id=call_id, reviewer_id=reviewer_id, state="draft", version=1, comment="")
    session.add(review)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        if current_review(session, call_id, reviewer_id) is None:
            raise  # not the unique constraint (the call itself is gone, say)
        raise StaleVersion() from None
    return review


def _refusal(session: Session, call_id: str, reviewer_id: int, edit: ReviewEdit) -> ReviewConflict:
    """Why a claim failed, from the review as it is now."""
    session.rollback()
    review = current_review(session, call_id, reviewer_id)
    if review is not None and review.state == "submitted" and not edit.reopen:
        return AlreadySubmitted()
    return StaleVersion()
