"""Surveys and ACD records imported into the insight store: matching by call id, by customer
and time (tolerance, closest, ties), unmatched and bad rows reported, no duplicates on re-import,
re-matching when calls arrive later, and the ``callqa import`` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import EXIT_CALLS_FAILED, EXIT_OK, EXIT_USAGE
from pipeline.insights.external import ImportFileError, import_file, rematch
from pipeline.insights.options import InsightsOptions
from pipeline.insights.store import InsightStore
from qa_report_helpers import write_call, write_csv

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "recordings_sample"
A = "+1 555 010 2030"
B = "bob@example.com"
HEADER = "call_id,customer,time,csat,nps,comment,channel"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    write_call(out, "c1", "2026-11-02T10:00:00Z", customer=A)
    write_call(out, "c2", "2026-11-02T10:03:00Z", customer=A)
    write_call(out, "c3", "2026-11-02T11:00:00Z", customer=B)
    write_call(out, "c4", "2026-11-03T09:00:00Z", customer="+1 555 010 4444")
    write_call(out, "c5", "2026-11-03T09:00:00Z", customer="+1 555 010 4444")  # same start: a tie
    return out


@pytest.fixture
def store(out: Path) -> InsightStore:
    s = InsightStore.for_run(out)
    s.update(out)
    yield s
    s.close()


def rows(store: InsightStore, kind: str = "surveys") -> list[dict]:
    cur = store.conn.execute(f"SELECT * FROM {kind} ORDER BY source_row")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur]


def test_matching_by_id_by_customer_and_time_closest_and_ties(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "s.csv", HEADER,
                  "c3,,,4,9,by id,",                                # 2: by call id
                  ",(555) 010-2030,2026-11-02T10:01:00Z,5,,close to c1,",   # 3: c1 60 s, c2 120 s away: c1
                  ",5550102030,2026-11-02T10:02:30+00:00,2,,close to c2,",  # 4: c2 30 s away
                  ",+15550102030,2026-11-02T10:01:30Z,3,,tie,",        # 5: 90 s from both: the earlier call
                  ",+1 555 010 4444,2026-11-03T09:00:10Z,4,,same start,",  # 6: c4 and c5 start together: c4
                  ",+1 555 010 2030,2026-11-02T10:06:01Z,1,,too late,",  # 7: 181 s after c2: unmatched
                  "nosuchcall,BOB@example.com,2026-11-02T11:01:00Z,5,,unknown id falls back,",  # 8: c3
                  ",+1 555 010 2030,2026-11-02T12:00:00+02:00,4,,zone,")   # 9: 10:00 UTC: c1
    report = import_file(store, out, "surveys", f, InsightsOptions(match_tolerance_s=120))
    got = {r["source_row"]: (r["call_id"], r["matched_by"]) for r in rows(store)}
    assert got == {2: ("c3", "call_id"), 3: ("c1", "customer_time"), 4: ("c2", "customer_time"),
                   5: ("c1", "customer_time"), 6: ("c4", "customer_time"), 7: (None, None),
                   8: ("c3", "customer_time"), 9: ("c1", "customer_time")}
    assert (report.matched_by_call_id, report.matched_by_customer, report.unmatched) == (1, 6, [7])
    assert report.added == 8 and not report.bad
    # the tolerance decides: 181 s is in with 200 s
    store.conn.execute("DELETE FROM surveys")
    import_file(store, out, "surveys", f, InsightsOptions(match_tolerance_s=200))
    assert {r["source_row"]: r["call_id"] for r in rows(store)}[7] == "c2"


def test_unmatched_rows_are_kept_reported_and_written_to_the_json_report(out: Path, store: InsightStore,
                                                                         tmp_path: Path) -> None:
    f = write_csv(tmp_path / "late.csv", HEADER, ",+1 555 999 0000,2026-11-02T10:00:00Z,4,,,",
                  "c1,,,5,,,", ",+1 555 999 0001,2026-11-09T10:00:00Z,,7,,")
    report = import_file(store, out, "surveys", f, InsightsOptions())
    assert report.unmatched == [2, 4] and report.still_unmatched == 2
    assert len(rows(store)) == 3 and [r["call_id"] for r in rows(store)] == [None, "c1", None]
    saved = json.loads(Path(report.report_file).read_text())
    assert saved["unmatched"] == [2, 4] and saved["kind"] == "surveys" and saved["added"] == 3
    assert Path(report.report_file) == out / "imports" / "surveys-late.json"
    text = report.summary()
    assert "unmatched: 2" in text and "unmatched rows (kept" in text and ": 2, 4" in text


def test_reimport_does_not_duplicate(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "s.csv", HEADER, "c1,,,5,9,great,", "c2,,,3,,,", "c2,,,3,,,")
    first = import_file(store, out, "surveys", f, InsightsOptions())
    assert first.added == 2 and first.duplicates == [4]  # the same row twice in one file is one row
    again = import_file(store, out, "surveys", f, InsightsOptions())
    assert again.added == 0 and again.duplicates == [2, 3, 4]
    assert len(rows(store)) == 2
    # the same rows in another file (an overlapping export) are not added again either
    other = write_csv(tmp_path / "export2.csv", "csat,call_id,nps,comment", "5,c1,9,great", "4,c3,,")
    third = import_file(store, out, "surveys", other, InsightsOptions())
    assert third.added == 1 and third.duplicates == [2]


def test_bad_rows_are_reported_with_row_number_and_reason(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "bad.csv", HEADER,
                  "c1,,,7,,,",                    # 2: csat out of range
                  "c1,,,abc,,,",                  # 3: not a number
                  "c1,,,,11,,",                   # 4: nps out of range
                  "c1,,,,5.5,,",                  # 5: nps not whole
                  ",+1 555 010 2030,yesterday,4,,,",  # 6: bad time
                  ",n/a,2026-11-02T10:00:00Z,4,,,",   # 7: customer neither phone nor mail
                  ",,,4,,,",                      # 8: nothing to match
                  "c1,,,4,,,fax",                 # 9: channel
                  "c1,,,,,,",                     # 10: no answer at all
                  "c1,,,4,,,phone,extra",         # 11: too many cells
                  "c2,,,0.5,,,",                  # 12: below 1
                  "c3,,,nan,,,",                  # 13: nan
                  "c2,,,4.5,10,fine,phone")        # 14: good
    report = import_file(store, out, "surveys", f, InsightsOptions())
    reasons = {b["row"]: b["reason"] for b in report.bad}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert reasons[2] == "csat '7' is out of range (from 1 to 5)"
    assert reasons[3] == "csat 'abc' is not a number"
    assert "nps '11' is out of range" in reasons[4] and "not a whole number" in reasons[5]
    assert "time 'yesterday'" in reasons[6] and "neither a phone number nor an e-mail" in reasons[7]
    assert "nothing to match" in reasons[8] and "channel 'fax'" in reasons[9]
    assert "no csat, nps or comment" in reasons[10]
    assert "cells" in reasons[11] and "out of range" in reasons[12] and "not a number" in reasons[13]
    assert report.added == 1 and [r["source_row"] for r in rows(store)] == [14]
    assert "bad row 2: csat '7' is out of range" in report.summary()


def test_acd_import_and_its_bad_rows(out: Path, store: InsightStore, tmp_path: Path) -> None:
    header = "call_id,customer,time,queue,queue_s,talk_s,hold_s,wrap_s,transfers,abandoned,agent_id"
    f = write_csv(tmp_path / "acd.csv", header,
                  "c1,,2026-11-02T10:00:00Z,billing,30,200,15,40,1,0,a1",
                  ",+1 555 010 2030,2026-11-02T10:03:20Z,billing,12,100,0,20,0,0,a1",
                  ",+1 555 777 0000,2026-11-02T10:05:00Z,billing,300,,,,,1,",
                  "c1,,2026-11-02T10:00:00Z,billing,30,-4,0,0,0,0,a1",
                  "c1,,2026-11-02T10:00:00Z,billing,30,20,0,0,1.5,0,a1",
                  "c1,,2026-11-02T10:00:00Z,billing,30,20,0,0,0,maybe,a1")
    report = import_file(store, out, "acd", f, InsightsOptions())
    got = rows(store, "acd")
    assert [(r["call_id"], r["talk_s"], r["transfers"], r["abandoned"]) for r in got] == [
        ("c1", 200.0, 1, 0), ("c2", 100.0, 0, 0), (None, None, None, 1)]
    assert report.unmatched == [4]
    assert {b["row"] for b in report.bad} == {5, 6, 7}
    assert "talk_s '-4' is out of range" in report.bad[0]["reason"]


def test_customers_are_stored_hashed_never_as_written(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "s.csv", HEADER, ",+1 555 010 2030,2026-11-02T10:00:00Z,5,,,",
                  ",carol@example.org,2026-11-02T10:00:00Z,5,,,")
    import_file(store, out, "surveys", f, InsightsOptions())
    store.conn.commit()
    store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    blob = b"".join(p.read_bytes() for p in out.iterdir() if p.name.startswith(".callqa-insights"))
    for raw in (b"5550102030", b"555 010 2030", b"carol@example.org", b"carol"):
        assert raw not in blob
    assert all(r["customer_hash"] and len(r["customer_hash"]) == 16 for r in rows(store))


def test_channel_limits_matching_by_customer(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "s.csv", HEADER, ",+1 555 010 2030,2026-11-02T10:00:00Z,5,,,mail",
                  ",+1 555 010 2030,2026-11-02T10:00:00Z,4,,,phone")
    report = import_file(store, out, "surveys", f, InsightsOptions())
    assert [r["call_id"] for r in rows(store)] == [None, "c1"] and report.unmatched == [2]


def test_rows_unmatched_before_match_once_their_call_arrives(out: Path, store: InsightStore, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "s.csv", HEADER, ",+1 555 010 6060,2026-11-05T08:00:30Z,2,,,", "c9,,,4,,,")
    assert import_file(store, out, "surveys", f, InsightsOptions()).unmatched == [2, 3]
    write_call(out, "c8", "2026-11-05T08:00:00Z", customer="+1 555 010 6060")
    write_call(out, "c9", "2026-11-06T08:00:00Z")
    store.update(out)
    assert rematch(store, InsightsOptions()) == {"surveys": 2, "acd": 0}
    assert [r["call_id"] for r in rows(store)] == ["c8", "c9"]
    # a matched call removed from the results: its rows are unmatched again, then match nothing
    import shutil
    shutil.rmtree(out / "calls" / "c9")
    store.update(out)
    rematch(store, InsightsOptions())
    assert [r["call_id"] for r in rows(store)] == ["c8", None]


def test_unreadable_files_are_refused(out: Path, store: InsightStore, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_file(store, out, "surveys", tmp_path / "missing.csv", InsightsOptions())
    with pytest.raises(ImportFileError, match="empty file"):
        import_file(store, out, "surveys", write_csv(tmp_path / "e.csv", ""), InsightsOptions())
    with pytest.raises(ImportFileError, match="no csat, nps or comment column"):
        import_file(store, out, "surveys", write_csv(tmp_path / "n.csv", "call_id,time", "c1,"), InsightsOptions())
    with pytest.raises(ImportFileError, match="call_id column, or customer and time"):
        import_file(store, out, "surveys", write_csv(tmp_path / "m.csv", "customer,csat", "x,4"), InsightsOptions())
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"call_id,csat\nc1,\xff\xfe4\n")
    with pytest.raises(ImportFileError, match="not a readable CSV"):
        import_file(store, out, "surveys", binary, InsightsOptions())
    assert not rows(store)


def test_cli_import_exit_codes_and_messages(out: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = write_csv(tmp_path / "good.csv", HEADER, "c1,,,5,9,,", ",+1 555 999 1234,2026-11-02T10:00:00Z,3,,,")
    assert main(["import", "surveys", str(out), str(good)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "2 rows read" in printed and "matched by call id: 1" in printed and "unmatched: 1" in printed
    assert "unmatched rows (kept" in printed and ": 3" in printed
    bad = write_csv(tmp_path / "bad.csv", HEADER, "c2,,,9,,,", "c2,,,4,,,")
    assert main(["import", "surveys", str(out), str(bad)]) == EXIT_CALLS_FAILED
    assert "bad row 2: csat '9' is out of range" in capsys.readouterr().out
    assert main(["import", "surveys", str(out), str(tmp_path / "nope.csv")]) == EXIT_USAGE
    assert "cannot read the surveys file" in capsys.readouterr().err
    assert main(["import", "acd", str(tmp_path / "no-out"), str(good)]) == EXIT_USAGE
    assert "no such results folder" in capsys.readouterr().err
    assert main(["import", "surveys", str(out), str(good), "--set", "insights.match_tolerance_s=-1"]) == EXIT_USAGE
    assert "insights.match_tolerance_s" in capsys.readouterr().err


def test_the_sample_files_import_against_the_sample_calls(tmp_path: Path) -> None:
    """recordings_sample/surveys.csv and acd.csv against records of the sample calls (as the
    manifest describes them, its customer numbers hashed): each call's survey and ACD row match,
    by call id or by customer and time (c009's survey by the number c002 called from too, days
    apart), the extra survey and the two abandoned calls match nothing and are reported."""
    out = tmp_path / "out"
    with open(SAMPLES / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    for row in manifest:
        write_call(out, row["call_id"], row["started_at"], agent=row["agent_id"], team=row["queue"],
                   customer=row.get("customer") or None)
    with InsightStore.for_run(out) as store:
        store.update(out)
        surveys = import_file(store, out, "surveys", SAMPLES / "surveys.csv", InsightsOptions())
        acd = import_file(store, out, "acd", SAMPLES / "acd.csv", InsightsOptions())
        matched = {r[0] for r in store.conn.execute("SELECT call_id FROM surveys WHERE call_id IS NOT NULL")}
        acd_matched = dict(store.conn.execute("SELECT source_row, call_id FROM acd"))
    assert not surveys.bad and not acd.bad
    assert matched == {r["call_id"] for r in manifest}
    assert (surveys.matched_by_call_id, surveys.matched_by_customer, surveys.unmatched) == (6, 4, [12])
    assert (acd.matched_by_call_id, acd.matched_by_customer) == (8, 2)
    # two abandoned calls: one by c007's customer 14 minutes before c007 (outside the tolerance)
    assert acd.unmatched == [8, 13] and acd_matched[4] == "c003" and acd_matched[12] == "c010"
