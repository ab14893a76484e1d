"""The input roots a run records in run.json: the only folders the review app plays recordings from."""

from __future__ import annotations

from pathlib import Path

from pipeline.ingest.discover import CallInput
from pipeline.run.runner import input_roots


def test_a_folder_is_its_own_root_and_a_manifest_gives_its_recordings_folders(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    calls = [CallInput("c1", tmp_path / "a" / "c1.wav"), CallInput("c2", tmp_path / "b" / ".." / "b" / "c2.wav"),
             CallInput("c3", tmp_path / "a" / "c3.wav")]
    assert input_roots(tmp_path, calls) == [str(tmp_path.resolve())]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("call_id,path\n")
    assert input_roots(manifest, calls) == [str((tmp_path / "a").resolve()), str((tmp_path / "b").resolve())]
