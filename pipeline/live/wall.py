"""The live wall of the web app (``callqa serve --live``): supervisors, leads and admins see the
calls in progress, open one, listen in and flag moments.

- ``GET /live``: the wall, every call since the server started (calls in progress first) with
  agent, queue, duration, customer sentiment and alerts, polled from ``GET /api/live/calls``
  every second (``static/live.js``).
- ``GET /live/{call_id}``: one call, polled from ``GET /api/live/calls/{call_id}`` every second
  (``static/live_call.js``): the live transcript (confirmed words plain, unconfirmed ones marked
  partial), the scorecard items answered so far with their evidence, the alerts with theirs, the
  moments flagged; listen-in (``static/listen.js``).
- ``WS /live/listen/{call_id}``: the call's audio as it arrives (:mod:`pipeline.live.listen`),
  for the session cookie of a supervisor, lead or admin, refused before the handshake completes
  otherwise (HTTP 403; 404 for a call not in progress); each listen-in is a row of the audit
  trail (``audio_access``, kind ``listen``) with its start, end and the seconds relayed.
- ``POST /api/live/calls/{call_id}/flags`` (with the session's CSRF token): ``{"note": "...",
  "at": 12.5}`` flags a moment (``at`` omitted: the call's current moment, the end of the audio
  received so far); ``GET`` lists them. The call's review page shows them once its result is
  loaded (:func:`result_loader`).
- ``POST /api/live/calls/{call_id}/alerts/{key}/ack`` (with the session's CSRF token, no body):
  a supervisor acknowledges an open alert (:func:`acknowledge_alert`); the call page shows an
  "Acknowledge" button on each open alert, closed ones muted with who or what closed them.

Every other role is refused (403); nothing here is served without a session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pipeline.live.analysis import AlertClosed, NoSuchAlert
from pipeline.live.calls import LiveCall, LiveCalls
from pipeline.live.listen import FRAME_DOC, Listener
from pipeline.live.options import PARTIES
from pipeline.live.twilio import SAMPLE_RATE
from pipeline.review.audio_access import end_access, record_access
from pipeline.review.db import LIVE_ROLES, User
from pipeline.review.flags import MAX_NOTE, add_flag, flags_of
from pipeline.review.hardening import json_object, text
from pipeline.review.web import Who, db_session, supervisor, supervisor_csrf, templates, websocket_user

log = logging.getLogger("callqa.live")
router = APIRouter()

FLAG_SLACK_S = 1.0
"""A flag may be this far past the audio received so far (the page's clock runs a little ahead)."""


def _call(request: Request, call_id: str) -> LiveCall:
    call = request.app.state.live.get(call_id)
    if call is None:
        raise HTTPException(404, "no such live call")
    return call


@router.get("/live", response_class=HTMLResponse)
def wall_page(request: Request, who: Who = Depends(supervisor)) -> Response:
    return templates.TemplateResponse(request, "live.html", {"user": who[0], "csrf": who[1].csrf_token})


@router.get("/live/{call_id}", response_class=HTMLResponse)
def live_call_page(request: Request, call_id: str, who: Who = Depends(supervisor)) -> Response:
    call = _call(request, call_id)
    payload = {"call_id": call.call_id, "sample_rate": SAMPLE_RATE, "parties": list(PARTIES)}
    return templates.TemplateResponse(request, "live_call.html", {
        "user": who[0], "csrf": who[1].csrf_token, "call": call.summary(),
        "payload_json": json.dumps(payload).replace("<", "\\u003c")})


@router.get("/api/live/calls/{call_id}/flags")
def list_flags(call_id: str, request: Request, who: Who = Depends(supervisor),
               s: Session = Depends(db_session)) -> dict[str, Any]:
    _call(request, call_id)
    return {"flags": flags_of(s, call_id)}


@router.post("/api/live/calls/{call_id}/flags")
async def flag_moment(call_id: str, request: Request, who: Who = Depends(supervisor_csrf),
                      s: Session = Depends(db_session)) -> JSONResponse:
    """Flag a moment of the call: ``{"note": "...", "at": seconds | null}`` (null or absent: now)."""
    call = _call(request, call_id)
    body = await json_object(request, '{"note": "customer asks for a manager", "at": 12.5}')
    note = text(body, "note", MAX_NOTE).strip()
    received = call.recording.seconds()
    at = body.get("at")
    if at is None:
        at = received
    elif isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) \
            or not 0 <= at <= received + FLAG_SLACK_S:
        raise HTTPException(422, f"at: seconds from the call's start, 0 to {received:.1f} (the audio so far), "
                                 "or null for now")
    user = who[0]

    def store() -> dict[str, Any]:  # off the event loop: the calls' audio comes in on it
        flag = add_flag(s, user, call_id, float(at), note)
        s.commit()
        return {"id": flag.id, "at": flag.at_s, "note": flag.note, "author": user.username,
                "created_at": flag.created_at.isoformat()}

    return JSONResponse(await run_in_threadpool(store), status_code=201)


