"""``callqa insights``: the files it writes, the self-contained escaped HTML, clear errors, and
(slow) the whole way from a real ``callqa run`` of the written sample conversations."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from insights_helpers import Call, topic_calls, write_run

from pipeline.cli import main
from pipeline.errors import EXIT_OK, EXIT_USAGE
from pipeline.insights.html import render_html

FILES = ["insights.json", "topics.csv", "topic_trends.csv", "drivers.csv", "repeat_contacts.csv", "insights.html"]
NASTY = 'my bill says <script>alert("x")</script> & "twice" charged'


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"url\(", page)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    calls = topic_calls(["2026-11-02", "2026-11-09"])
    calls.append(Call("evil-1", "2026-11-10T10:00:00Z", NASTY, customer="c0001", channel="email",
                      utterance_id="m002"))
    calls.append(Call("odd id?x=1&y=<2>", "2026-11-10T11:00:00Z", NASTY, customer="c0002"))
    return write_run(out, calls)


def test_writes_every_file(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "ins"
    assert main(["insights", str(results), "--out", str(dest), "--from", "2026-11-02", "--to", "2026-11-15"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "wrote" in printed and "5 topics" in printed
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)
    data = json.loads((dest / "insights.json").read_text())
    assert data["period"] == {"from": "2026-11-02", "to": "2026-11-16", "last_day": "2026-11-15", "days": 14}
    assert data["contacts"]["n"] == 62 and len(data["topics"]) == 5
    with (dest / "topics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and all(r["call_ids"] and r["n"] == "62" for r in rows)
    assert sum(int(r["k"]) for r in rows) + data["without_topic"]["n"] == 62
    with (dest / "topic_trends.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 5 * 2  # two weeks per topic
    with (dest / "drivers.csv").open() as f:
        assert {r["measure"] for r in csv.DictReader(f)} == {"problem", "negative", "escalated_unresolved", "repeat"}
    with (dest / "repeat_contacts.csv").open() as f:
        kinds = {r["by"] for r in csv.DictReader(f)}
    assert kinds == {"overall", "team", "agent", "topic", "channel"}
    # everything written is private (quotes of customers), as every result is
    assert {p.name: p.stat().st_mode & 0o777 for p in dest.iterdir()} == {name: 0o600 for name in FILES}
    # the store is kept beside the results, private too; a second run reads nothing again
    assert (results / ".callqa-insights.sqlite").stat().st_mode & 0o777 == 0o600
    assert main(["insights", str(results), "--out", str(dest), "--to", "2026-11-15"]) == EXIT_OK
    assert "0 added, 0 updated" in capsys.readouterr().out


def test_html_self_contained_and_escaped(results: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ins"
    assert main(["insights", str(results), "--out", str(dest), "--store", str(tmp_path / "other.sqlite"),
                 "--from", "2026-11-02", "--to", "2026-11-15"]) == EXIT_OK
    assert (tmp_path / "other.sqlite").is_file() and not (results / ".callqa-insights.sqlite-journal").exists()
    page = (dest / "insights.html").read_text()
    assert_self_contained(page)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in page
    assert "<svg" in page
    data = json.loads((dest / "insights.json").read_text())
    # every topic links to its calls in the review app, with their quotes
    for topic in data["topics"]:
        assert f'id="topic-{topic["topic_id"]}"' in page
        for ev in topic["calls"][:50]:
            assert f'href="/calls/{ev["call_id"]}"' in page or ev["call_id"].startswith("odd")
    assert 'href="/calls/odd%20id%3Fx%3D1%26y%3D%3C2%3E"' in page  # an id is one path segment, quoted
    assert "message 2" in page  # a written reason says its message
    assert render_html(data) == page  # the app shows the same page from insights.json


def test_clear_errors(tmp_path: Path, results: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["insights", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "no such results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["insights", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "not a callqa results folder" in capsys.readouterr().err
    assert main(["insights", str(results), "--out", str(tmp_path / "x"), "--from", "2026-02-30"]) == EXIT_USAGE
    assert "--from '2026-02-30' is not a date" in capsys.readouterr().err
    assert main(["insights", str(results), "--out", str(tmp_path / "x"), "--from", "2026-11-10",
                 "--to", "2026-11-01"]) == EXIT_USAGE
    assert "the period is empty" in capsys.readouterr().err
    assert main(["insights", str(results), "--out", str(tmp_path / "x"), "--baseline", "2026-10-01"]) == EXIT_USAGE
    assert "expected FROM:TO" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_results_without_contact_blocks(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", [Call(f"old{i}", f"2026-11-0{1 + i}T10:00:00Z", None, customer="c1",
                                            contact=False) for i in range(4)])
    assert main(["insights", str(out), "--out", str(tmp_path / "ins")]) == EXIT_OK
    data = json.loads((tmp_path / "ins" / "insights.json").read_text())
    assert data["topics"] == [] and any(n.startswith("no contact reasons") for n in data["notes"])
    assert "no contact reasons" in (tmp_path / "ins" / "insights.html").read_text()


@pytest.mark.slow
def test_real_run_of_written_samples(tmp_path: Path) -> None:
    """``callqa run`` of the sample chats, then ``callqa insights`` over its results, in fresh
    processes as a user runs them."""
    out = tmp_path / "run"
    done = run_cli("run", str(ROOT / "interactions_sample" / "chat"), "--out", str(out), "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    dest = tmp_path / "ins"
    done = run_cli("insights", str(out), "--out", str(dest), "--from", "2025-01-01", "--to", "2025-12-31")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)
    data = json.loads((dest / "insights.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted(out.glob("calls/*/call.json"))]
    ok = [r for r in records if r["status"] == "ok"]
    assert data["contacts"]["n"] == len(ok) > 0
    reasons = {r["call_id"]: r["contact"]["reason"] for r in ok
               if isinstance(r.get("contact"), dict) and isinstance(r["contact"].get("reason"), dict)
               and r["contact"]["reason"].get("text")}
    assert data["contacts"]["with_reason"] == len(reasons)
    if not reasons:
        assert any(n.startswith("no contact reasons") for n in data["notes"])
    for topic in data["topics"] + [{"calls": data["without_topic"]["calls"]}]:
        for ev in topic["calls"]:  # every quote is the record's reason, with its message number
            assert ev["quote"] == reasons[ev["call_id"]]["text"] and ev["channel"] == "chat"
            assert ev["utterance_id"] == reasons[ev["call_id"]].get("utterance_id")
            if reasons[ev["call_id"]].get("message") is not None:
                assert ev["message"] == reasons[ev["call_id"]]["message"]
    # the chats' customers are hashed in the records: every chat has a customer
    assert data["repeat_contacts"]["overall"]["with_customer"] == sum(
        1 for r in ok if r["source"].get("customer_hash"))
    assert_self_contained((dest / "insights.html").read_text())


def test_csv_cells_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    """A customer's words become CSV cells (a topic's example reason, summary.csv's contact
    reason): one starting with = + - @ is written with a leading ' so a spreadsheet shows it."""
    from pipeline.interaction.writers import csv_text

    text = csv_text([{"reason": "=HYPERLINK(\"http://x\")", "n": -3, "ids": ["a", "b"], "none": None},
                     ["+1 555", 0.5, "@me", "plain"]], ["reason", "n", "ids", "none"])
    rows = list(csv.reader(text.splitlines()))
    assert rows == [["reason", "n", "ids", "none"], ["'=HYPERLINK(\"http://x\")", "-3", "a; b", ""],
                    ["'+1 555", "0.5", "'@me", "plain"]]
