"""The manager report and the coaching reports: periods and baselines, the figures, the files
written (self-contained, escaped HTML; CSV; JSON), clips read from the records of the calls
answered "no" only, no trend drawn from too few, and the ``callqa report`` command."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import ConfigError, EXIT_OK, EXIT_USAGE
from pipeline.insights import report as rep
from pipeline.insights.external import import_file
from pipeline.insights.store import InsightStore
from qa_report_helpers import ITEMS, write_call, write_csv

ODD_AGENT = "t<1>&"
"""An agent id that must be escaped in HTML and changed in a file name."""


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Billing (a1, a2, a3; 12 calls each in week 47, 12 a week for the team in weeks 44-46) and
    tech (one agent, 3 calls). a1 skips empathy in 10 of 12 calls of week 47."""
    out = tmp_path_factory.mktemp("report") / "out"
    surveys = []
    n = 0
    for agent in ("a1", "a2", "a3"):
        for i in range(12):
            answers = {item: "yes" for item in ITEMS}
            if agent == "a1" and i < 10:
                answers["courtesy.empathy"] = "no"
            if i % 4 == 0:
                answers["closing.thanks"] = "no"
            cid = f"{agent}-w47-{i:02d}"
            write_call(out, cid, f"2026-11-{16 + i % 5:02d}T{9 + i % 8:02d}:{n % 60:02d}:00Z", agent=agent,
                       answers=answers, customer=f"+1 555 300 {n:04d}")
            surveys.append(f"{cid},{5 if answers['courtesy.empathy'] == 'yes' else 3},{9 if agent != 'a1' else 6}")
            n += 1
    for week_start in (26, 2, 9):  # weeks 44, 45, 46
        month = 10 if week_start == 26 else 11
        for i in range(12):
            answers = {item: ("no" if (i + week_start) % 5 == 0 else "yes") for item in ITEMS}
            write_call(out, f"b-{month}-{week_start:02d}-{i:02d}",
                       f"2026-{month:02d}-{week_start + i % 5:02d}T10:00:00Z",
                       agent=("a1", "a2", "a3")[i % 3], answers=answers)
    for i in range(3):
        write_call(out, f"tech-{i}", f"2026-11-17T1{i}:00:00Z", agent=ODD_AGENT, team="tech",
                   answers={"opening.greeting": "no", "courtesy.empathy": "yes", "closing.thanks": "yes"})
    with InsightStore.for_run(out) as store:
        store.update(out)
        import_file(store, out, "surveys", write_csv(out.parent / "s.csv", "call_id,csat,nps", *surveys,
                                                     "nowhere,4,8"), load_config().insights)
    return out


@pytest.fixture(scope="module")
def data(out: Path) -> dict:
    config = load_config(None, ['insights.goals={qa_score: ">= 0.9", csat: ">= 4"}',
                                'insights.team_goals={tech: {qa_score: ">= 0.5"}}'])
    with InsightStore.for_run(out) as store:
        return rep.build_report(store, config, "week", end="2026-11-18")


def test_periods() -> None:
    w = rep.window("week", end="2026-11-18")
    assert (w["start"], w["end"], w["last_day"]) == ("2026-11-16", "2026-11-23", "2026-11-22")
    assert w["label"] == "2026-W47 (2026-11-16 to 2026-11-22)"
    assert rep.window("month", end="2026-02-10")["end"] == "2026-03-01"
    assert rep.window("month", end="2026-12-31")[("end")] == "2027-01-01"
    assert rep.window("day", end="2026-11-18")["end"] == "2026-11-19"
    assert rep.window("week", newest=rep.date(2026, 11, 22))["start"] == "2026-11-16"
    c = rep.window(start="2026-11-01", to="2026-11-10")
    assert (c["kind"], c["start"], c["end"]) == ("custom", "2026-11-01", "2026-11-11")
    b = rep.baseline_window(w, 28)
    assert (b["start"], b["end"]) == ("2026-10-19", "2026-11-16")
    b = rep.baseline_window(w, 28, "2026-10-01:2026-10-31")
    assert (b["start"], b["end"]) == ("2026-10-01", "2026-11-01")
    for call, message in [(lambda: rep.window(start="2026-11-01"), "give both"),
                          (lambda: rep.window(start="2026-11-05", to="2026-11-01"), "before"),
                          (lambda: rep.window("year", end="2026-11-01"), "--period: one of"),
                          (lambda: rep.window("week", end="18/11/2026"), "--end: a date"),
                          (lambda: rep.baseline_window(w, 28, "2026-10-01"), "--baseline: FROM:TO"),
                          (lambda: rep.baseline_window(w, 28, "2026-10-31:2026-10-01"), "before")]:
        with pytest.raises(ConfigError, match=message):
            call()
    with pytest.raises(rep.ReportError, match="no dated interaction"):
        rep.window("week")


