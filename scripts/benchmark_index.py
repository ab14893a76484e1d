#!/usr/bin/env python3
"""How long the incremental check takes on a large archive, and the memory it needs.

    .venv/bin/python scripts/benchmark_index.py --calls 10000 [--work DIR]

Writes ``--calls`` short recordings (0.2 s of silence, 8 kHz mu-law, so processing is quick),
runs the batch over them once (everything processed), then again (nothing to do: the index of
processed calls, ``OUT/.callqa-index.sqlite``, answers without hashing a recording or opening a
call.json), then again after deleting the index (the slow path: every recording hashed, every
call.json read). Prints wall time and peak memory of each run, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_calls(folder: Path, n: int) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from audio_fixtures import write_audio

    folder.mkdir(parents=True, exist_ok=True)
    silence = np.zeros((1, 1600), dtype=np.float32)
    first = folder / "call_00000.wav"
    if not first.exists():
        write_audio(first, silence, 8000, "wav_ulaw")
    data = first.read_bytes()
    for i in range(1, n):
        p = folder / f"call_{i:05d}.wav"
        if not p.exists():
            p.write_bytes(data)


def timed_run(data: Path, out: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", (
        "import resource, sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"),
        "run", str(data), "--out", str(out), "-q", "--set", "scorecard.enabled=false"],
        cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = int(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else 0
    counts = json.loads((out / "run.json").read_text())["counts"]
    return {"seconds": round(wall, 1), "peak_mb": round(peak_kb / 1024), "counts": counts, "exit": proc.returncode}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=10000)
    p.add_argument("--work", type=Path, help="folder for the recordings and the output (default: a temp folder)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="callqa-index-"))
    data, out = work / "archive", work / "out"
    make_calls(data, args.calls)
    first = timed_run(data, out)
    print(f"first run (process all {args.calls}): {first}")
    second = timed_run(data, out)
    print(f"second run (all done, by the index): {second}")
    (out / ".callqa-index.sqlite").unlink()
    third = timed_run(data, out)
    print(f"without the index (hash every recording, read every call.json): {third}")


if __name__ == "__main__":
    main()
