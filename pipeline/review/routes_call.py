"""One call: its page and JSON (audio, transcript, suggestions with evidence, the user's review
and the trail of submitted reviews and disputes), its masked audio, saving a review, the
speaker-role swap and its undo, disputes and a lead's decision on them.

A written conversation (an e-mail thread or a chat, ``calls.channel`` ``email`` / ``chat``) has
the same page and JSON without audio: its messages (number, time, role and agent name, subject,
attachments, auto-reply mark, and the text of the utterance of the same number) take the
place of the transcript and the player, and a piece of evidence points at its message and the
characters it quotes there (``message``, ``chars``) instead of a time to play from.

An agent (role ``agent``) opens only their own reviewed calls (:func:`pipeline.review.web.visible_calls`):
they read the transcript, listen to the masked audio, see the review that counts with its
comments, and dispute its answers; they never get a review form, and saving a review or
changing the speaker roles is refused to them (403)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.interaction.record import Interaction, RecordError, record_path
from pipeline.review import reviews
from pipeline.review.audio_access import (
    MEDIA_TYPES, REDACTED_AUDIO, access_trail, is_playback_start, playable_audio, record_access,
)
from pipeline.review.db import WRITTEN_CHANNELS, Assignment, Call, Review, User
from pipeline.review.hardening import MAX_INT, json_object, text, whole_number
from pipeline.review.threads import thread_messages, thread_summary
from pipeline.review.web import Who, call_for, check_csrf, current, db_session, lead, lead_csrf, templates

SPEAKER_CHOICES = ("swap", "left", "right", "S0", "S1", "S2", "S3")
CORRECTORS = ("reviewer", "lead", "admin")
"""Who corrects a call's interaction record (its contact reason, outcome and follow-ups)."""

router = APIRouter()


def reviewer_csrf(who: Who = Depends(check_csrf)) -> Who:
    """A state change an agent may not make (saving a review, the speaker roles): 403 for them."""
    if who[0].role == "agent":
        raise HTTPException(403, "agents read their reviewed calls and dispute answers; they do not review or "
                                 "change calls")
    return who


def call_record(call: Call) -> Interaction:
    try:
        return Interaction.load(record_path(Path(call.out_dir), call.call_id))
    except RecordError:
        raise HTTPException(410, f"the results of {call.call_id} are no longer in {call.out_dir}") from None

def my_review(s: Session, user: User, call_id: str) -> Review | None:
    return s.scalar(select(Review).where(Review.call_id == call_id, Review.reviewer_id == user.id))

def blind(s: Session, user: User, call_id: str) -> bool:
    """Whether ``user`` scores ``call_id`` in a calibration session: then they see no
    suggestion and no other scorer's answers (calibration is always blind)."""
    return s.scalar(select(Assignment.id).where(Assignment.call_id == call_id, Assignment.reviewer_id == user.id,
                                                Assignment.kind == "calibration").limit(1)) is not None

def review_trail(s: Session, user: User, call: Call, is_blind: bool) -> dict[str, Any]:
    """The submitted reviews ``user`` may see, with their disputes: a lead or admin sees all
    (but a calibration scorer only their own); a reviewer their own and the final ones; an agent
    the versions that count or are final (never a calibration scorer's) and those their own
    disputes name, and only their own disputes.

    Each version carries ``can_dispute`` (an agent disputes only the version shown to them as
    the review of their call, ``shown_id``: the counted one) and, for everyone but an agent,
    how each answer was given (``how``: ``chosen`` one by one or ``accept_all``, filled from the
    suggestion by a one-click accept) with their number (``accept_all``)."""
    from pipeline.review.history import disputes, submissions

    rows = submissions(s, call.call_id)
    shown_id = None
    agent = user.role == "agent"
    if is_blind:
        rows = [r for r in rows if r["reviewer"] == user.username]
    elif agent:
        rows, shown_id = agent_versions(s, user, call.call_id, rows)
    elif user.role not in ("lead", "admin"):
        rows = [r for r in rows if r["reviewer"] == user.username or r["final"]]
    for r in rows:  # copies: the rows' answers are the database's JSON, never changed here
        if agent:
            r["answers"] = {k: {f: v for f, v in a.items() if f != "how"} for k, a in r["answers"].items()}
        else:
            r["answers"] = {k: {**a, "how": a.get("how") or "chosen"} for k, a in r["answers"].items()}
            r["accept_all"] = sum(a["how"] == "accept_all" for a in r["answers"].values())
        r["can_dispute"] = r["id"] == shown_id if agent else True
    found = disputes(s, call.call_id, [r["id"] for r in rows])
    if agent:
        found = [d for d in found if d["raised_by"] == user.username]
    return {"submissions": rows, "disputes": found, "shown_id": shown_id,
            "can_resolve": user.role in ("lead", "admin") and not is_blind}

