#!/usr/bin/env python3
"""Benchmark streaming transcription for live monitoring (pipeline/live/streaming.py).

Streams channels of the sample calls (default: every channel of the labelled stereo calls)
through a StreamingTranscriber in chunks of ``--chunk-ms``, as fast as the machine can or,
with ``--realtime``, paced at real time (chunk i is fed when its audio would have arrived),
``--concurrent K`` streams at once in threads (each with its own recogniser of
``cores / K`` threads). Reports per channel and overall:

- live WER against the batch transcript of the same channel (pipeline.asr.transcribe, same
  model and VAD) and against the gold labels (and the batch transcript's own WER to gold);
- confirmed-word latency, median and 95th percentile: in stream time (audio received when the
  word was confirmed minus the word's end) and, when paced, in wall time (the clock when it
  was confirmed minus the moment the word's end was sent);
- real-time factor (processing time / audio time: summed step times per stream, and the
  elapsed wall time of the whole run over the audio of one stream when unpaced);
- whether lag grows: median latency of the first third of the words against the last third.

    .venv/bin/python scripts/benchmark_live.py --seconds 40                    # quick
    .venv/bin/python scripts/benchmark_live.py --realtime --concurrent 4 --seconds 60
    .venv/bin/python scripts/benchmark_live.py --calls c001 --channels 0 --json out/live.json
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.asr import load_backend  # noqa: E402
from models.base import SAMPLE_RATE  # noqa: E402
from pipeline.asr.transcribe import transcribe_channel  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.evaluation.measures import wer  # noqa: E402
from pipeline.ingest import audio  # noqa: E402
from pipeline.live.streaming import StreamingOptions, StreamingTranscriber  # noqa: E402

DATA = ROOT / "recordings_sample"


def stereo_calls() -> list[str]:
    calls = []
    for path in sorted((DATA / "labels").glob("*.json")):
        label = json.loads(path.read_text())
        if label.get("channels") == 2:
            calls.append(label["call_id"])
    return calls


def gold_text(call: str, channel: int, seconds: float) -> str:
    label = json.loads((DATA / "labels" / f"{call}.json").read_text())
    return " ".join(u["text"] for u in label["utterances"] if u.get("channel") == channel and u["end"] <= seconds + 0.05)


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def run_stream(job: dict, backend, config, options: StreamingOptions, chunk_ms: float, realtime: bool) -> dict:
    signal = job["audio"]
    size = max(1, int(round(chunk_ms / 1000 * SAMPLE_RATE)))
    live = StreamingTranscriber(backend, config.vad, options)
    t0 = time.monotonic()
    for i in range(0, signal.size, size):
        if realtime:
            due = t0 + min(i + size, signal.size) / SAMPLE_RATE
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        live.feed(signal[i: i + size])
    live.finish()
    elapsed = time.monotonic() - t0
    words = live.confirmed
    stream_lat = [w.confirmed_at - w.end for w in words]
    wall_lat = [w.confirmed_wall - (t0 + w.end) for w in words] if realtime else []
    lat = wall_lat or stream_lat
    third = max(1, len(lat) // 3)
    duration = signal.size / SAMPLE_RATE
    text = " ".join(w.word for w in words)
    return {
        "stream": job["name"],
        "seconds": round(duration, 2),
        "words": len(words),
        "wer_vs_batch": round(wer([job["batch"]], [text]), 4),
        "wer_live_vs_gold": round(wer([job["gold"]], [text]), 4),
        "wer_batch_vs_gold": round(wer([job["gold"]], [job["batch"]]), 4),
        "latency_stream_median": _pct(stream_lat, 50),
        "latency_stream_p95": _pct(stream_lat, 95),
        "latency_wall_median": _pct(wall_lat, 50),
        "latency_wall_p95": _pct(wall_lat, 95),
        "latency_first_third_median": _pct(lat[:third], 50),
        "latency_last_third_median": _pct(lat[-third:], 50),
        "decodes": live.decode_calls,
        "steps": len(live.steps),
        "rtf_compute": round(sum(s.wall_s for s in live.steps) / duration, 3),
        "max_step_s": round(max((s.wall_s for s in live.steps), default=0.0), 3),
        "max_buffer_s": round(max((s.buffer_s for s in live.steps), default=0.0), 2),
        "elapsed_s": round(elapsed, 2),
        "_text": text,
        "_stream_lat": stream_lat,
        "_wall_lat": wall_lat,
        "_batch": job["batch"],
        "_gold": job["gold"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="", help="comma-separated call ids (default: the labelled stereo calls)")
    ap.add_argument("--channels", default="0,1")
    ap.add_argument("--seconds", type=float, default=0.0, help="only the first SECONDS of each call (0: whole)")
    ap.add_argument("--chunk-ms", type=float, default=20.0)
    ap.add_argument("--realtime", action="store_true", help="feed at real-time pace")
    ap.add_argument("--concurrent", type=int, default=1, help="streams at once (threads)")
    ap.add_argument("--threads", type=int, default=0, help="recogniser threads per stream (0: cores / K)")
    ap.add_argument("--step", type=float, default=StreamingOptions.step_s)
    ap.add_argument("--max-buffer", type=float, default=StreamingOptions.max_buffer_s)
    ap.add_argument("--prompt-chars", type=int, default=StreamingOptions.prompt_chars)
    ap.add_argument("--set", action="append", default=[], help="config override, as callqa run --set")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    config = load_config(None, args.set)
    options = StreamingOptions(step_s=args.step, max_buffer_s=args.max_buffer, prompt_chars=args.prompt_chars)
    k = max(1, args.concurrent)
    threads = args.threads or max(1, (os.cpu_count() or 1) // k)
    calls = [c for c in args.calls.split(",") if c] or stereo_calls()
    channels = [int(c) for c in args.channels.split(",") if c]

    print(f"calls {','.join(calls)} channels {channels} chunk {args.chunk_ms:g} ms step {options.step_s:g} s "
          f"max buffer {options.max_buffer_s:g} s prompt {options.prompt_chars} chars; "
          f"{k} concurrent x {threads} threads; {'real-time pace' if args.realtime else 'as fast as possible'}")
    batch_backend = load_backend(config.asr, os.cpu_count() or 1)
    jobs = []
    for call in calls:
        path = next(DATA.glob(f"{call}.*"))
        _, samples = audio.load(path)
        for ch in channels:
            if ch >= samples.shape[0]:
                continue
            signal = samples[ch] if not args.seconds else samples[ch, : int(args.seconds * SAMPLE_RATE)]
            signal = np.ascontiguousarray(signal, dtype=np.float32)
            segs = transcribe_channel(signal, batch_backend, config.vad)
            jobs.append({
                "name": f"{call}/ch{ch}", "audio": signal,
                "batch": " ".join(w.word for s in segs for w in s.words),
                "gold": gold_text(call, ch, signal.size / SAMPLE_RATE),
            })
    del batch_backend

    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    results: list[dict] = []
    lock = threading.Lock()

    def worker() -> None:
        backend = load_backend(config.asr, threads)
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            r = run_stream(job, backend, config, options, args.chunk_ms, args.realtime)
            with lock:
                results.append(r)
                print(f"  {r['stream']:10s} {r['seconds']:6.1f}s wer/batch {r['wer_vs_batch']:.3f} "
                      f"wer/gold live {r['wer_live_vs_gold']:.3f} batch {r['wer_batch_vs_gold']:.3f}  "
                      f"lat stream med {r['latency_stream_median']} p95 {r['latency_stream_p95']}"
                      + (f" wall med {r['latency_wall_median']} p95 {r['latency_wall_p95']}" if args.realtime else "")
                      + f"  first/last third {r['latency_first_third_median']}/{r['latency_last_third_median']}"
                      f"  rtf {r['rtf_compute']} max step {r['max_step_s']}s decodes {r['decodes']}/{r['steps']}",
                      flush=True)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(k)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started

    results.sort(key=lambda r: r["stream"])
    audio_s = sum(r["seconds"] for r in results)
    stream_lat = [x for r in results for x in r["_stream_lat"]]
    wall_lat = [x for r in results for x in r["_wall_lat"]]
    firsts = [r["latency_first_third_median"] for r in results if r["latency_first_third_median"] is not None]
    lasts = [r["latency_last_third_median"] for r in results if r["latency_last_third_median"] is not None]
    overall = {
        "streams": len(results),
        "concurrent": k,
        "threads_per_stream": threads,
        "realtime": args.realtime,
        "audio_s": round(audio_s, 1),
        "elapsed_s": round(elapsed, 1),
        "wer_vs_batch": round(wer([r["_batch"] for r in results], [r["_text"] for r in results]), 4),
        "wer_live_vs_gold": round(wer([r["_gold"] for r in results], [r["_text"] for r in results]), 4),
        "wer_batch_vs_gold": round(wer([r["_gold"] for r in results], [r["_batch"] for r in results]), 4),
        "latency_stream_median": _pct(stream_lat, 50),
        "latency_stream_p95": _pct(stream_lat, 95),
        "latency_wall_median": _pct(wall_lat, 50),
        "latency_wall_p95": _pct(wall_lat, 95),
        "latency_first_third_median": round(float(np.median(firsts)), 3) if firsts else None,
        "latency_last_third_median": round(float(np.median(lasts)), 3) if lasts else None,
        "rtf_compute_mean": round(float(np.mean([r["rtf_compute"] for r in results])), 3) if results else None,
        "rtf_elapsed": round(elapsed / audio_s, 3) if audio_s else None,
        "max_step_s": max((r["max_step_s"] for r in results), default=None),
    }
    print("overall:", json.dumps(overall))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "overall": overall,
            "streams": [{k2: v for k2, v in r.items() if not k2.startswith("_")} for r in results],
        }, indent=2))


if __name__ == "__main__":
    main()
