"""Where work is done: in this process, in local worker processes, or on a Ray cluster.

An executor runs a :class:`Task` over items (calls): every worker (a spawned process, a Ray
actor, or this process) builds its handler once with :meth:`Task.start`, so its models load once
and serve every item sent there, then handles items one at a time. The executor yields one result
per item as each finishes (in the order they finish). Two tasks use them:

- the batch runner's (pipeline.run.runner.CallTask): process a call and write its folder; the
  result is its :class:`~pipeline.run.call.Outcome`, from which the runner keeps ``run.json``,
  ``summary.csv`` and the index, whatever the executor;
- the evaluation harness's (pipeline.evaluation.harness.SpeechTask): compute a labelled call's
  speech stage into the stage cache.

Crash isolation is the same everywhere: a worker that dies (a crash in native code, the
out-of-memory killer, a lost node) takes the items it was running with it; each of them is
retried alone, and only an item that kills its worker again fails: its result
is the task's :meth:`Task.failed` with ``WorkerCrashed``.

:data:`EXECUTORS` names the executors (config key ``run.executor``). This module imports
neither the config nor the call processor (pipeline/config.py reads the executors' names here).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol, TypeVar

from models.asr import default_threads
from models.backends import Registry
from pipeline.errors import ConfigError

log = logging.getLogger("callqa")

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

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


# -- what the workers do -----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSite:
    """Where a worker runs, as its executor tells the task that builds the worker's handler."""

    scratch: Path | None = None
    """A folder of the worker's own for temporary files (on a Ray node's own disk), removed with
    the worker; None: where the task's config puts them."""
    threads: int | None = None
    """The CPU threads reserved for the worker (Ray); None: as the task's config says."""
    node: str | None = None
    """The host the worker runs on when it may not be this machine (Ray); None: this machine."""


class Task(Protocol[T_contra, R_co]):
    """What every worker does. Picklable: it is sent to each worker process or Ray actor."""

    def start(self, site: WorkerSite) -> Callable[[T_contra], R_co]:
        """In the worker, once: load what the items need; the handler of one item."""
        ...

    def failed(self, item: T_contra, error_type: str, message: str) -> R_co:
        """The result of an item that was not handled: its worker died with it when it ran alone
        (``WorkerCrashed``), or Ray could not run it. ``message`` does not name the item."""
        ...


class Executor(Protocol):
    """Runs a task over items; one of :data:`EXECUTORS`."""

    def run(self, task: Task[T, R], items: Iterable[T], local: Callable[[T], R] | None = None) -> Iterator[R]:
        """One result per item as each finishes. ``local``: the handler to use if the items are
        handled in this process (one built already), instead of building one from ``task``."""
        ...


def crashed(task: Task[T, R], item: T, where: str = "the worker process", detail: str = "") -> R:
    """The result of an item that killed its worker when it ran alone."""
    return task.failed(item, "WorkerCrashed",
                       f"{where} died while processing this call" + (f" ({detail})" if detail else ""))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


# -- local: this process, or a pool of worker processes ---------------------------------------

PARENT_CHECK_S = 1.0
"""How often a worker process checks that the process that started it is alive."""

STOP_WAIT_S = 10.0
"""How long a worker is given to end by itself once told to stop, before it is killed."""


