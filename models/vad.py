"""Voice activity detection: find speech, hand the recogniser only speech, map times back.

Uses the Silero VAD model that ships inside faster-whisper (ONNX, offline), with
faster-whisper's rules from speech probabilities to regions (written out here so that the
probabilities, the costly part, are computed once per call and serve the diarizer's tighter
turn settings too). The same VAD runs in front of every ASR backend, so backends are compared
on equal terms.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

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


VAD_WINDOW = 512
"""Samples of audio per Silero speech probability (32 ms at 16 kHz)."""


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability of each VAD_WINDOW samples of ``audio`` (float32 mono 16 kHz),
    computed as faster-whisper computes them: the audio padded with zeros to whole windows (with
    a whole window of them when it is whole already), so ``audio.size // VAD_WINDOW + 1``
    probabilities (float32)."""
    from faster_whisper.vad import get_vad_model

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    padded = np.pad(audio, (0, VAD_WINDOW - audio.size % VAD_WINDOW))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def speech_from_probabilities(probabilities: np.ndarray, n_samples: int, options: VadOptions) -> list[SpeechRegion]:
    """Speech regions of ``n_samples`` of audio from their speech probabilities
    (:func:`speech_probabilities`) with the settings of ``options``: the steps of
    faster-whisper's ``get_speech_timestamps`` after its model (the same regions to the
    sample), so that one run of the model serves several settings (transcription's regions and
    the diarizer's turns)."""
    window = VAD_WINDOW
    threshold = options.threshold
    neg_threshold = options.neg_threshold if options.neg_threshold is not None else max(threshold - 0.15, 0.01)
    min_speech = SAMPLE_RATE * options.min_speech_duration_ms / 1000
    pad = SAMPLE_RATE * options.speech_pad_ms / 1000
    max_speech = SAMPLE_RATE * options.max_speech_duration_s - window - 2 * pad
    min_silence = SAMPLE_RATE * options.min_silence_duration_ms / 1000
    min_silence_at_max_speech = SAMPLE_RATE * 98 / 1000

    # Probabilities stay float32 numbers: compared with the thresholds as faster-whisper does.
    triggered = False
    speeches: list[dict[str, int]] = []
    current: dict[str, int] = {}
    temp_end = 0  # where a pause began (0: none), ending the speech if it lasts
    prev_end = next_start = 0  # the last pause long enough to split a too-long stretch at
    for i, prob in enumerate(np.asarray(probabilities, dtype=np.float32).reshape(-1)):
        here = window * i
        if prob >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = here
        if prob >= threshold and not triggered:
            triggered = True
            current["start"] = here
            continue
        if triggered and here - current["start"] > max_speech:
            if prev_end:
                current["end"] = prev_end
                speeches.append(current)
                current = {}
                if next_start < prev_end:  # silence since the split point: not speech now
                    triggered = False
                else:
                    current["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current["end"] = here
                speeches.append(current)
                current = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if prob < neg_threshold and triggered:
            if not temp_end:
                temp_end = here
            if here - temp_end > min_silence_at_max_speech:
                prev_end = temp_end
            if here - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current = {}
            prev_end = next_start = temp_end = 0
            triggered = False
            continue
    if current and n_samples - current["start"] > min_speech:
        current["end"] = n_samples
        speeches.append(current)

    for i, speech in enumerate(speeches):  # padding, split in two where stretches are closer
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - speech["end"]
            if gap < 2 * pad:
                speech["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                speech["end"] = int(min(n_samples, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(n_samples, speech["end"] + pad))
    return [SpeechRegion(int(s["start"]), int(s["end"])) for s in speeches]


def detect_speech(audio: np.ndarray, options: VadOptions) -> list[SpeechRegion]:
    """Speech regions of ``audio`` (float32 mono 16 kHz); the whole audio when VAD is off."""
    if audio.size == 0:
        return []
    if not options.enabled:
        return [SpeechRegion(0, int(audio.size))]
    return speech_from_probabilities(speech_probabilities(audio), int(audio.size), options)


VAD_BLOCK_S = 600.0
"""``speech_regions`` runs VAD over blocks of at most this many seconds, so that its memory
does not grow with the length of the call."""


class SpeechRegions(list):
    """The speech regions of a channel (a list of SpeechRegion, as :func:`speech_regions` finds
    them), with the speech probabilities they were found from: ``probabilities`` holds, for
    each block of VAD_BLOCK_S seconds of the channel in turn, :func:`speech_probabilities` of
    that block (None when VAD is off). Whoever needs speech found with other settings on the
    same audio (the diarizer's turns) reads them instead of running the model again."""

    def __init__(self, regions: Any = (), probabilities: list[np.ndarray] | None = None):
        super().__init__(regions)
        self.probabilities = probabilities


def block_probabilities(audio: np.ndarray) -> list[np.ndarray]:
    """:func:`speech_probabilities` of each block of VAD_BLOCK_S seconds of a channel (an
    array or anything sliced like one), as :func:`speech_regions` keeps them."""
    block = max(1, int(VAD_BLOCK_S * SAMPLE_RATE))
    return [speech_probabilities(audio[offset : offset + block]) for offset in range(0, audio.size, block)]


def matching_probabilities(probabilities: Any, n_samples: int) -> bool:
    """Whether ``probabilities`` has the shape :func:`block_probabilities` gives a channel of
    ``n_samples`` samples."""
    block = max(1, int(VAD_BLOCK_S * SAMPLE_RATE))
    sizes = [min(block, n_samples - offset) for offset in range(0, n_samples, block)]
    return (isinstance(probabilities, list) and len(probabilities) == len(sizes)
            and all(np.shape(p) == (n // VAD_WINDOW + 1,) for p, n in zip(probabilities, sizes)))


def speech_regions(audio: np.ndarray, options: VadOptions) -> SpeechRegions:
    """Speech regions of a channel (an array or anything sliced like one), found block by
    block; regions touching across a block boundary are joined. The speech probabilities
    come with them (:class:`SpeechRegions`)."""
    block = max(1, int(VAD_BLOCK_S * SAMPLE_RATE))
    regions = SpeechRegions(probabilities=[] if options.enabled else None)
    for offset in range(0, audio.size, block):
        piece = audio[offset : offset + block]
        if options.enabled and piece.size:
            probs = speech_probabilities(piece)
            regions.probabilities.append(probs)
            found = speech_from_probabilities(probs, int(piece.size), options)
        else:
            found = detect_speech(piece, options)
        for r in found:
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
