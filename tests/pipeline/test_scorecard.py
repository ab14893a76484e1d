"""Scorecard templates and scoring (pipeline/analysis/scorecard.py)."""

from pathlib import Path

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.analysis.card import score_answers
from pipeline.analysis.scorecard import DEFAULT_SCORECARD, load_scorecard

ISSUE_ITEMS = [
    "opening.greeting", "opening.agent_name", "opening.verification", "courtesy.please_thank", "courtesy.empathy",
    "courtesy.no_prohibited", "courtesy.customer_name", "resolution.hold_etiquette", "closing.anything_else",
    "closing.thanks", "experience.customer_sentiment_end", "experience.dead_air", "experience.interruptions",
]


def test_default_template_has_the_documented_items_and_the_sample_labels_use_them():
    card = load_scorecard()
    assert [i.id for i in card.items] == ISSUE_ITEMS
    assert len(card.sha256) == 64 and card.path == str(DEFAULT_SCORECARD)
    labels = Path(__file__).resolve().parents[2] / "recordings_sample" / "labels"
    import json

    for path in labels.glob("*.json"):
        assert set(json.loads(path.read_text())["scorecard"]) == set(ISSUE_ITEMS), path.name
    assert [i.id for i in card.items if i.auto_fail] == ["courtesy.no_prohibited"]


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "card.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _card(items: list[dict]) -> dict:
    return {"name": "t", "version": "1", "sections": [{"id": "s", "weight": 1, "items": items}]}


@pytest.mark.parametrize(
    "item, message",
    [
        ({"id": "s.a", "question": "q?", "detector": "nope"}, "item 's.a': detector: 'nope' is not a detector"),
        ({"id": "s.a", "question": "q?", "detector": "phrase", "params": {"colour": 1}}, "params.colour: unknown parameter"),
        ({"id": "s.a", "question": "q?", "detector": "phrase", "params": {"words": "please"}}, "params.words"),
        ({"id": "s.a", "question": "q?", "detector": "phrase", "params": {"role": "boss", "words": ["x"]}}, "params.role"),
        ({"id": "s.a", "question": "q?", "detector": "phrase", "params": {}}, "give at least one of"),
        ({"id": "s.a", "question": "q?", "detector": "dead_air", "na_when": ["full_moon"]}, "na_when: 'full_moon'"),
        ({"id": "other.a", "question": "q?", "detector": "dead_air"}, "must be 's.<name>'"),
        ({"id": "s.a", "question": "q?", "detector": "dead_air", "points": -1}, "points"),
        ({"id": "s.a", "question": "q?", "detector": "dead_air", "colour": 1}, "unknown key 'colour'"),
        ({"id": "s.a", "detector": "dead_air"}, "question"),
    ],
)
def test_bad_templates_name_the_file_the_item_and_the_key(tmp_path, item, message):
    path = _write(tmp_path, _card([item]))
    with pytest.raises(ConfigError) as e:
        load_scorecard(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_duplicate_ids_and_unreadable_files_are_errors(tmp_path):
    item = {"id": "s.a", "question": "q?", "detector": "dead_air"}
    with pytest.raises(ConfigError, match="used twice"):
        load_scorecard(_write(tmp_path, _card([item, item])))
    with pytest.raises(ConfigError, match="cannot read"):
        load_scorecard(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sections: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scorecard(bad)


def test_scores_exclude_na_weight_sections_and_auto_fail_zeroes_the_total(tmp_path):
    data = {"name": "t", "sections": [
        {"id": "a", "weight": 1, "items": [
            {"id": "a.x", "question": "x?", "points": 2, "detector": "dead_air"},
            {"id": "a.y", "question": "y?", "points": 1, "detector": "dead_air"}]},
        {"id": "b", "weight": 3, "items": [
            {"id": "b.z", "question": "z?", "points": 1, "detector": "dead_air", "auto_fail": True},
            {"id": "b.w", "question": "w?", "points": 1, "detector": "dead_air"}]},
    ]}
    card = load_scorecard(_write(tmp_path, data))
    s = score_answers(card, {"a.x": "yes", "a.y": "no", "b.z": "yes", "b.w": "na"})
    assert [sec["normalized"] for sec in s["sections"]] == [round(2 / 3, 4), 1.0]
    assert s["points"] == 3 and s["potential"] == 4
    assert s["normalized"] == round((1 * 2 / 3 + 3 * 1.0) / 4, 4) and not s["auto_fail"]
    failed = score_answers(card, {"a.x": "yes", "a.y": "yes", "b.z": "no", "b.w": "yes"})
    assert failed["auto_fail"] and failed["normalized"] == 0.0 and failed["auto_fail_items"] == ["b.z"]
    assert failed["normalized_before_auto_fail"] == round((1 * 1.0 + 3 * 0.5) / 4, 4)
    assert "b.z answered no" in failed["auto_fail_reason"]
    nothing = score_answers(card, {})
    assert nothing["normalized"] is None and nothing["potential"] == 0
