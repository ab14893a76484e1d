#!/usr/bin/env python3
"""Benchmark the whole nightly pipeline end to end, beside openai-whisper, in one run.

For each split of the cores (``--splits``: worker processes x model threads per worker) the
script runs ``callqa run`` on the labelled calls into a fresh output folder (stage cache off:
every call is decoded, transcribed, diarized, scored and written) and reports:

- end-to-end throughput: audio hours per wall-clock hour, start-up and model loading included;
- real-time factor of each stage (audio seconds per second spent in it, summed over the
  calls; ``processing.stages`` of each call.json): decode, VAD, ASR, diarization (mono calls,
  run beside ASR on a low-priority thread), speakers and roles, analysis (detectors,
  sentiment, PII, scorecard), writing;
- peak resident memory of the whole process tree (the run and its workers, sampled) and of
  its largest process;
- WER of the pipeline's transcripts against the labels (pipeline.text.normalize normalisation; PII
  is found as usual but not masked in call.json, so that WER counts the words as recognised).

Then openai-whisper transcribes the same recordings with the same model, VAD and threads
(``scripts/benchmark_asr.py``'s child, in its own process; its time counts transcription only:
no decoding, model loading, speakers, analysis or writing) and the script prints how many
times faster the whole pipeline is than that transcription alone.

``--lengths 5,60`` adds the memory test: one long 8 kHz call per length (made by repeating the
sample calls; ``--layout stereo|mono``) through ``callqa run``, with its peak memory.

    .venv/bin/python scripts/benchmark_pipeline.py                          # recordings_sample/
    .venv/bin/python scripts/benchmark_pipeline.py --data recordings_sample --data more/labelled \\
        --splits 1x2,2x1 --json out/bench.json
    .venv/bin/python scripts/benchmark_pipeline.py --splits 2x1 --set asr.compute_type=float32
    .venv/bin/python scripts/benchmark_pipeline.py --no-openai --splits "" --lengths 5,60 --layout mono
    .venv/bin/python scripts/benchmark_pipeline.py --splits 2x1 --mix 1,2,4,6,8,10   # a mixed archive

``--mix`` replaces the labelled calls by a mixed archive made from them: for each length one
stereo and one mono call (whole labelled calls of that layout one after another, their
references joined), so half the calls are mono, half stereo, of 1-10 minutes; the mix is
printed and written to the JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pipeline.interaction.record import Interaction, record_path  # noqa: E402

from benchmark_asr import _references, _run_child  # noqa: E402

STAGES = ("decode", "vad", "asr", "diarization", "speakers", "analysis", "mask_audio", "write")


# -- memory of a process tree -------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreeMemory:
    """Samples the resident memory of a process and all its descendants in a thread."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.pid, self.every_s = pid, every_s
        self.peak_total_mb = self.peak_process_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            tree, todo, pids = _children(), [self.pid], []
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo.extend(tree.get(pid, []))
            sizes = [_rss_mb(p) for p in pids]
            self.peak_total_mb = max(self.peak_total_mb, sum(sizes))
            self.peak_process_mb = max(self.peak_process_mb, max(sizes, default=0.0))
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_callqa(args: list[str]) -> dict:
    """``callqa run ARGS`` in a child process: wall seconds, exit code, peak memory."""
    cmd = [sys.executable, "-m", "pipeline.cli", "run", *args, "-q"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    memory.stop()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"callqa run failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall_s": wall, "exit_code": proc.returncode, "peak_tree_mb": round(memory.peak_total_mb),
            "peak_process_mb": round(memory.peak_process_mb)}


# -- inputs -------------------------------------------------------------------------------------


def combined_manifest(datas: list[Path], folder: Path) -> tuple[Path, dict[str, dict]]:
    """One manifest over every labelled folder (absolute paths), and the references by call id."""
    rows, refs = [], {}
    for data in datas:
        items = {i["id"]: i for i in _references(data, [])}
        with open(data / "manifest.csv", newline="") as f:
            for row in csv.DictReader(f):
                cid = row["call_id"] or Path(row["path"]).stem
                if cid in refs:
                    raise SystemExit(f"{data}: call id {cid} is also in an earlier --data folder")
                rows.append({**row, "call_id": cid, "path": str((data / row["path"]).resolve())})
                refs[cid] = items[cid]
    out = folder / "manifest.csv"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    return out, refs


def _hyps(record: Interaction, n_refs: int) -> list[str]:
    """The pipeline's text per reference channel, in time order (``read_results`` gives one
    reference when the call was transcribed with another number of channels, e.g. fake stereo
    folded to mono)."""
    utts = sorted(record.utterances, key=lambda u: u.start)
    return [" ".join(u.text for u in utts if n_refs == 1 or u.channel == ch) for ch in range(n_refs)]


