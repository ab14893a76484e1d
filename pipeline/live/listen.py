"""Listen-in: a call's audio relayed, as it arrives, to the supervisors listening to it.

Every chunk of a party's audio that reaches :meth:`pipeline.live.calls.LiveCalls.audio` (Twilio
and AudioSocket alike) is framed once (:func:`frame`) and offered to each :class:`Listener` of
the call. Offering never waits: each listener holds at most :data:`QUEUE_S` seconds of audio per
party, and when a listener is slower than the call (a slow network, a stalled browser) its oldest
audio is dropped, so that the call, its recording and the other listeners are never held back and
what the listener hears stays close to live.

The WebSocket ``/live/listen/{call_id}`` (:mod:`pipeline.live.wall`) sends a JSON text message
first (``{"call_id", "sample_rate": 8000, "parties": ["agent", "customer"], "frame": ...}``),
then binary messages, each one or more frames back to back: a frame is an 8-byte header
(little-endian ``uint32`` the chunk's first sample in the call, ``uint16`` its number of samples,
``uint8`` the party, 0 agent and 1 customer, ``uint8`` 0) and the chunk's samples (``int16``
little-endian, 8 kHz). The browser places each frame by its sample number, so a gap (audio
dropped, or not sent) stays silent and the parties stay aligned.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import deque
import numpy as np

from pipeline.live.options import PARTIES
from pipeline.live.twilio import SAMPLE_RATE

QUEUE_S = 2.0
"""Seconds of audio per party a listener may have waiting; beyond, its oldest audio is dropped."""
MAX_LISTENERS = 16
"""Listeners of one call at once (each costs a copy of the call's audio per chunk)."""
HEADER = struct.Struct("<IHBB")
FRAME_DOC = "uint32 first sample, uint16 samples, uint8 party (0 agent, 1 customer), uint8 0; int16 LE samples"
MAX_FRAME = 65535
"""Samples in one frame (the header's ``uint16``); a longer chunk is framed in pieces."""


Frame = tuple[bytes, int, int]
"""A frame's bytes, its number of samples and its party's number."""


def frame(party: str, place: int, pcm: np.ndarray) -> list[Frame]:
    """``pcm`` (int16) of ``party`` starting at sample ``place`` of the call as frames."""
    data = pcm.astype("<i2", copy=False)
    code = PARTIES.index(party)
    return [(HEADER.pack(place + i, len(piece), code, 0) + piece.tobytes(), len(piece), code)
            for i in range(0, data.size, MAX_FRAME) for piece in (data[i:i + MAX_FRAME],)]


class Listener:
    """One listen-in to one call: the frames waiting for its WebSocket (see the module
    docstring). Made on the event loop that sends them; offered to from any thread."""

    def __init__(self, call_id: str, queue_s: float = QUEUE_S):
        self.call_id = call_id
        self.limit = int(queue_s * SAMPLE_RATE * len(PARTIES))
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.lock = threading.Lock()
        self.waiting: deque[Frame] = deque()
        self.queued = 0
        """Samples waiting."""
        self.offered = 0
        self.dropped = 0
        """Samples offered, and dropped because the listener was too slow."""
        self.taken = [0] * len(PARTIES)
        """Samples of each party taken to be sent."""
        self.last_sample = 0
        """The end of the latest audio offered (samples from the call's start)."""
        self.ended = False
        self._wake = asyncio.Event()

    def offer(self, frames: list[Frame], end: int) -> None:
        """Queue ``frames`` (ending at sample ``end`` of the call); never waits: the oldest
        frames go when more than :data:`QUEUE_S` per party would be waiting."""
        with self.lock:
            for f in frames:
                self.waiting.append(f)
                self.queued += f[1]
                self.offered += f[1]
            while self.queued > self.limit and len(self.waiting) > 1:
                _, n, _ = self.waiting.popleft()
                self.queued -= n
                self.dropped += n
            self.last_sample = max(self.last_sample, end)
        self._signal()

    def end(self) -> None:
        """The call ended (or the server stops): the listener gets what is queued, then None."""
        with self.lock:
            self.ended = True
        self._signal()

    def _signal(self) -> None:
        if threading.get_ident() == self.loop_thread:
            self._wake.set()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake.set)

    async def take(self) -> bytes | None:
        """Every frame waiting, as one message (waits for one); None once the call has ended and
        everything was taken."""
        while True:
            with self.lock:
                if self.waiting:
                    out = b"".join(f for f, _, _ in self.waiting)
                    for _, n, party in self.waiting:
                        self.taken[party] += n
                    self.waiting.clear()
                    self.queued = 0
                    return out
                if self.ended:
                    return None
                self._wake.clear()
            await self._wake.wait()

    def stats(self) -> dict[str, float]:
        """Seconds of audio (all parties together) offered, dropped and waiting; ``relayed_s``:
        the seconds of the call taken to be sent (of the party with the most)."""
        with self.lock:
            return {"offered_s": self.offered / SAMPLE_RATE, "dropped_s": self.dropped / SAMPLE_RATE,
                    "queued_s": self.queued / SAMPLE_RATE, "relayed_s": max(self.taken) / SAMPLE_RATE}


class Listeners:
    """The listeners of every call (thread-safe; each call's set is replaced, never changed in
    place, so the audio path reads it without a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.of: dict[str, tuple[Listener, ...]] = {}

    def add(self, listener: Listener) -> None:
        """ValueError when the call has :data:`MAX_LISTENERS` already."""
        with self.lock:
            now = self.of.get(listener.call_id, ())
            if len(now) >= MAX_LISTENERS:
                raise ValueError(f"call {listener.call_id} has {MAX_LISTENERS} listeners already")
            self.of[listener.call_id] = (*now, listener)

    def remove(self, listener: Listener) -> None:
        with self.lock:
            rest = tuple(x for x in self.of.get(listener.call_id, ()) if x is not listener)
            if rest:
                self.of[listener.call_id] = rest
            else:
                self.of.pop(listener.call_id, None)

    def count(self, call_id: str) -> int:
        return len(self.of.get(call_id, ()))

    def audio(self, call_id: str, party: str, place: int, pcm: np.ndarray) -> None:
        """A chunk of the call's audio, to each of its listeners (framed once for all)."""
        listening = self.of.get(call_id)
        if not listening or not pcm.size:
            return
        frames = frame(party, place, pcm)
        for listener in listening:
            listener.offer(frames, place + pcm.size)

    def end(self, call_id: str | None = None) -> None:
        """End the listen-ins of ``call_id`` (None: of every call)."""
        with self.lock:
            ended = [x for cid, xs in self.of.items() if call_id is None or cid == call_id for x in xs]
        for listener in ended:
            listener.end()
