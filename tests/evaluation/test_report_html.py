"""report.html and its inline-SVG charts, from a synthetic report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from synthetic_report import ITEMS, MISSING, make_report

from pipeline.evaluation.plots import bar_chart, confusion_grid, scatter
from pipeline.evaluation.report_html import clock, render_html, write_html

SVG_NS = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, re.S)


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


# ---------------------------------------------------------------- plots


def test_bar_chart_is_xml_with_values_and_na():
    svg = bar_chart(["c<1>", "c&2", "c3"], [0.5, None, 0.25], 'WER "per" call', fmt="{:.1%}")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.find(f"{SVG_NS}title").text == 'WER "per" call'
    words = texts(svg)
    assert "c<1>" in words and "c&2" in words
    assert "50.0%" in words and "25.0%" in words and "n/a" in words
    bars = root.findall(f"{SVG_NS}rect")
    assert len(bars) == 2  # no bar for the None value
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] == 2 * widths[1]  # scaled to the largest value


def test_bar_chart_max_value_caps_bars_and_same_input_same_bytes():
    svg = bar_chart(["a", "b"], [2.0, 0.5], "t", max_value=1.0)
    widths = [float(r.get("width")) for r in ET.fromstring(svg).findall(f"{SVG_NS}rect")]
    assert widths == [300.0, 150.0]
    assert "2.00" in texts(svg)  # the real value is printed even when the bar is cut
    assert svg == bar_chart(["a", "b"], [2.0, 0.5], "t", max_value=1.0)
    empty = ET.fromstring(bar_chart([], [], "nothing"))
    assert "no data" in [t.text for t in empty.iter(f"{SVG_NS}text")]


def test_scatter_has_diagonal_points_and_skips_undefined():
    svg = scatter([(0.0, 0.0, "c1"), (1.0, 0.5, "<c2>"), (None, 0.3, "c3")], "score", "gold", "auto")
    root = ET.fromstring(svg)
    circles = root.findall(f"{SVG_NS}circle")
    assert len(circles) == 2
    assert circles[1].find(f"{SVG_NS}title").text == "<c2>: gold 1, auto 0.5"
    diagonal = [ln for ln in root.findall(f"{SVG_NS}line") if ln.get("stroke-dasharray")]
    assert len(diagonal) == 1
    d = diagonal[0]
    # y = x: from the bottom-left corner to the top-right corner
    assert float(d.get("x1")) < float(d.get("x2")) and float(d.get("y1")) > float(d.get("y2"))
    assert float(d.get("x1")) == float(circles[0].get("cx")) and float(d.get("y1")) == float(circles[0].get("cy"))
    assert "1 not shown (n/a)" in texts(svg)


def test_confusion_grid_counts_rows_gold_columns_auto():
    matrix = {"yes": {"yes": 8, "no": 1, "na": 0}, "no": {"yes": 2, "no": 5, "na": 0}, "na": {"yes": 0, "no": 0}}
    svg = confusion_grid(matrix, ["yes", "no", "na"], "greeting & <co>")
    root = ET.fromstring(svg)
    cells = root.findall(f"{SVG_NS}rect")
    assert len(cells) == 9
    tips = [c.find(f"{SVG_NS}title").text for c in cells]
    assert tips[1] == "gold yes, automatic no: 1"
    assert tips[3] == "gold no, automatic yes: 2"
    assert tips[8] == "gold na, automatic na: 0"
    assert root.find(f"{SVG_NS}title").text == "greeting & <co>"
    assert cells[0].get("fill") != cells[1].get("fill")  # agreement and error coloured apart
    assert svg == confusion_grid(matrix, ["yes", "no", "na"], "greeting & <co>")


# ---------------------------------------------------------------- page


def test_html_has_header_cards_and_tables():
    html = render_html(make_report())
    assert html.startswith("<!DOCTYPE html>")
    assert "recordings_sample" in html
    assert ">ab12cd34ef56</code>" in html  # short sha
    assert "3 evaluated, 1 failed, 1 unlabelled" in html
    assert "c004</code>: AudioError: c004.wav: empty file" in html
    assert "0123456789abcdef" in html and "Inbound support v1.0" in html and "0.4.0" in html
    # cards: WER, CER, DER no collar / collar, role accuracy, item accuracy, kappa, mean F1, MAE, Pearson
    for figure in ("12.3%", "5.7%", "8.8% / 4.1%", "collar 0.25 s", "97.3%", "77.8%", ">0.600<", ">0.822<",
                   ">0.111<", ">0.866<"):
        assert figure in html, figure
    for item in ITEMS:
        assert f"<code>{item}</code>" in html
    assert "<td>66.7%</td><td>1.000</td><td>0.500</td><td>0.667</td><td>0.400</td>" in html  # verification row
    assert "<td>16.0%</td><td>6.0%</td><td>16.0%</td><td><span class=\"na\">n/a</span></td>" in html  # c003
    assert "diarization" in html and "rttm" in html
    assert "-0.250" in html  # c002's score difference
    assert "backend: faster-whisper" in html and "compute_type: int8" in html  # config and models as YAML


def test_html_disagreements_escape_quotes_and_show_evidence():
    html = render_html(make_report())
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; that&#x27;s it" in html
    assert "phrase &lt; 0.6 &amp; no match" in html
    assert "1:41\u20131:45" in html  # 101.2 s - 104.9 s
    assert "confidence 0.62" in html
    assert "Looked for: an identity check by the agent" in html
    assert "No evidence: nothing in the call matched." in html
    # grouped per item in template order: verification before thanks
    assert html.index("<h3><code>opening.verification</code> (1)") < html.index("<h3><code>closing.thanks</code> (1)")


def test_html_is_deterministic_and_has_one_svg_per_plot():
    report = make_report()
    html = render_html(report)
    assert html == render_html(make_report())
    charts = svgs(html)
    # WER per call, DER per call, F1 per item, 3 confusion grids, score scatter
    assert len(charts) == 7
    for svg in charts:
        ET.fromstring(svg)
    titles = [ET.fromstring(s).find(f"{SVG_NS}title").text for s in charts]
    assert titles == ["WER per call", "DER per call (no collar)", "F1 per item", *ITEMS,
                      "Total score: automatic vs gold"]
    assert "http" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", html)  # nothing external
    assert "<script" not in html


def test_html_without_scorecard_and_speakers():
    report = make_report(scorecard=None, speakers=MISSING)
    html = render_html(report)
    assert html.count("No scorecard in this run.") == 2  # scorecard and disagreements sections
    assert "No speaker results in this report" in html
    assert len(svgs(html)) == 1  # WER per call only
    assert "12.3%" in html
    assert '<div class="value na">n/a / n/a</div>' in html  # DER card
    assert "alert" not in html


def test_html_handles_missing_sections_and_none_values():
    html = render_html({"format": "callqa-eval-report/1"})
    assert "No transcription results" in html and "No scorecard" in html
    report = make_report(transcription__overall__wer=None, data__failed={}, scorecard_template=None,
                         **{"scorecard__items__closing.thanks__f1": None})
    html = render_html(report)
    assert '<div class="label">WER</div><div class="value na">n/a</div>' in html
    assert "no scorecard" in html  # template row
    f1_chart = next(s for s in svgs(html) if "F1 per item" in s)
    assert "n/a" in texts(f1_chart)


def test_write_html(tmp_path):
    path = write_html(make_report(), tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == render_html(make_report())


def test_clock():
    assert clock(101.2) == "1:41" and clock(104.9, up=True) == "1:45" and clock(5) == "0:05"
    assert clock(3725.0) == "62:05" and clock(None) == "?"


def test_html_shows_how_well_the_confidences_are_calibrated():
    from pipeline.learning.calibration import ece

    report = make_report()
    answers = report["scorecard"]["answers"]
    confidences = {"c001": 0.95, "c002": 0.6, "c003": 0.8}
    for cid, per_call in answers.items():
        for answer in per_call.values():
            answer["confidence"] = confidences[cid]
    html = render_html(report)
    conf = [confidences[c] for c, per_call in answers.items() for _ in per_call]
    right = [a["auto"] == a["gold"] for per_call in answers.values() for a in per_call.values()]
    expected = f"Reliability of the confidences (ECE {ece(conf, right):.3f})"
    titles = [ET.fromstring(s).find(f"{SVG_NS}title").text for s in svgs(html)]
    assert expected in titles
    assert "Reliability of the confidences" not in render_html(make_report())  # answers without confidences
