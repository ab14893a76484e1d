"""The ``recording`` source: a call recorded to a file, decoded, transcribed and attributed.

For each call: the channel check, voice-activity regions, transcription (a mono call diarized
beside it on a low-priority thread), and the speaker stage (channels or diarization turns, then
roles), kept in the stage cache when there is one (pipeline/run/stage_cache.py). The models load
once per worker, the recogniser on first use so that a batch of broken files loads none.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.asr import default_threads, load_backend
from models.base import AsrBackend
from pipeline.config import Config
from pipeline.errors import CallError, TranscriptionError
from pipeline.ingest import audio
from pipeline.ingest.discover import CallInput
from pipeline.ingest.sources import Conversation, Source
from pipeline.interaction.record import RECORDING, SourceInfo
from pipeline.interaction.utterances import AudioInfo
from pipeline.run.stage_cache import SpeechResult, StageCache, speech_key
from pipeline.asr.transcribe import speech_regions, transcribe_call
from pipeline.speakers.stage import SpeakerStage, check_channels

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


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and the seconds it took (for work run on another thread)."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


def source_info(info: AudioInfo, sha256: str) -> SourceInfo:
    """The record's ``source`` for a recording."""
    return SourceInfo(RECORDING, str(info.path), sha256, info.duration_s, info.sample_rate, info.channels,
                      info.format, info.codec)


class RecordingSource(Source):
    """Reads recorded calls (see the module docstring)."""

    kind = RECORDING

    def __init__(self, config: Config, work_dir: Path, threads: int | None = None):
        self.config = config
        self.work_dir = work_dir
        self._threads = threads or config.asr.threads or default_threads(config.run.workers)
        self._backend: AsrBackend | None = None
        self._noisy_backend: AsrBackend | None = None
        self.speakers = SpeakerStage(config.speakers, config.diarization, config.roles, self._threads)
        self._beside = beside_executor()
        self.cache = StageCache(config.run.stage_cache) if config.run.stage_cache else None

    @property
    def backend(self) -> AsrBackend:
        """The ASR model, loaded on first use so that a batch of broken files loads none."""
        if self._backend is None:
            self._backend = load_backend(self.config.asr, self._threads)
        return self._backend

    @property
    def noisy_backend(self) -> AsrBackend:
        """The model for calls on a noisy floor (``asr.noisy_model``), loaded on first use."""
        if self._noisy_backend is None:
            self._noisy_backend = load_backend(replace(self.config.asr, model=self.config.asr.noisy_model), self._threads)
        return self._noisy_backend

    def recogniser(self, channel_check: Any) -> tuple[AsrBackend, dict[str, Any] | None]:
        """The recogniser for a call, and why when it is the noisy-floor model: a channel whose
        speech stands less than ``asr.noisy_below_db`` (``noisy_below_db_mono`` for a call heard
        on one channel) above its background level."""
        asr = self.config.asr
        margins = channel_check.background_margin_db
        bar = asr.noisy_below_db_mono if margins and len(margins) == 1 else asr.noisy_below_db
        if not asr.noisy_model or not margins or min(margins) >= bar:
            return self.backend, None
        return self.noisy_backend, {"noisy_floor": {"background_margin_db": round(min(margins), 1), "below_db": bar}}

    def describe(self, backend: AsrBackend | None = None, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
        """Provenance of the models of the speech stage (loads the recogniser): ``backend``, the
        recogniser the call used (default: ``asr.model``'s), and why it was chosen."""
        return {
            "asr": {**(backend or self.backend).describe(), **(chosen or {})},
            "vad": {"name": "silero-vad", "source": "faster-whisper assets", "enabled": self.config.vad.enabled},
            **self.speakers.describe(),
        }

    def cached_speech(self, call: CallInput, sha256: str) -> SpeechResult | None:
        """The call's speech stage from the stage cache (None: off or not there)."""
        if self.cache is None:
            return None
        return self.cache.get(speech_key(self.config, sha256, call.metadata))

    def decode(self, call: CallInput, scratch: Path) -> tuple[AudioInfo, Any, Any, float]:
        """The call decoded into ``scratch`` (read a block at a time: memory flat in length),
        after the channel check: (info, samples, check, seconds taken)."""
        t0 = time.perf_counter()
        info, samples = audio.load_to_disk(call.path, scratch, self.config.audio.max_duration_s)
        samples, channel_check = check_channels(samples, self.config.speakers)
        return info, samples, channel_check, time.perf_counter() - t0

    def compute_speech(self, call: CallInput, sha256: str, info: AudioInfo, samples: Any, channel_check: Any,
                       decode_s: float = 0.0) -> SpeechResult:
        """Transcription, diarization and roles of a decoded call (no manual override), kept in
        the stage cache when there is one. Its ``stages`` holds the seconds of each step."""
        t0 = time.perf_counter()
        self.speakers.begin()
        stages = {"decode": decode_s}
        regions = {ch: speech_regions(samples[ch], self.config.vad) for ch in range(samples.shape[0])}
        stages["vad"] = time.perf_counter() - t0
        # a mono call is diarized on a low-priority thread while it is transcribed: the
        # recogniser leaves part of the cores idle, so this costs far less than after it
        mono = samples.shape[0] == 1
        diarization = self._beside.submit(_timed, self.speakers.diarize, samples, regions[0]) if mono else None
        t = time.perf_counter()
        try:
            backend, chosen = self.recogniser(channel_check)
            utterances = transcribe_call(samples, backend, self.config.vad, regions)
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
            utterances, samples, channel_check, call.metadata, None, regions, turns
        )
        stages["speakers"] = time.perf_counter() - t
        result = SpeechResult(info, samples.shape[0], utterances, speakers, self.describe(backend, chosen),
                              time.perf_counter() - t0 + decode_s).normalised()
        result.stages = stages
        if self.cache is not None:
            self.cache.put(speech_key(self.config, sha256, call.metadata), result)
        return result

    def speech(self, call: CallInput, sha256: str, scratch: Path) -> tuple[SpeechResult, Any]:
        """The call's speech stage, from the stage cache or computed (and cached), and its
        decoded samples when they were decoded (None on a cache hit). Run it under
        models.base.fixed_numerics."""
        hit = self.cached_speech(call, sha256)
        if hit is not None:
            return hit, None
        info, samples, channel_check, decode_s = self.decode(call, scratch)
        try:
            return self.compute_speech(call, sha256, info, samples, channel_check, decode_s), samples
        except Exception as e:
            e.source = source_info(info, sha256)  # type: ignore[attr-defined]  # kept in the failed record
            raise

    @contextmanager
    def open(self, call: CallInput, sha256: str, scratch: Path) -> Iterator[Conversation]:
        speech, samples = self.speech(call, sha256, scratch)
        decoded = [samples]

        def read_audio() -> Any:  # from the cache: the audio is decoded only when it is asked for
            if decoded[0] is None:
                decoded[0] = self.decode(call, scratch)[1]
            return decoded[0]

        yield Conversation(
            source_info(speech.info, sha256), speech.utterances, speech.speakers,
            separate_channels=speech.channels == 2, models=speech.models, stages=dict(speech.stages),
            cache="off" if self.cache is None else ("hit" if speech.cached else "miss"), audio=read_audio,
        )
