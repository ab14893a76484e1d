"""Surveys and ACD (call-detail) records imported into the insight store and joined to the
interactions they are about: ``callqa import surveys OUT FILE.csv`` and ``callqa import acd OUT
FILE.csv``.

Both files are CSV with a header row (UTF-8, a byte-order mark allowed); columns are named as
below, in any order; unknown columns are ignored (and named in the report); empty cells are
"not given".

Surveys (``surveys`` table):

=============  ===================================================================================
``call_id``    the interaction surveyed (optional)
``customer``   the customer's phone number or e-mail address (optional); hashed at import with
               the results folder's key (``OUT/.callqa-customer.key``), never stored as written
``time``       when the surveyed contact started (ISO 8601; a time without a zone is UTC); needed
               when there is no ``call_id``
``csat``       customer satisfaction, a number from 1 to 5
``nps``        likelihood to recommend, a whole number from 0 to 10
``comment``    the customer's free text
``channel``    ``phone``, ``mail`` or ``online`` (optional): only interactions of that channel
               (voice, email, chat) are matched by customer and time
=============  ===================================================================================

A survey row needs ``csat``, ``nps`` or ``comment``, and ``call_id`` or ``customer`` + ``time``.

ACD / CDR records (``acd`` table): ``call_id`` (optional), ``customer``, ``time`` (the call's
start), ``queue``, ``queue_s`` (seconds waiting in the queue), ``talk_s``, ``hold_s``, ``wrap_s``
(after-call work), ``transfers`` (a whole number), ``abandoned`` (0/1: the caller hung up before
an agent answered), ``agent_id``. Durations are seconds >= 0.

Matching: a row whose ``call_id`` is a known interaction is joined to it. Otherwise a row with a
customer and a time is joined to the interaction of the same customer (hashed) whose
``started_at`` is within ``insights.match_tolerance_s`` seconds of the row's time: the closest
wins; at equal distance the earlier interaction, then the smaller call id. Rows that match
nothing are kept with ``call_id`` NULL and reported (count and row numbers), and matched again
(:func:`rematch`) on every import and report, so a survey that arrived before its call was
processed is joined once the call is in the store. Rows that cannot be read (a bad number, a
CSAT outside 1-5, a time that is not one...) are not stored; they are reported with their row
number (the header is row 1) and the reason.

A row is keyed by a hash of its content (the customer as its keyed hash): importing the same
file twice, or two exports that overlap, stores each row once. Two identical rows in one file
are one row (the second is reported as a duplicate).

Each import writes its report as JSON to ``OUT/imports/<kind>-<file name>.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import CallqaError
from pipeline.insights.customers import customer_hash, load_key
from pipeline.insights.options import InsightsOptions
from pipeline.insights.store import InsightStore, utc_start
from pipeline.interaction.writers import write_json

KINDS = ("surveys", "acd")
SURVEY_COLUMNS = ("call_id", "customer", "time", "csat", "nps", "comment", "channel")
ACD_COLUMNS = ("call_id", "customer", "time", "queue", "queue_s", "talk_s", "hold_s", "wrap_s", "transfers",
               "abandoned", "agent_id")
CHANNELS = {"phone": "voice", "mail": "email", "online": "chat"}
"""A survey's ``channel`` -> the interaction channel it matches."""
REPORT_DIR = "imports"
MAX_ROWS_SHOWN = 50
"""Row numbers printed by the command (all of them are in the JSON report)."""

_COMMON = ("row_hash TEXT PRIMARY KEY", "file TEXT", "source_row INTEGER", "call_id TEXT", "matched_by TEXT",
           "call_id_given TEXT", "customer_hash TEXT", "time TEXT", "channel TEXT", "imported_at TEXT")
_TABLES = {
    "surveys": (*_COMMON, "csat REAL", "nps REAL", "comment TEXT"),
    "acd": (*_COMMON, "queue TEXT", "queue_s REAL", "talk_s REAL", "hold_s REAL", "wrap_s REAL",
            "transfers INTEGER", "abandoned INTEGER", "agent_id TEXT"),
}


