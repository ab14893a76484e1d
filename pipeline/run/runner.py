"""The nightly batch: decide what needs doing, process it in worker processes, keep records.

Incremental: a call whose ``call.json`` says ``ok`` for the same file hash and the same
result-affecting config is skipped. Results are written per call as soon as the call is done,
so a killed run loses at most the calls in flight; the next run picks up the rest.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.asr import preflight as prepare_asr_model
from pipeline import __version__
from pipeline.interaction.record import CHANNEL_OF, Interaction, RecordError, record_path
from pipeline.run.call import WORK_DIR, CallProcessor, Outcome, sha256_file, utc_now
from pipeline.config import Config
from pipeline.errors import (
    EXIT_CALLS_FAILED, EXIT_DISK_FULL, EXIT_INTERRUPTED, EXIT_OK, DiskFullError, InputError,
)
from pipeline.run.executors import WorkerSite, make_executor, resolve_split
from pipeline.run.index import IndexEntry, RunIndex
from pipeline.run.preflight import preflight as check_settings
from pipeline.ingest.discover import CallInput, discover, not_regular
from pipeline.speakers.stage import overrides_path, read_overrides
from pipeline.run.agents import AGENT_COLUMNS, agent_rows
from pipeline.analysis.scorecard import load_scorecard, templates_in_use
from pipeline.interaction.writers import write_csv, write_json

log = logging.getLogger("callqa")

SUMMARY_COLUMNS = [
    "call_id", "status", "channel", "path", "duration_s", "channels", "sample_rate", "format",
    "utterances", "words", "speaker_method", "role_confidence", "processing_s", "error_type", "error",
]
SCORE_COLUMNS = ["score", "points", "potential", "auto_fail", "low_confidence_items", "customer_sentiment_end"]
"""Columns of a scored call; one column per scorecard item (its answer) follows them."""
CONTACT_COLUMNS = ["outcome", "contact_reason"]
"""Columns of the interaction documented (the contact block): its outcome and reason (masked)."""

STOPPED_DISK_FULL = "stopped: disk full"
"""``run.json`` state of a run stopped by a full disk (exit code EXIT_DISK_FULL)."""

LOW_CONFIDENCE = 0.6
"""An answer below this confidence counts as low-confidence (summary and agents.csv)."""


@dataclass
class RunReport:
    """The state of a batch, written to ``run.json``."""

    input: str
    out: str
    config: Config
    started_at: str = field(default_factory=utc_now)
    ended_at: str | None = None
    state: str = "running"
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    input_roots: list[str] = field(default_factory=list)
    """Where the run's recordings are (absolute): the input folder, or the folders of the
    recordings a manifest or a single file named. The review app plays no file outside them."""
    stop_reason: str | None = None
    """Why the run stopped early (the disk-full message), None otherwise."""

    def counts(self) -> dict[str, int]:
        c = {"total": len(self.outcomes), "ok": 0, "failed": 0, "skipped": 0, "pending": 0}
        for o in self.outcomes.values():
            c[o.status] = c.get(o.status, 0) + 1
        return c

    def to_dict(self) -> dict[str, Any]:
        return {
            "callqa_version": __version__,
            "state": self.state,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "input": self.input,
            "input_roots": self.input_roots,
            "out": self.out,
            "config_hash": self.config.result_hash(),
            "config": self.config.to_dict(),
            "counts": self.counts(),
            **({"stop_reason": self.stop_reason} if self.stop_reason else {}),
            "calls": [o.to_dict() for o in self.outcomes.values()],
        }


def input_roots(source: Path, calls: list[CallInput]) -> list[str]:
    """The folders holding the run's recordings (see ``RunReport.input_roots``)."""
    if source.is_dir():
        return [str(source.resolve())]
    return sorted({str(Path(c.path).resolve().parent) for c in calls})


def previous_result(out_dir: Path, call_id: str) -> Interaction | None:
    """The finished record of a call, or None when there is none or it is unreadable."""
    try:
        return Interaction.load(record_path(out_dir, call_id))
    except RecordError:
        return None


