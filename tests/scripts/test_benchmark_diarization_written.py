"""scripts/benchmark_diarization.py --written: scoring the turns a callqa run wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SAMPLES


def test_written_mode_scores_each_calls_rttm_with_any_speaker_names(tmp_path: Path):
    """The written RTTM names speakers by role; DER's speaker mapping pairs them with the
    reference's names, so the reference itself under other names scores 0 at every collar.
    Calls not in the output folder are listed as missing."""
    out = tmp_path / "out"
    folder = out / "calls" / "c002"
    folder.mkdir(parents=True)
    swap = {"agent": "customer", "customer": "unknown-S2"}
    lines = [line.split() for line in (SAMPLES / "labels" / "c002.rttm").read_text().splitlines()]
    renamed = [" ".join(swap.get(f, f) if i == 7 else f for i, f in enumerate(fields)) for fields in lines]
    folder.joinpath("diarization.rttm").write_text("\n".join(renamed) + "\n")
    folder.joinpath("call.json").write_text(json.dumps({"source": {"duration_s": 49.0}}))
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_diarization.py"), "--written", str(out),
                           "--no-pyannote-sample", "--json", str(report)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "+-0.25 s" in proc.stdout
    result = json.loads(report.read_text())
    (row,) = result["groups"]["mono sample calls"]["files"]
    assert row["id"] == "c002" and row["speakers_found"] == row["speakers_ref"] == 2
    assert [row[f"der@{c}"]["der"] for c in (0.0, 0.25, 0.5)] == [0.0, 0.0, 0.0]
    assert "c001" in result["missing"] and "c004" in result["missing"]
