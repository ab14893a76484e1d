"""A small index of processed calls (``OUT/.callqa-index.sqlite``), so that the incremental
check over a large archive takes seconds.

Without it, every run hashes every recording (reading the whole archive) and reads every call's
``call.json`` to decide what is done. The index keeps, per call: the recording's path, size and
modification time with its sha256 (a recording whose size and mtime are unchanged is not read
again, as ``make`` and ``rsync`` decide; ``run.rehash: true`` hashes every recording anyway),
the status, config hash and manual override of its result, and its summary.csv row. A call
whose recording, config and override match an ``ok`` entry, and whose call.json is still
there, is skipped without opening any of its files.

The index is a cache of what ``calls/*/call.json`` say: removing it costs one slower run (it
is rebuilt as calls are recorded); an unreadable one is replaced.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("callqa")

INDEX_FILE = ".callqa-index.sqlite"
SCHEMA = 1


@dataclass
class IndexEntry:
    call_id: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str
    config_hash: str
    override: str | None
    row: dict[str, Any]


class RunIndex:
    """The index of an output folder; ``commit`` makes recorded entries durable."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / INDEX_FILE
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as e:
            log.warning("%s: unreadable (%s); starting a new index", self.path, e)
            self.path.unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is not None and int(version[0]) != SCHEMA:
            db.execute("DROP TABLE IF EXISTS calls")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        db.execute("""CREATE TABLE IF NOT EXISTS calls (
            call_id TEXT PRIMARY KEY, path TEXT, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
            status TEXT, config_hash TEXT, override TEXT, row TEXT)""")
        db.commit()
        return db

    def get(self, call_id: str) -> IndexEntry | None:
        r = self.db.execute("SELECT call_id, path, size, mtime_ns, sha256, status, config_hash, override, row "
                            "FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if r is None:
            return None
        try:
            row = json.loads(r[8]) if r[8] else {}
        except ValueError:
            row = {}
        return IndexEntry(*r[:8], row=row)

    def put(self, entry: IndexEntry) -> None:
        self.db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (
            entry.call_id, entry.path, entry.size, entry.mtime_ns, entry.sha256, entry.status, entry.config_hash,
            entry.override, json.dumps(entry.row, ensure_ascii=False, default=str)))

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()
