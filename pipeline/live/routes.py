"""The live server's routes (``callqa serve --live``): the Twilio Media Streams WebSocket
``/live/twilio`` and the JSON API ``/api/live/calls`` and ``/api/live/calls/{call_id}`` (an alert
is acknowledged at ``POST /api/live/calls/{call_id}/alerts/{key}/ack``, with the wall's routes:
:mod:`pipeline.live.wall`).

A stream must present a valid token (:mod:`pipeline.live.tokens`) as ``Authorization: Bearer
TOKEN`` or ``?token=TOKEN``; without one the WebSocket handshake is refused (HTTP 403) before any
message is read. The API has the review app's log-in and is for supervisors, leads and admins
(:func:`pipeline.review.web.supervisor`); the live wall over it is :mod:`pipeline.live.wall`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session

from pipeline.live.calls import LiveCall, LiveCalls
from pipeline.live.tokens import token_name
from pipeline.live.twilio import StreamError, read_media, read_message, read_start
from pipeline.review.flags import flags_of
from pipeline.review.web import Who, db_session, supervisor

log = logging.getLogger("callqa.live")
router = APIRouter()

EXPIRE_EVERY_S = 1.0
"""How often dropped calls are checked against the reconnect grace period."""


def _token(ws: WebSocket) -> str | None:
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return ws.query_params.get("token")


@router.websocket("/live/twilio")
async def twilio_stream(ws: WebSocket) -> None:
    live: LiveCalls = ws.app.state.live
    with ws.app.state.make_session() as session:
        source = token_name(session, _token(ws))
    if source is None:
        await ws.close(code=1008)  # before accepting: the handshake gets HTTP 403
        return
    await ws.accept()
    parties = {"inbound": live.options.inbound, "outbound": "agent" if live.options.inbound == "customer" else "customer"}
    call: LiveCall | None = None
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text") if message.get("text") is not None else message.get("bytes")
            try:
                msg = read_message(text or "")
                event = msg["event"]
                if event == "start":
                    if call is not None:
                        raise StreamError("a second start message on one stream")
                    start = read_start(msg)
                    try:
                        call = live.open(start.call_id, "twilio", start.call_sid, start.custom)
                    except ValueError as e:
                        raise StreamError(str(e)) from e
                    log.info("live: %s started (stream %s, token %s)", call.call_id, start.stream_sid, source)
                elif event == "media":
                    if call is None:
                        raise StreamError("media before the start message")
                    media = read_media(msg)
                    live.audio(call, parties[media.track], media.timestamp_ms, media.pcm)
                elif event == "stop":
                    if call is not None:
                        ended, call = call, None
                        await asyncio.to_thread(live.end, ended, "stop")
                    with contextlib.suppress(WebSocketDisconnect):  # the platform may hang up first
                        await ws.close()
                    return
            except StreamError as e:
                log.warning("live: stream refused: %s", e)
                await ws.close(code=1007, reason=str(e)[:120])
                return
    finally:
        if call is not None and call.state == "live":
            live.dropped(call)


def json_response(body: dict[str, Any]) -> Response:
    """``body`` (plain JSON types only) as a JSON response, written by ``json.dumps`` directly:
    FastAPI's generic encoder walks every value in Python first, about 50 ms for the transcript
    of a 30-minute call, and a supervisor's page or a tool polls it every second or faster."""
    return Response(json.dumps(body, ensure_ascii=False, allow_nan=False), media_type="application/json")


@router.get("/api/live/calls", response_class=Response)
def live_calls(request: Request, who: Who = Depends(supervisor)) -> Response:
    """Every call since the server started (:meth:`LiveCalls.snapshot`): ``alerts`` is the number
    of its open alerts, ``alerts_total`` of all it raised, ``alert_list`` each one's ``key``,
    ``kind``, ``at``, ``message`` and ``state``; and the live recogniser's state."""
    return json_response({"calls": request.app.state.live.snapshot(), "recognition": request.app.state.live.recognition()})


@router.get("/api/live/calls/{call_id}", response_class=Response)
def live_call(call_id: str, request: Request, who: Who = Depends(supervisor),
              s: Session = Depends(db_session)) -> Response:
    """The call's summary (``alerts_open``, ``alerts_total``), what it has said so far, every alert it raised
    (``alerts``: open and closed, each with ``key``, ``state``, ``opened_at``, ``closed_at``,
    ``closed_by``), and the moments flagged in it."""
    call = request.app.state.live.get(call_id)
    if call is None:
        raise HTTPException(404, "no such live call")
    view = request.app.state.live.view(call)  # first: the word alerts brought up to date
    summary = call.summary()
    return json_response({**summary, "alerts_open": summary["alerts"], **view,
                          "listeners": request.app.state.live.listeners.count(call_id), "flags": flags_of(s, call_id)})


async def expire_loop(live: LiveCalls) -> None:
    """End the calls whose stream dropped longer than the grace period ago, and bring every
    call's word alerts up to its latest analysis (:meth:`LiveCalls.watch`), until cancelled."""
    while True:
        await asyncio.sleep(EXPIRE_EVERY_S)
        await asyncio.to_thread(live.expire)
        try:
            await asyncio.to_thread(live.watch)
        except Exception:  # the next round tries again; a call's alerts never stop its expiry
            log.exception("live: the word alerts could not be brought up to date")
