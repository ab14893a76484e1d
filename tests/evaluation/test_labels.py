"""The labelled-data format: loading, checks that name the file and place, the data hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLES
from pipeline.errors import InputError
from pipeline.evaluation.labels import LabelError, load_call_labels, load_dataset, parse_labels


def test_the_samples_follow_the_format():
    ds = load_dataset(SAMPLES)
    assert sorted(ds.labels) == [f"c{i:03d}" for i in range(1, 11)]
    assert not ds.problems and not ds.unlabelled and not ds.orphans
    c1 = ds.labels["c001"]
    assert c1.rttm and c1.reference_turns()[1] == "rttm"
    assert c1.utterances == sorted(c1.utterances, key=lambda u: (u["start"], u["end"]))
    assert set(c1.scorecard.values()) <= {"yes", "no", "na"} and len(c1.scorecard) == 13


@pytest.mark.parametrize("data, where", [
    ([], "top level"),
    ({"utterances": {}}, "'utterances' must be a list"),
    ({"utterances": [{"role": "boss", "start": 0, "end": 1, "text": "x"}]}, "utterances[0].role"),
    ({"utterances": [{"role": "agent", "start": 2, "end": 1, "text": "x"}]}, "utterances[0]: end 1.0 is before"),
    ({"utterances": [{"role": "agent", "start": "a", "end": 1}]}, "utterances[0].start"),
    ({"utterances": [{"role": "agent", "start": 0, "end": 1, "channel": 3}]}, "utterances[0].channel"),
    ({"scorecard": {"opening.greeting": "maybe"}}, "scorecard.opening.greeting"),
])
def test_label_errors_name_the_file_and_the_place(data, where: str):
    with pytest.raises(LabelError) as err:
        parse_labels("c9", data, Path("labels/c9.json"))
    assert "labels/c9.json" in str(err.value) and where in str(err.value)


def test_reference_turns_come_from_the_utterances_without_rttm(tmp_path: Path):
    (tmp_path / "c1.json").write_text(json.dumps({"utterances": [
        {"role": "customer", "start": 3.0, "end": 4.0, "text": "hi"},
        {"role": "agent", "speaker": "S0", "start": 0.5, "end": 2.0, "text": "hello"}]}))
    labels = load_call_labels("c1", tmp_path)
    assert labels.reference_turns() == ([(0.5, 2.0, "S0"), (3.0, 4.0, "customer")], "labels")
    assert labels.scorecard == {} and labels.rttm is None
    (tmp_path / "c1.rttm").write_text("SPEAKER c1 1 0.5 x <NA> <NA> S0 <NA> <NA>\n")
    with pytest.raises(LabelError, match=r"c1\.rttm.*line 1"):
        load_call_labels("c1", tmp_path)


def test_dataset_lists_unlabelled_orphans_and_problems(tmp_path: Path):
    data = tmp_path / "d"
    shutil.copytree(SAMPLES, data)
    (data / "labels" / "c001.json").unlink()
    (data / "labels" / "c002.json").write_text("{not json")
    (data / "labels" / "zz9.json").write_text("{}")
    ds = load_dataset(data)
    assert ds.unlabelled == ["c001"] and ds.orphans == ["zz9"]
    assert "c002.json" in ds.problems["c002"] and "LabelError" in ds.problems["c002"]
    with pytest.raises(InputError, match="labels"):
        load_dataset(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        load_dataset(tmp_path / "nope")


def test_data_hash_follows_content_not_place(tmp_path: Path):
    hashes = {f"c{i:03d}": f"{i:064x}" for i in range(1, 11)}
    base = load_dataset(SAMPLES).sha256(hashes)
    copy = tmp_path / "copy"
    shutil.copytree(SAMPLES, copy)
    assert load_dataset(copy).sha256(hashes) == base
    gold = json.loads((copy / "labels" / "c004.json").read_text())
    gold["scorecard"]["opening.greeting"] = "no"
    (copy / "labels" / "c004.json").write_text(json.dumps(gold))
    assert load_dataset(copy).sha256(hashes) != base
    assert load_dataset(SAMPLES).sha256({**hashes, "c001": "0" * 64}) != base
