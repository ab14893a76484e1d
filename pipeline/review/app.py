"""``callqa serve``: the reviewers' web app (FastAPI on uvicorn).

Pages: ``/login``, ``/`` (the queue, with filters), ``/calls/{call_id}`` (audio, transcript,
scorecard suggestions with evidence, the reviewer's answers). JSON API under ``/api``. Nothing
but the log-in page is served without a session; a reviewer sees only the calls assigned to
them, leads and admins see all.

Security: sessions are random tokens in an HttpOnly, SameSite=Strict cookie, stored hashed
(``web_sessions``) with an expiry; every state-changing request must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``), and the log-in form a
double-submit token; passwords are checked against scrypt hashes, with the same work for an
unknown name. Failed log-ins are counted per name and per client address in the database, and
too many lock the log-in for a while (:mod:`pipeline.review.throttle`). Every response carries
a Content-Security-Policy without inline scripts or styles (the pages' scripts and styles are
files under ``static/``) and the other security headers; JSON bodies are read by
:func:`~pipeline.review.hardening.json_object`, so a malformed one gets 4xx, never 500. Saves
carry the review's version: a save based on an older version is refused with 409 and the
current answers, so the second editor loses nothing and overwrites nothing.

Honest reviews: the page pre-selects no answer (a submit needs every item answered; one-click
accept only for the templates in ``review.one_click_accept``), a calibration scorer sees no
suggestion and no other scorer's answers, every submitted version is kept and shown with its
disputes (:mod:`pipeline.review.history`), and a role swap records who made it and when.

Audio is private by default: the audio route plays the masked copy of the call
(``audio_redacted.wav``, every PII span under a tone or silence) and nothing else unless the
admin sets ``review.allow_original_audio``; even then only an audio file under the input roots
of the run that produced the call (kept by the loader from ``run.json``), never the database,
and no path comes from the request (:func:`playable_audio`). A call whose text is not redacted
is marked on the call page and in the queue.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pipeline.review.db import (
    Assignment, Call, Review, User, WebSession, make_engine, sessions, upgrade, utcnow,
)
from pipeline.review import throttle
from pipeline.review.hardening import MAX_INT, SecurityHeaders, json_object, names, text, whole_number
from pipeline.review import reviews
from pipeline.review.options import ReviewOptions, validate
from pipeline.review.users import authenticate

COOKIE = "callqa_session"
LOGIN_CSRF_COOKIE = "callqa_login_csrf"
SESSION_HOURS = 12
LOCKED = "Too many failed log-ins for this user name or from this address: log-in is paused; try again later."
SPEAKER_CHOICES = ("swap", "left", "right", "S0", "S1", "S2", "S3")
HERE = Path(__file__).resolve().parent
REDACTED_AUDIO = "audio_redacted.wav"
"""The masked copy a run writes beside call.json (pipeline/call.py)."""
MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".opus": "audio/ogg", ".m4a": "audio/mp4"}


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def database_files(engine: Any) -> set[Path]:
    """The files of a SQLite database (with its journals), which no route may serve."""
    name = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not name:
        return set()
    base = Path(name).resolve()
    return {base} | {base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal")}


def playable_audio(call: Call, options: ReviewOptions, protected: set[Path]) -> Path:
    """The file the audio route may send for ``call``: its masked copy; else, only when
    ``options.allow_original_audio``, the original recording if it is a regular audio file
    under one of the run's input roots. HTTPException (403 or 404, saying why) otherwise."""
    from pipeline.ingest import AUDIO_EXTENSIONS

    calls_dir = (Path(call.out_dir) / "calls").resolve()
    masked = (calls_dir / call.call_id / REDACTED_AUDIO).resolve()
    if masked.is_file() and _within(masked, calls_dir) and masked not in protected:
        return masked
    if not options.allow_original_audio:
        why = ("its text is redacted but the run wrote no masked copy of its audio (run it again with "
               "pii.redact_audio on, the default)") if call.pii_redacted else "its text is not redacted"
        raise HTTPException(403, f"no masked audio for this call: {why}; the original recording is played only "
                                 "when an admin sets review.allow_original_audio")
    roots = [Path(r).resolve() for r in (call.input_roots or [])]
    if not roots:
        raise HTTPException(403, "the run did not record its input folders: load it again with "
                                 "'callqa db load' after a run of this version")
    if not call.audio_path:
        raise HTTPException(404, "the run recorded no recording for this call")
    path = Path(call.audio_path).resolve()
    if path in protected or path.suffix.lower() not in AUDIO_EXTENSIONS or not any(_within(path, r) for r in roots):
        raise HTTPException(403, "the call's recording is not an audio file under the run's input folders")
    if not path.is_file():
        raise HTTPException(404, "the recording is not where the run found it")
    return path


