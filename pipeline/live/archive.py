"""The recordings of streamed calls: written as the audio arrives, finished into the archive.

While a call goes on, each party's audio is a raw 16-bit 8 kHz file under ``ARCHIVE/.live/``
(``<call_id>.agent.raw``, ``<call_id>.customer.raw``), every chunk written at its place in the
call (its timestamp; a gap stays silent) with ``<call_id>.json`` beside them holding the call's
metadata: a crash of the server keeps everything that arrived, and :func:`recover` finishes such
calls when the server starts again. When the call ends, :meth:`LiveRecording.finish` writes
``ARCHIVE/<call_id>.wav`` (stereo, agent left, customer right) and its row in
``ARCHIVE/manifest.csv`` (``callqa run``'s manifest columns), then removes the raw files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from models.files import write_atomic
from pipeline.live.options import PARTIES
from pipeline.live.twilio import SAMPLE_RATE

MANIFEST_COLUMNS = ("call_id", "path", "agent_id", "queue", "started_at", "agent_channel")
SYNC_EVERY_S = 5.0
"""Each party's file is synced to disk after this many seconds of new audio."""
BLOCK = SAMPLE_RATE * 60
"""Samples per party read at a time when a call is finished into its WAV."""

_manifest_lock = threading.Lock()


class LiveRecording:
    """One call's audio as it arrives (see the module docstring)."""

    def __init__(self, archive: Path, call_id: str, meta: dict[str, Any]):
        self.archive = archive
        self.call_id = call_id
        self.live = archive / ".live"
        self.live.mkdir(parents=True, exist_ok=True)
        self.meta = dict(meta)
        self.paths = {p: self.live / f"{call_id}.{p}.raw" for p in PARTIES}
        self.fds = {p: os.open(self.paths[p], os.O_RDWR | os.O_CREAT, 0o600) for p in PARTIES}
        self.samples = {p: os.fstat(self.fds[p]).st_size // 2 for p in PARTIES}
        self.unsynced = dict.fromkeys(PARTIES, 0)
        self.base = 0
        self.streams = 0
        self._write_meta()

    def _write_meta(self) -> None:
        write_atomic(self.live / f"{self.call_id}.json", json.dumps(self.meta, indent=1), durable=True)

    def new_stream(self, meta: dict[str, Any]) -> None:
        """A stream (the first, or one continuing the call after a drop) starts: its timestamps
        count from the end of what the call holds so far."""
        self.base = max(self.samples.values())
        self.streams += 1
        self.meta.update({k: v for k, v in meta.items() if v})
        self._write_meta()

    def write(self, party: str, timestamp_ms: int | None, pcm: np.ndarray) -> int:
        """``pcm`` (int16) of ``party`` at ``timestamp_ms`` of the current stream (None: right
        after that party's previous chunk); the sample of the call it starts at."""
        start = self.base + timestamp_ms * SAMPLE_RATE // 1000 if timestamp_ms is not None else self.samples[party]
        data = pcm.astype("<i2", copy=False).tobytes()
        os.pwrite(self.fds[party], data, start * 2)
        self.samples[party] = max(self.samples[party], start + pcm.size)
        self.unsynced[party] += pcm.size
        if self.unsynced[party] >= SYNC_EVERY_S * SAMPLE_RATE:
            os.fsync(self.fds[party])
            self.unsynced[party] = 0
        return start

    def seconds(self) -> float:
        return max(self.samples.values()) / SAMPLE_RATE

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def finish(self) -> Path:
        """Write the call's WAV and manifest row, remove its raw files; the WAV's path."""
        import soundfile as sf

        if self.fds:
            for fd in self.fds.values():
                os.fsync(fd)
            self.close()
        n = max(os.path.getsize(self.paths[p]) // 2 for p in PARTIES)
        wav = self.archive / f"{self.call_id}.wav"
        part = wav.with_name(f".{wav.name}.part")
        with sf.SoundFile(part, "w", samplerate=SAMPLE_RATE, channels=2, subtype="PCM_16", format="WAV") as out, \
                open(self.paths["agent"], "rb") as agent, open(self.paths["customer"], "rb") as customer:
            for start in range(0, n, BLOCK):
                size = min(BLOCK, n - start)
                block = np.zeros((size, 2), dtype=np.int16)
                for ch, f in enumerate((agent, customer)):
                    got = np.frombuffer(f.read(size * 2), dtype="<i2")
                    block[: got.size, ch] = got
                out.write(block)
        with open(part, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(part, 0o600)  # private, as the recordings are
        os.replace(part, wav)
        add_manifest_row(self.archive, {"call_id": self.call_id, "path": wav.name, "agent_channel": "left",
                                        **{k: self.meta.get(k, "") for k in ("agent_id", "queue", "started_at")}})
        for p in PARTIES:
            self.paths[p].unlink(missing_ok=True)
        (self.live / f"{self.call_id}.json").unlink(missing_ok=True)
        return wav


def add_manifest_row(archive: Path, row: dict[str, str]) -> None:
    """Add (or replace, by call id) a call's row in ``ARCHIVE/manifest.csv``, atomically."""
    path = archive / "manifest.csv"
    with _manifest_lock:
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("call_id") != row["call_id"]]
        rows.append({k: row.get(k, "") for k in MANIFEST_COLUMNS})
        text = io.StringIO()
        w = csv.DictWriter(text, MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        write_atomic(path, text.getvalue(), durable=True)


def unfinished(archive: Path) -> list[str]:
    """Call ids whose audio is still under ``ARCHIVE/.live/`` (the server stopped during them)."""
    live = archive / ".live"
    return sorted(p.stem for p in live.glob("*.json")) if live.is_dir() else []


def recover(archive: Path) -> list[Path]:
    """Finish the calls a stopped server left under ``ARCHIVE/.live/``; their WAVs."""
    done = []
    for call_id in unfinished(archive):
        meta = json.loads((archive / ".live" / f"{call_id}.json").read_text())
        done.append(LiveRecording(archive, call_id, meta).finish())
    return done
