"""Comparing two evaluation reports (``callqa eval compare A B``)."""

from __future__ import annotations

import json

import pytest
from synthetic_report import MISSING, make_report

from pipeline.errors import InputError
from pipeline.evaluation.compare import (
    METRICS, better, compare_reports, config_changes, flatten_metrics, format_comparison, load_report, sign_test,
)


def rows(cmp: dict) -> dict[str, dict]:
    return {m["metric"]: m for m in cmp["metrics"]}


def test_flatten_expands_roles_and_items_and_skips_counts():
    flat = flatten_metrics(make_report())
    assert flat["transcription.overall.wer"] == 0.1234
    assert flat["transcription.roles.customer.wer"] == 0.159
    assert flat["scorecard.items.opening.verification.recall"] == 0.5
    assert flat["scorecard.items.closing.thanks.kappa"] is None  # present but undefined
    assert flat["speakers.overall.jer_collar"] is None
    assert not any(k.endswith((".n", ".ref_words", ".answers", ".missed", ".total")) for k in flat)
    # 2 + 2 roles + 5 speakers + 4 overall + 4 scores + 3 items x 5
    assert len(flat) == 2 + 2 + 5 + 4 + 4 + 15


def test_direction_of_metrics():
    assert METRICS["transcription.overall.wer"] == "lower" and METRICS["scorecard.scores.mae"] == "lower"
    assert better("scorecard.items.opening.greeting.f1") == "higher"
    assert better("transcription.roles.agent.wer") == "lower"
    assert better("speakers.overall.role_accuracy") == "higher"
    with pytest.raises(KeyError):
        better("scorecard.items.opening.greeting.n")


def test_same_report_changes_nothing():
    cmp = compare_reports(make_report(), make_report())
    counts = cmp["counts"]
    assert counts["improved"] == counts["regressed"] == counts["added"] == counts["removed"] == 0
    assert counts["n/a"] == 2 and counts["same"] == 30
    assert cmp["calls_changed"] == [] and cmp["warnings"] == []


def test_lower_wer_is_an_improvement_and_lower_f1_a_regression():
    a = make_report()
    b = make_report(transcription__overall__wer=0.1, speakers__overall__role_accuracy=0.99,
                    **{"scorecard__items__closing.thanks__f1": 0.7, "transcription__roles__agent__wer": 0.2})
    r = rows(compare_reports(a, b))
    assert r["transcription.overall.wer"] == {"metric": "transcription.overall.wer", "a": 0.1234, "b": 0.1,
                                              "delta": -0.0234, "verdict": "improved", "better": "lower",
                                              "units": {"unit": "calls", "better": 0, "worse": 0, "p": 1.0}}
    assert r["transcription.roles.agent.wer"]["verdict"] == "regressed"
    assert r["speakers.overall.role_accuracy"]["verdict"] == "improved"
    thanks = r["scorecard.items.closing.thanks.f1"]
    assert (thanks["a"], thanks["b"], thanks["delta"], thanks["verdict"]) == (0.8, 0.7, -0.1, "regressed")
    assert r["scorecard.items.closing.thanks.recall"]["verdict"] == "same"
    cmp = compare_reports(a, b)
    assert cmp["counts"]["improved"] == 2 and cmp["counts"]["regressed"] == 2


def test_tolerance_and_undefined_values():
    a = make_report()
    b = make_report(transcription__overall__cer=0.05670001, speakers__overall__der=None,
                    speakers__overall__jer_collar=0.2)
    r = rows(compare_reports(a, b, tolerance=1e-6))
    assert r["transcription.overall.cer"]["verdict"] == "same"
    assert r["speakers.overall.der"]["verdict"] == "n/a" and r["speakers.overall.der"]["delta"] is None
    assert r["speakers.overall.jer_collar"] == {"metric": "speakers.overall.jer_collar", "a": None, "b": 0.2,
                                                "delta": None, "verdict": "n/a", "better": "lower",
                                                "units": {"unit": "calls", "better": 0, "worse": 0, "p": 1.0}}
    assert rows(compare_reports(a, b, tolerance=0))["transcription.overall.cer"]["verdict"] == "regressed"