def is_done(prev: Interaction | None, sha256: str, config_hash: str) -> bool:
    """A call is done when its result is ok for this exact file and result-affecting config."""
    return bool(prev and prev.ok and prev.source.sha256 == sha256 and prev.config_hash == config_hash)


def summary_row(call: CallInput, outcome: Outcome, record: Interaction | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "call_id": call.call_id, "status": outcome.status, "channel": CHANNEL_OF.get(call.kind, "voice"),
        "path": str(call.path),
        "duration_s": round(outcome.duration_s, 3) or None, "processing_s": round(outcome.processing_s, 3),
        "error_type": outcome.error_type, "error": outcome.error,
    }
    if record:
        src = record.source
        utts = record.utterance_dicts()
        row.update(
            channel=record.channel, duration_s=src.duration_s, channels=src.channels, sample_rate=src.sample_rate,
            format=src.format, utterances=len(utts), words=sum(len(u.get("words", [])) for u in utts),
            speaker_method=(record.speakers or {}).get("method"),
            role_confidence=(record.speakers or {}).get("confidence"),
        )
        if outcome.status == "skipped":
            row["processing_s"] = record.processing.get("seconds")
        card = record.scorecard
        if card:
            score = card["score"]
            row.update(score=score.get("normalized"), points=score.get("points"), potential=score.get("potential"),
                       auto_fail=score.get("auto_fail"),
                       low_confidence_items=sum(1 for i in card["items"] if i["confidence"] < LOW_CONFIDENCE),
                       customer_sentiment_end=(record.sentiment or {}).get("customer_end"))
            row.update(record.answers)
        contact = record.contact
        if contact:
            row.update(outcome=(contact.get("outcome") or {}).get("label"),
                       contact_reason=(contact.get("reason") or {}).get("text"))
    row.update(call.metadata)
    return row


def hash_customers(calls: list[CallInput], out_dir: Path) -> None:
    """Each call's manifest customer (caller number, e-mail address) replaced by its keyed hash
    in its metadata (``customer_hash``; pipeline/insights/customers.py, the key of ``out_dir``,
    made on first use), so no raw number reaches a worker or a result; e-mail and chat calls get
    the key to hash their customer's address the same way. Nothing is made when no call needs it."""
    if not any(c.customer or c.kind in ("email", "chat") for c in calls):
        return
    from pipeline.insights.customers import customer_hash, load_key

    key = load_key(out_dir)
    for call in calls:
        if call.customer:
            hashed = customer_hash(call.customer, key)
            if hashed:
                call.metadata["customer_hash"] = hashed
            call.customer = None
        if call.kind in ("email", "chat"):
            call.customer_key = key


def with_split(config: Config) -> Config:
    """``config`` with automatic workers and threads (0) resolved for this machine; the Ray
    executor decides its own from the cluster's resources."""
    if config.run.executor != "local":
        return config
    workers, threads = resolve_split(config.run.workers, config.asr.threads)
    return dataclasses.replace(config, run=dataclasses.replace(config.run, workers=workers),
                               asr=dataclasses.replace(config.asr, threads=threads))


@dataclass(frozen=True)
class CallTask:
    """What the batch's workers do (pipeline.run.executors.Task): each builds one CallProcessor
    (its models loaded once) and processes calls, given as (call, recording sha256), into their
    folders; the result is the call's Outcome."""

    config: Config
    out_dir: Path

    def start(self, site: WorkerSite) -> Callable[[tuple[CallInput, str]], Outcome]:
        config = self.config
        if site.threads:  # the worker has exactly these, whatever the cores of its machine
            config = dataclasses.replace(config, asr=dataclasses.replace(config.asr, threads=site.threads))
        processor = CallProcessor(config, self.out_dir, work_dir=site.scratch)
        node = site.node
        if node is None:
            return self.handler(processor)
        return lambda item: self._on_node(processor, node, *item)

    @staticmethod
    def handler(processor: CallProcessor) -> Callable[[tuple[CallInput, str]], Outcome]:
        return lambda item: processor.process(*item)

    def _on_node(self, processor: CallProcessor, node: str, call: CallInput, sha256: str) -> Outcome:
        """On another machine (Ray), the recordings and the output folder must be on storage
        it mounts at the same path: a call is failed naming the one it cannot see."""
        for what, path in (("the output folder", self.out_dir), ("the recording", Path(call.path))):
            if not path.exists():  # nothing can be written for this call on this node
                return Outcome(call.call_id, str(call.path), "failed", error_type="ConfigError",
                               error=f"{path}: {what} is not visible on node {node}; with --executor ray the "
                                     "recordings and OUT must be on storage every node mounts at the same path")
        return processor.process(call, sha256)

    def failed(self, item: tuple[CallInput, str], error_type: str, message: str) -> Outcome:
        call = item[0]
        return Outcome(call.call_id, str(call.path), "failed", error_type=error_type, error=f"{call.path}: {message}")


