"""``callqa eval`` on the sample recordings, its figures checked against an independent
computation, and ``eval compare`` / ``eval sweep`` / errors, all through the CLI."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import SAMPLES, label, manifest_rows, run_cli
from pipeline.analysis.scorecard import DEFAULT_SCORECARD

pytestmark = pytest.mark.slow  # runs the CLI over the sample recordings (the sample_run fixture)


def test_eval_of_the_samples_writes_both_reports_from_the_cache(sample_eval):
    out, report, proc = sample_eval
    assert report["format"] == "callqa-eval-report/1"
    assert report["data"]["evaluated"] == [r["call_id"] for r in manifest_rows()]
    assert report["data"]["failed"] == {} and len(report["data"]["sha256"]) == 64
    timing = json.loads((out / "base" / "timing.json").read_text())
    assert timing["speech"] == {**timing["speech"], "cached": 10, "computed": 0}  # no ASR was run
    # the figures the project states for the samples (README): good, and measured on every call
    assert report["transcription"]["overall"]["wer"] < 0.2
    assert report["speakers"]["overall"]["role_accuracy"] > 0.95
    assert report["scorecard"]["overall"]["accuracy"] > 0.9 and report["scorecard"]["overall"]["answers"] == 130
    assert set(report["transcription"]["calls"]) == set(report["data"]["evaluated"])
    assert report["models"]["asr"]["model"] and report["config_hash"] and report["scorecard_template"]["sha256"]
    html = (out / "base" / "report.html").read_text()
    assert html.count("<svg") >= 5 and "c004" in html and "opening.greeting" in html
    assert "item accuracy" in proc.stdout and "WER" in proc.stdout


def _words(text: str) -> list[str]:
    """Whisper's normaliser with digit strings one digit per word: a word that is only digits
    and hyphens is spelled out digit by digit first, and every all-digit word it leaves is split."""
    from whisper.normalizers import EnglishTextNormalizer

    names = "zero one two three four five six seven eight nine".split()
    spelled = []
    for token in text.split():
        core = token.rstrip(",.?!;:")
        if core and all(c.isdigit() or c == "-" for c in core) and core[0].isdigit() and core[-1].isdigit():
            token = " ".join(names[int(c)] for c in core if c.isdigit()) + token[len(core):]
        spelled.append(token)
    words = EnglishTextNormalizer()(" ".join(spelled)).split()
    return [d for w in words for d in (list(w) if w.isdigit() else [w])]


def _edits(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (written out here, not jiwer's)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def test_figures_agree_with_an_independent_computation(sample_eval, sample_run):
    """WER from the run's own call.json and the label text with a hand-written edit distance;
    DER straight from pyannote; Cohen's kappa and the score MAE by their formulas."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    _, report, _ = sample_eval
    run_out, _ = sample_run
    errors = words = 0
    for cid in report["data"]["evaluated"]:
        call = json.loads((run_out / "calls" / cid / "call.json").read_text())
        gold = sorted(label(cid)["utterances"], key=lambda u: u["start"])
        hyp = sorted(call["utterances"], key=lambda u: u["start"])
        ref_w = _words(" ".join(u["text"] for u in gold))
        hyp_w = _words(" ".join(u["text"] for u in hyp))
        e = _edits(ref_w, hyp_w)
        assert report["transcription"]["calls"][cid]["wer"] == pytest.approx(e / len(ref_w), abs=1e-4)
        errors, words = errors + e, words + len(ref_w)

        ref, sys_ = Annotation(), Annotation()
        for line in (SAMPLES / "labels" / f"{cid}.rttm").read_text().splitlines():
            f = line.split()
            ref[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ref)] = f[7]
        for k, u in enumerate(hyp):
            sys_[Segment(u["start"], u["end"]), k] = u["speaker"]
        uem = Timeline([Segment(0, call["source"]["duration_s"])])
        der = DiarizationErrorRate()(ref.support(), sys_.support(), uem=uem)
        assert report["speakers"]["calls"][cid]["der"] == pytest.approx(der, abs=1e-3)
    assert report["transcription"]["overall"]["wer"] == pytest.approx(errors / words, abs=1e-4)

    answers = report["scorecard"]["answers"]
    for item, figures in report["scorecard"]["items"].items():
        pairs = [(a[item]["gold"], a[item]["auto"]) for a in answers.values() if item in a]
        n = len(pairs)
        po = sum(g == s for g, s in pairs) / n
        gold_c, auto_c = Counter(g for g, _ in pairs), Counter(s for _, s in pairs)
        pe = sum(gold_c[c] * auto_c[c] for c in gold_c) / n / n
        assert figures["accuracy"] == pytest.approx(po, abs=1e-4)
        if pe < 1:
            assert figures["kappa"] == pytest.approx((po - pe) / (1 - pe), abs=1e-4)
        else:
            assert figures["kappa"] is None
    calls = report["scorecard"]["scores"]["calls"]
    mae = sum(abs(c["auto"] - c["gold"]) for c in calls.values()) / len(calls)
    assert report["scorecard"]["scores"]["mae"] == pytest.approx(mae, abs=1e-3)
    wrong = sum(a["auto"] != a["gold"] for c in answers.values() for a in c.values())
    assert len(report["scorecard"]["disagreements"]) == wrong
    for d in report["scorecard"]["disagreements"]:
        assert d["looked_for"] is not None or d["evidence"]  # every disagreement says why


