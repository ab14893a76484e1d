"""Loading a run's results into the review database, idempotently.

For every finished call of ``OUT/calls/*/call.json`` the call row and its automatic item
suggestions are inserted or updated; a call whose call.json is unchanged (same content hash) is
left as it is. Reviews and reviewers' answers are never written here: a re-run of the pipeline
updates the suggestions and keeps every human answer (and the suggestion it was given against).
The call's interaction block (call.json ``contact``) is kept in ``calls.contact``; a
reviewer's correction of it lives in its own table and stays through every load.
Failed calls are not loaded; a call gone from the run is kept (its reviews may matter), and so
is a call.json whose ``call_id`` is not its folder's name (skipped). Each call also gets the
run's input roots (``run.json``) and whether its text is redacted, which decide what audio
the web app may play (pipeline/review/app.py).

Speed (a run of 100,000 calls): the table's ``(call_id, result_sha256)`` pairs are read in one
query; a call.json whose hash is the one loaded before is not even parsed; a large run's files
are read, hashed and parsed by forked processes (:data:`PARALLEL_FROM`), in order and only a
few tasks ahead; new and changed calls are written :data:`BATCH` at a time, the rows of a batch
sent as one JSON array to one INSERT per table (:func:`_insert`), changed calls by one
executemany UPDATE (their items deleted and inserted again, and the counted columns of the
reviewed ones refreshed). Only the batch in hand is kept in memory, and the garbage collector
is paused meanwhile (a load makes millions of objects and no reference cycles).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import multiprocessing
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from contextlib import closing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Table, bindparam, delete, insert, inspect, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.interaction.record import AUDIO_SOURCES, RECORD_FILE, Interaction, RecordError
from pipeline.review import tallies
from pipeline.review.db import CHANNELS, WRITTEN_CHANNELS, Call, CallItem, Review, utcnow
from pipeline.review.history import refresh_counted

log = logging.getLogger("callqa")


@dataclass
class LoadCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Failed or unreadable call.json files (not loaded)."""

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "skipped": self.skipped}


def run_input_roots(out_dir: Path) -> list[str] | None:
    """The input roots ``run.json`` recorded (absolute folders), None when it recorded none."""
    try:
        roots = json.loads((out_dir / "run.json").read_text(encoding="utf-8")).get("input_roots")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(roots, list) or not all(isinstance(r, str) and Path(r).is_absolute() for r in roots):
        return None
    return roots or None


def _pii_redacted(record: Interaction) -> bool | None:
    return bool(record.pii.get("redacted")) if isinstance(record.pii, dict) else None


def _channel(record: Interaction) -> str:
    """The record's contact channel (ValueError for one the review app does not know)."""
    if record.channel not in CHANNELS:
        raise ValueError(f"channel {record.channel!r} is not one of {', '.join(CHANNELS)}")
    return record.channel


def _messages(record: Interaction) -> int | None:
    """A written conversation's number of messages (its ``messages`` list, else what its
    source says); None for a call."""
    if record.channel not in WRITTEN_CHANNELS:
        return None
    listed = record.extra.get("messages")
    if isinstance(listed, list):
        return len(listed)
    said = record.source.extra.get("messages")
    return said if isinstance(said, int) and not isinstance(said, bool) and said >= 0 else None


def _call_fields(record: Interaction, out_dir: Path, sha: str) -> dict[str, Any]:
    """The call row's columns from its record (``out_dir``: the run folder, absolute). A
    written conversation (an e-mail thread, a chat) loads as a call does, with its channel and
    number of messages and no audio."""
    meta = record.metadata
    card = record.scorecard or {}
    score = card.get("score") or {}
    template = card.get("template") or {}
    return {
        "out_dir": str(out_dir),
        "agent_id": record.agent_id,
        "queue": meta.get("queue") or None,
        "started_at": record.started_at,
        "channel": _channel(record),
        "duration_s": record.source.duration_s,
        "channels": record.source.channels,
        "messages": _messages(record),
        "score": score.get("normalized"),
        "auto_fail": bool(score.get("auto_fail")),
        "low_confidence_items": sum(1 for i in record.items if i.get("confidence", 1.0) < 0.6),
        "customer_sentiment_end": (record.sentiment or {}).get("customer_end"),
        "template": f"{template.get('name')} {template.get('version')}" if template else None,
        "config_hash": record.config_hash,
        "result_sha256": sha,
        "metadata_json": meta,
        "audio_path": _audio_path(record, out_dir),
        "pii_redacted": _pii_redacted(record),
        "contact": _contact(record),
    }


