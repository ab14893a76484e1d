"""The review database: migrations, users and password hashes, idempotent loading of results
that never overwrites a reviewer's answer (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import run_cli
from pipeline.errors import ConfigError, InputError
from pipeline.review.db import Call, Review, ReviewAnswer, User, make_engine, sessions
from pipeline.review.migrate import current_revision, upgrade
from pipeline.review.loader import load_results
from pipeline.review.users import add_user, authenticate, hash_password, verify_password


@pytest.fixture
def engine(db_url: str):
    """A migrated database: a SQLite file, and a PostgreSQL database (both kinds run every test)."""
    e = make_engine(db_url)
    upgrade(e)
    yield e
    e.dispose()


def test_migrations_build_the_schema_the_models_describe(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pipeline.review.db import Base

    assert current_revision(engine) == "0012"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    upgrade(engine)  # a second upgrade changes nothing
    assert current_revision(engine) == "0012"


def test_passwords_are_salted_and_checked():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$") and "correct" not in a
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct hors", a) and not verify_password("x", "garbage")


def test_users_are_added_with_checks_and_authenticated(engine):
    with sessions(engine).begin() as s:
        add_user(s, "alice", "s3cret-passphrase", "reviewer")
        for name, password, role, what in [("alice", "another-pass", "lead", "exists"),
                                           ("bob", "short", "lead", "at least 12"),
                                           ("bob", "long-enough-pass", "boss", "not one of"),
                                           ("../bob", "long-enough-pass", "lead", "user name")]:
            with pytest.raises(ConfigError, match=what):
                add_user(s, name, password, role)
    with sessions(engine)() as s:
        assert authenticate(s, "alice", "s3cret-passphrase").role == "reviewer"
        assert authenticate(s, "alice", "wrong-pass") is None
        assert authenticate(s, "nobody", "s3cret-passphrase") is None


def call_record(call_id: str, answers: dict[str, str], status: str = "ok") -> dict:
    items = [{"id": item, "section": item.split(".")[0], "question": f"{item}?", "answer": a, "confidence": 0.9 if a == "yes" else 0.5,
              "points": 1.0 if a == "yes" else 0.0, "auto_fail": False, "looked_for": "x",
              "evidence": [{"start": 1.0, "end": 2.0, "quote": "hello", "rule": "r"}]} for item, a in answers.items()]
    return {"call_id": call_id, "status": status, "source": {"duration_s": 60.0, "channels": 2},
            "metadata": {"agent_id": "a1", "queue": "billing", "started_at": "2026-11-01T10:00:00Z"},
            "provenance": {"config_hash": "abc"},
            "scorecard": {"template": {"name": "T", "version": "1"}, "items": items,
                          "score": {"normalized": 0.5, "auto_fail": False}},
            "sentiment": {"customer_end": 0.2}}


def write_run(out: Path, records: list[dict]) -> None:
    for r in records:
        folder = out / "calls" / r["call_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "call.json").write_text(json.dumps(r))


def test_loading_is_idempotent_and_keeps_human_answers(engine, tmp_path: Path):
    out = tmp_path / "out"
    write_run(out, [call_record("c1", {"opening.greeting": "yes", "closing.thanks": "no"}),
                    call_record("c2", {"opening.greeting": "no"}), call_record("c3", {}, status="failed")])
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 2, "updated": 0, "unchanged": 0, "skipped": 1}
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 0, "updated": 0, "unchanged": 2, "skipped": 1}
        reviewer = add_user(s, "rita", "long-enough-pass", "reviewer")
        review = Review(call_id="c1", reviewer_id=reviewer.id, state="submitted")
        review.answers.append(ReviewAnswer(item_id="closing.thanks", answer="yes", auto_answer="no", comment="said it"))
        s.add(review)

    # the pipeline runs again with other suggestions: they change, the reviewer's answer stays
    write_run(out, [call_record("c1", {"opening.greeting": "no", "courtesy.empathy": "yes"})])
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 0, "updated": 1, "unchanged": 1, "skipped": 1}
    with sessions(engine)() as s:
        call = s.get(Call, "c1")
        assert [(i.item_id, i.answer) for i in call.items] == [("opening.greeting", "no"), ("courtesy.empathy", "yes")]
        assert call.agent_id == "a1" and call.score == 0.5 and call.low_confidence_items == 1
        answer = s.scalar(select(ReviewAnswer).where(ReviewAnswer.item_id == "closing.thanks"))
        assert (answer.answer, answer.auto_answer, answer.comment) == ("yes", "no", "said it")
        assert answer.review.reviewer_id == s.scalar(select(User.id).where(User.username == "rita"))
    with sessions(engine).begin() as s, pytest.raises(InputError, match="no calls"):
        load_results(s, tmp_path)


@pytest.mark.slow
def test_cli_adds_users_and_loads_a_run(tmp_path: Path):
    db = tmp_path / "cli.db"
    out = tmp_path / "out"
    write_run(out, [call_record("c1", {"opening.greeting": "yes"})])
    proc = run_cli("users", "add", "lee", "--role", "lead", "--password-stdin", "--db", str(db), input="a-good-password\n")
    assert proc.returncode == 0 and "added lee (lead)" in proc.stdout, proc.stderr
    proc = run_cli("users", "add", "lee", "--role", "lead", "--password-stdin", "--db", str(db), input="a-good-password\n")
    assert proc.returncode == 2 and "exists" in proc.stderr
    assert "lee" in run_cli("users", "list", "--db", str(db)).stdout
    proc = run_cli("db", "load", str(out), "--db", str(db))
    assert proc.returncode == 0 and "1 added" in proc.stdout, proc.stderr
    assert "1 unchanged" in run_cli("db", "load", str(out), "--db", f"sqlite:///{db}").stdout
    proc = run_cli("db", "load", str(out), "--db", "mysql://x/y")
    assert proc.returncode == 2 and "postgresql://" in proc.stderr


_KILLED_UPGRADE = """
import os, signal, sys
from alembic.ddl.impl import DefaultImpl
from pipeline.review.db import make_engine
from pipeline.review.migrate import upgrade

