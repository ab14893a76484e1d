#!/usr/bin/env python3
"""Role accuracy of a processed run against gold labels: the share of speech time given the
right role (pipeline.evaluation.agreement.role_accuracy), per call, for stereo and mono calls.

    .venv/bin/python -m pipeline.cli run recordings_sample/manifest.csv --out out/sample
    .venv/bin/python scripts/benchmark_speakers.py --data recordings_sample --out out/sample

DATA is a labelled folder (manifest.csv, labels/<call_id>.json whose utterances carry role,
start and end); OUT is the output folder of a run over it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.evaluation.agreement import role_accuracy  # noqa: E402
from pipeline.interaction.record import Interaction, record_path  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    data, out = Path(args.data), Path(args.out)
    groups: dict[str, list[float]] = {}
    print(f"{'call':8} {'kind':22} {'method':12} {'conf':>5} {'accuracy':>9} {'frames':>7} {'coverage':>9}")
    with open(data / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            cid = row["call_id"] or Path(row["path"]).stem
            call = Interaction.load(record_path(out, cid))
            gold = json.loads((data / "labels" / f"{cid}.json").read_text())
            acc = role_accuracy(call.utterance_dicts(), gold["utterances"])
            stereo = call.source.channels == 2
            kind = ("stereo, " + ("configured" if row.get("agent_channel") else "auto")) if stereo else "mono"
            groups.setdefault(kind, []).append(acc["accuracy"])
            sp = call.speakers or {}
            print(f"{cid:8} {kind:22} {sp.get('method', ''):12} {sp.get('confidence', 0):5.2f} "
                  f"{acc['accuracy']:9.3f} {acc['frame_accuracy']:7.3f} {acc['coverage']:9.3f}")
    for kind, values in groups.items():
        print(f"{kind}: mean role accuracy {sum(values) / len(values):.3f} over {len(values)} calls")


if __name__ == "__main__":
    main()
