"""The batch: outputs per call, bad input recorded while the rest finishes, incremental
re-runs, resume after kill -9, parallel workers, exit codes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import make_broken, tone, write_audio
from conftest import ROOT, label, manifest_rows, normalise, run_cli
from processes import alive, children

from pipeline.errors import EXIT_CALLS_FAILED, EXIT_OK, EXIT_USAGE
from pipeline.evaluation.measures import wer

pytestmark = pytest.mark.slow  # runs the CLI and worker processes over recordings

BROKEN = {
    "empty": "EmptyFileError",
    "text": "NotAudioError",
    "truncated_wav": "TruncatedAudioError",
    "three_channels": "TooManyChannelsError",
    "zero_length_wav": "ZeroLengthAudioError",
}


def first_sample() -> tuple[str, Path]:
    row = manifest_rows()[0]
    return row["call_id"], ROOT / "recordings_sample" / row["path"]


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real call, a silent call, and one broken file of each kind, oddly named."""
    d = tmp_path_factory.mktemp("mixed")
    cid, src = first_sample()
    shutil.copy(src, d / f"real call #1{src.suffix}")
    write_audio(d / "silence é.wav", np.zeros((1, 8000 * 5), dtype=np.float32), 8000, "wav_ulaw")
    for kind in BROKEN:
        make_broken(d / f"bad_{kind}.wav", kind)
    return d


def load_json(p: Path) -> dict:
    return json.loads(p.read_text())