left = int(sys.argv[2])
real = DefaultImpl._exec

def exec_then_die(self, *args, **kwargs):  # kill -9 after the Nth schema statement
    global left
    result = real(self, *args, **kwargs)
    left -= 1
    if left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

DefaultImpl._exec = exec_then_die
upgrade(make_engine(sys.argv[1]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("statements", [1, 2, 4, 8, 16, 32])
def test_a_kill_9_while_the_schema_is_created_leaves_a_usable_database(tmp_path: Path, statements: int):
    """Creation is one transaction: killed after any statement, the file holds no schema or all
    of it, and the next command creates or uses it (it used to fail for ever with "table users
    already exists")."""
    import subprocess
    import sys

    from sqlalchemy import inspect

    from conftest import ROOT

    path = tmp_path / "review.sqlite"
    proc = subprocess.run([sys.executable, "-c", _KILLED_UPGRADE, str(path), str(statements)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, -9), proc.stderr
    if statements <= 16:
        assert proc.returncode == -9, "the upgrade finished before it could be killed"
    engine = make_engine(path)
    killed_tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert current_revision(engine) in (None, "0004") and (current_revision(engine) or not killed_tables)
    upgrade(engine)
    assert current_revision(engine) == "0012"
    with sessions(engine)() as session:
        add_user(session, "dana", "a long enough password", "reviewer")
        session.commit()
    engine.dispose()


def test_a_half_created_database_is_repaired_and_one_with_rows_refused(tmp_path: Path):
    """What a kill used to leave (tables, no schema version) is created again; tables that hold
    rows are never dropped."""
    import sqlite3

    path = tmp_path / "half.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(80))")
    engine = make_engine(path)
    upgrade(engine)
    assert current_revision(engine) == "0012"
    engine.dispose()
    path = tmp_path / "foreign.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(80))")
        db.execute("INSERT INTO users VALUES (1, 'kept')")
    engine = make_engine(path)
    with pytest.raises(ConfigError, match="no schema version"):
        upgrade(engine)
    engine.dispose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT username FROM users").fetchall() == [("kept",)]
