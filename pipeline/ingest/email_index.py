"""An on-disk index of scanned e-mail messages, for threading archives of any size.

:func:`pipeline.ingest.email.scan_email_files` keeps an :class:`~pipeline.ingest.email.EmailRef`
per message (about 1.7 KB each with its strings, date and tuples): a 1 GB mbox of 870,000 small
messages held 1.5 GB. :class:`EmailIndex` writes what threading needs of each message to a
SQLite file instead (a temporary file, under a scratch folder when one is given, deleted when
the index is closed), interns its message-ids, subjects and addresses in a table of strings, and
hands threading integer columns (:class:`~pipeline.ingest.email._Columns`): about 100 bytes per
message, released once the threads are built. Strings are stored as UTF-8 bytes (with any lone
surrogate kept), paths never: they stay in Python, where their order is Python's.

Tables: ``m`` (a row per message, ``seq`` its scan order), ``link`` (its References, ``pos`` their
order), ``rcpt`` (its To and Cc addresses), ``s`` (the interned strings, ids from 1), ``k`` (the
threading order: file, offset, scan order).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

import numpy as np

from pipeline.ingest.email import (
    _EPOCH, _MICROSECOND, _NO_DATE, EmailRef, EmailThreadRef, _Columns, _thread_columns, iter_email_files,
)
from pipeline.ingest.written import WrittenInputError

BATCH = 2000
"""Messages written to the index, and rows read back, at a time."""
CACHE_KB = 8 * 1024
"""SQLite's page cache (its only memory that grows with the index, capped here)."""

_SCHEMA = """
CREATE TABLE m (seq INTEGER PRIMARY KEY, path INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
                num INTEGER NOT NULL, sha BLOB NOT NULL, mid BLOB, irt BLOB, subj BLOB, date INTEGER, frm BLOB,
                auto INTEGER NOT NULL);
CREATE TABLE link (seq INTEGER NOT NULL, pos INTEGER NOT NULL, v BLOB NOT NULL);
CREATE TABLE rcpt (seq INTEGER NOT NULL, pos INTEGER NOT NULL, v BLOB NOT NULL);
CREATE TABLE s (id INTEGER PRIMARY KEY, v BLOB NOT NULL UNIQUE);
CREATE TABLE k (k INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
"""


def _blob(value: str | None) -> bytes | None:
    """A string as the index keeps it (None for none or empty)."""
    return value.encode("utf-8", "surrogatepass") if value else None


def _micros(date: datetime | None) -> int | None:
    return None if date is None else (date - _EPOCH) // _MICROSECOND


