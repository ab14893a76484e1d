"""Recognition of live calls in a worker process, outside the server's event loop.

:class:`LiveRecognizer` starts one spawned process that loads the recogniser once (the
server's ``--config``: the batch pipeline's ``asr`` and ``vad`` settings) and keeps a
:class:`~pipeline.live.streaming.StreamingTranscriber` per party of every call it was given; the
server sends it each party's audio as it arrives (8 kHz, resampled there as a stream to 16 kHz
with soxr, as recordings are) and a thread reads back the words confirmed and the unconfirmed
tail. It takes at most ``live.transcribe_calls`` calls at once: a call beyond that is recorded in
full and transcribed by the batch pipeline after it ends ("recording only"), so that the calls
being transcribed do not all fall behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from typing import Any

import numpy as np

from pipeline.live.options import PARTIES

log = logging.getLogger("callqa.live")

MAX_GAP_S = 1.5
"""A party's live words further apart than this start a new utterance (as in the batch
pipeline's ``MAX_GAP_IN_UTTERANCE_S``)."""


def _serve(inbox: Any, outbox: Any, config_file: str | None, threads: int, parent: int) -> None:
    """The worker: load the recogniser, then handle ``("feed", call, party, pcm16 bytes)`` and
    ``("finish", call)`` until None, answering ``("words", call, party, confirmed, partial)``."""
    import soxr

    from models.asr import load_backend
    from pipeline.config import load_config
    from pipeline.live.streaming import StreamingTranscriber
    from pipeline.run.executors import _exit_with_parent

    _exit_with_parent(parent)
    config = load_config(config_file)
    backend = load_backend(config.asr, threads)
    outbox.put(("ready",))
    streams: dict[tuple[str, str], tuple[Any, Any]] = {}

    def send(call: str, party: str, update: Any) -> None:
        if update.confirmed or update.stepped:
            outbox.put(("words", call, party, [w.to_dict() for w in update.confirmed],
                        [w.to_dict() for w in update.partial]))

    while (msg := inbox.get()) is not None:
        if msg[0] == "feed":
            _, call, party, data = msg
            if (call, party) not in streams:
                streams[(call, party)] = (StreamingTranscriber(backend, config.vad),
                                          soxr.ResampleStream(8000, 16000, 1, dtype="float32", quality="HQ"))
            transcriber, resampler = streams[(call, party)]
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            send(call, party, transcriber.feed(resampler.resample_chunk(pcm)))
        elif msg[0] == "finish":
            for party in PARTIES:
                if (call_party := (msg[1], party)) in streams:
                    transcriber, resampler = streams.pop(call_party)
                    rest = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                    if rest.size:
                        send(msg[1], party, transcriber.feed(rest))
                    send(msg[1], party, transcriber.finish())
            outbox.put(("finished", msg[1]))


class LiveRecognizer:
    """The recognition worker of a live server (see the module docstring)."""

    def __init__(self, config_file: str | None, max_calls: int, threads: int = 0):
        ctx = multiprocessing.get_context("spawn")
        self.max_calls = max_calls
        self.inbox = ctx.Queue()
        self.outbox = ctx.Queue()
        threads = threads or max(1, (os.cpu_count() or 1))
        self.process = ctx.Process(target=_serve, args=(self.inbox, self.outbox, config_file, threads, os.getpid()),
                                   name="callqa-live-asr", daemon=True)
        self.process.start()
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.finished: set[str] = set()
        self.ready = threading.Event()
        self.confirmed: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.partial: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.reader = threading.Thread(target=self._read, name="callqa-live-words", daemon=True)
        self.reader.start()

    def admit(self, call_id: str) -> bool:
        """Whether the call is transcribed live (False: beyond ``max_calls``, recording only)."""
        with self.lock:
            if call_id in self.active:
                return True
            if len(self.active) >= self.max_calls or not self.process.is_alive():
                return False
            self.active.add(call_id)
            self.confirmed[call_id] = {p: [] for p in PARTIES}
            self.partial[call_id] = {p: [] for p in PARTIES}
            return True

    def feed(self, call_id: str, party: str, pcm: np.ndarray) -> None:
        self.inbox.put(("feed", call_id, party, pcm.astype("<i2", copy=False).tobytes()))

    def finish(self, call_id: str) -> None:
        """The call ended: its last words are confirmed, then it leaves the live calls."""
        self.inbox.put(("finish", call_id))

    def _read(self) -> None:
        while True:
            try:
                msg = self.outbox.get()
            except (EOFError, OSError):
                return
            if msg[0] == "ready":
                self.ready.set()
            elif msg[0] == "words":
                _, call, party, confirmed, partial = msg
                with self.lock:
                    if call in self.confirmed:
                        self.confirmed[call][party].extend(confirmed)
                        self.partial[call][party] = partial
            elif msg[0] == "finished":
                with self.lock:
                    self.active.discard(msg[1])
                    self.finished.add(msg[1])

    def utterances(self, call_id: str) -> list[dict[str, Any]] | None:
        """The call's live transcript: each party's words (``{word, start, end, confirmed}``)
        cut into utterances at pauses of :data:`MAX_GAP_S`, in time order; None when the call
        is not transcribed live."""
        with self.lock:
            if call_id not in self.confirmed:
                return None
            words = {p: self.confirmed[call_id][p] + self.partial[call_id][p] for p in PARTIES}
        out = []
        for party, ws in words.items():
            group: list[dict[str, Any]] = []
            for w in ws + [None]:
                if group and (w is None or w["start"] - group[-1]["end"] > MAX_GAP_S):
                    out.append({"role": party, "start": group[0]["start"], "end": group[-1]["end"],
                                "text": " ".join(x["word"] for x in group), "words": group})
                    group = []
                if w is not None:
                    group.append(w)
        return sorted(out, key=lambda u: (u["start"], u["role"]))

    def close(self) -> None:
        self.inbox.put(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