def test_report_figures(data: dict) -> None:
    assert data["period"]["start"] == "2026-11-16" and data["counts"]["interactions"] == 39
    assert data["counts"]["surveys"] == 36 and data["counts"]["unmatched_surveys"] == 1
    teams = {t["team"]: {k["kpi"]: k for k in t["kpis"]} for t in data["teams"]}
    assert set(teams) == {"all teams", "billing", "tech"}
    assert teams["tech"]["qa_score"]["goal"] == ">= 0.5" and teams["billing"]["qa_score"]["goal"] == ">= 0.9"
    assert teams["tech"]["qa_score"]["n"] == 3 and teams["tech"]["qa_score"]["too_few"] is True
    assert teams["billing"]["csat"]["n"] == 36 and teams["billing"]["qa_score"]["baseline_n"] == 36
    items = {i["item"]: i for i in data["items"]}
    assert (items["courtesy.empathy"]["yes"], items["courtesy.empathy"]["no"]) == (29, 10)
    sat_items = {i["item"]: i for i in data["satisfaction"]["items"]}
    assert sat_items["courtesy.empathy"]["verdict"] == "higher when yes"
    assert sat_items["courtesy.empathy"]["n_no"] == 10
    weeks = {p["week"]: p for p in data["trend"]}
    assert weeks["2026-W47"]["n"] == 39 and weeks["2026-W46"]["n"] == 12 and not weeks["2026-W46"]["too_few"]
    agents = {a["agent_id"]: a for a in data["agents"]}
    assert agents["a1"]["interactions"] == 12 and agents[ODD_AGENT]["too_few"] is True


def test_coaching_finds_the_item_below_the_team_and_its_clips(data: dict) -> None:
    c = data["coaching"]["a1"]
    top = c["items_below_team"][0]
    assert (top["item"], top["verdict"], top["agent_n"], top["team_n"]) == ("courtesy.empathy", "below the team",
                                                                            12, 24)
    assert top["agent_yes_rate"] == pytest.approx(2 / 12, abs=1e-4) and top["high"] < 0
    assert {i["item"] for i in data["coaching"]["a2"]["items_below_team"]} <= {"closing.thanks", "opening.greeting"}
    empathy = [clip for clip in c["clips"] if clip["item"] == "courtesy.empathy"]
    assert len(empathy) == rep.CLIPS_PER_ITEM
    assert all(clip["call_id"].startswith("a1-w47-") for clip in empathy)
    first = empathy[0]
    assert first["start"] == 11.5 and first["link"] == f"/calls/{first['call_id']}?t=11.5"
    assert first["quote"] == f"quote of courtesy.empathy in {first['call_id']} <b>&"
    assert [p["week"] for p in c["trend"]][-1] == "2026-W47"
    assert data["coaching"][ODD_AGENT]["items_below_team"] == []  # alone in the team: no one to compare with


