"""Choosing calls for review: a seeded random sample per agent, every flagged call, no call
assigned twice, balanced round-robin over the reviewers, and the errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.errors import ConfigError
from pipeline.review.db import Assignment, User, sessions
from pipeline.review.sampling import assignment_rows, open_assignments, plan_sample
from review_helpers import db_url, engine, load, postgres_url, record, submit, users  # noqa: F401  (fixtures)

START, END = "2026-11-01", "2026-11-08"
A1 = ["c01", "c02", "c03", "c04", "c05"]


def calls() -> list[dict]:
    """a1: c01-c05 (c03 with 2 low-confidence answers); a2: c06, c07; a3: c08 (auto-fail); and
    outside [START, END): c09 (a1, before) and c10 (a1, auto-fail, on END, which is excluded)."""
    two = {"opening.greeting": "yes", "closing.thanks": "no"}
    rows = [record(cid, "a1", f"2026-11-0{n + 2}T09:00:00Z", answers=two, low_confidence=2 if cid == "c03" else 0)
            for n, cid in enumerate(A1)]
    rows += [record("c06", "a2", "2026-11-03T10:00:00Z"), record("c07", "a2", "2026-11-07T23:59:59Z"),
             record("c08", "a3", "2026-11-01T00:00:00Z", answers={"courtesy.no_prohibited": "no"}, auto_fail=True,
                    auto_fail_items=("courtesy.no_prohibited",)),
             record("c09", "a1", "2026-10-31T23:00:00Z"), record("c10", "a1", "2026-11-08T00:00:00Z", auto_fail=True)]
    return rows


@pytest.fixture
def db(engine, tmp_path: Path):  # noqa: F811
    with sessions(engine).begin() as s:
        load(s, tmp_path, calls())
        users(s, "rita", "sam", "lee:lead", "ada:admin")
    return engine


def a1_sample(seed: int, pool: list[str] = A1, n: int = 2) -> set[str]:
    """What the documented draw gives: one Random(seed), agents in sorted order, a1 first."""
    return set(random.Random(seed).sample(pool, n))


def seed_without_c03() -> int:
    return next(seed for seed in range(100) if "c03" not in a1_sample(seed))


def seed_with_c03() -> int:
    return next(seed for seed in range(100) if "c03" in a1_sample(seed))


def test_sample_per_agent_plus_every_flagged_call(db):
    seed = seed_without_c03()
    with sessions(db).begin() as s:
        plan = plan_sample(s, 2, START, END, ["rita", "sam"], seed)
        kinds = {a.call_id: a.kind for a in plan}
        sample = a1_sample(seed)
        # a1: 2 of 5 at random plus c03 (low confidence); a2 has only 2; a3 has only c08 (an auto-fail)
        assert kinds == {**{c: "sample" for c in sample}, "c03": "low_confidence", "c06": "sample", "c07": "sample",
                         "c08": "auto_fail"}
        reasons = {a.call_id: a.reason for a in plan}
        assert reasons["c08"] == ("automatic auto-fail (courtesy.no_prohibited answered no); random sample of 2 per "
                                  f"agent for agent a3, 2026-11-01 to 2026-11-08, seed {seed}")
        assert reasons["c03"] == "2 low-confidence automatic answer(s) (threshold 1)"
        assert s.scalar(select(func.count()).select_from(Assignment)) == 6  # 2 + c03 + 2 + c08, flushed
        assert all(a.id is not None and a.created_by is None for a in plan)


def test_same_seed_same_plan_and_a_dry_run_writes_nothing(db):
    with sessions(db).begin() as s:
        first = plan_sample(s, 2, START, END, ["rita", "sam"], seed=11, apply=False)
        again = plan_sample(s, 2, START, END, ["rita", "sam"], seed=11, apply=False)
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0
        triples = [(a.call_id, a.reviewer_id, a.kind) for a in first]
        assert triples == [(a.call_id, a.reviewer_id, a.kind) for a in again]
        applied = plan_sample(s, 2, START, END, ["rita", "sam"], seed=11)
        assert [(a.call_id, a.reviewer_id, a.kind) for a in applied] == triples
        assert s.scalar(select(func.count()).select_from(Assignment)) == len(triples)


def test_a_call_picked_for_several_reasons_is_assigned_once_as_the_strongest(db):
    seed = seed_with_c03()
    with sessions(db).begin() as s:
        plan = plan_sample(s, 2, START, END, ["rita"], seed)
        assert [a.call_id for a in plan].count("c03") == 1
        c03 = next(a for a in plan if a.call_id == "c03")
        assert c03.kind == "low_confidence"
        assert c03.reason.startswith("2 low-confidence automatic answer(s) (threshold 1); random sample of 2")
        # c03 counts as one of a1's two random picks: one more a1 sample, not two
        expected = a1_sample(seed) - {"c03"} | {"c06", "c07"}
        assert sorted(a.call_id for a in plan if a.kind == "sample") == sorted(expected)


def test_low_confidence_threshold(db):
    seed = seed_without_c03()
    with sessions(db).begin() as s:
        plan = plan_sample(s, 0, START, END, ["rita"], seed, low_confidence_min=3)
        assert [(a.call_id, a.kind) for a in plan] == [("c08", "auto_fail")]  # c03 has 2 < 3; no random picks
        plan = plan_sample(s, 0, START, END, ["rita"], seed, low_confidence_min=2)
        assert [(a.call_id, a.kind) for a in plan] == [("c03", "low_confidence")]


def test_no_call_is_assigned_twice(db):
    with sessions(db).begin() as s:
        first = {a.call_id for a in plan_sample(s, 2, START, END, ["rita", "sam"], seed=3)}
        second = plan_sample(s, 2, START, END, ["rita", "sam"], seed=3)
        third = plan_sample(s, 2, START, END, ["rita", "sam"], seed=3)
        fourth = plan_sample(s, 2, START, END, ["rita", "sam"], seed=3)
    # 8 eligible calls; the first plan takes c03, c06, c07, c08 and two random a1 calls (c03 may be one)
    ids2, ids3 = {a.call_id for a in second}, {a.call_id for a in third}
    assert not first & ids2 and not (first | ids2) & ids3 and fourth == []
    assert first | ids2 | ids3 == set(A1) | {"c06", "c07", "c08"}
    assert {a.kind for a in second + third} == {"sample"}
    assert len(first) + len(second) + len(third) == 8


def test_round_robin_goes_to_the_reviewer_with_fewest_open_assignments(db):
    seed = seed_without_c03()
    with sessions(db).begin() as s:
        ids = {u.username: u.id for u in s.scalars(select(User))}
        s.add(Assignment(call_id="c09", reviewer_id=ids["rita"], kind="manual"))  # rita has 1 open already
        s.flush()
        assert open_assignments(s, [ids["rita"], ids["sam"]]) == {ids["rita"]: 1, ids["sam"]: 0}
        plan = plan_sample(s, 2, START, END, ["rita", "sam"], seed, created_by=ids["lee"])
        # order: c08 (auto-fail), c03 (low confidence), then samples by agent and start time
        a1 = sorted(a1_sample(seed))
        assert [a.call_id for a in plan] == ["c08", "c03", *a1, "c06", "c07"]
        # sam 0 < rita 1: sam; 1-1 tie: rita (listed first); then alternating
        names = {v: k for k, v in ids.items()}
        assert [names[a.reviewer_id] for a in plan] == ["sam", "rita", "sam", "rita", "sam", "rita"]
        assert open_assignments(s, [ids["rita"], ids["sam"]]) == {ids["rita"]: 4, ids["sam"]: 3}
        assert {a.created_by for a in plan} == {ids["lee"]}
        rows = assignment_rows(s, plan[:1])
        assert rows == [{"call_id": "c08", "reviewer": "sam", "agent_id": "a3", "queue": "billing",
                         "started_at": "2026-11-01T00:00:00Z", "kind": "auto_fail", "reason": plan[0].reason}]


def test_a_submitted_review_closes_an_assignment(db):
    with sessions(db).begin() as s:
        ids = {u.username: u.id for u in s.scalars(select(User))}
        s.add(Assignment(call_id="c09", reviewer_id=ids["rita"], kind="manual"))
        submit(s, "c09", ids["rita"], {"opening.greeting": "yes"})
        assert open_assignments(s, [ids["rita"], ids["sam"]]) == {ids["rita"]: 0, ids["sam"]: 0}
        plan = plan_sample(s, 0, START, END, ["rita", "sam", "lee"], seed=1)
        assert [(a.call_id, a.reviewer_id) for a in plan] == [("c08", ids["rita"]), ("c03", ids["sam"])]


def test_without_bounds_every_unassigned_call_counts(db, tmp_path: Path):
    with sessions(db).begin() as s:
        load(s, tmp_path, [record("c11", "a4", started_at=None)])
        plan = plan_sample(s, 1, None, None, ["rita"], seed=5, apply=False)
        assert {a.call_id for a in plan if a.kind == "auto_fail"} == {"c08", "c10"}
        assert "c11" in {a.call_id for a in plan}  # a4's only call, no start time
        assert "c11" not in {a.call_id for a in plan_sample(s, 1, START, None, ["rita"], seed=5, apply=False)}
        assert {a.call_id for a in plan_sample(s, 0, None, END, ["rita"], seed=5, apply=False)} == {"c03", "c08"}


@pytest.mark.parametrize("reviewers, message", [
    ([], "name at least one reviewer"),
    (["rita", "nobody", "ghost"], "no such user: nobody, ghost"),
    (["ada"], "ada is 'admin'; only reviewer and lead"),
])
def test_bad_reviewer_lists(db, reviewers, message):
    with sessions(db).begin() as s, pytest.raises(ConfigError, match=message):
        plan_sample(s, 2, START, END, reviewers, seed=1)


def test_other_errors(db):
    with sessions(db).begin() as s:
        s.scalar(select(User).where(User.username == "sam")).active = False
        for kwargs, message in [({"reviewers": ["sam"]}, "sam is deactivated"),
                                ({"per_agent": -1}, "per_agent -1"),
                                ({"low_confidence_min": 0}, "low_confidence_min 0"),
                                ({"start": END, "end": START}, "is empty"),
                                ({"created_by": 999}, "created_by 999")]:
            args = {"per_agent": 2, "start": START, "end": END, "reviewers": ["rita"], "seed": 1, **kwargs}
            with pytest.raises(ConfigError, match=message):
                plan_sample(s, **args)
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0



@pytest.mark.slow
def test_sample_command_plans_then_applies(tmp_path):
    """``callqa sample`` through the CLI: a dry run writes nothing, --apply assigns."""
    from conftest import run_cli
    from test_db import call_record, write_run

    db = tmp_path / "s.db"
    out = tmp_path / "out"
    recs = [call_record(f"k{i}", {"opening.greeting": "yes"}) for i in range(4)]
    recs[0]["scorecard"]["score"]["auto_fail"] = True
    write_run(out, recs)
    assert run_cli("db", "load", str(out), "--db", str(db)).returncode == 0
    for name in ("ann", "bo"):
        assert run_cli("users", "add", name, "--role", "reviewer", "--password-stdin", "--db", str(db),
                       input="long-password\n").returncode == 0
    dry = run_cli("sample", "--per-agent", "1", "--reviewers", "ann,bo", "--seed", "3", "--db", str(db))
    assert dry.returncode == 0, dry.stderr
    assert "2 call(s) would be assigned" in dry.stdout and "k0" in dry.stdout and "auto_fail" in dry.stdout
    again = run_cli("sample", "--per-agent", "1", "--reviewers", "ann,bo", "--seed", "3", "--db", str(db))
    assert again.stdout == dry.stdout  # the dry run wrote nothing; the same seed, the same plan
    done = run_cli("sample", "--per-agent", "1", "--reviewers", "ann,bo", "--seed", "3", "--apply", "--db", str(db))
    assert "2 call(s) assigned" in done.stdout
    bad = run_cli("sample", "--reviewers", "zed", "--db", str(db))
    assert bad.returncode == 2 and "zed" in bad.stderr