def agent_versions(s: Session, user: User, call_id: str,
                   rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int | None]:
    """What an agent sees of a call's submitted versions (see :func:`review_trail`), and the id
    of the one shown as the review of their call: the counted version, or (when that one is a
    calibration scorer's) the latest other final one; when there is no other, the counted
    scorer's version after all (what counts for the agent's figures is always shown to them);
    None when nothing is submitted."""
    from pipeline.review.db import Dispute

    scorers = set(s.scalars(select(User.username).join(Assignment, Assignment.reviewer_id == User.id)
                            .where(Assignment.call_id == call_id, Assignment.kind == "calibration")))
    named: set[int | None] = set()
    for disputed, result in s.execute(select(Dispute.submission_id, Dispute.result_submission_id)
                                      .where(Dispute.call_id == call_id, Dispute.raised_by == user.id)):
        named.update((disputed, result))
    eligible = [r for r in rows if (r["counted"] or r["final"]) and r["reviewer"] not in scorers]
    counted = [r for r in eligible if r["counted"]]
    shown = counted[0] if counted else (eligible[-1] if eligible else None)
    if shown is None:
        shown = next((r for r in rows if r["counted"]), None)
        eligible = [shown] if shown is not None else []
    ids = {r["id"] for r in eligible} | named
    return [r for r in rows if r["id"] in ids], shown["id"] if shown else None

def call_payload(s: Session, user: User, call: Call, state: Any) -> dict[str, Any]:
    """Everything the call page shows ``user`` (``state``: the app's state, for its options).
    ``flags``: the moments a supervisor flagged while the call went on (not shown to an agent,
    nor to a calibration scorer, who scores blind)."""
    from pipeline.review.flags import flags_of
    from pipeline.review.history import current_swap

    record = call_record(call)
    review = my_review(s, user, call.call_id)
    is_blind = blind(s, user, call.call_id)
    answers = {a.item_id: {"answer": a.answer, "comment": a.comment,
                           "auto_answer": None if is_blind else a.auto_answer}
               for a in (review.answers if review else [])}
    items = [{"id": i.item_id, "section": i.section, "question": i.question, "answer": i.answer,
              "confidence": i.confidence, "auto_fail": i.auto_fail, "looked_for": i.looked_for,
              "evidence": i.evidence} for i in call.items]
    if is_blind:  # no suggestion, no confidence, no evidence pointing at one
        for item in items:
            item.update(answer=None, confidence=None, looked_for=None, evidence=[])
    written = call.channel in WRITTEN_CHANNELS
    return {
        "call_id": call.call_id, "channel": call.channel, "written": written,
        "agent_id": call.agent_id, "queue": call.queue, "started_at": call.started_at,
        "duration_s": call.duration_s, "score": call.score, "auto_fail": call.auto_fail,
        "pii_redacted": bool(call.pii_redacted), "audio": audio_state(call, state),
        "messages": thread_messages(record) if written else [],
        "thread": thread_summary(record) if written else None,
        "speakers": {k: (record.speakers or {}).get(k) for k in ("method", "roles", "override", "confidence")},
        "utterances": [{k: u.get(k) for k in ("id", "role", "speaker", "start", "end", "text")}
                       for u in record.utterance_dicts()],
        "items": items,
        "blind": is_blind, "role": user.role,
        "can_review": user.role != "agent", "can_swap": user.role != "agent",
        "one_click_accept": user.role != "agent" and not is_blind and state.options.allows_one_click(call.template),
        "can_mark_final": user.role in ("lead", "admin"),
        "review": {"state": review.state if review else None, "version": review.version if review else 0,
                   "comment": review.comment if review else "", "answers": answers,
                   "final": bool(review and review.final)},
        "trail": review_trail(s, user, call, is_blind),
        "speaker_swap": current_swap(s, call),
        "flags": [] if is_blind or user.role == "agent" else flags_of(s, call.call_id),
        "contact": contact_payload(s, user, call, record),
    }

