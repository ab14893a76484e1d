"""Where calls are processed: in this process, in local worker processes, or on a Ray cluster.

Every executor takes the calls to do and yields one :class:`~pipeline.run.call.Outcome` per call as
each finishes; each call's folder has been written (by the worker that processed it) by then.
The batch runner (pipeline/run/runner.py) keeps ``run.json``, ``summary.csv`` and the index from
those outcomes, whatever the executor.

Crash isolation is the same everywhere: a worker that dies (a crash in native code, the
out-of-memory killer, a lost node) takes the calls it was running with it; each of them is
retried alone on a fresh worker, and only a call that kills its worker again is failed
(``WorkerCrashed``).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from models.asr import default_threads
from pipeline.run.call import CallProcessor, Outcome
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.ingest.discover import CallInput

log = logging.getLogger("callqa")

Item = tuple[CallInput, str]
"""A call to process and its recording's sha256."""

EXECUTORS = ("local", "ray")

WORKER_MEMORY_MB = 1400
"""Peak resident memory of one worker with the default models (tiny.en, the speaker and text
models), measured by scripts/benchmark_pipeline.py; bounds the automatic number of workers."""


def _available_memory_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def resolve_split(workers: int, threads: int, cores: int | None = None,
                  memory_mb: float | None = None) -> tuple[int, int]:
    """(worker processes, model threads per worker) for ``run.workers`` and ``asr.threads``
    (0 = automatic) on a machine with ``cores`` cores and ``memory_mb`` available.

    Automatic: one thread per worker and as many workers as cores (as many as memory holds).
    On a 2-core machine with tiny.en that is 1.2x the throughput of one worker using both
    cores (1.4x with int8; scripts/benchmark_pipeline.py, README "Performance"): the
    recogniser uses extra threads poorly on small models, and separate processes overlap each
    other's serial parts.
    """
    cores = max(1, cores or os.cpu_count() or 1)
    if workers and threads:
        return workers, threads
    if workers:
        return workers, default_threads(workers, cores)
    threads = threads or 1
    workers = max(1, cores // threads)
    memory_mb = _available_memory_mb() if memory_mb is None else memory_mb
    if memory_mb:
        workers = max(1, min(workers, int(memory_mb // WORKER_MEMORY_MB)))
    return workers, threads


# -- local: this process, or a pool of worker processes ---------------------------------------

# One processor per worker process: the models load once and serve every call sent there.
_worker: CallProcessor | None = None


PARENT_CHECK_S = 1.0
"""How often a worker process checks that the batch process that started it is alive."""


def _exit_with_parent(parent: int) -> None:
    """End this worker when the batch process dies (``kill -9``, the out-of-memory killer):
    orphaned, it would wait forever on the pool's queue, holding its models' memory."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(70)

    threading.Thread(target=watch, name="callqa-parent-watch", daemon=True).start()


def _init_worker(config: Config, out_dir: Path, parent: int) -> None:
    global _worker
    _exit_with_parent(parent)
    _worker = CallProcessor(config, out_dir)


def _work(call: CallInput, sha256: str) -> Outcome:
    if _worker is None:
        raise RuntimeError("worker not initialised")
    return _worker.process(call, sha256)


def crashed(call: CallInput, where: str = "the worker process", detail: str = "") -> Outcome:
    return Outcome(call.call_id, str(call.path), "failed", error_type="WorkerCrashed",
                   error=f"{call.path}: {where} died while processing this call" + (f" ({detail})" if detail else ""))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


class LocalExecutor:
    """``workers`` 1 (or a single call to do): every call in this process (``local``, the
    runner's processor). More: that many spawned worker processes, each holding its own
    models."""

    def __init__(self, config: Config, out_dir: Path, local: CallProcessor):
        self.config = config
        self.out_dir = out_dir
        self.local = local

    def run(self, todo: list[Item]) -> Iterator[Outcome]:
        if not todo:
            return
        if min(self.config.run.workers, len(todo)) <= 1:
            for call, sha in todo:
                yield self.local.process(call, sha)
            return
        queue = list(reversed(todo))
        suspects: list[Item] = []
        while queue or suspects:
            if suspects:
                item = suspects.pop()
                for call, _sha in (yield from self._pool_pass([item], 1)):
                    yield crashed(call)
            else:
                suspects.extend((yield from self._pool_pass(queue, self.config.run.workers)))

    def _pool_pass(self, items: list[Item], workers: int) -> Generator[Outcome, None, list[Item]]:
        """Run ``items`` (popped from the end) in one pool until done or the pool breaks.

        Returns the calls that were in flight when the pool broke.
        """
        ctx = multiprocessing.get_context("spawn")
        workers = max(1, min(workers, len(items)))
        running: dict[Future[Outcome], Item] = {}
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(self.config, self.out_dir, os.getpid())) as pool:
            while items or running:
                while items and len(running) < workers * 2:
                    try:
                        running[pool.submit(_work, *items[-1])] = items[-1]
                    except BrokenProcessPool:  # a worker died between two submissions
                        return self._broken(running)
                    items.pop()
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        return self._broken(running)
                    running.pop(fut)
                    yield outcome
        return []

    @staticmethod
    def _broken(running: dict[Future[Outcome], Item]) -> list[Item]:
        """The calls in flight when the pool broke (the calls not yet submitted stay queued)."""
        log.warning("a worker process died; its %d calls in flight are retried one at a time", len(running))
        return list(running.values())


# -- Ray: actors on a cluster ------------------------------------------------------------------


class CallWorker:
    """A Ray actor: one CallProcessor (its models loaded once) serving calls one at a time.

    The input recordings and the output folder must be visible to every node at the same
    path (shared storage); each call is decoded into a scratch folder on the node's own disk.
    """

    def __init__(self, config: Config, out_dir: str):
        self.out = Path(out_dir)
        self.scratch = Path(tempfile.mkdtemp(prefix="callqa-work-"))
        self.processor = CallProcessor(config, self.out, work_dir=self.scratch)

    def process(self, call: CallInput, sha256: str) -> Outcome:
        node = socket.gethostname()
        for what, path in (("the output folder", self.out), ("the recording", Path(call.path))):
            if not path.exists():  # nothing can be written for this call on this node
                return Outcome(call.call_id, str(call.path), "failed", error_type="ConfigError",
                               error=f"{path}: {what} is not visible on node {node}; with --executor ray the "
                                     "recordings and OUT must be on storage every node mounts at the same path")
        return self.processor.process(call, sha256)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--executor ray needs Ray: pip install 'callqa[ray]' (or ray) on every node") from e
    return ray


class RayExecutor:
    """Calls spread over Ray actors (``run.workers`` of them, 0 = as many as the cluster's
    CPUs allow at ``asr.threads`` each), two calls queued per actor so none waits between calls.

    ``address``: a running cluster (``auto``, or ``ray://host:10001`` / ``host:6379``); None
    starts a Ray instance on this machine for the run and stops it afterwards.
    """

    def __init__(self, config: Config, out_dir: Path, address: str | None = None):
        self.config = config
        self.out_dir = out_dir
        self.address = address
        self._started = False

    def _connect(self) -> Any:
        ray = _ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage report
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING, "configure_logging": True}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=256 << 20, **kwargs)
            self._started = True
        return ray

    def _actor_count(self, ray: Any, threads: int, calls: int) -> int:
        if self.config.run.workers > 0:
            wanted = self.config.run.workers
        else:
            wanted = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        return max(1, min(wanted, calls))

    def run(self, todo: list[Item]) -> Iterator[Outcome]:
        if not todo:
            return
        ray = self._connect()
        try:
            yield from self._run(ray, todo)
        finally:
            if self._started:
                ray.shutdown()

    def _run(self, ray: Any, todo: list[Item]) -> Iterator[Outcome]:
        threads = self.config.asr.threads or 1
        # the actors use exactly these threads, whatever the cores of the node they land on
        config = dataclasses.replace(self.config, asr=dataclasses.replace(self.config.asr, threads=threads))
        actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_concurrency=1)(CallWorker)

        def new_actor() -> Any:
            return actor_class.remote(config, str(self.out_dir))

        n = self._actor_count(ray, threads, len(todo))
        log.info("ray: %d actors with %d threads each", n, threads)
        load: dict[Any, int] = {new_actor(): 0 for _ in range(n)}  # actor -> calls queued on it
        running: dict[Any, tuple[Any, Item]] = {}  # ObjectRef -> (actor, item)
        queue = list(reversed(todo))
        while queue or running:
            while len(load) < n and queue:  # replace actors that died
                load[new_actor()] = 0
            for actor in load:
                while queue and load[actor] < 2:
                    item = queue.pop()
                    running[actor.process.remote(*item)] = (actor, item)
                    load[actor] += 1
            done, _ = ray.wait(list(running), num_returns=1)
            actor, item = running.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayActorError:
                # the actor died: each call it held is retried alone on a fresh actor
                load.pop(actor, None)
                held = [r for r, (a, _i) in running.items() if a is actor]
                lost = [item] + [running.pop(r)[1] for r in held]
                log.warning("a Ray actor died; its %d calls are retried one at a time", len(lost))
                for lost_item in lost:
                    yield self._alone(ray, new_actor, lost_item)
                continue
            except ray.exceptions.RayError as e:
                call = item[0]
                outcome = Outcome(call.call_id, str(call.path), "failed", error_type=type(e).__name__,
                                  error=f"{call.path}: {_first_line(e)}")
            load[actor] -= 1
            yield outcome

    @staticmethod
    def _alone(ray: Any, new_actor: Any, item: Item) -> Outcome:
        actor = new_actor()
        try:
            return ray.get(actor.process.remote(*item))
        except ray.exceptions.RayActorError as e:
            return crashed(item[0], "the Ray worker", _first_line(e))
        finally:
            ray.kill(actor)


def make_executor(config: Config, out_dir: Path, local: CallProcessor) -> LocalExecutor | RayExecutor:
    name = config.run.executor
    if name == "local":
        return LocalExecutor(config, out_dir, local)
    if name == "ray":
        return RayExecutor(config, out_dir, config.run.ray_address)
    raise ConfigError(f"run.executor: '{name}' is not one of {', '.join(EXECUTORS)}")
