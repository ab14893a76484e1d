#!/usr/bin/env python3
"""What the analysis stage (detectors, sentiment, metrics, PII, scoring) adds to each call.

    .venv/bin/callqa run recordings_sample/manifest.csv --out out/sample
    .venv/bin/python scripts/benchmark_scorecard.py --out out/sample

Reads ``processing.analysis_seconds`` and ``processing.seconds`` from every ok call.json of a
run's output folder and prints the share the analysis adds, per call and overall. (Agreement of
the suggestions with gold answers is ``callqa eval``'s job.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.interaction.record import Interaction  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output folder of a callqa run")
    args = p.parse_args()
    shares = []
    analysis_s = total_s = 0.0
    for path in sorted((args.out / "calls").glob("*/call.json")):
        call = Interaction.load(path)
        if not call.ok or "analysis_seconds" not in call.processing:
            continue
        a, t = call.processing["analysis_seconds"], call.processing["seconds"]
        if call.processing.get("stage_cache") == "hit":
            continue  # re-scored from the stage cache: no speech stage to compare with
        analysis_s, total_s = analysis_s + a, total_s + t
        shares.append(a / max(t - a, 1e-9))
        print(f"{call.call_id:12} analysis {a:6.2f} s of {t:7.2f} s  (+{shares[-1]:.1%})")
    if not shares:
        raise SystemExit(f"{args.out}: no processed call with analysis times")
    print(f"{len(shares)} calls: analysis {analysis_s:.2f} s of {total_s:.2f} s; adds {min(shares):.1%}-{max(shares):.1%} "
          f"per call (mean {sum(shares) / len(shares):.1%}, overall {analysis_s / max(total_s - analysis_s, 1e-9):.1%})")


if __name__ == "__main__":
    main()