class ImportFileError(CallqaError):
    """A survey or ACD file that cannot be read at all (names the file)."""


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the ``surveys`` and ``acd`` tables (and their indexes) if missing."""
    for name, cols in _TABLES.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_call ON {name} (call_id)")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_time ON {name} (time)")
    conn.commit()


@dataclass
class ImportReport:
    kind: str
    file: str
    rows: int = 0
    """Data rows read (the header not counted)."""
    added: int = 0
    duplicates: list[int] = field(default_factory=list)
    """Row numbers already in the store (this file imported before, or the same row twice)."""
    matched_by_call_id: int = 0
    matched_by_customer: int = 0
    unmatched: list[int] = field(default_factory=list)
    """Row numbers of stored rows that match no interaction (yet)."""
    bad: list[dict[str, Any]] = field(default_factory=list)
    """``{"row": n, "reason": ...}`` of rows not stored."""
    ignored_columns: list[str] = field(default_factory=list)
    rematched: int = 0
    """Rows of earlier imports matched now."""
    still_unmatched: int = 0
    """Rows of this kind in the store matching no interaction after this import."""
    report_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        def rows(numbers: list[int]) -> str:
            shown = ", ".join(str(n) for n in numbers[:MAX_ROWS_SHOWN])
            return shown + (f", ... ({len(numbers) - MAX_ROWS_SHOWN} more)" if len(numbers) > MAX_ROWS_SHOWN else "")

        lines = [f"{self.kind}: {self.rows} rows read from {self.file}: {self.added} added, "
                 f"{len(self.duplicates)} already imported, {len(self.bad)} bad",
                 f"  matched by call id: {self.matched_by_call_id}; by customer and time: {self.matched_by_customer}; "
                 f"unmatched: {len(self.unmatched)}"]
        if self.unmatched:
            lines.append(f"  unmatched rows (kept, matched again on the next import or report): {rows(self.unmatched)}")
        for b in self.bad[:MAX_ROWS_SHOWN]:
            lines.append(f"  bad row {b['row']}: {b['reason']}")
        if len(self.bad) > MAX_ROWS_SHOWN:
            lines.append(f"  ... {len(self.bad) - MAX_ROWS_SHOWN} more bad rows (see the report)")
        if self.duplicates:
            lines.append(f"  already imported rows: {rows(self.duplicates)}")
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        if self.rematched:
            lines.append(f"  rows of earlier imports matched now: {self.rematched}")
        lines.append(f"  {self.kind} rows in the store matching no interaction: {self.still_unmatched}")
        if self.report_file:
            lines.append(f"  report: {self.report_file}")
        return "\n".join(lines)


class BadRow(ValueError):
    pass


def _number(cell: str, name: str, lo: float | None = None, hi: float | None = None,
            whole: bool = False) -> float | None:
    text = (cell or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRow(f"{name} {text!r} is not a number")
    if whole and value != int(value):
        raise BadRow(f"{name} {text!r} is not a whole number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"from {lo:g} to {hi:g}" if hi is not None else f">= {lo:g}"
        raise BadRow(f"{name} {text!r} is out of range ({span})")
    return value


def _parse(kind: str, cells: dict[str, str], key: bytes) -> dict[str, Any]:
    """One CSV row as the table's values (``customer`` hashed); BadRow with the reason."""
    get = {k: (cells.get(k) or "").strip() for k in (SURVEY_COLUMNS if kind == "surveys" else ACD_COLUMNS)}
    row: dict[str, Any] = {"call_id_given": get["call_id"] or None}
    row["customer_hash"] = None
    if get["customer"]:
        row["customer_hash"] = customer_hash(get["customer"], key)
        if row["customer_hash"] is None:
            raise BadRow("customer is neither a phone number nor an e-mail address")
    row["time"] = None
    if get["time"]:
        when = utc_start(get["time"])
        if when is None:
            raise BadRow(f"time {get['time']!r} is not an ISO 8601 date and time")
        row["time"] = when.isoformat()
    if not row["call_id_given"] and not (row["customer_hash"] and row["time"]):
        raise BadRow("neither call_id nor customer and time: nothing to match it to")
    if kind == "surveys":
        channel = get["channel"].lower()
        if channel and channel not in CHANNELS:
            raise BadRow(f"channel {get['channel']!r} is not one of {', '.join(CHANNELS)}")
        row["channel"] = channel or None
        row["csat"] = _number(get["csat"], "csat", 1, 5)
        row["nps"] = _number(get["nps"], "nps", 0, 10, whole=True)
        row["comment"] = get["comment"] or None
        if row["csat"] is None and row["nps"] is None and row["comment"] is None:
            raise BadRow("no csat, nps or comment")
    else:
        row["channel"] = "phone"
        for name in ("queue_s", "talk_s", "hold_s", "wrap_s"):
            row[name] = _number(get[name], name, 0)
        transfers = _number(get["transfers"], "transfers", 0, whole=True)
        row["transfers"] = int(transfers) if transfers is not None else None
        abandoned = get["abandoned"].lower()
        if abandoned in ("", "0", "1", "true", "false", "yes", "no"):
            row["abandoned"] = None if not abandoned else int(abandoned in ("1", "true", "yes"))
        else:
            raise BadRow(f"abandoned {get['abandoned']!r} is not 0 or 1")
        row["queue"] = get["queue"] or None
        row["agent_id"] = get["agent_id"] or None
    return row


