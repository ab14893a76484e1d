#!/usr/bin/env python3
"""PII recall and precision on labelled calls, and what masking the audio costs per call.

    .venv/bin/python scripts/benchmark_pii.py [--data recordings_sample] [--cache out/pii_cache]
                                              [--config FILE] [--set pii.KEY=VALUE ...] [--json FILE]

For every labelled call with a ``pii`` list (labels/<call_id>.json, see pipeline/evaluation/labels.py):
the detector on the gold text, and on the recogniser's words (the speech stage of a run, kept in
the stage cache ``--cache`` so that a second run only re-detects), scored by
pipeline/evaluation/pii_eval.py; then ``redact_audio`` writes the masked copy of the call and is
timed (the decode it needs is timed apart: in a run the call is decoded already, except on a
stage-cache hit).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.ingest import audio  # noqa: E402
from pipeline.run.call import CallProcessor, sha256_file  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.evaluation.labels import load_dataset  # noqa: E402
from pipeline.evaluation.pii_eval import PiiScore, score_recognised, score_text  # noqa: E402
from pipeline.pii.text import find_pii, redact_audio  # noqa: E402


def fmt(d: dict) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0%}"

    return (f"recall {pct(d['recall'])} (typed {pct(d['recall_typed'])}), precision {pct(d['precision'])} "
            f"(typed {pct(d['precision_typed'])}), masked {pct(d['masked_share'])}; "
            f"{d['gold_spans']} gold / {d['found_spans']} found")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT / "recordings_sample",
                   help="labelled calls (default: the samples)")
    p.add_argument("--cache", type=Path, default=ROOT / "out" / "pii_cache", help="stage cache of the speech stage")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args()
    config = load_config(args.config, [*args.overrides, f"run.stage_cache={args.cache}"])
    ds = load_dataset(args.data)
    text_total, words_total = PiiScore(), PiiScore()
    per_call, mask_s, decode_s, audio_s = {}, [], [], 0.0
    with tempfile.TemporaryDirectory(prefix="callqa-pii-") as tmp:
        proc = CallProcessor(config, Path(tmp) / "out")
        for call in ds.calls:
            labels = ds.labels.get(call.call_id)
            if labels is None or not labels.utterances or any("pii" not in u for u in labels.utterances):
                continue
            company = call.metadata.get("company") or config.roles.company
            on_text = score_text(labels.utterances, config.pii, company)
            speech = proc.speech(call, sha256_file(call.path))
            found = find_pii(speech.utterances, config.pii, company)
            on_words = score_recognised(labels.utterances, found, config.pii.audio_pad_s)
            text_total.add(on_text)
            words_total.add(on_words)
            t0 = time.perf_counter()
            _, samples = audio.load_to_disk(call.path, Path(tmp) / "decoded" / call.call_id)
            decode_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            redact_audio(samples, found, Path(tmp) / f"{call.call_id}.wav", config.pii,
                         {u.id: u.channel for u in speech.utterances})
            mask_s.append(time.perf_counter() - t0)
            audio_s += speech.info.duration_s
            per_call[call.call_id] = {"text": on_text.to_dict(), "recognised": on_words.to_dict(),
                                      "mask_seconds": round(mask_s[-1], 4), "decode_seconds": round(decode_s[-1], 4),
                                      "duration_s": speech.info.duration_s}
            print(f"{call.call_id:8} text: {fmt(on_text.to_dict())}")
            print(f"{'':8} words: {fmt(on_words.to_dict())}; masking {mask_s[-1] * 1000:.0f} ms "
                  f"(+ decode {decode_s[-1] * 1000:.0f} ms) for {speech.info.duration_s:.0f} s of audio")
    if not per_call:
        raise SystemExit(f"{args.data}: no labelled call has a 'pii' list")
    n = len(mask_s)
    result = {
        "calls": n, "text": text_total.to_dict(), "recognised": words_total.to_dict(),
        "mask_seconds_per_call": {"mean": round(sum(mask_s) / n, 4), "max": round(max(mask_s), 4)},
        "decode_seconds_per_call": {"mean": round(sum(decode_s) / n, 4), "max": round(max(decode_s), 4)},
        "mask_seconds_per_audio_hour": round(sum(mask_s) / audio_s * 3600, 2),
        "per_call": per_call,
    }
    print(f"\n{n} calls, gold text:       {fmt(result['text'])}")
    print(f"{n} calls, recognised words: {fmt(result['recognised'])}")
    print("recall per type (text / recognised): " + ", ".join(
        f"{t} {result['text']['recall_per_type'][t]:.0%} / {result['recognised']['recall_per_type'][t]:.0%}"
        for t in result["text"]["recall_per_type"]))
    print(f"masking the audio: {result['mask_seconds_per_call']['mean'] * 1000:.0f} ms per call "
          f"(max {result['mask_seconds_per_call']['max'] * 1000:.0f} ms; {result['mask_seconds_per_audio_hour']:.1f} s "
          f"per hour of audio); decoding it again on a stage-cache hit: "
          f"{result['decode_seconds_per_call']['mean'] * 1000:.0f} ms per call")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
