"""The insight store: one row of facts per interaction of a run folder, kept in SQLite
(``OUT/.callqa-insights.sqlite`` unless another path is given), so that insight over a large
archive reads small rows and never a call.json twice.

:meth:`InsightStore.update` walks ``OUT/calls/*/call.json`` and reads only the files whose size
or modification time changed since the last update (new calls only, in a nightly routine);
rows of calls whose call.json is gone are removed. Failed interactions are counted, not stored.
Rows are written in batches, so memory stays bounded whatever the archive's size.

Each row keeps what the reports read: who (agent, team, queue, channel), when (``started_at``
in UTC, its day and ISO week), the suggested score, auto-fail and item answers, the customer's
sentiment at start and end, hold time, the customer's hashed identity (never the number or
address) and the contact block (reason, outcome, follow-ups), whose texts are already masked by
the analysis stage. Other modules add their own tables to the same file (surveys, ACD records,
topics) through :attr:`InsightStore.conn`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import CallqaError
from pipeline.interaction.record import RECORD_FILE, Interaction, RecordError

STORE_FILE = ".callqa-insights.sqlite"
SCHEMA = 1
BATCH = 500


class InsightStoreError(CallqaError):
    """The insight store cannot be opened or written (names the file)."""


@dataclass
class Fact:
    """One interaction's facts, as the store keeps them."""

    call_id: str
    channel: str
    agent_id: str | None = None
    team: str | None = None
    """The agent's team: the manifest's ``team`` column, else the queue."""
    queue: str | None = None
    started_at: str | None = None
    """ISO 8601 in UTC (``2026-11-16T09:12:00+00:00``), None when unknown."""
    day: str | None = None
    week: str | None = None
    """ISO week of ``started_at`` (``2026-W47``)."""
    duration_s: float | None = None
    score: float | None = None
    auto_fail: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    customer_hash: str | None = None
    sentiment_start: float | None = None
    sentiment_end: float | None = None
    hold_s: float | None = None
    reason: str | None = None
    reason_start: float | None = None
    outcome: str | None = None
    follow_ups: int = 0
    contact: dict[str, Any] = field(default_factory=dict)
    """The record's contact block as written (masked)."""

    COLUMNS = ("call_id", "channel", "agent_id", "team", "queue", "started_at", "day", "week", "duration_s", "score",
               "auto_fail", "answers", "customer_hash", "sentiment_start", "sentiment_end", "hold_s", "reason",
               "reason_start", "outcome", "follow_ups", "contact")

    def to_row(self) -> tuple[Any, ...]:
        return tuple(json.dumps(v, sort_keys=True, separators=(",", ":")) if k in ("answers", "contact") else
                     int(v) if k == "auto_fail" else v for k, v in ((c, getattr(self, c)) for c in self.COLUMNS))

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> "Fact":
        values = dict(zip(cls.COLUMNS, row))
        values["answers"] = json.loads(values["answers"] or "{}")
        values["contact"] = json.loads(values["contact"] or "{}")
        values["auto_fail"] = bool(values["auto_fail"])
        return cls(**values)


