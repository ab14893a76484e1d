"""scripts/benchmark_review_scale.py on a small run: it generates and loads the calls through
``callqa db load`` (a second load finds them all unchanged), serves the app, times every page
as a logged-in lead or reviewer, lists a page that does not answer 200 with its status instead
of stopping, writes its figures as JSON, and leaves nothing behind in its temp folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "benchmark_review_scale.py"
NEW_PARAMETERS = {"page", "per_page", "sort", "order", "period"}
"""Query parameters the queue and dashboards may not have yet (being added at the same time)."""


def test_the_scale_benchmark_times_the_load_and_every_page(tmp_path: Path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    figures_file = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--calls", "300", "--repeats", "1", "--json", str(figures_file),
         "--extra", "/calls/no-such-call"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    load = re.search(r"^load: ([\d.]+) s \(([\d.]+) s in the command, (\d+) calls/s\)", out, re.M)
    assert load and float(load.group(1)) > 0 and int(load.group(3)) > 0, out
    figures = json.loads(figures_file.read_text())
    assert figures["load"]["counts"] == {"added": 300, "updated": 0, "unchanged": 0, "skipped": 0}
    assert figures["reload"]["counts"] == {"added": 0, "updated": 0, "unchanged": 300, "skipped": 0}
    assert figures["made"]["reviewed_calls"] == 9 and figures["made"]["reviews"] >= 9

    pages = figures["pages"]
    urls = [p["url"] for p in pages]
    for path in ("/", "/api/calls", "/?page=50", "/?sort=score&order=asc", "/?period=all",
                 "/api/calls?period=all&reviewed=no", "/dashboard", "/api/dashboard", "/dashboard.csv",
                 "/dashboard?period=all", "/api/dashboard?period=all", "/sample", "/calibrations",
                 "/api/calibrations"):
        assert path in urls, path
    assert any(u.startswith("/?agent=agent") for u in urls) and any(u.startswith("/calls/call-") for u in urls)
    assert [p["user"] for p in pages if p["url"] == "/"] == ["lead", "reviewer01"]
    table = out[out.index("median s"):]
    for p in pages:
        assert len(p["statuses"]) == 1 and p["median_s"] > 0 and p["max_s"] >= p["median_s"]
        line = next(line for line in table.splitlines() if line.startswith(f"{p['page']:32} {p['user']:11} "))
        assert p["url"] in line and re.search(r"\s\d+\.\d{3}\s", line), line  # its median in the table
        new = NEW_PARAMETERS & {k for k, _ in parse_qsl(urlsplit(p["url"]).query)}
        if p["url"] == "/calls/no-such-call":
            assert p["statuses"] == [404] and not p["ok"]
        elif not new:  # pages that exist already must answer
            assert p["statuses"] == [200], p
        else:  # pages with parameters still being added: listed, with whatever they answered
            assert isinstance(p["statuses"][0], (int, str)) and p["new_parameters"] == sorted(new)
    assert "did not answer 200 every time" in out and "/calls/no-such-call" in out
    assert list(tmp.iterdir()) == []  # the work folder (run, database, server log) is removed
