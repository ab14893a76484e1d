#!/usr/bin/env python3
"""What diarizing a mono call costs against recognising it: the ratio of the two times.

For every mono sample call of ``--data`` (manifest.csv, labels/<id>.json with
``"channels": 1``) and pyannote.audio's real telephone sample (when unpacked into
.venv/share/callqa/pyannote-sample), in one process:

* recognition: ``pipeline.asr.transcribe.transcribe_call`` with the default ASR options and
  ``--asr-threads`` threads (1: one single-threaded worker per core, as a full machine runs);
* diarization: ``Diarizer.diarize`` with the configured options, given the same speech
  regions (the pipeline finds them once, before both, so their VAD counts for neither).

Both run on the calling thread, one after the other, ``--repeats`` times per call,
interleaved (call 1 ASR, call 1 diarization, call 2 ASR, ...), so that load from other work
on the machine falls on both alike; the fastest of the repeats counts. Times are CPU seconds
of the process (``time.process_time``: all its threads, not other processes' load) and wall
seconds. The ratio diarization / recognition is printed per call and overall (summed times).

In the pipeline diarization runs beside recognition on a low-priority thread: when every core
has a single-threaded worker, the CPU time it takes is added to the call's time, so the CPU
ratio is what diarization adds. (The ``diarization`` stage time in a call's record is the wall
time of that thread, which waits for the cores: it is not what diarization costs.)

``--breakdown`` also says where the diarization time goes (feature extraction, embedding
inference, the turn speech from VAD, clustering, the rest), by timing those functions.
``--beside`` also runs each call as the pipeline does (pipeline/run/recording.py:
diarization on a low-priority thread while the call is transcribed) and reports that
thread's wall time, which the call record shows as the ``diarization`` stage, beside the CPU
time it used.

    .venv/bin/python scripts/benchmark_diarization_cost.py
    .venv/bin/python scripts/benchmark_diarization_cost.py --repeats 5 --breakdown --beside
    .venv/bin/python scripts/benchmark_diarization_cost.py --set coarse_hop_s=null --json cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.diarize import DiarizationOptions, Diarizer, load_diarizer  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_diarization import load_mono, parse_set, sample_calls  # noqa: E402

RATE = 16000


@contextmanager
def clocks() -> Iterator[dict[str, float]]:
    """CPU (``cpu``) and wall (``wall``) seconds of the block, filled in when it ends."""
    out: dict[str, float] = {}
    c, w = time.process_time(), time.perf_counter()
    yield out
    out["cpu"], out["wall"] = time.process_time() - c, time.perf_counter() - w


class Breakdown:
    """CPU seconds spent in a few functions of the diarizer, by wrapping them (the outermost
    timed call counts; time in a nested timed function goes to that one)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            self._stack.append(name)
            try:
                return original(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.process_time() - t
                self.seconds[name] += spent
                if self._stack:  # not the enclosing timed function's own time
                    self.seconds[self._stack[-1]] -= spent

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def install(self, diarizer: Diarizer) -> None:
        import models.diarize as d

        embedder = getattr(diarizer, "embedder", None)
        if embedder is not None:
            self.wrap(embedder, "features", "features")
            self.wrap(embedder, "embed", "embedding inference")
        self.wrap(d, "speech_frames", "turn speech (VAD)")
        self.wrap(d, "speaker_centroids", "clustering")

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()


def beside(items: list[tuple[str, Path]], audio: dict[str, np.ndarray], regions: dict[str, Any],
           diarizer: Diarizer, transcribe: Callable[[str], Any]) -> list[dict[str, Any]]:
    """Each call diarized on the pipeline's low-priority thread while it is transcribed: the
    wall time of transcription, the wall time until diarization is done (what a call record's
    ``diarization`` stage time measures: it includes the time the thread waited for a core)
    and the CPU time diarization took on its thread."""
    from pipeline.run.recording import beside_executor

    thread = beside_executor()

    def timed(i: str) -> tuple[float, float]:
        cpu = time.thread_time()
        diarizer.diarize(audio[i], regions[i])
        return time.thread_time() - cpu, time.perf_counter()

    thread.submit(timed, items[0][0]).result()  # warm-up on that thread
    rows = []
    print("beside transcription, as the pipeline runs it (one call at a time):")
    print(f"{'call':<10} {'asr wall':>8} {'diar wall':>9} {'diar cpu':>8}  (stage time / asr, cpu / asr)")
    for i, _path in items:
        start = time.perf_counter()
        future = thread.submit(timed, i)
        transcribe(i)
        asr_wall = time.perf_counter() - start
        cpu, done = future.result()
        wall = done - start
        rows.append({"id": i, "asr_wall_s": round(asr_wall, 3), "diarization_wall_s": round(wall, 3),
                     "diarization_thread_cpu_s": round(cpu, 3)})
        print(f"{i:<10} {asr_wall:>8.2f} {wall:>9.2f} {cpu:>8.2f}  ({wall / asr_wall:.2f}, {cpu / asr_wall:.2f})")
    thread.shutdown()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "recordings_sample", help="labelled folder")
    ap.add_argument("--no-pyannote-sample", action="store_true", help="leave out pyannote.audio's sample")
    ap.add_argument("--extra", action="append", default=[], metavar="AUDIO", help="another recording (mixed to mono)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a DiarizationOptions field")
    ap.add_argument("--asr-threads", type=int, default=1, help="recogniser threads (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per call (the fastest counts)")
    ap.add_argument("--breakdown", action="store_true", help="also say where the diarization time goes")
    ap.add_argument("--beside", action="store_true",
                    help="also time diarization on the pipeline's low-priority thread beside transcription")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    from models.asr import load_backend
    from models.base import AsrOptions, fixed_numerics
    from models.vad import VadOptions
    from pipeline.asr.transcribe import speech_regions, transcribe_call

    options = DiarizationOptions(**parse_set(args.set))
    items = [(cid, audio) for cid, audio, _rttm in sample_calls(args.data)]
    sample = Path(sys.prefix) / "share" / "callqa" / "pyannote-sample" / "sample.wav"
    if not args.no_pyannote_sample and sample.is_file():
        items.append(("pyannote", sample))
    items += [(Path(p).stem, Path(p)) for p in args.extra]
    if not items:
        raise SystemExit("no recordings: give --extra AUDIO or a --data folder with mono calls")

    diarizer = load_diarizer(options, 1)
    backend = load_backend(AsrOptions(), threads=args.asr_threads)
    vad = VadOptions()
    audio = {i: load_mono(p) for i, p in items}
    regions = {i: speech_regions(a, vad) for i, a in audio.items()}
    with fixed_numerics():  # as a worker runs (pipeline/run/call.py)
        first = audio[items[0][0]][: 10 * RATE]  # warm-up: one-time imports and allocations
        diarizer.diarize(first)
        transcribe_call(first[None, :], backend, vad)

        asr: dict[str, list[dict[str, float]]] = defaultdict(list)
        diar: dict[str, list[dict[str, float]]] = defaultdict(list)
        for _ in range(args.repeats):
            for i, _path in items:
                with clocks() as c:
                    transcribe_call(audio[i][None, :], backend, vad, {0: regions[i]})
                asr[i].append(c)
                with clocks() as c:
                    diarizer.diarize(audio[i], regions[i])
                diar[i].append(c)
        breakdown = None
        if args.breakdown:
            breakdown = Breakdown()
            breakdown.install(diarizer)
            total = 0.0
            for i, _path in items:
                with clocks() as c:
                    diarizer.diarize(audio[i], regions[i])
                total += c["cpu"]
            breakdown.remove()
            parts = dict(breakdown.seconds)
            parts["rest"] = total - sum(parts.values())

    print(f"options: {dataclasses.asdict(options)}")
    print(f"recogniser: {AsrOptions().backend} {AsrOptions().model}, {args.asr_threads} thread(s); "
          f"fastest of {args.repeats} per call")
    print(f"{'call':<10} {'audio s':>7} {'speech s':>8} {'asr cpu':>8} {'diar cpu':>8} {'ratio':>6}   "
          f"{'asr wall':>8} {'diar wall':>9} {'ratio':>6}")
    rows = []
    for i, _path in items:
        a_cpu, d_cpu = min(c["cpu"] for c in asr[i]), min(c["cpu"] for c in diar[i])
        a_wall, d_wall = min(c["wall"] for c in asr[i]), min(c["wall"] for c in diar[i])
        speech_s = sum(r.end - r.start for r in regions[i]) / RATE
        row = {"id": i, "audio_s": round(audio[i].size / RATE, 2), "speech_s": round(speech_s, 2),
               "asr_cpu_s": round(a_cpu, 3), "diarization_cpu_s": round(d_cpu, 3),
               "ratio_cpu": round(d_cpu / a_cpu, 3), "asr_wall_s": round(a_wall, 3),
               "diarization_wall_s": round(d_wall, 3), "ratio_wall": round(d_wall / a_wall, 3)}
        rows.append(row)
        print(f"{i:<10} {row['audio_s']:>7.1f} {speech_s:>8.1f} {a_cpu:>8.2f} {d_cpu:>8.2f} {row['ratio_cpu']:>6.2f}   "
              f"{a_wall:>8.2f} {d_wall:>9.2f} {row['ratio_wall']:>6.2f}")
    total = {k: round(sum(r[k] for r in rows), 3) for k in ("audio_s", "asr_cpu_s", "diarization_cpu_s",
                                                         "asr_wall_s", "diarization_wall_s")}
    total["ratio_cpu"] = round(total["diarization_cpu_s"] / total["asr_cpu_s"], 3)
    total["ratio_wall"] = round(total["diarization_wall_s"] / total["asr_wall_s"], 3)
    print(f"{'overall':<10} {total['audio_s']:>7.1f} {'':>8} {total['asr_cpu_s']:>8.2f} "
          f"{total['diarization_cpu_s']:>8.2f} {total['ratio_cpu']:>6.2f}   {total['asr_wall_s']:>8.2f} "
          f"{total['diarization_wall_s']:>9.2f} {total['ratio_wall']:>6.2f}")
    print(f"diarization / recognition: {total['ratio_cpu']:.2f} (CPU), {total['ratio_wall']:.2f} (wall)")
    results: dict[str, Any] = {"options": dataclasses.asdict(options), "asr_threads": args.asr_threads,
                               "repeats": args.repeats, "calls": rows, "overall": total}
    if breakdown is not None:
        spent = sum(parts.values())
        print("where the diarization CPU time goes (all calls once):")
        for name, s in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<20} {s:6.2f} s  {s / max(spent, 1e-9):5.1%}")
        results["breakdown_cpu_s"] = {k: round(v, 3) for k, v in parts.items()}
    if args.beside:
        with fixed_numerics():
            results["beside"] = beside(items, audio, regions, diarizer,
                                       lambda i: transcribe_call(audio[i][None, :], backend, vad, {0: regions[i]}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