def contact_payload(s: Session, user: User, call: Call, record: Interaction | None = None) -> dict[str, Any]:
    """The call's interaction record (:func:`pipeline.review.contact.contact_view`), whether
    ``user`` may correct it (reviewers, leads and admins), and the customer's utterances a
    corrected contact reason may point at."""
    from pipeline.review.contact import OUTCOMES, contact_view

    view = contact_view(s, call, record)
    view["can_correct"] = user.role in CORRECTORS
    view["outcomes"] = list(OUTCOMES)
    return view

def audio_state(call: Call, state: Any) -> dict[str, Any] | None:
    """Whether the audio route will play something, what, and if not why; None for a written
    conversation (it has no audio at all)."""
    if call.channel in WRITTEN_CHANNELS:
        return None
    try:
        path = playable_audio(call, state.options, state.protected)
    except HTTPException as e:
        return {"playable": False, "masked": False, "reason": e.detail}
    return {"playable": True, "masked": path.name == REDACTED_AUDIO, "reason": None}

@router.get("/api/calls/{call_id}")
def api_call(request: Request, call_id: str, who: Who = Depends(current),
             s: Session = Depends(db_session)) -> JSONResponse:
    return JSONResponse(call_payload(s, who[0], call_for(s, who[0], call_id), request.app.state))

@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_page(request: Request, call_id: str, who: Who = Depends(current),
              s: Session = Depends(db_session)) -> Response:
    payload = call_payload(s, who[0], call_for(s, who[0], call_id), request.app.state)
    return templates.TemplateResponse(request, "call.html", {
        "user": who[0], "csrf": who[1].csrf_token, "call": payload, "payload_json": json.dumps(payload).replace("<", "\\u003c")})  # no "</script>" inside the script

@router.get("/calls/{call_id}/audio")
def audio(request: Request, call_id: str, who: Who = Depends(current), s: Session = Depends(db_session)) -> Response:
    """The call's masked audio (see :func:`playable_audio`); range requests work. A written
    conversation has none (404). Each playback (a request from byte 0) is a row of the audit
    trail (:func:`~pipeline.review.audio_access.record_access`)."""
    call = call_for(s, who[0], call_id)
    if call.channel in WRITTEN_CHANNELS:
        raise HTTPException(404, "a written conversation has no audio")
    path = playable_audio(call, request.app.state.options, request.app.state.protected)
    if is_playback_start(request.headers.get("range")):
        record_access(s, who[0].id, call.call_id, "recording",
                      "masked copy" if path.name == REDACTED_AUDIO else "original recording",
                      request.client.host if request.client else None)
        s.commit()
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})

@router.get("/api/audio-access")
def api_audio_access(request: Request, who: Who = Depends(lead), s: Session = Depends(db_session)) -> JSONResponse:
    """The audit trail of calls' audio (leads and admins): who played a recording or listened in
    to a call in progress, when, and for how long; ``?call_id=`` for one call, newest first."""
    limit = request.query_params.get("limit", "200")
    if not limit.isdigit() or not 1 <= int(limit) <= 10000:
        raise HTTPException(422, "limit: a whole number from 1 to 10000")
    return JSONResponse({"access": access_trail(s, request.query_params.get("call_id") or None, int(limit))})

@router.put("/api/calls/{call_id}/review")
async def save_review(call_id: str, request: Request, who: Who = Depends(reviewer_csrf),
                      s: Session = Depends(db_session)) -> JSONResponse:
    """Save the reviewer's draft (``submit: true`` submits it). Body: ``{"version": N, "answers":
    {item_id: {"answer": "yes", "comment": ""}}, "comment": ""}``; ``version`` is the one the page
    was loaded with (0 for a new review). The database checks the version
    (:func:`pipeline.review.reviews.save_review`), so of several saves from one version, through
    any number of server processes, exactly one is accepted. 409 with the current review and a
    ``reason``: ``stale`` (saved elsewhere since the page loaded it) or ``submitted`` (submitted
    already; nothing changed)."""
    user = who[0]
    call = call_for(s, user, call_id)
    body = await json_object(request, '{"version": 0, "answers": {"item": {"answer": "yes", "comment": ""}}, '
                                      '"comment": "", "submit": false}')
    try:
        edit = reviews.ReviewEdit.from_json(body, [i.item_id for i in call.items])
        one_click = request.app.state.options.allows_one_click(call.template) and not blind(s, user, call.call_id)
        review = reviews.save_review(s, user, call, edit, one_click=one_click)
    except reviews.InvalidEdit as e:
        raise HTTPException(422, str(e)) from None
    except reviews.ReviewConflict as e:
        return JSONResponse(status_code=409, content={"error": str(e), "reason": e.reason,
                                                      "current": call_payload(s, user, call, request.app.state)["review"]})
    return JSONResponse({"version": review.version, "state": review.state})

