"""VAD in front of recognition: no text on silence or noise, and times mapped back exactly."""

from __future__ import annotations

import difflib

import numpy as np
import pytest

from conftest import ROOT, manifest_rows, normalise
from models.asr import load_backend
from models.base import SAMPLE_RATE, AsrBackend, AsrOptions
from models.vad import SpeechOnlyAudio, SpeechRegion, VadOptions, detect_speech
from pipeline.ingest import audio
from pipeline.asr import transcribe
from pipeline.interaction.utterances import Segment, Word
from pipeline.asr.transcribe import transcribe_call


@pytest.fixture(scope="module")
def backend():
    return load_backend(AsrOptions(), threads=2)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Twenty seconds of the first sample call's first channel, 16 kHz."""
    row = manifest_rows()[0]
    _, samples = audio.load(ROOT / "recordings_sample" / row["path"])
    return samples[0, : 20 * SAMPLE_RATE].copy()


def _noises() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 20 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    beeps = np.where((t % 1.0) < 0.5, np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t))
    return {
        "silence": np.zeros(n, dtype=np.float32),
        "white_noise": (0.05 * rng.standard_normal(n)).astype(np.float32),
        "loud_white_noise": (0.3 * rng.standard_normal(n)).clip(-1, 1).astype(np.float32),
        "mains_hum": (0.2 * np.sin(2 * np.pi * 50 * t)).astype(np.float32),
        "hold_tones": (0.2 * beeps).astype(np.float32),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(_noises()))
def test_no_text_on_silence_or_noise(backend, kind: str):
    signal = _noises()[kind]
    utterances = transcribe_call(signal[None, :], backend, VadOptions())
    assert [u.text for u in utterances] == []


def test_vad_off_on_silence_gives_no_words(backend):
    utterances = transcribe_call(np.zeros((1, 10 * SAMPLE_RATE), dtype=np.float32), backend, VadOptions(enabled=False))
    assert sum(len(u.words) for u in utterances) == 0


@pytest.mark.slow
def test_times_are_mapped_back_across_removed_silence(backend, speech: np.ndarray):
    """The same speech after 25 s of silence gives the same words, 25 s later."""
    gap = 25.0
    padded = np.concatenate([np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32), speech])
    plain = [w for u in transcribe_call(speech[None, :], backend, VadOptions()) for w in u.words]
    shifted = [w for u in transcribe_call(padded[None, :], backend, VadOptions()) for w in u.words]
    # Whisper may spell a name differently when the audio around it changes; compare the
    # words both runs agree on, which must be nearly all of them.
    matcher = difflib.SequenceMatcher(a=[normalise(w.word) for w in plain], b=[normalise(w.word) for w in shifted], autojunk=False)
    pairs = [(plain[blk.a + k], shifted[blk.b + k]) for blk in matcher.get_matching_blocks() for k in range(blk.size)]
    assert len(plain) > 20 and len(pairs) >= 0.9 * len(plain)
    # Word ends are sharp; a word's start after a pause is ambiguous in Whisper's alignment
    # and moves by up to a few frames with the audio around it. The mapping must add no shift.
    ends = np.array([b.end - a.end - gap for a, b in pairs])
    starts = np.array([b.start - a.start - gap for a, b in pairs])
    assert np.abs(ends).max() < 0.1
    assert abs(float(np.median(starts))) < 0.05 and np.abs(starts).max() < 0.5


def test_long_silence_inside_speech_splits_utterances(backend, speech: np.ndarray):
    half = len(speech) // 2
    # cut at a quiet point near the middle so no word is split
    frame = SAMPLE_RATE // 10
    energy = [float(np.abs(speech[i : i + frame]).mean()) for i in range(half - SAMPLE_RATE * 3, half + SAMPLE_RATE * 3, frame)]
    cut = half - SAMPLE_RATE * 3 + int(np.argmin(energy)) * frame
    joined = np.concatenate([speech[:cut], np.zeros(15 * SAMPLE_RATE, dtype=np.float32), speech[cut:]])
    utterances = transcribe_call(joined[None, :], backend, VadOptions())
    silence = (cut / SAMPLE_RATE, cut / SAMPLE_RATE + 15)
    for u in utterances:
        assert not (u.start < silence[0] + 1 and u.end > silence[1] - 1), "an utterance spans the silence"


def test_speech_only_audio_maps_times():
    audio_ = np.arange(100, dtype=np.float32)
    sr = SAMPLE_RATE
    regions = [SpeechRegion(1 * sr, 2 * sr), SpeechRegion(5 * sr, 7 * sr)]
    joined = SpeechOnlyAudio(np.zeros(8 * sr, dtype=np.float32), regions)
    assert joined.duration_s == pytest.approx(3.0)
    assert joined.to_original(0.5) == pytest.approx(1.5)
    assert joined.to_original(1.5) == pytest.approx(5.5)
    assert joined.to_original(2.9) == pytest.approx(6.9)
    assert detect_speech(audio_[:0], VadOptions()) == []
    assert detect_speech(np.zeros(sr, dtype=np.float32), VadOptions(enabled=False)) == [SpeechRegion(0, sr)]