def _contact(record: Interaction) -> dict[str, Any] | None:
    """The record's interaction block (``contact``), None when it has none (or not an object).
    A reviewer's correction of it is never touched here (pipeline/review/contact.py)."""
    block = record.contact
    return block if isinstance(block, dict) else None


def _audio_path(record: Interaction, out_dir: Path) -> str | None:
    """The recording the run read, absolute (a relative one is taken from the loader's folder,
    then from the run folder's parent); None for a source without audio."""
    raw = record.source.path
    if not raw or record.source.kind not in AUDIO_SOURCES:
        return None
    path = Path(raw)
    if not path.is_absolute():
        path = next((c for c in (Path.cwd() / path, out_dir.parent / path) if c.is_file()), Path.cwd() / path)
    return str(path)


BATCH = 1000
"""Calls written per round of statements (new and changed calls together)."""
ID_CHUNK = 500
"""Call ids per ``IN (...)`` list (well under SQLite's and PostgreSQL's parameter limits)."""
PARALLEL_FROM = 2000
"""Call folders from which a run's files are read, hashed and parsed by :data:`WORKERS`
processes (fewer: in this one)."""
WORKERS = 8
"""At most this many reading processes (and no more than the CPUs)."""
TASK_FILES = 250
"""Files per task given to a reading process."""

_CALLS = Call.__table__
_ITEMS = CallItem.__table__
CALL_COLUMNS = ("call_id", "out_dir", "agent_id", "queue", "started_at", "channel", "duration_s", "channels",
                "messages", "score",
                "auto_fail", "low_confidence_items", "customer_sentiment_end", "template", "config_hash",
                "result_sha256", "metadata_json", "audio_path", "pii_redacted", "input_roots", "contact", "loaded_at")
"""The columns a load writes of a call (the counted ones are :func:`refresh_counted`'s)."""
ITEM_COLUMNS = ("call_id", "item_id", "position", "section", "question", "answer", "confidence", "points",
                "auto_fail", "looked_for", "evidence", "human_answer")
_UPDATE_CALL = (update(_CALLS).where(_CALLS.c.call_id == bindparam("b_call_id"))
                .values({name: bindparam(f"b_{name}") for name in CALL_COLUMNS[1:]}))
"""One executemany UPDATE for the changed calls of a batch (bind names prefixed: a bind
parameter may not share a column's name in an UPDATE's SET)."""


def _item_rows(call_id: str, items: Any) -> list[dict[str, Any]]:
    """The call_items rows of a call's scorecard items (KeyError, TypeError or ValueError for a
    malformed item, or an item id given twice)."""
    if not isinstance(items, list):
        raise TypeError("scorecard items is not a list")
    rows = []
    for position, item in enumerate(items):
        rows.append({
            "call_id": call_id, "item_id": item["id"], "position": position, "section": item.get("section"),
            "question": item.get("question", ""), "answer": item["answer"],
            "confidence": float(item.get("confidence", 0.0)), "points": float(item.get("points", 0.0)),
            "auto_fail": bool(item.get("auto_fail")), "looked_for": item.get("looked_for"),
            "evidence": item.get("evidence") or [], "human_answer": None,
        })
    if len({r["item_id"] for r in rows}) != len(rows):
        raise ValueError("an item id is given twice")
    return rows


# -- reading the run (in reading processes for a large run) -----------------------------------------

