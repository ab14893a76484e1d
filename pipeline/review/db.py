"""The review database: calls and their automatic suggestions, users, assignments, reviews.

SQLAlchemy 2 models over SQLite (a file, the default) or PostgreSQL (a ``postgresql://`` URL,
where several reviewers share one server). The schema is created and upgraded by the Alembic
migrations in ``pipeline/review/migrations`` (:func:`pipeline.review.migrate.upgrade`), never by
``create_all``, so an existing database moves forward with the code.

Automatic and human answers live apart: ``call_items`` holds what the pipeline suggested (and is
rewritten when a call is processed again), ``review_answers`` what a reviewer answered, with who
and when and the suggestion they saw. Loading results never touches a review.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, create_engine, event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from pipeline.errors import ConfigError

ROLES = ("reviewer", "lead", "admin", "agent", "supervisor")
"""reviewer: the calls assigned to them; lead, admin: every call, the dashboards, sampling and
calibration; agent: their own reviewed calls; supervisor: the calls in progress on a live server
(the live wall, listen-in, flagged moments), no recorded call (see :mod:`pipeline.review.web`)."""
LIVE_ROLES = ("supervisor", "lead", "admin")
"""The roles that see the calls in progress (the live wall and API), listen in and flag moments."""
REVIEW_STATES = ("draft", "submitted")
CHANNELS = ("voice", "email", "chat")
"""The contact channels a call row may have (``calls.channel``): a recorded or streamed call,
an e-mail thread, a chat (pipeline/interaction/record.py ``CHANNEL_OF``)."""
WRITTEN_CHANNELS = ("email", "chat")
"""The channels of written conversations: no audio, one utterance per message."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), index=True)
    """For role ``agent``: the agent id (call metadata ``agent_id``) whose reviewed calls the
    user sees and may dispute."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Call(Base):
    """A processed interaction as the pipeline wrote it (the automatic side only): a call, or a
    written conversation (an e-mail thread, a chat; ``channel``)."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_started_call", "started_at", "call_id"),
                      Index("ix_calls_agent_started", "agent_id", "started_at"),
                      Index("ix_calls_queue_started", "queue", "started_at"),
                      Index("ix_calls_channel_started", "channel", "started_at"),
                      Index("ix_calls_score", "score"))

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    out_dir: Mapped[str] = mapped_column(Text)
    """The run's output folder the call was loaded from (audio and transcripts live there)."""
    agent_id: Mapped[str | None] = mapped_column(String(200), index=True)
    queue: Mapped[str | None] = mapped_column(String(200), index=True)
    started_at: Mapped[str | None] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="voice", server_default="voice")
    """The contact channel (:data:`CHANNELS`): ``voice`` for a call, ``email`` or ``chat`` for a
    written conversation (the record's ``channel``)."""
    duration_s: Mapped[float | None] = mapped_column(Float)
    """A call's length; a written conversation's span, from its first message to its last."""
    channels: Mapped[int | None] = mapped_column(Integer)
    messages: Mapped[int | None] = mapped_column(Integer)
    """A written conversation's number of messages (None for a call)."""
    score: Mapped[float | None] = mapped_column(Float)
    auto_fail: Mapped[bool] = mapped_column(Boolean, default=False)
    low_confidence_items: Mapped[int] = mapped_column(Integer, default=0)
    customer_sentiment_end: Mapped[float | None] = mapped_column(Float)
    template: Mapped[str | None] = mapped_column(String(200))
    config_hash: Mapped[str | None] = mapped_column(String(40))
    result_sha256: Mapped[str] = mapped_column(String(64))
    """Hash of the call.json the row was loaded from: an unchanged result is not loaded again."""
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audio_path: Mapped[str | None] = mapped_column(Text)
    """The recording as the run read it (absolute), so the audio route needs no call.json read."""
    input_roots: Mapped[list[Any] | None] = mapped_column(JSON)
    """The folders of the run's recordings (``run.json`` ``input_roots``): the audio route plays
    no original recording outside them; None (a run that did not record them): none at all."""
    pii_redacted: Mapped[bool | None] = mapped_column(Boolean)
    """Whether the call's text was redacted (call.json ``pii.redacted``); None: not said."""
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    counted_review_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The review that counts for the call's KPIs (:func:`pipeline.review.history.counted_reviews`),
    kept by :func:`pipeline.review.history.refresh_counted` after every submit, reopen, upheld
    dispute and reload; None: not reviewed."""
    reviewed_score: Mapped[float | None] = mapped_column(Float)
    """The counted review's score (:func:`pipeline.review.scoring.review_score`)."""
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The interaction documented, as the pipeline extracted it (call.json ``contact``: reason,
    actions, outcome, follow-ups, mentions); None: the result has none, or was loaded before
    it was kept here (:func:`pipeline.review.contact.automatic_contact` then reads call.json).
    A reviewer's correction lives apart (:class:`ContactCorrection`) and is never overwritten
    by a load."""

    items: Mapped[list["CallItem"]] = relationship(back_populates="call", cascade="all, delete-orphan",
                                                   order_by="CallItem.position")


class CallItem(Base):
    """One scorecard item's automatic suggestion for a call."""

    __tablename__ = "call_items"
    __table_args__ = (UniqueConstraint("call_id", "item_id"),
                      Index("ix_call_items_reviewed", "item_id", "human_answer", "answer",
                            sqlite_where=text("human_answer IS NOT NULL"),
                            postgresql_where=text("human_answer IS NOT NULL")))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(200), index=True)
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(String(10))
    confidence: Mapped[float] = mapped_column(Float)
    points: Mapped[float] = mapped_column(Float)
    auto_fail: Mapped[bool] = mapped_column(Boolean, default=False)
    looked_for: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    human_answer: Mapped[str | None] = mapped_column(String(10))
    """The counted review's answer to this item (None: not reviewed, or not answered in it)."""

    call: Mapped[Call] = relationship(back_populates="items")