def exit_with_parent(parent: int) -> None:
    """End this worker when the process that started it dies (``kill -9``, the out-of-memory
    killer): orphaned, it would wait forever for its next item, holding its models' memory."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(70)

    threading.Thread(target=watch, name="callqa-parent-watch", daemon=True).start()


def _serve(conn: Connection, task: Task[Any, Any], parent: int) -> None:
    """A worker process: build the task's handler once, then handle the items the parent sends
    over ``conn`` one at a time, answering each with ``("ok", result)`` or ``("error",
    exception)``, until it is sent None or the parent goes."""
    exit_with_parent(parent)
    handle = task.start(WorkerSite())
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        try:
            answer: tuple[str, Any] = ("ok", handle(item))
        except Exception as e:  # the handler's own error: raised again in the parent
            answer = ("error", e)
        try:
            conn.send(answer)
        except Exception as e:  # an answer that cannot be sent (not picklable)
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {_first_line(e)}")))


@dataclass(eq=False)
class _Worker:
    """A worker process of :class:`LocalExecutor`, the parent's end of its pipe, and the item it
    holds (if any)."""

    process: Any
    conn: Connection
    item: Any = None
    busy: bool = False
    retry: bool = False
    """The item it holds is a retry (it killed a worker before)."""

    def give(self, item: Any, retry: bool = False) -> None:
        self.conn.send(item)
        self.item, self.busy, self.retry = item, True, retry

    def stop(self) -> None:
        """Ask it to end, wait a little, then kill it if it has not."""
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(STOP_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalExecutor:
    """``workers`` 1 (or a single item to do): every item in this process. More: that many
    spawned worker processes, each with its own handler (its own models), each sent one item at
    a time over its own pipe.

    Because each worker holds at most one item, a worker that dies is known to have died with
    that item: the other workers carry on untouched, a fresh worker takes its place, and the
    item is retried once, alone (when no other item is running: a call that ran out of memory
    beside others may fit alone); only if it kills that worker too does it fail (``WorkerCrashed``).
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)

    @classmethod
    def from_config(cls, config: Any) -> LocalExecutor:
        """For a run's config (pipeline.config.Config, its workers resolved): ``run.workers``."""
        return cls(config.run.workers)

    def run(self, task: Task[T, R], items: Iterable[T], local: Callable[[T], R] | None = None) -> Iterator[R]:
        todo = list(items)
        if not todo:
            return
        if min(self.workers, len(todo)) <= 1:
            handle = local if local is not None else task.start(WorkerSite())
            for item in todo:
                yield handle(item)
            return
        yield from self._pool(task, todo)

    def _pool(self, task: Task[T, R], todo: list[T]) -> Iterator[R]:
        ctx = multiprocessing.get_context("spawn")
        queue = list(reversed(todo))
        suspects: list[T] = []
        workers: list[_Worker] = []

        def spawn() -> _Worker:
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=_serve, args=(theirs, task, os.getpid()), name="callqa-worker", daemon=True)
            process.start()
            theirs.close()
            worker = _Worker(process, mine)
            workers.append(worker)
            return worker

        def hand(item: T, retry: bool = False) -> None:
            """Give ``item`` to an idle live worker, or to a new one."""
            for w in [w for w in workers if not w.busy]:
                if w.process.is_alive():
                    try:
                        w.give(item, retry)
                        return
                    except OSError:  # it died since
                        pass
                workers.remove(w)
                w.stop()
            spawn().give(item, retry)

        try:
            while queue or suspects or any(w.busy for w in workers):
                running = sum(w.busy for w in workers)
                while queue and running < self.workers:
                    hand(queue.pop())
                    running += 1
                if not queue and suspects and not running:
                    hand(suspects.pop(), retry=True)
                busy = [w for w in workers if w.busy]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        answer = self._answer(w)
                        if answer is not None:
                            kind, value = answer
                            w.item, w.busy = None, False
                            if kind == "error":
                                raise value
                            yield value
                            continue
                        workers.remove(w)
                        w.stop()
                        if w.retry:
                            yield crashed(task, w.item)
                        else:
                            log.warning("a worker process died; its call in flight is retried alone")
                            suspects.append(w.item)
        finally:
            for w in workers:
                w.stop()

    @staticmethod
    def _answer(worker: _Worker) -> tuple[str, Any] | None:
        """The worker's answer to its item, or None when it died without one."""
        try:
            if worker.conn.poll():
                answer: tuple[str, Any] = worker.conn.recv()
                return answer
        except (EOFError, OSError):
            pass
        return None


# -- Ray: actors on a cluster ------------------------------------------------------------------


SCRATCH_PREFIX = "callqa-work-"
"""Scratch folders of Ray actors: ``callqa-work-<pid>-<random>`` in the node's temporary folder."""


