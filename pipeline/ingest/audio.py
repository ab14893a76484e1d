"""Reading recordings: the one place that opens audio files.

Every recording is checked, decoded frame by frame with PyAV (ffmpeg) and resampled as a
stream with soxr to 16 kHz float32, channels kept apart, either into one float32 array
(``load``) or into one file per channel (``load_to_disk``, used by the pipeline: a
DiskRecording is read a block at a time, so memory does not grow with the length of the
call). No full-length float64 copy is made. Every problem is a typed error naming the file
(see pipeline/errors.py).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ingest.audio_headers import WavHeader, check_wav_header, ogg_stream_ends, read_wav_header
from pipeline.errors import (
    AudioError,
    CorruptAudioError,
    DiskFullError,
    EmptyFileError,
    NotAudioError,
    NotRegularFileError,
    TooLongError,
    TooManyChannelsError,
    TruncatedAudioError,
    ZeroLengthAudioError,
    is_disk_full,
)
from pipeline.interaction.utterances import AudioInfo

TARGET_RATE = 16000
MAX_CHANNELS = 2

# Leading bytes of the containers callqa reads. ffmpeg guesses a format for almost any bytes
# (random data "is" MP3), so a file must start like audio before it is handed to it.
_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"RIFF", "wav"), (0, b"RF64", "wav"), (0, b"BW64", "wav"), (0, b"fLaC", "flac"),
    (0, b"ID3", "mp3"), (0, b"OggS", "ogg"), (4, b"ftyp", "mp4"), (0, b"FORM", "aiff"),
    (0, b".snd", "au"), (0, b"caff", "caf"), (0, b"#!AMR", "amr"), (0, b"\x1a\x45\xdf\xa3", "webm"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),
]


def _sniff(head: bytes) -> str | None:
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    # MPEG audio (MP3 without ID3 tag) or ADTS AAC: an 11-bit frame sync.
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mpeg"
    return None


def _describe_bytes(head: bytes) -> str:
    if not head.strip(b"\x00"):
        return "only zero bytes"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it starts with bytes {head[:8].hex(' ')}"
    return "it looks like text" if all(ch.isprintable() or ch.isspace() for ch in text) else f"it starts with bytes {head[:8].hex(' ')}"


def _read_head(path: Path, n: int = 64) -> tuple[bytes, int]:
    """The first ``n`` bytes and the size of a regular file. Anything else (a FIFO, socket or
    device) is refused by ``stat`` before it is opened, and opened non-blocking, so a named
    pipe can never hang the batch."""
    try:
        if path.is_dir():
            raise AudioError(path, "is a folder, not a recording")
        not_regular = "is not a regular file (a FIFO, socket or device); it is not read"
        if not stat.S_ISREG(path.stat().st_mode):
            raise NotRegularFileError(path, not_regular)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # replaced between the stat and the open
                raise NotRegularFileError(path, not_regular)
            return f.read(n), st.st_size
    except FileNotFoundError as e:
        raise AudioError(path, "file not found") from e
    except PermissionError as e:
        raise AudioError(path, "permission denied") from e
    except OSError as e:
        raise AudioError(path, f"cannot read file: {e.strerror or e}") from e


def _open(path: Path):  # noqa: ANN202 - av container
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.EOFError as e:
        raise TruncatedAudioError(path, "the file ends early (cut short): its container cannot be read") from e
    except av.error.InvalidDataError as e:
        raise CorruptAudioError(path, "the audio container is damaged and cannot be opened") from e
    except av.FFmpegError as e:
        raise CorruptAudioError(path, f"cannot be opened as audio: {e}") from e


def _info_from(path: Path, container, stream) -> AudioInfo:  # noqa: ANN001 - av objects
    cc = stream.codec_context
    if cc is None:  # ffmpeg has no decoder for this stream's codec
        wav = read_wav_header(path) if container.format.name.startswith("wav") else None
        what = f"WAV format tag 0x{wav.format_tag:04x}" if wav else f"codec of its {container.format.name} stream"
        raise NotAudioError(path, f"unknown or unsupported audio encoding ({what}): no decoder for it")
    channels = cc.channels if getattr(cc, "channels", 0) else stream.layout.nb_channels
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    fmt = container.format.name.split(",")[0]
    return AudioInfo(str(path), fmt, cc.name, int(cc.sample_rate or stream.rate or 0), int(channels), max(0.0, duration))


def probe(path: str | Path) -> AudioInfo:
    """What a recording is (format, codec, rate, channels, declared duration), from its header."""
    p = Path(path)
    head, size = _read_head(p)
    if size == 0:
        raise EmptyFileError(p, "file is empty (0 bytes)")
    if _sniff(head) is None:
        raise NotAudioError(p, f"not an audio file: {_describe_bytes(head)}")
    wav = read_wav_header(p) if head[:4] == b"RIFF" else None
    if wav is not None:
        check_wav_header(p, wav, MAX_CHANNELS)
    with _open(p) as container:
        if not container.streams.audio:
            raise NotAudioError(p, "not an audio file: the container holds no audio stream")
        try:
            info = _info_from(p, container, container.streams.audio[0])
        except (AttributeError, ValueError) as e:  # a stream header PyAV cannot describe
            raise CorruptAudioError(p, f"the audio stream's header is damaged ({e})") from e
    if info.channels <= 0:
        raise CorruptAudioError(p, "the header declares no channels")
    if info.channels > MAX_CHANNELS:
        raise TooManyChannelsError(p, f"{info.channels} channels: callqa handles mono or stereo recordings")
    if info.sample_rate <= 0:
        raise CorruptAudioError(p, "the header declares no sample rate")
    return info


def _check_length(p: Path, seconds: float, max_duration_s: float | None) -> None:
    if max_duration_s is not None and seconds > max_duration_s:
        raise TooLongError(
            p, f"longer than the configured maximum of {max_duration_s:g} s (audio.max_duration_s): {seconds:.1f} s"
        )


def load(path: str | Path, max_duration_s: float | None = None) -> tuple[AudioInfo, np.ndarray]:
    """Decode a recording to float32 16 kHz, shape (channels, samples); channels kept apart.

    The returned AudioInfo holds the decoded duration. Raises the typed errors of
    pipeline/errors.py; a silent recording is not an error.
    """
    sink = _ArraySink()
    info = _decode(Path(path), max_duration_s, sink)
    return info, sink.array()


def load_to_disk(path: str | Path, folder: Path, max_duration_s: float | None = None) -> tuple[AudioInfo, "DiskRecording"]:
    """Like ``load``, but the decoded audio goes to files in ``folder`` (one per channel) and
    comes back as a DiskRecording, read a block at a time: memory does not grow with the
    length of the call. The caller owns ``folder`` (a temporary directory)."""
    folder.mkdir(parents=True, exist_ok=True)
    sink = _FileSink(folder)
    try:
        info = _decode(Path(path), max_duration_s, sink)
    finally:
        sink.close()
    return info, DiskRecording([DiskChannel(f, sink.written) for f in sink.paths])


class _ArraySink:
    """Collects decoded blocks (samples, channels) in one growing float32 array."""

    def __init__(self) -> None:
        self.out: np.ndarray | None = None
        self.written = 0

    def reserve(self, channels: int, capacity: int) -> None:
        self.out = np.zeros((channels, capacity), dtype=np.float32)

    def __call__(self, block: np.ndarray) -> None:
        assert self.out is not None
        n = block.shape[0]
        if self.written + n > self.out.shape[1]:
            grown = np.zeros((self.out.shape[0], max(self.written + n, int(self.out.shape[1] * 1.5))), dtype=np.float32)
            grown[:, : self.written] = self.out[:, : self.written]
            self.out = grown
        self.out[:, self.written : self.written + n] = block.T
        self.written += n

    def array(self) -> np.ndarray:
        assert self.out is not None
        return self.out[:, : self.written]


class _FileSink:
    """Writes decoded blocks (samples, channels) to one float32 file per channel."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []
        self.files: list[Any] = []
        self.written = 0

    def reserve(self, channels: int, capacity: int) -> None:
        self.paths = [self.folder / f"channel{ch}.f32" for ch in range(channels)]
        with self._disk_full_typed():
            self.files = [open(f, "wb") for f in self.paths]  # noqa: SIM115 - closed in close()

    def __call__(self, block: np.ndarray) -> None:
        with self._disk_full_typed():
            for ch, f in enumerate(self.files):
                f.write(np.ascontiguousarray(block[:, ch], dtype="<f4").tobytes())
        self.written += block.shape[0]

    @contextmanager
    def _disk_full_typed(self) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            if is_disk_full(e):
                raise DiskFullError(self.folder, f"decoding the call: {e.strerror}") from e
            raise

    def close(self) -> None:
        """Close every file (writing what is buffered); a full disk is a DiskFullError."""
        with self._disk_full_typed():
            errors = []
            for f in self.files:
                try:
                    f.close()
                except OSError as e:
                    errors.append(e)
            if errors:
                raise errors[0]


