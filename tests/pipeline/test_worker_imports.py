"""A worker stays light: processing calls does not import the heavy libraries it has no use
for (torch, transformers, sentence-transformers, librosa, scikit-learn). Importing them cost about 10 s of
CPU and 300-400 MB in every worker process, paid again by each worker of every run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import SAMPLES

pytestmark = pytest.mark.slow  # runs worker processes over sample calls

UNUSED = ("torch", "transformers", "sentence_transformers", "librosa", "sklearn")

PROGRAM = textwrap.dedent("""
    import atexit, json, sys
    heavy = {heavy!r}
    atexit.register(lambda: print("IMPORTED " + json.dumps([m for m in heavy if m in sys.modules])))
    sys.argv = ["callqa", "run", {inputs!r}, "--out", {out!r}, "--workers", "1"]
    from pipeline.cli import main
    main()
""")


def test_a_worker_processing_mono_and_stereo_calls_imports_no_torch(tmp_path: Path) -> None:
    out, inputs = tmp_path / "out", tmp_path / "in"
    inputs.mkdir()
    for name in ("c003.wav", "c006.wav"):  # stereo, mono
        shutil.copy(SAMPLES / name, inputs / name)
    program = PROGRAM.format(heavy=UNUSED, inputs=str(inputs), out=str(out))
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = json.loads(proc.stdout.split("IMPORTED ", 1)[1].splitlines()[0])
    assert imported == []
    mono = json.loads((out / "calls" / "c006" / "call.json").read_text())
    stereo = json.loads((out / "calls" / "c003" / "call.json").read_text())
    assert mono["status"] == stereo["status"] == "ok"
    assert mono["speakers"]["method"] == "diarization" and len(mono["speakers"]["roles"]) >= 2
    # spaCy (imported with torch hidden) still finds the customer's name in the mono call
    assert mono["pii"]["counts"].get("PERSON", 0) >= 1
    assert {i["id"] for i in mono["scorecard"]["items"]} == {i["id"] for i in stereo["scorecard"]["items"]}
