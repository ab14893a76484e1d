"""Settings are checked before any call is processed: a bad value, a backend or model that is
not there, or an unusable path stops ``callqa run`` and ``callqa eval`` with exit code 2 and a
message naming the key, and nothing is written."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli
from pipeline import cli
from pipeline.config import load_config
from pipeline.errors import EXIT_USAGE, ConfigError
from pipeline.run.preflight import preflight

BAD_SETTINGS = [
    (["diarization.hop_s=-1"], "diarization.hop_s"),
    (["diarization.backend=pyannote"], "diarization.pyannote_pipeline"),  # no local pipeline
    (["asr.model=/no/such/dir"], "asr.model"),
    (["asr.backend=openai-whisper", "asr.model=/no/such/model.pt"], "asr.model"),
    (["asr.noisy_model=/no/such/dir"], "asr.noisy_model"),
    (["asr.backend=openai-whisper", "asr.noisy_model=/no/such/model.pt"], "asr.noisy_model"),
    (["asr.noisy_below_db=0"], "asr.noisy_below_db"),
    (["diarization.min_speakers=3", "diarization.max_speakers=2"], "diarization.max_speakers"),
    (["roles.temperature=0"], "roles.temperature"),
    (["asr.backend=openai-whisper", "asr.compute_type=int8"], "asr.compute_type"),
    (["pii.spacy_model=no_such_spacy_model"], "pii.spacy_model"),
    (["sentiment.model=/no/such/head.json"], "sentiment.model"),
    (["speakers.overrides_file=/no/such/folder/overrides.csv"], "speakers.overrides_file"),
    (["run.stage_cache=/dev/null"], "run.stage_cache"),
]


@pytest.fixture
def no_processing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a batch or an evaluation starts (a call would be processed)."""
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("a call was processed despite a bad setting")

    monkeypatch.setattr("pipeline.run.runner.BatchRunner._run", started)  # run() checks the settings first
    monkeypatch.setattr("pipeline.evaluation.harness.Evaluator.evaluate", started)


def _sets(settings: list[str]) -> list[str]:
    return [arg for s in settings for arg in ("--set", s)]


def test_the_default_config_passes_preflight_quickly(tmp_path: Path):
    t0 = time.perf_counter()
    preflight(load_config(None), tmp_path / "out")
    assert time.perf_counter() - t0 < 5  # models are found, not loaded


@pytest.mark.parametrize("settings, key", BAD_SETTINGS)
def test_callqa_run_refuses_a_bad_setting_before_any_call(settings: list[str], key: str, tmp_path: Path,
                                                           no_processing: None, capsys: pytest.CaptureFixture):
    out = tmp_path / "out"
    assert cli.main(["run", str(SAMPLES), "--out", str(out), *_sets(settings)]) == EXIT_USAGE
    assert f"{key}: " in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("settings, key", BAD_SETTINGS[:4])
def test_callqa_eval_refuses_a_bad_setting_before_any_call(settings: list[str], key: str, tmp_path: Path,
                                                            no_processing: None, capsys: pytest.CaptureFixture):
    report = tmp_path / "report"
    args = ["eval", str(SAMPLES), "--out", str(report), "--cache", str(tmp_path / "cache"), *_sets(settings)]
    assert cli.main(args) == EXIT_USAGE
    assert f"{key}: " in capsys.readouterr().err
    assert not report.exists() and not (tmp_path / "cache").exists()


def test_callqa_eval_sweep_checks_every_grid_setting_first(tmp_path: Path, no_processing: None,
                                                           capsys: pytest.CaptureFixture):
    args = ["eval", "sweep", str(SAMPLES), "--cache", str(tmp_path / "cache"),
            "--grid", "diarization.hop_s=0.2,-1"]
    assert cli.main(args) == EXIT_USAGE
    assert "diarization.hop_s: " in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("pyannote.audio") is not None, reason="pyannote.audio is installed")
def test_pyannote_backend_without_the_package_is_refused(tmp_path: Path):
    pipeline_dir = tmp_path / "pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n")
    config = load_config(None, ["diarization.backend=pyannote", f"diarization.pyannote_pipeline={pipeline_dir}"])
    with pytest.raises(ConfigError, match=r"diarization\.backend: .*pip install pyannote\.audio"):
        preflight(config)


def test_a_missing_pyannote_pipeline_is_refused(tmp_path: Path):
    config = load_config(None, ["diarization.backend=pyannote", f"diarization.pyannote_pipeline={tmp_path / 'none'}"])
    with pytest.raises(ConfigError, match=r"diarization\.pyannote_pipeline: .*does not exist"):
        preflight(config)


@pytest.mark.parametrize("flag", ["--out", "--cache"])
def test_an_output_folder_that_is_a_file_is_refused(flag: str, tmp_path: Path, no_processing: None,
                                                    capsys: pytest.CaptureFixture):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    args = {"--out": ["run", str(SAMPLES), "--out", str(a_file)],
            "--cache": ["eval", str(SAMPLES), "--out", str(tmp_path / "r"), "--cache", str(a_file)]}[flag]
    assert cli.main(args) == EXIT_USAGE
    assert f"{flag}: {a_file} is not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_fails_within_seconds_and_writes_nothing(tmp_path: Path):
    """As a user runs it: a fresh process, exit code 2, no call folder, no run.json."""
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = run_cli("run", str(SAMPLES), "--out", str(out), "--set", "diarization.hop_s=-1", timeout=60)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "diarization.hop_s: -1.0 is not allowed" in proc.stderr
    assert time.monotonic() - t0 < 30 and not out.exists()


def test_callqa_config_check_finds_what_the_config_names(capsys: pytest.CaptureFixture):
    assert cli.main(["config", "--check"]) == 0
    assert "diarization:" in capsys.readouterr().out
    assert cli.main(["config", "--set", "asr.model=/no/such/dir"]) == 0  # printing alone does not look
    assert cli.main(["config", "--check", "--set", "asr.model=/no/such/dir"]) == EXIT_USAGE
    assert "asr.model: " in capsys.readouterr().err


def test_the_library_checks_too(tmp_path: Path, no_processing: None):
    """BatchRunner used from Python checks the settings as the command line does."""
    from pipeline.run.runner import BatchRunner

    config = load_config(None, ["asr.model=/no/such/dir"])
    with pytest.raises(ConfigError, match="asr.model: "):
        BatchRunner(config, SAMPLES, tmp_path / "out").run()
    assert not (tmp_path / "out").exists()
