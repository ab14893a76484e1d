"""Reading recordings: every supported format and rate, and a typed error for every kind of
broken file, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_fixtures import BROKEN_KINDS, EXTENSIONS, FORMATS, OPUS_RATE, dominant_frequency, make_broken, oddly_named, tone, write_audio
from pipeline.ingest import audio
from pipeline.errors import (
    AudioError,
    CorruptAudioError,
    EmptyFileError,
    NotAudioError,
    TooLongError,
    TooManyChannelsError,
    TruncatedAudioError,
    ZeroLengthAudioError,
)

EXPECTED_ERROR = {
    "empty": EmptyFileError,
    "text": NotAudioError,
    "random_bytes": NotAudioError,
    "png": NotAudioError,
    "zero_length_wav": ZeroLengthAudioError,
    "truncated_wav": TruncatedAudioError,
    "truncated_mp3": TruncatedAudioError,
    "truncated_flac": TruncatedAudioError,
    "corrupt_mp3": CorruptAudioError,
    "three_channels": TooManyChannelsError,
    "wav_bits_0": CorruptAudioError,
    "wav_channels_0": CorruptAudioError,
    "wav_channels_65535": TooManyChannelsError,
    "wav_unknown_format": NotAudioError,
    "wav_rate_0": CorruptAudioError,
    "truncated_opus": TruncatedAudioError,  # an Ogg file cut in half: no end-of-stream page
    "truncated_vorbis": TruncatedAudioError,
    "damaged_flac": CorruptAudioError,  # a frame whose CRC fails is counted as lost, not played as noise
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_every_format_loads_at_16khz_with_channels_apart(tmp_path: Path, fmt: str, channels: int):
    rate = OPUS_RATE if fmt == "opus" else (16000 if fmt == "m4a" else 8000)
    path = write_audio(tmp_path / f"call{EXTENSIONS[fmt]}", tone(2.0, rate, channels), rate, fmt)
    info, samples = audio.load(path)
    assert samples.dtype == np.float32 and samples.shape[0] == channels
    assert info.channels == channels and info.sample_rate == rate
    assert abs(info.duration_s - 2.0) < 0.12
    assert abs(samples.shape[1] / audio.TARGET_RATE - info.duration_s) < 0.01
    middle = samples[:, audio.TARGET_RATE // 2 : audio.TARGET_RATE * 3 // 2]
    for ch in range(channels):
        assert abs(dominant_frequency(middle[ch], audio.TARGET_RATE) - 440 * (ch + 1)) < 5


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_sample_rate(tmp_path: Path, rate: int):
    info, samples = audio.load(write_audio(tmp_path / "r.wav", tone(1.0, rate, 1), rate, "wav_pcm16"))
    assert info.sample_rate == rate and abs(samples.shape[1] - audio.TARGET_RATE) <= 2


@pytest.mark.parametrize("fmt", ["wav_ulaw", "mp3", "flac"])
@pytest.mark.parametrize("channels", [1, 2])
def test_decoding_to_disk_gives_the_same_samples(tmp_path: Path, fmt: str, channels: int):
    path = write_audio(tmp_path / f"call{EXTENSIONS[fmt]}", tone(3.0, 8000, channels), 8000, fmt)
    info, in_memory = audio.load(path)
    disk_info, on_disk = audio.load_to_disk(path, tmp_path / "decoded")
    assert disk_info == info and on_disk.shape == in_memory.shape
    assert np.array_equal(np.asarray(on_disk), in_memory)
    for ch in range(channels):
        assert np.array_equal(on_disk[ch][1000:25000], in_memory[ch, 1000:25000])
        assert np.array_equal(on_disk[ch, -500:], in_memory[ch, -500:])
        assert on_disk[ch][10:10].size == 0 and on_disk[ch].size == in_memory.shape[1]
    assert on_disk[1:].shape == in_memory[1:].shape
    assert np.allclose(np.asarray(audio.mix_down(on_disk)), audio.mix_down(in_memory))
    on_disk[0, 100:200] = 0.0  # written through to the file
    assert not on_disk[0][100:200].any() and np.array_equal(on_disk[0][200:300], in_memory[0, 200:300])


def test_broken_files_fail_the_same_way_decoding_to_disk(tmp_path: Path):
    path = make_broken(tmp_path / "cut short.wav", "truncated_wav")
    with pytest.raises(TruncatedAudioError) as err:
        audio.load_to_disk(path, tmp_path / "decoded")
    assert "cut short.wav" in str(err.value)


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_files_raise_their_typed_error_naming_the_file(tmp_path: Path, kind: str):
    path = make_broken(tmp_path / f"broken {kind}.wav", kind)
    with pytest.raises(EXPECTED_ERROR[kind]) as err:
        audio.load(path)
    assert f"broken {kind}.wav" in str(err.value)
    assert err.value.path == str(path)


def test_missing_file_and_folder_are_audio_errors(tmp_path: Path):
    with pytest.raises(AudioError, match="file not found"):
        audio.load(tmp_path / "absent.wav")
    with pytest.raises(AudioError, match="is a folder"):
        audio.load(tmp_path)


def test_silence_is_not_an_error(tmp_path: Path):
    path = write_audio(tmp_path / "quiet.wav", np.zeros((2, 8000 * 3), dtype=np.float32), 8000, "wav_ulaw")
    info, samples = audio.load(path)
    assert info.duration_s == pytest.approx(3.0) and not samples.any()


def test_too_long_is_refused_before_decoding(tmp_path: Path):
    path = write_audio(tmp_path / "long.wav", tone(5.0, 8000, 1), 8000, "wav_pcm16")
    with pytest.raises(TooLongError, match=r"audio.max_duration_s"):
        audio.load(path, max_duration_s=4.0)
    assert audio.load(path, max_duration_s=6.0)[0].duration_s == pytest.approx(5.0)


def test_probe_reads_only_the_header(tmp_path: Path):
    path = write_audio(tmp_path / "p.flac", tone(3.0, 8000, 2), 8000, "flac")
    info = audio.probe(path)
    assert (info.format, info.codec, info.channels, info.sample_rate) == ("flac", "flac", 2, 8000)
    assert info.duration_s == pytest.approx(3.0)


def test_oddly_named_files_open(tmp_path: Path):
    for path in oddly_named(tmp_path):
        write_audio(path, tone(0.5, 8000, 1), 8000, "wav_pcm16")
        info, _ = audio.load(path)
        assert info.path == str(path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    """Opening a named pipe waits for a writer for ever; the reader refuses it by its type."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    os.mkfifo(tmp_path / "pipe.wav")
    code = ("import sys; from pipeline.ingest import audio\n"
            "try: audio.load(sys.argv[1])\nexcept Exception as e: print(type(e).__name__, e)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pipe.wav")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.startswith("NotRegularFileError") and "pipe.wav" in proc.stdout, proc.stderr


def test_a_full_disk_while_decoding_is_a_disk_full_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import errno

    from pipeline.errors import DiskFullError

    class NoSpace:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    path = write_audio(tmp_path / "a.wav", tone(2, 8000, 1), 8000, "wav_pcm16")
    monkeypatch.setattr(audio, "open", lambda *args, **kwargs: NoSpace(), raising=False)
    with pytest.raises(DiskFullError, match="disk full"):
        audio.load_to_disk(path, tmp_path / "decoded")
