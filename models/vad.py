"""Voice activity detection: find speech, hand the recogniser only speech, map times back.

Uses the Silero VAD model that ships inside faster-whisper (ONNX, offline). The same VAD runs
in front of every ASR backend, so backends are compared on equal terms.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from models.base import SAMPLE_RATE
from models.errors import check_options


@dataclass
class VadOptions:
    """Voice activity detection settings (the ``vad`` section of the config).

    The defaults are tuned for telephone audio: quiet, band-limited 8 kHz speech scores lower
    in Silero than studio speech, so Silero's own defaults (threshold 0.5, 30 ms padding) cut
    words away. A lower threshold and generous padding keep them (see README, "VAD tuning").
    """

    enabled: bool = True
    """Run VAD before recognition. Off: the whole channel is recognised (slower, and Whisper may
    write text on long silences)."""
    threshold: float = 0.15
    """Silero speech probability above which a frame is speech (Silero's default: 0.5)."""
    neg_threshold: float | None = None
    """Probability below which speech ends; null = ``threshold - 0.15``."""
    min_speech_duration_ms: int = 100
    """Speech stretches shorter than this are dropped as clicks."""
    min_silence_duration_ms: int = 500
    """A pause must last this long to end a speech stretch."""
    speech_pad_ms: int = 400
    """Padding kept on each side of every speech stretch (Silero's default: 30)."""
    max_speech_duration_s: float = 30.0
    """Longer speech stretches are split at their longest pause."""


def validate(options: VadOptions) -> None:
    """Raise ConfigError for options that contradict each other (each key's own range is
    checked as the config is read, pipeline/config.py)."""
    checks = [
        (options.neg_threshold is None or options.neg_threshold <= options.threshold, "neg_threshold",
         "null or a probability at most threshold (speech ends below it)"),
    ]
    check_options("vad", options, checks)


@dataclass
class SpeechRegion:
    """A stretch of speech, in samples of the 16 kHz audio."""

    start: int
    end: int


def detect_speech(audio: np.ndarray, options: VadOptions) -> list[SpeechRegion]:
    """Speech regions of ``audio`` (float32 mono 16 kHz); the whole audio when VAD is off."""
    if audio.size == 0:
        return []
    if not options.enabled:
        return [SpeechRegion(0, int(audio.size))]
    from faster_whisper.vad import VadOptions as SileroOptions
    from faster_whisper.vad import get_speech_timestamps

    silero = SileroOptions(
        threshold=options.threshold,
        neg_threshold=options.neg_threshold,
        min_speech_duration_ms=options.min_speech_duration_ms,
        max_speech_duration_s=options.max_speech_duration_s,
        min_silence_duration_ms=options.min_silence_duration_ms,
        speech_pad_ms=options.speech_pad_ms,
    )
    stamps = get_speech_timestamps(audio, silero, sampling_rate=SAMPLE_RATE)
    return [SpeechRegion(int(s["start"]), int(s["end"])) for s in stamps]


VAD_BLOCK_S = 600.0
"""``speech_regions`` runs VAD over blocks of at most this many seconds, so that its memory
does not grow with the length of the call."""


def speech_regions(audio: np.ndarray, options: VadOptions) -> list[SpeechRegion]:
    """Speech regions of a channel (an array or anything sliced like one), found block by
    block; regions touching across a block boundary are joined."""
    block = max(1, int(VAD_BLOCK_S * SAMPLE_RATE))
    regions: list[SpeechRegion] = []
    for offset in range(0, audio.size, block):
        for r in detect_speech(audio[offset : offset + block], options):
            start, end = r.start + offset, r.end + offset
            if regions and start <= regions[-1].end:
                regions[-1] = SpeechRegion(regions[-1].start, max(end, regions[-1].end))
            else:
                regions.append(SpeechRegion(start, end))
    return regions


class SpeechOnlyAudio:
    """The speech regions of a recording joined end to end, with the map back to its times."""

    def __init__(self, audio: np.ndarray, regions: list[SpeechRegion]):
        self.regions = regions
        self.audio = (
            np.concatenate([audio[r.start : r.end] for r in regions]).astype(np.float32, copy=False)
            if regions
            else np.zeros(0, dtype=np.float32)
        )
        # Where each region ends in the joined audio, and the silence dropped before it.
        self._joined_ends: list[float] = []
        self._offsets: list[float] = []
        joined = 0
        for r in regions:
            self._offsets.append((r.start - joined) / SAMPLE_RATE)
            joined += r.end - r.start
            self._joined_ends.append(joined / SAMPLE_RATE)

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE

    def region_index(self, t: float) -> int:
        """Index of the region a time in the joined audio falls in."""
        if not self._joined_ends:
            return 0
        return min(bisect.bisect_right(self._joined_ends, t), len(self._joined_ends) - 1)

    def to_original(self, t: float, region: int | None = None) -> float:
        """Map a time in the joined audio back to the time in the recording."""
        if not self._offsets:
            return t
        if region is None:
            region = self.region_index(t)
        return t + self._offsets[region]
