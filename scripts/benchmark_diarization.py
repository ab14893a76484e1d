#!/usr/bin/env python3
"""Benchmark speaker diarization of mono recordings: accuracy and speed.

For every recording with a reference RTTM: the diarization error rate (pyannote.metrics
``DiarizationErrorRate``, through pipeline.evaluation.measures) with no collar and with
collars, its parts (missed speech, false alarm, speaker confusion), the Jaccard error rate, the
number of speakers found against the reference, and the wall time of ``Diarizer.diarize`` (VAD
included; model loading and a first warm-up call, which pays one-time imports, not) as a speed
factor: seconds of audio per second of compute ("x real time").

pyannote.metrics' ``collar`` is the *total* width of the no-score zone around each
reference boundary (``collar=0.25`` ignores +-0.125 s); NIST md-eval's "0.25 s collar" is
+-0.25 s, i.e. ``collar=0.5`` here. Both are reported. Totals are pooled over all files
(error seconds / reference seconds; in --json, summed seconds and the pooled ``der``/``jer``).

    .venv/bin/python scripts/benchmark_diarization.py    # mono sample calls + pyannote's sample
    .venv/bin/python scripts/benchmark_diarization.py --overhead   # + time added to transcription
    .venv/bin/python scripts/benchmark_diarization.py --no-samples --extra A.wav:A.rttm \\
        --set merge_threshold=0.75 --set hop_s=0.2 --json out.json

The sample calls are those of ``--data`` (manifest.csv, labels/<id>.json with ``"channels": 1``
and labels/<id>.rttm). pyannote.audio's real telephone recording (``sample.wav``/``.rttm``,
unpacked from its wheel by scripts/bootstrap.sh into .venv/share/callqa/pyannote-sample) is
included when present (``--no-pyannote-sample`` leaves it out). An extra recording with
several channels is mixed down to mono.

**The written turns** (``--written OUT``): instead of running the diarizer, score what
``callqa run`` wrote, each call's ``OUT/calls/<id>/diarization.rttm`` (the speech turns of
the speaker stage, named by role: agent, customer, unknown-S2; DER's optimal speaker mapping
pairs them with the reference's names), against the same references, with the call's length
from its call.json. The stereo sample calls (labels with ``"channels": 2``) are scored too,
as their own group. A call is looked for in ``OUT/calls/<id>`` and ``OUT/<group>/calls/<id>``;
``--run`` first runs ``callqa run`` into ``OUT/<group>`` for each group (the sample manifest,
pyannote's sample, the extras; ``--callqa-set KEY=VALUE`` passes config overrides), so that

    .venv/bin/python scripts/benchmark_diarization.py --written /tmp/turns --run
    .venv/bin/python scripts/benchmark_diarization.py --written OUT    # a run already made

give the DER of the turns callqa writes, per file and pooled, at collars 0, 0.25 (+-0.125 s)
and 0.5 (+-0.25 s: the usual "0.25 s collar").
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.diarize import DiarizationOptions, Diarizer, load_diarizer  # noqa: E402
from pipeline.evaluation.measures import DiarizationTotals, read_rttm  # noqa: E402

COLLARS = (0.0, 0.25, 0.5)


def sample_calls(data: Path, channels: int = 1) -> list[tuple[str, Path, Path]]:
    """(id, audio, rttm) of the calls of a labelled folder with ``channels`` channels."""
    items = []
    with open(data / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            cid = row["call_id"] or Path(row["path"]).stem
            label = json.loads((data / "labels" / f"{cid}.json").read_text())
            if label.get("channels", 1) == channels:
                items.append((cid, data / row["path"], data / "labels" / f"{cid}.rttm"))
    return items


def parse_set(items: list[str]) -> dict:
    """``key=value`` pairs (values in YAML syntax) for DiarizationOptions."""
    out = {}
    names = {f.name for f in dataclasses.fields(DiarizationOptions)}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            raise SystemExit(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        out[key] = yaml.safe_load(value)
    return out


def load_mono(path: Path) -> np.ndarray:
    """A recording as float32 mono 16 kHz (several channels are averaged)."""
    from pipeline.ingest import audio

    _, samples = audio.load(path)
    return samples.mean(axis=0).astype(np.float32) if samples.shape[0] > 1 else samples[0]


def evaluate(item_id: str, audio_path: Path, rttm: Path, diarizer: Diarizer,
             totals: dict[float, DiarizationTotals]) -> dict:
    """One recording's figures (``der@<collar>``: measures.diarization_errors at that collar;
    ``jer``: the JER with no collar), added to the group's ``totals`` (one per collar)."""
    mono = load_mono(audio_path)
    duration = mono.size / 16000
    t = time.perf_counter()
    turns = diarizer.diarize(mono)
    seconds = time.perf_counter() - t
    ref, hyp = read_rttm(rttm), [(t.start, t.end, t.speaker) for t in turns]
    row = {"id": item_id, "duration_s": round(duration, 2), "diarize_s": round(seconds, 3),
           "x_real_time": round(duration / max(seconds, 1e-9), 1),
           "speakers_ref": len({label for start, end, label in ref if end > start}),
           "speakers_found": len({t.speaker for t in turns})}
    for collar in COLLARS:
        row[f"der@{collar}"] = totals[collar].add(ref, hyp, duration)
    row["jer"] = row["der@0.0"]["jer"]
    return row