def _decode(p: Path, max_duration_s: float | None, append) -> AudioInfo:  # noqa: ANN001 - a sink
    """Decode ``p`` to 16 kHz float32 blocks of shape (samples, channels) handed to
    ``append`` in order; returns the AudioInfo with the decoded duration."""
    import av
    import soxr

    info = probe(p)
    _check_length(p, info.duration_s, max_duration_s)
    wav = read_wav_header(p) if info.format == "wav" else None
    if wav is not None and not wav.data_declared and wav.data_present == 0:
        raise ZeroLengthAudioError(p, "the recording holds no audio samples (0 s)")
    if info.format == "ogg" and not ogg_stream_ends(p):
        raise TruncatedAudioError(
            p, f"cut short: the Ogg stream stops after about {info.duration_s:.1f} s without its last page "
               "(the rest of the recording is missing)"
        )

    channels = info.channels
    append.reserve(channels, int(math.ceil(max(info.duration_s, 1.0) * TARGET_RATE)) + TARGET_RATE)
    decoded_in = 0
    with _open(p) as container:
        stream = container.streams.audio[0]
        rate = info.sample_rate
        layout = "mono" if channels == 1 else "stereo"
        to_float = av.AudioResampler(format="flt", layout=layout, rate=rate)
        resample = soxr.ResampleStream(rate, TARGET_RATE, channels, dtype="float32", quality="HQ")
        if stream.codec_context.name == "flac":
            # every FLAC frame carries a CRC: a damaged frame is dropped (and so noticed by the
            # length check below) instead of being played as noise
            stream.codec_context.options = {"err_detect": "crccheck+explode"}
        frames_end = 0.0  # where the last decoded frame ends (s): damage inside vs a cut end
        # Decode packet by packet so a damaged packet is noticed and where it was is known:
        # damage followed by good audio is corruption, damage at the very end is a cut-off file.
        bad_at: float | None = None
        bad_error: Exception | None = None
        good_after_bad = False
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as e:
                    if bad_at is None:
                        bad_at, bad_error = decoded_in / rate, e
                    continue
                for frame in frames:
                    if bad_at is not None:
                        good_after_bad = True
                    if frame.pts is not None and frame.time_base is not None:
                        frames_end = max(frames_end, float(frame.pts * frame.time_base) + frame.samples / rate)
                    for converted in to_float.resample(frame):
                        block = converted.to_ndarray().reshape(-1, channels)
                        decoded_in += block.shape[0]
                        append(resample.resample_chunk(block))
                _check_length(p, decoded_in / rate, max_duration_s)
            for converted in to_float.resample(None):
                block = converted.to_ndarray().reshape(-1, channels)
                decoded_in += block.shape[0]
                append(resample.resample_chunk(block))
        except av.error.EOFError as e:
            raise TruncatedAudioError(p, f"the file ends early (cut short after {decoded_in / rate:.1f} s)") from e
        except av.FFmpegError as e:
            raise CorruptAudioError(p, f"decoding failed after {decoded_in / rate:.1f} s: {e}") from e
        append(resample.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True))

    if bad_at is not None:
        if not good_after_bad and info.duration_s > decoded_in / rate + 0.1:
            raise TruncatedAudioError(
                p, f"truncated: header declares {info.duration_s:.1f} s, file holds {decoded_in / rate:.1f} s"
            ) from bad_error
        raise CorruptAudioError(p, f"damaged audio data at {bad_at:.1f} s ({bad_error})") from bad_error
    seconds = decoded_in / rate
    if decoded_in == 0:
        raise ZeroLengthAudioError(p, "the recording holds no audio samples (0 s)")
    _check_truncation(p, info, wav, seconds, frames_end)
    info.duration_s = seconds
    return info


