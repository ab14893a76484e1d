"""The index of processed calls: a damaged file is replaced, one that cannot be written (a full
disk) is never deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import DiskFullError
from pipeline.run.index import INDEX_FILE, IndexEntry, RunIndex


def _entry(call_id: str, row: dict | None = None) -> IndexEntry:
    return IndexEntry(call_id, f"/in/{call_id}.wav", 1, 2, "0" * 64, "ok", "cfg", None, row or {})


def _ids(out: Path) -> list[str]:
    with sqlite3.connect(out / INDEX_FILE) as db:
        return [r[0] for r in db.execute("SELECT call_id FROM calls ORDER BY call_id")]


def _full(*args: object) -> None:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13  # SQLITE_FULL
    raise error


def test_an_index_that_cannot_be_written_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    index = RunIndex(tmp_path)
    index.put(_entry("a"))
    index.close()
    monkeypatch.setattr(RunIndex, "_open", _full)
    with pytest.raises(DiskFullError, match="disk full"):
        RunIndex(tmp_path)
    monkeypatch.undo()
    assert _ids(tmp_path) == ["a"]


def test_a_write_that_fills_the_database_is_a_disk_full_error(tmp_path: Path):
    index = RunIndex(tmp_path)
    index.put(_entry("a"))
    index.commit()
    pages = index.db.execute("PRAGMA page_count").fetchone()[0]
    index.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    with pytest.raises(DiskFullError):
        index.put(_entry("b", {"text": "x" * 100_000}))
        index.commit()
    index.close()
    assert _ids(tmp_path) == ["a"]


def test_a_damaged_index_is_replaced(tmp_path: Path):
    (tmp_path / INDEX_FILE).write_bytes(b"not a database at all" * 100)
    index = RunIndex(tmp_path)
    index.put(_entry("a"))
    index.close()
    assert _ids(tmp_path) == ["a"]