GROUP_FOLDERS = {"mono sample calls": "samples", "stereo sample calls": "samples",
                 "pyannote.audio's real telephone sample": "pyannote", "extra": "extra"}
"""Where ``--run`` writes each group's calls, under ``--written OUT``."""


def run_callqa(out: Path, items: dict[str, list[tuple[str, Path, Path]]], data: Path, overrides: list[str]) -> None:
    """``callqa run`` (one worker, quiet) of every group's recordings into OUT/<group folder>:
    the sample calls by their manifest (their metadata, e.g. the agent channel, counts), the
    other recordings one file at a time."""
    import subprocess

    inputs: dict[str, list[Path]] = {}
    for name, group in items.items():
        folder = GROUP_FOLDERS.get(name, "extra")
        if name.endswith("sample calls"):
            inputs.setdefault(folder, [data / "manifest.csv"])
        else:
            inputs.setdefault(folder, []).extend(audio_path for _, audio_path, _ in group)
    sets = [arg for item in ["run.workers=1", *overrides] for arg in ("--set", item)]
    for folder, paths in inputs.items():
        for path in dict.fromkeys(paths):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(path), "--out", str(out / folder),
                                   "--quiet", *sets], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode not in (0, 3):
                raise SystemExit(f"callqa run {path} failed (exit {proc.returncode})")
            print(f"callqa run {path} -> {out / folder} in {time.perf_counter() - t:.1f} s")


def written_call(out: Path, group: str, call_id: str) -> Path | None:
    """The call folder of ``call_id`` in a callqa output folder (see the module docstring)."""
    for folder in (out / "calls" / call_id, out / GROUP_FOLDERS.get(group, "extra") / "calls" / call_id):
        if (folder / "diarization.rttm").is_file():
            return folder
    return None


def evaluate_written(item_id: str, rttm: Path, folder: Path, totals: dict[float, DiarizationTotals]) -> dict:
    """One call's written turns (``folder``/diarization.rttm) scored like ``evaluate``."""
    record = json.loads((folder / "call.json").read_text())
    duration = float(record["source"]["duration_s"])
    ref, hyp = read_rttm(rttm), read_rttm(folder / "diarization.rttm")
    row = {"id": item_id, "duration_s": round(duration, 2), "turns": len(hyp),
           "speakers_ref": len({label for start, end, label in ref if end > start}),
           "speakers_found": len({label for start, end, label in hyp if end > start})}
    for collar in COLLARS:
        row[f"der@{collar}"] = totals[collar].add(ref, hyp, duration)
    row["jer"] = row["der@0.0"]["jer"]
    return row


def rate(value: float | None, width: int = 0) -> str:
    return f"{value:>{width}.3f}" if value is not None else f"{'n/a':>{width}}"


def der_parts(d: dict) -> str:
    total = max(d["total"], 1e-9)
    return (f"{rate(d['der'])} (miss {d['missed'] / total:.3f} "
            f"fa {d['false_alarm'] / total:.3f} conf {d['confusion'] / total:.3f})")


