"""Databases for the review tests: a SQLite file, and a throwaway PostgreSQL server (Debian's
postgresql package, started here on a free loopback port and removed afterwards; `.ci/run`
installs the package)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian package postgresql; .ci/run installs it)")
    return path


def _as_postgres(args: list[str]) -> list[str]:
    """Root may not run the server: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_url():
    folder = Path(tempfile.mkdtemp(prefix="callqa-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
                                 "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w",
                                 "start"]), check=True, capture_output=True)
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        yield url
    finally:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


_DB_COUNT = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "review.db")
    return fresh_postgres_db(request.getfixturevalue("postgres_url"))


def fresh_postgres_db(server_url: str) -> str:
    import psycopg

    name = f"t{os.getpid()}_{next(_DB_COUNT)}"
    with psycopg.connect(server_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def wait_until(check, seconds: float = 5.0) -> None:  # noqa: ANN001 - a callable
    end = time.monotonic() + seconds
    while not check():
        if time.monotonic() > end:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)