class _Lock:
    """One run at a time per output folder."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / ".callqa.lock"
        self.fd: int | None = None

    def __enter__(self) -> "_Lock":
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self.fd)
            raise InputError(f"{self.path.parent}: another callqa run is writing to this folder") from e
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)


class BatchRunner:
    """Runs the pipeline over an input and keeps ``run.json`` and ``summary.csv`` current."""

    def __init__(self, config: Config, input_path: str | Path, out_dir: str | Path,
                 force: bool = False, progress: bool = True):
        self.config = with_split(config)
        self.input_path = Path(input_path)
        self.out_dir = Path(out_dir)
        self.force = force
        self.progress = progress
        self.report = RunReport(str(self.input_path), str(self.out_dir), self.config)
        self.calls: dict[str, CallInput] = {}
        self._last_flush = 0.0
        self._rows: dict[str, dict[str, Any]] = {}
        self._items: list[str] | None = None
        self._t0 = time.monotonic()
        self._index: RunIndex | None = None
        self._files: dict[str, tuple[str, int, int, str]] = {}  # call_id -> (path, size, mtime_ns, sha256)

    def run(self) -> int:
        """Process the batch; returns the exit code (see EXIT_*)."""
        calls = discover(self.input_path)
        self.report.input_roots = input_roots(self.input_path, calls)
        check_settings(self.config, self.out_dir)  # what the config names is there: exit 2 before any call
        prepare_asr_model(self.config.asr)  # a packaged model made ready once, before the workers start
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with _Lock(self.out_dir):
            shutil.rmtree(self.out_dir / WORK_DIR, ignore_errors=True)  # left by a killed run
            self.calls = {c.call_id: c for c in calls}
            hash_customers(calls, self.out_dir)
            try:
                self._index = RunIndex(self.out_dir)
                self._run(calls)
                self.report.state = "finished"
            except KeyboardInterrupt:
                self.report.state = "interrupted"
                return EXIT_INTERRUPTED
            except DiskFullError as e:
                self._stop_disk_full(e)
                return EXIT_DISK_FULL
            finally:
                self._close()
        if self.report.state == STOPPED_DISK_FULL:  # the last run.json or summary could not be written
            return EXIT_DISK_FULL
        counts = self.report.counts()
        log.info("done: %d ok, %d skipped, %d failed", counts["ok"], counts["skipped"], counts["failed"])
        return EXIT_CALLS_FAILED if counts["failed"] else EXIT_OK

    def _stop_disk_full(self, error: DiskFullError) -> None:
        self.report.state = STOPPED_DISK_FULL
        self.report.stop_reason = self.report.stop_reason or str(error)
        log.error("stopped: %s", self.report.stop_reason)

    def _close(self) -> None:
        """Last run.json and summary, index closed. On a full disk the run is marked stopped and,
        when even run.json cannot be written whole, a short run.json (state and counts, no
        per-call list: each call's own call.json has it) is tried; nothing written before is lost."""
        try:
            self._flush(force=True)
        except DiskFullError as e:
            if self.report.state != STOPPED_DISK_FULL:
                self._stop_disk_full(e)
            short = {k: v for k, v in self.report.to_dict().items() if k not in ("calls", "config")}
            for record in (self.report.to_dict(), {**short, "calls_omitted": True}):
                try:
                    write_json(self.out_dir / "run.json", record, durable=True)
                    break
                except DiskFullError:
                    continue
            else:
                log.error("%s: cannot be updated (disk full)", self.out_dir / "run.json")
        finally:
            if self._index is not None:
                try:
                    self._index.close()
                except DiskFullError as e:
                    log.error("%s", e)
                self._index = None

    def _run(self, calls: list[CallInput]) -> None:
        config_hash = self.config.result_hash()
        local = CallProcessor(self.config, self.out_dir)  # writes failures; loads no model unless used
        overrides = read_overrides(overrides_path(self.config.speakers, self.out_dir))
        todo: list[tuple[CallInput, str]] = []
        for call in calls:
            if call.problem is not None:
                self._refuse(local, call, type(call.problem).__name__, str(call.problem))
                continue
            call.speaker_override = overrides.get(call.call_id)
            try:
                refused = not_regular(call.path)  # replaced since discovery: never opened
                if refused is not None:
                    self._refuse(local, call, type(refused).__name__, str(refused))
                    continue
                st = os.stat(call.path)
                entry = self._index.get(call.call_id) if self._index else None
                same_file = (entry is not None and not self.config.run.rehash and entry.path == str(call.path)
                             and entry.size == st.st_size and entry.mtime_ns == st.st_mtime_ns)
                if call.content_sha256 is not None:  # a written conversation: hashed when it was found
                    sha = call.content_sha256
                    same_file = (entry is not None and not self.config.run.rehash and entry.path == str(call.path)
                                 and entry.sha256 == sha)
                else:
                    sha = entry.sha256 if same_file and entry else sha256_file(call.path)
            except OSError as e:
                self._record(local._fail(call, "", None, utc_now(), time.perf_counter(), self.out_dir / "calls" / call.call_id,
                                         "AudioError", f"{call.path}: cannot read file: {e.strerror or e}"))
                continue
            self._files[call.call_id] = (str(call.path), call.size if call.size is not None else st.st_size,
                                         st.st_mtime_ns, sha)
            if (not self.force and same_file and entry and entry.status == "ok" and entry.config_hash == config_hash
                    and (entry.override or None) == call.speaker_override
                    and record_path(self.out_dir, call.call_id).is_file()):
                # done, by the index: no file of the call is opened
                outcome = Outcome(call.call_id, str(call.path), "skipped", entry.row.get("duration_s") or 0.0,
                                  entry.row.get("processing_s") or 0.0)
                self.report.outcomes[call.call_id] = outcome
                self._rows[call.call_id] = {**entry.row, "status": "skipped", "error_type": None, "error": None,
                                            **call.metadata}
                self._flush()
                continue
            prev = previous_result(self.out_dir, call.call_id)
            if not self.force and prev is not None and is_done(prev, sha, config_hash):
                if prev.override != call.speaker_override:
                    if prev.scorecard is None:  # roles decide every answer: a scored call is redone
                        self._record(local.relabel(call, prev))
                        continue
                else:
                    self._record(Outcome(call.call_id, str(call.path), "skipped", prev.duration_s,
                                         prev.processing.get("seconds", 0.0)), prev)
                    continue
            self.report.outcomes[call.call_id] = Outcome(call.call_id, str(call.path), "pending")
            todo.append((call, sha))
        # longest first (by file size): the last calls to finish are short ones, so no worker
        # is left alone with a long call at the end of the batch
        todo.sort(key=lambda item: self._files[item[0].call_id][1], reverse=True)
        self._flush(force=True)
        log.info("%d calls: %d to process, %d already done", len(calls), len(todo), self.report.counts()["skipped"])
        self._t0 = time.monotonic()
        with self._progress_bar(len(todo)) as bar:
            task = CallTask(self.config, self.out_dir)
            for outcome in make_executor(self.config).run(task, todo, local=task.handler(local)):
                self._record(outcome)
                if outcome.error_type == DiskFullError.__name__:
                    # a worker could not write (pipeline.run.call types every ENOSPC/EDQUOT): stop
                    # taking calls (those in flight finish)
                    self.report.stop_reason = outcome.error
                    raise DiskFullError(outcome.path, "while processing this call")
                bar.update(1)
                bar.set_postfix_str(self._rtf_text(), refresh=False)
                if outcome.status == "failed":
                    log.warning("failed: %s", outcome.error)
                else:
                    log.info("ok: %s (%.1f s audio in %.1f s)", outcome.call_id, outcome.duration_s, outcome.processing_s)

    def _refuse(self, local: CallProcessor, call: CallInput, etype: str, message: str) -> None:
        """Record a call that is not processed at all. Its failed call.json is written unless
        its folder holds a finished (ok) result: that is kept (it may be another row's, or
        this call's from an earlier run); run.json and summary.csv still list the failure."""
        folder = self.out_dir / "calls" / call.call_id
        prev = previous_result(self.out_dir, call.call_id)
        if prev is not None and prev.ok:
            log.warning("%s: not processed; its earlier result in %s is kept", message, folder)
            self._record(Outcome(call.call_id, str(call.path), "failed", error_type=etype, error=message), read=False)
            return
        self._record(local._fail(call, "", None, utc_now(), time.perf_counter(), folder, etype, message))

    def _record(self, outcome: Outcome, record: Interaction | None = None, read: bool = True) -> None:
        """Keep a call's outcome, its summary row and its index entry; ``record`` is its record
        when the caller has just read it (read here otherwise, unless ``read`` is false: then
        the call is listed as failed without the record its folder keeps)."""
        self.report.outcomes[outcome.call_id] = outcome
        if record is None and read:
            record = previous_result(self.out_dir, outcome.call_id)
        row = summary_row(self.calls[outcome.call_id], outcome, record)
        self._rows[outcome.call_id] = row
        file = self._files.get(outcome.call_id)
        if self._index is not None and file is not None and (record is not None or not read):
            ok = record is not None and record.ok and record.source.sha256 == file[3]
            self._index.put(IndexEntry(
                outcome.call_id, file[0], file[1], file[2], file[3], "ok" if ok else "failed",
                (record.config_hash if record else None) or "", record.override if record else None,
                {**row, "status": "ok" if ok else row.get("status")}))
        self._flush()

    def _rtf_text(self) -> str:
        done = [o for o in self.report.outcomes.values() if o.status in ("ok", "failed")]
        audio = sum(o.duration_s for o in done)
        wall = time.monotonic() - self._t0
        return f"{audio / wall:.1f}x real time" if wall > 0 else ""

    def _progress_bar(self, total: int):  # noqa: ANN202 - tqdm type
        from tqdm import tqdm

        return tqdm(total=total, unit="call", disable=not self.progress, dynamic_ncols=True, smoothing=0.1)

    def _flush(self, force: bool = False) -> None:
        """Rewrite run.json and summary.csv (at most every ``run.progress_every_s``)."""
        now = time.monotonic()
        if not force and now - self._last_flush < self.config.run.progress_every_s:
            return
        self._last_flush = now
        if self._index is not None:
            self._index.commit()
        if self.report.state != "running":
            self.report.ended_at = utc_now()
        write_json(self.out_dir / "run.json", self.report.to_dict(), durable=True)
        rows = [self._rows[cid] for cid in self.report.outcomes if cid in self._rows]
        extra = sorted({k for c in self.calls.values() for k in c.metadata} - set(SUMMARY_COLUMNS) - set(CONTACT_COLUMNS))
        items = self._item_ids()
        scored = SCORE_COLUMNS + items if items else []
        contact = CONTACT_COLUMNS if self.config.contact.enabled else []
        write_csv(self.out_dir / "summary.csv", rows, SUMMARY_COLUMNS + scored + contact + extra)
        if items:
            table = agent_rows(rows, items)
            write_csv(self.out_dir / "agents.csv", table, AGENT_COLUMNS + [f"{i}_pass_rate" for i in items])

    def _item_ids(self) -> list[str]:
        """The scorecard's item ids (from the template this run scores with), or none."""
        if not self.config.scorecard.enabled:
            return []
        if self._items is None:  # every template the run may score with, the default's items first
            ids = [i.id for path in templates_in_use(self.config.scorecard, self.config.channel_templates())
                   for i in load_scorecard(str(path)).items]
            self._items = list(dict.fromkeys(ids))
        return self._items
