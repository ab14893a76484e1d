"""Write small audio fixtures of every supported format, and broken files of every kind.

Made at test time with soundfile and PyAV (no binaries, no downloads), so the suite carries
no binary fixtures and the formats are exactly what the names say.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import soundfile as sf

WAV_SUBTYPES = {
    "wav_pcm8": "PCM_U8", "wav_pcm16": "PCM_16", "wav_pcm24": "PCM_24", "wav_pcm32": "PCM_32",
    "wav_float": "FLOAT", "wav_ulaw": "ULAW", "wav_alaw": "ALAW",
}
FORMATS = [*WAV_SUBTYPES, "flac", "mp3", "opus", "vorbis", "m4a"]
EXTENSIONS = {**{k: ".wav" for k in WAV_SUBTYPES}, "flac": ".flac", "mp3": ".mp3", "opus": ".opus", "vorbis": ".ogg", "m4a": ".m4a"}
# Encoders take only some rates; the fixture is written at the nearest one they accept.
OPUS_RATE = 48000


def tone(seconds: float, rate: int, channels: int, freq: float = 440.0) -> np.ndarray:
    """A sine tone of shape (channels, n); channel k has frequency ``freq * (k + 1)``."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)]).astype(np.float32)


def _encode_av(path: Path, samples: np.ndarray, rate: int, codec: str, container_format: str | None) -> None:
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_audio(path: Path, samples: np.ndarray, rate: int, fmt: str) -> Path:
    """Write ``samples`` (channels, n) at ``rate`` in format ``fmt`` (one of FORMATS)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = samples.T
    if fmt in WAV_SUBTYPES:
        sf.write(path, data, rate, format="WAV", subtype=WAV_SUBTYPES[fmt])
    elif fmt == "flac":
        sf.write(path, data, rate, format="FLAC")
    elif fmt == "mp3":
        sf.write(path, data, rate, format="MP3")
    elif fmt == "vorbis":
        sf.write(path, data, rate, format="OGG", subtype="VORBIS")
    elif fmt == "opus":
        _encode_av(path, samples, rate, "libopus", "ogg")
    elif fmt == "m4a":
        _encode_av(path, samples, rate, "aac", "ipod")
    else:
        raise ValueError(f"unknown fixture format {fmt!r}; known: {', '.join(FORMATS)}")
    return path


BROKEN_KINDS = (
    "empty", "text", "random_bytes", "png", "zero_length_wav", "truncated_wav", "truncated_mp3",
    "truncated_flac", "corrupt_mp3", "three_channels",
    *("wav_bits_0", "wav_channels_0", "wav_channels_65535", "wav_unknown_format", "wav_rate_0"),
    "truncated_opus", "truncated_vorbis", "damaged_flac",
)

# WAV headers that lie: (byte offset in a plain 44-byte PCM header, struct format, value)
_WAV_LIES = {
    "wav_bits_0": (34, "<H", 0), "wav_channels_0": (22, "<H", 0), "wav_channels_65535": (22, "<H", 65535),
    "wav_unknown_format": (20, "<H", 0x1234), "wav_rate_0": (24, "<I", 0),
}


def _overwrite_inside(path: Path, fmt: str, seconds: float, at: int, count: int, rng: np.random.Generator) -> None:
    """Write a tone as ``fmt`` to ``path`` with ``count`` random bytes from 1/``at`` of the file on."""
    whole = path.with_name(path.name + ".whole")
    write_audio(whole, tone(seconds, 8000, 1), 8000, fmt)
    data = bytearray(whole.read_bytes())
    whole.unlink()
    start = len(data) // at
    data[start : start + count] = rng.integers(0, 256, count, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def make_broken(path: Path, kind: str) -> Path:
    """Write a broken recording of ``kind`` (one of BROKEN_KINDS) at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("call_id,agent\n1,Dana\n" * 20)
    elif kind == "random_bytes":
        path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
    elif kind == "zero_length_wav":
        sf.write(path, np.zeros((0, 1), dtype=np.float32), 8000, format="WAV", subtype="PCM_16")
    elif kind == "three_channels":
        sf.write(path, tone(1, 8000, 3).T, 8000, format="WAV", subtype="PCM_16")
    elif kind in _WAV_LIES:
        sf.write(path, tone(1, 8000, 1).T, 8000, format="WAV", subtype="PCM_16")
        data = bytearray(path.read_bytes())
        offset, fmt, value = _WAV_LIES[kind]
        struct.pack_into(fmt, data, offset, value)
        path.write_bytes(bytes(data))
    elif kind == "damaged_flac":
        # 200 random bytes inside a frame in the middle: the frame's CRC no longer matches
        _overwrite_inside(path, "flac", 30, 2, 200, rng)
    elif kind.startswith("truncated_"):
        fmt = {"truncated_wav": "wav_pcm16", "truncated_mp3": "mp3", "truncated_flac": "flac",
               "truncated_opus": "opus", "truncated_vorbis": "vorbis"}[kind]
        rate = OPUS_RATE if fmt == "opus" else 8000
        whole = path.with_name(path.name + ".whole")
        write_audio(whole, tone(4, rate, 1), rate, fmt)
        data = whole.read_bytes()
        whole.unlink()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt_mp3":
        _overwrite_inside(path, "mp3", 4, 3, 1500, rng)
    else:
        raise ValueError(f"unknown broken kind {kind!r}; known: {', '.join(BROKEN_KINDS)}")
    return path


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


def oddly_named(folder: Path) -> list[Path]:
    """File names that trip naive code: spaces, unicode, a leading dash, '#', a long name."""
    names = ["call with spaces.wav", "appel-été-№5.wav", "-starts-with-dash.wav", "hash#1.wav", "x" * 200 + ".wav"]
    return [folder / n for n in names]


__all__ = ["FORMATS", "EXTENSIONS", "BROKEN_KINDS", "tone", "write_audio", "make_broken", "dominant_frequency", "oddly_named", "OPUS_RATE"]



def babbled(samples: np.ndarray, gold: list[dict], under_db: float = 10.0, seed: int = 24) -> np.ndarray:
    """A sample call (its ``samples`` and labelled utterances ``gold``) with the babble of a
    contact-center floor ``under_db`` under each channel's speech: three voices of other sample
    calls (c003, c007, c009), from random offsets, looped, a different mix per channel."""
    from models.base import SAMPLE_RATE
    from pipeline.ingest import audio

    root = Path(__file__).resolve().parents[1] / "recordings_sample"
    n = samples.shape[1]
    donors = [audio.load(root / f"{c}.wav")[1] for c in ("c003", "c007", "c009")]
    rng = np.random.default_rng(seed)
    noisy = samples.copy()
    for ch in range(samples.shape[0]):
        speech = np.zeros(n, dtype=bool)
        for u in gold:
            if samples.shape[0] == 1 or u["channel"] == ch:
                speech[int(u["start"] * SAMPLE_RATE) : int(u["end"] * SAMPLE_RATE)] = True
        babble = np.zeros(n, dtype=np.float64)
        for d in donors:  # a random channel of each donor, from a random offset, looped
            voice = np.roll(np.resize(d[int(rng.integers(d.shape[0]))], n), -int(rng.integers(n)))
            babble += voice / np.sqrt(np.mean(voice.astype(np.float64) ** 2))
        target = np.mean(samples[ch][speech].astype(np.float64) ** 2) / 10 ** (under_db / 10)
        noisy[ch] += (babble * np.sqrt(target / np.mean(babble ** 2))).astype(np.float32)
    return noisy
