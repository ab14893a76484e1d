"""A throwaway PostgreSQL server for tests and benchmarks: Debian's ``postgresql`` package
started in a temporary folder on a free loopback port (fsync off, trust log-in for
``postgres``), stopped and removed at the end. Never used by ``callqa`` itself."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresMissing(RuntimeError):
    """PostgreSQL's programs are not installed."""


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise PostgresMissing(f"PostgreSQL's {name} is not installed (Debian package postgresql; "
                              "scripts/system_deps.sh installs it)")
    return path


def _as_postgres(args: list[str]) -> list[str]:
    """Root may not run the server: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server(prefix: str = "callqa-pg-") -> Iterator[str]:
    """Start a server; yields its URL (database ``postgres``)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(_as_postgres([pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                     "--no-sync", "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)
        opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"),
                                     "-w", "start"]), check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run(_as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