def create_app(db: str | Path, secure_cookies: bool = False, options: ReviewOptions | None = None) -> FastAPI:
    """The app over the review database ``db`` (migrated to the newest schema first);
    ``options``: the ``review`` config section (defaults: no original audio)."""
    options = options or ReviewOptions()
    validate(options)
    engine = make_engine(db)
    upgrade(engine)
    protected = database_files(engine)
    make_session = sessions(engine)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app = FastAPI(title="callqa review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")  # scripts and styles, no data

    def db_session():  # noqa: ANN202 - a FastAPI dependency
        with make_session() as s:
            yield s

    def current(request: Request, s: Session = Depends(db_session)) -> tuple[User, WebSession]:
        token = request.cookies.get(COOKIE)
        row = s.get(WebSession, _sha(token)) if token else None
        if row is None or _aware(row.expires_at) < utcnow():
            wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
            raise HTTPException(303 if wants_html else 401, "log in first", headers={"Location": "/login"})
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            raise HTTPException(401, "log in first")
        return user, row

    async def check_csrf(request: Request, who: tuple[User, WebSession] = Depends(current)) -> tuple[User, WebSession]:
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            sent = (await request.form()).get("csrf_token")
        if not sent or not secrets.compare_digest(str(sent).encode(), who[1].csrf_token.encode()):
            raise HTTPException(403, "missing or wrong CSRF token")
        return who

    def visible_calls(user: User) -> Select:
        q = select(Call)
        if user.role == "reviewer":
            q = q.join(Assignment, Assignment.call_id == Call.call_id).where(Assignment.reviewer_id == user.id)
        return q

    def call_for(s: Session, user: User, call_id: str) -> Call:
        call = s.scalar(visible_calls(user).where(Call.call_id == call_id))
        if call is None:  # not there, or not this reviewer's: the same answer, so ids do not leak
            raise HTTPException(404, "no such call in your queue")
        return call

    # -- log-in ---------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        resp = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": None})
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies)
        return resp

    @app.post("/login")
    def login(request: Request, username: str = Form(...), password: str = Form(...), csrf_token: str = Form(""),
              s: Session = Depends(db_session)) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
            raise HTTPException(403, "missing or wrong CSRF token")
        keys = throttle.keys_for(username, request.client.host if request.client else None)
        if throttle.locked(s, keys):  # refused before the password is checked, the right one too
            return templates.TemplateResponse(request, "login.html", {"csrf": cookie, "error": LOCKED}, status_code=429)
        user = authenticate(s, username, password)
        if user is None:
            now_locked = throttle.record_failure(s, keys, options)
            s.commit()
            return templates.TemplateResponse(request, "login.html", {
                "csrf": cookie, "error": LOCKED if now_locked else "Wrong user name or password."},
                status_code=429 if now_locked else 401)
        throttle.record_success(s, keys)
        token = secrets.token_urlsafe(32)
        s.add(WebSession(token_sha256=_sha(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                         expires_at=utcnow() + timedelta(hours=SESSION_HOURS)))
        s.commit()
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies,
                        max_age=SESSION_HOURS * 3600)
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    @app.post("/logout")
    def logout(who: tuple[User, WebSession] = Depends(check_csrf), s: Session = Depends(db_session)) -> Response:
        row = s.get(WebSession, who[1].token_sha256)
        if row is not None:
            s.delete(row)
            s.commit()
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    # -- the queue --------------------------------------------------------------------------------

    def queue_rows(s: Session, user: User, f: dict[str, str]) -> list[dict[str, Any]]:
        q = visible_calls(user)
        if f.get("agent"):
            q = q.where(Call.agent_id == f["agent"])
        if f.get("queue"):
            q = q.where(Call.queue == f["queue"])
        if f.get("date_from"):
            q = q.where(Call.started_at >= f["date_from"])
        if f.get("date_to"):
            q = q.where(Call.started_at < f["date_to"] + "\uffff")
        for key, op in (("score_min", "__ge__"), ("score_max", "__le__")):
            if f.get(key):
                try:
                    q = q.where(getattr(Call.score, op)(float(f[key])))
                except ValueError:
                    raise HTTPException(422, f"{key}: not a number") from None
        if f.get("auto_fail") in ("1", "true", "yes"):
            q = q.where(Call.auto_fail.is_(True))
        if f.get("low_confidence") in ("1", "true", "yes"):
            q = q.where(Call.low_confidence_items > 0)
        if f.get("negative") in ("1", "true", "yes"):
            q = q.where(Call.customer_sentiment_end < -0.3)
        mine = {r.call_id: r for r in s.scalars(select(Review).where(Review.reviewer_id == user.id))}
        submitted = {cid for cid in s.scalars(select(Review.call_id).where(Review.state == "submitted"))}
        # a calibration call is "reviewed" for its scorer only once they submit: the others' reviews do not count
        calibrating = set(s.scalars(select(Assignment.call_id).where(Assignment.reviewer_id == user.id,
                                                                     Assignment.calibration_id.is_not(None))))
        rows = []
        for call in s.scalars(q.order_by(Call.started_at.desc(), Call.call_id)):
            review = mine.get(call.call_id)
            if call.call_id in calibrating:
                reviewed = review is not None and review.state == "submitted"
            else:
                reviewed = call.call_id in submitted
            if f.get("reviewed") == "yes" and not reviewed or f.get("reviewed") == "no" and reviewed:
                continue
            rows.append({"call_id": call.call_id, "agent_id": call.agent_id, "queue": call.queue,
                         "started_at": call.started_at, "duration_s": call.duration_s, "score": call.score,
                         "auto_fail": call.auto_fail, "low_confidence_items": call.low_confidence_items,
                         "customer_sentiment_end": call.customer_sentiment_end, "reviewed": reviewed,
                         "my_review": review.state if review else None, "pii_redacted": bool(call.pii_redacted)})
        return rows

    FILTERS = ("agent", "queue", "date_from", "date_to", "score_min", "score_max", "auto_fail", "low_confidence",
               "negative", "reviewed")

    @app.get("/api/calls")
    def api_calls(request: Request, who: tuple[User, WebSession] = Depends(current),
                  s: Session = Depends(db_session)) -> JSONResponse:
        from pipeline.review.calibration import to_do

        f = {k: request.query_params.get(k, "") for k in FILTERS}
        return JSONResponse({"calls": queue_rows(s, who[0], f), "to_do": to_do(s, who[0].id)})

    @app.get("/", response_class=HTMLResponse)
    def queue_page(request: Request, who: tuple[User, WebSession] = Depends(current),
                   s: Session = Depends(db_session)) -> Response:
        from pipeline.review.calibration import to_do

        f = {k: request.query_params.get(k, "") for k in FILTERS}
        return templates.TemplateResponse(request, "queue.html", {
            "user": who[0], "csrf": who[1].csrf_token, "rows": queue_rows(s, who[0], f), "f": f,
            "to_do": to_do(s, who[0].id)})

    # -- one call ---------------------------------------------------------------------------------

    def call_record(call: Call) -> dict[str, Any]:
        path = Path(call.out_dir) / "calls" / call.call_id / "call.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
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
        (but a calibration scorer only their own); a reviewer their own and the final ones."""
        from pipeline.review.history import disputes, submissions

        rows = submissions(s, call.call_id)
        if is_blind:
            rows = [r for r in rows if r["reviewer"] == user.username]
        elif user.role not in ("lead", "admin"):
            rows = [r for r in rows if r["reviewer"] == user.username or r["final"]]
        return {"submissions": rows, "disputes": disputes(s, call.call_id, [r["id"] for r in rows]),
                "can_resolve": user.role in ("lead", "admin") and not is_blind}

    def call_payload(s: Session, user: User, call: Call) -> dict[str, Any]:
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
        return {
            "call_id": call.call_id, "agent_id": call.agent_id, "queue": call.queue, "started_at": call.started_at,
            "duration_s": call.duration_s, "score": call.score, "auto_fail": call.auto_fail,
            "pii_redacted": bool(call.pii_redacted), "audio": audio_state(call),
            "speakers": {k: record.get("speakers", {}).get(k) for k in ("method", "roles", "override", "confidence")},
            "utterances": [{k: u.get(k) for k in ("id", "role", "speaker", "start", "end", "text")}
                           for u in record.get("utterances", [])],
            "items": items,
            "blind": is_blind, "one_click_accept": not is_blind and options.allows_one_click(call.template),
            "can_mark_final": user.role in ("lead", "admin"),
            "review": {"state": review.state if review else None, "version": review.version if review else 0,
                       "comment": review.comment if review else "", "answers": answers,
                       "final": bool(review and review.final)},
            "trail": review_trail(s, user, call, is_blind),
            "speaker_swap": current_swap(s, call),
        }

    def audio_state(call: Call) -> dict[str, Any]:
        """Whether the audio route will play something, what, and if not why."""
        try:
            path = playable_audio(call, options, protected)
        except HTTPException as e:
            return {"playable": False, "masked": False, "reason": e.detail}
        return {"playable": True, "masked": path.name == REDACTED_AUDIO, "reason": None}

    @app.get("/api/calls/{call_id}")
    def api_call(call_id: str, who: tuple[User, WebSession] = Depends(current),
                 s: Session = Depends(db_session)) -> JSONResponse:
        return JSONResponse(call_payload(s, who[0], call_for(s, who[0], call_id)))

    @app.get("/calls/{call_id}", response_class=HTMLResponse)
    def call_page(request: Request, call_id: str, who: tuple[User, WebSession] = Depends(current),
                  s: Session = Depends(db_session)) -> Response:
        payload = call_payload(s, who[0], call_for(s, who[0], call_id))
        return templates.TemplateResponse(request, "call.html", {
            "user": who[0], "csrf": who[1].csrf_token, "call": payload, "payload_json": json.dumps(payload).replace("<", "\\u003c")})  # no "</script>" inside the script

    @app.get("/calls/{call_id}/audio")
    def audio(call_id: str, who: tuple[User, WebSession] = Depends(current), s: Session = Depends(db_session)) -> Response:
        """The call's masked audio (see :func:`playable_audio`); range requests work."""
        path = playable_audio(call_for(s, who[0], call_id), options, protected)
        media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})

    @app.put("/api/calls/{call_id}/review")
    async def save_review(call_id: str, request: Request, who: tuple[User, WebSession] = Depends(check_csrf),
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
            one_click = options.allows_one_click(call.template) and not blind(s, user, call.call_id)
            review = reviews.save_review(s, user, call, edit, one_click=one_click)
        except reviews.InvalidEdit as e:
            raise HTTPException(422, str(e)) from None
        except reviews.ReviewConflict as e:
            return JSONResponse(status_code=409, content={"error": str(e), "reason": e.reason,
                                                          "current": call_payload(s, user, call)["review"]})
        return JSONResponse({"version": review.version, "state": review.state})

    @app.post("/api/calls/{call_id}/speakers")
    async def swap_speakers(call_id: str, request: Request, who: tuple[User, WebSession] = Depends(check_csrf),
                            s: Session = Depends(db_session)) -> JSONResponse:
        """Write the manual role decision the pipeline honours on its next run
        (``OUT/speaker_overrides.csv``: ``swap``, a speaker id or ``left``/``right``; empty removes it)."""
        call = call_for(s, who[0], call_id)
        agent = text(await json_object(request, '{"agent": "swap"}'), "agent")
        if agent and agent not in SPEAKER_CHOICES:
            raise HTTPException(422, f"agent: one of {', '.join(SPEAKER_CHOICES)}, or empty to remove the override")
        return set_speakers(s, who[0], call, agent)

    @app.post("/api/calls/{call_id}/speakers/undo")
    def undo_speakers(call_id: str, who: tuple[User, WebSession] = Depends(check_csrf),
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
        from pipeline.speakers import read_overrides

        path = Path(call.out_dir) / "speaker_overrides.csv"
        previous = read_overrides(path).get(call.call_id, "") if path.is_file() else ""
        write_override(path, call.call_id, agent)
        record_swap(s, user, call, agent, previous)
        s.commit()
        return JSONResponse({"call_id": call.call_id, "agent": agent or None, "swap": current_swap(s, call),
                             "note": "applied when the pipeline next runs over this folder"})

    # -- submitted reviews and disputes -----------------------------------------------------------

    def lead(who: tuple[User, WebSession] = Depends(current)) -> tuple[User, WebSession]:
        if who[0].role not in ("lead", "admin"):
            raise HTTPException(403, "for leads and admins")
        return who

    def lead_csrf(who: tuple[User, WebSession] = Depends(check_csrf)) -> tuple[User, WebSession]:
        return lead(who)

    @app.get("/api/calls/{call_id}/reviews")
    def api_reviews(call_id: str, who: tuple[User, WebSession] = Depends(current),
                    s: Session = Depends(db_session)) -> JSONResponse:
        """Every submitted review version the user may see, which one counts, and the disputes."""
        call = call_for(s, who[0], call_id)
        return JSONResponse(review_trail(s, who[0], call, blind(s, who[0], call_id)))

    @app.post("/api/calls/{call_id}/disputes")
    async def api_dispute(call_id: str, request: Request, who: tuple[User, WebSession] = Depends(check_csrf),
                          s: Session = Depends(db_session)) -> JSONResponse:
        """Dispute one answer of a submitted review version the user can see: ``{"submission_id",
        "item_id", "reason", "proposed": "yes" | "no" | "na" | null}``."""
        from pipeline.errors import ConfigError
        from pipeline.review.db import ReviewSubmission
        from pipeline.review.history import raise_dispute

        user = who[0]
        call = call_for(s, user, call_id)
        body = await json_object(request, '{"submission_id": 1, "item_id": "...", "reason": "...", "proposed": "no"}')
        sub_id = whole_number(body, "submission_id", 0, low=1)
        visible = {r["id"] for r in review_trail(s, user, call, blind(s, user, call_id))["submissions"]}
        submission = s.get(ReviewSubmission, sub_id) if sub_id in visible else None
        if submission is None or submission.call_id != call.call_id:
            raise HTTPException(404, "no such submitted review of this call")
        try:
            dispute = raise_dispute(s, user, submission, text(body, "item_id"), text(body, "reason", 5000),
                                    text(body, "proposed", 10) or None)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        s.commit()
        return JSONResponse({"id": dispute.id, "state": dispute.state})

    @app.post("/api/disputes/{dispute_id}/resolve")
    async def api_resolve(dispute_id: Annotated[int, FastPath(ge=1, le=MAX_INT)], request: Request,
                          who: tuple[User, WebSession] = Depends(lead_csrf),
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

    # -- leads: dashboards, sampling, calibration -------------------------------------------------

    def period(request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "") for k in ("start", "end", "team", "agent", "bucket")}

    @app.get("/api/dashboard")
    def api_dashboard(request: Request, who: tuple[User, WebSession] = Depends(lead),
                      s: Session = Depends(db_session)) -> JSONResponse:
        return JSONResponse(dashboard_data(s, period(request)))

    @app.get("/dashboard.csv")
    def dashboard_csv(request: Request, who: tuple[User, WebSession] = Depends(lead),
                      s: Session = Depends(db_session)) -> Response:
        from pipeline.review.dashboards import to_csv

        rows = dashboard_data(s, period(request))["agents"]
        return Response(to_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="agents.csv"'})

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page(request: Request, who: tuple[User, WebSession] = Depends(lead),
                       s: Session = Depends(db_session)) -> Response:
        from pipeline.evaluation.plots import bar_chart

        f = period(request)
        data = dashboard_data(s, f)
        plots = [
            bar_chart([r["period"] for r in data["trend"]], [r["mean_score"] for r in data["trend"]],
                      "Mean automatic score per period", max_value=1.0, fmt="{:.0%}"),
            bar_chart([r["period"] for r in data["trend"]], [r["mean_reviewed_score"] for r in data["trend"]],
                      "Mean reviewed score per period", max_value=1.0, fmt="{:.0%}"),
            bar_chart(list(data["agreement"]), [a.get("accuracy") for a in data["agreement"].values()],
                      "Automatic vs human agreement per item", max_value=1.0, fmt="{:.0%}"),
        ]
        return templates.TemplateResponse(request, "dashboard.html", {
            "user": who[0], "csrf": who[1].csrf_token, "data": data, "f": f, "plots": plots,
            "query": str(request.url.query)})

    @app.post("/api/sample")
    async def api_sample(request: Request, who: tuple[User, WebSession] = Depends(lead_csrf),
                         s: Session = Depends(db_session)) -> JSONResponse:
        """Plan (``apply: false``) or make a sample: ``{per_agent, start, end, reviewers: [names],
        seed, low_confidence_min, apply}``."""
        from pipeline.errors import ConfigError
        from pipeline.review.sampling import assignment_rows, plan_sample

        body = await json_object(request, '{"per_agent": 2, "start": "2026-11-01", "end": "", "reviewers": '
                                          '["name"], "seed": 0, "low_confidence_min": 1, "apply": false}')
        if not isinstance(body.get("apply", False), bool):
            raise HTTPException(422, "apply: true or false")
        try:
            made = plan_sample(s, whole_number(body, "per_agent", 2), text(body, "start", 40) or None,
                               text(body, "end", 40) or None, names(body, "reviewers"),
                               whole_number(body, "seed", 0), whole_number(body, "low_confidence_min", 1),
                               created_by=who[0].id, apply=body.get("apply", False))
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        rows = assignment_rows(s, made)
        if body.get("apply"):
            s.commit()
        return JSONResponse({"applied": bool(body.get("apply")), "assignments": rows})

    @app.post("/api/calibrations")
    async def api_new_calibration(request: Request, who: tuple[User, WebSession] = Depends(lead_csrf),
                                  s: Session = Depends(db_session)) -> JSONResponse:
        from pipeline.errors import ConfigError
        from pipeline.review.calibration import create_calibration

        body = await json_object(request, '{"name": "...", "call_id": "...", "reviewers": ["name", "name"]}')
        try:
            cal = create_calibration(s, text(body, "name"), text(body, "call_id"), names(body, "reviewers"),
                                     created_by=who[0].id)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        s.commit()
        return JSONResponse({"id": cal.id})

    @app.get("/api/calibrations/{cal_id}")
    def api_calibration(cal_id: Annotated[int, FastPath(ge=1, le=MAX_INT)],
                        who: tuple[User, WebSession] = Depends(lead), s: Session = Depends(db_session)) -> JSONResponse:
        from pipeline.errors import ConfigError
        from pipeline.review.calibration import calibration_result

        try:
            return JSONResponse(calibration_result(s, cal_id))
        except ConfigError as e:
            raise HTTPException(404, str(e)) from None

    @app.get("/api/calibrations")
    def api_calibration_report(who: tuple[User, WebSession] = Depends(lead),
                               s: Session = Depends(db_session)) -> JSONResponse:
        from pipeline.review.calibration import calibration_report

        return JSONResponse(calibration_report(s))

    @app.get("/sample", response_class=HTMLResponse)
    def sample_page(request: Request, who: tuple[User, WebSession] = Depends(lead),
                    s: Session = Depends(db_session)) -> Response:
        reviewers = [u.username for u in s.scalars(select(User).where(User.role.in_(("reviewer", "lead")),
                                                                      User.active.is_(True)).order_by(User.username))]
        return templates.TemplateResponse(request, "sample.html", {
            "user": who[0], "csrf": who[1].csrf_token, "reviewers": reviewers})

    @app.get("/calibrations", response_class=HTMLResponse)
    def calibrations_page(request: Request, who: tuple[User, WebSession] = Depends(lead),
                          s: Session = Depends(db_session)) -> Response:
        from pipeline.review.calibration import calibration_report, calibration_result
        from pipeline.review.db import Calibration

        results = [calibration_result(s, c.id) for c in s.scalars(select(Calibration).order_by(Calibration.id))]
        reviewers = [u.username for u in s.scalars(select(User).where(User.role.in_(("reviewer", "lead")),
                                                                      User.active.is_(True)).order_by(User.username))]
        return templates.TemplateResponse(request, "calibrations.html", {
            "user": who[0], "csrf": who[1].csrf_token, "results": results, "report": calibration_report(s),
            "reviewers": reviewers, "calls": list(s.scalars(select(Call.call_id).order_by(Call.call_id)))})

    return app


def dashboard_data(s: Session, f: dict[str, str]) -> dict[str, Any]:
    """Agent KPIs, the trend and automatic-vs-human agreement for a period (``start``/``end``),
    team (queue) and agent."""
    from pipeline.errors import ConfigError
    from pipeline.review.dashboards import agent_kpis, agreement_by_item, trend

    start, end, team = f.get("start") or None, f.get("end") or None, f.get("team") or None
    try:
        return {
            "agents": agent_kpis(s, start, end, team),
            "trend": trend(s, f.get("agent") or None, f.get("bucket") or "week", start, end, team),
            "agreement": agreement_by_item(s, start, end),
        }
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None


def write_override(path: Path, call_id: str, agent: str) -> None:
    """Set (or, with an empty ``agent``, remove) ``call_id``'s row of a speaker-overrides CSV,
    keeping the other rows; written atomically."""
    from pipeline.writers import write_atomic

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


def serve(db: str | Path, host: str = "127.0.0.1", port: int = 8080, secure_cookies: bool = False,
          options: ReviewOptions | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(db, secure_cookies, options), host=host, port=port, log_level="warning")

