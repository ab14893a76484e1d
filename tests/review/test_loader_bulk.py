"""Loading a large run in batches (on SQLite and on PostgreSQL): every call and item lands once,
across batch boundaries; a second load changes nothing; changed call.json files update exactly
their calls (reviews kept, counted columns refreshed); unreadable, failed and misnamed files are
skipped in the middle of a batch without losing the calls around them."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pipeline.review import loader
from pipeline.review.db import Call, CallItem, Review, ReviewAnswer, sessions
from pipeline.review.loader import load_results
from review_helpers import db_url, engine, postgres_url, record, submit, users  # noqa: F401  (fixtures)
from test_db import write_run

ANSWERS = ("yes", "no", "na")
ITEM_IDS = ("opening.greeting", "opening.verification", "courtesy.empathy", "closing.thanks")


def big_record(n: int) -> dict[str, Any]:
    """Call ``n`` of a synthetic run: its agent, queue, start, answers and low-confidence count
    all follow from ``n`` (and the item count varies: 1 to 4 items)."""
    answers = {item: ANSWERS[(n + k) % 3] for k, item in enumerate(ITEM_IDS[:1 + n % 4])}
    return record(f"c{n:05d}", agent=f"a{n % 7}", started_at=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
                  answers=answers, score=round((n % 10) / 10, 1), auto_fail=n % 13 == 0,
                  low_confidence=n % 3, queue=("billing", "sales")[n % 2], sentiment=round((n % 5) / 5 - 0.4, 1))


def expected_items(records: list[dict[str, Any]]) -> set[tuple]:
    return {(r["call_id"], i["id"], position, i["answer"], i["confidence"], i["points"], i["section"])
            for r in records for position, i in enumerate(r["scorecard"]["items"])}


def table_items(s) -> set[tuple]:  # noqa: ANN001 - a Session
    return set(s.execute(select(CallItem.call_id, CallItem.item_id, CallItem.position, CallItem.answer,
                                CallItem.confidence, CallItem.points, CallItem.section)).all())


def file_sha(out: Path, call_id: str) -> str:
    return hashlib.sha256((out / "calls" / call_id / "call.json").read_bytes()).hexdigest()


def test_a_run_larger_than_a_batch_loads_every_call_and_item_exactly_once(engine, tmp_path: Path):  # noqa: F811
    n = loader.BATCH + loader.BATCH // 2 + 7  # one full batch, then a part of one
    records = [big_record(k) for k in range(n)]
    out = tmp_path / "out"
    write_run(out, records)
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": n, "updated": 0, "unchanged": 0, "skipped": 0}
    with sessions(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == n
        assert s.scalar(select(func.count()).select_from(CallItem)) == sum(1 + k % 4 for k in range(n))
        assert table_items(s) == expected_items(records)
        rows = {c.call_id: c for c in s.scalars(select(Call))}
        for k in (0, 1, loader.BATCH - 1, loader.BATCH, loader.BATCH + 1, n - 1):  # both sides of the boundary
            r, row = records[k], rows[f"c{k:05d}"]
            assert (row.agent_id, row.queue, row.started_at) == (f"a{k % 7}", ("billing", "sales")[k % 2],
                                                                 r["metadata"]["started_at"])
            assert (row.score, row.auto_fail, row.low_confidence_items) == (round((k % 10) / 10, 1), k % 13 == 0,
                                                                            min(k % 3, 1 + k % 4))
            assert row.customer_sentiment_end == pytest.approx(round((k % 5) / 5 - 0.4, 1))
            assert (row.template, row.config_hash, row.metadata_json) == ("T 1", "abc", r["metadata"])
            assert row.result_sha256 == file_sha(out, row.call_id)
            assert row.out_dir == str(out.resolve()) and row.input_roots is None
            assert row.counted_review_id is None and row.reviewed_score is None
        assert all(c.counted_review_id is None for c in rows.values())
        item_ids = dict(s.execute(select(CallItem.id, CallItem.call_id)).all())

    # a second load writes nothing (the same item rows, not rewritten), and run.json's input
    # roots, recorded since, reach every unchanged call
    (out / "run.json").write_text(json.dumps({"input_roots": [str(tmp_path / "recordings")]}))
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 0, "updated": 0, "unchanged": n, "skipped": 0}
    with sessions(engine)() as s:
        assert dict(s.execute(select(CallItem.id, CallItem.call_id)).all()) == item_ids
        assert list(s.scalars(select(Call.input_roots))) == [[str(tmp_path / "recordings")]] * n
        assert table_items(s) == expected_items(records)


def test_changed_calls_are_updated_alone_and_their_reviews_kept_and_recounted(engine, tmp_path: Path):  # noqa: F811
    n = loader.BATCH + 200
    records = [big_record(k) for k in range(n)]
    # r1 is reviewed on x.a only: x.b's suggestion stands in its reviewed score (x section, 1 point each)
    records[5] = record("c00005", answers={"x.a": "no", "x.b": "no"}, score=0.0)
    out = tmp_path / "out"
    write_run(out, records)
    with sessions(engine).begin() as s:
        load_results(s, out)
        ids = users(s, "rita", "lena:lead")
        kept = submit(s, "c00005", ids["rita"], {"x.a": "yes"}).id
        other = submit(s, "c00010", ids["lena"], {i: "yes" for i in ITEM_IDS[:1 + 10 % 4]}).id
    with sessions(engine)() as s:
        before = s.get(Call, "c00005")
        assert (before.counted_review_id, before.reviewed_score) == (kept, 0.5)  # yes, no (the suggestion)
        assert {i.item_id: i.human_answer for i in before.items} == {"x.a": "yes", "x.b": None}
        unchanged_items = dict(s.execute(select(CallItem.id, CallItem.call_id)
                                         .where(CallItem.call_id.not_in(["c00005"]))).all())
        other_score = s.get(Call, "c00010").reviewed_score

    changed = {5, *range(7, n, 97)}  # spread over both batches
    for k in changed:
        if k == 5:  # the suggestion for x.b turns yes, and a new item appears
            records[k] = record("c00005", answers={"x.a": "no", "x.b": "yes", "x.c": "na"}, score=0.5)
        else:
            records[k] = {**records[k], "metadata": {**records[k]["metadata"], "agent_id": "moved"},
                          "scorecard": {**records[k]["scorecard"], "items": [
                              {**i, "answer": "yes", "confidence": 0.99} for i in records[k]["scorecard"]["items"]]}}
    write_run(out, [records[k] for k in changed])
    with sessions(engine).begin() as s:
        held = [s.get(Call, f"c{k:05d}") for k in sorted(changed)]  # the session holds changed calls and
        assert [i.answer for i in held[0].items] == ["no", "no"]         # their items while reloading
        assert all(c.agent_id != "moved" and c.items for c in held)
        counts = load_results(s, out).to_dict()
        assert counts == {"added": 0, "updated": len(changed), "unchanged": n - len(changed), "skipped": 0}
        # what the session shows is the new load, not what it held
        assert s.get(Call, "c00005") is held[0]
        assert [(i.item_id, i.answer, i.human_answer) for i in held[0].items] == [
            ("x.a", "no", "yes"), ("x.b", "yes", None), ("x.c", "na", None)]
        assert all(c.agent_id == "moved" and {i.answer for i in c.items} == {"yes"} for c in held[1:])
    with sessions(engine)() as s:
        assert table_items(s) == expected_items(records)
        call = s.get(Call, "c00005")
        assert (call.score, call.counted_review_id, call.reviewed_score) == (0.5, kept, 1.0)  # yes, yes now
        review = s.get(Review, kept)
        assert review.state == "submitted" and [(a.item_id, a.answer) for a in review.answers] == [("x.a", "yes")]
        assert s.scalar(select(func.count()).select_from(ReviewAnswer)) == 1 + (1 + 10 % 4)
        moved = {c for c in s.scalars(select(Call.call_id).where(Call.agent_id == "moved"))}
        assert moved == {f"c{k:05d}" for k in changed if k != 5}
        assert all(c.result_sha256 == file_sha(out, c.call_id) for c in s.scalars(select(Call)))
        # the calls that did not change kept their very item rows; the other reviewed call is as it was
        now = dict(s.execute(select(CallItem.id, CallItem.call_id)).all())
        assert {i: c for i, c in unchanged_items.items() if int(c[1:]) not in changed} == \
            {i: c for i, c in now.items() if int(c[1:]) not in changed}
        other_call = s.get(Call, "c00010")
        assert (other_call.counted_review_id, other_call.reviewed_score) == (other, other_score) and other_score == 1.0
        assert {i.human_answer for i in other_call.items} == {"yes"}


def test_bad_files_in_the_middle_of_a_batch_are_skipped_and_the_rest_loaded(engine, tmp_path: Path,  # noqa: F811
                                                                             monkeypatch, caplog):
    monkeypatch.setattr(loader, "BATCH", 10)  # so the bad files sit inside several small batches
    records = [big_record(k) for k in range(35)]
    out = tmp_path / "out"
    write_run(out, records)
    calls = out / "calls"
    (calls / "c00004" / "call.json").write_text('{"call_id": "c00004", "status": "ok", ')  # cut short
    (calls / "c00012" / "call.json").write_text(json.dumps({**records[12], "status": "failed"}))
    (calls / "c00020" / "call.json").write_text(json.dumps({**records[20], "call_id": "c00099"}))  # misnamed
    (calls / "c00021" / "call.json").write_text("[1, 2]")  # JSON, but not a call
    bad_item = {**records[27], "scorecard": {**records[27]["scorecard"],
                                             "items": [{"id": "opening.greeting"}]}}  # no answer
    (calls / "c00027" / "call.json").write_text(json.dumps(bad_item))
    (calls / "c00030" / "call.json").unlink()  # a folder without a call.json is not a call
    records[33]["sentiment"]["customer_end"] = float("nan")  # Python's json writes NaN: loaded all the same
    (calls / "c00033" / "call.json").write_text(json.dumps(records[33]))
    skipped = {4, 12, 20, 21, 27}
    with caplog.at_level(logging.WARNING, logger="callqa"), sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 35 - len(skipped) - 1, "updated": 0, "unchanged": 0,
                                                  "skipped": len(skipped)}
    warned = sorted(Path(r.args[0]).parent.name for r in caplog.records if "not loaded" in r.getMessage())
    assert warned == ["c00004", "c00020", "c00021", "c00027"]  # a failed call is skipped without a word
    assert "is not its folder's name" in caplog.text
    loaded = [r for k, r in enumerate(records) if k not in skipped | {30}]
    with sessions(engine)() as s:
        assert set(s.scalars(select(Call.call_id))) == {r["call_id"] for r in loaded}
        assert table_items(s) == expected_items(loaded)
        nan = s.get(Call, "c00033").customer_sentiment_end
        assert nan is None or math.isnan(nan)  # SQLite keeps a NaN as NULL, PostgreSQL as NaN
    # fixed files load on the next run, next to the unchanged others
    write_run(out, [records[4], records[27]])
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 2, "updated": 0, "unchanged": len(loaded), "skipped": 3}
    with sessions(engine)() as s:
        assert table_items(s) == expected_items(loaded + [records[4], records[27]])


def test_a_large_run_is_read_by_processes_with_the_same_result(engine, tmp_path: Path, monkeypatch,  # noqa: F811
                                                              caplog):
    """The reading processes (here from 50 folders on, 16 files a task) give what reading in
    this process gives: the same calls, items, skips and warnings, in order."""
    monkeypatch.setattr(loader, "PARALLEL_FROM", 50)
    monkeypatch.setattr(loader, "TASK_FILES", 16)
    monkeypatch.setattr(loader, "BATCH", 40)
    monkeypatch.setattr(loader, "_single_threaded", lambda: True)  # whatever else this test process runs
    pools = []
    real_pool = loader._reader_pool
    monkeypatch.setattr(loader, "_reader_pool", lambda files: pools.append(real_pool(files)) or pools[-1])
    records = [big_record(k) for k in range(300)]
    out = tmp_path / "out"
    write_run(out, records)
    (out / "calls" / "c00100" / "call.json").write_text("{")
    (out / "calls" / "c00200" / "call.json").write_text(json.dumps({**records[200], "call_id": "c00201"}))
    with caplog.at_level(logging.WARNING, logger="callqa"), sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 298, "updated": 0, "unchanged": 0, "skipped": 2}
    assert pools and pools[0] is not None  # it did read with processes
    assert [Path(r.args[0]).parent.name for r in caplog.records if "not loaded" in r.getMessage()] == [
        "c00100", "c00200"]
    loaded = [r for k, r in enumerate(records) if k not in (100, 200)]
    with sessions(engine)() as s:
        assert set(s.scalars(select(Call.call_id))) == {r["call_id"] for r in loaded}
        assert table_items(s) == expected_items(loaded)
        assert all(c.result_sha256 == file_sha(out, c.call_id) for c in s.scalars(select(Call)))
    records[7] = {**records[7], "metadata": {**records[7]["metadata"], "queue": "moved"}}
    write_run(out, [records[7], records[100]])
    with sessions(engine).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 1, "updated": 1, "unchanged": 297, "skipped": 1}
    with sessions(engine)() as s:
        assert s.get(Call, "c00007").queue == "moved" and s.get(Call, "c00100") is not None


def test_a_process_running_other_threads_reads_the_run_itself(monkeypatch):
    import threading

    monkeypatch.setattr(loader, "PARALLEL_FROM", 1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert loader._reader_pool(10) is None  # no fork beside a running thread
    finally:
        stop.set()
        other.join()
