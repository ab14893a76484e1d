#!/usr/bin/env python3
"""Benchmark ``callqa insights`` at archive scale: synthetic interaction facts are written straight
into a fresh insight store (no call.json: varied synthetic contact reasons from templates x
vocabulary over 10 topics, customers who come back, agents, teams, channels, outcomes,
sentiment, 16 weeks), then the insight steps are timed with the process's peak memory
(``resource.getrusage``, ru_maxrss: a high-water mark, so each figure is the peak up to the end
of that step):

1. writing the facts (the store's batched insert, as ``InsightStore.update`` writes them);
2. embedding the distinct reasons (the packaged sentence model, 2 threads);
3. clustering (a deterministic sample of at most 20k reasons: PCA + HDBSCAN, c-TF-IDF labels)
   and assigning every call to the nearest topic;
4. the report of the last 28 days against a 28-day baseline (insights.json, CSVs, HTML).

Then the incremental run: 1% new calls are added and steps 1-4 run again (only the new reasons
are embedded; the sample changes a little, so the topics are re-clustered and reassigned).

    .venv/bin/python scripts/benchmark_insights.py --calls 100000 [--files 10000] [--json out.json] [--keep DIR]

``--files N`` also times ``InsightStore.update`` over N call.json files written for it (the store
reads only new or changed files: a second update reads none).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.insights.options import InsightsOptions  # noqa: E402
from pipeline.insights.store import Fact, InsightStore, iso_week  # noqa: E402

TOPICS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "billing": (["I was charged {twice} for my {bill}", "my {bill} shows a {double} charge for {month}",
                 "why is there a {double} payment on my {bill}"],
                {"twice": ["twice", "two times", "double", "again"], "bill": ["bill", "invoice", "statement", "account"],
                 "double": ["double", "duplicate", "second", "extra"],
                 "month": ["October", "November", "this month", "last month", "the quarter"]}),
    "cancel": (["I want to {cancel} my {plan}", "please {cancel} the {plan} before it renews",
                "how do I {cancel} my {plan} {when}"],
               {"cancel": ["cancel", "terminate", "end", "close", "stop"],
                "plan": ["subscription", "contract", "membership", "plan", "account", "service"],
                "when": ["today", "this month", "now", "at renewal", "after moving"]}),
    "outage": (["my {net} keeps {drop} {when}", "the {net} has been {down} since {when}",
                "{net} {down} in my area {when}"],
               {"net": ["internet", "broadband", "wifi", "fibre connection", "router"],
                "drop": ["dropping", "disconnecting", "cutting out", "failing"],
                "down": ["down", "not working", "offline", "out"],
                "when": ["every evening", "this morning", "last night", "for two days", "all week"]}),
    "delivery": (["my {parcel} has not {arrived} {when}", "where is my {parcel}, it is {late}",
                  "the {parcel} was {late} and never {arrived}"],
                 {"parcel": ["parcel", "package", "order", "delivery"], "arrived": ["arrived", "come", "been delivered"],
                  "late": ["late", "overdue", "delayed", "lost"],
                  "when": ["yet", "after two weeks", "since Monday", "this week", "at all"]}),
    "password": (["I cannot {login} to my {acct}", "my {pw} reset {fails} {when}", "locked out of my {acct} {when}"],
                 {"login": ["log in", "sign in", "access", "get into"],
                  "acct": ["online account", "app", "website account", "portal"],
                  "pw": ["password", "PIN", "login code"], "fails": ["link fails", "email never comes", "does not work"],
                  "when": ["since the update", "today", "after three attempts", "on my phone", "again"]}),
    "refund": (["I am still waiting for my {refund} {when}", "the {refund} for my {item} has not come {when}",
                "when will I get the {refund} for the {item}"],
               {"refund": ["refund", "money back", "reimbursement", "credit"],
                "item": ["returned order", "cancelled flight", "faulty kettle", "broken phone", "jacket"],
                "when": ["after three weeks", "yet", "since I returned it", "this month", "at all"]}),
    "address": (["I need to {change} my {addr}", "please {change} the {addr} on my account",
                 "I moved and want to {change} my {addr}"],
                {"change": ["change", "update", "correct"],
                 "addr": ["address", "billing address", "home address", "postal address", "delivery address"]}),
    "upgrade": (["I would like to {upgrade} my {plan} to {tier}", "can I {upgrade} to the {tier} {plan}",
                 "what does it cost to {upgrade} to {tier}"],
                {"upgrade": ["upgrade", "switch", "move"], "plan": ["plan", "package", "tariff", "bundle"],
                 "tier": ["the premium plan", "fibre 500", "unlimited data", "the family bundle", "the business tier"]}),
    "damaged": (["my {item} arrived {broken}", "the {item} was {broken} when it came",
                 "I received a {broken} {item} {when}"],
                {"item": ["kettle", "phone", "laptop", "chair", "parcel", "television"],
                 "broken": ["broken", "damaged", "cracked", "smashed", "faulty"],
                 "when": ["today", "yesterday", "this morning", "last week", "again"]}),
    "meter": (["I want to give a {meter} reading {when}", "my {meter} reading on the bill is {wrong}",
               "the estimated {meter} reading is {wrong}"],
              {"meter": ["meter", "gas meter", "electricity meter", "water meter"],
               "wrong": ["wrong", "far too high", "not mine", "estimated again", "incorrect"],
               "when": ["today", "for this month", "before the bill", "now", "online"]}),
}
OPENERS = ["", "hi, ", "hello, ", "good morning, ", "yes, ", "so ", "um, "]


def make_reason(rng: random.Random) -> str:
    topic = rng.choice(sorted(TOPICS))
    templates, vocab = TOPICS[topic]
    text = rng.choice(templates)
    for key, words in vocab.items():
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", rng.choice(words), 1)
    return rng.choice(OPENERS) + text


def synthetic_facts(n: int, seed: int, start: datetime, days: int, id_offset: int = 0) -> Iterator[tuple]:
    """Rows of ``n`` synthetic calls (as the store writes them), made as they are written."""
    rng = random.Random(seed)
    for k in range(n):
        when = start + timedelta(seconds=rng.randrange(days * 86400))
        channel = rng.choice(["voice", "voice", "email", "chat"])
        reason = make_reason(rng) if rng.random() < 0.92 else None
        fact = Fact(
            call_id=f"c{id_offset + k:08d}", channel=channel, agent_id=f"A{rng.randrange(200):03d}",
            team=f"team{rng.randrange(12)}", queue="support", started_at=when.isoformat(),
            day=when.date().isoformat(), week=iso_week(when), duration_s=rng.uniform(60, 900),
            score=rng.random(), customer_hash=f"{rng.randrange(max(1, n // 3)):016x}",
            sentiment_start=rng.uniform(-1, 1), sentiment_end=rng.uniform(-1, 1), hold_s=0.0, reason=reason,
            reason_start=rng.uniform(5, 60), outcome=rng.choice(["resolved", "resolved", "follow_up", "escalated",
                                                                 "unresolved", "transferred"]),
            contact={"reason": {"text": reason, "utterance_id": "u3", "start": 12.0}} if reason else {},
        )
        yield (*fact.to_row(), 0, 0)


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(label: str, fn, results: dict) -> object:  # noqa: ANN001
    t = time.perf_counter()
    value = fn()
    results[label] = {"seconds": round(time.perf_counter() - t, 2), "peak_rss_mb": peak_mb()}
    print(f"{label:<34} {results[label]['seconds']:>8.2f} s   peak RSS {results[label]['peak_rss_mb']:>7.1f} MB",
          flush=True)
    return value


def run_steps(store: InsightStore, rows: Iterator[tuple], n: int, options: InsightsOptions, out: Path, prefix: str,
              results: dict) -> dict:
    from pipeline.insights.topics import assign, build_topics, embed_reasons, load_topics, sample_calls
    from pipeline.insights.voc import insights, write_outputs

    def write() -> None:
        while batch := list(itertools.islice(rows, 500)):
            store._write(batch)

    timed(f"{prefix}write facts ({n})", write, results)
    embedded = timed(f"{prefix}embedding", lambda: embed_reasons(store), results)
    print(f"  {embedded} distinct reasons embedded")

    def clustering() -> int:
        from pipeline.insights.topics import _meta, _signature
        sample = sample_calls(store)
        sig = _signature(sample, options.topics)
        if _meta(store, "topics_signature") == sig:
            return -1
        build_topics(store, sample, options.topics)
        store.conn.execute("INSERT OR REPLACE INTO meta VALUES ('topics_signature', ?)", (sig,))
        store.conn.commit()
        return len(sample)

    clustered = timed(f"{prefix}clustering", clustering, results)
    topics = load_topics(store)
    print(f"  {clustered} reasons clustered, {len(topics)} topics")
    assigned = timed(f"{prefix}assigning", lambda: assign(store, topics, options.topics.min_similarity,
                                                          only_new=clustered == -1), results)
    print(f"  {assigned[0]} calls assigned, {assigned[1]} without a topic")
    data = timed(f"{prefix}report", lambda: insights(store, options), results)
    timed(f"{prefix}write report files", lambda: write_outputs(data, out), results)
    return data


def update_from_files(n: int, work: Path, results: dict) -> None:
    """``InsightStore.update`` over ``n`` call.json files (written here), then again with nothing
    changed (the nightly case: every file is stat'ed, none read)."""
    from pipeline.interaction.record import Interaction, SourceInfo

    out = work / "files"
    rng = random.Random(1)
    for k in range(n):
        cid = f"f{k:07d}"
        reason = make_reason(rng)
        record = Interaction(cid, "ok", SourceInfo("recording", f"/in/{cid}.wav", "0" * 64, 300.0,
                                                   extra={"customer_hash": f"{rng.randrange(n):016x}"}),
                             metadata={"agent_id": "A1", "started_at": "2026-11-02T10:00:00Z", "team": "care"},
                             blocks={"scorecard": {"score": {"normalized": 0.8}, "items": []},
                                     "sentiment": {"customer_start": 0.1, "customer_end": -0.2}, "metrics": {},
                                     "contact": {"reason": {"text": reason, "utterance_id": "u3", "start": 9.0},
                                                 "outcome": {"label": "resolved"}, "follow_ups": []}},
                             utterances=None)
        (out / "calls" / cid).mkdir(parents=True, exist_ok=True)
        (out / "calls" / cid / "call.json").write_text(json.dumps(record.to_dict()))
    with InsightStore(work / "files.sqlite") as store:
        counts = timed(f"update from {n} call.json files", lambda: store.update(out), results)
        print(f"  {counts.to_dict()}")
        counts = timed(f"update again, {n} unchanged", lambda: store.update(out), results)
        print(f"  {counts.to_dict()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", type=int, default=0, metavar="N",
                    help="also time InsightStore.update over N call.json files written for it (first, unchanged)")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep the store and reports in DIR (default: a temporary folder)")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="callqa-insights-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    options = InsightsOptions()
    start = datetime(2026, 8, 3, tzinfo=timezone.utc)
    results: dict = {"calls": args.calls, "weeks": args.weeks}
    print(f"store: {work / 'store.sqlite'}; start peak RSS {peak_mb()} MB")
    rows = synthetic_facts(args.calls, args.seed, start, args.weeks * 7)
    with InsightStore(work / "store.sqlite") as store:
        data = run_steps(store, rows, args.calls, options, work / "report1", "first: ", results)
        results["first_topics"] = [(t["topic_id"], t["label"], t["share"]["k"]) for t in data["topics"]]
        new = max(1, args.calls // 100)
        more = synthetic_facts(new, args.seed + 1, start + timedelta(days=args.weeks * 7 - 7), 7, id_offset=args.calls)
        data = run_steps(store, more, new, options, work / "report2", "incremental (+1%): ", results)
        results["second_topics"] = [(t["topic_id"], t["label"], t["share"]["k"]) for t in data["topics"]]
    if args.files:
        update_from_files(args.files, work, results)
    results["store_mb"] = round((work / "store.sqlite").stat().st_size / 1e6, 1)
    results["report_json_mb"] = round((work / "report2" / "insights.json").stat().st_size / 1e6, 1)
    print(f"store {results['store_mb']} MB; insights.json {results['report_json_mb']} MB")
    print("topics (first run):")
    for tid, label, k in results["first_topics"]:
        print(f"  {tid:>3} {k:>6}  {label}")
    kept = {t[0] for t in results["first_topics"]} & {t[0] for t in results["second_topics"]}
    print(f"topic ids kept in the incremental run: {len(kept)} of {len(results['first_topics'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