def read_results(out: Path, refs: dict[str, dict]) -> dict:
    """Audio, per-stage seconds and WER of a finished run folder."""
    from pipeline.evaluation.measures import wer

    audio_s = 0.0
    stages = dict.fromkeys(STAGES, 0.0)
    stage_audio = dict.fromkeys(STAGES, 0.0)
    ref_texts, hyp_texts, failed, per_call = [], [], [], {}
    for cid, item in refs.items():
        record = Interaction.load(record_path(out, cid))
        if not record.ok:
            failed.append(cid)
            continue
        duration = record.duration_s
        audio_s += duration
        for stage, seconds in record.processing.get("stages", {}).items():
            stages[stage] = stages.get(stage, 0.0) + seconds  # a stage this script does not name is kept too
            stage_audio[stage] = stage_audio.get(stage, 0.0) + duration
        call_refs = item["refs"]
        if len(call_refs) > 1 and record.source.channels != len(call_refs):
            call_refs = [" ".join(call_refs)]  # the call was heard as one channel
        call_hyps = _hyps(record, len(call_refs))
        per_call[cid] = round(wer(call_refs, call_hyps), 3) if any(call_refs) else None
        ref_texts += call_refs
        hyp_texts += call_hyps
    return {
        "calls": len(refs) - len(failed), "failed": failed, "audio_s": round(audio_s, 1),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "stage_rtf": {k: round(stage_audio[k] / v, 1) if v else None for k, v in stages.items()},
        "wer": round(wer(ref_texts, hyp_texts), 4), "wer_per_call": per_call,
    }


# -- long calls ---------------------------------------------------------------------------------


def long_recording(items: list[dict], minutes: float, folder: Path, layout: str) -> Path:
    """One long 8 kHz mu-law call made by repeating the sample calls (stereo: a mono sample
    gets a silent second channel; mono: stereo samples are mixed down)."""
    import numpy as np
    import soundfile as sf
    import soxr

    from pipeline.ingest import audio

    channels = 2 if layout == "stereo" else 1
    target = int(minutes * 60 * 8000)
    out = folder / f"long_{minutes:g}min_{layout}.wav"
    with sf.SoundFile(out, "w", samplerate=8000, channels=channels, subtype="ULAW") as f:
        written = 0
        while written < target:
            for item in items:
                _, samples = audio.load(Path(item["path"]))
                if channels == 2 and samples.shape[0] == 1:
                    samples = np.vstack([samples, np.zeros_like(samples)])
                elif channels == 1 and samples.shape[0] == 2:
                    samples = samples.mean(axis=0, keepdims=True)
                chunk = soxr.resample(samples.T, 16000, 8000)[: target - written]
                f.write(chunk)
                written += chunk.shape[0]
                if written >= target:
                    break
    return out


def mixed_archive(items: list[dict], minutes: list[float], folder: Path) -> tuple[Path, dict[str, dict]]:
    """A mixed archive made from the labelled calls: for each length in ``minutes`` one stereo
    and one mono 8 kHz mu-law call about that long (whole labelled calls of that layout one
    after another, so that each call's reference is theirs joined), as a manifest and its
    references by call id."""
    import numpy as np
    import soundfile as sf
    import soxr

    from pipeline.ingest import audio

    by_layout = {n: [i for i in items if len(i["refs"]) == n] for n in (1, 2)}
    rows, refs = [], {}
    for k, length in enumerate(minutes):
        for channels, layout in ((2, "stereo"), (1, "mono")):
            pool = by_layout[channels]
            if not pool:
                raise SystemExit(f"--mix: the labelled calls hold no {layout} call")
            cid = f"mix_{length:g}min_{layout}"
            path = folder / f"{cid}.wav"
            texts: list[list[str]] = [[] for _ in range(channels)]
            written, target, j = 0, int(length * 60 * 8000), k  # each call starts from another sample
            with sf.SoundFile(path, "w", samplerate=8000, channels=channels, subtype="ULAW") as f:
                while written < target:
                    item = pool[j % len(pool)]
                    j += 1
                    _, samples = audio.load(Path(item["path"]))
                    chunk = soxr.resample(np.ascontiguousarray(samples.T), 16000, 8000)
                    f.write(chunk)
                    written += chunk.shape[0]
                    for ch in range(channels):
                        texts[ch].append(item["refs"][ch])
            rows.append({"call_id": cid, "path": str(path)})
            refs[cid] = {"id": cid, "path": str(path), "refs": [" ".join(t) for t in texts]}
    manifest = folder / "mix_manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, ["call_id", "path"])
        w.writeheader()
        w.writerows(rows)
    return manifest, refs


# -- main ---------------------------------------------------------------------------------------


def _machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model or platform.processor() or platform.machine(),
            "python": platform.python_version(), "system": platform.platform()}