def _read_call(call_id: str, path: str, known_sha: str | None, out_dir: Path,
               roots: list[str] | None) -> tuple[Any, ...]:
    """What one call.json gives: ``("missing",)`` (no file: not a call), ``("skipped", why)``
    (``why`` None for a call that failed), ``("unchanged",)`` (the bytes hash to
    ``known_sha``: not parsed), or ``("loaded", call, items, strict)``: the call's row (without
    ``loaded_at``) as a JSON object, its items' rows as JSON objects joined by commas, and
    whether that is strict JSON (False: a NaN or an infinity in it, which only Python reads)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return ("missing",)
    except OSError as e:
        return ("skipped", str(e))
    sha = hashlib.sha256(raw).hexdigest()
    if sha == known_sha:  # loaded before from these very bytes
        return ("unchanged",)
    try:
        record = Interaction.from_dict(json.loads(raw), path)
    except (ValueError, RecordError) as e:
        return ("skipped", str(e))
    if not record.ok:
        return ("skipped", None)
    if record.call_id != call_id:
        return ("skipped", f"its call_id {record.call_id!r} is not its folder's name")
    try:
        row = {"call_id": call_id, **_call_fields(record, out_dir, sha), "input_roots": roots}
        items = _item_rows(call_id, record.items)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return ("skipped", f"malformed results ({type(e).__name__}: {e})")
    try:
        return ("loaded", json.dumps(row, allow_nan=False), json.dumps(items, allow_nan=False)[1:-1], True)
    except ValueError:
        return ("loaded", json.dumps(row), json.dumps(items)[1:-1], False)


def _read_calls(tasks: list[tuple[str, str, str | None]], out_dir: Path,
                roots: list[str] | None) -> list[tuple[Any, ...]]:
    """:func:`_read_call` of each (call_id, path, known sha): one task of a reading process."""
    return [_read_call(call_id, path, sha, out_dir, roots) for call_id, path, sha in tasks]


def _single_threaded() -> bool:
    return threading.active_count() == 1


def _reader_pool(files: int) -> tuple[ProcessPoolExecutor, int] | None:
    """Reading processes for a run of ``files`` call folders, and how many; None: read here (a
    small run, one CPU, no fork, or other threads running here).

    They are forked: a forked process needs no import of the caller's main module (which a
    spawned one runs again), and a reader only reads files, hashes and parses them. A process
    running other threads (a web server, say) is not forked, as a fork copies the locks those
    threads may hold."""
    workers = min(WORKERS, os.cpu_count() or 1)
    if files < PARALLEL_FROM or workers < 2 or not _single_threaded() or \
            "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")), workers
    except OSError as e:
        log.info("reading call.json files in one process: %s", e)
        return None


def _read_run(calls_dir: Path, known: dict[str, _Known], out_dir: Path, roots: list[str] | None,
              call_ids: Collection[str] | None = None) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """(call_id, path, :func:`_read_call` result) for every folder of ``calls_dir`` (or of
    ``call_ids`` only), in the order of their names; by reading processes for a large run (each a
    few tasks ahead, no more, so that memory stays bounded)."""
    if call_ids is not None:
        names = sorted(n for n in set(call_ids) if n and "/" not in n and n not in (".", "..")
                       and (calls_dir / n).is_dir())
    else:
        with os.scandir(calls_dir) as entries:
            names = sorted(e.name for e in entries if e.is_dir())
    tasks = [(name, str(calls_dir / name / RECORD_FILE), known[name].sha if name in known else None)
             for name in names]
    readers = _reader_pool(len(tasks))
    if readers is None:
        for task in tasks:
            yield task[0], task[1], _read_call(*task, out_dir, roots)
        return
    pool, workers = readers
    try:
        chunks = (tasks[i:i + TASK_FILES] for i in range(0, len(tasks), TASK_FILES))
        pending: deque[tuple[list[tuple[str, str, str | None]], Future]] = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(_read_calls, chunk, out_dir, roots)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            chunk, future = pending.popleft()
            results = future.result()
            following = next(chunks, None)
            if following is not None:
                pending.append((following, pool.submit(_read_calls, following, out_dir, roots)))
            for task, result in zip(chunk, results):
                yield task[0], task[1], result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- writing ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Known:
    """What the table holds of a call before the load."""

    sha: str
    input_roots: Any
    counted: bool
    """It has a counted review (so its counted columns must follow new suggestions)."""


@dataclass
class _Batch:
    """New and changed calls waiting to be written (at most :data:`BATCH` of them), as
    :func:`_read_call` gives them."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    strict: bool = True

    def __len__(self) -> int:
        return len(self.new) + len(self.changed)


