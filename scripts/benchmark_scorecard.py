#!/usr/bin/env python3
"""Agreement of a run's scorecard suggestions with gold answers, per item and overall.

    .venv/bin/callqa run recordings_sample/manifest.csv --out out/sample
    .venv/bin/python scripts/benchmark_scorecard.py --data recordings_sample --out out/sample

DATA is a labelled folder (manifest.csv, labels/<call_id>.json with a ``scorecard`` mapping of
item id to yes / no / na); OUT is the output folder of a run over it. Prints, for every item,
how many calls agree, and every disagreement with the evidence the detector used; ``--json``
keeps the details. The processing time the analysis stage added is reported too.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--json", type=Path, help="write the per-item figures and disagreements here")
    p.add_argument("--quiet", action="store_true", help="no list of disagreements")
    args = p.parse_args()
    per_item: dict[str, list[bool]] = {}
    disagreements = []
    analysis_s = total_s = 0.0
    with open(args.data / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            cid = row["call_id"] or Path(row["path"]).stem
            call = json.loads((args.out / "calls" / cid / "call.json").read_text())
            gold = json.loads((args.data / "labels" / f"{cid}.json").read_text())["scorecard"]
            analysis_s += call["processing"].get("analysis_seconds", 0.0)
            total_s += call["processing"]["seconds"]
            for item in call.get("scorecard", {}).get("items", []):
                if item["id"] not in gold:
                    continue
                ok = item["answer"] == gold[item["id"]]
                per_item.setdefault(item["id"], []).append(ok)
                if not ok:
                    disagreements.append({"call_id": cid, "item": item["id"], "auto": item["answer"],
                                          "gold": gold[item["id"]], "confidence": item["confidence"],
                                          "looked_for": item["looked_for"], "evidence": item["evidence"]})
    print(f"{'item':38} {'agree':>7} {'rate':>6}")
    for item, oks in per_item.items():
        print(f"{item:38} {sum(oks):3}/{len(oks):<3} {sum(oks) / len(oks):6.2f}")
    allv = [ok for oks in per_item.values() for ok in oks]
    overall = sum(allv) / len(allv) if allv else 0.0
    print(f"{'all items':38} {sum(allv):3}/{len(allv):<3} {overall:6.3f}")
    if total_s:
        print(f"analysis stage: {analysis_s:.2f} s of {total_s:.2f} s processing "
              f"({analysis_s / max(total_s - analysis_s, 1e-9):.1%} added)")
    if not args.quiet:
        for d in disagreements:
            ev = "; ".join(f"[{e['start']:.1f}-{e['end']:.1f}] {e['rule']}: {e['quote']}" for e in d["evidence"][:3])
            print(f"- {d['call_id']} {d['item']}: auto {d['auto']} ({d['confidence']:.2f}) vs gold {d['gold']}; "
                  f"looked for {d['looked_for']}; {ev or 'no evidence'}")
    if args.json:
        args.json.write_text(json.dumps({"overall": overall, "items": {k: sum(v) / len(v) for k, v in per_item.items()},
                                         "disagreements": disagreements}, indent=2))


if __name__ == "__main__":
    main()
