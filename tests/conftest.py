"""Shared fixtures: the sample recordings, and a processed run of them (made once)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.text.normalize import plain as normalise  # noqa: F401  (used by the tests)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "recordings_sample"
MANIFEST = SAMPLES / "manifest.csv"


def manifest_rows() -> list[dict[str, str]]:
    with open(MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def label(call_id: str) -> dict:
    return json.loads((SAMPLES / "labels" / f"{call_id}.json").read_text())


def run_cli(*args: str, timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``callqa`` as a user would, in a fresh process (``input``: its standard input)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` marker (pyproject.toml) for every test run on PostgreSQL: the review tests'
    fixtures parametrised ``sqlite`` / ``postgresql`` (tests/review/databases.py and the modules'
    own app fixtures) start a throwaway PostgreSQL server, so ``-m "not slow"`` runs the SQLite
    cases only and needs no PostgreSQL installed. The other slow tests are marked in their modules."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(isinstance(v, str) and v == "postgresql" for v in callspec.params.values()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Models joined or converted during tests go to a throwaway cache."""
    os.environ.setdefault("CALLQA_CACHE_DIR", str(tmp_path_factory.mktemp("callqa-cache")))


@pytest.fixture(scope="session")
def stage_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stage cache the sample run fills and the evaluation tests read (pipeline/run/stage_cache.py)."""
    return tmp_path_factory.mktemp("stage-cache")


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory, stage_cache: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """The sample recordings processed once with the default config, through the CLI, except
    that outputs are not redacted: the tests compare transcripts with the gold text (redaction
    has its own tests, tests/pipeline/test_scorecard_run.py). Transcripts and speakers go to the
    session's stage cache too, so the evaluation tests re-score them without transcribing."""
    out = tmp_path_factory.mktemp("sample-run")
    proc = run_cli("run", str(MANIFEST), "--out", str(out), "--quiet", "--set", "pii.redact=false",
                   "--set", f"run.stage_cache={stage_cache}")
    return out, proc


@pytest.fixture(scope="session")
def sample_eval(sample_run, stage_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """``callqa eval recordings_sample`` once per session (after the sample run every call is in
    the stage cache): (folder with the report in ``base/``, report.json, the process)."""
    import json

    out = tmp_path_factory.mktemp("eval")
    proc = run_cli("eval", str(SAMPLES), "--out", str(out / "base"), "--cache", str(stage_cache))
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "base" / "report.json").read_text()), proc


# the review tests' databases (a SQLite file, a throwaway PostgreSQL server), as shared fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent / "review"))
from databases import db_url, postgres_url  # noqa: E402,F401
