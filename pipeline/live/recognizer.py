"""Recognition of live calls in a worker process, outside the server's event loop.

:class:`LiveRecognizer` starts one spawned process that loads the recogniser once (the
server's ``--config``: the batch pipeline's ``asr`` and ``vad`` settings) and keeps a
:class:`~pipeline.live.streaming.StreamingTranscriber` per party of every call it was given; the
server sends it each party's audio as it arrives (8 kHz, resampled there as a stream to 16 kHz
with soxr, as recordings are) and a thread reads back each word as soon as it is confirmed, the
unconfirmed tail, and, about every second while the confirmed words change (less often as a
long call's analysis grows: ``ANALYSIS_SHARE``, and not while recognition is behind:
``ANALYSIS_MAX_WAIT_S``), the live analysis of the call so far
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


ANALYSIS_SHARE = 0.25
"""At most about this share of the worker's time goes to the live analyses of its calls: with
``n`` calls, a call whose analysis took ``t`` seconds is analysed again ``n * t /
ANALYSIS_SHARE`` seconds later at the soonest (and never more often than
``ANALYSE_EVERY_S``), so long calls' growing analyses do not starve recognition."""

ANALYSIS_MAX_WAIT_S = 15.0
"""Words come first: while recognition is behind (a stream has a step of audio waiting once
every waiting step was recognised), a call's analysis waits, but never longer than this since
its last one. An analysis of a long call takes the worker's one thread for most of a second
(0.7 s at 30 minutes), and at a quarter of the time it was what made two long calls' lag grow."""


def analysis_due(state: dict[str, Any], now: float, behind: bool) -> bool:
    """Whether a call (the worker's ``state`` of it) is to be analysed again at ``now``: its
    confirmed words changed, its share allows it (``next_analysis``), and recognition is not
    ``behind``, unless its last analysis is ``ANALYSIS_MAX_WAIT_S`` old."""
    return bool(state["dirty"]) and now >= state["next_analysis"] and (
        not behind or now >= state["analysed_at"] + ANALYSIS_MAX_WAIT_S)


def _drain(inbox: Any, wait: float) -> list[Any]:
    """Every message waiting in ``inbox`` (waiting up to ``wait`` seconds for the first)."""
    import queue as queues

    out = []
    try:
        out.append(inbox.get(timeout=wait) if wait > 0 else inbox.get_nowait())
        while True:
            out.append(inbox.get_nowait())
    except queues.Empty:
        pass
    return out


def _serve(inbox: Any, outbox: Any, config_file: str | None, threads: int, parent: int) -> None:
    """The worker: load the recogniser, then handle ``("open", call, meta)``, ``("feed", call,
    party, pcm16 bytes)`` and ``("finish", call)`` until None; answer ``("confirmed", call,
    party, words)`` as soon as words are confirmed, ``("partial", call, party, words)`` as the
    unconfirmed tail changes, ``("analysis", call, result)`` (:mod:`~pipeline.live.analysis`)
    while the confirmed words change (see ``ANALYSIS_SHARE``), ``("finished", call)``.

    Scheduling: audio is taken in as it comes (every waiting message read before any
    recognition), then each stream with a step of audio waiting is recognised once, over all it
    has waiting (:meth:`StreamingTranscriber.catch_up`), the stream recognised longest ago
    first; so with more audio than the worker can follow at every step, each stream's steps
    grow instead of a queue of steps growing, and every call keeps getting words. Analyses
    run when no stream is behind, or when a call's last one is ``ANALYSIS_MAX_WAIT_S`` old."""
    import time

    import soxr

    from models.asr import load_backend
    from pipeline.analysis.stage import AnalysisStage
    from pipeline.config import load_config
    from pipeline.live.analysis import ANALYSE_EVERY_S, analyse, mask_partial
    from pipeline.live.streaming import StreamingOptions, StreamingTranscriber
    from pipeline.run.executors import exit_with_parent

    exit_with_parent(parent)
    config = load_config(config_file)
    backend = load_backend(config.asr, threads)
    stage = AnalysisStage(config, threads)
    options = StreamingOptions(step_s=config.live.step_s, encoder_s=config.live.encoder_s)
    outbox.put(("ready",))
    streams: dict[tuple[str, str], list[Any]] = {}  # transcriber, resampler, clock of its last step
    calls: dict[str, dict[str, Any]] = {}

    def take(call: str, party: str, update: Any) -> None:
        state = calls[call]
        if update.confirmed:
            words = [w.to_dict() for w in update.confirmed]
            state["confirmed"][party].extend(words)
            state["dirty"] = True
            outbox.put(("confirmed", call, party, mask_partial(words)))
        if update.confirmed or update.stepped:
            outbox.put(("partial", call, party, mask_partial([w.to_dict() for w in update.partial])))

    def run_analysis(call: str) -> None:
        state = calls[call]
        started = time.monotonic()
        covered = {p: len(ws) for p, ws in state["confirmed"].items()}
        try:
            result = analyse(stage, config, state["confirmed"], state["received_s"], state["meta"])
        except Exception as e:  # the live view goes without this analysis; the batch run has the call
            result = {"error": f"{type(e).__name__}: {e}"}
        now = time.monotonic()
        state["dirty"] = False
        state["analysed_at"] = now
        # the share is the worker's, whatever the number of calls: n calls each analysed in t s
        # are analysed again n * t / ANALYSIS_SHARE later
        state["next_analysis"] = now + max(ANALYSE_EVERY_S, (now - started) * len(calls) / ANALYSIS_SHARE)
        outbox.put(("analysis", call, {**result, "covered": covered}))

    def handle(msg: Any) -> bool:
        if msg is None:
            return False
        if msg[0] == "open":
            calls[msg[1]] = {"meta": msg[2], "confirmed": {p: [] for p in PARTIES}, "dirty": False,
                             "next_analysis": 0.0, "analysed_at": time.monotonic(), "received_s": 0.0}
        elif msg[0] == "feed":
            _, call, party, data = msg
            if call not in calls:  # audio after the call's finish (or before its open): the archive has it
                return True
            if (call, party) not in streams:
                streams[(call, party)] = [StreamingTranscriber(backend, config.vad, options),
                                          soxr.ResampleStream(8000, 16000, 1, dtype="float32", quality="HQ"), 0.0]
            transcriber, resampler, _ = streams[(call, party)]
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            transcriber.push(resampler.resample_chunk(pcm))
            calls[call]["received_s"] = max(calls[call]["received_s"], transcriber.received_s)
        elif msg[0] == "finish":
            call = msg[1]
            if call not in calls:
                return True
            for party in PARTIES:
                if (call, party) in streams:
                    transcriber, resampler, _ = streams.pop((call, party))
                    rest = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                    if rest.size:
                        transcriber.push(rest)
                    take(call, party, transcriber.finish())
            run_analysis(call)
            calls.pop(call, None)
            outbox.put(("finished", call))
        return True

    while True:
        waiting = any(t.due for t, _, _ in streams.values())
        if not all(handle(m) for m in _drain(inbox, 0 if waiting else 0.05)):
            break
        for key in sorted((k for k, s in streams.items() if s[0].due), key=lambda k: streams[k][2]):
            if key not in streams:  # finished while others were recognised
                continue
            take(key[0], key[1], streams[key][0].catch_up())
            streams[key][2] = time.monotonic()
            if not all(handle(m) for m in _drain(inbox, 0)):  # audio that came meanwhile
                return
        now = time.monotonic()
        behind = any(t.due for t, _, _ in streams.values())
        for call, state in list(calls.items()):
            if analysis_due(state, now, behind):
                run_analysis(call)


