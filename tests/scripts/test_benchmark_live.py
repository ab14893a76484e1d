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


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["twilio", "audiosocket"])
def test_the_protocol_replay_measures_a_real_server_from_outside(tmp_path: Path, protocol: str) -> None:
    """12 s of c001 through each protocol to a real `callqa serve --live` on loopback, at
    real-time pace: words come back confirmed through the JSON API, with latencies and a WER
    against the batch transcript of the archived recording."""
    out = tmp_path / "live.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_live.py"), "--protocol", protocol,
                           "--calls", "c001", "--seconds", "12", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    overall, (call,) = report["overall"], report["calls"]
    assert overall["protocol"] == protocol and overall["live_calls"] == 1 and call["transcription"] == "live"
    assert call["words"] >= 10  # c001's first 12 s: the agent's greeting and the customer's answer
    assert 0 <= overall["wer_vs_batch"] <= 0.35
    assert 0 < overall["latency_median"] <= overall["latency_p95"] < 15
