"""What a recording's header declares, checked before a decoder sees it: a RIFF WAV's format
chunk (a header that lies about channels, rate or sample size is refused with a typed error
instead of a decoder guessing around it), and whether an Ogg file ends where its stream does
(Ogg declares no length, so a file cut short is seen by its last page)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import CorruptAudioError, TooManyChannelsError


@dataclass
class WavHeader:
    """The ``fmt `` and ``data`` chunks of a RIFF WAV file, as declared."""

    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    bits_per_sample: int
    data_declared: int | None
    """Bytes the data chunk declares (None: no data chunk found)."""
    data_present: int
    """Bytes of the data chunk actually in the file."""


WAV_FORMATS = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "mu-law"}
"""Names of the WAV format tags whose sample size the format fixes (``_WAV_BITS``: the sizes allowed)."""
_WAV_BITS = {1: (8, 16, 24, 32), 3: (32, 64), 6: (8,), 7: (8,)}
_WAV_EXTENSIBLE = 0xFFFE


def read_wav_header(path: Path) -> WavHeader | None:
    """The header of a RIFF WAV file (None: not RIFF/WAVE, or no ``fmt `` chunk)."""
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        fmt: bytes | None = None
        cid, size, present = b"", 0, 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                break
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                continue
            if cid == b"data":
                start = f.tell()
                f.seek(0, 2)
                present = f.tell() - start
                break
            f.seek(size + (size & 1), 1)
        if fmt is None or len(fmt) < 16:
            return None
        tag, channels, rate, byte_rate, _align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the real tag
        return WavHeader(tag, channels, rate, byte_rate, bits, size if cid == b"data" else None,
                         present if cid == b"data" else 0)


def check_wav_header(p: Path, h: WavHeader, max_channels: int) -> None:
    """Refuse a WAV header that lies (no channels, no rate, impossible sample size) before a
    decoder guesses around it."""
    if h.channels == 0:
        raise CorruptAudioError(p, "the WAV header declares 0 channels")
    if h.channels > max_channels:
        raise TooManyChannelsError(
            p, f"the WAV header declares {h.channels} channels: callqa handles mono or stereo recordings"
        )
    if h.sample_rate == 0:
        raise CorruptAudioError(p, "the WAV header declares a sample rate of 0")
    allowed = _WAV_BITS.get(h.format_tag)
    if allowed is not None and h.bits_per_sample not in allowed:
        raise CorruptAudioError(
            p, f"the WAV header declares {h.bits_per_sample} bits per sample for {WAV_FORMATS[h.format_tag]} audio "
               f"(possible: {', '.join(map(str, allowed))})"
        )


_OGG_TAIL = 1 << 16
"""Bytes read from the end of an Ogg file to find its last page (pages are at most ~64 KiB)."""


def ogg_stream_ends(p: Path) -> bool:
    """Whether an Ogg file ends with a whole page marked end-of-stream. A file cut short (an
    interrupted copy or upload) ends inside a page, or on a page that is not the last; Ogg
    declares no total length, so this is how the loss is seen."""
    with open(p, "rb") as f:
        size = f.seek(0, 2)
        start = max(0, size - _OGG_TAIL - 27 - 255)
        f.seek(start)
        tail = f.read()
    at = tail.rfind(b"OggS")
    while at >= 0:
        if at + 27 <= len(tail):
            segments = tail[at + 27 : at + 27 + tail[at + 26]]
            if len(segments) == tail[at + 26] and at + 27 + len(segments) + sum(segments) == len(tail):
                return bool(tail[at + 5] & 0x04)
        at = tail.rfind(b"OggS", 0, at)
    return False