def _chunks(values: Sequence[str], size: int = ID_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _known_calls(session: Session) -> dict[str, _Known]:
    """Every call of the table, in one query."""
    query = select(Call.call_id, Call.result_sha256, Call.input_roots, Call.counted_review_id)
    return {call_id: _Known(sha, roots, counted is not None) for call_id, sha, roots, counted in session.execute(query)}


def _forget(session: Session, call_ids: set[str]) -> None:
    """Drop what the session's identity map holds of ``call_ids`` (their rows were rewritten
    below the ORM): the calls are expired (read again when used), their old items expunged."""
    if not call_ids or not len(session.identity_map):
        return
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Call) and inspect(obj).identity[0] in call_ids:
            session.expire(obj)
        elif isinstance(obj, CallItem) and inspect(obj).dict.get("call_id") in call_ids:
            session.expunge(obj)


@lru_cache(maxsize=None)
def _bulk_insert_sql(table: Table, dialect: str) -> str | None:
    """An INSERT of the rows of a JSON array of objects (the bind parameter ``rows``) into
    ``table`` (its :data:`CALL_COLUMNS` or :data:`ITEM_COLUMNS`), for ``dialect``; None where
    there is none."""
    columns = CALL_COLUMNS if table is _CALLS else ITEM_COLUMNS
    names = ", ".join(columns)
    if dialect == "postgresql":
        return (f"INSERT INTO {table.name} ({names}) SELECT {names} "
                f"FROM json_populate_recordset(NULL::{table.name}, CAST(:rows AS json))")
    if dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 38):  # its -> and ->> operators
        values = ", ".join(f"value {'->' if isinstance(table.c[c].type, JSON) else '->>'} '$.{c}'" for c in columns)
        return f"INSERT INTO {table.name} ({names}) SELECT {values} FROM json_each(:rows)"
    return None


def _stamp_json(stamp: datetime, dialect: Dialect) -> str:
    """``loaded_at`` as the column type writes it to this database, as a JSON value."""
    process = _CALLS.c.loaded_at.type.dialect_impl(dialect).bind_processor(dialect)
    return json.dumps(process(stamp) if process is not None else stamp.isoformat())


def _insert(session: Session, table: Table, objects: list[str], strict: bool, stamp: datetime | None = None) -> None:
    """Insert the rows given as JSON objects (each text may hold several, joined by commas),
    with ``loaded_at`` ``stamp`` when given. The rows go as one JSON array to one INSERT that
    the database reads (PostgreSQL's ``json_populate_recordset``, SQLite's ``json_each``): an
    executemany INSERT costs SQLAlchemy's processing of every row's parameters and, with
    psycopg, one statement per row, many times slower for the million items of a large run.
    Where that is not possible (an older SQLite, another database, or a NaN, which JSON does
    not carry), an executemany INSERT."""
    objects = [o for o in objects if o]
    if not objects:
        return
    dialect = session.get_bind().dialect
    sql = _bulk_insert_sql(table, dialect.name) if strict else None
    if sql is not None:
        if stamp is not None:
            head = f'{{"loaded_at": {_stamp_json(stamp, dialect)}, '
            objects = [head + o[1:] for o in objects]
        session.execute(text(sql), {"rows": "[" + ",".join(objects) + "]"})
        return
    rows = json.loads("[" + ",".join(objects) + "]")
    if stamp is not None:
        for row in rows:
            row["loaded_at"] = stamp
    session.execute(insert(table), rows)


