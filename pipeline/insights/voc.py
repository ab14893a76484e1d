"""Voice of the customer over a period: contact-reason topics and their weekly trend, topics
new or growing against a baseline period, complaint drivers, repeat contacts and first-contact
resolution (FCR), survey comments and CSAT per topic. :func:`insights` returns the content of
``insights.json``; :func:`write_outputs` writes it with its CSV tables and the HTML page.

Every figure says its count and base (``k`` of ``n``), a share with its Wilson 95% interval and
``too_few`` when ``n`` is under ``insights.min_sample``, and lists its call ids (drill-down).
Growth is a test, not a comparison of shares: the conditional (exact binomial) test of two
Poisson rates, the topic's contacts in the period and in the baseline, each over its contacts
with a reason; a rate ratio with its exact 95% interval, p-values adjusted over the topics
(Benjamini-Hochberg), and no verdict at all when the period, baseline or topic holds fewer than
``min_sample`` contacts.

Shape of insights.json (version 1)::

    {"version": 1, "period": {"from", "to" (exclusive), "last_day", "days"}, "baseline": {"from", "to", "n"},
     "options": {...}, "notes": [str],
     "contacts": {"n", "with_reason", "with_topic", "without_topic", "with_customer"},
     "weeks": [{"week", "from", "n"}],                     # contacts with a reason per ISO week
     "topics": [{"topic_id", "label", "words", "example": EVIDENCE,
                 "share": FIGURE,                           # the topic's contacts of those with a reason
                 "baseline": {"k", "n", "call_ids"},
                 "growth": {"verdict": new|growing|falling|no clear change|too few to judge,
                            "rate_ratio", "ci": [lo, hi|null], "p", "q", "reason"},
                 "weeks": [{"week", "k", "n", "share", "too_few", "call_ids"}],
                 "csat": {"mean", "n", "ci"} | null, "comments": [{"call_id", "csat", "nps", "comment"}],
                 "calls": [EVIDENCE]}],
     "without_topic": {"n", "calls": [EVIDENCE]},
     "drivers": [{"rank", "topic_id", "label", "n", "problem": FIGURE, "negative": FIGURE,
                  "escalated_unresolved": FIGURE, "repeat": FIGURE, "too_few"}],
     "repeat_contacts": {"repeat_days", "knowable_until", "overall": FCR,
                         "by_team" | "by_agent" | "by_topic" | "by_channel": [FCR + {"group"}],
                         "pairs": [{"call_id", "repeat_call_id", "days"}]},
     "surveys": {"available": bool, "matched": int}}

    FIGURE   = {"k", "n", "share", "ci": [lo, hi], "too_few", "call_ids": [...]}
    EVIDENCE = {"call_id", "channel", "started_at", "quote", "start" (seconds, voice),
                "utterance_id", "message" (written: the message number), "topic_id", "similarity"}
    FCR      = {"contacts", "with_customer", "not_yet_knowable", "n" (knowable), "k" (resolved at first
                contact), "share", "ci", "too_few", "repeat_contacts", "call_ids" (not resolved at first contact)}
"""

from __future__ import annotations

import math
import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import CallqaError
from pipeline.insights import satisfaction
from pipeline.insights.options import InsightsOptions
from pipeline.insights.store import Fact, InsightStore, utc_start
from pipeline.insights.topics import NO_TOPIC, ensure_tables, load_topics

VERSION = 1
PERIOD_DAYS = 28
"""The period reported when no start is given: this many days up to the end."""
ALPHA = 0.05
NEGATIVE_THRESHOLD = -0.3
"""``sentiment.negative_threshold``'s default (the CLI passes the config's)."""
PROBLEM_OUTCOMES = ("escalated", "unresolved")


class InsightsError(CallqaError):
    """Insight cannot be computed as asked (bad period, empty store ...)."""


# -- statistics --------------------------------------------------------------------------------------


def wilson(k: int, n: int) -> list[float] | None:
    """The Wilson score interval of k successes in n, rounded (None when n is 0)."""
    ci = satisfaction.wilson(k, n)
    return None if ci is None else [round(ci[0], 4), round(ci[1], 4)]


