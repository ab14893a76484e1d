"""Process one interaction: its source reads it, the analysis stage answers the scorecard, the
interaction record and transcripts are written. Runs inside a worker process."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from models.asr import default_threads
from models.base import fixed_numerics
from pipeline import __version__
from pipeline.analysis.detectors.context import CallFacts
from pipeline.analysis.stage import AnalysisStage, pii_texts, redact_speaker_evidence, redact_strings
from pipeline.config import Config
from pipeline.errors import CallError, DiskFullError, is_disk_full
from pipeline.ingest.discover import CallInput
from pipeline.ingest.sources import SOURCES, Source
from pipeline.interaction.record import RECORDING, Interaction, SourceInfo
from pipeline.interaction.utterances import Utterance
from pipeline.interaction.writers import remove_stale_temps, remove_transcripts, write_thread, write_transcripts
from pipeline.pii.text import masks_audio, redact_audio
from pipeline.run.stage_cache import SpeechResult
from pipeline.run.written import message_block, redacted_signatures
from pipeline.speakers.stage import relabel_record, with_override

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


class CallProcessor:
    """Holds the run's settings, its sources (one per kind, each with its models) and the
    analysis stage; processes interactions one after another, whatever their source: the
    source yields a Conversation, the one analysis stage answers the scorecard, and the
    interaction record is written (pipeline/interaction/record.py)."""

    def __init__(self, config: Config, out_dir: Path, work_dir: Path | None = None):
        self.config = config
        self.out_dir = out_dir
        self.work_dir = work_dir or out_dir / WORK_DIR
        """Where calls are decoded while processed (``OUT/.work``; a node-local folder on Ray)."""
        self.config_hash = config.result_hash()
        self._config_dict = config.to_dict()
        """The config as every record's provenance gives it (made once: records only write it)."""
        self._threads = config.asr.threads or default_threads(config.run.workers)
        self.analysis = AnalysisStage(config, self._threads)
        self._sources: dict[str, Source] = {}

    def source(self, kind: str) -> Source:
        """The source reading ``kind`` (built on first use, kept for the worker's life)."""
        if kind not in self._sources:
            self._sources[kind] = SOURCES.get(kind)(self.config, self.work_dir, self._threads)
        return self._sources[kind]

    @property
    def recording(self) -> Any:
        """The source of recorded calls (pipeline/run/recording.py)."""
        return self.source(RECORDING)

    def speech(self, call: CallInput, sha256: str) -> SpeechResult:
        """A recorded call's speech stage: from the stage cache, or computed (and cached)."""
        with scratch_folder(self.work_dir / call.call_id) as decoded, fixed_numerics():
            return self.recording.speech(call, sha256, decoded)[0]

    def provenance(self, speech_models: dict[str, Any]) -> dict[str, Any]:
        return {
            "callqa_version": __version__,
            "config_hash": self.config_hash,
            "config": self._config_dict,
            "models": {**speech_models, **self.analysis.describe()},
            "plugins": self.analysis.card.plugins if self.analysis.card else [],  # detector plugin packages used
            "python": platform.python_version(),
        }

    def process(self, call: CallInput, sha256: str) -> Outcome:
        """Process one call and write its folder; a failure is written as a failed call.json."""
        with fixed_numerics():  # the same numbers on any worker split (models.base.NUMERIC_THREADS)
            return self._process(call, sha256)

    def _process(self, call: CallInput, sha256: str) -> Outcome:
        folder = self.out_dir / "calls" / call.call_id
        remove_stale_temps(folder)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        started = utc_now()
        source: SourceInfo | None = None
        try:
            reader = self.source(call.kind)
            scratch_path = self.work_dir / call.call_id
            with (scratch_folder(scratch_path) if reader.uses_scratch else nullcontext(scratch_path)) as scratch, \
                    reader.open(call, sha256, scratch) as conversation:
                source = conversation.source
                utterances, speakers = with_override(conversation.utterances, conversation.speakers,
                                                     call.speaker_override)
                facts = CallFacts(conversation.duration_s, stereo=conversation.separate_channels,
                                  metadata=call.metadata, company=call.metadata.get("company") or self.config.roles.company,
                                  source=source.kind, messages=conversation.messages)
                t_analysis = time.perf_counter()
                blocks, written, spans = self.analysis.run(utterances, facts)
                t_mask = time.perf_counter()
                if conversation.audio is not None and masks_audio(self.config.pii):
                    # also with no span: the copy a reviewer may play
                    self._redact_audio(conversation.audio(), spans, utterances, folder)
                else:
                    (folder / REDACTED_AUDIO).unlink(missing_ok=True)  # from an earlier run
                mask_s = time.perf_counter() - t_mask
                analysis_s = t_mask - t_analysis
            t_write = time.perf_counter()
            messages = None
            if conversation.messages is not None:
                messages = message_block(conversation.messages, redacted_signatures(
                    conversation.messages, self.config.pii, facts.company))
                if written is not utterances:  # subjects, names and signatures masked as the text is
                    messages = redact_strings(messages, pii_texts(utterances, spans))
                write_thread(folder, written, messages, call.call_id)
            else:
                write_transcripts(folder, written, source.channels or 1, call.call_id, speakers)
            stages = {**conversation.stages, "analysis": analysis_s, "mask_audio": mask_s,
                      "write": time.perf_counter() - t_write}
            elapsed = time.perf_counter() - t0
            record = self._record(call, source, "ok", started, elapsed, conversation.models)
            record.processing["analysis_seconds"] = round(analysis_s, 3)
            # the CPU time the worker spent on it (all its threads; the wall time above also
            # counts waiting for a core on a busy machine)
            record.processing["cpu_seconds"] = round(time.process_time() - cpu0, 3)
            record.processing["stages"] = {k: round(v, 3) for k, v in stages.items()}
            if conversation.cache is not None:
                record.processing["stage_cache"] = conversation.cache
            record.speakers = redact_speaker_evidence(speakers, written) if written is not utterances else speakers
            record.utterances = written
            record.blocks = blocks
            if messages is not None:
                record.extra["messages"] = messages
            record.save(folder)
            return Outcome(call.call_id, str(call.path), "ok", source.duration_s or 0.0, elapsed)
        except (DiskFullError, OSError) as e:
            if not isinstance(e, DiskFullError) and not is_disk_full(e):
                return self._unexpected(call, sha256, source, started, t0, folder, e)
            # nothing more is written (it could not be): the folder keeps what it held, and
            # the runner stops the batch on this outcome
            message = str(e) if isinstance(e, DiskFullError) else f"{folder}: the disk is full: {e.strerror}"
            return Outcome(call.call_id, str(call.path), "failed", _seconds(source),
                           time.perf_counter() - t0, DiskFullError.__name__, message)
        except CallError as e:  # what a source knew of the input before it failed is kept
            return self._fail(call, sha256, source or getattr(e, "source", None), started, t0, folder,
                              type(e).__name__, str(e))
        except Exception as e:  # noqa: BLE001 - one bad call must not end the batch
            return self._unexpected(call, sha256, source or getattr(e, "source", None), started, t0, folder, e)

    def _unexpected(self, call: CallInput, sha256: str, source: SourceInfo | None, started: str, t0: float,
                    folder: Path, e: BaseException) -> Outcome:
        """Fail the call on an error callqa did not expect, with its type and message."""
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        return self._fail(call, sha256, source, started, t0, folder, type(e).__name__, f"{call.path}: unexpected error: {detail}")

    def _redact_audio(self, samples: Any, spans: list[Any], utterances: list[Utterance], folder: Path) -> None:
        """Write ``audio_redacted.wav`` (a tone or silence over every PII span), atomically: the
        only audio of the call the review app plays by default, so it is written for every call
        whose text is redacted (pii.redact_audio follows pii.redact), with or without spans."""
        channel_of = {u.id: u.channel for u in utterances}
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{REDACTED_AUDIO}.tmp"
        redact_audio(samples, spans, tmp, self.config.pii, channel_of)
        os.replace(tmp, folder / REDACTED_AUDIO)

    def relabel(self, call: CallInput, record: Interaction) -> Outcome:
        """Apply a changed manual speaker override to a finished call without redoing it."""
        folder = self.out_dir / "calls" / call.call_id
        t0 = time.perf_counter()
        relabel_record(record, call.speaker_override)
        write_transcripts(folder, record.utterances, record.source.channels or 1, call.call_id, record.speakers)
        record.save(folder)
        return Outcome(call.call_id, str(call.path), "ok", record.duration_s, time.perf_counter() - t0)

    def _fail(
        self, call: CallInput, sha256: str, source: SourceInfo | None, started: str, t0: float,
        folder: Path, etype: str, message: str,
    ) -> Outcome:
        elapsed = time.perf_counter() - t0
        remove_transcripts(folder)
        record = self._record(call, source or SourceInfo(call.kind, str(call.path), sha256), "failed", started, elapsed)
        record.error = {"type": etype, "message": message}
        record.save(folder)
        return Outcome(call.call_id, str(call.path), "failed", _seconds(source), elapsed, etype, message)

    def _record(self, call: CallInput, source: SourceInfo, status: str, started: str, elapsed: float,
                speech_models: dict[str, Any] | None = None) -> Interaction:
        provenance = self.provenance(speech_models or {}) if status == "ok" else {
            "callqa_version": __version__, "config_hash": self.config_hash, "config": self._config_dict,
        }
        rtf = (source.duration_s / elapsed) if (source.duration_s and elapsed > 0) else None
        return Interaction(
            call.call_id, status, source, metadata=call.metadata, provenance=provenance,
            processing={"started_at": started, "seconds": round(elapsed, 3),
                        "realtime_factor": round(rtf, 2) if rtf else None},
            utterances=[],
        )


def _seconds(source: SourceInfo | None) -> float:
    """The interaction's length as far as it is known."""
    return float(source.duration_s or 0.0) if source is not None else 0.0
