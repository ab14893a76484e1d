"""``callqa serve``: the reviewers' web app (FastAPI on uvicorn). This module puts it together;
the routes are in ``routes_auth`` (log-in), ``routes_queue`` (the queue), ``routes_call`` (one
call), ``routes_dashboard`` (dashboards), ``routes_lead`` (sampling,
calibration), their shared dependencies in
:mod:`pipeline.review.web`, the audio rule in :mod:`pipeline.review.audio_access`.

Pages: ``/login``, ``/`` (the queue, with filters), ``/calls/{call_id}`` (audio, transcript,
scorecard suggestions with evidence, the reviewer's answers, the moments a supervisor flagged
while the call went on; for a written conversation, an e-mail thread or a chat, its messages
instead of audio and transcript); with ``--live``, ``/live`` (the live wall) and
``/live/{call_id}`` (one call in progress: live transcript, suggestions, alerts, listen-in,
flags; :mod:`pipeline.live.wall`). JSON API under ``/api``.
Calls and written conversations share the queue, the review and the dashboards; ``channel``
(``voice``, ``email``, ``chat``) filters each of them. Nothing
but the log-in page is served without a session; a reviewer sees only the calls assigned to
them, leads and admins see all; a supervisor sees the calls in progress and no recorded call.

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
is marked on the call page and in the queue. Every playback of a call's audio and every
listen-in to a call in progress is a row of the audit trail (``audio_access``, ``GET
/api/audio-access`` for leads and admins).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pipeline.review import routes_auth, routes_call, routes_dashboard, routes_insights, routes_lead, routes_queue
from pipeline.review.audio_access import database_files
from pipeline.review.db import make_engine, sessions
from pipeline.review.migrate import upgrade
from pipeline.review.hardening import SecurityHeaders
from pipeline.review.options import ReviewOptions, validate
from pipeline.review.web import HERE


def create_app(db: str | Path, secure_cookies: bool = False, options: ReviewOptions | None = None,
               live: Any = None, audiosocket: Any = None, config_file: str | Path | None = None) -> FastAPI:
    """The app over the review database ``db`` (migrated to the newest schema first);
    ``options``: the ``review`` config section (defaults: no original audio); ``live``: a
    :class:`pipeline.live.calls.LiveCalls` to receive calls in progress on (``--live``: the routes
    of :mod:`pipeline.live.routes`), else None; ``audiosocket``: with ``live``, a
    :class:`pipeline.live.audiosocket.AudioSocketSettings` to also receive Asterisk AudioSocket
    legs (``--audiosocket-port``), else None; ``config_file``: the config the insight and report
    pages read (goals, topics, pass mark; None: the defaults)."""
    options = options or ReviewOptions()
    validate(options)
    engine = make_engine(db)
    upgrade(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if live is None:
            yield
            return
        from pipeline.live.routes import expire_loop

        task = asyncio.create_task(expire_loop(live))
        listener = None
        if audiosocket is not None:
            from pipeline.live.audiosocket import AudioSocketServer

            listener = AudioSocketServer(live, audiosocket)
            await listener.start()
        try:
            yield
        finally:
            task.cancel()
            if listener is not None:
                await listener.stop()
            await asyncio.to_thread(live.stop)

    app = FastAPI(title="callqa review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine = engine
    app.state.make_session = sessions(engine)
    app.state.options = options
    app.state.protected = database_files(engine)
    app.state.secure_cookies = secure_cookies
    app.state.config_file = config_file
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")  # scripts and styles, no data
    for module in (routes_auth, routes_queue, routes_call, routes_dashboard, routes_lead, routes_insights):
        app.include_router(module.router)
    if live is not None:
        from pipeline.live import routes as live_routes
        from pipeline.live import wall

        app.state.live = live
        app.include_router(live_routes.router)
        app.include_router(wall.router)
        if live.options.out is not None and live.after_run is None:
            live.after_run = wall.result_loader(app.state.make_session, live.options.out)
    return app


def serve(db: str | Path, host: str = "127.0.0.1", port: int = 8080, secure_cookies: bool = False,
          options: ReviewOptions | None = None, live: Any = None, audiosocket: Any = None,
          config_file: str | Path | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(db, secure_cookies, options, live, audiosocket, config_file), host=host, port=port,
                log_level="warning")