def figure(call_ids: list[str], n: int, min_sample: int) -> dict[str, Any]:
    k = len(call_ids)
    return {"k": k, "n": n, "share": round(k / n, 4) if n else None, "ci": wilson(k, n),
            "too_few": n < min_sample, "call_ids": sorted(call_ids)}


def rate_ratio_test(x1: int, n1: int, x0: int, n0: int) -> dict[str, Any]:
    """The conditional exact test of two Poisson rates (x1 events over exposure n1 against x0
    over n0): given x1 + x0 events, x1 is Binomial(x1 + x0, n1 / (n1 + n0)) when the rates are
    equal. Returns the rate ratio, its exact (Clopper-Pearson) 95% interval (upper None:
    unbounded) and the two-sided p-value."""
    from scipy.stats import binomtest

    total = x1 + x0
    ratio = (x1 / n1) / (x0 / n0) if x0 else None
    if total == 0:
        return {"rate_ratio": None, "ci": None, "p": 1.0}
    test = binomtest(x1, total, n1 / (n1 + n0))
    low, high = test.proportion_ci(0.95, method="exact")
    odds = n0 / n1

    def to_ratio(pi: float) -> float | None:
        return None if pi >= 1 else round(pi / (1 - pi) * odds, 4)

    return {"rate_ratio": None if ratio is None else round(ratio, 4), "ci": [to_ratio(low) or 0.0, to_ratio(high)],
            "p": round(float(test.pvalue), 6)}


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = round(min(1.0, running), 6)
    return q


def mean_ci(values: list[float], bounds: tuple[float | None, float | None] = (None, None)) -> dict[str, Any] | None:
    """The mean of ``values`` with its Student t interval (clipped to ``bounds``), and n."""
    if not values:
        return None
    ci = satisfaction.mean_ci(values, bounds=bounds)
    return {"mean": round(sum(values) / len(values), 3), "n": len(values),
            "ci": None if ci is None else [round(ci[0], 3), round(ci[1], 3)]}


# -- the period ------------------------------------------------------------------------------------


def parse_day(text: str | None, what: str) -> date | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(str(text)[:10]) if len(str(text)) >= 10 else date.fromisoformat(str(text))
    except ValueError:
        raise InsightsError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def resolve_period(store: InsightStore, options: InsightsOptions, start: str | None, end: str | None,
                   baseline_start: str | None = None, baseline_end: str | None = None) -> dict[str, date]:
    """The period [from, to) (``to`` exclusive; default: the day after the latest interaction,
    ``from`` default: :data:`PERIOD_DAYS` before ``to``) and the baseline (default: the
    ``baseline_days`` before ``from``)."""
    s, e = parse_day(start, "--from"), parse_day(end, "--to")
    bs, be = parse_day(baseline_start, "--baseline-from"), parse_day(baseline_end, "--baseline-to")
    if e is None:
        latest = store.latest_day()
        e = (latest + timedelta(days=1)) if latest else (s + timedelta(days=PERIOD_DAYS) if s else date.today())
    if s is None:
        s = e - timedelta(days=PERIOD_DAYS)
    if s >= e:
        raise InsightsError(f"the period is empty: --from {s} is not before --to {e}")
    if be is None:
        be = s if bs is None or bs < s else None
    if bs is None:
        bs = be - timedelta(days=options.baseline_days) if be else None
    if bs is None or be is None or bs >= be:
        raise InsightsError(f"the baseline is empty: {bs} is not before {be}")
    return {"from": s, "to": e, "baseline_from": bs, "baseline_to": be}


# -- evidence ---------------------------------------------------------------------------------------

_MESSAGE = re.compile(r"^[a-z]*0*(\d+)$")


def evidence(fact: Fact, topic_id: int | None, similarity: float | None) -> dict[str, Any]:
    """A call's reason quote with where it was said: its time (voice) or message number (written)."""
    reason = fact.contact.get("reason") if isinstance(fact.contact.get("reason"), dict) else {}
    uid = (reason or {}).get("utterance_id")
    message = (reason or {}).get("message")
    if not isinstance(message, int) or isinstance(message, bool):
        message = None
        if fact.channel in ("email", "chat") and isinstance(uid, str) and (m := _MESSAGE.match(uid)):
            message = int(m.group(1))  # a block without "message": the utterance id's number (m002)
    return {"call_id": fact.call_id, "channel": fact.channel, "started_at": fact.started_at, "quote": fact.reason,
            "start": fact.reason_start if fact.channel == "voice" else None, "utterance_id": uid,
            "message": message, "topic_id": topic_id, "similarity": similarity}


