"""Shared builders for the review tests: a migrated database (a SQLite file and a PostgreSQL
database, see databases.py; a test module imports ``engine, db_url, postgres_url``), synthetic
calls loaded through the real loader, users, and submitted reviews."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from databases import db_url, postgres_url  # noqa: F401  (fixtures, re-exported)
from pipeline.review.db import Review, ReviewAnswer, make_engine
from pipeline.review.migrate import upgrade
from pipeline.review.history import refresh_counted
from pipeline.review.loader import load_results
from pipeline.review.users import add_user
from test_db import write_run

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def module_database(request: pytest.FixtureRequest, root: Path) -> tuple[str, Any]:
    """For a module-scoped fixture parametrised ``sqlite`` / ``postgresql``: a new database of
    that kind (a file under ``root``, or one on the session's PostgreSQL server), migrated;
    (its URL, an engine)."""
    from databases import fresh_postgres_db

    db = (str(root / "review.db") if request.param == "sqlite"
          else fresh_postgres_db(request.getfixturevalue("postgres_url")))
    e = make_engine(db)
    upgrade(e)
    return db, e


@pytest.fixture
def engine(db_url: str):  # noqa: F811
    """A migrated, empty database of each kind."""
    e = make_engine(db_url)
    upgrade(e)
    yield e
    e.dispose()


def record(call_id: str, agent: str | None = "a1", started_at: str | None = "2026-11-02T10:00:00Z",
           answers: dict[str, str] | None = None, score: float | None = 0.5, auto_fail: bool = False,
           low_confidence: int = 0, queue: str | None = "billing", sentiment: float | None = 0.2,
           auto_fail_items: tuple[str, ...] = ()) -> dict[str, Any]:
    """A finished call.json: ``answers`` {item: yes/no/na}; the first ``low_confidence`` items get
    confidence 0.4 (the loader counts answers below 0.6), the others 0.9."""
    answers = answers if answers is not None else {"opening.greeting": "yes"}
    items = [{"id": item, "section": item.split(".")[0], "question": f"{item}?", "answer": a,
              "confidence": 0.4 if n < low_confidence else 0.9, "points": 1.0 if a == "yes" else 0.0,
              "auto_fail": item in auto_fail_items, "looked_for": "x", "evidence": []}
             for n, (item, a) in enumerate(answers.items())]
    meta = {"agent_id": agent, "queue": queue, "started_at": started_at}
    return {"call_id": call_id, "status": "ok", "source": {"duration_s": 60.0, "channels": 2},
            "metadata": {k: v for k, v in meta.items() if v is not None}, "provenance": {"config_hash": "abc"},
            "scorecard": {"template": {"name": "T", "version": "1"}, "items": items,
                          "score": {"normalized": score, "auto_fail": auto_fail}},
            "sentiment": {"customer_end": sentiment}}


def load(session: Session, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    out = tmp_path / "out"
    write_run(out, records)
    load_results(session, out)


def users(session: Session, *specs: str) -> dict[str, int]:
    """Users from ``name`` or ``name:role`` (role reviewer by default); {name: id}."""
    ids = {}
    for spec in specs:
        name, _, role = spec.partition(":")
        ids[name] = add_user(session, name, "long-enough-pass", role or "reviewer").id
    return ids


def submit(session: Session, call_id: str, reviewer_id: int, answers: dict[str, str], minutes: int = 0,
           state: str = "submitted") -> Review:
    """A review of ``call_id`` with ``answers``, submitted ``minutes`` after T0 (or a draft)."""
    review = Review(call_id=call_id, reviewer_id=reviewer_id, state=state,
                    submitted_at=T0 + timedelta(minutes=minutes) if state == "submitted" else None)
    review.answers.extend(ReviewAnswer(item_id=item, answer=a) for item, a in answers.items())
    session.add(review)
    session.flush()
    refresh_counted(session, [call_id])
    return review
