"""callqa tune --from-reviews on the labelled samples: the sample calls and conversations run
through the real pipeline, loaded into a real review database, reviewed with their labels (a
simulated reviewer slipping on 5% of answers), then tuned: held-out agreement, the refusal,
the written config and its calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, run_cli  # noqa: E402
from learning_helpers import replicate, review_with_labels  # noqa: E402
from pipeline.analysis.scorecard import apply_calibration, load_scorecard  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.learning.data import review_pairs  # noqa: E402
from pipeline.learning.tune import TooFewReviews, decide, predict, tune  # noqa: E402
from pipeline.review.db import make_engine, sessions  # noqa: E402
from pipeline.review.migrate import upgrade  # noqa: E402

COPIES = 3  # each recording reviewed on 3 calls (one agent each): 30 calls, 16 + 14 conversations x 3


@pytest.fixture(scope="module")
def written_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("written-run")
    proc = run_cli("run", str(ROOT / "interactions_sample"), "--out", str(out), "--quiet", "--set", "pii.redact=false")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def reviewed(sample_run, written_run, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A SQLite review database of the replicated sample results, every call reviewed."""
    out, proc = sample_run
    assert proc.returncode == 0, proc.stderr
    root = tmp_path_factory.mktemp("reviewed")
    ids = replicate([out, written_run], root / "out", COPIES)
    db = str(root / "review.db")
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        given = review_with_labels(s, root / "out", ids, noise=0.05, seed=7)
    with sessions(engine)() as s:
        pairs = review_pairs(s)
    engine.dispose()
    return {"db": db, "root": root, "pairs": pairs, "given": given}


@pytest.fixture(scope="module")
def report(reviewed) -> dict:
    return tune(reviewed["pairs"], load_config(None), min_reviews=20)


def test_pairs_are_the_submitted_answers_beside_the_suggestions(reviewed):
    pairs = reviewed["pairs"]
    assert len({p.call_id for p in pairs}) == len(reviewed["given"]) >= 60
    for p in pairs[:200]:
        assert reviewed["given"][p.call_id][p.item_id] == p.human
    # the detectors record their decision scores: phrase items with examples, sentiment, timing
    recorded = {p.item_id for p in pairs if p.template == "Inbound support" and p.decision}
    assert {"opening.verification", "courtesy.empathy", "experience.customer_sentiment_end", "experience.dead_air",
            "experience.interruptions"} <= recorded
    assert not any(p.decision for p in pairs if p.item_id in ("opening.agent_name", "courtesy.customer_name"))
    # the sentiment score splits into the head's part and VADER's, blended by sentiment.vader_weight
    for p in pairs:
        if p.detector == "sentiment_end" and p.decision and p.machine != "na":
            c = p.decision["components"]
            assert (1 - c["vader_weight"]) * c["model"] + c["vader_weight"] * c["vader"] == pytest.approx(
                p.decision["score"], abs=1e-9)


def test_rethresholding_at_the_current_value_reproduces_every_answer(report, reviewed):
    by_key = {}
    for p in reviewed["pairs"]:
        by_key.setdefault(p.key, []).append(p)
    tunable = [it for it in report["items"] if it["tunable"]]
    assert len(tunable) >= 10
    for it in tunable:
        rows = by_key[(it["template"], it["item"])]
        assert predict(rows, it["current"]) == [r.machine for r in rows], it["item"]
    reasons = {(it["template"], it["item"]): it.get("not_tunable") for it in report["items"]}
    assert "rule-based" in reasons[("Inbound support", "opening.agent_name")]
    assert "no examples" in reasons[("Inbound support", "courtesy.please_thank")]


def test_agreement_after_tuning_is_not_below_before_on_held_out_calls(report):
    before = after = 0.0
    for it in report["items"]:
        h = it["heldout"]
        assert h["after"]["n"] == h["before"]["n"] == it["n"]
        assert h["after"]["agreement"] >= h["before"]["agreement"], it["item"]
        if it.get("proposed") is not None:  # a change is proposed only for a held-out gain
            assert h["after_if_refitted"]["agreement"] > h["before"]["agreement"]
        before += h["before"]["agreement"] * it["n"]
        after += h["after"]["agreement"] * it["n"]
        assert "agent" in it["grouped_by"]  # GroupKFold by agent: every copy of a call in one fold
    assert after >= before
    print(f"pooled held-out agreement {before / sum(i['n'] for i in report['items']):.4f} -> "
          f"{after / sum(i['n'] for i in report['items']):.4f}")


