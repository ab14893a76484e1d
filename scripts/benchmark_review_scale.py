#!/usr/bin/env python3
"""How the review database and web app hold up with a year of calls.

    .venv/bin/python scripts/benchmark_review_scale.py --calls 100000 [--db sqlite|postgres|URL]
        [--repeats 5] [--keep DIR] [--json FILE]

1. Writes ``--calls`` finished call folders (``OUT/calls/<id>/call.json``, seeded, so one seed
   gives the same run): 100 agents in 5 teams, start times over the 365 days before
   2026-11-30, the default scorecard's items answered with confidences and evidence, about 20
   short utterances, PII redacted; and ``OUT/run.json`` with the input roots.
2. Times ``callqa db load`` on them in a fresh process (the command a user runs; its peak
   memory too), then a second load (nothing changed: every call unchanged).
3. Adds a lead, 10 reviewers (and an agent user when ``add_user`` takes an agent id); about
   3% of the calls get submitted reviews (rows written in bulk, then the counted columns
   refreshed by :func:`pipeline.review.history.refresh_counted`), some by the lead and final;
   a few more calls are assigned and not yet reviewed, a sample is planned
   (:func:`pipeline.review.sampling.plan_sample`) and three calibration sessions made (two
   finished).
4. Starts the app (``create_app`` on uvicorn, in its own process, on a free loopback port),
   logs in through the log-in form as the lead and as a reviewer, and requests each page
   ``--repeats`` times: the median and the slowest time, the size, and every status (a page
   that does not answer 200 is listed with its status; nothing stops on it).

``--db sqlite`` (default): a file in the work folder; ``--db postgres``: a throwaway
PostgreSQL cluster on a free loopback port (Debian's postgresql package), removed at the end;
``--db URL``: an existing, empty database (a SQLite path or ``postgresql://...``). The work
folder (a temp folder, or ``--keep DIR``, which is kept) holds the run and the SQLite file;
without ``--keep`` it is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

END = datetime(2026, 11, 30, tzinfo=timezone.utc)
"""The run's calls started in the 365 days before this (UTC)."""
DAYS = 365
AGENTS = 100
TEAMS = ("billing", "technical", "sales", "retention", "general")
REVIEWERS = 10
REVIEWED_SHARE = 0.03
"""Share of the calls with a submitted review."""
OPEN_SHARE = 0.005
"""Share of the calls assigned to a reviewer and not reviewed yet (their to-do lists)."""
PASSWORD = "Bench-mark-pass-2026"
NEW_PARAMETERS = {"page", "per_page", "sort", "order", "period"}
"""Query parameters of the queue and dashboards still being added (see the module docstring)."""

AGENT_LINES = (
    "thank you for calling acme support my name is {name} how can I help",
    "I understand that must be frustrating let me look into it",
    "could you confirm your date of birth and postcode please",
    "thanks for holding I have your account here",
    "I have applied the credit to your account",
    "is there anything else I can help you with today",
    "thank you for calling have a great day",
    "let me put you on a short hold while I check",
)
CUSTOMER_LINES = (
    "hi I have a problem with my last bill",
    "my internet keeps dropping every evening",
    "sure it is the twelfth of march",
    "okay thanks",
    "that is great thank you",
    "no that is all",
    "I have been waiting for a week",
    "can you send me a confirmation",
)
NAMES = ("Sam", "Alex", "Jo", "Kim", "Lee", "Max", "Ria", "Tom")


# -- the run ----------------------------------------------------------------------------------------

def _utterances(rng: random.Random, agent_name: str, n: int) -> list[dict[str, Any]]:
    t, rows = 0.5, []
    for k in range(n):
        role = "agent" if k % 2 == 0 else "customer"
        text = (rng.choice(AGENT_LINES) if role == "agent" else rng.choice(CUSTOMER_LINES)).format(name=agent_name)
        words, w_t = [], t
        for word in text.split():
            words.append({"word": word, "start": round(w_t, 3), "end": round(w_t + 0.3, 3), "probability": 0.93})
            w_t += 0.35
        rows.append({"id": f"u{k}", "channel": 0 if role == "agent" else 1, "start": round(t, 3),
                     "end": round(w_t, 3), "text": text, "words": words, "speaker": "S0" if role == "agent" else "S1",
                     "role": role})
        t = w_t + rng.uniform(0.2, 1.5)
    return rows


