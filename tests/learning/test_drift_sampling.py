"""Per-item drift on the dashboard (a constructed drop fires an alert, noise does not) and
sampling that learns (the least sure calls picked, deterministically), on real review
databases (SQLite and PostgreSQL) loaded through the real loader."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.learning.drift import drift_alerts, two_proportion_drop
from pipeline.review.dashboards import agreement_drift, agreement_weekly
from pipeline.review.db import CallItem, sessions
from pipeline.review.options import ReviewOptions
from pipeline.review.sampling import plan_sample, uncertainty
from review_helpers import db_url, engine, load, postgres_url, record, submit, users  # noqa: F401  (fixtures)
from servers import logged_in, start_server
from test_db import write_run

G, T = "opening.greeting", "closing.thanks"
MONDAY = date(2026, 9, 7)
WEEKS, PER_WEEK = 8, 20


def weekly_calls(agree: dict[str, list[int]]) -> tuple[list[dict], dict[str, dict[str, str]]]:
    """PER_WEEK calls a week for WEEKS weeks, both items suggested "yes"; the reviewer agrees on
    item i in week w for the first ``agree[i][w]`` calls of the week. (records, reviews)"""
    records, reviews = [], {}
    for w in range(WEEKS):
        for k in range(PER_WEEK):
            cid = f"w{w}c{k:02d}"
            day = MONDAY + timedelta(weeks=w, days=k % 5)
            records.append(record(cid, f"a{k % 4}", f"{day}T10:00:00Z", {G: "yes", T: "yes"}))
            reviews[cid] = {item: "yes" if k < agree[item][w] else "no" for item in (G, T)}
    return records, reviews


def noisy(rate: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [sum(rng.random() < rate for _ in range(PER_WEEK)) for _ in range(WEEKS)]


def load_reviews(engine, tmp_path: Path, records, reviews):  # noqa: ANN001, F811
    with sessions(engine).begin() as s:
        load(s, tmp_path, records)
        lena = users(s, "lena:lead")["lena"]
        for n, (cid, answers) in enumerate(reviews.items()):
            submit(s, cid, lena, answers, minutes=n)


def test_two_proportion_test():
    z, p = two_proportion_drop(90, 100, 60, 100)
    assert z > 4 and p < 1e-5
    z, p = two_proportion_drop(90, 100, 90, 100)
    assert z == 0 and p > 0.5  # no drop: nowhere near significant (Fisher's exact test is conservative)
    assert two_proportion_drop(60, 100, 90, 100)[1] > 0.99  # a rise is no drop
    assert two_proportion_drop(10, 10, 10, 10) is None and two_proportion_drop(0, 0, 1, 2) is None


def test_a_constructed_drop_fires_an_alert_and_noise_does_not(engine, tmp_path: Path):  # noqa: F811
    drop = [18] * (WEEKS - 1) + [8]          # 90% for seven weeks, then 40%
    steady = noisy(0.85, seed=3)              # about 85% every week, binomial noise
    records, reviews = weekly_calls({G: drop, T: steady})
    load_reviews(engine, tmp_path, records, reviews)
    with sessions(engine)() as s:
        weekly = agreement_weekly(s)
        assert [w["n"] for w in weekly[G]] == [PER_WEEK] * WEEKS
        assert [w["agreed"] for w in weekly[G]] == drop and [w["agreed"] for w in weekly[T]] == steady
        got = agreement_drift(s, "2026-10-26", "2026-11-02")  # the last week shown, the 8 before tested
    assert [a["item"] for a in got["alerts"]] == [G]
    alert = got["alerts"][0]
    assert alert["n"] == PER_WEEK and alert["agreed"] == 8 and alert["baseline_n"] == PER_WEEK * (WEEKS - 1)
    assert alert["week"] == "2026-W44" and alert["p"] < alert["alpha"] and alert["tested"] == 2
    assert list(got["weekly"]) == [G, T] and [w["period"] for w in got["weekly"][G]] == ["2026-W44"]


@pytest.mark.parametrize("rate", [0.6, 0.85, 0.95])
def test_noise_alone_rarely_raises_an_alert(rate: float):
    """300 dashboards of 10 items whose true agreement never changes (binomial noise of 20 answers
    a week): the share of dashboards with any alert stays within the family-wise 5% (plus two
    standard errors of 300 draws), and a drop of 50 points is always found."""
    def weekly(seed: int, last: int | None = None) -> dict:
        out = {}
        for i in range(10):
            counts = noisy(rate, seed * 97 + i)
            if last is not None and i == 0:
                counts[-1] = last
            out[f"item{i}"] = [{"period": f"W{w}", "n": PER_WEEK, "agreed": a} for w, a in enumerate(counts)]
        return out

    false = sum(bool(drift_alerts(weekly(seed))) for seed in range(300))
    assert false / 300 <= 0.05 + 2 * (0.05 * 0.95 / 300) ** 0.5, false
    dropped = int(PER_WEEK * (rate - 0.5))
    assert all("item0" in [a["item"] for a in drift_alerts(weekly(seed, dropped))] for seed in range(20))


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.review.app import create_app
    from pipeline.review.db import make_engine
    from pipeline.review.migrate import upgrade
    from pipeline.review.loader import load_results
    from pipeline.review.users import add_user

    root = tmp_path_factory.mktemp("drift-dash")
    records, reviews = weekly_calls({G: [18] * (WEEKS - 1) + [6], T: [17] * WEEKS})
    write_run(root / "out", records)
    db = str(root / "review.db")
    e = make_engine(db)
    upgrade(e)
    with sessions(e).begin() as s:
        load_results(s, root / "out")
        lena = add_user(s, "lena", "long-enough-pass1", "lead")
        for n, (cid, answers) in enumerate(reviews.items()):
            submit(s, cid, lena.id, answers, minutes=n)
    srv, thread, url = start_server(create_app(db))
    yield url
    srv.should_exit = True
    thread.join(timeout=5)
    e.dispose()


def test_the_dashboard_shows_the_weekly_agreement_and_the_alert(dash):
    c, _ = logged_in(dash, "lena", "long-enough-pass1")
    data = c.get("/api/dashboard", params={"period": "all"}).json()
    drift = data["agreement_drift"]
    assert [a["item"] for a in drift["alerts"]] == [G] and drift["alerts"][0]["n"] == PER_WEEK
    assert len(drift["weekly"][G]) == WEEKS
    page = c.get("/dashboard", params={"period": "all"})
    assert page.status_code == 200
    assert 'id="drift-alerts"' in page.text and f"<strong>{G}</strong>" in page.text and "n = 20" in page.text
    assert 'id="agreement-weekly"' in page.text and "2026-W37" in page.text


# -- sampling that learns ---------------------------------------------------------------------

def sample_calls() -> list[dict]:
    """Two agents, 10 calls each in one week; call k of an agent suggests greeting with confidence
    0.95 - 0.03 k and thanks with 0.96 (all at or above 0.6: none is flagged low-confidence)."""
    rows = []
    for agent in ("a1", "a2"):
        for k in range(10):
            rec = record(f"{agent}-{k}", agent, f"2026-11-0{2 + k % 5}T09:00:00Z", {G: "yes", T: "yes"})
            rec["scorecard"]["items"][0]["confidence"] = round(0.95 - 0.03 * k, 3)
            rec["scorecard"]["items"][1]["confidence"] = 0.96
            rows.append(rec)
    return rows


def test_a_share_of_the_sample_goes_to_the_least_sure_calls_deterministically(engine, tmp_path: Path):  # noqa: F811
    with sessions(engine).begin() as s:
        load(s, tmp_path, sample_calls())
        users(s, "rita", "sam")
    with sessions(engine)() as s:
        risk = uncertainty(s, [f"a1-{k}" for k in range(10)], "2026-11-08")
        plan = plan_sample(s, 5, "2026-11-01", "2026-11-08", ["rita", "sam"], seed=1, uncertain_share=0.4, apply=False)
        again = plan_sample(s, 5, "2026-11-01", "2026-11-08", ["rita", "sam"], seed=1, uncertain_share=0.4, apply=False)
        plain = plan_sample(s, 5, "2026-11-01", "2026-11-08", ["rita", "sam"], seed=1, uncertain_share=0.0, apply=False)
    # no reviews yet: the least confident item decides (1 - confidence)
    assert risk["a1-9"][0] == pytest.approx(1 - 0.68) and "opening.greeting confidence 0.68" in risk["a1-9"][1]
    unsure = sorted(a.call_id for a in plan if a.kind == "uncertain")
    assert unsure == ["a1-8", "a1-9", "a2-8", "a2-9"]  # 40% of 2 x 5: the four lowest confidences
    assert len(plan) == 10 and sum(a.kind == "sample" for a in plan) == 6
    assert [(a.call_id, a.kind, a.reviewer_id) for a in plan] == [(a.call_id, a.kind, a.reviewer_id) for a in again]
    assert not any(a.kind == "uncertain" for a in plain) and len(plain) == 10
    assert "least sure" in next(a.reason for a in plan if a.kind == "uncertain")


def test_items_reviewers_disagree_with_make_calls_uncertain(engine, tmp_path: Path):  # noqa: F811
    """Recent reviews: the greeting suggestion right every time, thanks right half the time. Then
    a call with thanks at 0.96 (risk 1 - 0.96 x 0.5 = 0.52) is less sure than one whose greeting
    is at 0.68 (risk 0.32)."""
    old = [record(f"old{k}", "a9", f"2026-10-1{k % 9}T09:00:00Z", {G: "yes", T: "yes"}) for k in range(10)]
    with sessions(engine).begin() as s:
        load(s, tmp_path, sample_calls() + old)
        ids = users(s, "rita", "lena:lead")
        for k in range(10):
            submit(s, f"old{k}", ids["lena"], {G: "yes", T: "yes" if k % 2 else "no"}, minutes=k)
    with sessions(engine)() as s:
        risk = uncertainty(s, ["a1-0", "a1-9"], "2026-11-08")
        assert risk["a1-0"][0] == pytest.approx(1 - 0.96 * 0.5) and "closing.thanks" in risk["a1-0"][1]
        assert "recent agreement 50% of 10" in risk["a1-0"][1]
        assert risk["a1-9"][0] == pytest.approx(1 - 0.96 * 0.5)  # thanks is its riskiest item too
        plan = plan_sample(s, 5, "2026-11-01", "2026-11-08", ["rita"], seed=4, uncertain_share=0.2, apply=False)
    # every a1/a2 call now has the same risk (thanks): 20% of 2 x 5, ties by call id
    assert sorted(a.call_id for a in plan if a.kind == "uncertain") == ["a1-0", "a1-1"]
    assert sum(a.kind == "sample" for a in plan) == 8  # a1's random draw shrinks by its two

    with sessions(engine)() as s:  # review.uncertain_share's default (0.2) with 2 per agent
        plan = plan_sample(s, 2, "2026-11-01", "2026-11-08", ["rita"], seed=4, apply=False,
                           uncertain_share=ReviewOptions().uncertain_share)
    assert [a.call_id for a in plan if a.kind == "uncertain"] == ["a1-0"] and len(plan) == 4
    with sessions(engine)() as s:
        assert s.query(CallItem).filter(CallItem.human_answer.is_not(None)).count() == 20


def test_the_sample_command_gives_a_share_to_uncertain_calls(tmp_path: Path):
    from conftest import run_cli

    out, db = tmp_path / "out", tmp_path / "s.db"
    write_run(out, sample_calls())
    assert run_cli("db", "load", str(out), "--db", str(db)).returncode == 0
    assert run_cli("users", "add", "ann", "--role", "reviewer", "--password-stdin", "--db", str(db),
                   input="long-password\n").returncode == 0
    args = ["sample", "--per-agent", "5", "--reviewers", "ann", "--from", "2026-11-01", "--to", "2026-11-08",
            "--db", str(db)]
    default = run_cli(*args)
    assert default.returncode == 0, default.stderr
    lines = [line for line in default.stdout.splitlines() if " uncertain " in line]
    assert [line.split()[0] for line in lines] == ["a1-9", "a2-9"]  # 20% of 10: the two least sure calls
    none = run_cli(*args, "--uncertain-share", "0")
    assert " uncertain " not in none.stdout and "10 call(s) would be assigned" in none.stdout
    assert run_cli(*args, "--uncertain-share", "1.5").returncode == 2
