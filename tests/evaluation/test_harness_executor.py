"""The evaluation harness computes the speech stage of labelled calls on the local executor
(pipeline/run/executors.py): a call that kills its worker process fails alone, named in the
report, and the other calls are computed and measured."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from conftest import MANIFEST, SAMPLES

from pipeline.config import load_config
from pipeline.evaluation import harness
from pipeline.evaluation.harness import Evaluator, SpeechTask
from pipeline.ingest.discover import CallInput

pytestmark = pytest.mark.slow  # real models over sample calls in worker processes

CALLS = ("c002", "c006", "c010")
"""Mono calls of the sample (diarized), cut to their first :data:`CUT_S` seconds."""
CRASH = "c006"
CUT_S = 16.0


class CrashingSpeechTask(SpeechTask):
    """The harness's task, except that the worker process computing :data:`CRASH` dies at once
    (as a crash in native code would end it). Defined here at the top level: spawned workers
    import it by name."""

    def compute(self, processor: Any, call: CallInput, sha256: str) -> str | None:
        if call.call_id == CRASH:
            os._exit(1)
        return super().compute(processor, call, sha256)


def _labelled_data(folder: Path) -> Path:
    """The sample calls of :data:`CALLS`, their first CUT_S seconds, with their manifest rows
    and their labels (the utterances and reference turns within the cut; the scorecard answers)."""
    (folder / "labels").mkdir(parents=True)
    with open(MANIFEST, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["call_id"] in CALLS]
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for cid in CALLS:
        rate = sf.info(SAMPLES / f"{cid}.wav").samplerate
        samples, _ = sf.read(SAMPLES / f"{cid}.wav", frames=int(CUT_S * rate), dtype="int16")
        sf.write(folder / f"{cid}.wav", samples, rate, subtype="PCM_16")
        label = json.loads((SAMPLES / "labels" / f"{cid}.json").read_text())
        label["utterances"] = [u for u in label["utterances"] if u["end"] <= CUT_S]
        label.pop("pii", None)  # its indexes point into the whole call's utterances
        (folder / "labels" / f"{cid}.json").write_text(json.dumps(label))
        turns = []
        for line in (SAMPLES / "labels" / f"{cid}.rttm").read_text().splitlines():
            fields = line.split()
            start, length = float(fields[3]), float(fields[4])
            if start + length <= CUT_S:
                turns.append(line)
        (folder / "labels" / f"{cid}.rttm").write_text("\n".join(turns) + "\n")
    return folder


def test_a_call_that_kills_its_worker_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    data = _labelled_data(tmp_path / "data")
    config = load_config(None, ["asr.threads=1"])  # the same threads for one worker or two
    evaluator = Evaluator(data, cache_dir=tmp_path / "cache", workers=2)
    assert [c.call_id for c in evaluator.calls] == list(CALLS)
    monkeypatch.setattr(harness, "SpeechTask", CrashingSpeechTask)

    with caplog.at_level(logging.WARNING, logger="callqa"):
        report = evaluator.evaluate(config)
    assert "a worker process died" in caplog.text  # and the calls it held were retried alone

    failed = report["data"]["failed"]
    assert list(failed) == [CRASH]
    assert failed[CRASH] == (f"WorkerCrashed: {data / (CRASH + '.wav')}: "
                             "the worker process died while processing this call")
    computed = [cid for cid in CALLS if cid != CRASH]
    assert report["data"]["evaluated"] == computed
    assert sorted(report["transcription"]["calls"]) == computed
    assert all(report["transcription"]["calls"][cid]["wer"] < 0.5 for cid in computed)
    assert sorted(report["speakers"]["calls"]) == computed
    assert evaluator.timing["speech"]["computed"] == 2 and evaluator.timing["speech"]["failed"] == 1
    assert any(f"failed {CRASH}: WorkerCrashed" in line for line in harness.summary_lines(report))

    # the same calls with one worker (in this process) and a new cache: the crashing call is
    # computed too, and the others have the figures the worker processes gave them
    single = Evaluator(data, cache_dir=tmp_path / "cache-1", workers=1)
    monkeypatch.setattr(harness, "SpeechTask", SpeechTask)
    alone = single.evaluate(config)
    assert alone["data"]["evaluated"] == list(CALLS) and alone["data"]["failed"] == {}
    for cid in computed:
        assert alone["transcription"]["calls"][cid] == report["transcription"]["calls"][cid]
        assert alone["speakers"]["calls"][cid] == report["speakers"]["calls"][cid]
