"""Redacting personal data in a call's audio: each PII span masked with a tone or silence.

Kept apart from the transcript detection in pipeline/pii/text.py because it is the only part that
touches samples (numpy, soundfile). The call's audio may be kept on disk (a DiskRecording) rather
than in memory, so the copy is written a block at a time; each span is masked on its speaker's
channel only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError

from pipeline.pii.options import PiiOptions, PiiSpan

RATE = 16000
TONE_HZ = 1000.0
TONE_LEVEL = 0.1
"""Peak of the redaction tone (-20 dBFS): clearly audible, never louder than speech."""
_BLOCK = RATE * 30
"""Samples read and written at a time by :func:`redact_audio`."""


def redact_audio(samples: Any, spans: Sequence[PiiSpan], path: str | Path, options: PiiOptions,
                 channel_of: Mapping[str, int]) -> float:
    """Write ``samples`` ((channels, n) float32 at 16 kHz, an array or a DiskRecording) to a
    16-bit WAV at ``path`` with every span (± ``audio_pad_s``) replaced by a 1 kHz tone or
    silence, on the span's channel only (``channel_of``: utterance id -> channel; all channels
    when unknown or mono). Reads and writes a block at a time. Returns the seconds masked
    (summed over channels)."""
    try:
        import soundfile as sf
    except ImportError as e:
        raise ConfigError("audio redaction needs the Python package 'soundfile'") from e
    channels, n = samples.shape
    masks: list[list[tuple[int, int]]] = [[] for _ in range(channels)]
    for s in spans:
        a = max(0, math.floor((s.start - options.audio_pad_s) * RATE))
        b = min(n, math.ceil((s.end + options.audio_pad_s) * RATE))
        ch = channel_of.get(s.utterance_id)
        for c in ([ch] if channels > 1 and ch is not None and 0 <= ch < channels else range(channels)):
            masks[c].append((a, b))
    for c in range(channels):
        merged: list[tuple[int, int]] = []
        for a, b in sorted(masks[c]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            elif b > a:
                merged.append((a, b))
        masks[c] = merged
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=channels, subtype="PCM_16", format="WAV") as out:
        for start in range(0, n, _BLOCK):
            stop = min(n, start + _BLOCK)
            block = np.empty((stop - start, channels), dtype=np.float32)
            for c in range(channels):
                block[:, c] = samples[c, start:stop]
                for a, b in masks[c]:
                    lo, hi = max(a, start), min(b, stop)
                    if lo >= hi:
                        continue
                    if options.audio_method == "tone":
                        t = np.arange(lo, hi, dtype=np.float64) * (2 * np.pi * TONE_HZ / RATE)
                        block[lo - start:hi - start, c] = (TONE_LEVEL * np.sin(t)).astype(np.float32)
                    else:
                        block[lo - start:hi - start, c] = 0.0
            np.clip(block, -1.0, 1.0, out=block)
            out.write(block)
    return sum(b - a for m in masks for a, b in m) / RATE