def _remove_orphan_scratch() -> None:
    """Remove the scratch folders that actors killed on this node left behind (their process
    is gone: a killed actor never runs its clean-up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass


class TaskActor:
    """A Ray actor: one handler of the task (its models loaded once) serving items one at a time.

    The handler gets a scratch folder on the node's own disk (removed with the actor) and the
    actor's threads; whatever it reads or writes elsewhere must be visible to every node at the
    same path (shared storage).
    """

    def __init__(self, task: Task[Any, Any], threads: int):
        _remove_orphan_scratch()
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        self.handle = task.start(WorkerSite(scratch=self.scratch, threads=threads, node=socket.gethostname()))

    def process(self, item: Any) -> Any:
        return self.handle(item)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--executor ray needs Ray: pip install 'callqa[ray]' (or ray) on every node") from e
    return ray


class RayExecutor:
    """Items spread over Ray actors (``workers`` of them, 0 = as many as the cluster's CPUs
    allow at ``threads`` each, 0 = 1), two items queued per actor so none waits between items.

    ``address``: a running cluster (``auto``, or ``ray://host:10001`` / ``host:6379``); None
    starts a Ray instance on this machine for the run and stops it afterwards.
    """

    def __init__(self, workers: int = 0, threads: int = 0, address: str | None = None):
        self.workers = workers
        self.threads = threads
        self.address = address
        self._started = False

    @classmethod
    def from_config(cls, config: Any) -> RayExecutor:
        """For a run's config (pipeline.config.Config): ``run.workers``, ``asr.threads``,
        ``run.ray_address``."""
        return cls(config.run.workers, config.asr.threads, config.run.ray_address)

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

    def _actor_count(self, ray: Any, threads: int, items: int) -> int:
        if self.workers > 0:
            wanted = self.workers
        else:
            wanted = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        return max(1, min(wanted, items))

    def run(self, task: Task[T, R], items: Iterable[T], local: Callable[[T], R] | None = None) -> Iterator[R]:
        todo = list(items)
        if not todo:
            return
        ray = self._connect()
        try:
            yield from self._run(ray, task, todo)
        finally:
            if self._started:
                ray.shutdown()
                self._started = False

    def _run(self, ray: Any, task: Task[T, R], todo: list[T]) -> Iterator[R]:
        # the actors use exactly these threads, whatever the cores of the node they land on
        threads = self.threads or 1
        actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_concurrency=1)(TaskActor)
        shared_task = ray.put(task)

        def new_actor() -> Any:
            return actor_class.remote(shared_task, threads)

        n = self._actor_count(ray, threads, len(todo))
        log.info("ray: %d actors with %d threads each", n, threads)
        load: dict[Any, int] = {new_actor(): 0 for _ in range(n)}  # actor -> items queued on it
        running: dict[Any, tuple[Any, T]] = {}  # ObjectRef -> (actor, item)
        queue = list(reversed(todo))
        while queue or running:
            while len(load) < n and queue:  # replace actors that died
                load[new_actor()] = 0
            for actor in load:
                while queue and load[actor] < 2:
                    item = queue.pop()
                    running[actor.process.remote(item)] = (actor, item)
                    load[actor] += 1
            done, _ = ray.wait(list(running), num_returns=1)
            actor, item = running.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayActorError:
                # the actor died: each item it held is retried alone on a fresh actor
                load.pop(actor, None)
                held = [r for r, (a, _i) in running.items() if a is actor]
                lost = [item] + [running.pop(r)[1] for r in held]
                log.warning("a Ray actor died; its %d calls are retried one at a time", len(lost))
                for lost_item in lost:
                    yield self._alone(ray, new_actor, task, lost_item)
                continue
            except ray.exceptions.RayError as e:
                result = task.failed(item, type(e).__name__, _first_line(e))
            load[actor] -= 1
            yield result

    @staticmethod
    def _alone(ray: Any, new_actor: Callable[[], Any], task: Task[T, R], item: T) -> R:
        actor = new_actor()
        try:
            return ray.get(actor.process.remote(item))
        except ray.exceptions.RayActorError as e:
            return crashed(task, item, "the Ray worker", _first_line(e))
        except ray.exceptions.RayError as e:
            return task.failed(item, type(e).__name__, _first_line(e))
        finally:
            ray.kill(actor)


EXECUTORS = Registry("run.executor", {"local": LocalExecutor, "ray": RayExecutor})
"""The executors ``run.executor`` chooses from: each a class with ``from_config(config)`` and the
:class:`Executor` method ``run``. Plugins add theirs with ``EXECUTORS.register``."""


def make_executor(config: Any) -> Executor:
    """The executor ``run.executor`` names, set up from a run's config (pipeline.config.Config;
    not imported here: the config reads :data:`EXECUTORS`). ConfigError naming ``run.executor``
    and the choices when there is no such executor."""
    executor: Executor = EXECUTORS.get(config.run.executor).from_config(config)
    return executor