@router.post("/api/calls/{call_id}/speakers")
async def swap_speakers(call_id: str, request: Request, who: Who = Depends(reviewer_csrf),
                        s: Session = Depends(db_session)) -> JSONResponse:
    """Write the manual role decision the pipeline honours on its next run
    (``OUT/speaker_overrides.csv``: ``swap``, a speaker id or ``left``/``right``; empty removes it)."""
    call = call_for(s, who[0], call_id)
    agent = text(await json_object(request, '{"agent": "swap"}'), "agent")
    if agent and agent not in SPEAKER_CHOICES:
        raise HTTPException(422, f"agent: one of {', '.join(SPEAKER_CHOICES)}, or empty to remove the override")
    return set_speakers(s, who[0], call, agent)

@router.post("/api/calls/{call_id}/speakers/undo")
def undo_speakers(call_id: str, who: Who = Depends(reviewer_csrf),
                  s: Session = Depends(db_session)) -> JSONResponse:
    """Restore the role decision the latest one replaced (none: the pipeline's own roles)."""
    from pipeline.errors import ConfigError
    from pipeline.review.history import undo_target

    call = call_for(s, who[0], call_id)
    try:
        target = undo_target(s, call)
    except ConfigError as e:
        raise HTTPException(409, str(e)) from None
    return set_speakers(s, who[0], call, target)

def set_speakers(s: Session, user: User, call: Call, agent: str) -> JSONResponse:
    """Write ``agent`` as the call's row of ``OUT/speaker_overrides.csv`` and log who and when."""
    from pipeline.review.history import current_swap, record_swap
    from pipeline.speakers.stage import read_overrides

    path = Path(call.out_dir) / "speaker_overrides.csv"
    previous = read_overrides(path).get(call.call_id, "") if path.is_file() else ""
    write_override(path, call.call_id, agent)
    record_swap(s, user, call, agent, previous)
    s.commit()
    return JSONResponse({"call_id": call.call_id, "agent": agent or None, "swap": current_swap(s, call),
                         "note": "applied when the pipeline next runs over this folder"})

# -- the interaction record (contact reason, outcome, follow-ups) and its corrections ---------------

@router.get("/api/calls/{call_id}/contact")
def api_contact(call_id: str, who: Who = Depends(current), s: Session = Depends(db_session)) -> JSONResponse:
    """The call's interaction record: ``{"automatic": the pipeline's block | null, "corrected":
    {"id", "by", "at", "fields", "automatic_changed"} | null, "effective": the block as it
    counts, "history": [{"id", "by", "at", "fields", "automatic"}], "can_correct"}`` (see
    :mod:`pipeline.review.contact`)."""
    call = call_for(s, who[0], call_id)
    return JSONResponse(contact_payload(s, who[0], call))

def corrector_csrf(who: Who = Depends(check_csrf)) -> Who:
    if who[0].role not in CORRECTORS:
        raise HTTPException(403, "reviewers, leads and admins correct a call's interaction record")
    return who

@router.post("/api/calls/{call_id}/contact")
async def api_correct_contact(call_id: str, request: Request, who: Who = Depends(corrector_csrf),
                              s: Session = Depends(db_session)) -> JSONResponse:
    """Correct the call's interaction record, beside the automatic one (a new correction; the
    earlier ones stay in the history): ``{"reason": {"text": "..."} | {"utterance_id": "u0004"}
    | null, "outcome": "resolved" | "follow_up" | "escalated" | "transferred" | "unresolved" |
    null, "follow_ups": [{"text": "...", "due": "2026-11-19" | null, "due_text": "..." | null}] |
    null}``: a field given replaces its correction, null withdraws it, one left out stays. 422
    says what is wrong. Answers as GET does."""
    from pipeline.review.contact import InvalidCorrection, automatic_contact, correct, latest_correction, validate

    user = who[0]
    call = call_for(s, user, call_id)
    body = await json_object(request, '{"outcome": "resolved", "reason": {"text": "..."}, '
                                      '"follow_ups": [{"text": "...", "due": "2026-11-19"}]}')
    record = call_record(call)
    latest = latest_correction(s, call.call_id)
    try:
        fields = validate(body, latest.fields if latest else None, record.utterance_dicts(), call.channel)
    except InvalidCorrection as e:
        raise HTTPException(422, str(e)) from None
    correct(s, user, call, fields, automatic_contact(call, record))
    s.commit()
    return JSONResponse(contact_payload(s, user, call, record))