def make_record(index: int, rng: random.Random, card: Any, agents: list[dict[str, Any]], recordings: Path) -> dict:
    """One finished call.json (see the module docstring)."""
    from pipeline.analysis.card import score_answers

    call_id = f"call-{index:06d}"
    agent = agents[rng.randrange(len(agents))]
    day = rng.randrange(DAYS)
    started = END - timedelta(days=DAYS - day) + timedelta(hours=8, seconds=rng.randrange(10 * 3600))
    utterances = _utterances(rng, agent["name"], rng.randint(16, 24))
    duration = round(utterances[-1]["end"] + rng.uniform(1, 30), 3)
    items, answers = [], {}
    for spec in card.items:
        if spec.auto_fail:
            answer = "no" if rng.random() < 0.02 else "yes"
        elif spec.id.startswith("resolution.") and rng.random() < 0.6:
            answer = "na"
        else:
            answer = "yes" if rng.random() < agent["skill"] else "no"
        answers[spec.id] = answer
        confidence = rng.uniform(0.35, 0.6) if rng.random() < 0.04 else rng.uniform(0.62, 0.99)
        said = utterances[rng.randrange(0, len(utterances), 2)]
        evidence = ([{"start": said["start"], "end": said["end"], "rule": f"phrase ({spec.id})",
                      "utterance_id": said["id"], "role": "agent", "quote": said["text"],
                      "score": round(rng.uniform(0.7, 1.0), 3)}] if answer == "yes" else [])
        items.append({"id": spec.id, "section": spec.section, "question": spec.question, "answer": answer,
                      "confidence": round(confidence, 3), "points": spec.points if answer == "yes" else 0.0,
                      "auto_fail": spec.auto_fail, "looked_for": f"{spec.detector} for {spec.id}",
                      "evidence": evidence})
    customer_end = round(rng.uniform(-0.8, 0.9), 3)
    return {
        "call_id": call_id, "status": "ok",
        "source": {"path": str(recordings / f"{call_id}.wav"), "sha256": f"{index:064x}", "duration_s": duration,
                   "sample_rate": 8000, "channels": 2, "format": "WAV", "codec": "pcm_mulaw"},
        "metadata": {"agent_id": agent["id"], "queue": agent["team"],
                     "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "provenance": {"callqa_version": "benchmark", "config_hash": "0123456789abcdef"},
        "processing": {"started_at": END.isoformat(), "seconds": 1.0, "realtime_factor": 50.0},
        "speakers": {"method": "channels", "roles": {"S0": "agent", "S1": "customer"}, "confidence": 0.95},
        "utterances": utterances,
        "pii": {"redacted": True, "spans": rng.randint(0, 4)},
        "sentiment": {"customer_start": round(rng.uniform(-0.8, 0.9), 3), "customer_end": customer_end},
        "scorecard": {"template": {"name": card.name, "version": card.version}, "items": items,
                      "score": score_answers(card, answers)},
    }


CHUNK = 1000
"""Calls generated per task; chunk k draws from its own ``random.Random(f"{seed}:{k}")``, so the
run is the same whatever the number of processes writing it."""


def _agents(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": f"agent{a:03d}", "team": TEAMS[a % len(TEAMS)], "name": NAMES[a % len(NAMES)],
             "skill": rng.uniform(0.6, 0.95)} for a in range(AGENTS)]


def _write_chunk(out: Path, seed: int, chunk: int, calls: int) -> None:
    """Calls ``chunk * CHUNK`` up to ``calls`` (excluded) of the run, written to ``out/calls``."""
    from pipeline.analysis.scorecard import load_scorecard

    rng = random.Random(f"{seed}:{chunk}")
    card, agents, recordings = load_scorecard(None), _agents(seed), out.parent / "recordings"
    for index in range(chunk * CHUNK, min(calls, (chunk + 1) * CHUNK)):
        record = make_record(index, rng, card, agents, recordings)
        folder = out / "calls" / record["call_id"]
        folder.mkdir()
        (folder / "call.json").write_text(json.dumps(record), encoding="utf-8")


