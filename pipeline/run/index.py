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
is rebuilt as calls are recorded). Only a file SQLite says is not a database, or is corrupt,
is replaced; one that cannot be written (a full disk) is kept as it is and the run stops with
:class:`~pipeline.errors.DiskFullError`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import DiskFullError

log = logging.getLogger("callqa")

INDEX_FILE = ".callqa-index.sqlite"
SCHEMA = 1

_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 10, 11, 13, 26
LOW_SPACE_BYTES = 1 << 20
"""Free space below which an SQLite I/O error is taken for a full disk (SQLite reports a
failed write of its shared-memory or WAL file as a plain "disk I/O error")."""


def _code(error: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error (None when the driver gives none)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_unreadable(error: sqlite3.Error) -> bool:
    """The file is not an SQLite database or is damaged (not: full disk, locked, I/O error)."""
    return _code(error) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


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
            self.db = self._guarded(self._open)
        except sqlite3.DatabaseError as e:
            if not is_unreadable(e):
                raise
            log.warning("%s: unreadable (%s); starting a new index", self.path, e)
            for suffix in ("", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self.db = self._guarded(self._open)

    def _guarded(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, with SQLite's "database or disk is full" (or an I/O error on a disk
        with almost no space left) raised as DiskFullError."""
        try:
            return fn(*args)
        except sqlite3.OperationalError as e:
            if _code(e) == _SQLITE_FULL or (_code(e) == _SQLITE_IOERR and self._low_space()):
                raise DiskFullError(self.path, str(e)) from e
            raise

    def _low_space(self) -> bool:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < LOW_SPACE_BYTES

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        try:
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
        except BaseException:
            db.close()
            raise
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
        self._guarded(self.db.execute, "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (
            entry.call_id, entry.path, entry.size, entry.mtime_ns, entry.sha256, entry.status, entry.config_hash,
            entry.override, json.dumps(entry.row, ensure_ascii=False, default=str)))

    def commit(self) -> None:
        self._guarded(self.db.commit)

    def close(self) -> None:
        """Commit and close; the connection is closed even when the commit fails (a full
        disk: the uncommitted entries are lost, the index stays as last committed)."""
        try:
            self.commit()
        finally:
            self.db.close()
