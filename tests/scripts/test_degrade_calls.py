"""scripts/degrade_calls.py: the degraded evaluation set (issue 24) is reproducible, reaches the levels
it is asked for, keeps the labels and the layout, takes its babble from other calls only, and says
clearly what is wrong with bad arguments. Runs on 12 s excerpts of three sample calls."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "recordings_sample"
SCRIPT = ROOT / "scripts" / "degrade_calls.py"

_spec = importlib.util.spec_from_file_location("degrade_calls", SCRIPT)
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)

CALLS = ("c001", "c002", "c004")  # stereo 8 kHz mu-law, mono 8 kHz mu-law, mono 16 kHz FLAC
EXCERPT_S = 12.0


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled folder: the first 12 s of three sample calls, their manifest rows and labels."""
    d = tmp_path_factory.mktemp("src")
    (d / "labels").mkdir()
    with (SAMPLE / "manifest.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = reader.fieldnames, [r for r in reader if r["call_id"] in CALLS]
    for row in rows:
        x, sr = sf.read(str(SAMPLE / row["path"]), always_2d=True)
        name = f"{row['call_id']}.wav"
        sf.write(str(d / name), x[: int(EXCERPT_S * sr)], sr, subtype="PCM_16")
        row["path"] = name
        for ext in (".json", ".rttm"):
            shutil.copyfile(SAMPLE / "labels" / f"{row['call_id']}{ext}", d / "labels" / f"{row['call_id']}{ext}")
    with (d / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return d


def degrade(src: Path, out: Path, *args: str) -> dict:
    assert dc.main([str(src), "--out", str(out), "-q", *args]) == 0
    return json.loads((out / "degradation.json").read_text())


def read(path: Path) -> tuple[np.ndarray, int]:
    return sf.read(str(path), dtype="float64", always_2d=True)


def files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_audio(src: Path, tmp_path: Path) -> None:
    degrade(src, tmp_path / "a", "--seed", "7")
    degrade(src, tmp_path / "b", "--seed", "7")
    degrade(src, tmp_path / "c", "--seed", "8")
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    for cid in CALLS:
        assert a[f"{cid}.wav"] != c[f"{cid}.wav"]
    # a condition turned off leaves the others' draws alone: noise alone is the noise of "all" before coding
    n1 = degrade(src, tmp_path / "n1", "--seed", "7", "--conditions", "noise")
    n2 = degrade(src, tmp_path / "n2", "--seed", "7", "--conditions", "noise,loss")
    assert n1["calls"]["c001"]["per_channel"][0]["noise"] == n2["calls"]["c001"]["per_channel"][0]["noise"]


def test_layout_manifest_and_labels_kept(src: Path, tmp_path: Path) -> None:
    rep = degrade(src, tmp_path / "out")
    out = tmp_path / "out"
    assert rep["conditions"] == list(dc.CONDITIONS)
    assert set(rep["parameters"]) == set(dc.CONDITIONS)
    for cid in CALLS:
        i, o = sf.info(str(src / f"{cid}.wav")), sf.info(str(out / f"{cid}.wav"))
        assert (o.channels, o.samplerate, o.frames) == (i.channels, i.samplerate, i.frames)
        assert rep["calls"][cid]["channels"] == i.channels
    assert rep["calls"]["c001"]["customer_channel"] == 1  # agent on the left
    # labels byte for byte, manifest: same columns and rows, the path pointing at the new recording
    assert {k: v for k, v in files(out).items() if k.startswith("labels/")} == \
        {k: v for k, v in files(src).items() if k.startswith("labels/")}
    with (src / "manifest.csv").open() as a, (out / "manifest.csv").open() as b:
        ra, rb = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [list(r) for r in ra] == [list(r) for r in rb]
    for x, y in zip(ra, rb):
        assert {k: v for k, v in x.items() if k != "path"} == {k: v for k, v in y.items() if k != "path"}
        assert y["path"] == f"{y['call_id']}.wav"


def _speech_power(src: Path, cid: str, x: np.ndarray, sr: int, ch: int, stereo: bool) -> float:
    label = json.loads((src / "labels" / f"{cid}.json").read_text())
    mask = dc.speech_mask(label, len(x), sr, ch if stereo else None)
    assert mask.sum() > sr  # the excerpt holds gold speech
    return float(np.mean(x[mask, ch] ** 2))


@pytest.mark.parametrize("snr", [10.0, 0.0])
def test_noise_snr_measured_on_the_output(src: Path, tmp_path: Path, snr: float) -> None:
    rep = degrade(src, tmp_path / "out", "--conditions", "noise", "--snr-db", str(snr))
    for cid in CALLS:
        x, sr = read(src / f"{cid}.wav")
        y, _ = read(tmp_path / "out" / f"{cid}.wav")
        y = y / rep["calls"][cid]["output_gain"]
        for ch in range(x.shape[1]):
            noise = y[:, ch] - x[:, ch]
            measured = 10 * np.log10(_speech_power(src, cid, x, sr, ch, x.shape[1] > 1) / np.mean(noise ** 2))
            assert abs(measured - snr) <= 1.0, (cid, ch, measured)


def test_babble_level_and_never_from_the_call_itself(src: Path, tmp_path: Path) -> None:
    rep = degrade(src, tmp_path / "out", "--conditions", "babble", "--babble-db", "10")
    for cid in CALLS:
        x, sr = read(src / f"{cid}.wav")
        y, _ = read(tmp_path / "out" / f"{cid}.wav")
        y = y / rep["calls"][cid]["output_gain"]
        chans = rep["calls"][cid]["per_channel"]
        for ch in range(x.shape[1]):
            talkers = chans[ch]["babble"]["talkers"]
            assert talkers and all(t["call_id"] != cid and t["call_id"] in CALLS for t in talkers)
            babble = y[:, ch] - x[:, ch]
            level = 10 * np.log10(_speech_power(src, cid, x, sr, ch, x.shape[1] > 1) / np.mean(babble ** 2))
            assert abs(level - 10.0) <= 1.0
            for own in range(x.shape[1]):  # none of the call's own signal is in its background
                assert abs(np.corrcoef(babble, x[:, own])[0, 1]) < 0.1
        if x.shape[1] == 2:  # each channel its own background
            assert chans[0]["babble"]["talkers"] != chans[1]["babble"]["talkers"]


def test_packet_loss_fraction_and_bursts(tmp_path: Path) -> None:
    """Two minutes of noise (every 20 ms packet differs from the last), 4% loss: the packets that
    changed in the output are the lost ones, about 4% of them, in bursts."""
    d = tmp_path / "src"
    d.mkdir()
    sr = 8000
    rng = np.random.default_rng(0)
    sf.write(str(d / "n1.wav"), 0.1 * rng.standard_normal(120 * sr), sr, subtype="PCM_16")
    rep = degrade(d, tmp_path / "out", "--conditions", "loss", "--loss", "0.04")
    x, _ = read(d / "n1.wav")
    y, _ = read(tmp_path / "out" / "n1.wav")
    hop = int(0.02 * sr)
    changed = np.any((x[:, 0] != y[:, 0]).reshape(-1, hop), axis=1)
    info = rep["calls"]["n1"]["per_channel"][0]["loss"]
    assert np.flatnonzero(changed).tolist() == info["lost_packets"]
    assert abs(changed.mean() - 0.04) <= 0.012
    starts = np.flatnonzero(changed[1:] & ~changed[:-1])
    assert changed.sum() / max(len(starts), 1) > 1.4  # mean burst length ~2 packets, not isolated losses
    # concealment: the first lost packet of a burst repeats the last good one, fading
    i = int(starts[0]) + 1
    last_good = y[(i - 1) * hop: i * hop, 0]
    first_lost = y[i * hop: (i + 1) * hop, 0]
    assert np.allclose(first_lost, last_good * np.linspace(1, 2 / 3, hop, endpoint=False), atol=1e-4)


def test_gsm_and_muffled(src: Path, tmp_path: Path) -> None:
    rep = degrade(src, tmp_path / "gsm", "--conditions", "gsm")
    x, sr = read(src / "c001.wav")
    y, _ = read(tmp_path / "gsm" / "c001.wav")
    err = 10 * np.log10(np.sum(x ** 2) / np.sum((y - x) ** 2))
    assert 3 < err < 30  # coded: close to the input (no delay) but not the input
    rep = degrade(src, tmp_path / "muf", "--conditions", "muffled")
    y, _ = read(tmp_path / "muf" / "c001.wav")
    assert np.array_equal(y[:, 0], x[:, 0])  # the agent (left) untouched
    drop = 10 * np.log10(np.sum(x[:, 1] ** 2) / np.sum(y[:, 1] ** 2))
    assert drop >= 12.0
    spec_x, spec_y = np.abs(np.fft.rfft(x[:, 1])), np.abs(np.fft.rfft(y[:, 1]))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    hi = f > 3200
    assert 20 * np.log10(spec_x[hi].sum() / spec_y[hi].sum()) > 12 + 10  # low-passed above 2.5 kHz
    assert rep["calls"]["c001"]["per_channel"][1]["muffled"] is True


def test_bad_arguments(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as exc:
            dc.main(list(args))
        assert exc.value.code == 2
        return capsys.readouterr().err

    out = str(tmp_path / "o")
    assert "is not a folder" in error(str(tmp_path / "nope"), "--out", out)
    assert "unknown 'hiss'" in error(str(src), "--out", out, "--conditions", "babble,hiss")
    assert "--loss 0.7" in error(str(src), "--out", out, "--loss", "0.7")
    assert "--snr-db 99" in error(str(src), "--out", out, "--snr-db", "99")
    assert "must not be SRC_DIR or inside it" in error(str(src), "--out", str(src / "deg"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert "not empty" in error(str(src), "--out", str(tmp_path / "full"))
    assert "is a file, not a folder" in error(str(src), "--out", str(tmp_path / "full" / "x"))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copyfile(src / "c002.wav", one / "c002.wav")
    assert "babble needs at least two calls" in error(str(one), "--out", out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.csv").write_text("call_id,path\nc9,missing.wav\n")
    assert "'missing.wav' not found" in error(str(bad), "--out", out)
    # the command line says the same
    r = subprocess.run([sys.executable, str(SCRIPT), str(src), "--out", out, "--conditions", "reverb"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown 'reverb'" in r.stderr