def report(name: str, rows: list[dict], totals: dict[float, DiarizationTotals]) -> dict:
    """Print a group's rows and pooled figures; returns the pooled figures. Rows of written
    turns (``evaluate_written``) have no timing: their speed column is '-'."""
    print(f"\n== {name}")
    print(f"{'id':<10} {'dur s':>6} {'spk':>5} {'x RT':>6}  {'DER no collar':<45} "
          f"{'c=0.25 (+-0.125 s)':>18} {'c=0.5 (+-0.25 s)':>16} {'JER':>6}")
    for r in rows:
        speed = f"{r['x_real_time']:>6.1f}" if "x_real_time" in r else f"{'-':>6}"
        print(f"{r['id']:<10} {r['duration_s']:>6.1f} {r['speakers_found']:>2}/{r['speakers_ref']:<2} "
              f"{speed}  {der_parts(r['der@0.0']):<45} "
              f"{rate(r['der@0.25']['der'], 18)} {rate(r['der@0.5']['der'], 16)} {rate(r['jer'], 6)}")
    audio_s = sum(r["duration_s"] for r in rows)
    summary = {"files": len(rows), "audio_s": round(audio_s, 1), **{f"der@{c}": totals[c].overall() for c in COLLARS}}
    timing = ""
    if rows and all("diarize_s" in r for r in rows):
        compute_s = sum(r["diarize_s"] for r in rows)
        summary.update(diarize_s=round(compute_s, 2), x_real_time=round(audio_s / max(compute_s, 1e-9), 1))
        timing = f" in {compute_s:.1f} s ({summary['x_real_time']}x real time)"
    print(f"pooled: DER no collar {rate(summary['der@0.0']['der'])}, collar 0.25 (+-0.125 s) "
          f"{rate(summary['der@0.25']['der'])}, collar 0.5 (+-0.25 s) {rate(summary['der@0.5']['der'])}; "
          f"{audio_s:.0f} s of audio{timing}")
    return summary


