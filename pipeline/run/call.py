"""Process one call: read, transcribe, write its results. Runs inside a worker process."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from models.asr import default_threads, load_backend
from models.base import AsrBackend, fixed_numerics
from pipeline import __version__
from pipeline.ingest import audio
from pipeline.analysis.stage import AnalysisStage, redact_speaker_evidence
from pipeline.analysis.detectors.context import CallFacts
from pipeline.config import Config
from pipeline.errors import CallError, DiskFullError, TranscriptionError, is_disk_full
from pipeline.ingest.discover import CallInput
from pipeline.pii.text import masks_audio
from pipeline.interaction.utterances import AudioInfo, Utterance
from pipeline.speakers.stage import SpeakerStage, check_channels, relabel_record, with_override
from pipeline.run.stage_cache import SpeechResult, StageCache, speech_key
from pipeline.asr.transcribe import speech_regions, transcribe_call
from pipeline.interaction.writers import remove_stale_temps, remove_transcripts, write_json, write_transcripts

CALL_FILE = "call.json"
REDACTED_AUDIO = "audio_redacted.wav"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


WORK_DIR = ".work"
"""Folder of OUT where calls are decoded while they are processed (removed after each call,
and at the start of every run, so a killed run leaves nothing behind for long)."""


@contextmanager
def scratch_folder(path: Path) -> Iterator[Path]:
    """An empty folder at ``path`` for the duration of the block, removed afterwards (also
    when the block fails); whatever a killed process left there is removed first."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


BESIDE_NICENESS = 19
"""Scheduling niceness of the thread that diarizes a mono call beside its transcription (and
of the model threads it starts): the recogniser keeps the cores it can use and diarization
takes what it leaves idle, which is what makes it nearly free (Linux only, where niceness is
per thread)."""


def _lower_thread_priority() -> None:
    """Make the calling thread (and the threads it starts) yield the CPU to the others."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BESIDE_NICENESS)
        except OSError:
            pass  # not permitted here: diarization still runs beside, at normal priority


def beside_executor() -> ThreadPoolExecutor:
    """One low-priority thread for work run beside transcription. Models first used on it
    create their thread pools there, so those threads are low-priority too."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="callqa-beside", initializer=_lower_thread_priority)


@dataclass
class Outcome:
    """What happened to one call, as the batch records it."""

    call_id: str
    path: str
    status: str  # ok | failed | skipped
    duration_s: float = 0.0
    processing_s: float = 0.0
    error_type: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "call_id": self.call_id,
            "path": self.path,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "processing_s": round(self.processing_s, 3),
        }
        if self.error_type:
            d["error"] = {"type": self.error_type, "message": self.error}
        return d


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and the seconds it took (for work run on another thread)."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