def test_same_inputs_give_the_same_report(sample_eval, stage_cache: Path):
    out, _, _ = sample_eval
    proc = run_cli("eval", str(SAMPLES), "--out", str(out / "again"), "--cache", str(stage_cache), "-q")
    assert proc.returncode == 0, proc.stderr
    for name in ("report.json", "report.html"):
        assert (out / "again" / name).read_bytes() == (out / "base" / name).read_bytes()


def _card_variant(path: Path, item: str, **params) -> Path:
    data = yaml.safe_load(DEFAULT_SCORECARD.read_text())
    for section in data["sections"]:
        for it in section["items"]:
            if it["id"] == item:
                it["params"].update(params)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_scorecard_change_rescores_from_the_cache_and_compare_shows_it(sample_eval, stage_cache: Path):
    out, base, _ = sample_eval
    # a "greeting" no agent says: every call fails the item now
    card = _card_variant(out / "strict.yaml", "opening.greeting", words=["xyzzy"], phrases=["purple elephant"],
                         patterns=["^xyzzy$"], examples=["Purple elephants dance on the moon."])
    proc = run_cli("eval", str(SAMPLES), "--out", str(out / "strict"), "--cache", str(stage_cache),
                   "--scorecard", str(card), "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "strict" / "timing.json").read_text())["speech"]["computed"] == 0
    strict = json.loads((out / "strict" / "report.json").read_text())
    def yes(report: dict) -> int:
        return sum(a["opening.greeting"]["auto"] == "yes" for a in report["scorecard"]["answers"].values())

    assert yes(strict) == 0 < yes(base)
    assert strict["transcription"] == base["transcription"]  # the speech stage is the same

    proc = run_cli("eval", "compare", str(out / "base"), str(out / "strict"), "--json", str(out / "cmp.json"))
    assert proc.returncode == 0, proc.stderr
    cmp = json.loads((out / "cmp.json").read_text())
    verdict = {r["metric"]: r["verdict"] for r in cmp["metrics"]}
    assert verdict["scorecard.items.opening.greeting.accuracy"] == "regressed"
    assert verdict["transcription.overall.wer"] == "same"
    broken = {(c["call_id"], c["item"]) for c in cmp["calls_changed"] if c["change"] == "broken"}
    assert broken and all(item == "opening.greeting" for _, item in broken)
    assert "scorecard.items.opening.greeting.accuracy" in proc.stdout


def test_sweep_ranks_settings_best_first(sample_eval, stage_cache: Path):
    out, _, _ = sample_eval
    proc = run_cli("eval", "sweep", str(SAMPLES), "--cache", str(stage_cache), "--out", str(out / "sweep"),
                   "--grid", "item:opening.greeting:role=customer,agent",
                   "--grid", "sentiment.negative_threshold=-0.3,-0.2",
                   "--metric", "scorecard.items.opening.greeting.accuracy")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "sweep" / "sweep.json").read_text())["rows"]
    assert len(rows) == 4
    values = [r["metrics"]["scorecard.items.opening.greeting.accuracy"] for r in rows]
    assert values == sorted(values, reverse=True)
    assert values[0] > values[-1]
    # the agent greets; looking for the greeting in the customer's words finds none
    assert [r["setting"]["item:opening.greeting:role"] for r in rows] == ["agent", "agent", "customer", "customer"]
    table = proc.stdout.splitlines()
    assert len(table) == 5 and "item:opening.greeting:role=agent" in table[1]
    assert (out / "sweep" / "sweep.csv").read_text().count("\n") == 5


def test_bad_input_gets_a_clear_error(tmp_path: Path, stage_cache: Path):
    proc = run_cli("eval", str(tmp_path), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "labels" in proc.stderr
    proc = run_cli("eval", "sweep", str(SAMPLES), "--grid", "asr.beam_size")
    assert proc.returncode == 2 and "--grid asr.beam_size" in proc.stderr
    proc = run_cli("eval", "sweep", str(SAMPLES), "--grid", "item:nope.item:x=1,2", "--cache", str(stage_cache))
    assert proc.returncode == 2 and "nope.item" in proc.stderr
    proc = run_cli("eval", "compare", str(tmp_path), str(tmp_path))
    assert proc.returncode == 2 and "report.json" in proc.stderr


def test_a_broken_label_fails_its_call_only(sample_eval, stage_cache: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLES, data)
    (data / "labels" / "c002.json").write_text('{"scorecard": {"opening.greeting": "maybe"}}')
    (data / "labels" / "c003.json").unlink()
    proc = run_cli("eval", str(data), "--out", str(tmp_path / "r"), "--cache", str(stage_cache))
    assert proc.returncode == 3, proc.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "c002.json" in report["data"]["failed"]["c002"] and "maybe" in report["data"]["failed"]["c002"]
    assert report["data"]["unlabelled"] == ["c003"] and len(report["data"]["evaluated"]) == 8
    assert "failed c002" in proc.stdout
