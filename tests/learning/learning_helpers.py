"""Reviews from the labelled samples: the sample calls' real results (call.json as the pipeline
wrote them) copied under several call ids, loaded into a real review database with the real
loader, and reviewed with the labels' answers (plus, for some, a simulated reviewer's slips).

Every copy of one recording belongs to one agent, so GroupKFold by agent keeps all copies of a
call in one fold: no call is ever both fitted and held out."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from pipeline.review.db import Review, ReviewAnswer
from pipeline.review.history import refresh_counted
from pipeline.review.loader import load_results
from pipeline.review.users import add_user

ROOT = Path(__file__).resolve().parents[2]
LABEL_DIRS = (ROOT / "recordings_sample" / "labels", ROOT / "interactions_sample" / "labels")
ANSWERS = ("yes", "no", "na")


def labels() -> dict[str, dict[str, str]]:
    """{call or conversation id: {item: answer}} of every labelled sample."""
    out = {}
    for folder in LABEL_DIRS:
        for f in sorted(folder.glob("*.json")):
            data = json.loads(f.read_text())
            if data.get("scorecard"):
                out[f.stem] = dict(data["scorecard"])
    return out


def replicate(runs: list[Path], dest: Path, copies: int, first_day: date = date(2026, 9, 7)) -> list[str]:
    """Copy every ok call.json of ``runs`` ``copies`` times into ``dest/calls/<id>-<k>/`` (agent
    ``agent-<id>``, copy k started k weeks after ``first_day``); the ids written."""
    ids = []
    for run in runs:
        for f in sorted((run / "calls").glob("*/call.json")):
            data = json.loads(f.read_text())
            if data.get("status") != "ok" or not data.get("scorecard"):
                continue
            for k in range(copies):
                call_id = f"{data['call_id']}-{k}"
                copy = {**data, "call_id": call_id,
                        "metadata": {**(data.get("metadata") or {}), "agent_id": f"agent-{data['call_id']}",
                                     "started_at": f"{first_day + timedelta(weeks=k, days=len(ids) % 5)}T10:00:00Z"}}
                folder = dest / "calls" / call_id
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "call.json").write_text(json.dumps(copy))
                ids.append(call_id)
    return ids


def review_with_labels(session: Session, out: Path, call_ids: list[str], noise: float = 0.0, seed: int = 0,
                       reviewer: str = "rita") -> dict[str, dict[str, str]]:
    """Load ``out`` and submit, for every call id, a review whose answers are the labels of its
    recording (``<id>-<k>``), each answer replaced by another one with probability ``noise``
    (``random.Random(seed)``); {call_id: answers submitted}."""
    load_results(session, out)
    user = add_user(session, reviewer, "long-enough-pass", "reviewer")
    gold = labels()
    rng = random.Random(seed)
    given = {}
    for n, call_id in enumerate(call_ids):
        answers = dict(gold.get(call_id.rsplit("-", 1)[0], {}))
        for item in sorted(answers):
            if rng.random() < noise:
                answers[item] = rng.choice([a for a in ANSWERS if a != answers[item]])
        if not answers:
            continue
        review = Review(call_id=call_id, reviewer_id=user.id, state="submitted",
                        submitted_at=datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=n))
        review.answers.extend(ReviewAnswer(item_id=i, answer=a) for i, a in answers.items())
        session.add(review)
        given[call_id] = answers
    session.flush()
    refresh_counted(session, list(given))
    return given
