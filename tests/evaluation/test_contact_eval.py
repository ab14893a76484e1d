"""``callqa eval`` of the contact block: the reason's token F1 against the labelled sentence,
outcome accuracy and kappa, in the JSON, CSV and HTML reports, on written samples and calls."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from conftest import ROOT, SAMPLES, label, manifest_rows, run_cli
from pipeline.analysis.contact import OUTCOMES
from pipeline.evaluation.contact_eval import REASON_MATCH_F1, ContactMeasured, contact_csv, token_f1
from pipeline.evaluation.labels import LabelError, load_call_labels, load_dataset

WRITTEN = ROOT / "interactions_sample"


def test_token_f1_is_robust_to_spelling_of_numbers_contractions_and_punctuation():
    gold = "I've been charged twice for my direct debit this month, and now my bank account is overdrawn."
    assert token_f1(gold, gold) == 1.0
    spoken = "i have been charged twice for my direct debit this month and now my bank account is overdrawn"
    assert token_f1(gold, spoken) == 1.0
    assert token_f1("My bill is 212 pounds.", "my bill is two one two pounds") == 1.0
    # recogniser errors cost only their words
    asr = "I've been charged twice for my her active debut this month and now my band to count is overdrawn"
    assert 0.5 <= token_f1(gold, asr) < 1.0
    assert token_f1(gold, "Thank you, goodbye.") == 0.0
    assert token_f1(gold, None) == 0.0 and token_f1("", gold) == 0.0
    # masked words are left out of the extracted side, not counted as wrong words
    assert token_f1("My name is Grace and I'd like to move my payment",
                    "My name is [PERSON] and I'd like to move my payment") > token_f1(
        "My name is Grace and I'd like to move my payment", "My name is Bob and I'd like to move my payment")


def test_the_agreement_figures_are_counted_from_the_pairs():
    measured = ContactMeasured()
    cases = {
        "a": ("I want to cancel my contract.", "I want to cancel my contract", "resolved", "resolved"),
        "b": ("My card was declined abroad.", "Hello, good morning.", "unresolved", "resolved"),
        "c": ("Where is my parcel?", "where is my parcel it was due Tuesday", "follow_up", "follow_up"),
        "d": ("Can you move my appointment?", "can you move my appointment please", "resolved", "unresolved"),
        "e": ("I need a new password.", None, "escalated", "escalated"),
    }
    for cid, (gold, auto, gold_outcome, auto_outcome) in cases.items():
        block = {"reason": {"text": auto, "confidence": 0.5} if auto else None,
                 "outcome": {"label": auto_outcome, "confidence": 0.7, "evidence": []}}
        measured.add(cid, block, gold, gold_outcome)
    measured.add("unlabelled", {"reason": None, "outcome": {"label": "resolved"}}, None, None)  # not counted
    report = measured.report()
    f1 = {cid: token_f1(g, a) for cid, (g, a, _, _) in cases.items()}
    assert report["reason"]["n"] == 5
    assert report["reason"]["matched"] == sum(v >= REASON_MATCH_F1 for v in f1.values())
    assert report["reason"]["agreement"] == round(report["reason"]["matched"] / 5, 4)
    assert report["reason"]["mean_f1"] == pytest.approx(sum(f1.values()) / 5, abs=1e-3)
    gold = [c[2] for c in cases.values()]
    auto = [c[3] for c in cases.values()]
    assert report["outcome"]["n"] == 5 and report["outcome"]["correct"] == 3
    assert report["outcome"]["accuracy"] == pytest.approx(0.6)
    assert report["outcome"]["kappa"] == pytest.approx(cohen_kappa_score(gold, auto))
    assert report["outcome"]["confusion"]["unresolved"]["resolved"] == 1
    assert set(report["outcome"]["confusion"]) == set(OUTCOMES)
    rows = list(csv.DictReader(contact_csv(report).splitlines()))
    assert [r["id"] for r in rows] == sorted(cases) and rows[1]["outcome_auto"] == "resolved"


def test_sample_labels_carry_reason_and_outcome():
    ds = load_dataset(SAMPLES)
    for cid, labels in ds.labels.items():
        assert labels.outcome in OUTCOMES
        customer = " ".join(u["text"] for u in labels.utterances if u["role"] == "customer")
        assert labels.contact_reason and labels.contact_reason in customer  # verbatim
    for path in sorted((WRITTEN / "labels").glob("*.json")):
        data = json.loads(path.read_text())
        assert data["outcome"] in OUTCOMES and data["contact_reason"], path


def test_a_wrong_outcome_label_names_the_file(tmp_path: Path):
    data = json.loads((SAMPLES / "labels" / "c001.json").read_text())
    data["outcome"] = "sorted"
    (tmp_path / "c001.json").write_text(json.dumps(data))
    with pytest.raises(LabelError) as err:
        load_call_labels("c001", tmp_path)
    assert "c001.json" in str(err.value) and "outcome" in str(err.value) and "follow_up" in str(err.value)


def test_written_eval_reports_contact_agreement(tmp_path: Path):
    """Six sample chats through ``callqa eval``: the contact section per conversation, pooled and
    per channel, recomputed from the extracted reasons, and the CSV beside the JSON."""
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    ids = ["ch001", "ch002", "ch003", "ch004", "ch009", "ch010"]
    for cid in ids:
        shutil.copy(WRITTEN / "chat" / f"{cid}.json", data / f"{cid}.json")
        label_data = json.loads((WRITTEN / "labels" / f"{cid}.json").read_text())
        label_data["files"] = [f"{cid}.json"]
        (data / "labels" / f"{cid}.json").write_text(json.dumps(label_data))
    out = tmp_path / "report"
    proc = run_cli("eval", str(data), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "contact: reason agreement" in proc.stdout
    report = json.loads((out / "written_report.json").read_text())
    contact = report["contact"]
    assert sorted(contact["items"]) == ids and contact["reason"]["n"] == 6 and contact["outcome"]["n"] == 6
    for cid, row in contact["items"].items():
        gold = json.loads((WRITTEN / "labels" / f"{cid}.json").read_text())
        assert row["reason_gold"] == gold["contact_reason"] and row["outcome_gold"] == gold["outcome"]
        assert row["reason_f1"] == pytest.approx(token_f1(gold["contact_reason"], row["reason_auto"]), abs=1e-4)
        assert row["reason_match"] == (row["reason_f1"] >= REASON_MATCH_F1)
    correct = sum(r["outcome_gold"] == r["outcome_auto"] for r in contact["items"].values())
    assert contact["outcome"]["correct"] == correct and contact["outcome"]["accuracy"] == pytest.approx(correct / 6)
    assert report["channels"]["chat"]["contact"]["reason"]["n"] == 6
    rows = list(csv.DictReader(open(out / "written_contact.csv", newline="")))
    assert [r["id"] for r in rows] == ids


def test_html_report_shows_the_contact_section():
    from pipeline.evaluation.report_html import render_html

    measured = ContactMeasured()
    measured.add("c001", {"reason": {"text": "my bill is <twice> as high"}, "outcome": {"label": "resolved"}},
                 "My bill is twice as high.", "unresolved")
    html = render_html({"data": {"path": "x"}, "contact": measured.report()})
    assert "Contact reason and outcome" in html and "&lt;twice&gt;" in html and "<twice>" not in html
    assert "unresolved / resolved" in html
    assert "Contact reason" not in render_html({"data": {"path": "x"}})


@pytest.mark.slow  # needs the session's sample run (its stage cache): the calls are not transcribed again
def test_eval_of_the_sample_calls_reports_contact(sample_eval):
    folder, report, proc = sample_eval  # the session's one eval of the samples, from the stage cache
    out = folder / "base"
    contact = report["contact"]
    calls = [r["call_id"] for r in manifest_rows()]
    assert sorted(contact["items"]) == calls and contact["reason"]["n"] == len(calls)
    for cid, row in contact["items"].items():
        assert row["reason_gold"] == label(cid)["contact_reason"] and row["outcome_gold"] == label(cid)["outcome"]
    # the measured figures are in the report; this guards against a collapse, not a target
    assert contact["reason"]["agreement"] >= 0.7 and contact["outcome"]["accuracy"] >= 0.6
    assert (out / "contact.csv").is_file() and "Contact reason and outcome" in (out / "report.html").read_text()
    assert "contact: reason agreement" in proc.stdout