def merge_view(analysis: dict[str, Any], confirmed: dict[str, list[dict[str, Any]]],
               partial: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A call's live view: its latest ``analysis`` (whose ``covered`` counts each party's
    confirmed words it saw), then each party's words ``confirmed`` after it, then each party's
    ``partial`` words, as utterances in time order."""
    result = dict(analysis)
    covered = result.pop("covered", {})
    tails = [u for p, ws in confirmed.items() if ws[covered.get(p, 0):]
             for u in group_words(p, ws[covered.get(p, 0):], first_id=8000)]
    tails += [u for p, ws in partial.items() if ws
              for u in group_words(p, [{**w, "confirmed": False} for w in ws], first_id=9000)]
    result["utterances"] = sorted(result.get("utterances", []) + tails, key=lambda u: (u["start"], u["role"]))
    return result


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
        self.confirmed: dict[str, dict[str, list[dict[str, Any]]]] = {}
        # each call's view as last merged, and the number of the message it was merged after:
        # every reader of a call between two messages gets the same view without merging again
        self._views: dict[str, tuple[int, dict[str, Any]]] = {}
        self._changes: dict[str, int] = {}
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
            self.confirmed[call_id] = {p: [] for p in PARTIES}
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
                if len(msg) > 1:
                    self._changes[msg[1]] = self._changes.get(msg[1], 0) + 1
                if msg[0] == "ready":
                    self.ready.set()
                elif msg[0] == "partial" and msg[1] in self.partial:
                    self.partial[msg[1]][msg[2]] = msg[3]
                elif msg[0] == "confirmed" and msg[1] in self.confirmed:
                    self.confirmed[msg[1]][msg[2]].extend(msg[3])
                elif msg[0] == "analysis" and msg[1] in self.analysis:
                    self.analysis[msg[1]] = msg[2]
                elif msg[0] == "finished":
                    self.active.discard(msg[1])
                    self.finished.add(msg[1])
                    self.partial.pop(msg[1], None)
                    self.confirmed.pop(msg[1], None)
                    self._views.pop(msg[1], None)

    def view(self, call_id: str) -> dict[str, Any] | None:
        """What the call has said so far: ``utterances`` (the analysed ones, PII masked; then each
        party's words confirmed since that analysis, shown at once with any word holding a digit
        masked until the analysis masks their PII; then each party's unconfirmed words, masked
        the same way), ``items`` answered so far and ``sentiment``; None when the call is not
        transcribed live. The same object is returned until the call's next message: read it,
        do not change it."""
        with self.lock:
            if call_id not in self.analysis:
                return None
            change = self._changes.get(call_id, 0)
            cached = self._views.get(call_id)
            if cached is None or cached[0] != change:
                cached = change, merge_view(self.analysis[call_id], self.confirmed.get(call_id, {}),
                                            self.partial.get(call_id, {}))
                self._views[call_id] = cached
            return cached[1]

    def close(self) -> None:
        self.inbox.put(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