LOSSLESS_TOLERANCE_S = 0.005
"""Audio a FLAC file may lack against the length its header declares (its header is exact)."""


def _check_truncation(p: Path, info: AudioInfo, wav: WavHeader | None, seconds: float, frames_end: float) -> None:
    """A file that decodes to less audio than its header declares lost some: cut short
    (TruncatedAudioError) or damaged frames inside (CorruptAudioError). Lossy formats may
    differ from their declared length by encoder padding, so they are allowed
    ``max(0.5 s, 3%)``; FLAC and WAV must hold all they declare."""
    if wav is not None:
        per_second = wav.byte_rate or wav.sample_rate * wav.channels * wav.bits_per_sample // 8
        streaming = wav.data_declared in (None, 0, 0xFFFFFFFF)
        if not streaming and wav.data_present < wav.data_declared and per_second:
            raise TruncatedAudioError(
                p, f"truncated: header declares {wav.data_declared / per_second:.1f} s, "
                   f"file holds {wav.data_present / per_second:.1f} s"
            )
        return
    declared_s = info.duration_s
    tolerance = LOSSLESS_TOLERANCE_S if info.codec == "flac" else max(0.5, 0.03 * declared_s)
    if declared_s > 0 and seconds < declared_s - tolerance:
        if frames_end >= declared_s - tolerance:
            raise CorruptAudioError(
                p, f"damaged: header declares {declared_s:.2f} s, only {seconds:.2f} s could be decoded "
                   f"({declared_s - seconds:.2f} s lost in damaged frames)"
            )
        raise TruncatedAudioError(p, f"truncated: header declares {declared_s:.1f} s, file holds {seconds:.1f} s")