def _row_hash(kind: str, row: dict[str, Any]) -> str:
    data = json.dumps([kind, sorted(row.items())], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _candidates(conn: sqlite3.Connection, customer: str) -> list[tuple[str, datetime, str]]:
    out = []
    for call_id, started, channel in conn.execute(
            "SELECT call_id, started_at, channel FROM interactions WHERE customer_hash = ? AND started_at IS NOT NULL",
            (customer,)):
        when = utc_start(started)
        if when is not None:
            out.append((call_id, when, channel))
    return out


def match(conn: sqlite3.Connection, call_id: str | None, customer: str | None, time: str | None,
          tolerance_s: float, channel: str | None = None) -> tuple[str | None, str | None]:
    """(call id, how: ``call_id`` / ``customer_time``) of the interaction a row is about, or
    (None, None); see the module docstring."""
    if call_id and conn.execute("SELECT 1 FROM interactions WHERE call_id = ?", (call_id,)).fetchone():
        return call_id, "call_id"
    when = utc_start(time)
    if not customer or when is None:
        return None, None
    wanted = CHANNELS.get(channel or "")
    best: tuple[float, datetime, str] | None = None
    for cid, started, ch in _candidates(conn, customer):
        if wanted and ch != wanted:
            continue
        gap = abs((started - when).total_seconds())
        if gap <= tolerance_s:
            key = (gap, started, cid)
            if best is None or key < best:
                best = key
    return (best[2], "customer_time") if best else (None, None)


def rematch(store: InsightStore, options: InsightsOptions) -> dict[str, int]:
    """Match again the rows of both tables that match no interaction (never matched, or whose
    interaction is gone from the store): {kind: rows matched now}."""
    conn = store.conn
    ensure_tables(conn)
    done: dict[str, int] = {}
    for kind in KINDS:
        rows = conn.execute(
            f"SELECT row_hash, call_id_given, customer_hash, time, channel FROM {kind} "
            "WHERE call_id IS NULL OR call_id NOT IN (SELECT call_id FROM interactions)").fetchall()
        found = 0
        for row_hash, given, customer, time, channel in rows:
            call_id, how = match(conn, given, customer, time, options.match_tolerance_s,
                                 channel if kind == "surveys" else None)
            conn.execute(f"UPDATE {kind} SET call_id = ?, matched_by = ? WHERE row_hash = ?", (call_id, how, row_hash))
            found += call_id is not None
        done[kind] = found
    conn.commit()
    return done


def unmatched_count(conn: sqlite3.Connection, kind: str) -> int:
    ensure_tables(conn)
    return int(conn.execute(f"SELECT COUNT(*) FROM {kind} WHERE call_id IS NULL").fetchone()[0])


def import_file(store: InsightStore, out_dir: str | Path, kind: str, path: str | Path, options: InsightsOptions,
                write_report: bool = True) -> ImportReport:
    """Import survey (``kind="surveys"``) or ACD (``"acd"``) file ``path`` into ``store``: rows
    matched, stored once, bad and unmatched ones reported (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    path = Path(path)
    columns = SURVEY_COLUMNS if kind == "surveys" else ACD_COLUMNS
    report = ImportReport(kind, str(path))
    conn = store.conn
    ensure_tables(conn)
    # earlier rows first, so that a new call matches their rows too
    report.rematched = sum(rematch(store, options).values())
    key = load_key(out_dir)
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ImportFileError(f"{path}: cannot read the {kind} file: {e.strerror or e}") from e
    imported_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    with f:
        try:
            reader = csv.DictReader(f)
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
        except (csv.Error, UnicodeDecodeError) as e:
            raise ImportFileError(f"{path}: not a readable CSV file: {e}") from e
        if not header:
            raise ImportFileError(f"{path}: empty file (a header row is needed: {', '.join(columns)})")
        reader.fieldnames = header
        if not set(header) & set(columns):
            raise ImportFileError(f"{path}: none of the {kind} columns in the header; expected some of "
                                  f"{', '.join(columns)}")
        needed = ("csat", "nps", "comment") if kind == "surveys" else ()
        if needed and not set(header) & set(needed):
            raise ImportFileError(f"{path}: no csat, nps or comment column")
        if "call_id" not in header and not {"customer", "time"} <= set(header):
            raise ImportFileError(f"{path}: a call_id column, or customer and time columns, are needed to match rows")
        report.ignored_columns = [h for h in header if h not in columns]
        seen: set[str] = set()
        try:
            for number, cells in enumerate(reader, start=2):
                report.rows += 1
                if None in cells:  # more cells than the header has names
                    report.bad.append({"row": number, "reason": f"{len(header) + len(cells[None])} cells, the "
                                                                f"header has {len(header)}"})
                    continue
                try:
                    row = _parse(kind, cells, key)
                except BadRow as e:
                    report.bad.append({"row": number, "reason": str(e)})
                    continue
                row_hash = _row_hash(kind, row)
                if row_hash in seen or conn.execute(f"SELECT 1 FROM {kind} WHERE row_hash = ?",
                                                    (row_hash,)).fetchone():
                    report.duplicates.append(number)
                    continue
                seen.add(row_hash)
                call_id, how = match(conn, row["call_id_given"], row["customer_hash"], row["time"],
                                     options.match_tolerance_s, row["channel"] if kind == "surveys" else None)
                if how == "call_id":
                    report.matched_by_call_id += 1
                elif how:
                    report.matched_by_customer += 1
                else:
                    report.unmatched.append(number)
                values = {"row_hash": row_hash, "file": path.name, "source_row": number, "call_id": call_id,
                          "matched_by": how, "imported_at": imported_at, **row}
                names = list(values)
                conn.execute(f"INSERT INTO {kind} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                             [values[n] for n in names])
                report.added += 1
        except (csv.Error, UnicodeDecodeError) as e:
            conn.rollback()
            raise ImportFileError(f"{path}: not a readable CSV file (row {report.rows + 1}): {e}") from e
    conn.commit()
    report.still_unmatched = unmatched_count(conn, kind)
    if write_report:
        target = Path(out_dir) / REPORT_DIR / f"{kind}-{path.stem}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        report.report_file = str(target)
        write_json(target, report.to_dict())
    return report


def survey_rows(conn: sqlite3.Connection, call_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """The matched survey rows (of ``call_ids`` when given), in order of call id and row."""
    ensure_tables(conn)
    cur = conn.execute("SELECT call_id, csat, nps, comment, time, source_row FROM surveys WHERE call_id IS NOT NULL "
                       "ORDER BY call_id, file, source_row")
    names = ("call_id", "csat", "nps", "comment", "time", "source_row")
    return [dict(zip(names, r)) for r in cur if call_ids is None or r[0] in call_ids]


def acd_rows(conn: sqlite3.Connection, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    """ACD rows whose time (or, without one, whose matched call's start) falls in [start, end)
    (ISO days), each with the matched call's team (None when unmatched)."""
    ensure_tables(conn)
    names = ("call_id", "time", "queue", "queue_s", "talk_s", "hold_s", "wrap_s", "transfers", "abandoned",
             "agent_id", "team", "started_at")
    where, args = [], []
    if start:  # times are UTC ISO texts: a day compares as their prefix
        where.append("(a.time IS NULL OR a.time >= ?)")
        args.append(start[:10])
    if end:
        where.append("(a.time IS NULL OR a.time < ?)")
        args.append(end[:10])
    cur = conn.execute("SELECT a.call_id, a.time, a.queue, a.queue_s, a.talk_s, a.hold_s, a.wrap_s, a.transfers, "
                       "a.abandoned, a.agent_id, i.team, i.started_at FROM acd a "
                       "LEFT JOIN interactions i ON i.call_id = a.call_id "
                       f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY a.time, a.file, a.source_row",
                       args)
    out = []
    for r in cur:
        row = dict(zip(names, r))
        day = (row["time"] or row["started_at"] or "")[:10]
        if not day or (start and day < start[:10]) or (end and day >= end[:10]):
            continue
        out.append(row)
    return out
