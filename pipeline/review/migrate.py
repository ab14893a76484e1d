"""Bringing a review database to the newest schema: the Alembic migrations in
``pipeline/review/migrations`` in one transaction, then the data derived from calls and reviews
that a database from before a migration lacks (the counted-review columns, the item tallies).
Above :mod:`pipeline.review.db` and the modules that derive that data, so none of them imports
back up."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from pipeline.errors import ConfigError
from pipeline.review.db import Base

log = logging.getLogger("callqa")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COUNTED_COLUMNS_REVISION = 7
"""The migration that added the counted-review columns (0007): a database upgraded across it
gets them filled."""
TALLIES_REVISION = 8
"""The migration that added the item tallies (0008): a database upgraded across it gets them
computed."""


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest migration (creates it in an empty database).

    Every pending migration and the version stamp run in one transaction (SQLite and
    PostgreSQL both roll DDL back), so a process killed part-way leaves the database exactly as
    it was. A database an older callqa left half-created (callqa tables but no schema version,
    from a kill during its creation) is repaired when those tables are empty.
    """
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.migration import MigrationContext

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn, _one_transaction(conn):
        _repair_half_created(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if before is not None and int(before) < TALLIES_REVISION:
            _fill_derived(conn, int(before))


def _fill_derived(conn: Connection, before: int) -> None:
    """Fill what a database from before revision ``before`` lacks of the data derived from its
    calls and reviews (the counted-review columns, the item tallies), in the upgrade's
    transaction."""
    from sqlalchemy.orm import Session

    from pipeline.review import tallies
    from pipeline.review.history import refresh_counted

    with Session(bind=conn) as session:
        if before < COUNTED_COLUMNS_REVISION:
            refresh_counted(session, None)
        tallies.rebuild(session)
        session.flush()


@contextmanager
def _one_transaction(conn: Connection) -> Iterator[None]:
    """A real database transaction around the block, DDL included, committed at its end.

    Python's sqlite3 driver starts no transaction before CREATE/ALTER/DROP (each would commit
    on its own), so for SQLite the driver's implicit transactions are turned off and the
    transaction is begun explicitly (IMMEDIATE: two processes creating one database take
    turns instead of both starting)."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    driver = conn.connection.driver_connection
    saved = driver.isolation_level
    driver.isolation_level = None
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        driver.isolation_level = saved


def _repair_half_created(conn: Connection) -> None:
    """Drop the empty callqa tables of a database with no schema version (left by a killed
    creation before creation was one transaction), so the migrations can create them again.
    Tables that hold rows are never dropped: that is an error for a person to look at."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect, select
    from sqlalchemy.sql import func

    if MigrationContext.configure(conn).get_current_revision() is not None:
        return
    present = set(inspect(conn).get_table_names())
    ours = [t for t in reversed(Base.metadata.sorted_tables) if t.name in present]
    if not ours:
        return
    full = [t.name for t in ours if conn.execute(select(func.count()).select_from(t)).scalar()]
    if full:
        raise ConfigError(
            f"{conn.engine.url.render_as_string(hide_password=True)}: the database has callqa tables with rows "
            f"({', '.join(full)}) but no schema version; it was not made by callqa's migrations. "
            "Use a new database, or stamp its version with alembic if you know it"
        )
    log.warning("repairing a half-created review database: dropping its empty tables %s",
                ", ".join(t.name for t in ours))
    for table in ours:
        table.drop(conn)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
