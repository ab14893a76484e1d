"""The interaction record: one module writes and reads call.json, old files are migrated by
version, and every source enters the same analysis stage through the source seam."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.ingest.discover import CallInput
from pipeline.ingest.sources import SOURCES, Conversation, Source
from pipeline.interaction.record import (
    CHAT, RECORDING, SCHEMA_VERSION, Interaction, RecordError, SourceInfo, migrate, record_path,
)
from pipeline.interaction.utterances import Utterance, Word
from pipeline.run.call import CallProcessor


def version_one() -> dict:
    """A call.json as callqa wrote it before the record had a version."""
    return {
        "call_id": "c9", "status": "ok",
        "source": {"path": "/calls/c9.wav", "sha256": "ab" * 32, "duration_s": 12.5, "sample_rate": 8000,
                   "channels": 2, "format": "wav", "codec": "pcm_s16le"},
        "metadata": {"agent_id": "A7", "queue": "billing"},
        "provenance": {"callqa_version": "0.1.0", "config_hash": "f00d"},
        "processing": {"seconds": 3.2},
        "speakers": {"method": "channels", "roles": {"S1": "customer", "S0": "agent"}, "confidence": 0.9},
        "utterances": [{"id": "u0001", "channel": 0, "start": 0.5, "end": 1.5, "text": "Hello there",
                        "words": [{"word": "Hello", "start": 0.5, "end": 1.0, "probability": 0.9},
                                  {"word": "there", "start": 1.0, "end": 1.5, "probability": 0.8}],
                        "speaker": "S0", "role": "agent"}],
        "scorecard": {"items": [{"id": "opening.greeting", "answer": "yes", "confidence": 0.8}],
                      "score": {"normalized": 0.75}},
        "sentiment": {"customer_end": 0.2},
        "metrics": {"duration_s": 12.5},
        "pii": {"enabled": True, "redacted": True, "counts": {}, "spans": []},
    }


def test_an_old_call_json_is_migrated_and_read():
    record = Interaction.from_dict(version_one())
    assert (record.call_id, record.status, record.channel, record.source.kind) == ("c9", "ok", "voice", RECORDING)
    assert record.ok and record.duration_s == 12.5 and record.source.channels == 2
    assert record.agent_id == "A7" and record.config_hash == "f00d" and record.score == 0.75
    assert record.answers == {"opening.greeting": "yes"}
    assert record.participants == [{"id": "S0", "role": "agent"}, {"id": "S1", "role": "customer"}]
    assert record.utterances[0].words[1] == Word("there", 1.0, 1.5, 0.8)
    written = record.to_dict()
    assert written["schema_version"] == SCHEMA_VERSION and list(written)[:5] == [
        "schema_version", "call_id", "status", "channel", "source"]
    # nothing of the old file is lost: every key comes back with the same value
    old = version_one()
    assert {k: written[k] for k in old if k != "source"} == {k: v for k, v in old.items() if k != "source"}
    assert written["source"] == {"kind": RECORDING, **old["source"]}


def test_the_record_round_trips_and_keeps_what_it_does_not_know(tmp_path: Path):
    data = migrate(version_one())
    data["insights"] = {"reason": "billing"}  # a block from a newer callqa of the same version
    data["source"]["mailbox"] = "support@"
    record = Interaction.from_dict(data)
    assert record.extra == {"insights": {"reason": "billing"}} and record.source.extra == {"mailbox": "support@"}
    path = record.save(tmp_path / "calls" / "c9")
    assert path == record_path(tmp_path, "c9")
    again = Interaction.load(path)
    assert again.to_dict() == record.to_dict() == json.loads(path.read_text())
    assert json.loads(path.read_text())["insights"] == {"reason": "billing"}


def test_utterances_are_built_only_when_asked_for():
    record = Interaction.from_dict(version_one())
    assert record.utterance_dicts() == version_one()["utterances"] and record._utterances is None
    record.utterances[0].role = "customer"
    assert record.utterance_dicts()[0]["role"] == "customer"


@pytest.mark.parametrize("data, message", [
    ([1, 2], "not a JSON object"),
    ({**version_one(), "schema_version": SCHEMA_VERSION + 1}, "newer callqa"),
    ({**version_one(), "schema_version": "2"}, "not a version number"),
    ({"status": "ok"}, "KeyError"),
    ({**version_one(), "utterances": {"u1": {}}}, "utterances is not a list"),
])
def test_what_is_not_a_record_is_a_clear_error(data, message):
    with pytest.raises(RecordError, match=message) as e:
        Interaction.from_dict(data, "/out/calls/c9/call.json")
    assert "/out/calls/c9/call.json" in str(e.value)


def test_an_unreadable_file_names_itself(tmp_path: Path):
    (tmp_path / "call.json").write_text("{not json")
    for path in (tmp_path / "call.json", tmp_path / "missing.json"):
        with pytest.raises(RecordError, match=str(path)):
            Interaction.load(path)


def test_an_unknown_source_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="source kind: 'fax' is not one of recording"):
        SOURCES.get("fax")


class ChatSource(Source):
    """A written conversation given as (role, text) lines ten seconds apart: the shape of the
    text sources to come, here to show that they enter the same analysis stage."""

    kind = CHAT

    def __init__(self, config, work_dir, threads):  # noqa: ANN001 - the Source constructor
        self.config = config

    @contextmanager
    def open(self, call, sha256, scratch):  # noqa: ANN001
        lines = [line.split(": ", 1) for line in call.path.read_text().splitlines()]
        utterances = []
        for i, (role, text) in enumerate(lines):
            start = 10.0 * i
            words = [Word(w, start + j, start + j + 0.5, 1.0) for j, w in enumerate(text.split())]
            utterances.append(Utterance(f"m{i + 1:04d}", 0, start, start + len(words), text, words,
                                        speaker=role, role=role))
        yield Conversation(SourceInfo(CHAT, str(call.path), sha256, 10.0 * len(lines)), utterances,
                           {"method": "given", "roles": {"agent": "agent", "customer": "customer"}})


def test_a_written_conversation_enters_the_same_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(SOURCES._choices, CHAT, ChatSource)
    thread = tmp_path / "t1.txt"
    thread.write_text("customer: Hi, my internet has been down since yesterday and I am really annoyed.\n"
                      "agent: Hello, thank you for contacting Orbit Mobile, my name is Dana. I am sorry about "
                      "that, I understand how frustrating it is. Let me check your line.\n"
                      "agent: I have reset your line and it should work within ten minutes.\n"
                      "customer: It works now, thank you so much for your help!\n"
                      "agent: Is there anything else I can help you with today? Thanks for contacting us.\n")
    out = tmp_path / "out"
    # scored with the call scorecard (a chat's own has no timing item), to see those items say na
    call_card = Path(__file__).resolve().parents[2] / "configs" / "scorecards" / "inbound_support.yaml"
    processor = CallProcessor(load_config(None, ["pii.redact_audio=false", f"channels.chat.scorecard={call_card}"]), out)
    outcome = processor.process(CallInput("t1", thread, {"agent_id": "A1"}, kind=CHAT), "cd" * 32)
    assert outcome.status == "ok", outcome.error
    record = Interaction.load(record_path(out, "t1"))
    assert (record.channel, record.source.kind, record.agent_id) == ("chat", CHAT, "A1")
    items = {i["id"]: i for i in record.items}
    # the detectors written for calls answer the written conversation ...
    assert items["opening.greeting"]["answer"] == "yes" and items["opening.agent_name"]["answer"] == "yes"
    assert items["closing.anything_else"]["answer"] == "yes"
    assert record.sentiment["customer_end"] > 0
    # ... and those that need the timing of audio say they do not apply
    timing = [i for i in record.items if i["detector"] in ("dead_air", "interruptions", "hold_etiquette")]
    assert timing and all(i["answer"] == "na" and "not to chat" in i["looked_for"] for i in timing)
    assert not (out / "calls" / "t1" / "audio_redacted.wav").exists()
    assert (out / "calls" / "t1" / "transcript.txt").read_text().startswith("[00:00:00.000 - ")