class EmailIndex:
    """The threading fields of scanned messages in a temporary SQLite file (see the module
    docstring). Use as a context manager: the file is deleted on leaving it."""

    def __init__(self, folder: Path | None = None):
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="callqa-email-", suffix=".sqlite", dir=folder)
        os.close(fd)
        self.path = Path(name)
        self.paths: list[str] = []
        self._rank: dict[str, int] = {}
        self.db = sqlite3.connect(name)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KB}",
                       "temp_store = FILE", "locking_mode = EXCLUSIVE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(_SCHEMA)
        self._count = 0

    def __enter__(self) -> EmailIndex:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the database and delete its file."""
        self.db.close()
        self.path.unlink(missing_ok=True)

    def add_files(self, paths: Sequence[Path], errors: list[WrittenInputError]) -> None:
        """Scan ``paths`` (:func:`~pipeline.ingest.email.iter_email_files`) into the index; what
        is not e-mail goes to ``errors``, in scan order. Call once."""
        self.paths = sorted({str(p) for p in paths})
        self._rank = {p: i for i, p in enumerate(self.paths)}
        rows: list[tuple] = []
        links: list[tuple[int, int, bytes]] = []
        rcpts: list[tuple[int, int, bytes]] = []
        for found in iter_email_files(paths):
            if not isinstance(found, EmailRef):
                errors.append(found)
                continue
            self._count += 1
            rows.append(self._row(self._count, found))
            links.extend((self._count, i, _blob(x)) for i, x in enumerate(found.references))  # type: ignore[misc]
            rcpts.extend((self._count, i, _blob(x)) for i, x in enumerate(found.to_addrs))  # type: ignore[misc]
            if len(rows) >= BATCH:
                self._write(rows, links, rcpts)
        self._write(rows, links, rcpts)
        self.db.commit()

    def _row(self, seq: int, r: EmailRef) -> tuple:
        return (seq, self._rank[r.path], r.offset, r.length, r.number or 0, bytes.fromhex(r.sha256),
                _blob(r.message_id), _blob(r.in_reply_to), _blob(r.subject), _micros(r.date), _blob(r.from_addr),
                int(r.auto_reply))

    def _write(self, rows: list[tuple], links: list[tuple[int, int, bytes]], rcpts: list[tuple[int, int, bytes]]) -> None:
        self.db.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.executemany("INSERT INTO link VALUES (?, ?, ?)", links)
        self.db.executemany("INSERT INTO rcpt VALUES (?, ?, ?)", rcpts)
        rows.clear()
        links.clear()
        rcpts.clear()

    def text(self, string_id: int) -> str:
        """The string of an interned id."""
        (value,) = self.db.execute("SELECT v FROM s WHERE id = ?", (string_id,)).fetchone()
        return bytes(value).decode("utf-8", "surrogatepass")

    def columns(self) -> _Columns:
        """The indexed messages as threading's integer columns, in threading order (file, offset,
        scan order), their strings interned (ids from 1; 0: none)."""
        db = self.db
        db.executescript("""
            INSERT INTO s (v) SELECT v FROM (
                SELECT mid AS v FROM m UNION SELECT irt FROM m UNION SELECT subj FROM m UNION SELECT frm FROM m
                UNION SELECT v FROM link UNION SELECT v FROM rcpt) WHERE v IS NOT NULL ORDER BY v;
            INSERT INTO k (seq) SELECT seq FROM m ORDER BY path, off, seq;
            CREATE INDEX link_seq ON link (seq, pos);
            CREATE INDEX rcpt_seq ON rcpt (seq, pos);
        """)
        (strings,) = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM s").fetchone()
        n = self._count
        path = np.empty(n, np.int32)
        offset = np.empty(n, np.int64)
        length = np.empty(n, np.int64)
        number = np.empty(n, np.int32)
        sha = np.empty((n, 32), np.uint8)
        message_id = np.empty(n, np.int32)
        in_reply_to = np.empty(n, np.int32)
        subject = np.empty(n, np.int32)
        date = np.empty(n, np.int64)
        sender = np.empty(n, np.int32)
        auto_reply = np.empty(n, bool)
        rows = db.execute("""
            SELECT m.path, m.off, m.len, m.num, m.sha, COALESCE(a.id, 0), COALESCE(b.id, 0), COALESCE(c.id, 0),
                   COALESCE(m.date, ?), COALESCE(d.id, 0), m.auto
            FROM k JOIN m ON m.seq = k.seq
            LEFT JOIN s a ON a.v = m.mid LEFT JOIN s b ON b.v = m.irt LEFT JOIN s c ON c.v = m.subj
            LEFT JOIN s d ON d.v = m.frm
            ORDER BY k.k""", (_NO_DATE,))
        at = 0
        for chunk in _chunks(rows):
            end = at + len(chunk)
            cols = list(zip(*chunk))
            path[at:end], offset[at:end], length[at:end], number[at:end] = cols[0], cols[1], cols[2], cols[3]
            sha[at:end] = np.frombuffer(b"".join(cols[4]), np.uint8).reshape(-1, 32)
            message_id[at:end], in_reply_to[at:end], subject[at:end] = cols[5], cols[6], cols[7]
            date[at:end], sender[at:end], auto_reply[at:end] = cols[8], cols[9], cols[10]
            at = end
        ref_start, ref_ids = self._lists("link", n)
        to_start, to_ids = self._lists("rcpt", n)
        db.execute("PRAGMA shrink_memory")  # threading looks up only the few strings its notes quote
        return _Columns(self.paths, path, offset, length, number, sha, message_id, in_reply_to, ref_start, ref_ids,
                        subject, date, sender, to_start, to_ids, auto_reply, int(strings), self.text)

    def _lists(self, table: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The string ids of ``table`` per message in threading order, as (starts, ids)."""
        (total,) = self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        owner = np.empty(total, np.int64)
        ids = np.empty(total, np.int32)
        rows = self.db.execute(f"""
            SELECT k.k - 1, s.id FROM k JOIN {table} t ON t.seq = k.seq JOIN s ON s.v = t.v
            ORDER BY k.k, t.pos""")
        at = 0
        for chunk in _chunks(rows):
            end = at + len(chunk)
            owner[at:end], ids[at:end] = zip(*chunk)
            at = end
        starts = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int64)
        return starts, ids


def _chunks(cursor: sqlite3.Cursor, size: int = BATCH) -> Iterator[list[tuple]]:
    while rows := cursor.fetchmany(size):
        yield rows


def thread_email_files(paths: Sequence[Path], scratch: Path | None = None
                       ) -> tuple[list[EmailThreadRef], list[WrittenInputError]]:
    """:func:`~pipeline.ingest.email.scan_email_files` then :func:`~pipeline.ingest.email.thread_refs`, with the same threads and errors, for
    inputs of any size: the messages' threading headers go to an on-disk index (SQLite, in a
    temporary file under ``scratch`` or the system's temporary folder, deleted afterwards) with
    their strings interned, and threading works on integer columns of it, so memory holds a few
    dozen bytes per message rather than a ref object (:class:`EmailIndex`)."""
    errors: list[WrittenInputError] = []
    with EmailIndex(scratch) as index:
        index.add_files(paths, errors)
        return _thread_columns(index.columns()), errors