def main_written(args: argparse.Namespace, items: dict[str, list[tuple[str, Path, Path]]]) -> None:
    """``--written OUT``: score the turns callqa wrote (see the module docstring)."""
    if not args.no_samples:
        items["stereo sample calls"] = sample_calls(args.data, channels=2)
    if args.run:
        run_callqa(args.written, items, args.data, args.callqa_set)
    print(f"written turns of callqa run in {args.written} (diarization.rttm of each call; "
          f"pyannote collar = total width: 0.5 is +-0.25 s)")
    totals = {name: {c: DiarizationTotals(c) for c in COLLARS} for name in items}
    groups: dict[str, list[dict]] = {}
    missing = []
    for name, group in items.items():
        for item_id, _, rttm in group:
            folder = written_call(args.written, name, item_id)
            if folder is None:
                missing.append(item_id)
                continue
            groups.setdefault(name, []).append(evaluate_written(item_id, rttm, folder, totals[name]))
    results = {"written": str(args.written), "missing": missing,
               "groups": {name: {"summary": report(name, rows, totals[name]), "files": rows}
                          for name, rows in groups.items()}}
    if missing:
        print(f"\nnot found in {args.written} (no calls/<id>/diarization.rttm): {', '.join(missing)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


def overhead(items: list[tuple[str, Path, Path]], options: DiarizationOptions, threads: int, repeats: int) -> dict:
    """How much diarization adds to the time of transcribing each mono call, run as the
    pipeline runs it (pipeline/run/call.py: diarization on a low-priority thread beside
    transcription, its model loaded there, both given the same speech regions); the best of
    ``repeats`` timings of each."""
    from models.asr import load_backend
    from models.base import AsrOptions
    from models.vad import VadOptions
    from pipeline.run.recording import beside_executor
    from pipeline.asr.transcribe import speech_regions, transcribe_call

    beside_thread = beside_executor()
    diarizer = beside_thread.submit(load_diarizer, options, threads).result()
    beside_thread.submit(diarizer.diarize, load_mono(items[0][1])[: 10 * 16000]).result()  # warm-up
    backend = load_backend(AsrOptions(), threads=threads)
    vad = VadOptions()
    asr_s = both_s = alone_s = 0.0
    for item_id, audio_path, _ in items:
        samples = load_mono(audio_path)[None, :]
        regions = {0: speech_regions(samples[0], vad)}
        transcribe_call(samples[:, : 10 * 16000], backend, vad)  # warm-up
        t_asr, t_both, t_alone = [], [], []
        for _ in range(repeats):
            t = time.perf_counter()
            transcribe_call(samples, backend, vad, dict(regions))
            t_asr.append(time.perf_counter() - t)
            t = time.perf_counter()
            beside_thread.submit(diarizer.diarize, samples[0], regions[0]).result()
            t_alone.append(time.perf_counter() - t)
            t = time.perf_counter()
            turns = beside_thread.submit(diarizer.diarize, samples[0], regions[0])
            transcribe_call(samples, backend, vad, dict(regions))
            turns.result()
            t_both.append(time.perf_counter() - t)
        a, b, c = min(t_asr), min(t_both), min(t_alone)
        asr_s, both_s, alone_s = asr_s + a, both_s + b, alone_s + c
        print(f"{item_id:10} transcription {a:6.2f} s, with diarization beside it {b:6.2f} s (+{(b - a) / a:.0%}); "
              f"diarization alone {c:5.2f} s (+{c / a:.0%} if run after)")
    result = {"transcription_s": round(asr_s, 2), "with_diarization_s": round(both_s, 2),
              "diarization_alone_s": round(alone_s, 2), "added": round((both_s - asr_s) / asr_s, 3),
              "added_if_sequential": round(alone_s / asr_s, 3)}
    print(f"all: transcription {asr_s:.2f} s, with diarization beside it {both_s:.2f} s: diarization adds "
          f"{result['added']:.0%} (run after transcription it would add {result['added_if_sequential']:.0%})")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "recordings_sample", help="labelled folder")
    ap.add_argument("--no-samples", action="store_true", help="skip the sample calls of --data")
    ap.add_argument("--extra", action="append", default=[], metavar="AUDIO:RTTM", help="another recording")
    ap.add_argument("--no-pyannote-sample", action="store_true", help="leave out pyannote.audio's sample")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a DiarizationOptions field")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--overhead", action="store_true",
                    help="also measure what diarization adds to transcribing the mono sample calls")
    ap.add_argument("--repeats", type=int, default=2, help="timings per call for --overhead (the best counts)")
    ap.add_argument("--written", type=Path, metavar="OUT",
                    help="score the diarization.rttm that callqa run wrote in OUT (the speaker stage's turns) "
                         "instead of running the diarizer; stereo sample calls included")
    ap.add_argument("--run", action="store_true", help="with --written: run callqa run into OUT first")
    ap.add_argument("--callqa-set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --run: a config override for callqa run (repeatable)")
    args = ap.parse_args()
    if (args.run or args.callqa_set) and not args.written:
        raise SystemExit("--run and --callqa-set go with --written OUT")

    options = DiarizationOptions(**parse_set(args.set))
    items: dict[str, list[tuple[str, Path, Path]]] = {}
    if not args.no_samples:
        items["mono sample calls"] = sample_calls(args.data)
    pyannote_sample = Path(sys.prefix) / "share" / "callqa" / "pyannote-sample"
    if not args.no_pyannote_sample and (pyannote_sample / "sample.rttm").is_file():
        items["pyannote.audio's real telephone sample"] = [
            ("sample", pyannote_sample / "sample.wav", pyannote_sample / "sample.rttm")]
    for extra in args.extra:
        audio_path, sep, rttm = extra.rpartition(":")
        if not sep:
            raise SystemExit(f"--extra {extra}: expected AUDIO:RTTM")
        items.setdefault("extra", []).append((Path(audio_path).stem, Path(audio_path), Path(rttm)))
    if not items:
        raise SystemExit("nothing to benchmark: give --extra AUDIO:RTTM or drop --no-samples")
    if args.written:
        main_written(args, items)
        return

    t = time.perf_counter()
    diarizer = load_diarizer(options, args.threads)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    diarizer.diarize(load_mono(next(iter(items.values()))[0][1])[: 10 * 16000])
    warmup_s = time.perf_counter() - t
    print(f"options: {dataclasses.asdict(options)}")
    print(f"model: {diarizer.describe()}")
    print(f"loaded in {load_s:.2f} s, warm-up call {warmup_s:.2f} s, {args.threads} threads")

    totals = {name: {c: DiarizationTotals(c) for c in COLLARS} for name in items}
    groups = {name: [evaluate(i, a, r, diarizer, totals[name]) for i, a, r in group] for name, group in items.items()}
    results = {"options": dataclasses.asdict(options), "model": diarizer.describe(), "load_s": round(load_s, 2),
               "warmup_s": round(warmup_s, 2), "threads": args.threads,
               "groups": {name: {"summary": report(name, rows, totals[name]), "files": rows}
                          for name, rows in groups.items()}}
    if args.overhead:
        results["overhead"] = overhead(sample_calls(args.data), options, args.threads, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
