"""Calls on a noisy floor: how far speech stands above the background, and the recogniser
chosen for them (``asr.noisy_model``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_fixtures import babbled
from conftest import SAMPLES, label, run_cli
from models.base import SAMPLE_RATE
from pipeline.config import load_config
from pipeline.ingest import audio
from pipeline.run.recording import RecordingSource
from pipeline.speakers.stage import SpeakerOptions, check_channels

ASR = load_config(None).asr


@pytest.mark.parametrize("call_id", ["c001", "c002", "c009", "c010"])  # stereo and mono
def test_speech_stands_far_above_a_quiet_line_and_near_a_noisy_floor(call_id: str):
    """Babble 10 dB under the parties brings the margin of speech over background under
    ``asr.noisy_below_db``; the same call as recorded (faint line noise) stays well above it."""
    _, samples = audio.load(SAMPLES / f"{call_id}.wav")
    margins = {}
    for noisy in (False, True):
        audio_in = babbled(samples, label(call_id)["utterances"]) if noisy else samples
        _, check = check_channels(audio_in.copy(), SpeakerOptions())
        assert len(check.background_margin_db) == samples.shape[0]
        assert check.to_dict()["background_margin_db"] == [round(m, 1) for m in check.background_margin_db]
        margins[noisy] = min(check.background_margin_db)
    bar = ASR.noisy_below_db if samples.shape[0] == 2 else ASR.noisy_below_db_mono
    assert margins[True] < bar - 1.0 and margins[False] > bar + 1.0, margins


def test_digital_silence_is_no_background():
    """Frames of digital silence (a line with no noise at all between the turns, an empty
    recording) say nothing of the floor: the margin is read from the sounding frames, and an
    empty channel has the widest."""
    _, samples = audio.load(SAMPLES / "c010.wav")
    ideal = np.zeros_like(samples)
    for u in label("c010")["utterances"]:
        a, b = int(u["start"] * SAMPLE_RATE), int(u["end"] * SAMPLE_RATE)
        ideal[:, a:b] = samples[:, a:b]
    for audio_in in (ideal, np.zeros((1, SAMPLE_RATE), dtype=np.float32)):
        _, check = check_channels(audio_in, SpeakerOptions())
        assert check.background_margin_db[0] > ASR.noisy_below_db_mono


def test_the_recogniser_is_chosen_by_the_margin_and_says_why(tmp_path: Path):
    """Under ``noisy_below_db`` the call gets the noisy-floor model, with the margin in its
    provenance; above it, or with ``noisy_model: null``, the main one (no model is loaded to
    choose: the backends are stand-ins here, loaded models are the slow test's business)."""
    class Check:
        def __init__(self, margins: list[float]):
            self.background_margin_db = margins

    source = RecordingSource(load_config(None), tmp_path)
    source._backend, source._noisy_backend = "main", "noisy"
    stereo, mono = ASR.noisy_below_db, ASR.noisy_below_db_mono
    assert source.recogniser(Check([stereo + 5, stereo + 0.5])) == ("main", None)
    assert source.recogniser(Check([mono + 0.5])) == ("main", None)
    backend, why = source.recogniser(Check([stereo + 5, stereo - 0.5]))
    assert backend == "noisy" and why == {"noisy_floor": {"background_margin_db": stereo - 0.5, "below_db": stereo}}
    backend, why = source.recogniser(Check([mono - 0.5]))  # one channel: its own bar
    assert backend == "noisy" and why == {"noisy_floor": {"background_margin_db": mono - 0.5, "below_db": mono}}
    assert source.recogniser(Check(None)) == ("main", None)
    off = RecordingSource(load_config(None, ["asr.noisy_model=null"]), tmp_path)
    off._backend = "main"
    assert off.recogniser(Check([stereo - 10])) == ("main", None)


@pytest.mark.slow
def test_a_call_on_a_noisy_floor_is_transcribed_with_the_noisy_floor_model(tmp_path: Path):
    """End to end: of a mono call as recorded and the same call under babble, the babbled one
    is transcribed with the packaged ``base`` model, named in its provenance with why, and its
    transcript is nearer the labels than ``tiny.en``'s on the same audio."""
    from pipeline.evaluation.measures import wer

    _, samples = audio.load(SAMPLES / "c010.wav")
    gold = label("c010")["utterances"]
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "quiet.wav", samples[0], SAMPLE_RATE, subtype="PCM_16")
    sf.write(folder / "floor.wav", babbled(samples, gold)[0], SAMPLE_RATE, subtype="PCM_16")
    reference = " ".join(u["text"] for u in gold)
    words = {}
    for setting in ("asr.noisy_model=base", "asr.noisy_model=null"):
        out = tmp_path / setting.split("=")[1]
        proc = run_cli("run", str(folder), "--out", str(out), "--set", setting, "--set", "scorecard.enabled=false")
        assert proc.returncode == 0, proc.stderr
        calls = {c: json.loads((out / "calls" / c / "call.json").read_text()) for c in ("quiet", "floor")}
        asr = {c: d["provenance"]["models"]["asr"] for c, d in calls.items()}
        assert asr["quiet"]["model"] == "tiny.en" and "noisy_floor" not in asr["quiet"]
        if setting.endswith("base"):
            assert asr["floor"]["model"] == "base"
            assert asr["floor"]["noisy_floor"]["background_margin_db"] < ASR.noisy_below_db_mono
        else:
            assert asr["floor"]["model"] == "tiny.en" and "noisy_floor" not in asr["floor"]
        words[setting] = " ".join(u["text"] for u in calls["floor"]["utterances"])
    assert wer([reference], [words["asr.noisy_model=base"]]) < wer([reference], [words["asr.noisy_model=null"]])