def _write(session: Session, batch: _Batch) -> None:
    """Write a batch: new calls inserted; changed calls updated, their items deleted; then the
    items of both inserted."""
    if not len(batch):
        return
    stamp = utcnow()
    _insert(session, _CALLS, batch.new, batch.strict, stamp)
    if batch.changed:
        rows = [json.loads(o) for o in batch.changed]
        session.execute(_UPDATE_CALL, [{"b_loaded_at": stamp, **{f"b_{k}": v for k, v in row.items()}}
                                       for row in rows])
        ids = [row["call_id"] for row in rows]
        for chunk in _chunks(ids):
            session.execute(delete(_ITEMS).where(_ITEMS.c.call_id.in_(chunk)))
        _forget(session, set(ids))
    _insert(session, _ITEMS, batch.items, batch.strict)
    batch.new.clear()
    batch.changed.clear()
    batch.items.clear()
    batch.strict = True


# -- the load ---------------------------------------------------------------------------------------

def load_results(session: Session, out_dir: str | Path, call_ids: Collection[str] | None = None) -> LoadCounts:
    """Load every finished call of the run folder ``out_dir`` (see the module docstring), or
    only those of ``call_ids`` (a live server loads each call it ran, not the whole folder)."""
    out = Path(out_dir)
    calls_dir = out / "calls"
    if not calls_dir.is_dir():
        raise InputError(f"{out}: not a callqa output folder (no calls/ in it)")
    roots = run_input_roots(out)
    session.flush()  # what the caller added is in the table before it is read and written below the ORM
    known = _known_calls(session)
    collecting = gc.isenabled()
    gc.disable()  # see the module docstring
    try:
        counts, updated, other_roots = _load(session, calls_dir, known, out.resolve(), roots, call_ids)
    finally:
        if collecting:
            gc.enable()
    for chunk in _chunks(other_roots):  # the run's roots, also for rows loaded before they were kept
        session.execute(update(Call).where(Call.call_id.in_(chunk)).values(input_roots=roots)
                        .execution_options(synchronize_session="evaluate"))
    _refresh_reviewed(session, updated, known)
    return counts


TALLY_REBUILD_FROM = 20_000
"""From this many new or changed calls in one load, every item tally is computed again in one
statement rather than day by day."""


def _load(session: Session, calls_dir: Path, known: dict[str, _Known], out_dir: Path,
          roots: list[str] | None, call_ids: Collection[str] | None) -> tuple[LoadCounts, list[str], list[str]]:
    """Read the run and write its new and changed calls: the counts, the calls updated, and the
    unchanged calls whose input roots are not the run's."""
    counts = LoadCounts()
    added: list[str] = []
    updated: list[str] = []
    other_roots: list[str] = []
    batch = _Batch()
    with closing(_read_run(calls_dir, known, out_dir, roots, call_ids)) as results:  # readers stopped on a failure here
        for call_id, path, result in results:
            kind = result[0]
            if kind == "missing":  # a folder without a call.json
                continue
            if kind == "skipped":
                if result[1] is not None:
                    log.warning("%s: not loaded: %s", path, result[1])
                counts.skipped += 1
                continue
            if kind == "unchanged":
                counts.unchanged += 1
                if known[call_id].input_roots != roots:
                    other_roots.append(call_id)
                continue
            _, call, items, strict = result
            if call_id not in known:
                batch.new.append(call)
                counts.added += 1
                added.append(call_id)
            else:
                batch.changed.append(call)
                counts.updated += 1
                updated.append(call_id)
            batch.items.append(items)
            batch.strict = batch.strict and strict
            if len(batch) >= BATCH:
                _write(session, batch)
    _write(session, batch)
    if added or updated:  # the item tallies of their days (a first load of a year: all of them, at once)
        if len(added) + len(updated) > TALLY_REBUILD_FROM:
            tallies.rebuild(session)
        else:
            tallies.refresh(session, added + updated)
    return counts, updated, other_roots


def _refresh_reviewed(session: Session, updated: list[str], known: dict[str, _Known]) -> None:
    """New suggestions change what a reviewed call's score stands on: refresh the counted
    columns of the updated calls that have a counted or a submitted review. (The others have
    none to refresh: their items were written without a human answer and they count no review.)"""
    if not updated:
        return
    submitted = set(session.scalars(select(Review.call_id).where(Review.state == "submitted").distinct()))
    refresh_counted(session, [c for c in updated if known[c].counted or c in submitted])
