"""The speech-stage cache: what its key depends on, entries read back as written, a bad entry
is a miss, and a run with the cache re-scores instead of transcribing."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from conftest import SAMPLES, manifest_rows, run_cli
from pipeline.config import load_config
from pipeline.interaction.utterances import AudioInfo, Utterance, Word
from pipeline.run.stage_cache import SpeechResult, StageCache, speech_key

META = {"agent_channel": "left", "queue": "billing", "company": "Summit Energy", "agent_id": "a1"}


def key(*overrides: str, sha: str = "ab" * 32, meta: dict | None = None) -> str:
    return speech_key(load_config(None, list(overrides)), sha, META if meta is None else meta)


def test_key_follows_the_speech_inputs_only():
    base = key()
    # options that change transcripts or speakers, the recording, the columns the speaker stage reads
    for changed in (key("asr.beam_size=5"), key("vad.threshold=0.4"), key("roles.company=Acme"),
                    key("diarization.max_speakers=3"), key("speakers.agent_channel=right"),
                    key(sha="cd" * 32), key(meta={**META, "company": "Other Co"}),
                    key(meta={**META, "agent_channel": "right"})):
        assert changed != base
    # the analysis, how the batch runs, and columns the speaker stage does not read
    for same in (key("scorecard.enabled=false"), key("pii.redact=false"), key("sentiment.backend=vader"),
                 key("asr.threads=3"), key("run.workers=2"), key("speakers.overrides_file=/tmp/o.csv"),
                 key("conversation.dead_air_s=9"), key(meta={**META, "agent_id": "a2", "started_at": "x"})):
        assert same == base


def result() -> SpeechResult:
    words = [Word("Hello", 0.1234, 0.5, 0.91234), Word("there.", 0.5, 0.9, 0.8)]
    utts = [Utterance("u0", 0, 0.1234, 0.9, "Hello there.", words, "S0", "agent")]
    return SpeechResult(AudioInfo("a.wav", "wav", "pcm_s16le", 8000, 2, 12.3456), 2, utts,
                        {"method": "channel", "roles": {"S0": "agent", "S1": "customer"}}, {"asr": {"model": "tiny.en"}}, 4.2)


def test_entries_read_back_as_the_normalised_result(tmp_path: Path):
    cache = StageCache(tmp_path)
    r = result()
    cache.put("k1", r)
    back = cache.get("k1")
    assert back is not None and back.cached and not r.cached
    assert back.to_dict() == r.normalised().to_dict()
    assert back.utterances[0].start == 0.123 and back.utterances[0].words[0].probability == 0.9123
    assert back.speakers["roles"] == {"S0": "agent", "S1": "customer"} and back.channels == 2
    assert cache.get("absent") is None


def test_an_unreadable_entry_is_a_miss_and_is_replaced(tmp_path: Path):
    cache = StageCache(tmp_path)
    cache.put("k1", result())
    path = cache.path("k1")
    path.write_bytes(b"not gzip")
    assert cache.get("k1") is None
    path.write_bytes(gzip.compress(json.dumps({"format": 99}).encode()))
    assert cache.get("k1") is None
    cache.put("k1", result())
    assert cache.get("k1") is not None


@pytest.mark.slow
def test_a_run_with_the_cache_rescores_and_honours_a_new_override(sample_run, stage_cache: Path, tmp_path: Path):
    """The sample run filled the cache: a run of c001 into a new folder takes its transcript
    from there, and a manual role swap afterwards re-scores the call from the cache."""
    sample_out, _ = sample_run
    row = next(r for r in manifest_rows() if r["call_id"] == "c001")
    manifest = tmp_path / "one.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow({**row, "path": str(SAMPLES / row["path"])})
    out = tmp_path / "out"
    args = ["run", str(manifest), "--out", str(out), "--quiet", "--set", "pii.redact=false",
            "--set", f"run.stage_cache={stage_cache}"]
    assert run_cli(*args).returncode == 0
    call = json.loads((out / "calls" / "c001" / "call.json").read_text())
    sample = json.loads((sample_out / "calls" / "c001" / "call.json").read_text())
    assert call["processing"]["stage_cache"] == "hit"
    assert call["utterances"] == sample["utterances"]
    assert [i["answer"] for i in call["scorecard"]["items"]] == [i["answer"] for i in sample["scorecard"]["items"]]

    (out / "speaker_overrides.csv").write_text("call_id,agent\nc001,swap\n")
    assert run_cli(*args).returncode == 0
    swapped = json.loads((out / "calls" / "c001" / "call.json").read_text())
    assert swapped["processing"]["stage_cache"] == "hit"
    assert swapped["speakers"]["method"] == "override"
    flip = {"agent": "customer", "customer": "agent"}
    assert [u["role"] for u in swapped["utterances"]] == [flip[u["role"]] for u in sample["utterances"]]
    # the scorecard now reads the customer's words as the agent's: the greeting is no longer found
    answers = {i["id"]: i["answer"] for i in swapped["scorecard"]["items"]}
    assert answers["opening.greeting"] == "no"