@router.post("/api/live/calls/{call_id}/alerts/{key}/ack")
def acknowledge_alert(call_id: str, key: str, request: Request, who: Who = Depends(supervisor_csrf)) -> dict[str, Any]:
    """Acknowledge an open alert of the call: it is closed, ``closed_by`` the user's name and
    ``closed_at`` the call's current moment (the audio received so far); the answer is the
    alert as it is now. 404 for an unknown call or alert key. An alert closed already (by its
    condition, or acknowledged by someone else or by an earlier click) is not changed: 409, with
    the alert as it is (``{"detail": ..., "alert": {...}}``), so a second supervisor learns who
    closed it first and the record of who acknowledged stays the first one's."""
    call = _call(request, call_id)
    live: LiveCalls = request.app.state.live
    try:
        return live.acknowledge(call, key, who[0].username)
    except NoSuchAlert:
        raise HTTPException(404, "no such alert in this call") from None
    except AlertClosed as e:
        return JSONResponse({"detail": str(e), "alert": e.alert}, status_code=409)


async def _refuse(ws: WebSocket, status: int, why: str) -> None:
    """Refuse a WebSocket handshake with an HTTP status (where the server can send one; else 403)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(PlainTextResponse(why, status_code=status))
    else:
        await ws.close(code=1008, reason=why[:120])


@router.websocket("/live/listen/{call_id}")
async def listen_in(ws: WebSocket, call_id: str) -> None:
    """Relay the call's audio to a supervisor (see :mod:`pipeline.live.listen` for the format)."""
    live: LiveCalls = ws.app.state.live
    make_session = ws.app.state.make_session

    def who() -> User | None:
        with make_session() as s:
            user = websocket_user(ws, s, LIVE_ROLES)
            if user is not None:
                s.expunge(user)
            return user

    user = await asyncio.to_thread(who)
    if user is None:
        await ws.close(code=1008)  # before accepting: the handshake gets HTTP 403
        return
    call = live.get(call_id)
    if call is None or call.state != "live":
        await _refuse(ws, 404, "no such call in progress")
        return
    try:
        listener = live.listen(call_id)
    except ValueError as e:
        await _refuse(ws, 503, str(e))
        return
    client = ws.client.host if ws.client else None

    def opened() -> int:
        with make_session.begin() as s:
            return record_access(s, user.id, call_id, "listen", "listening", client).id

    access_id: int | None = None

    async def finish() -> None:
        """The audit row is closed once, before the listener hears that the call ended."""
        nonlocal access_id
        live.listeners.remove(listener)
        if access_id is not None:
            done, access_id = access_id, None
            await asyncio.to_thread(_closed, make_session, done, listener.stats())

    try:
        access_id = await asyncio.to_thread(opened)
        await ws.accept()
        log.info("live: %s listens to %s", user.username, call_id)
        await ws.send_text(json.dumps({"call_id": call_id, "sample_rate": SAMPLE_RATE, "parties": list(PARTIES),
                                       "frame": FRAME_DOC, "at": round(call.recording.seconds(), 3)}))
        await _relay(ws, listener, finish)
    except WebSocketDisconnect:  # the browser went before the first message
        pass
    finally:
        await finish()


def _closed(make_session: Any, access_id: int, stats: dict[str, float]) -> None:
    """The listen-in's row of the audit trail: when it ended and what it relayed."""
    detail = f"listen-in: {stats['relayed_s']:.1f} s of the call relayed"
    if stats["dropped_s"]:
        detail += f", {stats['dropped_s']:.1f} s of audio dropped (the listener was too slow)"
    with make_session.begin() as s:
        end_access(s, access_id, stats["relayed_s"], detail)


async def _relay(ws: WebSocket, listener: Listener, finish: Callable[[], Awaitable[None]]) -> None:
    """Send the listener's audio until the call ends (then ``finish`` runs before the close, so
    the audit trail is complete when the listener hears it) or the browser goes."""

    async def pump() -> None:
        while (data := await listener.take()) is not None:
            await ws.send_bytes(data)
        await finish()
        await ws.close(code=1000, reason="the call ended")

    async def drain() -> None:  # the browser sends nothing; this notices when it goes
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def result_loader(make_session: Any, out: str) -> Callable[[str], None]:
    """What a live server does after a call's batch run: load that call's result from ``out``
    into its review database, so the call (with its flags) is in the review queue."""
    from pipeline.review.loader import load_results

    def load(call_id: str) -> None:
        with make_session.begin() as s:
            load_results(s, Path(out), [call_id])

    return load