def test_only_the_records_of_the_clips_are_read(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read = []
    real = rep.Interaction.load

    def spy(path):  # noqa: ANN001, ANN202
        read.append(Path(path).parent.name)
        return real(path)

    monkeypatch.setattr(rep.Interaction, "load", staticmethod(spy))
    with InsightStore.for_run(out) as store:
        data = rep.build_report(store, load_config(), "week", end="2026-11-18")
    clips = {clip["call_id"] for c in data["coaching"].values() for clip in c["clips"]}
    assert read and set(read) == clips and len(read) == sum(len(c["clips"]) for c in data["coaching"].values())


def test_files_written_self_contained_and_escaped(data: dict, tmp_path: Path) -> None:
    written = rep.write_report(data, tmp_path / "r")
    names = {p.relative_to(tmp_path / "r").as_posix() for p in written}
    assert {"report.html", "report.json", "kpis.csv", "agents.csv", "items.csv", "satisfaction.csv",
            "coaching/a1.html", "coaching/a2.html", "coaching/a3.html"} <= names
    odd = rep.agent_file(ODD_AGENT)
    assert f"coaching/{odd}" in names and re.fullmatch(r"t_1__-[0-9a-f]{8}\.html", odd)
    assert json.loads((tmp_path / "r" / "report.json").read_text()) == json.loads(json.dumps(data))
    with open(tmp_path / "r" / "kpis.csv", newline="") as f:
        kpi_rows = list(csv.DictReader(f))
    assert kpi_rows[0]["team"] == "all teams" and {r["kpi"] for r in kpi_rows} >= {"qa_score", "fcr", "aht_s"}
    assert list(kpi_rows[0]) == list(rep.KPI_COLUMNS)
    for name, columns in (("agents.csv", rep.AGENT_COLUMNS), ("items.csv", rep.ITEM_COLUMNS),
                          ("satisfaction.csv", rep.SAT_COLUMNS)):
        assert (tmp_path / "r" / name).read_text().splitlines()[0] == ",".join(columns)
    for page in [tmp_path / "r" / "report.html", *(tmp_path / "r" / "coaching").iterdir()]:
        html = page.read_text()
        assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
        assert not re.search(r"<link|src=|@import|url\(", html, re.I)
        assert set(re.findall(r"https?://[^\s\"'<]+", html)) <= {"http://www.w3.org/2000/svg"}
        assert "t<1>&" not in html and "<b>&" not in html
    report_html = (tmp_path / "r" / "report.html").read_text()
    assert "t&lt;1&gt;&amp;" in report_html and f'href="coaching/{odd}"' in report_html
    assert "n=36" in report_html and "too few" in report_html and "<svg" in report_html
    coaching = (tmp_path / "r" / "coaching" / "a1.html").read_text()
    assert "quote of courtesy.empathy in a1-w47-00 &lt;b&gt;&amp;" in coaching
    assert 'href="/calls/a1-w47-00?t=11.5"' in coaching and "below the team" in coaching


def test_no_trend_drawn_from_too_few(out: Path) -> None:
    with InsightStore.for_run(out) as store:
        tech = rep.build_report(store, load_config(), "week", end="2026-11-18", team="tech")
        billing = rep.build_report(store, load_config(), "week", end="2026-11-18", team="billing")
    assert tech["counts"]["interactions"] == 3 and all(p["too_few"] for p in tech["trend"])
    html = rep.render_report_html(tech)
    assert "<polyline" not in html and "no trend: fewer than two weeks with enough data" in html
    assert "<polyline" in rep.render_report_html(billing)
    assert rep.render_coaching_html(billing, "a1").count("<polyline") == 0  # 12 calls in one week only
    with pytest.raises(KeyError):
        rep.render_coaching_html(billing, ODD_AGENT)


def test_cli_report(out: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "rep"
    assert main(["report", str(out), "--period", "week", "--end", "2026-11-18", "--out", str(target)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "QA report 2026-W47" in printed and "39 interactions" in printed and "4 coaching reports" in printed
    assert "1 survey rows" in printed and (target / "report.html").is_file()
    assert {p.stat().st_mode & 0o777 for p in target.rglob("*") if p.is_file()} == {0o600}  # private
    assert main(["report", str(out), "--from", "2026-11-01", "--to", "2026-11-30", "--baseline",
                 "2026-10-01:2026-10-31", "--team", "billing", "--out", str(tmp_path / "m")]) == EXIT_OK
    assert json.loads((tmp_path / "m" / "report.json").read_text())["baseline"]["start"] == "2026-10-01"
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text('insights:\n  goals: {qa_score: "about 0.9"}\n')
    assert main(["report", str(out), "--out", str(tmp_path / "never"), "--config", str(bad)]) == EXIT_USAGE
    assert "insights.goals.qa_score: 'about 0.9' is not a goal" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert main(["report", str(out), "--from", "2026-11-01", "--out", str(tmp_path / "never")]) == EXIT_USAGE
    assert "give both" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "calls").mkdir(parents=True)
    assert main(["report", str(empty), "--out", str(tmp_path / "never")]) == EXIT_USAGE
    assert "no dated interaction" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
