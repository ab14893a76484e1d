"""The live benchmark on a short stretch of one sample channel: it measures what it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_live_benchmark_reports_wer_latency_and_lag(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_live.py"), "--calls", "c001",
                           "--channels", "1", "--seconds", "15", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    overall = report["overall"]
    assert 0 <= overall["wer_vs_batch"] <= 0.3
    assert 0 < overall["latency_stream_median"] <= overall["latency_stream_p95"] < 10
