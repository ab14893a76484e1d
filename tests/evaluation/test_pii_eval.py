"""Gold PII spans in the labels (the ``pii`` list) and the detector measured against them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SAMPLES
from pipeline.evaluation.labels import LabelError, load_dataset, parse_labels
from pipeline.evaluation.pii_eval import score_recognised, score_text
from pipeline.pii.text import PiiOptions, PiiSpan

CALL = {"utterances": [
    {"role": "agent", "start": 0.0, "end": 2.0, "text": "Hello, Tom speaking."},
    {"role": "customer", "start": 3.0, "end": 6.0, "text": "Hi Tom, my name is Kevin Moore."},
    {"role": "customer", "start": 7.0, "end": 9.0, "text": "It's four four eight two one."},
], "pii": [{"utterance": 0, "text": "Tom", "type": "PERSON"}, {"utterance": 1, "text": "Kevin Moore", "type": "PERSON"},
           {"utterance": 1, "text": "Tom", "type": "PERSON"},
           {"utterance": 2, "text": "four four eight two one", "type": "ACCOUNT_NUMBER"}]}


def test_the_samples_carry_gold_pii_on_their_utterances():
    ds = load_dataset(SAMPLES)
    for labels in ds.labels.values():
        assert all("pii" in u for u in labels.utterances)
        for u in labels.utterances:
            for p in u["pii"]:
                assert 0 <= p["first_char"] < p["end_char"] <= len(u["text"])
    c1 = ds.labels["c001"].utterances
    assert [c1[3]["text"][p["first_char"]:p["end_char"]] for p in c1[3]["pii"]] == ["four five six seven eight nine"]


@pytest.mark.parametrize("pii, where", [
    ([{"utterance": 5, "text": "Tom", "type": "PERSON"}], "pii[0].utterance"),
    ([{"utterance": 0, "text": "Tom", "type": "NAME"}], "pii[0].type"),
    ([{"utterance": 0, "text": "Tim", "type": "PERSON"}], "pii[0].text"),
    ([{"utterance": 0, "text": "Tom", "type": "PERSON", "occurrence": 1}], "not said 2 time(s)"),
    ({"utterance": 0}, "'pii' must be a list"),
])
def test_gold_pii_errors_name_the_entry(pii, where: str):
    with pytest.raises(LabelError, match=r"labels/c9\.json.*" + re.escape(where)):
        parse_labels("c9", {**CALL, "pii": pii}, Path("labels/c9.json"))


def test_detector_on_gold_text_is_scored_by_word_overlap():
    utterances, _ = parse_labels("c9", CALL, Path("c9.json"))
    score = score_text(utterances, PiiOptions()).to_dict()
    assert score["gold_spans"] == 4 and score["recall"] == 1.0 and score["precision"] == 1.0
    assert score["masked_share"] == 1.0
    without_names = score_text(utterances, PiiOptions(entities=["ACCOUNT_NUMBER"])).to_dict()
    assert without_names["recall"] == 0.25
    assert without_names["recall_per_type"] == {"ACCOUNT_NUMBER": 1.0, "PERSON": 0.0}


def test_recognised_spans_are_scored_by_time_overlap():
    utterances, _ = parse_labels("c9", CALL, Path("c9.json"))
    found = [PiiSpan("ACCOUNT_NUMBER", "u9", 1, 5, 7.6, 8.9, "spelled"),   # the number
             PiiSpan("PERSON", "u1", 0, 0, 2.1, 2.3, "ner")]                # between the turns: nobody's name
    score = score_recognised(utterances, found, pad_s=0.0).to_dict()
    assert score["recall"] == 0.25 and score["precision"] == 0.5
    assert score["recall_per_type"]["ACCOUNT_NUMBER"] == 1.0
