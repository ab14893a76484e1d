"""Transcript formats and atomic writes."""

from pathlib import Path

from pipeline.interaction.utterances import Utterance, Word
from pipeline.interaction.writers import to_rttm, to_srt, to_txt, to_vtt, write_atomic


def utts() -> list[Utterance]:
    return [
        Utterance("u0001", 0, 0.5, 2.25, "Hello, thanks for calling.", [Word("Hello,", 0.5, 0.9, 0.9)]),
        Utterance("u0002", 1, 3661.0, 3662.5, "I have a <problem> & more", []),
    ]


def test_srt_blocks_and_times():
    srt = to_srt(utts(), channels=2)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:02,250\nleft: Hello, thanks for calling.\n")
    assert "2\n01:01:01,000 --> 01:01:02,500\nright: I have a <problem> & more\n" in srt


def test_vtt_has_header_voices_and_escapes():
    vtt = to_vtt(utts(), channels=2)
    assert vtt.startswith("WEBVTT\n")
    assert "u0001\n00:00:00.500 --> 00:00:02.250\n<v left>Hello, thanks for calling.\n" in vtt
    assert "<v right>I have a &lt;problem&gt; &amp; more" in vtt


def test_txt_mono_has_no_channel_prefix():
    txt = to_txt(utts()[:1], channels=1)
    assert txt == "[00:00:00.500 - 00:00:02.250] Hello, thanks for calling.\n"


def test_role_is_preferred_label():
    u = utts()[0]
    u.role = "agent"
    assert "agent: Hello" in to_txt([u], channels=2)


def test_write_atomic_leaves_no_temp_files(tmp_path: Path):
    target = tmp_path / "d" / "f.json"
    write_atomic(target, "one")
    write_atomic(target, "two", durable=True)
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_rttm_names_speakers_by_role():
    a, b = utts()
    a.speaker, a.role = "S0", "agent"
    b.speaker, b.role = "S2", "unknown"
    assert to_rttm([a, b], "c9").splitlines() == [
        "SPEAKER c9 1 0.500 1.750 <NA> <NA> agent <NA> <NA>",
        "SPEAKER c9 1 3661.000 1.500 <NA> <NA> unknown-S2 <NA> <NA>",
    ]


def test_rttm_writes_the_speech_turns_of_the_speakers_block():
    """The turns the speaker stage kept (overlapping where both talk), named by the block's
    roles; under a manual override the turns stay in the automatic block and the override's
    roles name them."""
    a, _ = utts()
    a.speaker, a.role = "S0", "agent"
    block = {"roles": {"S0": "agent", "S1": "customer", "S2": "unknown"},
             "turns": [[0.4, 2.3, "S0"], [1.0, 1.8, "S1"], [5.0, 5.5, "S2"]]}
    assert to_rttm([a], "c9", block).splitlines() == [
        "SPEAKER c9 1 0.400 1.900 <NA> <NA> agent <NA> <NA>",
        "SPEAKER c9 1 1.000 0.800 <NA> <NA> customer <NA> <NA>",
        "SPEAKER c9 1 5.000 0.500 <NA> <NA> unknown-S2 <NA> <NA>",
    ]
    override = {"method": "override", "roles": {"S0": "customer", "S1": "agent", "S2": "unknown"}, "automatic": block}
    names = [line.split()[7] for line in to_rttm([a], "c9", override).splitlines()]
    assert names == ["customer", "agent", "unknown-S2"]
    # a block without turns (an older record, another source): the utterances' spans
    assert to_rttm([a], "c9", {"roles": {"S0": "agent"}}) == to_rttm([a], "c9")


def test_a_full_disk_is_a_typed_error_that_keeps_the_previous_file(tmp_path: Path, monkeypatch):
    import errno
    import os

    import pytest

    from pipeline.errors import DiskFullError

    target = tmp_path / "call.json"
    write_atomic(target, "finished")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError, match="call.json: disk full"):
        write_atomic(target, "new", durable=True)
    assert target.read_text() == "finished"
    assert [p.name for p in tmp_path.iterdir()] == ["call.json"]


def test_json_text_is_json_dumps_with_an_indent_character_for_character():
    import enum
    import json
    import random

    from pipeline.interaction.writers import json_text

    class Level(enum.IntEnum):
        HIGH = 3

    class Name(str):
        pass

    def same(obj: object) -> None:
        assert json_text(obj) == json.dumps(obj, indent=2, ensure_ascii=False)

    for obj in ({}, [], (), {"a": (), "b": [[]], "c": {}}, "é\n\"\u2028\x00", 5, 1.5, None, True, 10**30,
                [float("nan"), float("inf"), -float("inf"), 1e-7, 1e16, -0.0, True, False, Level.HIGH],
                {1: 2, 2.5: None, True: "t", None: False, float("nan"): 1, Name("k"): Name("v"), "n": Level.HIGH}):
        same(obj)
    rng = random.Random(7)

    def value(depth: int = 0) -> object:
        r = rng.random()
        if depth > 4 or r < 0.4:
            return rng.choice([None, True, False, rng.randint(-10**6, 10**6), rng.uniform(-1e3, 1e3),
                               rng.random() * 1e-9, "w" + chr(rng.randint(0, 0x2FFF)), Level.HIGH])
        if r < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(["a", 1, 2.0, None, True]) if rng.random() < 0.2 else f"k{i}": value(depth + 1)
                for i in range(rng.randint(0, 4))}

    for _ in range(500):
        same(value())


def test_json_text_raises_what_json_dumps_raises():
    import json

    import pytest

    from pipeline.interaction.writers import json_text

    loop: list = []
    loop.append(loop)
    for bad, error in (({"a": {1, 2}}, TypeError), ({(1, 2): 3}, TypeError), (loop, ValueError)):
        with pytest.raises(error) as ours:
            json_text(bad)
        with pytest.raises(error) as theirs:
            json.dumps(bad, indent=2, ensure_ascii=False)
        assert str(ours.value) == str(theirs.value)
