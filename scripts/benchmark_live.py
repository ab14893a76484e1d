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

With ``--protocol twilio`` or ``--protocol audiosocket`` the calls go instead, at real-time
pace and ``--concurrent`` at once, through that protocol to a real ``callqa serve --live``
started on loopback, and latency is measured from the outside, as a supervisor's screen would
see it: a word's audio sent → the word first seen confirmed in ``GET /api/live/calls/{id}``
(see :func:`run_protocol`):

    .venv/bin/python scripts/benchmark_live.py --protocol twilio --concurrent 4 --seconds 120
    .venv/bin/python scripts/benchmark_live.py --protocol audiosocket --concurrent 1 --seconds 1800  # lag over 30 min
"""

from __future__ import annotations

import argparse
import json
import math
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
from pipeline.evaluation.measures import masked_word_errors, wer  # noqa: E402
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


def gold_party(call: str, party: str, seconds: float) -> str:
    """The labelled words of ``party`` in the first ``seconds`` of the call looped as
    :func:`call_parties` loops it (the utterances that end within them)."""
    label = json.loads((DATA / "labels" / f"{call}.json").read_text())
    length = len(call_parties(call, 0)["agent"]) / 8000
    said = [u for u in label["utterances"] if u.get("role") == party]
    return " ".join(u["text"] for k in range(int(math.ceil(seconds / length)) or 1) for u in said
                    if u["end"] + k * length <= seconds + 0.05)


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



# -- protocol replay: calls streamed to a real `callqa serve --live` -----------------------------

FRAME = 160
"""Samples of 8 kHz audio per message (20 ms), as Twilio and Asterisk send them."""


def call_parties(call: str, seconds: float) -> dict[str, np.ndarray]:
    """A labelled stereo call's 8 kHz 16-bit audio per party (looped to ``seconds`` when longer
    than the call; 0: the call once)."""
    import soxr

    label = json.loads((DATA / "labels" / f"{call}.json").read_text())
    _, samples = audio.load(next(DATA.glob(f"{call}.*")))  # float32 at SAMPLE_RATE
    agent = next(u["channel"] for u in label["utterances"] if u.get("role") == "agent")
    parties = {}
    for party, ch in (("agent", agent), ("customer", 1 - agent)):
        x = soxr.resample(samples[ch], SAMPLE_RATE, 8000)
        pcm = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)
        if seconds:
            n = int(seconds * 8000)
            pcm = np.tile(pcm, -(-n // pcm.size))[:n]
        parties[party] = pcm
    return parties


def _cli(*args: str, stdin: str | None = None) -> str:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return done.stdout


async def _pace(t0: float, i: int) -> None:
    """Wait until frame ``i`` of a stream started at ``t0`` is due (real-time pace)."""
    import asyncio

    pause = t0 + i * FRAME / 8000 - time.monotonic()
    if pause > 0:
        await asyncio.sleep(pause)


async def _twilio_call(url: str, token: str, call_id: str, parties: dict[str, np.ndarray], sent: dict) -> None:
    """One call over one WebSocket in the Media Streams format, both tracks, real-time pace."""
    import base64

    import websockets

    from pipeline.live.twilio import pcm16_to_ulaw

    sid = "MZ" + call_id
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
            "streamSid": sid, "accountSid": "ACbench", "callSid": "CA" + call_id, "tracks": ["inbound", "outbound"],
            "customParameters": {"call_id": call_id, "agent_id": "bench", "queue": "benchmark"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        codes = {p: pcm16_to_ulaw(x) for p, x in parties.items()}
        n = parties["agent"].size
        sent["t0"] = t0 = time.monotonic()
        for k, i in enumerate(range(0, n, FRAME)):
            await _pace(t0, k)
            for track, party in (("inbound", "customer"), ("outbound", "agent")):
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {
                    "track": track, "chunk": str(k + 1), "timestamp": str(i // 8),
                    "payload": base64.b64encode(codes[party][i: i + FRAME]).decode()}}))
        await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {"callSid": "CA" + call_id}}))
        sent["end"] = time.monotonic()
        await ws.wait_closed()


async def _audiosocket_call(port: int, call_id: str, parties: dict[str, np.ndarray], sent: dict) -> None:
    """One call as two AudioSocket legs (customer on ``port``, agent on ``port + 1``), 20 ms
    frames of 16-bit PCM at real-time pace, hang-up at the end."""
    import asyncio
    import struct
    import uuid as uuids

    legs = {}
    for party, p in (("customer", port), ("agent", port + 1)):
        reader, writer = await asyncio.open_connection("127.0.0.1", p)
        writer.write(struct.pack(">BH", 0x01, 16) + uuids.UUID(call_id).bytes)
        legs[party] = writer
    n = parties["agent"].size
    sent["t0"] = t0 = time.monotonic()
    for k, i in enumerate(range(0, n, FRAME)):
        await _pace(t0, k)
        for party, writer in legs.items():
            frame = parties[party][i: i + FRAME].astype("<i2").tobytes()
            writer.write(struct.pack(">BH", 0x10, len(frame)) + frame)
        await asyncio.gather(*(w.drain() for w in legs.values()))
    for writer in legs.values():
        writer.write(struct.pack(">BH", 0x00, 0))
        await writer.drain()
        writer.close()
    sent["end"] = time.monotonic()


async def _watch(client, call_id: str, sent: dict, seen: dict, interval: float) -> None:
    """Poll the call's JSON until its stream ended and its live recognition finished (the last
    words are confirmed when the call ends: ``transcript_final``, at most 120 s after the end;
    a call not transcribed live: until no new word has come for 3 s): the first time each
    confirmed word is seen."""
    import asyncio

    quiet_since, ended_at = None, None
    while True:
        before = len(seen)
        r = await client.get(f"/api/live/calls/{call_id}")
        now = time.monotonic()
        final = False
        if r.status_code == 200:
            body = r.json()
            sent.setdefault("transcription", body.get("transcription"))
            final = bool(body.get("transcript_final"))
            for u in body.get("utterances", []):
                for w in u.get("words", []):
                    if w.get("confirmed"):
                        seen.setdefault((u["role"], round(w["start"], 2)), (w["word"], w["end"], now))
        if "end" in sent:
            ended_at = ended_at or now
            if quiet_since is None or len(seen) > before:
                quiet_since = now
            quiet = sent.get("transcription") != "live" and now - quiet_since >= 3.0
            if final or quiet or now - ended_at > 120.0:
                return
        await asyncio.sleep(interval)


def run_protocol(args: argparse.Namespace) -> dict:
    """Replay ``--concurrent`` calls at once through ``--protocol`` to a ``callqa serve --live``
    started here on loopback (its own database, token and config: ``live.transcribe_calls`` =
    ``--transcribe-calls``, default the number of calls) and measure from the outside:

    - confirmed-word latency: the moment a word is first seen confirmed in ``GET
      /api/live/calls/{id}`` (polled every ``--poll`` seconds; the poll adds about half of that)
      minus the moment the audio of its end was sent;
    - WER of the live words (as the API shows them, PII masked: a masked word matches any
      word) against the batch transcript of the archived recording of the same call;
    - lag growth: median latency of the first third of each call's words against the last third.
    """
    import asyncio
    import re
    import socket
    import subprocess
    import tempfile

    import httpx
    import yaml

    from pipeline.asr.transcribe import transcribe_channel as batch_channel

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    k = max(1, args.concurrent)
    names = [c for c in args.calls.split(",") if c] or stereo_calls()
    work = Path(tempfile.mkdtemp(prefix="callqa-live-bench-"))
    db = str(work / "review.db")
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump({"live": {"archive": str(work / "archive"), "out": None, "step_s": args.step,
                                            "transcribe_calls": args.transcribe_calls or k}}))
    password = "quality-monitor-42"
    _cli("db", "upgrade", "--db", db)
    _cli("users", "add", "bench", "--role", "lead", "--password-stdin", "--db", db, stdin=password + "\n")
    token = _cli("live", "token", "add", "pbx", "--db", db).strip()
    http_port, as_port = port(), port()
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--live", "--db", db, "--port", str(http_port),
               "--config", str(cfg)]
    if args.protocol == "audiosocket":
        command += ["--audiosocket-port", str(as_port)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    url = f"http://127.0.0.1:{http_port}"
    try:
        client = httpx.Client(base_url=url, timeout=10)
        deadline = time.monotonic() + 300
        while True:
            try:
                page = client.get("/login")
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {(work / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"username": "bench", "password": password, "csrf_token": csrf})
        while client.get("/api/live/calls").json().get("recognition") != "ready":
            if time.monotonic() > deadline:
                raise SystemExit("the live recogniser did not start")
            time.sleep(0.2)

        import uuid as uuids

        jobs = []
        for i in range(k):
            name = names[i % len(names)]
            parties = call_parties(name, args.seconds)
            call_id = str(uuids.uuid5(uuids.NAMESPACE_URL, f"callqa-bench-{name}-{i}"))
            jobs.append({"name": name, "call_id": call_id, "parties": parties, "sent": {}, "seen": {}})

        async def replay() -> None:
            async with httpx.AsyncClient(base_url=url, cookies=client.cookies, timeout=10) as watcher:
                tasks = []
                for job in jobs:
                    if args.protocol == "twilio":
                        tasks.append(_twilio_call(url.replace("http", "ws") + "/live/twilio", token, job["call_id"],
                                                  job["parties"], job["sent"]))
                    else:
                        tasks.append(_audiosocket_call(as_port, job["call_id"], job["parties"], job["sent"]))
                    tasks.append(_watch(watcher, job["call_id"], job["sent"], job["seen"], args.poll))
                await asyncio.gather(*tasks)

        print(f"{args.protocol}: {k} call(s) at once, real-time pace, {len(jobs[0]['parties']['agent']) / 8000:.0f} s "
              f"each; live.transcribe_calls {args.transcribe_calls or k}, step {args.step} s; poll {args.poll} s",
              flush=True)
        asyncio.run(replay())
        # the archived recordings, transcribed by the batch recogniser
        deadline = time.monotonic() + 60
        for job in jobs:
            while not (work / "archive" / f"{job['call_id']}.wav").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()

    config = load_config(None, args.set)
    backend = load_backend(config.asr, os.cpu_count() or 1)
    results = []
    for job in jobs:
        _, stereo = audio.load(work / "archive" / f"{job['call_id']}.wav")
        t0 = job["sent"]["t0"]
        timed, errors, ref_words = [], 0, 0
        gold_errors = {"live": 0, "batch": 0, "words": 0}
        seconds = len(job["parties"]["agent"]) / 8000
        for ch, party in enumerate(("agent", "customer")):  # the archive: agent left
            words = sorted((start, w, end, seen) for (role, start), (w, end, seen) in job["seen"].items() if role == party)
            timed += [(end, seen - (t0 + end)) for _, _, end, seen in words]
            batch = " ".join(w.word for s in batch_channel(np.ascontiguousarray(stereo[ch]), backend, config.vad)
                             for w in s.words)
            said = " ".join(w for _, w, _, _ in words)
            e, n = masked_word_errors(batch, said)
            errors, ref_words = errors + e, ref_words + n
            gold = gold_party(job["name"], party, seconds)
            for kind, text in (("live", said), ("batch", batch)):
                gold_errors[kind] += masked_word_errors(gold, text)[0]
            gold_errors["words"] += len(gold.split()) and masked_word_errors(gold, "")[1]
        latencies = [lat for _, lat in sorted(timed)]  # in call time order
        third = max(1, len(latencies) // 3)
        r = {"call": job["name"], "call_id": job["call_id"], "transcription": job["sent"].get("transcription"),
             "words": len(latencies), "wer_vs_batch": round(errors / max(1, ref_words), 4),
             "wer_live_vs_gold": round(gold_errors["live"] / max(1, gold_errors["words"]), 4),
             "wer_batch_vs_gold": round(gold_errors["batch"] / max(1, gold_errors["words"]), 4),
             "latency_median": _pct(latencies, 50), "latency_p95": _pct(latencies, 95),
             "latency_first_third_median": _pct(latencies[:third], 50),
             "latency_last_third_median": _pct(latencies[-third:], 50),
             "_lat": latencies, "_errors": errors, "_ref": ref_words, "_gold": gold_errors}
        results.append(r)
        print(f"  {r['call']} {str(r['transcription']):15s} words {r['words']:4d} wer/batch {r['wer_vs_batch']:.3f} "
              f"wer/gold live {r['wer_live_vs_gold']:.3f} batch {r['wer_batch_vs_gold']:.3f} "
              f"latency median {r['latency_median']} p95 {r['latency_p95']} "
              f"first/last third {r['latency_first_third_median']}/{r['latency_last_third_median']}", flush=True)
    live = [r for r in results if r["transcription"] == "live"]
    all_lat = [x for r in live for x in r["_lat"]]
    overall = {
        "protocol": args.protocol, "concurrent": k, "transcribe_calls": args.transcribe_calls or k, "step_s": args.step,
        "seconds": round(len(jobs[0]["parties"]["agent"]) / 8000, 1), "poll_s": args.poll,
        "live_calls": len(live), "recording_only": sum(r["transcription"] == "recording only" for r in results),
        "words": len(all_lat),
        "wer_vs_batch": round(sum(r["_errors"] for r in live) / max(1, sum(r["_ref"] for r in live)), 4),
        **{f"wer_{kind}_vs_gold": round(sum(r["_gold"][kind] for r in live) / max(1, sum(r["_gold"]["words"] for r in live)), 4)
           for kind in ("live", "batch")},
        "latency_median": _pct(all_lat, 50), "latency_p95": _pct(all_lat, 95),
        "latency_first_third_median": _pct([r["latency_first_third_median"] for r in live
                                            if r["latency_first_third_median"] is not None], 50),
        "latency_last_third_median": _pct([r["latency_last_third_median"] for r in live
                                           if r["latency_last_third_median"] is not None], 50),
    }
    print("overall:", json.dumps(overall), flush=True)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return {"overall": overall, "calls": [{k2: v for k2, v in r.items() if not k2.startswith("_")} for r in results]}


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
    ap.add_argument("--protocol", choices=("twilio", "audiosocket"),
                    help="replay the calls through this protocol to a real 'callqa serve --live' (real-time "
                         "pace, --concurrent calls at once, each call the labelled stereo calls in turn; "
                         "--seconds longer than a call loops it) and measure latency from its JSON API")
    ap.add_argument("--transcribe-calls", type=int, default=0,
                    help="with --protocol: the server's live.transcribe_calls (default: --concurrent)")
    ap.add_argument("--poll", type=float, default=0.2, help="with --protocol: seconds between two reads of a call's JSON")
    args = ap.parse_args()
    if args.protocol:
        report = run_protocol(args)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
        return

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
