"""The calls in progress on a live server, and what happens when one ends.

:class:`LiveCalls` holds every call streamed since the server started (``live``, then
``ended``, ``processing``, ``done`` or ``failed``), keyed by call id: a stream that starts with
the id of a call still open (dropped less than ``live.reconnect_grace_s`` ago) continues it.
When a call ends its recording is finished into the archive and, with ``live.out`` set, run
through the batch pipeline (``callqa run`` on a one-row manifest, one call at a time, in a
process of its own), so that its result, scorecard and review-queue entry are there as for any
recording; the live server then loads the result into its review database (:attr:`LiveCalls.after_run`).
Supervisors listening in get each chunk of the call's audio as it arrives (:mod:`pipeline.live.listen`).
"""

from __future__ import annotations

import csv
import io
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from models.files import write_atomic
from pipeline.live.analysis import AlertBook, SoundWatch
from pipeline.live.archive import MANIFEST_COLUMNS, LiveRecording, recover
from pipeline.live.listen import Listener, Listeners
from pipeline.live.options import PARTIES, LiveOptions
from pipeline.live.recognizer import LiveRecognizer
from pipeline.live.twilio import SAMPLE_RATE

log = logging.getLogger("callqa.live")

RUN_TIMEOUT_S = 3600
"""A call's batch run that takes longer than this is stopped and marked failed."""


@dataclass
class LiveCall:
    call_id: str
    source: str
    """``twilio`` (the stream's protocol)."""
    call_sid: str
    agent_id: str
    queue: str
    started_at: str
    recording: LiveRecording
    state: str = "live"
    streams: int = 0
    connected: bool = False
    ended_reason: str = ""
    dropped_at: float | None = None
    """Monotonic time of the last drop while the call was open (None: connected or ended)."""
    error: str = ""
    transcription: str = "off"
    """``live`` (words while the call goes on), ``recording only`` (beyond the live capacity:
    transcribed by the batch pipeline after the call) or ``off``."""
    fed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTIES, 0))
    """Samples of each party given to the live recogniser so far."""
    alerts: AlertBook = field(default_factory=AlertBook)
    """Every alert the call raised, open or closed (:class:`~pipeline.live.analysis.AlertBook`)."""
    sound: SoundWatch | None = None
    """What raises the alerts from the call's sound (silence, cross-talk, length) into ``alerts``."""

    def summary(self) -> dict[str, Any]:
        """The call's row: ``alerts`` is the number of its open alerts, ``alerts_total`` of all it
        raised (the word alerts as of the last :meth:`LiveCalls.view` of it)."""
        open_alerts, total = self.alerts.counts()
        return {"call_id": self.call_id, "source": self.source, "state": self.state, "agent_id": self.agent_id,
                "queue": self.queue, "started_at": self.started_at, "duration_s": round(self.recording.seconds(), 2),
                "connected": self.connected, "streams": self.streams, "ended_reason": self.ended_reason,
                "transcription": self.transcription, "alerts": open_alerts, "alerts_total": total, "error": self.error}