def test_the_sentiment_blend_is_fitted_with_the_sentiment_thresholds_on_held_out_calls(report):
    sen = report["sentiment"]
    items = [it for it in report["items"] if it["detector"] == "sentiment_end"]
    assert sen["param"] == "sentiment.vader_weight" and sen["current"] == 0.25 and sen["n"] == sum(i["n"] for i in items)
    assert sen["fitted"] in [round(0.05 * k, 2) for k in range(21)]
    h = sen["heldout"]
    assert h["after"]["agreement"] >= h["before"]["agreement"]
    if sen["proposed"]:
        assert h["after_if_refitted"]["agreement"] > h["before"]["agreement"]
    else:
        assert h["after"] == h["before"]


def test_calibration_lowers_the_calibration_error_on_held_out_calls(report):
    pooled = report["calibration_pooled"]
    assert pooled["ece_after"] < pooled["ece_before"], pooled
    proposed = [it for it in report["items"] if (it.get("calibration") or {}).get("proposed")]
    assert proposed
    for d in report["calibration_by_detector"].values():
        assert d["proposed"] == (d["ece_after"] < d["ece_before"])


def test_decide():
    d = {"param": "semantic_threshold", "score": 0.55, "op": ">=", "then": "yes", "else": "no", "fixed": False}
    assert decide(d, 0.5) == "yes" and decide(d, 0.6) == "no"
    assert decide({**d, "fixed": True}, 0.9) == "yes"
    assert decide({**d, "score": None}, 0.1) == "no"
    assert decide({"score": 2, "op": ">", "then": "no", "else": "yes"}, 1) == "no"


