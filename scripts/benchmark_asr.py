#!/usr/bin/env python3
"""Benchmark speech recognition: speed, memory and accuracy of the ASR backends side by side.

Every backend transcribes the same labelled calls with the same model weights, the same VAD
and the same threads, each in its own fresh process so that its peak memory is its own.
Reports per backend: model load time, audio seconds, transcription seconds, real-time factor
(audio seconds per wall second), WER (stated normalisation: pipeline.text.normalize.wer_text) over
all calls and per call, and peak resident memory. Optionally also the VAD settings compared
(``--vad``). The whole pipeline, and peak memory against call length, are measured by
scripts/benchmark_pipeline.py.

    .venv/bin/python scripts/benchmark_asr.py                      # recordings_sample/, both backends
    .venv/bin/python scripts/benchmark_asr.py --data DIR --threads 2 --json out.json
    .venv/bin/python scripts/benchmark_asr.py --vad off,silero-default,default
    .venv/bin/python scripts/benchmark_asr.py --asr-set compute_type=int8 --backends faster-whisper

DATA is a folder in callqa's labelled format (a manifest.csv and labels/<call_id>.json whose
utterances carry channel and text). Extra single recordings with a reference transcript can
be added with ``--extra AUDIO:TRANSCRIPT.txt`` (e.g. pyannote.audio's real telephone
``sample.wav``; an ``.stm`` transcript is read too).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VAD_PRESETS = {
    "default": {},
    "off": {"enabled": False},
    # Silero's own defaults, as faster-whisper's vad_filter=True applies them
    "silero-default": {
        "threshold": 0.5, "neg_threshold": None, "min_speech_duration_ms": 0,
        "min_silence_duration_ms": 2000, "speech_pad_ms": 400, "max_speech_duration_s": 30.0,
    },
}


def _references(data: Path, extras: list[str]) -> list[dict]:
    """The items to transcribe: path, and per channel the reference text."""
    items = []
    manifest = data / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f):
                cid = row["call_id"] or Path(row["path"]).stem
                lab = json.loads((data / "labels" / f"{cid}.json").read_text())
                channels = lab.get("channels", 1)
                refs = [" ".join(u["text"] for u in lab["utterances"] if u.get("channel", 0) == ch) for ch in range(channels)]
                items.append({"id": cid, "path": str(data / row["path"]), "refs": refs})
    for extra in extras:
        audio_path, _, text_path = extra.partition(":")
        lines = Path(text_path).read_text().splitlines()
        if text_path.endswith(".stm"):  # "file channel speaker start end text"
            lines = [ln.split(" ", 5)[5] for ln in lines if ln.strip() and not ln.startswith(";;")]
        items.append({"id": Path(audio_path).stem, "path": audio_path, "refs": [" ".join(lines)], "mixdown": True})
    return items


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """Run one backend with one VAD setting in this process and print a JSON result."""
    from models.asr import load_backend
    from models.base import AsrOptions
    from models.vad import VadOptions
    from pipeline.ingest import audio
    from pipeline.evaluation.measures import wer
    from pipeline.asr.transcribe import transcribe_call

    items = json.loads(Path(args.items).read_text())
    vad = VadOptions(**VAD_PRESETS[args.vad])
    t0 = time.perf_counter()
    asr = AsrOptions(backend=args.backend, model=args.model)
    for override in args.asr_set:
        key, _, value = override.partition("=")
        setattr(asr, key, type(getattr(asr, key))(value))
    backend = load_backend(asr, threads=args.threads)
    load_s = time.perf_counter() - t0
    total_audio = total_s = 0.0
    refs, hyps, per_call = [], [], {}
    for item in items:
        _, samples = audio.load(Path(item["path"]))
        if item.get("mixdown") and samples.shape[0] > 1:
            samples = samples.mean(axis=0, keepdims=True)
        t = time.perf_counter()
        utterances = transcribe_call(samples, backend, vad)
        total_s += time.perf_counter() - t
        total_audio += samples.shape[1] / 16000
        call_refs, call_hyps = [], []
        for ch, ref in enumerate(item["refs"]):
            call_refs.append(ref)
            call_hyps.append(" ".join(u.text for u in utterances if u.channel == ch))
        refs += call_refs
        hyps += call_hyps
        per_call[item["id"]] = round(wer(call_refs, call_hyps), 3) if any(call_refs) else None
    print(json.dumps({
        "backend": args.backend, "vad": args.vad, "model": args.model, "threads": args.threads,
        "load_s": round(load_s, 2), "audio_s": round(total_audio, 1), "transcribe_s": round(total_s, 2),
        "realtime_factor": round(total_audio / total_s, 1) if total_s else None,
        "wer": round(wer(refs, hyps), 3) if refs else None, "wer_per_call": per_call,
        "peak_rss_mb": round(_peak_rss_mb()),
    }))


def _run_child(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child {argv} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "recordings_sample"))
    p.add_argument("--extra", action="append", default=[], metavar="AUDIO:TRANSCRIPT")
    p.add_argument("--backends", default="faster-whisper,openai-whisper")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--asr-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an asr option for every backend, e.g. redecode_gap_s=0 (repeatable)")
    p.add_argument("--vad", default="default", help=f"comma list of: {', '.join(VAD_PRESETS)}; empty: skip")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--child", choices=["asr"], help=argparse.SUPPRESS)
    p.add_argument("--items", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "asr":
        return child(args)

    items = _references(Path(args.data), args.extra)
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()}, "asr": []}
    with tempfile.TemporaryDirectory() as tmp:
        items_file = Path(tmp) / "items.json"
        items_file.write_text(json.dumps(items))
        print(f"{len(items)} recordings, {args.threads} threads, model {args.model}")
        print(f"{'backend':16} {'vad':15} {'WER':>6} {'RTF':>6} {'load s':>7} {'peak MB':>8}")
        for vad in [v for v in args.vad.split(",") if v]:
            for backend in args.backends.split(","):
                r = _run_child(["--child", "asr", "--items", str(items_file), "--backend", backend, "--vad", vad,
                                "--model", args.model, "--threads", str(args.threads),
                                *[a for s in args.asr_set for a in ("--asr-set", s)]])
                results["asr"].append(r)
                print(f"{backend:16} {vad:15} {r['wer']:6.3f} {r['realtime_factor']:5.1f}x {r['load_s']:7.1f} {r['peak_rss_mb']:8}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
