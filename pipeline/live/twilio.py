"""Twilio Media Streams: the messages a stream sends, read.

A stream is a WebSocket of JSON text messages: ``connected``; ``start`` (``streamSid``, and
``start`` with ``callSid``, ``tracks``, ``customParameters``, ``mediaFormat``); ``media`` (``media``
with ``track`` ``inbound``/``outbound``, ``chunk`` (1, 2, ... per track), ``timestamp`` (ms from
the start of the stream) and ``payload``: base64 of 8 kHz mu-law audio, 20 ms a message);
``mark``; ``dtmf``; ``stop``. See Twilio's documentation of Media Streams' WebSocket messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import CallqaError
from pipeline.ingest.paths import safe_call_id

SAMPLE_RATE = 8000
"""Twilio streams 8 kHz audio/x-mulaw."""

MAX_MESSAGE_BYTES = 64 * 1024
"""A media message carries 20 ms (160 bytes of audio); a message this long is not Twilio's."""


class StreamError(CallqaError):
    """A message that does not follow the Media Streams protocol."""


def _ulaw_table() -> np.ndarray:
    """The 16-bit linear value of each of the 256 G.711 mu-law codes."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


ULAW = _ulaw_table()


def ulaw_to_pcm16(payload: bytes) -> np.ndarray:
    """8-bit mu-law samples to 16-bit linear ones."""
    return ULAW[np.frombuffer(payload, dtype=np.uint8)]


_ULAW_ORDER = np.argsort(ULAW, kind="stable")
_ULAW_SORTED = ULAW[_ULAW_ORDER].astype(np.int32)


def pcm16_to_ulaw(pcm: np.ndarray) -> bytes:
    """16-bit linear samples to mu-law: each sample's nearest code (what a platform sends; used
    by the live benchmark and tests to play calls as Twilio would)."""
    x = np.asarray(pcm).astype(np.int32)
    i = np.clip(np.searchsorted(_ULAW_SORTED, x), 1, 255)
    nearer = np.where(np.abs(_ULAW_SORTED[i - 1] - x) <= np.abs(_ULAW_SORTED[i] - x), i - 1, i)
    return _ULAW_ORDER[nearer].astype(np.uint8).tobytes()


@dataclass
class Start:
    """What a stream's ``start`` message says."""

    stream_sid: str
    call_sid: str
    tracks: list[str]
    custom: dict[str, str] = field(default_factory=dict)

    @property
    def call_id(self) -> str:
        """``customParameters.call_id``, else the callSid; safe as a file name."""
        return safe_call_id(self.custom.get("call_id") or self.call_sid)


@dataclass
class Media:
    track: str
    chunk: int | None
    timestamp_ms: int | None
    pcm: np.ndarray


def read_message(text: str | bytes) -> dict[str, Any]:
    """One message as a dict with an ``event``."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise StreamError(f"a message of {len(text)} bytes (at most {MAX_MESSAGE_BYTES})")
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise StreamError(f"a message that is not JSON: {e}") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
        raise StreamError("a message without an event")
    return msg


def read_start(msg: dict[str, Any]) -> Start:
    start = msg.get("start")
    if not isinstance(start, dict):
        raise StreamError("a start message without its start object")
    fmt = start.get("mediaFormat") or {}
    if isinstance(fmt, dict) and fmt.get("encoding") not in (None, "audio/x-mulaw"):
        raise StreamError(f"media format {fmt.get('encoding')!r}: only audio/x-mulaw is read")
    if isinstance(fmt, dict) and fmt.get("sampleRate") not in (None, SAMPLE_RATE):
        raise StreamError(f"sample rate {fmt.get('sampleRate')!r}: only {SAMPLE_RATE} is read")
    call_sid = start.get("callSid") or msg.get("streamSid")
    if not isinstance(call_sid, str) or not call_sid:
        raise StreamError("a start message without a callSid")
    custom = start.get("customParameters") or {}
    tracks = start.get("tracks") or ["inbound"]
    return Start(str(msg.get("streamSid") or start.get("streamSid") or ""), call_sid,
                 [str(t) for t in tracks] if isinstance(tracks, list) else ["inbound"],
                 {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {})


def read_media(msg: dict[str, Any]) -> Media:
    media = msg.get("media")
    if not isinstance(media, dict):
        raise StreamError("a media message without its media object")
    track = media.get("track", "inbound")
    if track not in ("inbound", "outbound"):
        raise StreamError(f"media of track {track!r} (inbound or outbound)")
    try:
        payload = base64.b64decode(media.get("payload") or "", validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise StreamError(f"a media payload that is not base64: {e}") from e

    def number(key: str) -> int | None:
        value = media.get(key)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError) as e:
            raise StreamError(f"media {key} {value!r} is not a number") from e

    return Media(track, number("chunk"), number("timestamp"), ulaw_to_pcm16(payload))