def test_too_few_reviews_refuses_naming_the_items_and_writes_nothing(reviewed, tmp_path: Path):
    with pytest.raises(TooFewReviews) as e:
        tune(reviewed["pairs"], load_config(None), min_reviews=1000)
    assert "opening.greeting (Inbound support: 30)" in str(e.value)
    out = tmp_path / "TUNED.yaml"
    proc = run_cli("tune", "--from-reviews", "--db", reviewed["db"], "--out", str(out), "--min-reviews", "1000")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "too few reviews" in proc.stderr and "courtesy.empathy (E-mail support: 48)" in proc.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_items_below_the_minimum_are_left_unchanged_and_listed(reviewed):
    got = tune(reviewed["pairs"], load_config(None), min_reviews=40)  # calls: 30 each; written: 42 and 48
    few = {(t["template"], t["item"]) for t in got["too_few"]}
    assert ("Inbound support", "opening.greeting") in few
    assert all(it["template"] != "Inbound support" for it in got["items"])


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_the_command_writes_a_config_that_loads_and_changes_only_tuned_keys(reviewed, tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text("asr:\n  beam_size: 2\nreview:\n  pass_mark: 0.7\n")
    out = tmp_path / "tuned" / "TUNED.yaml"
    proc = run_cli("tune", "--from-reviews", "--db", reviewed["db"], "--config", str(base), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "agree before->after" in proc.stdout and "not tunable" in proc.stdout
    report = json.loads(out.with_name("TUNED.report.json").read_text())
    html = out.with_name("TUNED.report.html").read_text()
    assert "<svg" in html and "Reliability" in html
    tuned, original = load_config(out), load_config(base)
    assert tuned.asr.beam_size == 2 and tuned.review.pass_mark == 0.7  # the base config is kept
    a, b = _flatten(tuned.to_dict()), _flatten(original.to_dict())
    changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    allowed = ("scorecard.calibration", "scorecard.template", "channels.email.scorecard", "channels.chat.scorecard")
    assert changed and all(k.startswith(allowed) for k in changed), changed
    # each tuned template differs from its original only in the proposed thresholds
    proposals = [it for it in report["items"] if it.get("proposed") is not None]
    for path in report["overlay"]["templates"]:
        card = load_scorecard(path)
        src = load_scorecard(report["templates"][card.name])
        for new, old in zip(card.items, src.items):
            want = dict(old.params)
            for it in proposals:
                if it["template"] == card.name and it["item"] == old.id:
                    want[it["param"]] = it["proposed"]
            assert new.params == want and new.detector == old.detector, new.id
    # the calibration maps are those the report proposes, and they read
    for template, items in tuned.scorecard.calibration.items():
        for item_id, text in items.items():
            it = next(i for i in report["items"] if i["template"] == template and i["item"] == item_id)
            assert it["calibration"]["proposed"] == text
    assert subprocess.run([sys.executable, "-m", "pipeline.cli", "config", "--config", str(out)], cwd=ROOT,
                          capture_output=True, text=True).returncode == 0


def test_apply_calibration_changes_confidences_only_when_a_map_is_given():
    items = [{"id": "opening.greeting", "answer": "yes", "confidence": 0.97},
             {"id": "closing.thanks", "answer": "no", "confidence": 0.6}]
    assert apply_calibration(items, {}, "Inbound support") is items
    assert apply_calibration(items, {"Other": {"opening.greeting": "platt 1 0"}}, "Inbound support") is items
    got = apply_calibration(items, {"Inbound support": {"opening.greeting": "platt 0.1 1.5",
                                                        "closing.thanks": "isotonic 0.5:0.4 0.7:0.8"}},
                            "Inbound support")
    assert [g["answer"] for g in got] == ["yes", "no"]
    import math

    platt = 1 / (1 + math.exp(-(0.1 * math.log(0.97 / 0.03) + 1.5)))
    assert got[0]["confidence_raw"] == 0.97 and got[0]["confidence"] == pytest.approx(platt, abs=1e-3)
    assert got[1]["confidence"] == pytest.approx(0.6, abs=1e-3)  # halfway between 0.4 and 0.8
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="scorecard.calibration.T.x"):
        apply_calibration(items[:1] and [{"id": "x", "confidence": 0.5}], {"T": {"x": "sigmoid 1"}}, "T")


def test_a_run_with_the_tuned_config_gives_the_rethresholded_answers(report, written_run, tmp_path: Path):
    """The written samples run again with the proposed config: every answer of a re-thresholded
    item is the one its recorded score gives at the new threshold, every other answer unchanged."""
    import copy

    from pipeline.learning.tune import write_overlay

    rep = copy.deepcopy(report)
    rep["items"] = [it for it in rep["items"] if it["template"] != "Inbound support"]  # the written channels
    for it in rep["items"]:
        it["calibration"] = {"proposed": None}
    proposed = {it["item"]: it for it in rep["items"] if it.get("proposed") is not None}
    assert proposed, "the reviews move at least one written item's threshold"
    tuned = tmp_path / "TUNED.yaml"
    write_overlay(rep, load_config(None), None, tuned)
    again = tmp_path / "again"
    proc = run_cli("run", str(ROOT / "interactions_sample"), "--out", str(again), "--quiet", "--config", str(tuned),
                   "--set", "pii.redact=false")
    assert proc.returncode == 0, proc.stderr
    moved = 0
    for f in sorted((written_run / "calls").glob("*/call.json")):
        before = json.loads(f.read_text())
        after = json.loads((again / "calls" / f.parent.name / "call.json").read_text())
        name = before["scorecard"]["template"]["name"]
        new = {i["id"]: i for i in after["scorecard"]["items"]}
        for item in before["scorecard"]["items"]:
            it = proposed.get(item["id"]) if proposed.get(item["id"], {}).get("template") == name else None
            want = item["answer"]
            if it is not None and item["answer"] != "na":
                want = decide(item["details"]["decision"], it["proposed"])
            assert new[item["id"]]["answer"] == want, (f.parent.name, item["id"])
            moved += want != item["answer"]
    assert moved >= 1
