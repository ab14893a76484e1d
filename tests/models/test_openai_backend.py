"""openai-whisper checkpoints rebuilt from the packaged CTranslate2 weights, and the two
backends agreeing word for word."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES, normalise, run_cli
from models.asr import load_backend
from models.base import AsrOptions
from models.ct2_convert import convert_ct2_to_openai, openai_checkpoint, read_ct2_model
from models.registry import ct2_model_dir
from models.vad import VadOptions
from pipeline.ingest import audio
from pipeline.errors import ConfigError
from pipeline.asr.transcribe import transcribe_call


def test_rebuilt_checkpoint_loads_with_no_missing_or_unexpected_keys():
    import torch
    import whisper

    checkpoint = torch.load(openai_checkpoint("tiny.en"), map_location="cpu", weights_only=True)
    dims = whisper.model.ModelDimensions(**checkpoint["dims"])
    assert (dims.n_mels, dims.n_audio_layer, dims.n_text_layer, dims.n_vocab) == (80, 4, 4, 51864)
    model = whisper.model.Whisper(dims)
    result = model.load_state_dict(checkpoint["model_state_dict"], strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert checkpoint["alignment_heads"] and all(0 <= layer < 4 for layer, _ in checkpoint["alignment_heads"])


@pytest.mark.slow
def test_both_backends_give_the_same_words_on_a_sample_call():
    _, samples = audio.load(SAMPLES / "c006.wav")
    words = {}
    for name in ("faster-whisper", "openai-whisper"):
        backend = load_backend(AsrOptions(backend=name), threads=2)
        utterances = transcribe_call(samples, backend, VadOptions())
        words[name] = normalise(" ".join(u.text for u in utterances)).split()
    assert len(words["faster-whisper"]) > 50
    assert words["openai-whisper"] == words["faster-whisper"]


@pytest.mark.slow
def test_build_openai_command_writes_a_checkpoint(tmp_path: Path):
    out = tmp_path / "tiny.pt"
    proc = run_cli("models", "build-openai", "--model", str(ct2_model_dir("tiny.en")), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 30_000_000
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_damaged_model_bin_is_a_clear_error(tmp_path: Path):
    src = ct2_model_dir("tiny.en") / "model.bin"
    bad = tmp_path / "model.bin"
    bad.write_bytes(src.read_bytes()[:100_000])
    with pytest.raises(ConfigError, match="not a readable CTranslate2 model"):
        read_ct2_model(bad)
    with pytest.raises(ConfigError, match="not a readable CTranslate2 model"):
        convert_ct2_to_openai(tmp_path, tmp_path / "out.pt")


def test_an_unknown_checkpoint_name_lists_the_packaged_models():
    with pytest.raises(ConfigError, match="tiny.en"):
        openai_checkpoint("no-such-model.pt")
