"""Databases for the review tests: a SQLite file, and a throwaway PostgreSQL server (Debian's
postgresql package, started here on a free loopback port and removed afterwards; `.ci/run`
installs the package)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.review.throwaway_pg import new_database, postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


_DB_COUNT = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "review.db")
    return fresh_postgres_db(request.getfixturevalue("postgres_url"))


def fresh_postgres_db(server_url: str) -> str:
    return new_database(server_url, f"t{os.getpid()}_{next(_DB_COUNT)}")


def wait_until(check, seconds: float = 5.0) -> None:  # noqa: ANN001 - a callable
    end = time.monotonic() + seconds
    while not check():
        if time.monotonic() > end:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)
