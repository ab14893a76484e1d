#!/usr/bin/env python3
"""Benchmark the written channels: e-mail conversations per second, and memory on a large mbox.

From the sample e-mail threads (interactions_sample/email) the script makes copies with fresh
Message-IDs, so that every copy is a thread of its own:

1. ``--conversations N``: N threads as one mbox, through ``callqa run`` with one worker and one
   thread (reading, threading, the analysis stage with its models, PII, writing; start-up and
   model loading included, and reported apart): conversations per second per core, whole run
   and once loaded (the processing time the records report, the first copy of the sample left
   out: it also loads the models), and the CPU time each conversation took (the records'
   ``processing.cpu_seconds``: steadier than wall time on a machine shared with other work).
   Each copy's text is made its own (a word added to each line, :func:`fresh_text`) unless
   ``--repeat-text``: repeated text is answered from the models' caches and measures little;
2. ``--mbox-mb M``: an mbox of about M MB scanned and threaded as a run's discovery does it
   (:func:`~pipeline.ingest.email_index.thread_email_files`: the headers of every message into an
   on-disk index, the bodies never held) with the time and the peak resident memory of the
   process, also as MB per 1,000 messages above the memory the process had before the scan,
   to show it stays small in the archive's size; ``--in-memory`` measures the refs-in-memory
   path (``scan_email_files`` then ``thread_refs``) instead, for comparison.

    .venv/bin/python scripts/benchmark_written.py --conversations 500 --mbox-mb 1000 --json out/written.json
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "interactions_sample" / "email"

_ID = re.compile(rb"<([^<>@\s]+)@")


def sample_messages() -> list[bytes]:
    """The raw sample messages (.eml files and the archive's)."""
    out = [p.read_bytes() for p in sorted(SAMPLE.glob("*.eml"))]
    for path in sorted(SAMPLE.glob("*.mbox")):
        out += [m.as_bytes() for m in mailbox.mbox(str(path))]
    return out


def fresh_text(message: bytes, n: int) -> bytes:
    """The message with every line of its own text (not the quoted history) ending in a word
    of copy ``n`` (``ref<n>``), so that no sentence of one copy is the same text as another
    copy's: the models' per-text caches do not answer later copies from memory (an archive's
    customers write new text; only its agents' templates repeat)."""
    import email
    from email import policy

    msg = email.message_from_bytes(message, policy=policy.default)
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.is_attachment():
            continue
        text = part.get_content()
        lines = [line + f" ref{n}" if line.strip() and not line.lstrip().startswith(">") else line
                 for line in text.split("\n")]
        part.set_content("\n".join(lines), subtype=part.get_content_subtype())
    return msg.as_bytes()


def copy_of(message: bytes, n: int, fresh: bool = True) -> bytes:
    """The message with every Message-ID it names made unique to copy ``n`` (and, with
    ``fresh``, its text too: :func:`fresh_text`)."""
    if fresh and n:
        message = fresh_text(message, n)
    head, sep, body = message.partition(b"\n\n")
    return _ID.sub(lambda m: b"<c" + str(n).encode() + b"." + m.group(1) + b"@", head) + sep + body


def write_mbox(path: Path, messages: list[bytes], copies: int | None = None, size_mb: float | None = None,
               fresh: bool = False) -> int:
    """Copies of ``messages`` into an mbox until ``copies`` sets or ``size_mb`` MB; the sets
    written (``fresh``: each copy's text made its own, :func:`fresh_text`)."""
    n = 0
    with open(path, "wb") as f:
        while (copies is not None and n < copies) or (size_mb is not None and f.tell() < size_mb * 1e6):
            for m in messages:
                body = copy_of(m, n, fresh).replace(b"\r\n", b"\n")
                body = re.sub(rb"(?m)^(>*From )", rb">\1", body.split(b"\n", 1)[1]) if body.startswith(b"From ") else \
                    re.sub(rb"(?m)^(>*From )", rb">\1", body)
                f.write(b"From bench@example.com Mon Mar  3 10:00:00 2025\n" + body.rstrip(b"\n") + b"\n\n")
            n += 1
    return n


def _rss_mb() -> float:
    """The process's resident memory now (Linux), else its peak so far."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scan(path: str, in_memory: bool) -> None:
    """Child: discovery of the mbox (scan and thread), then its time and peak memory as JSON."""
    from pipeline.ingest.email import scan_email_files, thread_refs
    from pipeline.ingest.email_index import thread_email_files

    import scipy.sparse.csgraph  # noqa: F401  (imported by threading: a fixed cost, not the scan's memory)

    thread_email_files([])
    before = _rss_mb()
    t0 = time.perf_counter()
    if in_memory:
        refs, errors = scan_email_files([Path(path)])
        threads = thread_refs(refs)
    else:
        threads, errors = thread_email_files([Path(path)])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    messages = sum(t.count for t in threads)  # messages in threads (identical copies and auto-reply loops left out)
    print(json.dumps({"path": "in memory" if in_memory else "index", "messages": messages, "threads": len(threads),
                      "errors": len(errors), "seconds": round(seconds, 2), "rss_before_mb": round(before),
                      "peak_rss_mb": round(peak), "kept_rss_mb": round(_rss_mb()),
                      "mb_per_1k_messages": round((peak - before) / max(messages, 1) * 1000, 3)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=300, help="threads through callqa run (0: skip)")
    p.add_argument("--mbox-mb", type=float, default=0, help="size of the mbox to scan for memory (0: skip)")
    p.add_argument("--in-memory", action="store_true",
                   help="--mbox-mb: measure scan_email_files + thread_refs (refs in memory) instead of the index")
    p.add_argument("--repeat-text", action="store_true",
                   help="--conversations: copies repeat the sample's text word for word (the models' caches then "
                        "answer later copies from memory); default: each copy's text made its own")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--scan-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scan_child:
        scan(args.scan_child, args.in_memory)
        return
    messages = sample_messages()
    result: dict = {"sample_messages": len(messages)}
    with tempfile.TemporaryDirectory(prefix="callqa-written-") as tmp:
        tmp_path = Path(tmp)
        if args.conversations:
            from pipeline.ingest.email import scan_email_files, thread_refs

            probe = tmp_path / "probe.mbox"
            write_mbox(probe, messages, copies=1)
            per_copy = len(thread_refs(scan_email_files([probe])[0]))
            copies = max(1, -(-args.conversations // per_copy))
            data = tmp_path / "data"
            data.mkdir()
            write_mbox(data / "mail.mbox", messages, copies=copies, fresh=not args.repeat_text)
            out = tmp_path / "out"
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(data), "--out", str(out), "--quiet",
                                  "--set", "run.workers=1", "--set", "asr.threads=1"],
                                 cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            wall = time.perf_counter() - t0
            rows = [json.loads(p.read_text()) for p in (out / "calls").glob("*/call.json")]
            ok = [r for r in rows if r["status"] == "ok"]
            # the first copy's conversations (mail-1 .. mail-<per_copy>) also load the models
            # lazily; the rest are the steady state
            later = [r for r in ok if int(r["call_id"].rsplit("-", 1)[1]) > per_copy]
            busy = sum(r["processing"]["seconds"] for r in later)
            # CPU time (the worker's, all its threads): what a conversation costs whatever else
            # the machine is doing; the wall time also counts waiting for a core
            cpu = sum(r["processing"].get("cpu_seconds", 0.0) for r in later)
            result["run"] = {"conversations": len(rows), "ok": len(ok), "exit_code": run.returncode, "wall_s": round(wall, 2),
                             "text": "repeated" if args.repeat_text else "each copy its own",
                             "per_second_whole_run": round(len(ok) / wall, 1),
                             "per_second_processing": round(len(later) / busy, 1) if busy else None,
                             "mean_ms_per_conversation": round(1000 * busy / len(later), 1) if later else None,
                             "per_cpu_second": round(len(later) / cpu, 1) if cpu else None,
                             "mean_cpu_ms_per_conversation": (round(1000 * cpu / len(later), 1)
                                                              if later and cpu else None)}
            print(f"callqa run, 1 worker x 1 thread: {len(ok)} of {len(rows)} e-mail conversations "
                  f"({result['run']['text']} text) in {wall:.1f} s = "
                  f"{len(ok) / wall:.1f}/s whole run (start-up and model loading included); "
                  f"{result['run']['per_second_processing']}/s per core once loaded (after the first "
                  f"{per_copy}; {result['run']['mean_ms_per_conversation']} ms each, call.json's processing "
                  "time); "
                  f"CPU time {result['run']['mean_cpu_ms_per_conversation']} ms each = "
                  f"{result['run']['per_cpu_second']} per CPU second")
        if args.mbox_mb:
            big = tmp_path / "big.mbox"
            sets = write_mbox(big, messages, size_mb=args.mbox_mb)
            size = big.stat().st_size / 1e6
            child = subprocess.run([sys.executable, __file__, "--scan-child", str(big)]
                                   + (["--in-memory"] if args.in_memory else []), capture_output=True, text=True,
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if child.returncode != 0:
                raise SystemExit(child.stderr[-2000:])
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            result["mbox"] = {"size_mb": round(size), "copies": sets, **figures}
            print(f"mbox of {size:.0f} MB ({figures['path']}): {figures['messages']} messages, {figures['threads']} "
                  f"threads found in {figures['seconds']} s; peak memory {figures['peak_rss_mb']} MB "
                  f"({figures['rss_before_mb']} MB before the scan: {figures['mb_per_1k_messages']} MB per 1,000 "
                  f"messages), {figures['kept_rss_mb']} MB with the threads kept")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