# -- the report -------------------------------------------------------------------------------------


def _table_columns(conn: sqlite3.Connection, name: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({name})")}


def _assignments(store: InsightStore, start: date, end: date) -> dict[str, tuple[int, float]]:
    ensure_tables(store)
    return {cid: (tid, sim) for cid, tid, sim in store.conn.execute(
        "SELECT a.call_id, a.topic_id, a.similarity FROM topic_assignments a JOIN interactions i "
        "ON i.call_id = a.call_id AND i.reason IS a.text WHERE i.day >= ? AND i.day < ?",
        (start.isoformat(), end.isoformat()))}


def _weeks(start: date, end: date) -> list[dict[str, str]]:
    out, seen = [], set()
    day = start
    while day < end:
        year, week, _ = day.isocalendar()
        key = f"{year}-W{week:02d}"
        if key not in seen:
            seen.add(key)
            out.append({"week": key, "from": max(start, day - timedelta(days=day.weekday())).isoformat()})
        day += timedelta(days=1)
    return out


def _fcr(rows: list[dict[str, Any]], min_sample: int) -> dict[str, Any]:
    with_customer = [r for r in rows if r["customer"]]
    knowable = [r for r in with_customer if r["knowable"]]
    not_resolved = [r["call_id"] for r in knowable if r["repeated"]]
    k = len(knowable) - len(not_resolved)
    return {"contacts": len(rows), "with_customer": len(with_customer),
            "not_yet_knowable": len(with_customer) - len(knowable), "n": len(knowable), "k": k,
            "share": round(k / len(knowable), 4) if knowable else None, "ci": wilson(k, len(knowable)),
            "too_few": len(knowable) < min_sample, "repeat_contacts": sum(1 for r in rows if r["is_repeat"]),
            "call_ids": sorted(not_resolved)}


def insights(store: InsightStore, options: InsightsOptions, start: str | None = None, end: str | None = None, *,
             baseline_start: str | None = None, baseline_end: str | None = None,
             negative_threshold: float = NEGATIVE_THRESHOLD) -> dict[str, Any]:
    """The insights.json content for the period [start, end) (ISO days; see the module doc)."""
    period = resolve_period(store, options, start, end, baseline_start, baseline_end)
    s, e, bs, be = period["from"], period["to"], period["baseline_from"], period["baseline_to"]
    min_sample, repeat = options.min_sample, timedelta(days=options.repeat_days)
    notes: list[str] = []
    topics = {t.topic_id: t for t in load_topics(store)}
    assigned = _assignments(store, min(s, bs), max(e, be))
    latest = store.latest_day()
    knowable_until = (latest - timedelta(days=options.repeat_days)) if latest else None

    # the baseline: contacts with a reason, per topic
    base_n, base_ids = 0, {}
    for call_id, reason in store.conn.execute(
            "SELECT call_id, reason FROM interactions WHERE day >= ? AND day < ? AND reason IS NOT NULL "
            "AND reason != '' ORDER BY call_id", (bs.isoformat(), be.isoformat())):
        base_n += 1
        base_ids.setdefault(assigned.get(call_id, (NO_TOPIC, None))[0], []).append(call_id)

    # the period (and repeat_days either side, for repeat contacts), in order of start time
    rows: list[dict[str, Any]] = []
    last: dict[str, tuple[datetime, dict[str, Any] | None]] = {}
    pairs: list[dict[str, Any]] = []
    by_topic_calls: dict[int, list[dict[str, Any]]] = {}
    for fact in store.facts((s - repeat).isoformat(), (e + repeat + timedelta(days=1)).isoformat()):
        when = utc_start(fact.started_at)
        in_period = fact.day is not None and s.isoformat() <= fact.day < e.isoformat()
        row = None
        if in_period:
            tid, sim = assigned.get(fact.call_id, (NO_TOPIC, None)) if fact.reason else (None, None)
            row = {"call_id": fact.call_id, "team": fact.team, "agent": fact.agent_id, "channel": fact.channel,
                   "week": fact.week, "topic": tid, "customer": fact.customer_hash,
                   "knowable": knowable_until is not None and date.fromisoformat(fact.day) <= knowable_until,
                   "repeated": False, "is_repeat": False,
                   "negative": None if fact.sentiment_end is None else fact.sentiment_end < negative_threshold,
                   "problem_outcome": None if fact.outcome is None else fact.outcome in PROBLEM_OUTCOMES}
            rows.append(row)
            if fact.reason:
                by_topic_calls.setdefault(tid, []).append(evidence(fact, None if tid == NO_TOPIC else tid, sim))
        if fact.customer_hash and when is not None:
            prev = last.get(fact.customer_hash)
            if prev is not None and when - prev[0] <= repeat:
                if prev[1] is not None:
                    prev[1]["repeated"] = True
                    pairs.append({"call_id": prev[1]["call_id"], "repeat_call_id": fact.call_id,
                                  "days": round((when - prev[0]).total_seconds() / 86400, 2)})
                if row is not None:
                    row["is_repeat"] = True
            last[fact.customer_hash] = (when, row)
    del last

    with_reason = [r for r in rows if r["topic"] is not None]
    n_reason = len(with_reason)
    if not rows:
        notes.append(f"no interactions from {s} to {e}")
    elif not n_reason:
        notes.append("no contact reasons: the interactions of the period have no contact reason (results written "
                     "before the contact block, or the contact stage off); topics and drivers are empty")
    if rows and not topics and n_reason:
        notes.append("no topics: too few contact reasons to cluster (insights.topics.min_topic_size)")
    if base_n < min_sample:
        notes.append(f"the baseline ({bs} to {be}) has {base_n} contacts with a reason, fewer than min_sample "
                     f"{min_sample}: no growth is judged")

    weeks = _weeks(s, e)
    week_n: dict[str, int] = {}
    for r in with_reason:
        week_n[r["week"]] = week_n.get(r["week"], 0) + 1

    surveys = _surveys(store, s, e)
    topic_out: list[dict[str, Any]] = []
    tested: list[int] = []
    for tid, topic in topics.items():
        calls = sorted(by_topic_calls.get(tid, []), key=lambda ev: (ev["started_at"] or "", ev["call_id"]))
        if not calls and not base_ids.get(tid):
            continue
        x1, x0 = len(calls), len(base_ids.get(tid, []))
        growth: dict[str, Any] = {"verdict": "too few to judge", "rate_ratio": None, "ci": None, "p": None, "q": None}
        if n_reason < min_sample or base_n < min_sample:
            growth["reason"] = f"period {n_reason} or baseline {base_n} contacts with a reason < min_sample {min_sample}"
        elif x1 + x0 < min_sample:
            growth["reason"] = f"{x1} + {x0} contacts of the topic < min_sample {min_sample}"
        else:
            growth.update(rate_ratio_test(x1, n_reason, x0, base_n))
            tested.append(len(topic_out))
        # the most representative reason of the period: the closest to the topic's centre (ties: the first id)
        example = min(calls, key=lambda ev: (-(ev["similarity"] or 0), ev["call_id"])) if calls else None
        topic_weeks = []
        per_week: dict[str | None, list[str]] = {}
        for ev in calls:
            per_week.setdefault(_week_of(ev), []).append(ev["call_id"])
        for w in weeks:
            ids = per_week.get(w["week"], [])
            n = week_n.get(w["week"], 0)
            topic_weeks.append({"week": w["week"], "k": len(ids), "n": n, "share": round(len(ids) / n, 4) if n else None,
                                "too_few": n < min_sample, "call_ids": sorted(ids)})
        matched = [answer for ev in calls for answer in surveys.get(ev["call_id"], [])]
        topic_out.append({
            "topic_id": tid, "label": topic.label, "words": topic.words,
            "archive_example": {"call_id": topic.example_call_id, "quote": topic.example},
            "example": example, "share": figure([ev["call_id"] for ev in calls], n_reason, min_sample),
            "baseline": {"k": x0, "n": base_n, "call_ids": base_ids.get(tid, [])}, "growth": growth, "weeks": topic_weeks,
            "csat": mean_ci([m["csat"] for m in matched if m.get("csat") is not None], bounds=(1.0, 5.0)),
            "comments": [m for m in matched if m.get("comment")], "calls": calls,
        })
    qs = benjamini_hochberg([topic_out[i]["growth"]["p"] for i in tested])
    for i, q in zip(tested, qs):
        g = topic_out[i]["growth"]
        g["q"] = q
        x0 = topic_out[i]["baseline"]["k"]
        share_up = topic_out[i]["share"]["k"] / n_reason > x0 / base_n
        if q < ALPHA and share_up:
            g["verdict"] = "new" if x0 == 0 else "growing"
        elif q < ALPHA:
            g["verdict"] = "falling"
        else:
            g["verdict"] = "no clear change"
        g["reason"] = f"exact rate-ratio test, Benjamini-Hochberg q = {q:.3g} over {len(tested)} topics"
    topic_out.sort(key=lambda t: (-t["share"]["k"], t["topic_id"]))

    # complaint drivers per topic
    drivers = []
    rows_of: dict[int, list[dict[str, Any]]] = {}
    for r in with_reason:
        rows_of.setdefault(r["topic"], []).append(r)
    for t in topic_out:
        tid = t["topic_id"]
        mine = rows_of.get(tid, [])
        if not mine:
            continue
        neg = [r for r in mine if r["negative"] is not None]
        out = [r for r in mine if r["problem_outcome"] is not None]
        rep = [r for r in mine if r["customer"] and r["knowable"]]
        problem = [r["call_id"] for r in mine if r["negative"] or r["problem_outcome"] or
                   (r["customer"] and r["knowable"] and r["repeated"])]
        drivers.append({
            "topic_id": tid, "label": t["label"], "n": len(mine),
            "problem": figure(problem, len(mine), min_sample),
            "negative": figure([r["call_id"] for r in neg if r["negative"]], len(neg), min_sample),
            "escalated_unresolved": figure([r["call_id"] for r in out if r["problem_outcome"]], len(out), min_sample),
            "repeat": figure([r["call_id"] for r in rep if r["repeated"]], len(rep), min_sample),
            "too_few": len(mine) < min_sample,
        })
    drivers.sort(key=lambda d: (d["too_few"], -d["problem"]["k"], -(d["problem"]["share"] or 0), d["topic_id"]))
    for rank, d in enumerate(drivers, 1):
        d["rank"] = rank

    def grouped(key: str) -> list[dict[str, Any]]:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r[key], []).append(r)
        out = []
        for g, members in groups.items():
            item = {"group": _group_name(key, g, topics), **_fcr(members, min_sample)}
            if key == "topic":
                item["topic_id"] = None if g in (None, NO_TOPIC) else g
            out.append(item)
        return sorted(out, key=lambda x: (-x["contacts"], str(x["group"])))

    by_topic_ev = by_topic_calls.get(NO_TOPIC, [])
    return {
        "version": VERSION,
        "period": {"from": s.isoformat(), "to": e.isoformat(), "last_day": (e - timedelta(days=1)).isoformat(),
                   "days": (e - s).days},
        "baseline": {"from": bs.isoformat(), "to": be.isoformat(), "n": base_n},
        "options": {"repeat_days": options.repeat_days, "baseline_days": options.baseline_days,
                    "min_sample": min_sample, "negative_threshold": negative_threshold,
                    "topics": dict(options.topics.__dict__)},
        "notes": notes,
        "contacts": {"n": len(rows), "with_reason": n_reason,
                     "with_topic": sum(1 for r in with_reason if r["topic"] != NO_TOPIC),
                     "without_topic": sum(1 for r in with_reason if r["topic"] == NO_TOPIC),
                     "with_customer": sum(1 for r in rows if r["customer"])},
        "weeks": [{**w, "n": week_n.get(w["week"], 0)} for w in weeks],
        "topics": topic_out,
        "without_topic": {"n": len(by_topic_ev),
                          "calls": sorted(by_topic_ev, key=lambda ev: (ev["started_at"] or "", ev["call_id"]))},
        "drivers": drivers,
        "repeat_contacts": {
            "repeat_days": options.repeat_days,
            "knowable_until": knowable_until.isoformat() if knowable_until else None,
            "overall": _fcr(rows, min_sample),
            "by_team": grouped("team"), "by_agent": grouped("agent"), "by_topic": grouped("topic"),
            "by_channel": grouped("channel"),
            "pairs": sorted(pairs, key=lambda p: (p["call_id"], p["repeat_call_id"])),
        },
        "surveys": {"available": surveys is not _NO_SURVEYS, "matched": sum(len(v) for v in surveys.values())},
    }


