"""Executors: the automatic split of cores, the registry ``run.executor`` chooses from, a task run
over items with crash isolation, and the Ray executor against the local one."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MANIFEST, ROOT, manifest_rows, run_cli
from processes import descendants

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.run.executors import (
    EXECUTORS, WORKER_MEMORY_MB, LocalExecutor, RayExecutor, WorkerSite, make_executor, resolve_split,
)
from pipeline.run.runner import CallTask, with_split

RAY_CALLS = ("c003", "c006")
"""A stereo call and a mono (diarized) call of the sample."""

VOLATILE = ("processing", "provenance")
"""Parts of call.json that say how and when a call ran, not what it contains."""


@pytest.mark.parametrize(("workers", "threads", "cores", "memory_mb", "expected"), [
    (0, 0, 2, 24000, (2, 1)),   # automatic: one single-threaded worker per core
    (0, 0, 8, 4000, (2, 1)),    # ... as many as memory holds
    (0, 0, 8, 500, (1, 1)),     # ... but always one
    (0, 2, 8, 24000, (4, 2)),   # threads given: workers fill the cores
    (1, 0, 2, 24000, (1, 2)),   # workers given: threads share the cores
    (3, 0, 2, 24000, (3, 1)),
    (2, 3, 2, 24000, (2, 3)),   # both given: as given
])
def test_split_of_cores(workers: int, threads: int, cores: int, memory_mb: float, expected: tuple[int, int]) -> None:
    assert resolve_split(workers, threads, cores, memory_mb) == expected
    assert WORKER_MEMORY_MB * 2 <= 4000  # the memory cases above assume this size


def test_runner_resolves_the_split_but_not_for_ray() -> None:
    local = with_split(load_config(None, []))
    assert local.run.workers >= 1 and local.asr.threads >= 1
    ray = with_split(load_config(None, ["run.executor=ray"]))
    assert (ray.run.workers, ray.asr.threads) == (0, 0)  # decided from the cluster


def test_unknown_executor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="run.executor: 'spark' is not allowed; allowed: local or ray"):
        load_config(None, ["run.executor=spark"])
    config = load_config(None, [])
    config.run.executor = "spark"
    with pytest.raises(ConfigError, match="run.executor: 'spark' is not one of local, ray"):
        make_executor(config)


def test_the_registry_names_and_makes_the_executors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EXECUTORS.key == "run.executor" and EXECUTORS.names() == ("local", "ray")
    local = make_executor(load_config(None, ["run.workers=3"]))
    assert type(local) is LocalExecutor and local.workers == 3
    ray = make_executor(load_config(None, ["run.executor=ray", "run.workers=4", "asr.threads=2",
                                           "run.ray_address=auto"]))
    assert type(ray) is RayExecutor and (ray.workers, ray.threads, ray.address) == (4, 2, "auto")

    # a registered choice (as "module:attribute", imported when chosen) passes the config's
    # check and is found by name
    monkeypatch.setattr(EXECUTORS, "_choices", dict(EXECUTORS._choices))  # registered for this test only
    EXECUTORS.register("inline", "pipeline.run.executors:LocalExecutor")
    chosen = make_executor(load_config(None, ["run.executor=inline", "run.workers=1"]))
    assert type(chosen) is LocalExecutor and chosen.workers == 1
    assert EXECUTORS.get("inline") is LocalExecutor


@dataclass(frozen=True)
class Square:
    """A task for the executor's own tests: squares numbers; the worker handling ``crash`` dies
    (a crash in native code ends a worker so). Spawned workers import it from this module."""

    crash: int | None = None

    def start(self, site: WorkerSite):
        pid = os.getpid()

        def handle(n: int) -> tuple[int, object, int]:
            if n == self.crash:
                os._exit(1)
            return n, n * n, pid

        return handle

    def failed(self, item: int, error_type: str, message: str) -> tuple[int, object, int]:
        return item, f"{error_type}: {message}", os.getpid()


@pytest.mark.slow
def test_a_task_runs_over_items_and_an_item_that_kills_its_worker_fails_alone() -> None:
    items = list(range(6))
    alone = list(LocalExecutor(1).run(Square(), items))  # in this process
    assert alone == [(n, n * n, os.getpid()) for n in items]
    assert list(LocalExecutor(4).run(Square(), [5])) == [(5, 25, os.getpid())]  # one item: here too

    results = list(LocalExecutor(2).run(Square(crash=3), items))
    by_item = {n: result for n, result, _pid in results}
    assert sorted(n for n, _r, _p in results) == items  # one result per item
    assert by_item == {**{n: n * n for n in items}, 3: "WorkerCrashed: the worker process died while processing this call"}
    assert all(pid != os.getpid() for n, _r, pid in results if n != 3)  # in worker processes


@pytest.mark.slow
def test_address_needs_the_ray_executor(tmp_path: Path) -> None:
    proc = run_cli("run", str(MANIFEST), "--out", str(tmp_path / "out"), "--address", "auto")
    assert proc.returncode == 2
    assert "--address is for --executor ray" in proc.stderr


def _content(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {r["call_id"]: {k: v for k, v in r.items() if k != "processing_s"} for r in csv.DictReader(f)}


@pytest.mark.slow
def test_ray_run_gives_the_results_of_the_local_executor(sample_run, tmp_path: Path) -> None:
    """A local Ray instance, two actors: every file of each call as the local run wrote it,
    with the same content (timings and provenance aside)."""
    local_out, local_proc = sample_run
    assert local_proc.returncode == 0, local_proc.stderr
    rows = [r for r in manifest_rows() if r["call_id"] in RAY_CALLS]
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows({**r, "path": str(MANIFEST.parent / r["path"])} for r in rows)
    first = json.loads((local_out / "calls" / RAY_CALLS[0] / "call.json").read_text())
    threads = first["provenance"]["models"]["asr"]["threads"]  # the same threads give the same numbers

    out = tmp_path / "ray-out"
    out.mkdir()  # the local run's customer key: the same customers get the same hashes
    shutil.copy(local_out / ".callqa-customer.key", out / ".callqa-customer.key")
    proc = run_cli("run", str(manifest), "--out", str(out), "--executor", "ray", "--workers", "2",
                   "--set", f"asr.threads={threads}", "--set", "pii.redact=false", "--quiet", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run = json.loads((out / "run.json").read_text())
    assert run["config"]["run"]["executor"] == "ray"
    assert run["counts"]["ok"] == len(RAY_CALLS)
    assert run["config_hash"] == json.loads((local_out / "run.json").read_text())["config_hash"]
    local_summary, ray_summary = _summary(local_out), _summary(out)
    for cid in RAY_CALLS:
        local_files = sorted(p.name for p in (local_out / "calls" / cid).iterdir())
        assert sorted(p.name for p in (out / "calls" / cid).iterdir()) == local_files
        ray_record = json.loads((out / "calls" / cid / "call.json").read_text())
        local_record = json.loads((local_out / "calls" / cid / "call.json").read_text())
        assert ray_record["status"] == "ok"
        assert ray_record["utterances"], cid
        assert _content(ray_record) == _content(local_record), cid
        assert ray_record["provenance"]["config_hash"] == local_record["provenance"]["config_hash"]
        for name in local_files:
            if name.endswith((".txt", ".srt", ".vtt")):
                assert (out / "calls" / cid / name).read_bytes() == (local_out / "calls" / cid / name).read_bytes()
        assert ray_summary[cid] == local_summary[cid]
    assert not (out / ".work").exists() or not any((out / ".work").iterdir())  # decoded on the node, not in OUT


def test_a_node_that_cannot_see_the_files_fails_the_call_naming_them(tmp_path: Path) -> None:
    from pipeline.run.executors import TaskActor
    from pipeline.ingest.discover import CallInput

    config = load_config(None, [])
    call = CallInput("c1", tmp_path / "not-mounted" / "c1.wav")
    worker = TaskActor(CallTask(config, tmp_path / "missing-out"), 1)  # the actor's class, without Ray
    outcome = worker.process((call, "0" * 64))
    assert (outcome.status, outcome.error_type) == ("failed", "ConfigError")
    assert "missing-out" in outcome.error and "same path" in outcome.error
    (tmp_path / "missing-out").mkdir()
    outcome = worker.process((call, "0" * 64))
    assert "not-mounted/c1.wav" in outcome.error and "the recording is not visible" in outcome.error
    scratch = worker.scratch
    assert scratch.is_dir()
    del worker
    assert not scratch.exists()  # the node-local scratch folder goes with the actor


def _kill_a_worker_mid_run(tmp_path: Path, extra: list[str], worker_match: str) -> tuple[dict, str]:
    """Run three sample calls, SIGKILL one worker once a call is being decoded, and return the
    finished run.json and what the run printed."""
    rows = manifest_rows()[:3]
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows({**r, "path": str(MANIFEST.parent / r["path"])} for r in rows)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(out),
                             "--workers", "2", "--set", "asr.threads=1", *extra],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)
    scratch = set(Path(tempfile.gettempdir()).glob("callqa-work-*"))  # other runs' (a killed actor's)
    victim = None
    deadline = time.time() + 300
    while victim is None and time.time() < deadline and proc.poll() is None:
        workers = descendants(proc.pid, worker_match)
        busy = list(out.glob(".work/*")) + [p for d in Path(tempfile.gettempdir()).glob("callqa-work-*")
                                            if d not in scratch for p in d.iterdir()]
        if workers and busy:
            victim = workers[0]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=600)
    assert victim is not None, "no worker was seen processing a call"
    assert proc.returncode == 0, err[-3000:]
    return json.loads((out / "run.json").read_text()), err


@pytest.mark.slow
def test_a_killed_local_worker_loses_no_call(tmp_path: Path) -> None:
    run, err = _kill_a_worker_mid_run(tmp_path, [], "multiprocessing.spawn")
    assert "a worker process died" in err  # and its calls were done again
    assert run["counts"]["ok"] == 3 and run["counts"]["failed"] == 0


@pytest.mark.slow
def test_a_killed_ray_actor_loses_no_call(tmp_path: Path) -> None:
    run, err = _kill_a_worker_mid_run(tmp_path, ["--executor", "ray"], "ray::TaskActor")
    assert "a Ray actor died" in err
    assert run["config"]["run"]["executor"] == "ray"
    assert run["counts"]["ok"] == 3 and run["counts"]["failed"] == 0


@dataclass(frozen=True)
class DiesStarting:
    """A task whose first worker to start dies while loading (before it answers anything); the
    others square numbers, and a negative number is an error of the handler itself."""

    marker: str

    def start(self, site: WorkerSite):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            os._exit(1)

        def handle(n: int) -> int:
            if n < 0:
                raise ValueError(f"no square for {n}")
            time.sleep(0.05)
            return n * n

        return handle

    def failed(self, item: int, error_type: str, message: str) -> str:
        return f"{error_type}: {message}"


@pytest.mark.slow
def test_a_worker_dying_while_it_starts_loses_no_item(tmp_path: Path) -> None:
    """The item handed to a worker that dies before answering is retried, the other workers
    carry on, and every item gets its own result."""
    results = list(LocalExecutor(2).run(DiesStarting(str(tmp_path / "died")), list(range(8))))
    assert (tmp_path / "died").exists()  # a worker did die
    assert sorted(results) == sorted(n * n for n in range(8))
    assert descendants(os.getpid(), "multiprocessing.spawn") == []  # the workers are gone


@pytest.mark.slow
def test_a_handler_error_reaches_the_caller_and_no_worker_is_left(tmp_path: Path) -> None:
    (tmp_path / "died").touch()  # no worker dies here
    with pytest.raises(ValueError, match="no square for -1"):
        list(LocalExecutor(2).run(DiesStarting(str(tmp_path / "died")), [1, 2, -1, 3]))
    assert descendants(os.getpid(), "multiprocessing.spawn") == []