class LiveCalls:
    """The server's calls (see the module docstring); safe to use from the event loop and threads."""

    def __init__(self, options: LiveOptions, config_file: str | None = None, recognizer: LiveRecognizer | None = None,
                 negative_threshold: float | None = None):
        from models.sentiment import SentimentOptions

        self.options = options
        self.recognizer = recognizer
        self.negative_threshold = SentimentOptions().negative_threshold if negative_threshold is None else negative_threshold
        """``sentiment.negative_threshold`` of the server's config (the sentiment alert)."""
        self.archive = Path(options.archive)
        self.archive.mkdir(parents=True, exist_ok=True)
        self.config_file = config_file
        self.calls: dict[str, LiveCall] = {}
        self.lock = threading.Lock()
        self.runs: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self.runner: threading.Thread | None = None
        self.listeners = Listeners()
        """The supervisors listening in (:mod:`pipeline.live.listen`)."""
        self.after_run: Callable[[str], None] | None = None
        """Called with the call id after a call's batch run succeeded (the live server loads
        the result into its review database: the call is in the review queue)."""
        for wav in recover(self.archive):  # calls a stopped server left open
            log.warning("live: %s was open when the server stopped; finished from what had arrived", wav.name)
            self._queue_run(wav.stem, wav)
        pending = self.archive / ".pending"
        for manifest in sorted(pending.glob("*.csv")) if pending.is_dir() else []:
            self._queue_run(manifest.stem, self.archive / f"{manifest.stem}.wav")

    def open(self, call_id: str, source: str, call_sid: str, meta: dict[str, str]) -> LiveCall:
        """The call a stream starts or continues."""
        with self.lock:
            call = self.calls.get(call_id)
            if call is not None and call.state != "live":
                raise ValueError(f"call {call_id} has ended; a new call needs a new call id")
            if call is not None and call.connected:
                raise ValueError(f"call {call_id} is being streamed already")
            if call is None and (self.archive / f"{call_id}.wav").exists():
                raise ValueError(f"call {call_id} is in the archive already; a new call needs a new call id")
            if call is None:
                started = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
                info = {"agent_id": meta.get("agent_id", ""), "queue": meta.get("queue", ""), "started_at": started,
                        "call_sid": call_sid, "source": source}
                call = LiveCall(call_id, source, call_sid, info["agent_id"], info["queue"], started,
                                LiveRecording(self.archive, call_id, info))
                call.sound = SoundWatch(self.options, call.alerts)
                self.calls[call_id] = call
                if self.recognizer is not None:
                    admitted = self.recognizer.admit(call_id, {k: v for k, v in meta.items() if isinstance(v, str)})
                    call.transcription = "live" if admitted else "recording only"
            call.streams += 1
            call.connected = True
            call.dropped_at = None
            call.recording.new_stream({})
            return call

    def audio(self, call: LiveCall, party: str, timestamp_ms: int | None, pcm: Any) -> None:
        """A chunk of ``party``'s audio at ``timestamp_ms`` of the current stream: into the
        recording, and to the live recogniser in order (a gap given as silence, audio that
        repeats a stretch already given left out)."""
        place = call.recording.write(party, timestamp_ms, pcm)
        if call.sound is not None:
            call.sound.chunk(party, place / SAMPLE_RATE, pcm)
        self.listeners.audio(call.call_id, party, place, pcm)
        if call.transcription != "live" or self.recognizer is None:
            return
        gap = place - call.fed[party]
        if gap > 0:
            self.recognizer.feed(call.call_id, party, np.zeros(gap, dtype=np.int16))
        new = pcm[max(0, -gap):]
        if new.size:
            self.recognizer.feed(call.call_id, party, new)
        call.fed[party] = max(call.fed[party], place + pcm.size)

    def dropped(self, call: LiveCall) -> None:
        """The stream went without ``stop``: the call waits ``reconnect_grace_s`` for a new one."""
        with self.lock:
            call.connected = False
            call.dropped_at = time.monotonic()

    def expire(self) -> list[LiveCall]:
        """End the calls dropped longer than the grace period ago."""
        now = time.monotonic()
        with self.lock:
            due = [c for c in self.calls.values() if c.state == "live" and not c.connected and c.dropped_at is not None
                   and now - c.dropped_at >= self.options.reconnect_grace_s]
        for call in due:
            self.end(call, "disconnected")
        return due

    def end(self, call: LiveCall, reason: str) -> None:
        """Finish the call's recording into the archive and queue its batch run."""
        with self.lock:
            if call.state != "live":
                return
            call.state, call.connected, call.ended_reason = "ended", False, reason
        call.alerts.end(call.recording.seconds())  # the sound's alerts are over with the call
        self.listeners.end(call.call_id)
        if call.transcription == "live" and self.recognizer is not None:
            self.recognizer.finish(call.call_id)
        try:
            wav = call.recording.finish()
        except Exception as e:  # the call stays in .live/ and is finished when the server starts again
            call.state, call.error = "failed", f"{type(e).__name__}: {e}"
            log.error("live: call %s could not be archived: %s", call.call_id, call.error)
            return
        self._queue_run(call.call_id, wav)

    def _queue_run(self, call_id: str, wav: Path) -> None:
        if self.options.out is None:
            return
        pending = self.archive / ".pending"
        pending.mkdir(exist_ok=True)
        manifest = pending / f"{call_id}.csv"
        if not manifest.exists():
            with open(self.archive / "manifest.csv", newline="") as f:
                row = next((r for r in csv.DictReader(f) if r["call_id"] == call_id), None)
            if row is None:
                return
            text = io.StringIO()
            w = csv.DictWriter(text, MANIFEST_COLUMNS)
            w.writeheader()
            w.writerow({**row, "path": str(wav.resolve())})
            write_atomic(manifest, text.getvalue(), durable=True)  # private, as the archive's manifest
        with self.lock:
            if call_id in self.calls:
                self.calls[call_id].state = "processing"
            if self.runner is None:
                self.runner = threading.Thread(target=self._run_calls, name="callqa-live-runs", daemon=True)
                self.runner.start()
        self.runs.put((call_id, manifest))

    def _run_calls(self) -> None:
        while (item := self.runs.get()) is not None:
            call_id, manifest = item
            args = [sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(self.options.out), "--quiet"]
            if self.config_file:
                args += ["--config", self.config_file]
            try:
                proc = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
                ok, error = proc.returncode == 0, proc.stderr.strip()[-500:]
            except subprocess.TimeoutExpired:
                ok, error = False, f"the batch run took more than {RUN_TIMEOUT_S} s"
            if ok:
                manifest.unlink(missing_ok=True)
                if self.after_run is not None:  # loaded before the call is "done"
                    try:
                        self.after_run(call_id)
                    except Exception as e:  # the result is in OUT; `callqa db load OUT` loads it
                        log.error("live: the result of %s could not be loaded: %s: %s", call_id, type(e).__name__, e)
            else:
                log.error("live: the batch run of %s failed: %s", call_id, error)
            with self.lock:
                call = self.calls.get(call_id)
                if call is not None:
                    call.state, call.error = ("done", "") if ok else ("failed", error)

    def view(self, call: LiveCall) -> dict[str, Any]:
        """What the call has said so far (:meth:`LiveRecognizer.view`; empty when it is not
        transcribed live) and every alert it raised, from its words and from its sound, open or
        closed, in the order their conditions began (the word alerts brought up to the latest
        analysis first: :meth:`AlertBook.words`); ``transcript_final``: the call ended and its
        live recognition finished (every word of it is confirmed and shown)."""
        said = self._said(call)
        return {"utterances": said.get("utterances", []), "suggestions": said.get("items", []),
                "sentiment": said.get("sentiment", {}), "alerts": call.alerts.listed(),
                "transcript_final": self.recognizer is not None and call.call_id in self.recognizer.finished,
                **({"analysis_error": said["error"]} if "error" in said else {})}

    def _said(self, call: LiveCall) -> dict[str, Any]:
        """The recogniser's view of the call ({} when none), its word alerts brought up to it."""
        said = (self.recognizer.view(call.call_id) if self.recognizer is not None else None) or {}
        call.alerts.words(said, self.options, self.negative_threshold)
        return said

    def watch(self) -> None:
        """Bring every call's word alerts up to its latest analysis, whether or not anyone looks
        at it (the server does this every second: an alert is raised and closed on time for the
        wall's count and for the history)."""
        with self.lock:
            calls = list(self.calls.values())
        for call in calls:
            if call.transcription == "live":
                self._said(call)

    def acknowledge(self, call: LiveCall, key: str, user: str) -> dict[str, Any]:
        """A supervisor acknowledged an alert of the call: closed by ``user`` at the call's
        current moment (the audio received so far). :class:`~pipeline.live.analysis.NoSuchAlert`
        for an unknown key, :class:`~pipeline.live.analysis.AlertClosed` for one closed already."""
        self._said(call)
        alert = call.alerts.acknowledge(key, user, call.recording.seconds())
        log.info("live: %s acknowledged alert %s of %s", user, key, call.call_id)
        return alert

    def snapshot(self) -> list[dict[str, Any]]:
        """Every call's summary (:meth:`LiveCall.summary`: ``alerts`` its open alerts,
        ``alerts_total`` all) with what the live wall shows of it: ``customer_sentiment`` (the
        mean of the customer's last two turns so far, None before any), ``alert_list`` (each
        alert's key, kind, time, message and state) and ``listeners``."""
        with self.lock:
            calls = sorted(self.calls.values(), key=lambda c: c.started_at)
        out = []
        for c in calls:
            view = self.view(c)
            out.append({**c.summary(),
                        "customer_sentiment": (view["sentiment"] or {}).get("customer_end"),
                        "alert_list": [{k: a.get(k) for k in ("key", "kind", "at", "message", "state")}
                                       for a in view["alerts"]],
                        "listeners": self.listeners.count(c.call_id)})
        return out

    def listen(self, call_id: str) -> Listener:
        """A new listen-in to a call in progress (on the running event loop). ValueError when the
        call is not in progress or has as many listeners as it may."""
        call = self.get(call_id)
        if call is None or call.state != "live":
            raise ValueError(f"call {call_id} is not in progress")
        listener = Listener(call_id)
        self.listeners.add(listener)
        if call.state != "live":  # it ended meanwhile
            listener.end()
        return listener

    def recognition(self) -> str:
        """The live recogniser's state: ``off`` (``live.transcribe_calls: 0``), ``starting``
        (loading its models), ``ready``, or ``stopped`` (its process died: calls are recorded
        only)."""
        if self.recognizer is None:
            return "off"
        if not self.recognizer.process.is_alive():
            return "stopped"
        return "ready" if self.recognizer.ready.is_set() else "starting"

    def get(self, call_id: str) -> LiveCall | None:
        with self.lock:
            return self.calls.get(call_id)

    def stop(self) -> None:
        """At server shutdown: end every open call (its recording archived and queued)."""
        for call in list(self.calls.values()):
            if call.state == "live":
                self.end(call, "server stopped")
        self.listeners.end()
        self.runs.put(None)
        if self.recognizer is not None:
            self.recognizer.close()