class CallProcessor:
    """Holds a loaded model and the run's settings; processes calls one after another."""

    def __init__(self, config: Config, out_dir: Path, work_dir: Path | None = None):
        self.config = config
        self.out_dir = out_dir
        self.work_dir = work_dir or out_dir / WORK_DIR
        """Where calls are decoded while processed (``OUT/.work``; a node-local folder on Ray)."""
        self.config_hash = config.result_hash()
        threads = config.asr.threads or default_threads(config.run.workers)
        self._threads = threads
        self._backend: AsrBackend | None = None
        self.speakers = SpeakerStage(config.speakers, config.diarization, config.roles, threads)
        self.analysis = AnalysisStage(config, threads)
        self._beside = beside_executor()
        self.cache = StageCache(config.run.stage_cache) if config.run.stage_cache else None

    @property
    def backend(self) -> AsrBackend:
        """The ASR model, loaded on first use so that a batch of broken files loads none."""
        if self._backend is None:
            self._backend = load_backend(self.config.asr, self._threads)
        return self._backend

    def speech_models(self) -> dict[str, Any]:
        """Provenance of the models of the speech stage (loads the recogniser)."""
        return {
            "asr": self.backend.describe(),
            "vad": {"name": "silero-vad", "source": "faster-whisper assets", "enabled": self.config.vad.enabled},
            **self.speakers.describe(),
        }

    def provenance(self, speech_models: dict[str, Any]) -> dict[str, Any]:
        return {
            "callqa_version": __version__,
            "config_hash": self.config_hash,
            "config": self.config.to_dict(),
            "models": {**speech_models, **self.analysis.describe()},
            "plugins": self.analysis.card.plugins if self.analysis.card else [],  # detector plugin packages used
            "python": platform.python_version(),
        }

    def cached_speech(self, call: CallInput, sha256: str) -> SpeechResult | None:
        """The call's speech stage from the stage cache (None: off or not there)."""
        if self.cache is None:
            return None
        return self.cache.get(speech_key(self.config, sha256, call.metadata))

    def _decode(self, call: CallInput, scratch: Path) -> tuple[AudioInfo, Any, Any, float]:
        """The call decoded into ``scratch`` (read a block at a time: memory flat in length),
        after the channel check: (info, samples, check, seconds taken)."""
        t0 = time.perf_counter()
        info, samples = audio.load_to_disk(call.path, scratch, self.config.audio.max_duration_s)
        samples, channel_check = check_channels(samples, self.config.speakers)
        return info, samples, channel_check, time.perf_counter() - t0

    def _compute_speech(self, call: CallInput, sha256: str, info: AudioInfo, samples: Any, channel_check: Any,
                        decode_s: float = 0.0) -> SpeechResult:
        """Transcription, diarization and roles of a decoded call (no manual override), kept in
        the stage cache when there is one. Its ``stages`` holds the seconds of each step."""
        t0 = time.perf_counter()
        stages = {"decode": decode_s}
        regions = {ch: speech_regions(samples[ch], self.config.vad) for ch in range(samples.shape[0])}
        stages["vad"] = time.perf_counter() - t0
        # a mono call is diarized on a low-priority thread while it is transcribed: the
        # recogniser leaves part of the cores idle, so this costs far less than after it
        mono = samples.shape[0] == 1
        diarization = self._beside.submit(_timed, self.speakers.diarize, samples, regions[0]) if mono else None
        t = time.perf_counter()
        try:
            utterances = transcribe_call(samples, self.backend, self.config.vad, regions)
            stages["asr"] = time.perf_counter() - t
        except CallError:
            raise
        except (RuntimeError, ValueError, MemoryError) as e:
            raise TranscriptionError(call.path, f"speech recognition failed: {type(e).__name__}: {e}") from e
        finally:
            if diarization is not None:
                wait([diarization])  # it reads the decoded call, removed after the caller's block
        turns = None
        if diarization is not None:
            turns, stages["diarization"] = diarization.result()
        t = time.perf_counter()
        utterances, speakers = self.speakers.run(
            utterances, samples, channel_check, call.metadata, None, regions.get(0), turns
        )
        stages["speakers"] = time.perf_counter() - t
        result = SpeechResult(info, samples.shape[0], utterances, speakers, self.speech_models(),
                              time.perf_counter() - t0 + decode_s).normalised()
        result.stages = stages
        if self.cache is not None:
            self.cache.put(speech_key(self.config, sha256, call.metadata), result)
        return result

    def speech(self, call: CallInput, sha256: str) -> SpeechResult:
        """The call's speech stage: from the stage cache, or computed (and cached)."""
        hit = self.cached_speech(call, sha256)
        if hit is not None:
            return hit
        with scratch_folder(self.work_dir / call.call_id) as decoded, fixed_numerics():
            return self._compute_speech(call, sha256, *self._decode(call, decoded))

    def process(self, call: CallInput, sha256: str) -> Outcome:
        """Process one call and write its folder; a failure is written as a failed call.json."""
        with fixed_numerics():  # the same numbers on any worker split (models.base.NUMERIC_THREADS)
            return self._process(call, sha256)

    def _process(self, call: CallInput, sha256: str) -> Outcome:
        folder = self.out_dir / "calls" / call.call_id
        remove_stale_temps(folder)
        t0 = time.perf_counter()
        started = utc_now()
        info: AudioInfo | None = None
        try:
            with scratch_folder(self.work_dir / call.call_id) as decoded:
                speech = self.cached_speech(call, sha256)
                samples = None
                if speech is None:
                    info, samples, channel_check, decode_s = self._decode(call, decoded)
                    speech = self._compute_speech(call, sha256, info, samples, channel_check, decode_s)
                info = speech.info
                utterances, speakers = with_override(speech.utterances, speech.speakers, call.speaker_override)
                facts = CallFacts(info.duration_s, stereo=speech.channels == 2, metadata=call.metadata,
                                  company=call.metadata.get("company") or self.config.roles.company)
                t_analysis = time.perf_counter()
                blocks, written, spans = self.analysis.run(utterances, facts)
                t_mask = time.perf_counter()
                if masks_audio(self.config.pii):  # also with no span: the copy a reviewer may play
                    if samples is None:  # from the cache: the audio is decoded only to be redacted
                        samples = self._decode(call, decoded)[1]
                    self._redact_audio(samples, spans, utterances, folder)
                else:
                    (folder / REDACTED_AUDIO).unlink(missing_ok=True)  # from an earlier run
                mask_s = time.perf_counter() - t_mask
                analysis_s = t_mask - t_analysis
            t_write = time.perf_counter()
            write_transcripts(folder, written, info.channels, call.call_id)
            stages = {**speech.stages, "analysis": analysis_s, "mask_audio": mask_s,
                      "write": time.perf_counter() - t_write}
            elapsed = time.perf_counter() - t0
            record = self._record(call, sha256, info, "ok", started, elapsed, speech.models)
            record["processing"]["analysis_seconds"] = round(analysis_s, 3)
            record["processing"]["stages"] = {k: round(v, 3) for k, v in stages.items()}
            record["processing"]["stage_cache"] = "off" if self.cache is None else ("hit" if speech.cached else "miss")
            record["speakers"] = redact_speaker_evidence(speakers, written) if written is not utterances else speakers
            record["utterances"] = [u.to_dict() for u in written]
            record.update(blocks)
            write_json(folder / CALL_FILE, record, durable=True)
            return Outcome(call.call_id, str(call.path), "ok", info.duration_s, elapsed)
        except (DiskFullError, OSError) as e:
            if not isinstance(e, DiskFullError) and not is_disk_full(e):
                return self._unexpected(call, sha256, info, started, t0, folder, e)
            # nothing more is written (it could not be): the folder keeps what it held, and
            # the runner stops the batch on this outcome
            message = str(e) if isinstance(e, DiskFullError) else f"{folder}: the disk is full: {e.strerror}"
            return Outcome(call.call_id, str(call.path), "failed", info.duration_s if info else 0.0,
                           time.perf_counter() - t0, DiskFullError.__name__, message)
        except CallError as e:
            return self._fail(call, sha256, info, started, t0, folder, type(e).__name__, str(e))
        except Exception as e:  # noqa: BLE001 - one bad call must not end the batch
            return self._unexpected(call, sha256, info, started, t0, folder, e)

    def _unexpected(self, call: CallInput, sha256: str, info: AudioInfo | None, started: str, t0: float,
                    folder: Path, e: BaseException) -> Outcome:
        """Fail the call on an error callqa did not expect, with its type and message."""
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        return self._fail(call, sha256, info, started, t0, folder, type(e).__name__, f"{call.path}: unexpected error: {detail}")

    def _redact_audio(self, samples: Any, spans: list[Any], utterances: list[Utterance], folder: Path) -> None:
        """Write ``audio_redacted.wav`` (a tone or silence over every PII span), atomically: the
        only audio of the call the review app plays by default, so it is written for every call
        whose text is redacted (pii.redact_audio follows pii.redact), with or without spans."""
        from pipeline.pii.text import redact_audio

        channel_of = {u.id: u.channel for u in utterances}
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{REDACTED_AUDIO}.tmp"
        redact_audio(samples, spans, tmp, self.config.pii, channel_of)
        os.replace(tmp, folder / REDACTED_AUDIO)

    def relabel(self, call: CallInput, record: dict[str, Any]) -> Outcome:
        """Apply a changed manual speaker override to a finished call without redoing it."""
        folder = self.out_dir / "calls" / call.call_id
        t0 = time.perf_counter()
        record = relabel_record(record, call.speaker_override)
        utterances = [Utterance.from_dict(u) for u in record["utterances"]]
        write_transcripts(folder, utterances, record["source"].get("channels", 1), call.call_id)
        write_json(folder / CALL_FILE, record, durable=True)
        return Outcome(call.call_id, str(call.path), "ok", record["source"].get("duration_s", 0.0), time.perf_counter() - t0)

    def _fail(
        self, call: CallInput, sha256: str, info: AudioInfo | None, started: str, t0: float,
        folder: Path, etype: str, message: str,
    ) -> Outcome:
        elapsed = time.perf_counter() - t0
        remove_transcripts(folder)
        record = self._record(call, sha256, info, "failed", started, elapsed)
        record["error"] = {"type": etype, "message": message}
        record["utterances"] = []
        write_json(folder / CALL_FILE, record, durable=True)
        return Outcome(call.call_id, str(call.path), "failed", info.duration_s if info else 0.0, elapsed, etype, message)

    def _record(
        self, call: CallInput, sha256: str, info: AudioInfo | None, status: str, started: str, elapsed: float,
        speech_models: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        source: dict[str, Any] = {"path": str(call.path), "sha256": sha256}
        if info is not None:
            source.update(
                duration_s=round(info.duration_s, 3),
                sample_rate=info.sample_rate,
                channels=info.channels,
                format=info.format,
                codec=info.codec,
            )
        provenance = self.provenance(speech_models or {}) if status == "ok" else {
            "callqa_version": __version__, "config_hash": self.config_hash, "config": self.config.to_dict(),
        }
        rtf = (info.duration_s / elapsed) if (info and elapsed > 0) else None
        return {
            "call_id": call.call_id,
            "status": status,
            "source": source,
            "metadata": call.metadata,
            "provenance": provenance,
            "processing": {"started_at": started, "seconds": round(elapsed, 3), "realtime_factor": round(rtf, 2) if rtf else None},
        }
