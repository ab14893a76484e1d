"""Recognition of live calls in a worker process, outside the server's event loop.

:class:`LiveRecognizer` starts one spawned process that loads the recogniser once (the
server's ``--config``: the batch pipeline's ``asr`` and ``vad`` settings) and keeps a
:class:`~pipeline.live.streaming.StreamingTranscriber` per party of every call it was given; the
server sends it each party's audio as it arrives (8 kHz, resampled there as a stream to 16 kHz
with soxr, as recordings are) and a thread reads back the unconfirmed tail and, about every
second while the confirmed words change, the live analysis of the call so far
(:mod:`pipeline.live.analysis`: the transcript with PII masked, the scorecard items answered so
far, sentiment). It takes at most ``live.transcribe_calls`` calls at once: a call beyond that is recorded in
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

from pipeline.live.analysis import group_words
from pipeline.live.options import PARTIES

log = logging.getLogger("callqa.live")


def _serve(inbox: Any, outbox: Any, config_file: str | None, threads: int, parent: int) -> None:
    """The worker: load the recogniser, then handle ``("open", call, meta)``, ``("feed", call,
    party, pcm16 bytes)`` and ``("finish", call)`` until None; answer ``("partial", call, party,
    words)`` as the unconfirmed tail changes, ``("analysis", call, result)`` (:mod:`~pipeline.live.analysis`)
    at most every ``ANALYSE_EVERY_S`` while the confirmed words change, ``("finished", call)``."""
    import queue as queues
    import time

    import soxr

    from models.asr import load_backend
    from pipeline.analysis.stage import AnalysisStage
    from pipeline.config import load_config
    from pipeline.live.analysis import ANALYSE_EVERY_S, analyse, mask_partial
    from pipeline.live.streaming import StreamingTranscriber
    from pipeline.run.executors import exit_with_parent

    exit_with_parent(parent)
    config = load_config(config_file)
    backend = load_backend(config.asr, threads)
    stage = AnalysisStage(config, threads)
    outbox.put(("ready",))
    streams: dict[tuple[str, str], tuple[Any, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}

    def take(call: str, party: str, update: Any) -> None:
        state = calls[call]
        if update.confirmed:
            state["confirmed"][party].extend(w.to_dict() for w in update.confirmed)
            state["dirty"] = True
        if update.confirmed or update.stepped:
            outbox.put(("partial", call, party, mask_partial([w.to_dict() for w in update.partial])))

    def run_analysis(call: str) -> None:
        state = calls[call]
        state["dirty"], state["analysed"] = False, time.monotonic()
        try:
            result = analyse(stage, config, state["confirmed"], state["received_s"], state["meta"])
        except Exception as e:  # the live view goes without this analysis; the batch run has the call
            result = {"error": f"{type(e).__name__}: {e}"}
        outbox.put(("analysis", call, result))

    while True:
        try:
            msg = inbox.get(timeout=0.2)
        except queues.Empty:
            msg = ()
        if msg is None:
            break
        if msg and msg[0] == "open":
            calls[msg[1]] = {"meta": msg[2], "confirmed": {p: [] for p in PARTIES}, "dirty": False,
                             "analysed": 0.0, "received_s": 0.0}
        elif msg and msg[0] == "feed":
            _, call, party, data = msg
            if (call, party) not in streams:
                streams[(call, party)] = (StreamingTranscriber(backend, config.vad),
                                          soxr.ResampleStream(8000, 16000, 1, dtype="float32", quality="HQ"))
            transcriber, resampler = streams[(call, party)]
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            take(call, party, transcriber.feed(resampler.resample_chunk(pcm)))
            calls[call]["received_s"] = max(calls[call]["received_s"], transcriber.received_s)
        elif msg and msg[0] == "finish":
            call = msg[1]
            for party in PARTIES:
                if (call, party) in streams:
                    transcriber, resampler = streams.pop((call, party))
                    rest = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                    if rest.size:
                        take(call, party, transcriber.feed(rest))
                    take(call, party, transcriber.finish())
            run_analysis(call)
            calls.pop(call, None)
            outbox.put(("finished", call))
        now = time.monotonic()
        for call, state in calls.items():
            if state["dirty"] and now - state["analysed"] >= ANALYSE_EVERY_S:
                run_analysis(call)


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
        self.analysis: dict[str, dict[str, Any]] = {}
        self.partial: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.reader = threading.Thread(target=self._read, name="callqa-live-words", daemon=True)
        self.reader.start()

    def admit(self, call_id: str, meta: dict[str, str]) -> bool:
        """Whether the call is transcribed live (False: beyond ``max_calls``, recording only)."""
        with self.lock:
            if call_id in self.active:
                return True
            if len(self.active) >= self.max_calls or not self.process.is_alive():
                return False
            self.active.add(call_id)
            self.analysis[call_id] = {"utterances": [], "items": [], "sentiment": {}}
            self.partial[call_id] = {p: [] for p in PARTIES}
        self.inbox.put(("open", call_id, dict(meta)))
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
            with self.lock:
                if msg[0] == "ready":
                    self.ready.set()
                elif msg[0] == "partial" and msg[1] in self.partial:
                    self.partial[msg[1]][msg[2]] = msg[3]
                elif msg[0] == "analysis" and msg[1] in self.analysis:
                    self.analysis[msg[1]] = msg[2]
                elif msg[0] == "finished":
                    self.active.discard(msg[1])
                    self.finished.add(msg[1])
                    self.partial.pop(msg[1], None)

    def view(self, call_id: str) -> dict[str, Any] | None:
        """What the call has said so far: ``utterances`` (the analysed ones, PII masked, then each
        party's unconfirmed words), ``items`` answered so far and ``sentiment``; None when the
        call is not transcribed live."""
        with self.lock:
            if call_id not in self.analysis:
                return None
            result = dict(self.analysis[call_id])
            partial = {p: list(ws) for p, ws in self.partial.get(call_id, {}).items()}
        tails = [u for p, ws in partial.items() if ws
                 for u in group_words(p, [{**w, "confirmed": False} for w in ws], first_id=9000)]
        result["utterances"] = sorted(result.get("utterances", []) + tails, key=lambda u: (u["start"], u["role"]))
        return result

    def close(self) -> None:
        self.inbox.put(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
