"""``callqa eval sweep`` rows: the keys each setting changes, the default, ties with the best,
and speech-stage times (with a stand-in evaluator; the CLI test runs the real one)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

from synthetic_report import make_report

from pipeline.evaluation.sweep import format_table, parse_grid, run_sweep, write_sweep

CALLS = [f"c{k:03d}" for k in range(1, 9)]
METRIC = "scorecard.items.opening.greeting.accuracy"


class FakeEvaluator:
    """Answers opening.greeting right on as many calls as the negative threshold says
    (-0.3: all 8, -0.2: 7, -0.5: none); every cached speech stage took 2.5 s."""

    RIGHT = {-0.3: 8, -0.2: 7, -0.5: 0}

    def __init__(self, folder: Path):
        self.cache_dir = folder
        self.calls = [SimpleNamespace(call_id=c, metadata={}) for c in CALLS]
        self.hashes = {c: f"sha-{c}" for c in CALLS}
        self.cache = SimpleNamespace(get=lambda key: SimpleNamespace(seconds=2.5))
        self.timing: dict = {}

    def evaluate(self, config):
        right = self.RIGHT[config.sentiment.negative_threshold]
        answers = {c: {"opening.greeting": {"auto": "yes" if k < right else "no", "gold": "yes"}}
                   for k, c in enumerate(CALLS)}
        self.timing["scoring"] = {"seconds": 0.25}
        return make_report(config_hash=config.result_hash(), config=config.result_dict(), scorecard__answers=answers,
                           **{"scorecard__items__opening.greeting__accuracy": right / len(CALLS)})


def test_rows_mark_the_default_ties_and_changed_keys(tmp_path: Path):
    axes = parse_grid(["sentiment.negative_threshold=-0.2,-0.3,-0.5", "item:opening.greeting:role=agent"])
    rows = run_sweep(FakeEvaluator(tmp_path), axes, None, [], METRIC)
    assert [r["setting"]["sentiment.negative_threshold"] for r in rows] == [-0.3, -0.2, -0.5]
    best, close, far = rows
    # role=agent is the template's own value: the first row is the default config
    assert best["default"] and best["changed"] == [] and best["vs_best"] == "best"
    assert close["changed"] == ["sentiment.negative_threshold"] and not close["default"]
    assert (close["vs_best"], close["vs_best_p"]) == ("tie", 1.0)  # one answer apart
    assert (far["vs_best"], far["vs_best_p"]) == ("worse", 0.0078)  # all eight answers broken
    assert all(r["speech_seconds"] == 20.0 for r in rows)  # 8 calls, 2.5 s each, as cached

    table = format_table(rows, METRIC).splitlines()
    assert len(table) == 4 and table[0].split()[-5:] == ["vs", "best", "speech", "s", "changed"]
    assert table[1].split()[-3:] == ["best", "20.0", "default"]
    assert table[2].split()[-3:] == ["tie", "20.0", "sentiment.negative_threshold"]
    assert table[3].split()[-3:] == ["worse", "20.0", "sentiment.negative_threshold"]

    write_sweep(rows, tmp_path / "out", METRIC)
    with open(tmp_path / "out" / "sweep.csv", newline="") as f:
        table_rows = list(csv.DictReader(f))
    assert [r["vs_best"] for r in table_rows] == ["best", "tie", "worse"]
    assert table_rows[0]["changed"] == "default" and table_rows[0]["speech_seconds"] == "20.0"


def test_an_item_parameter_off_the_template_is_a_changed_key(tmp_path: Path):
    axes = parse_grid(["item:opening.greeting:first_s=30,45"])
    evaluator = FakeEvaluator(tmp_path)
    rows = run_sweep(evaluator, axes, None, ["sentiment.negative_threshold=-0.3"], METRIC)
    by_value = {r["setting"]["item:opening.greeting:first_s"]: r for r in rows}
    assert by_value[30]["default"] and by_value[30]["changed"] == []
    assert by_value[45]["changed"] == ["item:opening.greeting:first_s"]
    assert by_value[45]["vs_best"] == "tie"  # the same accuracy