_NO_SURVEYS: dict[str, list[dict[str, Any]]] = {}


def _surveys(store: InsightStore, start: date, end: date) -> dict[str, list[dict[str, Any]]]:
    """The period's survey answers by call id (a call may have several), when the store has a
    ``surveys`` table (pipeline/insights/external.py; rows matched to no call are left out)."""
    cols = _table_columns(store.conn, "surveys")
    if not cols or "call_id" not in cols:
        return _NO_SURVEYS
    pick = [c for c in ("csat", "nps", "comment") if c in cols]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in store.conn.execute(
            f"SELECT s.call_id{''.join(', s.' + c for c in pick)} FROM surveys s JOIN interactions i "
            "ON i.call_id = s.call_id WHERE i.day >= ? AND i.day < ? ORDER BY s.call_id, s.rowid",
            (start.isoformat(), end.isoformat())):
        out.setdefault(row[0], []).append({"call_id": row[0], **{c: row[1 + k] for k, c in enumerate(pick)}})
    return out


def _week_of(ev: dict[str, Any]) -> str | None:
    when = utc_start(ev["started_at"])
    if when is None:
        return None
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _group_name(key: str, value: Any, topics: dict[int, Any]) -> str:
    if key == "topic":
        if value is None:
            return "(no contact reason)"
        if value == NO_TOPIC:
            return "(no topic)"
        return topics[value].label if value in topics else str(value)
    return "(unknown)" if value in (None, "") else str(value)