class _TimeReadingBackend(AsrBackend):
    """A stand-in recogniser for testing the batching: the test audio encodes its own time
    (sample value = seconds / 10000), and this backend reports one word, one second into each
    audio it is given, whose text is the time read from the audio there."""

    name = "time-reader"

    def __init__(self) -> None:
        super().__init__(AsrOptions(redecode_gap_s=0), threads=1)  # the batching alone
        self.lengths: list[float] = []

    def transcribe(self, audio: np.ndarray) -> list[Segment]:
        self.lengths.append(audio.size / SAMPLE_RATE)
        said = f"{audio[SAMPLE_RATE] * 10000:.2f}"
        return [Segment(1.0, 1.5, said, [Word(said, 1.0, 1.5, 1.0)])]

    def describe(self) -> dict:
        return {"backend": self.name}


def test_long_channels_are_recognised_in_bounded_batches(monkeypatch):
    monkeypatch.setattr(transcribe, "CHUNK_S", 100.0)
    n = 250 * SAMPLE_RATE
    signal = (np.arange(n, dtype=np.float64) / SAMPLE_RATE / 10000).astype(np.float32)
    backend = _TimeReadingBackend()
    utterances = transcribe.transcribe_call(signal[None, :], backend, VadOptions(enabled=False))
    assert backend.lengths == [100.0, 100.0, 50.0]
    for u in utterances:
        assert u.start == pytest.approx(float(u.text), abs=0.01)
    assert [round(u.start) for u in utterances] == [1, 101, 201]


def test_batches_keep_regions_whole_and_in_order(monkeypatch):
    monkeypatch.setattr(transcribe, "CHUNK_S", 10.0)
    sr = SAMPLE_RATE
    regions = [SpeechRegion(0, 4 * sr), SpeechRegion(5 * sr, 9 * sr), SpeechRegion(10 * sr, 14 * sr), SpeechRegion(20 * sr, 45 * sr)]
    batches = transcribe.recognition_batches(regions)
    assert [[(r.start // sr, r.end // sr) for r in b] for b in batches] == [
        [(0, 4), (5, 9)], [(10, 14)], [(20, 30)], [(30, 40)], [(40, 45)]
    ]


class _SkippingBackend(AsrBackend):
    """A stand-in recogniser that, given 40 s or more, hears only its first two seconds (as
    Whisper does when it jumps over part of its window); given less, it hears a word a second.
    ``logprob`` is the confidence it reports on short audio."""

    name = "skipper"

    def __init__(self, logprob: float, gap_s: float = 3.0) -> None:
        super().__init__(AsrOptions(redecode_gap_s=gap_s), threads=1)
        self.logprob = logprob
        self.calls: list[float] = []

    def transcribe(self, audio: np.ndarray) -> list[Segment]:
        seconds = audio.size / SAMPLE_RATE
        self.calls.append(seconds)
        if seconds >= 40:
            words = [Word("first", 0.2, 0.6, 0.9), Word("words", 0.8, 1.5, 0.9)]
            return [Segment(0.2, 1.5, "first words", words, -0.2, 0.01)]
        words = [Word(f"w{i}", i + 0.1, i + 0.6, 0.8) for i in range(int(seconds))]
        return [Segment(words[0].start, words[-1].end, " ".join(w.word for w in words), words, self.logprob, 0.05)]

    def describe(self) -> dict:
        return {"backend": self.name}


def test_skipped_speech_is_recognised_again():
    signal = np.zeros(40 * SAMPLE_RATE, dtype=np.float32)
    backend = _SkippingBackend(logprob=-0.3)
    segments = transcribe.transcribe_channel(signal, backend, VadOptions(enabled=False))
    assert backend.calls == [40.0, pytest.approx(38.5, abs=0.01)]  # the whole, then the stretch it skipped
    words = [w for s in segments for w in s.words]
    assert [w.word for w in words[:2]] == ["first", "words"]
    assert len(words) == 2 + 38
    assert words[2].start == pytest.approx(1.5 + 0.1, abs=0.01)  # times in the recording
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_unconfident_text_from_the_second_pass_is_dropped_and_gap_off_means_one_pass():
    signal = np.zeros(40 * SAMPLE_RATE, dtype=np.float32)
    unsure = _SkippingBackend(logprob=-1.5)
    segments = transcribe.transcribe_channel(signal, unsure, VadOptions(enabled=False))
    assert len(unsure.calls) == 2 and [w.word for s in segments for w in s.words] == ["first", "words"]
    off = _SkippingBackend(logprob=-0.3, gap_s=0)
    segments = transcribe.transcribe_channel(signal, off, VadOptions(enabled=False))
    assert off.calls == [40.0] and [w.word for s in segments for w in s.words] == ["first", "words"]


def test_uncovered_speech_lies_inside_regions_between_words():
    sr = SAMPLE_RATE
    regions = [SpeechRegion(0, 10 * sr), SpeechRegion(20 * sr, 24 * sr)]
    words = [Word("a", 1.0, 2.0, 1.0), Word("b", 2.5, 3.0, 1.0), Word("c", 8.0, 9.0, 1.0)]
    gaps = transcribe.uncovered_speech(regions, [Segment(1.0, 9.0, "a b c", words)], 3.0)
    # 3.0-8.0 between words, and all of the second region (no word there); not 9-10 (1 s)
    assert [(g.start / sr, g.end / sr) for g in gaps] == [(3.0, 8.0), (20.0, 24.0)]