def test_batch_records_bad_files_and_finishes_the_rest(mixed_folder: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = run_cli("run", str(mixed_folder), "--out", str(out), "--quiet")
    assert proc.returncode == EXIT_CALLS_FAILED, proc.stderr
    run = load_json(out / "run.json")
    assert run["state"] == "finished"
    assert run["counts"]["ok"] == 2 and run["counts"]["failed"] == len(BROKEN)
    by_id = {c["call_id"]: c for c in run["calls"]}
    for kind, etype in BROKEN.items():
        call = by_id[f"bad_{kind}"]
        assert call["status"] == "failed"
        assert call["error"]["type"] == etype
        assert f"bad_{kind}.wav" in call["error"]["message"]
        record = load_json(out / "calls" / f"bad_{kind}" / "call.json")
        assert record["status"] == "failed" and record["error"]["type"] == etype
    real = load_json(out / "calls" / "real_call_1" / "call.json")
    assert real["status"] == "ok" and real["utterances"]
    silent = load_json(out / "calls" / "silence_e" / "call.json")
    assert silent["status"] == "ok" and silent["utterances"] == []
    with open(out / "summary.csv") as f:
        rows = {r["call_id"]: r for r in csv.DictReader(f)}
    assert rows["bad_empty"]["error_type"] == "EmptyFileError"
    assert rows["real_call_1"]["status"] == "ok" and int(rows["real_call_1"]["words"]) > 5


def test_call_json_contract(sample_run):
    out, proc = sample_run
    assert proc.returncode == EXIT_OK, proc.stderr
    cid = manifest_rows()[0]["call_id"]
    folder = out / "calls" / cid
    call = load_json(folder / "call.json")
    assert call["call_id"] == cid and call["status"] == "ok"
    src = call["source"]
    assert set(src) >= {"path", "sha256", "duration_s", "sample_rate", "channels", "format"}
    assert len(src["sha256"]) == 64
    assert call["metadata"]["agent_id"] and call["metadata"]["queue"]
    prov = call["provenance"]
    assert prov["callqa_version"] and len(prov["config_hash"]) == 16
    assert prov["models"]["asr"]["backend"] == "faster-whisper" and prov["models"]["asr"]["model_path"]
    last = -1.0
    for i, u in enumerate(call["utterances"], 1):
        assert u["id"] == f"u{i:04d}"
        assert u["channel"] in range(src["channels"])
        assert 0 <= u["start"] <= u["end"] <= src["duration_s"] + 0.5
        assert u["start"] >= last - 1e-6
        last = u["start"]
        assert u["words"], u
        for w in u["words"]:
            assert set(w) == {"word", "start", "end", "probability"}
            assert u["start"] - 0.01 <= w["start"] <= w["end"] <= u["end"] + 0.01
    for name in ("transcript.txt", "transcript.srt", "transcript.vtt"):
        assert (folder / name).stat().st_size > 0
    assert (folder / "transcript.vtt").read_text().startswith("WEBVTT")
    run = load_json(out / "run.json")
    assert run["counts"]["ok"] == len(manifest_rows()) and run["ended_at"]


def test_sample_calls_transcribe_accurately(sample_run):
    """Word error rate of each sample call (and each channel of stereo calls) against its label."""
    out, _ = sample_run
    refs, hyps = [], []
    for row in manifest_rows():
        cid = row["call_id"]
        call = load_json(out / "calls" / cid / "call.json")
        gold = label(cid)
        for ch in range(call["source"]["channels"]):
            ref = " ".join(u["text"] for u in gold["utterances"] if u.get("channel", 0) == ch)
            hyp = " ".join(u["text"] for u in call["utterances"] if u["channel"] == ch)
            if ref:
                refs.append(ref)
                hyps.append(hyp)
                assert wer([ref], [hyp]) < 0.35, (cid, ch, hyp)
    assert wer(refs, hyps) < 0.2


def test_stereo_channels_are_transcribed_separately(sample_run):
    out, _ = sample_run
    stereo = [r for r in manifest_rows() if label(r["call_id"])["channels"] == 2]
    assert stereo
    for row in stereo:
        call = load_json(out / "calls" / row["call_id"] / "call.json")
        gold = label(row["call_id"])
        for ch in (0, 1):
            ref_words = set(normalise(" ".join(u["text"] for u in gold["utterances"] if u["channel"] == ch)).split())
            hyp_words = normalise(" ".join(u["text"] for u in call["utterances"] if u["channel"] == ch)).split()
            assert hyp_words
            # the words heard on a channel are that channel's party's words
            assert sum(w in ref_words for w in hyp_words) / len(hyp_words) > 0.8


def test_rerun_skips_done_calls_and_retries_failed(mixed_folder: Path, tmp_path: Path):
    out = tmp_path / "out"
    run_cli("run", str(mixed_folder), "--out", str(out), "--quiet")
    before = (out / "calls" / "real_call_1" / "call.json").stat().st_mtime_ns
    proc = run_cli("run", str(mixed_folder), "--out", str(out), "--quiet")
    assert proc.returncode == EXIT_CALLS_FAILED
    run = load_json(out / "run.json")
    assert run["counts"]["skipped"] == 2 and run["counts"]["failed"] == len(BROKEN)
    assert (out / "calls" / "real_call_1" / "call.json").stat().st_mtime_ns == before
    # a result-changing setting redoes the calls ...
    proc = run_cli("run", str(mixed_folder), "--out", str(out), "--quiet", "--set", "asr.beam_size=2")
    assert load_json(out / "run.json")["counts"]["ok"] == 2
    # ... a setting that changes no result does not
    run_cli("run", str(mixed_folder), "--out", str(out), "--quiet", "--set", "asr.beam_size=2", "--workers", "2")
    assert load_json(out / "run.json")["counts"]["skipped"] == 2
    # --force redoes everything
    run_cli("run", str(mixed_folder), "--out", str(out), "--quiet", "--set", "asr.beam_size=2", "--force")
    assert load_json(out / "run.json")["counts"]["ok"] == 2
    # a changed file is redone
    write_audio(mixed_folder / "silence é.wav", tone(3, 8000, 1), 8000, "wav_ulaw")
    run_cli("run", str(mixed_folder), "--out", str(out), "--quiet", "--set", "asr.beam_size=2")
    run = load_json(out / "run.json")
    assert {c["call_id"]: c["status"] for c in run["calls"]}["silence_e"] == "ok"
    assert run["counts"]["skipped"] == 1


def test_resume_after_kill_9(tmp_path: Path):
    """Kill the batch hard after its first result; its worker processes end with it, and a
    re-run finishes without redoing it."""
    cid, src = first_sample()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        shutil.copy(src, folder / f"call{i}{src.suffix}")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(folder), "--out", str(out), "--quiet", "--workers", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.time() + 300
    while not list(out.glob("calls/*/call.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(out.glob("calls/*/call.json"))
    assert len(workers) >= 2, "the batch had no worker processes to orphan"
    deadline = time.time() + 30
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if alive(pid)], "worker processes outlived the killed batch"
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("calls/*/call.json")}
    assert len(done_before) < 4, "the run finished before it could be killed"
    # a half-written result left by some other crash is not taken for a finished one
    victim_id = next(f"call{i}" for i in range(4) if f"call{i}" not in done_before)
    victim = out / "calls" / victim_id / "call.json"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text('{"call_id": "%s", "status": "ok", "sou' % victim_id)
    proc2 = run_cli("run", str(folder), "--out", str(out), "--quiet")
    assert proc2.returncode == EXIT_OK, proc2.stderr
    run = load_json(out / "run.json")
    assert run["counts"]["ok"] + run["counts"]["skipped"] == 4
    assert run["counts"]["skipped"] == len(done_before)
    for cid_done, mtime in done_before.items():
        assert (out / "calls" / cid_done / "call.json").stat().st_mtime_ns == mtime
    for p in out.glob("calls/*/call.json"):
        assert load_json(p)["status"] == "ok"
    assert not list(out.glob("calls/*/.tmp-*"))
    assert not list(out.glob(".work/**/*.f32")), "decoded audio left behind"


def test_parallel_workers_give_the_same_results(tmp_path: Path):
    cid, src = first_sample()
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(src, folder / f"a{src.suffix}")
    shutil.copy(src, folder / f"b{src.suffix}")
    make_broken(folder / "c.wav", "text")
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert run_cli("run", str(folder), "--out", str(out1), "--quiet", "--set", "asr.threads=1").returncode == EXIT_CALLS_FAILED
    assert run_cli("run", str(folder), "--out", str(out2), "--quiet", "--workers", "2", "--set", "asr.threads=1").returncode == EXIT_CALLS_FAILED
    for name in ("a", "b"):
        t1 = [u["text"] for u in load_json(out1 / "calls" / name / "call.json")["utterances"]]
        t2 = [u["text"] for u in load_json(out2 / "calls" / name / "call.json")["utterances"]]
        assert t1 == t2 and t1
    assert load_json(out2 / "calls" / "c" / "call.json")["error"]["type"] == "NotAudioError"


def test_usage_errors_exit_2_with_a_message(tmp_path: Path):
    proc = run_cli("run", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert proc.returncode == EXIT_USAGE and "no such file" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("asr:\n  beam: 2\n")
    proc = run_cli("run", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(bad))
    assert proc.returncode == EXIT_USAGE and "bad.yaml" in proc.stderr and "asr.beam" in proc.stderr
    proc = run_cli("run", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "asr.model=/nowhere/model")
    assert proc.returncode == EXIT_USAGE and "/nowhere/model" in proc.stderr


def test_progress_bar_shows_eta_and_realtime_factor(tmp_path: Path):
    cid, src = first_sample()
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(src, folder / f"a{src.suffix}")
    proc = run_cli("run", str(folder), "--out", str(tmp_path / "o"))
    assert proc.returncode == EXIT_OK
    assert "1/1" in proc.stderr and "real time" in proc.stderr and "<" in proc.stderr


def test_the_index_skips_done_calls_without_reading_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A second run hashes no unchanged recording and opens no call.json; a touched file is
    hashed again (and still skipped when its content is the same); run.rehash hashes all."""
    import os

    from pipeline.run import runner
    from pipeline.config import load_config
    from pipeline.run.index import INDEX_FILE

    data = tmp_path / "in"
    data.mkdir()
    write_audio(data / "a.wav", np.zeros((1, 8000 * 2), dtype=np.float32), 8000, "wav_ulaw")
    write_audio(data / "b.wav", tone(2, 8000, 1), 8000, "wav_ulaw")
    make_broken(data / "bad.wav", "empty")
    out = tmp_path / "out"
    hashed: list[str] = []
    real_sha = runner.sha256_file
    monkeypatch.setattr(runner, "sha256_file", lambda p: hashed.append(Path(p).name) or real_sha(p))

    def run(*overrides: str) -> dict:
        hashed.clear()
        cfg = load_config(None, ["scorecard.enabled=false", *overrides])
        runner.BatchRunner(cfg, data, out, progress=False).run()
        return load_json(out / "run.json")["counts"]

    assert run()["ok"] == 2 and sorted(hashed) == ["a.wav", "b.wav", "bad.wav"]
    assert (out / INDEX_FILE).is_file()
    opened: list[str] = []
    real_prev = runner.previous_result
    monkeypatch.setattr(runner, "previous_result", lambda o, cid: opened.append(cid) or real_prev(o, cid))
    counts = run()
    assert counts["skipped"] == 2 and counts["failed"] == 1 and hashed == [] and set(opened) == {"bad"}  # only the failed call, retried
    rows = {r["call_id"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert rows["a"]["status"] == "skipped" and rows["a"]["duration_s"] == "2.0"
    st = os.stat(data / "a.wav")
    os.utime(data / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same content
    assert run()["skipped"] == 2 and hashed == ["a.wav"]
    assert run("run.rehash=true")["skipped"] == 2 and sorted(hashed) == ["a.wav", "b.wav", "bad.wav"]
    (out / INDEX_FILE).write_bytes(b"garbage")  # a broken index is replaced; call.json still decides
    assert run()["skipped"] == 2
    write_audio(data / "b.wav", tone(3, 8000, 1), 8000, "wav_ulaw")  # a changed recording is redone
    assert run()["ok"] == 1


def _batch(data: Path, out: Path, *overrides: str) -> tuple[int, dict]:
    from pipeline.config import load_config
    from pipeline.run.runner import BatchRunner

    code = BatchRunner(load_config(None, ["scorecard.enabled=false", *overrides]), data, out, progress=False).run()
    return code, load_json(out / "run.json")


def test_rows_that_fold_to_one_id_never_touch_a_finished_result(tmp_path: Path):
    """``../evil`` folds to ``evil``: that row is refused (ManifestRowError naming its line) and
    the finished ``evil`` is kept, on every re-run, whatever the row order."""
    data = tmp_path / "in"
    write_audio(data / "a.wav", tone(2, 8000, 1), 8000, "wav_ulaw")
    write_audio(data / "b.wav", tone(2, 8000, 1, freq=300), 8000, "wav_ulaw")
    out = tmp_path / "out"
    (data / "m.csv").write_text("call_id,path\nevil,a.wav\n")
    assert _batch(data / "m.csv", out)[0] == EXIT_OK
    result = out / "calls" / "evil" / "call.json"
    before = result.read_bytes()
    for rows in ("evil,a.wav\n../evil,b.wav\n", "../evil,b.wav\nevil,a.wav\n", "evil,a.wav\n../evil,b.wav\n"):
        (data / "m.csv").write_text("call_id,path\n" + rows)
        code, run = _batch(data / "m.csv", out)
        assert code == EXIT_CALLS_FAILED
        calls = {c["call_id"]: c for c in run["calls"]}
        assert calls["evil"]["status"] == "skipped" and calls["evil"]["path"].endswith("a.wav")
        (refused,) = [c for c in run["calls"] if c["call_id"] != "evil"]
        assert refused["error"]["type"] == "ManifestRowError" and "m.csv line" in refused["error"]["message"]
        assert result.read_bytes() == before
        assert load_json(result)["status"] == "ok"


def test_a_fifo_in_the_input_never_blocks_the_batch(tmp_path: Path):
    """A named pipe with an audio name is refused by its type (never opened); the rest runs."""
    data = tmp_path / "in"
    data.mkdir()
    os.mkfifo(data / "pipe.wav")
    make_broken(data / "empty.wav", "empty")
    out = tmp_path / "out"
    proc = run_cli("run", str(data), "--out", str(out), "--quiet", timeout=120)
    assert proc.returncode == EXIT_CALLS_FAILED, proc.stderr
    errors = {c["call_id"]: c["error"] for c in load_json(out / "run.json")["calls"]}
    assert errors["pipe"]["type"] == "NotRegularFileError" and "pipe.wav" in errors["pipe"]["message"]
    assert errors["empty"]["type"] == "EmptyFileError"


def _fill_calls_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every atomic write under OUT/calls fails with ENOSPC, as on a full disk."""
    import errno

    from models import files

    real_mkstemp = files.tempfile.mkstemp

    def full_under_calls(*args, **kwargs):
        if "calls" in Path(kwargs["dir"]).parts:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", full_under_calls)


def test_a_full_disk_stops_the_run_cleanly_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Writing a call's result fails with ENOSPC: the run stops with EXIT_DISK_FULL and a typed
    reason in run.json; the finished call, its result and the index stay; after space is freed
    the next run resumes."""
    import sqlite3

    from pipeline.errors import EXIT_DISK_FULL
    from pipeline.run.index import INDEX_FILE

    data = tmp_path / "in"
    write_audio(data / "a.wav", tone(2, 8000, 1), 8000, "wav_ulaw")
    out = tmp_path / "out"
    assert _batch(data, out)[0] == EXIT_OK
    done = (out / "calls" / "a" / "call.json").read_bytes()
    write_audio(data / "b.wav", tone(2, 8000, 1, freq=300), 8000, "wav_ulaw")
    _fill_calls_folder(monkeypatch)
    code, run = _batch(data, out)
    assert code == EXIT_DISK_FULL
    assert run["state"] == "stopped: disk full" and "disk full" in run["stop_reason"]
    assert (out / "calls" / "a" / "call.json").read_bytes() == done
    with sqlite3.connect(out / INDEX_FILE) as db:
        assert db.execute("SELECT status FROM calls WHERE call_id = 'a'").fetchone() == ("ok",)
    monkeypatch.undo()
    code, run = _batch(data, out)
    assert code == EXIT_OK and {c["call_id"]: c["status"] for c in run["calls"]} == {"a": "skipped", "b": "ok"}


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MB tmpfs (needs root on Linux; elsewhere the in-process test above covers this)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("left_kb", [0, 8, 64])
def test_a_really_full_disk_stops_the_run_and_keeps_the_index(small_disk: Path, tmp_path: Path, left_kb: int):
    import sqlite3

    from pipeline.errors import EXIT_DISK_FULL
    from pipeline.run.index import INDEX_FILE

    data = tmp_path / "in"
    write_audio(data / "a.wav", tone(2, 8000, 1), 8000, "wav_ulaw")
    out = small_disk / "out"
    args = ("run", str(data), "--out", str(out), "--quiet", "--set", "scorecard.enabled=false")
    assert run_cli(*args).returncode == EXIT_OK
    done = (out / "calls" / "a" / "call.json").read_bytes()
    write_audio(data / "b.wav", tone(40, 8000, 1), 8000, "wav_ulaw")  # 2.5 MB decoded
    st = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - left_kb * 1024))
    proc = run_cli(*args)
    assert proc.returncode == EXIT_DISK_FULL and "Traceback" not in proc.stderr and "disk full" in proc.stderr
    assert (out / "calls" / "a" / "call.json").read_bytes() == done
    (small_disk / "filler").unlink()
    with sqlite3.connect(out / INDEX_FILE) as db:
        assert ("a", "ok") in db.execute("SELECT call_id, status FROM calls").fetchall()
    assert run_cli(*args).returncode == EXIT_OK
    assert {c["call_id"]: c["status"] for c in load_json(out / "run.json")["calls"]} == {"a": "skipped", "b": "ok"}


def test_a_call_redone_on_a_full_disk_keeps_its_previous_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A finished call processed again (its config changed) when the disk is full: nothing of
    its earlier result is removed (transcripts, call.json), and the run stops as disk full."""

    from pipeline.errors import EXIT_DISK_FULL

    data = tmp_path / "in"
    write_audio(data / "a.wav", tone(2, 8000, 1), 8000, "wav_ulaw")
    out = tmp_path / "out"
    assert _batch(data, out)[0] == EXIT_OK
    folder = out / "calls" / "a"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert "transcript.txt" in before
    _fill_calls_folder(monkeypatch)
    code, run = _batch(data, out, "conversation.dead_air_s=11")
    assert code == EXIT_DISK_FULL and run["calls"][0]["error"]["type"] == "DiskFullError"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