# -- files --------------------------------------------------------------------------------------------


def _ids(ids: list[str]) -> str:
    return " ".join(ids)


def write_outputs(data: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write insights.json, topics.csv, topic_trends.csv, drivers.csv, repeat_contacts.csv and
    insights.html into ``out_dir``; returns their paths."""
    from pipeline.insights.html import render_html
    from pipeline.interaction.writers import write_atomic, write_csv, write_json

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InsightsError(f"{out}: cannot make the output folder: {e.strerror or e}") from e
    paths = []

    def table(name: str, header: list[str], rows: list[list[Any]]) -> None:
        write_csv(out / name, rows, header)
        paths.append(out / name)

    path = out / "insights.json"
    write_json(path, data)
    paths.append(path)
    table("topics.csv", ["topic_id", "label", "k", "n", "share", "ci_low", "ci_high", "too_few", "baseline_k",
                         "baseline_n", "growth", "rate_ratio", "rr_ci_low", "rr_ci_high", "p", "q", "csat_mean",
                         "csat_n", "example_call_id", "example_quote", "call_ids"],
          [[t["topic_id"], t["label"], t["share"]["k"], t["share"]["n"], t["share"]["share"],
            *(t["share"]["ci"] or [None, None]), t["share"]["too_few"], t["baseline"]["k"], t["baseline"]["n"],
            t["growth"]["verdict"], t["growth"]["rate_ratio"], *(t["growth"]["ci"] or [None, None]),
            t["growth"]["p"], t["growth"]["q"], (t["csat"] or {}).get("mean"), (t["csat"] or {}).get("n"),
            (t["example"] or {}).get("call_id"), (t["example"] or {}).get("quote"),
            _ids(t["share"]["call_ids"])] for t in data["topics"]])
    table("topic_trends.csv", ["topic_id", "label", "week", "k", "n", "share", "too_few"],
          [[t["topic_id"], t["label"], w["week"], w["k"], w["n"], w["share"], w["too_few"]]
           for t in data["topics"] for w in t["weeks"]])
    drows = []
    for d in data["drivers"]:
        for measure in ("problem", "negative", "escalated_unresolved", "repeat"):
            f = d[measure]
            drows.append([d["rank"], d["topic_id"], d["label"], measure, f["k"], f["n"], f["share"],
                          *(f["ci"] or [None, None]), f["too_few"], _ids(f["call_ids"])])
    table("drivers.csv", ["rank", "topic_id", "label", "measure", "k", "n", "share", "ci_low", "ci_high", "too_few",
                          "call_ids"], drows)
    rc = data["repeat_contacts"]
    rrows = []
    for kind, items in (("overall", [{"group": "all", **rc["overall"]}]), ("team", rc["by_team"]),
                        ("agent", rc["by_agent"]), ("topic", rc["by_topic"]), ("channel", rc["by_channel"])):
        for g in items:
            rrows.append([kind, g["group"], g["contacts"], g["with_customer"], g["not_yet_knowable"], g["n"], g["k"],
                          g["share"], *(g["ci"] or [None, None]), g["too_few"], g["repeat_contacts"],
                          _ids(g["call_ids"])])
    table("repeat_contacts.csv", ["by", "group", "contacts", "with_customer", "not_yet_knowable", "knowable",
                                  "resolved_first_contact", "fcr", "ci_low", "ci_high", "too_few", "repeat_contacts",
                                  "not_resolved_call_ids"], rrows)
    path = out / "insights.html"
    write_atomic(path, render_html(data))
    paths.append(path)
    return paths


def _baseline_arg(text: str | None) -> tuple[str | None, str | None]:
    """``FROM:TO`` (both days included) as (from, exclusive end)."""
    if not text:
        return None, None
    if ":" not in text:
        raise InsightsError(f"--baseline {text!r}: expected FROM:TO, e.g. 2026-10-01:2026-10-28")
    first, last = text.split(":", 1)
    a, b = parse_day(first, "--baseline FROM"), parse_day(last, "--baseline TO")
    if a is None or b is None:
        raise InsightsError(f"--baseline {text!r}: expected FROM:TO, e.g. 2026-10-01:2026-10-28")
    return a.isoformat(), (b + timedelta(days=1)).isoformat()


def run_insights(out_dir: str | Path, dest: str | Path, config: Any, *, start: str | None = None,
                 last_day: str | None = None, baseline: str | None = None, store_path: str | Path | None = None,
                 embedder: Any = None) -> str:
    """``callqa insights``: update the store and its topics, compute the period's insights and
    write the files into ``dest``. ``last_day`` is included. Returns a summary to print."""
    from pipeline.insights.topics import update_topics

    out = Path(out_dir)
    if not out.is_dir():
        raise InsightsError(f"{out}: no such results folder")
    if not (out / "calls").is_dir():
        raise InsightsError(f"{out}: not a callqa results folder (no calls/ in it)")
    parse_day(start, "--from")
    last = parse_day(last_day, "--to")
    end = (last + timedelta(days=1)).isoformat() if last else None
    base_from, base_to = _baseline_arg(baseline)
    options: InsightsOptions = config.insights
    with InsightStore.for_run(out, store_path) as store:
        counts = store.update(out)  # (its counts are printed: not InsightStore.updated)
        topic_counts = update_topics(store, options.topics, embedder=embedder)
        data = insights(store, options, start, end, baseline_start=base_from, baseline_end=base_to,
                        negative_threshold=config.sentiment.negative_threshold)
    paths = write_outputs(data, dest)
    c = data["contacts"]
    lines = [f"insight store: {counts.added} added, {counts.updated} updated, {counts.removed} removed, "
             f"{counts.failed} failed or unreadable; {topic_counts.embedded} reasons embedded, "
             f"{topic_counts.topics} topics",
             f"period {data['period']['from']} to {data['period']['last_day']}: {c['n']} interactions, "
             f"{c['with_reason']} with a contact reason, {len(data['topics'])} topics",
             *[f"note: {n}" for n in data["notes"]],
             "wrote " + ", ".join(str(p) for p in paths)]
    return "\n".join(lines)