def _config_value(sets: list[str], key: str, default: str) -> str:
    for s in reversed(sets):
        k, _, v = s.partition("=")
        if k == key:
            return v
    return default


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", help="labelled folder (repeatable; default recordings_sample/)")
    p.add_argument("--splits", default="1x2,2x1", help="comma list of WORKERSxTHREADS; empty: skip")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    p.add_argument("--openai-threads", type=int, default=os.cpu_count() or 1,
                   help="threads for openai-whisper (default: every core, as the pipeline uses)")
    p.add_argument("--no-openai", action="store_true", help="skip the openai-whisper transcription")
    p.add_argument("--mix", default="", help="comma list of call lengths (minutes): instead of the labelled "
                   "calls, a mixed archive of one stereo and one mono call of each length made from them")
    p.add_argument("--lengths", default="", help="comma list of call lengths (minutes) for the memory test")
    p.add_argument("--layout", choices=["stereo", "mono"], default="stereo", help="channels of the long calls")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--keep", help="keep the run folders under this folder")
    args = p.parse_args()
    datas = [Path(d) for d in (args.data or [str(ROOT / "recordings_sample")])]
    model = _config_value(args.set, "asr.model", "tiny.en")
    results: dict = {"machine": _machine(), "model": model, "sets": args.set, "pipeline": [], "openai_whisper": None,
                     "lengths": []}
    print(f"machine: {results['machine']['cpus']} cores, {results['machine']['cpu']}; model {model}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(args.keep or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        manifest, refs = combined_manifest(datas, tmp)
        if args.mix:
            manifest, refs = mixed_archive(list(refs.values()), [float(m) for m in args.mix.split(",") if m], tmp)
            mix = sorted((len(r["refs"]), cid) for cid, r in refs.items())
            results["mix"] = {cid: "stereo" if n == 2 else "mono" for n, cid in mix}
            print(f"mixed archive: {len(refs)} calls, {sum(n == 2 for n, _ in mix)} stereo and "
                  f"{sum(n == 1 for n, _ in mix)} mono, of {args.mix} minutes")
        # WER is measured on the words as recognised: PII is still found (its cost counts) but
        # not masked in call.json, unless --set pii.redact=true asks for it
        sets = [a for s in ["pii.redact=false", *args.set] for a in ("--set", s)]
        for split in [s for s in args.splits.split(",") if s]:
            workers, threads = (int(x) for x in split.lower().split("x"))
            out = tmp / f"run_{workers}x{threads}"
            run = run_callqa([str(manifest), "--out", str(out), "--set", f"run.workers={workers}",
                              "--set", f"asr.threads={threads}", *sets])
            r = {"split": f"{workers}x{threads}", "workers": workers, "threads": threads, **run, **read_results(out, refs)}
            r["throughput"] = round(r["audio_s"] / r["wall_s"], 1)
            results["pipeline"].append(r)
            print(f"\npipeline {r['split']} (workers x threads): {r['calls']} calls, {r['audio_s'] / 60:.1f} min of audio "
                  f"in {r['wall_s']:.1f} s = {r['throughput']}x real time ({r['throughput']:.1f} audio h per wall h), "
                  f"WER {r['wer']:.3f}, peak memory {r['peak_tree_mb']} MB (largest process {r['peak_process_mb']} MB)"
                  + (f", FAILED: {r['failed']}" if r["failed"] else ""))
            print("  real-time factor per stage (per worker): " + ", ".join(
                f"{k} {v}x" for k, v in r["stage_rtf"].items() if v))
        if not args.no_openai and refs:
            items = [{"id": cid, "path": item["path"], "refs": item["refs"]} for cid, item in refs.items()]
            items_file = tmp / "items.json"
            items_file.write_text(json.dumps(items))
            o = _run_child(["--child", "asr", "--items", str(items_file), "--backend", "openai-whisper",
                            "--vad", "default", "--model", model, "--threads", str(args.openai_threads)])
            results["openai_whisper"] = o
            print(f"\nopenai-whisper transcription alone ({model}, callqa's VAD, {args.openai_threads} threads): "
                  f"{o['realtime_factor']}x real time, WER {o['wer']:.3f}, peak {o['peak_rss_mb']} MB")
            for r in results["pipeline"]:
                r["vs_openai_whisper"] = round(r["throughput"] / o["realtime_factor"], 2)
                print(f"  whole pipeline {r['split']}: {r['vs_openai_whisper']}x openai-whisper's speed, "
                      f"WER {r['wer']:.3f} vs {o['wer']:.3f}")
        for minutes in [float(m) for m in args.lengths.split(",") if m]:
            wav = long_recording(list(refs.values()), minutes, tmp, args.layout)
            run = run_callqa([str(wav), "--out", str(tmp / f"long_{minutes:g}"), "--set", "run.workers=1",
                              "--set", "audio.max_duration_s=100000", *sets])
            record = Interaction.load(next((tmp / f"long_{minutes:g}" / "calls").glob("*/call.json")))
            r = {"minutes": minutes, "layout": args.layout, "status": record.status, **run,
                 "processing_s": record.processing["seconds"], "stages": record.processing.get("stages", {})}
            results["lengths"].append(r)
            print(f"\n{minutes:g}-minute {args.layout} call: {r['status']}, {r['wall_s']:.1f} s wall "
                  f"({minutes * 60 / r['wall_s']:.1f}x real time), peak memory {r['peak_tree_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