def utc_start(text: str | None) -> datetime | None:
    """``text`` (ISO 8601; a time without a zone is taken as UTC) as an aware UTC datetime."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def iso_week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def fact_of(record: Interaction) -> Fact:
    """The facts of one interaction record (an ``ok`` one)."""
    meta = record.metadata
    when = utc_start(record.started_at)
    sentiment = record.sentiment or {}
    metrics = record.metrics or {}
    holds = metrics.get("hold_candidates") if isinstance(metrics, dict) else None
    contact = record.contact or {}
    reason = contact.get("reason") if isinstance(contact.get("reason"), dict) else None
    outcome = contact.get("outcome") if isinstance(contact.get("outcome"), dict) else None
    queue = meta.get("queue") or None
    return Fact(
        call_id=record.call_id, channel=record.channel, agent_id=record.agent_id,
        team=meta.get("team") or queue, queue=queue,
        started_at=when.isoformat() if when else None, day=when.date().isoformat() if when else None,
        week=iso_week(when) if when else None, duration_s=record.source.duration_s, score=record.score,
        auto_fail=bool(((record.scorecard or {}).get("score") or {}).get("auto_fail")), answers=record.answers,
        customer_hash=record.customer_hash, sentiment_start=sentiment.get("customer_start"),
        sentiment_end=sentiment.get("customer_end"),
        hold_s=round(sum(float(h.get("duration_s") or 0.0) for h in holds), 3) if isinstance(holds, list) else None,
        reason=(reason or {}).get("text") or None, reason_start=(reason or {}).get("start"),
        outcome=(outcome or {}).get("label") or None, follow_ups=len(contact.get("follow_ups") or []), contact=contact,
    )


@dataclass
class UpdateCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    """call.json files of failed interactions, or unreadable ones (not stored)."""

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class InsightStore:
    """The store at ``path`` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # private, as every result is
            self.conn = sqlite3.connect(self.path)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self._schema()
        except (sqlite3.Error, OSError) as e:
            raise InsightStoreError(f"{self.path}: cannot open the insight store: {e}") from e

    @classmethod
    def for_run(cls, out_dir: str | Path, path: str | Path | None = None) -> "InsightStore":
        """The store of run folder ``out_dir`` (``OUT/.callqa-insights.sqlite`` unless ``path``)."""
        return cls(Path(path) if path else Path(out_dir) / STORE_FILE)

    @classmethod
    def updated(cls, out_dir: str | Path, path: str | Path | None = None) -> "InsightStore":
        """The store of results folder ``out_dir`` brought up to date with its calls
        (:meth:`update`); InsightStoreError when ``out_dir`` is not a results folder."""
        if not (Path(out_dir) / "calls").is_dir():
            raise InsightStoreError(f"{out_dir}: not a callqa results folder (no calls/ in it)")
        store = cls.for_run(out_dir, path)
        try:
            store.update(out_dir)
        except BaseException:
            store.close()
            raise
        return store

    def _schema(self) -> None:
        c = self.conn
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = c.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and int(row[0]) != SCHEMA:
            raise InsightStoreError(f"{self.path}: insight store schema {row[0]}, this callqa writes {SCHEMA}; "
                                    "remove the file to rebuild it")
        cols = ", ".join(f"{name} {kind}" for name, kind in zip(Fact.COLUMNS, (
            "TEXT PRIMARY KEY", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "REAL", "REAL", "INTEGER",
            "TEXT", "TEXT", "REAL", "REAL", "REAL", "TEXT", "REAL", "TEXT", "INTEGER", "TEXT")))
        c.execute(f"CREATE TABLE IF NOT EXISTS interactions ({cols}, file_size INTEGER, file_mtime_ns INTEGER)")
        c.execute("CREATE INDEX IF NOT EXISTS interactions_day ON interactions (day)")
        c.execute("CREATE INDEX IF NOT EXISTS interactions_customer ON interactions (customer_hash, started_at)")
        c.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        c.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "InsightStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, out_dir: str | Path) -> UpdateCounts:
        """Bring the store up to date with ``out_dir/calls`` (new and changed call.json files
        only; rows of removed ones dropped). Returns what changed."""
        calls = Path(out_dir) / "calls"
        counts = UpdateCounts()
        known = {cid: (size, mtime) for cid, size, mtime in
                 self.conn.execute("SELECT call_id, file_size, file_mtime_ns FROM interactions")}
        seen: set[str] = set()
        pending: list[tuple[Any, ...]] = []
        try:
            entries = sorted(os.scandir(calls), key=lambda e: e.name) if calls.is_dir() else []
        except OSError as e:
            raise InsightStoreError(f"{calls}: cannot list the run's calls: {e.strerror or e}") from e
        for entry in entries:
            path = Path(entry.path) / RECORD_FILE
            try:
                st = path.stat()
            except OSError:
                continue
            if known.get(entry.name) == (st.st_size, st.st_mtime_ns):
                seen.add(entry.name)
                counts.unchanged += 1
                continue
            try:
                record = Interaction.load(path)
            except (RecordError, OSError, ValueError):
                counts.failed += 1
                continue
            if not record.ok:
                counts.failed += 1
                continue
            seen.add(record.call_id)
            if record.call_id in known:
                counts.updated += 1
            else:
                counts.added += 1
            pending.append((*fact_of(record).to_row(), st.st_size, st.st_mtime_ns))
            if len(pending) >= BATCH:
                self._write(pending)
                pending = []
        self._write(pending)
        gone = [cid for cid in known if cid not in seen]
        for start in range(0, len(gone), BATCH):
            chunk = gone[start:start + BATCH]
            self.conn.execute(f"DELETE FROM interactions WHERE call_id IN ({','.join('?' * len(chunk))})", chunk)
        counts.removed = len(gone)
        self.conn.commit()
        return counts

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = (*Fact.COLUMNS, "file_size", "file_mtime_ns")
        try:
            self.conn.executemany(f"INSERT OR REPLACE INTO interactions ({', '.join(names)}) "
                                  f"VALUES ({', '.join('?' * len(names))})", rows)
            self.conn.commit()
        except sqlite3.Error as e:
            raise InsightStoreError(f"{self.path}: cannot write the insight store: {e}") from e

    def facts(self, start: str | None = None, end: str | None = None, *, team: str | None = None,
              agent_id: str | None = None, channel: str | None = None) -> Iterator[Fact]:
        """The facts of interactions started in [start, end) (ISO days, either optional; an
        interaction without a start time is in no bounded period), in order of start time and
        id, read from the database as they are used."""
        where, args = self._where(start, end, team, agent_id, channel)
        cursor = self.conn.execute(f"SELECT {', '.join(Fact.COLUMNS)} FROM interactions {where} "
                                   "ORDER BY started_at, call_id", args)
        for row in cursor:
            yield Fact.from_row(row)

    def latest_day(self) -> "date | None":
        """The day of the newest interaction with a start time (None when there is none)."""
        row = self.conn.execute("SELECT MAX(day) FROM interactions").fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def count(self, start: str | None = None, end: str | None = None, *, team: str | None = None,
              agent_id: str | None = None, channel: str | None = None) -> int:
        where, args = self._where(start, end, team, agent_id, channel)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM interactions {where}", args).fetchone()[0])

    @staticmethod
    def _where(start: str | None, end: str | None, team: str | None, agent_id: str | None,
               channel: str | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if start:
            clauses.append("day >= ?")
            args.append(start[:10])
        if end:
            clauses.append("day < ?")
            args.append(end[:10])
        for column, value in (("team", team), ("agent_id", agent_id), ("channel", channel)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args
