"""Sampled decoding (temperature fallback) repeats exactly: the seed of a window comes from
``asr.seed`` and its audio, never from what the process decoded before."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLES
from models.asr import load_backend
from models.base import AsrOptions, decode_seed
from pipeline.ingest import audio

CLIP_S = 12


def _clip(name: str) -> np.ndarray:
    _, samples = audio.load(SAMPLES / name)
    return np.ascontiguousarray(samples[0, 4 * 16000 : (4 + CLIP_S) * 16000])


def _words(backend, clip: np.ndarray) -> list[tuple[str, float, float]]:
    return [(w.word, w.start, w.end) for s in backend.transcribe(clip) for w in s.words]


def test_decode_seed_depends_on_seed_audio_and_window_only():
    a = np.linspace(-1, 1, 1000, dtype=np.float32)
    assert decode_seed(0, a) == decode_seed(0, a.copy())
    assert decode_seed(0, a.astype(np.float64)) == decode_seed(0, a)
    assert len({decode_seed(0, a), decode_seed(1, a), decode_seed(0, a[::-1]), decode_seed(0, a, 1)}) == 4
    assert 0 <= decode_seed(2**40, a) < 2**32


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["faster-whisper", "openai-whisper"])
def test_sampling_repeats_whatever_was_decoded_before(backend_name: str):
    first, other = _clip("c006.wav"), _clip("c002.wav")
    options = AsrOptions(backend=backend_name, temperatures=[0.7])
    backend = load_backend(options, threads=1)
    before = _words(backend, first)
    _words(backend, other)  # draws from the generator in between
    assert len(before) > 10
    assert _words(backend, first) == before
    other_seed = load_backend(AsrOptions(backend=backend_name, temperatures=[0.7], seed=1), threads=1)
    assert _words(other_seed, first) != before  # the seed is used: another seed, other draws


def test_a_short_window_is_encoded_over_its_audio_only_with_the_same_words():
    """With ``encoder_s`` the encoder sees the audio plus a second, at least ``encoder_s``
    seconds (live recognition's buffers are short); the words come out nearly the same (one
    name spelt otherwise here)."""
    from pipeline.evaluation.measures import wer

    backend = load_backend(AsrOptions(), threads=2)
    _, samples = audio.load(SAMPLES / "c001.wav")
    clip = np.ascontiguousarray(samples[0, 1 * 16000 : 11 * 16000])  # 10 s of the agent
    seen: list[int] = []
    whisper_model = type(backend.model).__mro__[1]  # faster-whisper's WhisperModel, below callqa's
    encode = whisper_model.encode

    def spy(model, features):  # noqa: ANN001, ANN202 - what reaches faster-whisper's encode
        seen.append(features.shape[-1])
        return encode(model, features)

    whisper_model.encode = spy
    try:
        whole = backend.transcribe(clip)
        short = backend.transcribe(clip, encoder_s=15.0)
        longer = backend.transcribe(np.concatenate([clip, clip]), encoder_s=15.0)  # 20 s: its audio and a second
    finally:
        whisper_model.encode = encode
    assert seen == [3000, 1500, 2100]
    text = [" ".join(w.word for s in result for w in s.words) for result in (whole, short, longer)]
    assert len(text[0].split()) > 15 and wer([text[0]], [text[1]]) <= 0.1, text
    assert wer([text[0] + " " + text[0]], [text[2]]) <= 0.2, text