class Review(Base):
    """One reviewer's review of one call: a draft until submitted. ``version`` goes up with every
    save; a save based on an older version is a conflict (nothing is silently overwritten)."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("call_id", "reviewer_id"), Index("ix_reviews_call_state", "call_id", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    """Marked final by a lead or admin on submitting (or by an upheld dispute): the review that
    counts for the call's KPIs (see :func:`pipeline.review.history.counted_reviews`)."""

    answers: Mapped[list["ReviewAnswer"]] = relationship(back_populates="review", cascade="all, delete-orphan")


class ReviewAnswer(Base):
    """A reviewer's answer to one item, with the suggestion it accepted or overrode."""

    __tablename__ = "review_answers"
    __table_args__ = (UniqueConstraint("review_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str] = mapped_column(String(10))
    auto_answer: Mapped[str | None] = mapped_column(String(10))
    """The automatic answer the reviewer saw when answering (the suggestion may change later)."""
    comment: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    how: Mapped[str] = mapped_column(String(20), default="chosen")
    """``chosen`` (the reviewer picked it) or ``accept_all`` (filled from the suggestion by a
    one-click accept)."""

    review: Mapped[Review] = relationship(back_populates="answers")


class ItemTally(Base):
    """How a day's calls of one agent, queue and channel answered one item (see
    :mod:`pipeline.review.tallies`): derived from ``calls`` and ``call_items``, never edited."""

    __tablename__ = "item_tallies"
    __table_args__ = (Index("ix_item_tallies_day_agent", "day", "agent_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str | None] = mapped_column(String(10))
    agent_id: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20), default="voice", server_default="voice")
    item_id: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    yes: Mapped[int] = mapped_column(Integer)
    decided: Mapped[int] = mapped_column(Integer)
    """Calls whose effective answer is yes or no."""


class ReviewSubmission(Base):
    """One submitted version of a review, kept for good: a resubmission after a reopen, or a
    review changed by an upheld dispute, adds a row and never replaces one."""

    __tablename__ = "review_submissions"
    __table_args__ = (UniqueConstraint("review_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """{item_id: {"answer", "comment", "auto_answer"}} as submitted."""


class Dispute(Base):
    """An objection to one answer of a submitted review, and the lead's decision on it."""

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("review_submissions.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str] = mapped_column(String(10))
    """The disputed answer, as submitted."""
    proposed: Mapped[str | None] = mapped_column(String(10))
    """The answer the disputer says is right (optional)."""
    reason: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(20), default="open")
    """``open``, ``upheld`` (the answer was changed) or ``rejected``."""
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    new_answer: Mapped[str | None] = mapped_column(String(10))
    resolution: Mapped[str] = mapped_column(Text, default="")
    """The lead's comment on the decision."""
    result_submission_id: Mapped[int | None] = mapped_column(ForeignKey("review_submissions.id"))
    """Upheld: the lead's final review version that carries the changed answer."""


class ContactCorrection(Base):
    """A reviewer's correction of a call's interaction record (its contact reason, outcome and
    follow-ups), kept beside the automatic block, never replacing it: rows are only added, the
    latest counts (see :mod:`pipeline.review.contact`). ``fields`` holds the whole correction as
    it stands after this row (the fields not in it are the automatic ones); ``automatic`` the
    automatic block the reviewer corrected, so that a newer run's block shows as changed since."""

    __tablename__ = "contact_corrections"
    __table_args__ = (Index("ix_contact_corrections_call_id", "call_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """{"reason": {...}, "outcome": {"label"}, "follow_ups": [...]}: the corrected fields only."""
    automatic: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The automatic contact block as it was when this correction was made."""


class SpeakerSwap(Base):
    """Who set a call's manual role decision and when (the pipeline reads the decision from
    ``OUT/speaker_overrides.csv``; this log says who wrote it). ``agent`` "" removes it, and
    undoing appends the previous decision again: rows are never changed."""

    __tablename__ = "speaker_swaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    agent: Mapped[str] = mapped_column(String(20))
    previous: Mapped[str] = mapped_column(String(20), default="")
    """The decision this one replaced ("" none): what an undo restores."""
    set_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """A call given to a reviewer to review (a sample, or one of a calibration session's calls)."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("call_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="sample")
    """``sample`` (random per agent and period), ``auto_fail``, ``low_confidence``, ``manual`` or
    ``calibration``."""
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    calibration_id: Mapped[int | None] = mapped_column(ForeignKey("calibrations.id", ondelete="CASCADE"), index=True)


class Calibration(Base):
    """A calibration session: one call scored by several reviewers, compared once all submit."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebSession(Base):
    """A logged-in browser: the cookie holds a random token, the table its sha256 (a stolen
    database gives no usable session), the CSRF token forms must echo, and the expiry."""

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LiveToken(Base):
    """A token a telephony platform presents to stream calls to ``callqa serve --live``
    (``callqa live token add NAME``): only its sha256 is kept, shown once when made."""

    __tablename__ = "live_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LiveFlag(Base):
    """A moment of a call flagged by a supervisor while the call went on (``/live/{call_id}``),
    with a note; the call's review page shows it once the call's result is loaded. Keyed by call
    id only (no foreign key): the call is loaded after it ends, and its flags wait for it."""

    __tablename__ = "live_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    at_s: Mapped[float] = mapped_column(Float)
    """The moment flagged, in seconds from the call's start (its place in the recording)."""
    note: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AudioAccess(Base):
    """The audit trail of a call's audio: who heard what and when. A row per load of a
    recorded call's audio (``recording``: the audio route, not each range request of one
    playback) and per listen-in to a call in progress (``listen``: from its start to ``ended_at``,
    with the seconds of audio relayed). Rows are only added, and a listen-in's end filled in."""

    __tablename__ = "audio_access"
    __table_args__ = (Index("ix_audio_access_call_at", "call_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    call_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    """``recording`` (the audio of a processed call) or ``listen`` (a call in progress)."""
    detail: Mapped[str] = mapped_column(Text, default="")
    """What was sent: the masked copy or the original recording; for a listen-in, how much."""
    client: Mapped[str | None] = mapped_column(String(100))
    """The client's address."""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)
    """A listen-in: the seconds of the call relayed to the listener (of the party with the most)."""


class LoginThrottle(Base):
    """Failed log-ins of one account name (``user:NAME``, known or not, so a lockout tells
    nothing about which names exist) or one client address (``addr:IP``) in the current window,
    and until when it is locked (see ``pipeline/review/throttle.py``)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def normalise_url(db: str | Path) -> str:
    """A database URL: ``sqlite:///...`` / ``postgresql://...`` as given, a plain path as a
    SQLite file. ConfigError for anything else."""
    text = str(db)
    if text.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith("sqlite:"):
        return text
    if "://" in text:
        raise ConfigError(f"--db {text}: use a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DB")
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def make_engine(db: str | Path) -> Engine:
    """An engine for ``db`` (see :func:`normalise_url`); SQLite with foreign keys on and a busy
    timeout so that the web server and a loader can share the file."""
    url = normalise_url(db)
    if url.startswith("sqlite:"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