# -- submitted reviews and disputes -----------------------------------------------------------

@router.get("/api/calls/{call_id}/reviews")
def api_reviews(call_id: str, who: Who = Depends(current),
                s: Session = Depends(db_session)) -> JSONResponse:
    """Every submitted review version the user may see, which one counts, and the disputes."""
    call = call_for(s, who[0], call_id)
    return JSONResponse(review_trail(s, who[0], call, blind(s, who[0], call_id)))

@router.post("/api/calls/{call_id}/disputes")
async def api_dispute(call_id: str, request: Request, who: Who = Depends(check_csrf),
                      s: Session = Depends(db_session)) -> JSONResponse:
    """Dispute one answer of a submitted review version the user can see (an agent: of the
    version that counts for their call): ``{"submission_id", "item_id", "reason", "proposed":
    "yes" | "no" | "na" | null}``."""
    from pipeline.errors import ConfigError
    from pipeline.review.db import ReviewSubmission
    from pipeline.review.history import raise_dispute

    user = who[0]
    call = call_for(s, user, call_id)
    body = await json_object(request, '{"submission_id": 1, "item_id": "...", "reason": "...", "proposed": "no"}')
    sub_id = whole_number(body, "submission_id", 0, low=1)
    visible = {r["id"]: r for r in review_trail(s, user, call, blind(s, user, call_id))["submissions"]}
    submission = s.get(ReviewSubmission, sub_id) if sub_id in visible else None
    if submission is None or submission.call_id != call.call_id:
        raise HTTPException(404, "no such submitted review of this call")
    if not visible[sub_id]["can_dispute"]:
        raise HTTPException(403, "an agent disputes the answers of the review that counts for their call, "
                                 "not an earlier version")
    try:
        dispute = raise_dispute(s, user, submission, text(body, "item_id"), text(body, "reason", 5000),
                                text(body, "proposed", 10) or None)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    s.commit()
    return JSONResponse({"id": dispute.id, "state": dispute.state})

@router.post("/api/disputes/{dispute_id}/resolve")
async def api_resolve(dispute_id: Annotated[int, FastPath(ge=1, le=MAX_INT)], request: Request,
                      who: Who = Depends(lead_csrf),
                      s: Session = Depends(db_session)) -> JSONResponse:
    """A lead's decision: ``{"decision": "upheld" | "rejected", "answer": "no", "comment": "..."}``
    (``answer``: the right answer, needed when upheld)."""
    from pipeline.errors import ConfigError
    from pipeline.review.db import Dispute
    from pipeline.review.history import resolve_dispute

    dispute = s.get(Dispute, dispute_id)
    if dispute is None or blind(s, who[0], dispute.call_id):
        raise HTTPException(404, "no such dispute")
    body = await json_object(request, '{"decision": "upheld", "answer": "no", "comment": "..."}')
    decision = text(body, "decision", 20)
    if decision not in ("upheld", "rejected"):
        raise HTTPException(422, "decision: upheld or rejected")
    try:
        resolve_dispute(s, who[0], dispute, decision == "upheld", text(body, "answer", 10) or None,
                        text(body, "comment", 5000))
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    s.commit()
    return JSONResponse({"id": dispute.id, "state": dispute.state, "new_answer": dispute.new_answer})


def write_override(path: Path, call_id: str, agent: str) -> None:
    """Set (or, with an empty ``agent``, remove) ``call_id``'s row of a speaker-overrides CSV,
    keeping the other rows; written atomically."""
    from pipeline.interaction.writers import write_atomic

    rows: dict[str, str] = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("call_id"):
                    rows[row["call_id"]] = row.get("agent") or ""
    if agent:
        rows[call_id] = agent
    else:
        rows.pop(call_id, None)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["call_id", "agent"])
    for cid, a in rows.items():
        w.writerow([cid, a])
    write_atomic(path, buf.getvalue())