def test_added_and_removed_items_and_sections():
    a = make_report()
    new_item = {"n": 3, "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "kappa": None}
    b = make_report(**{"scorecard__items__opening.greeting": MISSING, "scorecard__items__closing.summary": new_item})
    cmp = compare_reports(a, b)
    r = rows(cmp)
    assert r["scorecard.items.opening.greeting.f1"] == {"metric": "scorecard.items.opening.greeting.f1", "a": 1.0,
                                                        "b": None, "delta": None, "verdict": "removed",
                                                        "better": "higher", "units": None}
    assert r["scorecard.items.closing.summary.f1"]["verdict"] == "added"
    assert r["scorecard.items.closing.summary.f1"]["b"] == 1.0
    assert cmp["counts"]["added"] == 5 and cmp["counts"]["removed"] == 5
    # one item's metrics stay together: A's items in order, then the one only B has
    item_rows = [m["metric"] for m in cmp["metrics"] if m["metric"].startswith("scorecard.items.")]
    assert item_rows[:5] == [f"scorecard.items.opening.greeting.{k}" for k in
                             ("accuracy", "precision", "recall", "f1", "kappa")]
    assert item_rows[-1] == "scorecard.items.closing.summary.kappa"
    no_speakers = compare_reports(a, make_report(speakers=MISSING))
    assert no_speakers["counts"]["removed"] == 5
    assert rows(no_speakers)["speakers.overall.der"]["a"] == 0.0876


def test_fixed_and_broken_answers():
    a = make_report()
    b = make_report(**{
        "scorecard__answers__c002__opening.verification": {"auto": "yes", "gold": "yes"},  # was no: fixed
        "scorecard__answers__c001__closing.thanks": {"auto": "na", "gold": "yes"},  # was yes: broken
        "scorecard__answers__c009": {"closing.thanks": {"auto": "no", "gold": "yes"}},  # only in B: ignored
    })
    cmp = compare_reports(a, b)
    assert cmp["calls_changed"] == [
        {"call_id": "c001", "item": "closing.thanks", "change": "broken", "a_auto": "yes", "b_auto": "na",
         "a_gold": "yes", "b_gold": "yes"},
        {"call_id": "c002", "item": "opening.verification", "change": "fixed", "a_auto": "no", "b_auto": "yes",
         "a_gold": "yes", "b_gold": "yes"},
    ]
    assert cmp["counts"]["fixed"] == 1 and cmp["counts"]["broken"] == 1
    assert compare_reports(a, make_report(scorecard=None))["calls_changed"] == []


def test_warnings_for_other_data_template_and_calls():
    a = make_report()
    b = make_report(data__sha256="ff" * 32, data__evaluated=["c001", "c002", "c005"],
                    scorecard_template__name="Outbound sales", speakers__collar_s=0.5)
    warnings = compare_reports(a, b)["warnings"]
    assert warnings[0] == ("not the same data (sha256 ab12cd34ef56 vs ffffffffffff): "
                           "differences may come from the data")
    assert any("evaluated calls differ: 1 only in A (c003); 1 only in B (c005)" in w for w in warnings)
    assert any(w.startswith("different scorecard templates: Inbound support v1.0") and "Outbound sales v1.0" in w
               for w in warnings)
    assert any("different DER collar (0.25 s vs 0.5 s)" in w for w in warnings)
    assert len(warnings) == 4
    edited = compare_reports(a, make_report(scorecard_template__sha256="beef" * 16))["warnings"]
    assert edited == ["the scorecard template Inbound support v1.0 (feedfeedfeed) changed between the reports "
                      "(its sha256 differs)"]


def test_format_comparison_orders_sections():
    a = make_report()
    b = make_report(data__sha256="ff" * 32, transcription__overall__wer=0.1,
                    **{"scorecard__items__closing.thanks__f1": 0.7,
                       "scorecard__answers__c002__opening.verification": {"auto": "yes", "gold": "yes"}})
    text = format_comparison(compare_reports(a, b))
    lines = text.splitlines()
    assert lines[0].startswith("warning: not the same data")
    assert text.index("Regressions (1):") < text.index("Improvements (1):") < text.index("Unchanged: 28 metrics")
    f1_line = next(ln for ln in lines if "scorecard.items.closing.thanks.f1" in ln)
    assert f1_line.split() == ["scorecard.items.closing.thanks.f1", "0.8000", "0.7000", "-0.1000", "higher"]
    wer_line = next(ln for ln in lines if "transcription.overall.wer" in ln)
    assert wer_line.split()[1:4] == ["0.1234", "0.1000", "-0.0234"]
    assert "Answers: 1 fixed (wrong in A, right in B), 0 broken" in text
    fixed = next(ln for ln in lines if ln.strip().startswith("fixed"))
    assert fixed.split() == ["fixed", "c002", "opening.verification", "A:", "no", "B:", "yes", "gold:", "yes"]
    assert "closing.thanks.recall" not in text  # unchanged metrics are only counted


def test_load_report_from_folder_and_file(tmp_path):
    report = make_report()
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert load_report(tmp_path) == report
    assert load_report(tmp_path / "report.json")["config_hash"] == "0123456789abcdef"


def test_load_report_errors_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="nowhere: no such report"):
        load_report(missing)
    with pytest.raises(InputError, match="no report.json in this folder"):
        load_report(tmp_path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "callqa-run/1", "calls": []}))
    with pytest.raises(InputError, match=r"other\.json: not a callqa evaluation report \(format 'callqa-run/1'"):
        load_report(other)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(InputError, match="list.json: not a callqa evaluation report"):
        load_report(listing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: not JSON"):
        load_report(broken)


def test_sign_test_needs_six_changed_units_in_one_direction():
    assert sign_test(0, 0) == 1.0 and sign_test(1, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(0.0625) and sign_test(0, 6) == pytest.approx(0.03125)
    assert sign_test(8, 1) == pytest.approx(0.0390625) and sign_test(7, 3) > 0.3


def test_a_change_borne_out_by_few_calls_or_answers_is_a_tie():
    a = make_report()
    # one call's WER down, another's up: the pooled WER fell, but that is no consistent change
    b = make_report(transcription__overall__wer=0.1, transcription__calls__c001__wer=0.05,
                    transcription__calls__c002__wer=0.3, scorecard__overall__accuracy=0.8889,
                    **{"scorecard__answers__c002__opening.verification": {"auto": "yes", "gold": "yes"}})
    cmp = compare_reports(a, b)
    r = rows(cmp)
    assert r["transcription.overall.wer"]["verdict"] == "tie"
    assert r["transcription.overall.wer"]["units"] == {"unit": "calls", "better": 1, "worse": 1, "p": 1.0}
    assert r["scorecard.overall.accuracy"]["verdict"] == "tie"  # one answer fixed
    assert r["scorecard.overall.accuracy"]["units"] == {"unit": "answers", "better": 1, "worse": 0, "p": 1.0}
    assert cmp["counts"]["tie"] == 2 and cmp["counts"]["improved"] == 0
    text = format_comparison(cmp)
    assert "Ties: changed, but within the noise (sign test p >= 0.05) (2):" in text
    assert "Improvements" not in text
    assert "answers 1 better, 0 worse, p=1.00" in text


def test_a_change_on_enough_answers_is_a_regression():
    calls = [f"c{k:03d}" for k in range(1, 9)]
    right = {c: {"opening.greeting": {"auto": "yes", "gold": "yes"}} for c in calls}
    wrong = {c: {"opening.greeting": {"auto": "no", "gold": "yes"}} for c in calls}
    a = make_report(scorecard__answers=right)
    b = make_report(scorecard__answers=wrong, **{"scorecard__items__opening.greeting__accuracy": 0.0})
    r = rows(compare_reports(a, b))
    greeting = r["scorecard.items.opening.greeting.accuracy"]
    assert greeting["verdict"] == "regressed"
    assert greeting["units"] == {"unit": "answers", "better": 0, "worse": 8, "p": 0.0078}


def test_config_changes_are_listed():
    a = make_report()
    b = make_report(config__asr__model="tiny.en", config__asr__temperatures=[0.0, 0.5], config_hash="fedcba9876543210")
    assert config_changes(a["config"], b["config"]) == [
        {"key": "asr.model", "a": "base", "b": "tiny.en"},
        {"key": "asr.temperatures", "a": None, "b": [0.0, 0.5]},
    ]
    cmp = compare_reports(a, b)
    text = format_comparison(cmp)
    assert 'Config changes (2):\n  asr.model: "base" -> "tiny.en"\n  asr.temperatures: null -> [0.0, 0.5]' in text
    same = format_comparison(compare_reports(a, make_report()))
    assert "Config: the same (same config hash)" in same and "Config changes" not in same


def test_times_beside_the_reports_are_shown(tmp_path):
    for name, timing in (("a", {"speech": {"cached": 0, "computed": 3, "failed": 0, "seconds": 41.25},
                                "scoring": {"calls": 3, "seconds": 1.5}}),
                         ("b", {"speech": {"cached": 3, "computed": 0, "failed": 0, "seconds": 0.01},
                                "scoring": {"calls": 3, "seconds": 1.25}})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(make_report()))
        (tmp_path / name / "timing.json").write_text(json.dumps(timing))
    cmp = compare_reports(load_report(tmp_path / "a"), load_report(tmp_path / "b"))
    assert cmp["a"]["speech_seconds"] == 41.25 and cmp["b"]["scoring_seconds"] == 1.25
    text = format_comparison(cmp)
    assert "time: speech stage 41.2 s for 3 calls transcribed, scoring 1.5 s" in text
    assert "time: speech stage from the cache (3 calls; transcription time not measured), scoring 1.2 s" in text