# -- a decoded call on disk ------------------------------------------------------------------

_F32 = np.dtype("<f4")
_IO_BLOCK = TARGET_RATE * 60
"""Samples written at a time when filling or mixing a DiskChannel."""


class DiskChannel:
    """One channel of a decoded call kept in a float32 file. Sliced like a 1-D array
    (``channel[a:b]`` reads those samples into memory; ``channel[a:b] = 0.0`` writes them),
    so code written for arrays works on calls of any length without holding them."""

    ndim = 1
    dtype = np.dtype(np.float32)

    def __init__(self, path: Path, size: int):
        self.path = Path(path)
        self.size = int(size)

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    def __len__(self) -> int:
        return self.size

    def _range(self, key: slice) -> tuple[int, int]:
        if not isinstance(key, slice):
            raise TypeError("a DiskChannel is indexed by slices of samples")
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("a DiskChannel is read in contiguous slices")
        return start, max(start, stop)

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop = self._range(key)
        if stop == start:
            return np.zeros(0, dtype=np.float32)
        data = np.fromfile(self.path, dtype=_F32, count=stop - start, offset=start * _F32.itemsize)
        return data.astype(np.float32, copy=False)

    def __setitem__(self, key: slice, value: float) -> None:
        start, stop = self._range(key)
        with open(self.path, "r+b") as f:
            for a in range(start, stop, _IO_BLOCK):
                b = min(stop, a + _IO_BLOCK)
                f.seek(a * _F32.itemsize)
                f.write(np.full(b - a, value, dtype=_F32).tobytes())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[0 : self.size]
        return data if dtype is None else data.astype(dtype, copy=False)


class DiskRecording:
    """A decoded call (16 kHz float32, shape (channels, samples)) kept in one file per channel:
    ``recording[ch]`` is a DiskChannel, ``recording[a:b]`` a recording of some channels,
    ``recording[ch, a:b]`` samples read into memory."""

    def __init__(self, channels: list[DiskChannel], size: int | None = None):
        self.channels = channels
        self.size_per_channel = channels[0].size if channels else int(size or 0)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.channels), self.size_per_channel)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            ch, samples = key
            return self.channels[ch][samples]
        if isinstance(key, slice):
            return DiskRecording(self.channels[key], self.size_per_channel)
        return self.channels[key]

    def __setitem__(self, key: tuple[int, slice], value: float) -> None:
        ch, samples = key
        self.channels[ch][samples] = value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = (np.stack([np.asarray(c) for c in self.channels]) if self.channels
                else np.zeros((0, self.size_per_channel), np.float32))
        return data if dtype is None else data.astype(dtype, copy=False)


def mix_down(samples: Any) -> Any:
    """The channels of a call averaged into one, shape (1, samples): an array for an array, a
    DiskRecording (a new file beside the first channel's) for a DiskRecording."""
    if not isinstance(samples, DiskRecording):
        return samples.mean(axis=0, keepdims=True).astype(np.float32)
    first = samples.channels[0]
    out = first.path.with_name("mix.f32")
    with open(out, "wb") as f:
        for a in range(0, first.size, _IO_BLOCK):
            b = min(first.size, a + _IO_BLOCK)
            f.write(np.mean([c[a:b] for c in samples.channels], axis=0).astype(_F32).tobytes())
    return DiskRecording([DiskChannel(out, first.size)])