def generate_run(out: Path, calls: int, seed: int, workers: int | None = None) -> None:
    """``calls`` call folders and run.json in ``out`` (see the module docstring), written by
    ``workers`` processes (default: the CPUs, at most 8)."""
    from concurrent.futures import ProcessPoolExecutor

    recordings = out.parent / "recordings"
    (out / "calls").mkdir(parents=True)
    chunks = range((calls + CHUNK - 1) // CHUNK)
    workers = max(1, min(workers or min(os.cpu_count() or 1, 8), len(chunks)))
    if workers == 1:
        for chunk in chunks:
            _write_chunk(out, seed, chunk, calls)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for done in [pool.submit(_write_chunk, out, seed, chunk, calls) for chunk in chunks]:
                done.result()
    (out / "run.json").write_text(json.dumps({"input": str(recordings), "input_roots": [str(recordings)],
                                              "counts": {"ok": calls, "failed": 0}}), encoding="utf-8")


# -- databases --------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway cluster on a free loopback port (its own temp folder, removed at the end);
    yields the URL of an empty database in it."""
    from pipeline.review.throwaway_pg import PostgresMissing, new_database
    from pipeline.review.throwaway_pg import postgres_server as server

    try:
        with server("callqa-bench-pg-") as url:
            yield new_database(url, "callqa_bench")
    except PostgresMissing as e:
        raise SystemExit(f"--db postgres: {e}") from None


# -- loading ----------------------------------------------------------------------------------------

LOADER = ("import resource, sys, time; from pipeline.cli import main; t = time.perf_counter(); "
          "rc = main(sys.argv[1:]); print('BENCH', time.perf_counter() - t, "
          "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
          "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def timed_load(out: Path, db: str) -> dict[str, Any]:
    """``callqa db load OUT --db DB`` in a fresh process: wall time (the process's, and the
    command's own without the interpreter's start), peak memory (the process's, and the
    largest of its reading processes'), the counts it printed."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LOADER, "db", "load", str(out), "--db", db], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"callqa db load failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    mark = [line.split() for line in proc.stderr.splitlines() if line.startswith("BENCH ")][-1]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (added|updated|unchanged|skipped)", proc.stdout)}
    return {"seconds": round(wall, 2), "command_seconds": round(float(mark[1]), 2),
            "peak_mb": round(int(mark[2]) / 1024), "readers_peak_mb": round(int(mark[3]) / 1024), "counts": counts}


# -- users, reviews, assignments, calibrations ------------------------------------------------------

def _insert_reviews(session: Any, plan: list[tuple[str, int, bool, datetime]], rng: random.Random) -> None:
    """Submitted reviews in bulk: (call_id, reviewer id, final, submitted at) each, answering
    every item of the call (the suggestion mostly, another answer now and then), with their
    answers and the submission kept for the trail."""
    from sqlalchemy import insert, select

    from pipeline.review.db import CallItem, Review, ReviewAnswer, ReviewSubmission

    for start in range(0, len(plan), 500):
        chunk = plan[start:start + 500]
        ids = {c for c, *_ in chunk}
        auto: dict[str, list[tuple[str, str]]] = {}
        for call_id, item_id, answer in session.execute(
                select(CallItem.call_id, CallItem.item_id, CallItem.answer).where(CallItem.call_id.in_(ids))
                .order_by(CallItem.call_id, CallItem.position)):
            auto.setdefault(call_id, []).append((item_id, answer))
        session.execute(insert(Review.__table__), [
            {"call_id": c, "reviewer_id": r, "state": "submitted", "version": 1, "comment": "", "created_at": at,
             "updated_at": at, "submitted_at": at, "final": final} for c, r, final, at in chunk])
        made = {(c, r): i for i, c, r in session.execute(
            select(Review.id, Review.call_id, Review.reviewer_id).where(Review.call_id.in_(ids)))}
        answers, submissions = [], []
        for call_id, reviewer_id, final, at in chunk:
            review_id = made[(call_id, reviewer_id)]
            given = {}
            for item_id, suggested in auto.get(call_id, []):
                answer = suggested if rng.random() < 0.88 else rng.choice([a for a in ("yes", "no", "na")
                                                                           if a != suggested])
                given[item_id] = {"answer": answer, "comment": "", "auto_answer": suggested, "how": "chosen"}
                answers.append({"review_id": review_id, "item_id": item_id, "answer": answer,
                                "auto_answer": suggested, "comment": "", "answered_at": at, "how": "chosen"})
            submissions.append({"review_id": review_id, "call_id": call_id, "reviewer_id": reviewer_id, "version": 1,
                                "submitted_at": at, "final": final, "comment": "", "answers": given})
        if answers:
            session.execute(insert(ReviewAnswer.__table__), answers)
        session.execute(insert(ReviewSubmission.__table__), submissions)


def populate(engine: Any, seed: int) -> dict[str, Any]:
    """Users, reviews, assignments, a planned sample and calibration sessions (see the module
    docstring); what was made, and the names the pages need."""
    import inspect

    from sqlalchemy import func, insert, select

    from pipeline.review.calibration import create_calibration
    from pipeline.review.db import Assignment, Call, sessions
    from pipeline.review.history import refresh_counted
    from pipeline.review.sampling import plan_sample
    from pipeline.review.users import add_user

    rng = random.Random(seed + 1)
    made: dict[str, Any] = {}
    with sessions(engine).begin() as s:
        lead = add_user(s, "lead", PASSWORD, "lead")
        reviewers = [add_user(s, f"reviewer{k:02d}", PASSWORD, "reviewer") for k in range(1, REVIEWERS + 1)]
        busiest = s.execute(select(Call.agent_id, func.count()).group_by(Call.agent_id)
                            .order_by(func.count().desc(), Call.agent_id).limit(1)).first()
        made["agent"] = busiest[0] if busiest else None
        if "agent_id" in inspect.signature(add_user).parameters and made["agent"]:
            add_user(s, "agent.user", PASSWORD, "agent", agent_id=made["agent"])
            made["agent_user"] = "agent.user"
        else:
            made["agent_user"] = None  # add_user takes no agent id (yet): no agent user
        ids = list(s.scalars(select(Call.call_id).order_by(Call.call_id)))
        started = dict(s.execute(select(Call.call_id, Call.started_at)).all())
        rng.shuffle(ids)
        n_reviewed, n_open = round(len(ids) * REVIEWED_SHARE), round(len(ids) * OPEN_SHARE)
        reviewed, open_calls, rest = ids[:n_reviewed], ids[n_reviewed:n_reviewed + n_open], ids[n_reviewed + n_open:]

        def at(call_id: str) -> datetime:
            t = datetime.strptime(started[call_id], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            return t + timedelta(hours=rng.uniform(2, 72))

        plan, assignments = [], []
        for k, call_id in enumerate(reviewed):
            reviewer, when = reviewers[k % REVIEWERS], at(call_id)
            assignments.append({"call_id": call_id, "reviewer_id": reviewer.id, "kind": "sample",
                                "reason": "benchmark", "created_by": lead.id, "created_at": when - timedelta(hours=1)})
            plan.append((call_id, reviewer.id, False, when))
            if k % 10 == 0:  # a lead's final review on top, now and then
                plan.append((call_id, lead.id, True, when + timedelta(hours=1)))
        for k, call_id in enumerate(open_calls):
            assignments.append({"call_id": call_id, "reviewer_id": reviewers[k % REVIEWERS].id, "kind": "manual",
                                "reason": "benchmark (open)", "created_by": lead.id, "created_at": at(call_id)})
        if assignments:
            s.execute(insert(Assignment.__table__), assignments)
        _insert_reviews(s, plan, rng)
        made.update(reviews=len(plan), reviewed_calls=len(reviewed), open_assignments=len(open_calls))

        calibrated = []
        for k, call_id in enumerate(rest[:3]):
            scorers = [reviewers[(3 * k + j) % REVIEWERS] for j in range(3)]
            create_calibration(s, f"calibration {k + 1}", call_id, [u.username for u in scorers], created_by=lead.id)
            if k < 2:  # the first two finished: every scorer submitted
                _insert_reviews(s, [(call_id, u.id, False, at(call_id)) for u in scorers], rng)
                calibrated.append(call_id)
        made["calibrations"] = min(3, len(rest))

        t = time.perf_counter()
        refresh_counted(s, reviewed + calibrated)
        made["refresh_counted_s"] = round(time.perf_counter() - t, 2)

        last_week = (END - timedelta(days=7)).strftime("%Y-%m-%d")
        t = time.perf_counter()
        sample = plan_sample(s, 1, last_week, END.strftime("%Y-%m-%d"), [u.username for u in reviewers], seed,
                             low_confidence_min=3, created_by=lead.id)
        made["sample_assignments"] = len(sample)
        made["plan_sample_s"] = round(time.perf_counter() - t, 2)
        made["call"] = sorted(reviewed)[0] if reviewed else (ids[0] if ids else None)
    return made


# -- the app ----------------------------------------------------------------------------------------

SERVER = ("import sys, uvicorn; from pipeline.review.app import create_app; "
          "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')")


@contextmanager
def app_server(db: str, log: Path) -> Iterator[str]:
    """The review app on a free loopback port, in its own process; yields its base URL."""
    import httpx

    port = _free_port()
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, db, str(port)], cwd=ROOT, stdout=sink,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the app did not start ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the app did not answer in 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def login(url: str, username: str, timeout: float) -> Any:
    """An httpx client logged in through the log-in form (its double-submit CSRF token)."""
    import httpx

    client = httpx.Client(base_url=url, timeout=timeout)
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if page.status_code != 200 or not found:
        raise SystemExit(f"/login answered {page.status_code} without a log-in form")
    done = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": found.group(1)})
    if done.status_code != 303:
        raise SystemExit(f"logging in as {username}: {done.status_code} {done.text[:300]}")
    return client


def pages(agent: str | None, call_id: str | None) -> list[tuple[str, str, str]]:
    """(name, user, URL) of every page timed."""
    return [
        ("queue", "lead", "/"),
        ("queue API", "lead", "/api/calls"),
        ("queue page 50", "lead", "/?page=50"),
        ("queue by score, lowest first", "lead", "/?sort=score&order=asc"),
        ("queue of one agent", "lead", f"/?agent={agent or 'agent000'}"),
        ("queue, all periods", "lead", "/?period=all"),
        ("queue API, all, not reviewed", "lead", "/api/calls?period=all&reviewed=no"),
        ("dashboard", "lead", "/dashboard"),
        ("dashboard API", "lead", "/api/dashboard"),
        ("dashboard CSV", "lead", "/dashboard.csv"),
        ("dashboard, all periods", "lead", "/dashboard?period=all"),
        ("dashboard API, all periods", "lead", "/api/dashboard?period=all"),
        ("sample", "lead", "/sample"),
        ("calibrations", "lead", "/calibrations"),
        ("calibrations API", "lead", "/api/calibrations"),
        ("call page", "lead", f"/calls/{call_id or 'none'}"),
        ("reviewer's queue", "reviewer01", "/"),
    ]


def time_pages(url: str, rows: list[tuple[str, str, str]], repeats: int, timeout: float) -> list[dict[str, Any]]:
    """Each page ``repeats`` times: median and slowest seconds, size, statuses (an error is
    recorded as its kind, and the next request goes on)."""
    import httpx

    clients = {user: login(url, user, timeout) for user in dict.fromkeys(u for _, u, _ in rows)}
    results = []
    for name, user, path in rows:
        times, statuses, size = [], [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            try:
                r = clients[user].get(path)
                statuses.append(r.status_code)
                size = len(r.content)
            except httpx.HTTPError as e:
                statuses.append(type(e).__name__)
            times.append(time.perf_counter() - t)
        results.append({"page": name, "user": user, "url": path,
                        "new_parameters": sorted(NEW_PARAMETERS & {k for k, _ in parse_qsl(urlsplit(path).query)}),
                        "statuses": statuses, "ok": all(st == 200 for st in statuses),
                        "median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
                        "bytes": size})
    for client in clients.values():
        client.close()
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'page':32} {'user':11} {'status':8} {'median s':>9} {'max s':>9} {'KB':>8}  url")
    for r in results:
        statuses = sorted({str(st) for st in r["statuses"]})
        print(f"{r['page']:32} {r['user']:11} {','.join(statuses):8} {r['median_s']:9.3f} {r['max_s']:9.3f} "
              f"{r['bytes'] / 1024:8.1f}  {r['url']}")


# -- main -------------------------------------------------------------------------------------------

def check_empty(db: str) -> None:
    """SystemExit unless the database given by URL has no calls and no users (the benchmark
    adds its own)."""
    from sqlalchemy import func, select

    from pipeline.review.db import Call, User, make_engine, sessions
    from pipeline.review.migrate import upgrade

    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine)() as s:
        if s.scalar(select(func.count()).select_from(Call)) or s.scalar(select(func.count()).select_from(User)):
            raise SystemExit(f"--db {db}: the database has calls or users; give an empty one")
    engine.dispose()


def run(args: argparse.Namespace, work: Path, db: str) -> dict[str, Any]:
    from pipeline.review.db import make_engine

    figures: dict[str, Any] = {"calls": args.calls, "db": args.db if args.db in ("sqlite", "postgres") else "url",
                               "seed": args.seed, "repeats": args.repeats}
    out = work / "out"
    check_empty(db)
    t = time.perf_counter()
    generate_run(out, args.calls, args.seed)
    figures["generate_s"] = round(time.perf_counter() - t, 2)
    print(f"generated {args.calls} calls in {figures['generate_s']:.1f} s ({out})", flush=True)

    first = timed_load(out, db)
    first["calls_per_s"] = round(args.calls / first["command_seconds"]) if first["command_seconds"] else None
    figures["load"] = first
    print(f"load: {first['seconds']:.2f} s ({first['command_seconds']:.2f} s in the command, "
          f"{first['calls_per_s']} calls/s), peak memory {first['peak_mb']} MB (each reading process at most "
          f"{first['readers_peak_mb']} MB), {first['counts']}", flush=True)
    again = timed_load(out, db)
    figures["reload"] = again
    print(f"reload (nothing changed): {again['seconds']:.2f} s ({again['command_seconds']:.2f} s in the command), "
          f"peak memory {again['peak_mb']} MB, {again['counts']}", flush=True)

    engine = make_engine(db)
    t = time.perf_counter()
    made = populate(engine, args.seed)
    engine.dispose()
    figures["populate_s"] = round(time.perf_counter() - t, 2)
    figures["made"] = made
    print(f"users, {made['reviews']} reviews of {made['reviewed_calls']} calls, {made['open_assignments']} open "
          f"assignments, {made['sample_assignments']} sampled ({made['plan_sample_s']} s), {made['calibrations']} "
          f"calibrations; agent user: {made['agent_user'] or 'none (add_user takes no agent id)'}; "
          f"{figures['populate_s']:.1f} s", flush=True)

    rows = pages(made["agent"], made["call"]) + [(f"extra: {path}", "lead", path) for path in args.extra]
    with app_server(db, work / "server.log") as url:
        figures["pages"] = time_pages(url, rows, args.repeats, args.timeout)
    print()
    print_table(figures["pages"])
    bad = [r for r in figures["pages"] if not r["ok"]]
    if bad:
        print(f"\n{len(bad)} page(s) did not answer 200 every time: {', '.join(r['url'] for r in bad)}")
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100000, help="calls to generate and load (default 100000)")
    p.add_argument("--db", default="sqlite", help="sqlite (a file in the work folder, default), postgres (a "
                                                  "throwaway local server) or a database URL / SQLite path")
    p.add_argument("--repeats", type=int, default=5, help="requests per page (default 5)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (new or empty) and keep it")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generated run (default 0)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one request may take (default 600)")
    p.add_argument("--extra", action="append", default=[], metavar="PATH",
                   help="also time this page as the lead (a path with its query; may be repeated)")
    args = p.parse_args(argv)
    if args.calls < 1 or args.repeats < 1:
        p.error("--calls and --repeats must be 1 or more")
    if args.keep:
        if args.keep.exists() and any(args.keep.iterdir()):
            p.error(f"--keep {args.keep}: give a new or empty folder")
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="callqa-scale-"))
    try:
        if args.db == "postgres":
            with postgres_server() as db:
                figures = run(args, work, db)
        else:
            figures = run(args, work, str(work / "review.db") if args.db == "sqlite" else args.db)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            print(f"\nfigures written to {args.json}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
