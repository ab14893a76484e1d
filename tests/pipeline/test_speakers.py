"""The speaker stage: fake stereo, cross-talk, word-level speaker changes, overrides, roles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audio_fixtures import babbled
from conftest import SAMPLES, label, manifest_rows, run_cli
from models.asr import load_backend
from models.base import SAMPLE_RATE, AsrOptions
from models.diarize import SpeakerTurn
from models.vad import VadOptions
from pipeline.ingest import audio
from pipeline.interaction.record import Interaction
from pipeline.errors import ConfigError
from pipeline.evaluation.agreement import role_accuracy
from pipeline.interaction.utterances import Utterance, Word
from pipeline.speakers.stage import (
    SpeakerOptions,
    apply_override,
    check_channels,
    configured_agent_channel,
    drop_background,
    drop_crosstalk,
    drop_unsure,
    fit_to_turns,
    read_overrides,
    relabel_record,
    speech_turns,
    split_at_speaker_changes,
)
from pipeline.evaluation.measures import wer
from pipeline.asr.transcribe import transcribe_call


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    _, samples = audio.load(SAMPLES / "c001.wav")
    assert samples.shape[0] == 2
    return samples


def test_real_stereo_stays_stereo(stereo):
    kept, check = check_channels(stereo.copy(), SpeakerOptions())
    assert check.kind == "stereo" and kept.shape[0] == 2


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_the_same_signal_on_both_channels_is_mono(stereo, gain: float):
    rng = np.random.default_rng(1)
    fake = np.stack([stereo[0], gain * stereo[0] + 1e-4 * rng.standard_normal(stereo.shape[1])]).astype(np.float32)
    kept, check = check_channels(fake, SpeakerOptions())
    assert check.kind == "identical" and kept.shape[0] == 1


@pytest.mark.parametrize("silent", [0, 1])
def test_a_silent_channel_makes_the_call_mono(stereo, silent: int):
    fake = stereo.copy()
    fake[silent] = 1e-5 * np.random.default_rng(2).standard_normal(fake.shape[1])
    kept, check = check_channels(fake, SpeakerOptions())
    assert check.kind == "one_silent" and check.kept_channel == 1 - silent
    assert np.array_equal(kept[0], stereo[1 - silent])


@pytest.mark.slow
def test_crosstalk_makes_no_phantom_utterances(stereo):
    backend = load_backend(AsrOptions(), threads=2)
    clean = transcribe_call(stereo, backend, VadOptions())
    bleed = 0.1  # each party at -20 dB on the other's channel
    leaky = np.stack([stereo[0] + bleed * stereo[1], stereo[1] + bleed * stereo[0]]).astype(np.float32)

    def channel_wer(utterances) -> list[float]:
        return [wer([" ".join(u.text for u in clean if u.channel == ch)],
                    [" ".join(u.text for u in utterances if u.channel == ch)]) for ch in (0, 1)]

    # The bleed is audible: transcribed as it is, each channel gains the other party's words.
    assert max(channel_wer(transcribe_call(leaky, backend, VadOptions()))) > 0.3
    options = SpeakerOptions()  # muted before recognition, the bleed's words dropped after it
    muted, check = check_channels(leaky.copy(), options)
    assert check.kind == "stereo" and min(check.crosstalk_s) > 5.0 and check.crosstalk_muted
    kept, _ = drop_crosstalk(transcribe_call(muted, backend, VadOptions()), muted, options.crosstalk_margin_db,
                             check.frame_levels, check.bleed)
    assert max(channel_wer(kept)) < 0.15, channel_wer(kept)
    # not muted when asked: the recogniser hears the channels as recorded
    heard, check = check_channels(leaky.copy(), SpeakerOptions(crosstalk_mute=False, background_mute=False))
    assert np.array_equal(heard, leaky) and not check.crosstalk_muted and min(check.crosstalk_s) > 5.0


def _spans_mask(spans: list[tuple[float, float]], n: int, pad_s: float = 0.0) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for start, end in spans:
        mask[max(0, int((start - pad_s) * SAMPLE_RATE)) : max(0, int((end + pad_s) * SAMPLE_RATE))] = True
    return mask


def test_background_voices_are_silenced_and_the_party_is_kept(stereo):
    """Babble 10 dB under each party: before recognition, a stereo channel's stretches with
    only that babble are silenced, its party's speech is not; on the clean call no speech of
    either party is silenced."""
    n = stereo.shape[1]
    gold = label("c001")["utterances"]
    noisy = babbled(stereo, gold)
    for audio_in, has_babble in ((noisy, True), (stereo, False)):
        out, check = check_channels(audio_in.copy(), SpeakerOptions())
        for ch in (0, 1):
            muted = (out[ch] == 0) & (audio_in[ch] != 0)
            inside = _spans_mask([(u["start"] + 0.1, u["end"] - 0.1) for u in gold if u["channel"] == ch], n)
            assert muted[inside].mean() < 0.01, (has_babble, ch, muted[inside].mean())
            if has_babble:  # only babble: away from the party's speech by more than the kept margin
                alone = ~_spans_mask([(u["start"], u["end"]) for u in gold if u["channel"] == ch], n, pad_s=0.5)
                assert muted[alone].mean() > 0.5, (ch, muted[alone].mean())
                assert check.background_s[ch] > 5.0
    heard, check = check_channels(noisy.copy(), SpeakerOptions(background_mute=False))  # off: babble heard
    muted_babble = check_channels(noisy.copy(), SpeakerOptions())[0] == 0
    assert check.background_s is None and (heard == 0).sum() < 0.2 * muted_babble.sum()


def test_utterances_of_background_voices_are_dropped_by_their_loudness(stereo):
    """What the recogniser writes for the babble of the floor (louder stretches of it survive
    the muting) is nearer the channel's background level than its party's speech: such
    utterances are dropped, every utterance of the party is kept, on the babbled call and on
    the clean one; share 0 keeps all."""
    gold = label("c001")["utterances"]
    noisy = babbled(stereo, gold)

    def utt(i: int, ch: int, start: float, end: float) -> Utterance:
        words = [Word("w", start, end, 0.9)]
        return Utterance(f"u{i}", ch, start, end, "w", words)

    party = [utt(i, u["channel"], u["start"], u["end"]) for i, u in enumerate(gold)]
    ranges = {}  # speech level over background level, per channel
    for audio_in, has_babble in ((noisy, True), (stereo, False)):
        check = check_channels(audio_in.copy(), SpeakerOptions())[1]
        kept, dropped = drop_background(party, check, SpeakerOptions().background_utterance_share)
        assert kept == party and dropped == 0, has_babble
        ranges[has_babble] = [check.levels_dbfs[ch] - check.background_dbfs[ch] for ch in (0, 1)]
    assert max(ranges[True]) < 20 < min(ranges[False]), ranges
    # babble alone: the first 2 s of each gap of 3 s or more in a channel's party speech, from
    # 0.5 s after the party stops (as recognised, the loudest of it survives muting)
    check = check_channels(noisy.copy(), SpeakerOptions())[1]
    alone = []
    for ch in (0, 1):
        spans = sorted((u["start"], u["end"]) for u in gold if u["channel"] == ch)
        for (_, a), (b, _) in zip(spans, spans[1:]):
            if b - a >= 3.0:
                alone.append(utt(len(alone) + 100, ch, a + 0.5, a + 2.5))
    assert len(alone) >= 4
    kept, dropped = drop_background(party + alone, check, SpeakerOptions().background_utterance_share)
    assert kept == party and dropped == len(alone)
    assert drop_background(party + alone, check, 0.0) == (party + alone, 0)
    assert check_channels(noisy.copy(), SpeakerOptions())[1].to_dict()["background_dbfs"]


def test_utterances_the_recogniser_is_unsure_of_are_dropped():
    """Whisper's words for babble or an empty line come with low probabilities: an utterance
    whose mean is under the threshold goes, a sure one with one unsure word stays."""
    def utt(i: int, probs: list[float]) -> Utterance:
        words = [Word(f"w{k}", i + 0.2 * k, i + 0.2 * k + 0.1, p) for k, p in enumerate(probs)]
        return Utterance(f"u{i}", 0, i, i + 1, " ".join(w.word for w in words), words)

    utterances = [utt(0, [0.9, 0.95, 0.1]), utt(1, [0.2, 0.3, 0.5]), utt(2, [])]
    kept, dropped = drop_unsure(utterances, 0.4)
    assert [u.id for u in kept] == ["u0", "u2"] and dropped == 3
    assert drop_unsure(utterances, 0.0) == (utterances, 0)


def test_transcription_uses_speech_regions_found_before_it(stereo):
    """The pipeline finds the speech regions first (so diarization can start beside
    transcription); regions it hands over are used, the others are found and handed back."""
    backend = load_backend(AsrOptions(), threads=2)
    regions: dict = {0: []}
    utterances = transcribe_call(stereo[:, : 20 * SAMPLE_RATE], backend, VadOptions(), regions)
    assert utterances and {u.channel for u in utterances} == {1}
    assert regions[0] == [] and regions[1]


def test_a_word_in_a_muted_stretch_is_dropped():
    sig = np.zeros((2, SAMPLE_RATE * 2), dtype=np.float32)
    sig[0, : SAMPLE_RATE] = 0.3 * np.sin(np.arange(SAMPLE_RATE) * 0.05)  # left talks in the first second
    sig[1, : SAMPLE_RATE] = 0.003 * np.sin(np.arange(SAMPLE_RATE) * 0.05)  # -40 dB of it on the right
    sig[1, SAMPLE_RATE:] = 0.2 * np.sin(np.arange(SAMPLE_RATE) * 0.07)  # right talks in the second
    heard = [Utterance("u1", 1, 0.2, 1.8, "hello there yes", _words(("hello", 0.2, 0.5), ("there", 0.5, 0.9), ("yes", 1.2, 1.6)))]
    kept, dropped = drop_crosstalk(heard, sig, 15.0)
    assert dropped == 2 and [w.word for u in kept for w in u.words] == ["yes"] and kept[0].text == "yes"
    assert (kept[0].start, kept[0].end) == (1.2, 1.6)


def _words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(w, s, e, 0.9) for w, s, e in spec]


def test_an_utterance_spanning_a_speaker_change_is_cut_at_the_word():
    words = _words(("Okay,", 0.0, 0.4), ("thanks.", 0.4, 0.9), ("So", 1.1, 1.3), ("what's", 1.3, 1.6), ("wrong?", 1.6, 2.0))
    u = Utterance("u0001", 0, 0.0, 2.0, "Okay, thanks. So what's wrong?", words)
    turns = [SpeakerTurn(0.0, 1.0, "S1"), SpeakerTurn(1.05, 2.2, "S0")]
    out = split_at_speaker_changes([u], turns)
    assert [(x.speaker, x.text, x.start, x.end) for x in out] == [
        ("S1", "Okay, thanks.", 0.0, 0.9), ("S0", "So what's wrong?", 1.1, 2.0)
    ]
    assert [x.id for x in out] == ["u0001", "u0002"]


def test_words_between_turns_go_to_the_nearest_turn():
    u = Utterance("u0001", 0, 5.0, 5.4, "yes", _words(("yes", 5.0, 5.4)))
    out = split_at_speaker_changes([u], [SpeakerTurn(0.0, 2.0, "S0"), SpeakerTurn(6.0, 9.0, "S1")])
    assert out[0].speaker == "S1"


def test_a_word_without_duration_goes_to_the_turn_it_is_in():
    """The recogniser gives some words no duration ("Not" at 32.792-32.792 in "Not my
    problem."): the turn holding that instant is the speaker's, however far its ends are."""
    words = _words(("worse.", 32.05, 32.41), ("Not", 32.79, 32.79), ("my", 32.79, 33.13), ("problem.", 33.13, 33.69))
    u = Utterance("u0001", 0, 32.05, 33.69, "worse. Not my problem.", words)
    turns = [SpeakerTurn(29.0, 31.39, "S1"), SpeakerTurn(31.39, 36.26, "S0")]
    assert [(x.speaker, x.text) for x in split_at_speaker_changes([u], turns)] == [("S0", "worse. Not my problem.")]


def _said(speaker: str, *spec: tuple[str, float, float], channel: int = 0) -> Utterance:
    words = _words(*spec)
    return Utterance("u", channel, words[0].start, words[-1].end, " ".join(w.word for w in words), words, speaker)


def test_mono_turns_follow_the_diarizer_and_bridge_one_speakers_short_pauses():
    """A pause inside one speaker's speech is not a gap in the turn; a pause another speaker
    talks in is; speech the recogniser gave no word stays a turn (the diarizer heard it)."""
    diarized = [(0.0, 1.0, "S0"), (1.3, 2.0, "S0"), (2.0, 2.6, "S1"), (2.7, 3.0, "S0"), (3.1, 3.5, "S0"),
                (5.0, 5.4, "S1")]
    said = [_said("S0", ("a", 0.1, 0.9), ("b", 1.4, 1.9)), _said("S1", ("c", 2.1, 2.5)),
            _said("S0", ("d", 2.75, 3.4))]
    assert speech_turns(diarized, said, mono=True) == [
        (0.0, 2.0, "S0"), (2.0, 2.6, "S1"), (2.7, 3.5, "S0"), (5.0, 5.4, "S1")]
    # S0's pause at 2.0-2.7 holds S1's turn: not bridged even though S0 is on both sides
    assert speech_turns([(0.0, 1.0, "S0"), (1.1, 1.2, "S1"), (1.3, 2.0, "S0")], [], mono=True) == [
        (0.0, 1.0, "S0"), (1.1, 1.2, "S1"), (1.3, 2.0, "S0")]


def test_a_word_outside_its_speakers_speech_adds_its_span():
    said = [_said("S0", ("hello", 0.2, 0.8)), _said("S0", ("okay", 4.0, 4.3))]
    assert speech_turns([(0.1, 0.9, "S0")], said, mono=True) == [(0.1, 0.9, "S0"), (4.0, 4.3, "S0")]


def test_stereo_turns_overlap_where_both_talk_and_need_a_word():
    """Each channel's speech is its own speaker's: the agent's short question inside the
    customer's turn overlaps it; a stretch of a channel with none of its words (noise, bleed)
    is no turn."""
    speech = [(0.0, 3.0, "S1"), (1.0, 1.8, "S0"), (5.0, 6.0, "S0")]
    said = [_said("S1", ("so", 0.1, 0.4), ("the", 2.0, 2.9), channel=1),
            _said("S0", ("account", 1.1, 1.4), ("number?", 1.4, 1.7))]
    turns = speech_turns(speech, said, mono=False)
    assert turns == [(0.0, 3.0, "S1"), (1.0, 1.8, "S0")]


def test_utterances_span_their_turns_and_keep_their_words():
    """Two utterances in one turn share it (the second starts at its first word); an utterance
    starts and ends with the turn, not with the recogniser's first and last word, except where
    a word runs past the turn."""
    turns = [(0.0, 3.0, "S0"), (3.0, 4.0, "S1"), (5.0, 6.0, "S0")]
    a = _said("S0", ("one", 0.3, 0.9), ("two", 1.0, 1.2))
    b = _said("S0", ("three", 1.6, 2.5))
    c = _said("S1", ("four", 3.2, 3.6))
    d = _said("S0", ("five", 5.1, 6.3))
    out = fit_to_turns([d, c, b, a], turns)
    assert [(u.text, u.start, u.end) for u in out] == [
        ("one two", 0.0, 1.6), ("three", 1.6, 3.0), ("four", 3.0, 4.0), ("five", 5.0, 6.3)]
    assert [u.id for u in out] == ["u0001", "u0002", "u0003", "u0004"]
    assert all(u.start <= w.start and w.end <= u.end for u in out for w in u.words)


def test_agent_channel_precedence_manifest_then_queue_then_config():
    opts = SpeakerOptions(agent_channel="auto", queue_agent_channel={"billing": "right"})
    assert configured_agent_channel({"agent_channel": "Left", "queue": "billing"}, opts)[0] == "left"
    assert configured_agent_channel({"agent_channel": "", "queue": "billing"}, opts)[0] == "right"
    assert configured_agent_channel({"queue": "sales"}, opts)[0] == "auto"
    with pytest.raises(ConfigError, match="agent_channel"):
        configured_agent_channel({"agent_channel": "middle"}, opts)


def test_overrides_swap_or_name_the_agent():
    roles = {"S0": "customer", "S1": "agent", "S2": "unknown"}
    assert apply_override(roles, "swap", {}) == {"S0": "agent", "S1": "customer", "S2": "unknown"}
    assert apply_override(roles, "S0", {}) == {"S0": "agent", "S1": "customer", "S2": "unknown"}
    assert apply_override({"S0": "agent", "S1": "customer"}, "right", {"left": "S0", "right": "S1"}) == {
        "S0": "customer", "S1": "agent"
    }
    with pytest.raises(ConfigError, match="S7"):
        apply_override(roles, "S7", {})


def test_overrides_file_errors_name_the_file(tmp_path: Path):
    f = tmp_path / "ov.csv"
    f.write_text("call,who\nc1,S0\n")
    with pytest.raises(ConfigError, match="ov.csv.*call_id,agent"):
        read_overrides(f)
    f.write_text("call_id,agent\nc1,\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_overrides(f)
    f.write_text("call_id,agent\nc1,swap\nc2,S1\n")
    assert read_overrides(f) == {"c1": "swap", "c2": "S1"}
    assert read_overrides(tmp_path / "absent.csv") == {}


def test_relabel_applies_and_removes_an_override():
    record = Interaction.from_dict({
        "call_id": "c1", "status": "ok", "source": {"path": "c1.wav", "sha256": "0" * 64},
        "speakers": {"method": "diarization", "roles": {"S0": "agent", "S1": "customer"}, "confidence": 0.7},
        "utterances": [{"id": f"u{i}", "channel": 0, "start": i, "end": i + 1, "text": "hi", "speaker": s, "role": r}
                       for i, (s, r) in enumerate([("S0", "agent"), ("S1", "customer")])],
    })
    swapped = Interaction.from_dict(relabel_record(record, "swap").to_dict())
    assert swapped.speakers["method"] == "override" and swapped.override == "swap"
    assert [u.role for u in swapped.utterances] == ["customer", "agent"]
    assert swapped.speakers["automatic"]["roles"] == {"S0": "agent", "S1": "customer"}
    restored = relabel_record(swapped, None)
    assert restored.speakers["method"] == "diarization" and restored.override is None
    assert [u.role for u in restored.utterances] == ["agent", "customer"]


def test_role_accuracy_by_speech_time():
    gold = [{"start": 0.0, "end": 2.0, "role": "agent"}, {"start": 2.0, "end": 4.0, "role": "customer"}]
    hyp = [
        {"role": "agent", "words": [{"start": 0.0, "end": 2.0}]},
        {"role": "agent", "words": [{"start": 2.0, "end": 3.0}]},
        {"role": "customer", "words": [{"start": 3.0, "end": 4.0}]},
    ]
    r = role_accuracy(hyp, gold)
    assert r["accuracy"] == pytest.approx(0.75, abs=0.01) and r["coverage"] == pytest.approx(1.0, abs=0.01)
    assert r["frame_accuracy"] == pytest.approx(0.75, abs=0.01) and r["seconds"] == pytest.approx(4.0)


def test_role_accuracy_judges_each_word_against_the_turn_it_belongs_to():
    gold = [{"start": 0.0, "end": 2.0, "role": "agent"}, {"start": 2.2, "end": 4.0, "role": "customer"}]
    hyp = [
        {"role": "agent", "words": [{"start": 0.1, "end": 1.0}, {"start": 1.0, "end": 2.3}]},  # runs 0.1 s over
        {"role": "customer", "words": [{"start": 1.9, "end": 3.0}]},  # starts 0.1 s early
        {"role": "agent", "words": [{"start": 3.0, "end": 3.5}]},  # wrong
        {"role": "customer", "words": [{"start": 5.0, "end": 5.5}]},  # beyond the labels: not judged
    ]
    r = role_accuracy(hyp, gold)
    assert r["accuracy"] == pytest.approx(3.3 / 3.8) and r["seconds"] == pytest.approx(3.8)
    assert r["frame_accuracy"] < r["accuracy"]
    both_talk = [{"start": 0.0, "end": 2.0, "role": "agent"}, {"start": 1.5, "end": 3.0, "role": "customer"}]
    hyp = [{"role": "agent", "words": [{"start": 1.6, "end": 2.0}]}, {"role": "customer", "words": [{"start": 1.6, "end": 2.0}]}]
    assert role_accuracy(hyp, both_talk)["accuracy"] == 1.0


def test_role_accuracy_aligns_words_with_the_gold_text():
    gold = [
        {"start": 0.0, "end": 3.0, "role": "agent", "text": "We booked an engineer for tomorrow morning."},
        {"start": 2.8, "end": 4.0, "role": "customer", "text": "Oh, that's brilliant."},
    ]
    hyp = [
        {"role": "agent", "words": [{"word": w, "start": 0.5 * i, "end": 0.5 * i + 0.5}
                                    for i, w in enumerate(["We", "booked", "an", "engineer", "for"])]},
        # the customer's first word is timed well inside the agent's turn, but it is theirs
        {"role": "customer", "words": [{"word": "Oh,", "start": 2.5, "end": 2.9},
                                       {"word": "that's", "start": 3.0, "end": 3.4},
                                       {"word": "brilliant.", "start": 3.4, "end": 3.9}]},
        # a misrecognised word is judged by time: wrong here
        {"role": "customer", "words": [{"word": "tomato", "start": 2.0, "end": 2.4}]},
    ]
    r = role_accuracy(hyp, gold)
    assert r["accuracy"] == pytest.approx(3.8 / 4.2) and r["aligned"] == pytest.approx(3.8 / 4.2)


# -- on the processed sample calls ------------------------------------------------------------


def _load(out: Path, call_id: str) -> dict:
    return json.loads((out / "calls" / call_id / "call.json").read_text())


@pytest.mark.slow
def test_every_word_has_a_speaker_and_a_role(sample_run):
    out, proc = sample_run
    assert proc.returncode == 0, proc.stderr
    for row in manifest_rows():
        call = _load(out, row["call_id"])
        block = call["speakers"]
        assert block["method"] in ("channel", "diarization")
        assert 0.0 <= block["confidence"] <= 1.0 and block["evidence"]
        assert set(block["roles"].values()) <= {"agent", "customer", "unknown"}
        for u in call["utterances"]:
            assert u["speaker"] in block["roles"] and u["role"] == block["roles"][u["speaker"]]
        rttm = (out / "calls" / row["call_id"] / "diarization.rttm").read_text().splitlines()
        assert rttm and all(line.split()[7] in ("agent", "customer") or line.split()[7].startswith("unknown") for line in rttm)
        txt = (out / "calls" / row["call_id"] / "transcript.txt").read_text()
        assert "agent: " in txt and "customer: " in txt


@pytest.mark.slow
def test_role_accuracy_on_the_sample_calls(sample_run):
    """Stereo calls with a configured agent channel: every word right. Mono and auto: >= 95%."""
    out, _ = sample_run
    for row in manifest_rows():
        call = _load(out, row["call_id"])
        acc = role_accuracy(call["utterances"], label(row["call_id"])["utterances"])
        if call["source"]["channels"] == 2 and row["agent_channel"]:
            assert acc["accuracy"] == 1.0, (row["call_id"], acc)
        else:
            assert acc["accuracy"] >= 0.95, (row["call_id"], acc)
        assert acc["coverage"] >= 0.8, (row["call_id"], acc)


@pytest.mark.slow
def test_a_manual_override_is_honoured_on_rerun(tmp_path: Path):
    """Without a scorecard the roles are relabelled in place; a scored call is processed again,
    since every answer depends on the roles."""
    row = next(r for r in manifest_rows() if r["agent_channel"] == "left")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"call_id,path,agent_channel,company\n{row['call_id']},{SAMPLES / row['path']},left,{row['company']}\n")
    out = tmp_path / "out"
    unscored = ("--set", "scorecard.enabled=false")
    assert run_cli("run", str(manifest), "--out", str(out), "-q", *unscored).returncode == 0
    first = _load(out, row["call_id"])
    assert first["speakers"]["roles"] == {"S0": "agent", "S1": "customer"} and "scorecard" not in first

    (out / "speaker_overrides.csv").write_text(f"call_id,agent\n{row['call_id']},swap\n")
    assert run_cli("run", str(manifest), "--out", str(out), "-q", *unscored).returncode == 0
    second = _load(out, row["call_id"])
    assert second["speakers"]["method"] == "override" and second["speakers"]["roles"] == {"S0": "customer", "S1": "agent"}
    assert all(u["role"] == ("customer" if u["channel"] == 0 else "agent") for u in second["utterances"])
    assert second["processing"] == first["processing"], "the call was transcribed again"
    assert " agent " in (out / "calls" / row["call_id"] / "diarization.rttm").read_text()

    (out / "speaker_overrides.csv").write_text("call_id,agent\n")
    assert run_cli("run", str(manifest), "--out", str(out), "-q", *unscored).returncode == 0
    assert _load(out, row["call_id"])["speakers"]["roles"] == {"S0": "agent", "S1": "customer"}

    scored = tmp_path / "scored"
    assert run_cli("run", str(manifest), "--out", str(scored), "-q").returncode == 0
    before = _load(scored, row["call_id"])
    greeting = next(i for i in before["scorecard"]["items"] if i["id"] == "opening.greeting")
    assert greeting["answer"] == "yes"
    (scored / "speaker_overrides.csv").write_text(f"call_id,agent\n{row['call_id']},swap\n")
    assert run_cli("run", str(manifest), "--out", str(scored), "-q").returncode == 0
    after = _load(scored, row["call_id"])
    assert after["speakers"]["method"] == "override" and after["processing"] != before["processing"]
    greeting = next(i for i in after["scorecard"]["items"] if i["id"] == "opening.greeting")
    assert greeting["answer"] == "no"  # the customer, now "agent", did not greet for the company


@pytest.mark.slow
def test_silence_and_one_speaker_calls_give_sensible_results(tmp_path: Path, stereo):
    import soundfile as sf

    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "silent.wav", np.zeros(8000 * 20, dtype=np.int16), 8000, subtype="PCM_16")
    agent_only = stereo[0][: 30 * SAMPLE_RATE]
    sf.write(folder / "agent_only.wav", agent_only, SAMPLE_RATE, subtype="PCM_16")
    out = tmp_path / "out"
    proc = run_cli("run", str(folder), "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    silent = _load(out, "silent")
    assert silent["status"] == "ok" and silent["utterances"] == [] and silent["speakers"]["roles"] == {}
    one = _load(out, "agent_only")
    assert one["speakers"]["speaker_count"] == 1
    assert {u["role"] for u in one["utterances"]} == {"agent"}


def test_a_calls_provenance_names_only_the_speaker_models_it_used() -> None:
    """A worker that diarized a mono call before does not write the diarizer into the next
    call's provenance when that call did not use it: the record is the same on any worker
    split (a stereo call's provenance used to depend on which calls its worker had before)."""
    from pipeline.config import load_config
    from pipeline.speakers.stage import SpeakerStage

    config = load_config(None)
    stage = SpeakerStage(config.speakers, config.diarization, config.roles, 1)
    stage.begin()
    assert stage.diarizer is not None  # a mono call: diarized
    assert set(stage.describe()) == {"diarization"}
    stage.begin()  # the next call, stereo: no diarization, no role model
    assert stage.describe() == {}
    stage.embedder  # noqa: B018 - roles from content use the sentence model
    assert set(stage.describe()) == {"text_embedding"}
