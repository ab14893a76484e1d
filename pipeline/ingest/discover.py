"""What to process: the calls of a folder, a manifest CSV, or a single file.

A folder is searched recursively for files with an audio extension (hidden files and folders
are left out). A manifest is a CSV with at least ``path`` (relative to the manifest's folder or
absolute) and usually ``call_id,agent_id,queue,started_at``; every other column is kept as
metadata. Problems with one row (missing file, duplicate or unsafe call_id) fail that call
only; an unreadable manifest fails the whole input.

Every call gets a result folder of its own (``OUT/calls/<call_id>``): two rows or files never
share one, whatever their names fold to, and the same input gives the same ids on every run.
Only regular files (and links to them) are read; a FIFO, socket or device is refused by its
type, never opened.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import CallError, InputError, ManifestRowError, NotRegularFileError
from pipeline.ingest.paths import MAX_CALL_ID_LEN, file_kind, safe_call_id  # noqa: F401  (re-exported)


AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .mp4 .aac .wma .au .aif .aiff .caf .webm .amr".split()
)
MANIFEST_REQUIRED = ("path",)


@dataclass
class CallInput:
    """One call to process: its id, its recording, and the manifest's other columns."""

    call_id: str
    path: Path
    metadata: dict[str, str] = field(default_factory=dict)
    problem: CallError | None = None
    """Set when the call cannot be processed at all (reported as failed, never retried)."""
    speaker_override: str | None = None
    """A manual role decision for this call from the speaker overrides file (see
    pipeline/speakers/stage.py), set by the runner."""
    kind: str = "recording"
    """The source kind that reads it (pipeline/ingest/sources.py): ``recording``, ``email``,
    ``chat``."""
    locator: Any = None
    """Where a written conversation's messages are (its reader's own form, picklable): the
    e-mail messages of a thread across files, a chat's file and conversation id."""
    content_sha256: str | None = None
    """The hash of a written conversation's content, found when it was discovered (its
    messages may be spread over files or share one with others); None: the file's hash."""
    size: int | None = None
    """Bytes of a written conversation's content (for the order of work); None: the file's."""
    customer: str | None = field(default=None, repr=False)
    """The customer's caller number or e-mail address from the manifest (a ``CUSTOMER_COLUMNS``
    column), never kept in the metadata: the runner replaces it by its keyed hash
    (``metadata["customer_hash"]``, pipeline/insights/customers.py) and clears it."""
    customer_key: bytes | None = field(default=None, repr=False)
    """The results folder's customer key, given by the runner to the sources that hash a
    customer's address themselves (e-mail); None: no customer hash is made."""


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def not_regular(path: Path) -> NotRegularFileError | None:
    """The typed error for a path that is not a regular file (None when it is one)."""
    kind = file_kind(path)
    return NotRegularFileError(path, f"is {kind}, not a recording; it is not read") if kind else None


def _unique_id(base: str, salt: str, taken: set[str]) -> str:
    """``base``, or ``base`` with a short hash of ``salt`` (and a counter, if even that is
    taken): an id no other call of the input has. Deterministic for the same input."""
    if base not in taken:
        return base
    cid = f"{base}-{hashlib.sha256(salt.encode()).hexdigest()[:8]}"
    n = 2
    while cid in taken:
        cid = f"{base}-{hashlib.sha256(salt.encode()).hexdigest()[:8]}-{n}"
        n += 1
    return cid


def discover_folder(root: Path) -> list[CallInput]:
    """Every interaction under ``root``, in a stable order, with unique ids: each audio file
    (ids from the stems), the e-mail threads of its ``.eml`` files and ``.mbox`` archives
    (threaded across files), and its chats (``.json`` files in the chat format, ``.csv`` files
    with the chat columns; other JSON and CSV files are not interactions and are left alone).

    A FIFO, socket or device with an audio extension is listed as a failed call
    (:class:`NotRegularFileError`) and never opened; links to regular files are followed.
    """
    paths: list[Path] = []
    written: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in AUDIO_EXTENSIONS:
                paths.append(Path(dirpath) / name)
            elif suffix in WRITTEN_EXTENSIONS:
                written.append(Path(dirpath) / name)
    stems = {safe_call_id(p.stem) for p in paths}
    calls: list[CallInput] = []
    taken: set[str] = set()
    for p in paths:
        base = safe_call_id(p.stem)
        # a second file with the same stem gets a hash of its relative path; that id must not
        # be the plain stem of another file either, so every file keeps its own folder
        cid = base if base not in taken else _unique_id(base, str(p.relative_to(root)), taken | stems)
        taken.add(cid)
        calls.append(CallInput(call_id=cid, path=p, problem=not_regular(p)))
    calls.extend(written_conversations(written, taken, root))
    return calls


WRITTEN_EXTENSIONS = frozenset({".eml", ".mbox", ".json", ".csv"})
"""Files that may hold written conversations: e-mail (``.eml``, ``.mbox``) and chats (``.json``,
``.csv``; only those in the chat format)."""


def written_conversations(paths: list[Path], taken: set[str], root: Path | None = None) -> list[CallInput]:
    """The e-mail threads and chats held by ``paths`` (e-mail threaded across all of them), each
    with an id not in ``taken`` (which receives them). A file that cannot be read is one failed
    interaction naming it; JSON and CSV files not in the chat format are left out."""
    from pipeline.ingest.chat import is_chat_csv, is_chat_json, scan_chat_csv
    from pipeline.ingest.email_index import thread_email_files

    out: list[CallInput] = []

    def add(base: str, salt: str, path: Path, **kw: Any) -> None:
        cid = _unique_id(safe_call_id(base), salt, taken)
        taken.add(cid)
        out.append(CallInput(call_id=cid, path=path, **kw))

    def where(p: Path) -> str:
        return str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(p)

    refused = {p: not_regular(p) for p in paths}
    for p, problem in refused.items():
        if problem is not None:
            kind = "email" if p.suffix.lower() in (".eml", ".mbox") else "chat"
            add(p.stem, where(p), p, problem=problem, kind=kind)
    readable = [p for p in paths if refused[p] is None]
    mail = [p for p in readable if p.suffix.lower() in (".eml", ".mbox")]
    if mail:
        threads, errors = thread_email_files(mail)
        for thread in threads:
            first = Path(thread.path)
            add(thread.conversation_id, f"{where(first)}:{thread.conversation_id}", first, kind="email",
                locator=thread, content_sha256=thread.sha256, size=thread.size)
        for error in errors:
            add(Path(error.path).stem, f"{error.path}:{error}", Path(error.path), problem=error, kind="email")
    for p in readable:
        suffix = p.suffix.lower()
        if suffix == ".json" and is_chat_json(p):
            add(p.stem, where(p), p, kind="chat")
        elif suffix == ".csv" and is_chat_csv(p):
            refs, errors = scan_chat_csv(p)
            for ref in refs:
                add(ref.conversation_id, f"{where(p)}:{ref.conversation_id}", p, kind="chat", locator=ref,
                    content_sha256=ref.sha256, size=ref.size)
            for error in errors:
                add(f"{p.stem}-error", f"{where(p)}:{error}", p, problem=error, kind="chat")
    return out


CUSTOMER_COLUMNS = ("customer", "caller", "caller_number", "ani", "customer_email")
"""Manifest columns that hold the customer's caller number or e-mail address (the first
non-empty one is the customer). They never reach a result: ``customer_identity`` takes them
out of the metadata and the runner writes their keyed hash as ``customer_hash``."""


def customer_identity(metadata: dict[str, str]) -> str | None:
    """Removes every ``CUSTOMER_COLUMNS`` column (and a ``customer_hash`` column, which only the
    runner may write) from ``metadata``; returns the first non-empty value, or None."""
    found = None
    for column in CUSTOMER_COLUMNS:
        value = (metadata.pop(column, "") or "").strip()
        if value and found is None:
            found = value
    metadata.pop("customer_hash", None)
    return found


def read_manifest(manifest: Path) -> list[CallInput]:
    """The calls a manifest CSV lists. Row problems are attached to the call, not raised.

    Every row gets its own result folder: the first row (in manifest order) with a valid id
    keeps that id; a later row with the same id, or a refused row (unsafe id, empty path)
    whose id would fold onto another row's, gets an id of its own (``ID-lineN``, never one
    another row uses) and fails with :class:`ManifestRowError`. The same manifest gives the
    same ids and the same decisions on every run.
    """
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{manifest}: cannot read manifest: {e}") from e
    missing = [c for c in MANIFEST_REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{manifest}: manifest lacks column(s) {', '.join(missing)}; "
            "expected call_id,path,agent_id,queue,started_at (call_id optional, extra columns kept)"
        )
    calls: list[CallInput] = []
    owners: dict[str, int] = {}  # id -> line of the row that keeps it
    refused: list[tuple[CallInput, str, int, Path, str]] = []  # (call, wanted id, line, file, why)
    for lineno, row in enumerate(rows, start=2):
        raw_path = (row.get("path") or "").strip()
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = manifest.parent / path
        raw_id = (row.get("call_id") or "").strip()
        cid = raw_id or safe_call_id(Path(raw_path).stem or f"row{lineno}")
        metadata = {k: (v or "") for k, v in row.items() if k not in ("call_id", "path") and k is not None}
        call = CallInput(call_id=cid, path=path, metadata=metadata, customer=customer_identity(metadata))
        where = f"{manifest} line {lineno}"
        calls.append(call)
        if not raw_path:
            wanted = cid if raw_id and safe_call_id(raw_id) == raw_id else f"row{lineno}"
            refused.append((call, wanted, lineno, manifest, f"line {lineno}: empty path"))
        elif raw_id and safe_call_id(raw_id) != raw_id:
            refused.append((call, safe_call_id(raw_id), lineno, path,
                            f"{where}: call_id {raw_id!r} may only hold letters, digits, '.', '_' and '-'"))
        elif cid in owners:
            why = f"{where}: duplicate call_id {cid!r} (line {owners[cid]} has it); this row is not processed"
            refused.append((call, f"{cid}-line{lineno}", lineno, path, why))
        else:
            owners[cid] = lineno
            if not path.exists():
                call.problem = ManifestRowError(path, f"{where}: file not found")
            else:
                call.problem = not_regular(path)
    taken = set(owners)
    for call, wanted, lineno, path, why in refused:
        call.call_id = _unique_id(wanted, f"{manifest.name}:{lineno}", taken)
        taken.add(call.call_id)
        if wanted in owners and call.call_id != wanted:
            why += f"; its result folder {wanted!r} belongs to line {owners[wanted]}"
        call.problem = ManifestRowError(path, why)
    return [found for call in calls for found in _written_row(call, taken)]


def _written_row(call: CallInput, taken: set[str]) -> list[CallInput]:
    """A manifest row naming an e-mail file, mbox archive or chat file: the conversations it
    holds, with the row's columns (the row's call_id for the first); any other row as it is."""
    if call.problem is not None or call.path.suffix.lower() not in WRITTEN_EXTENSIONS:
        return [call]
    taken.discard(call.call_id)
    found = written_conversations([call.path], taken)
    if not found:
        taken.add(call.call_id)
        return [call]
    if found[0].call_id != call.call_id and call.call_id not in taken:
        taken.discard(found[0].call_id)
        found[0].call_id = call.call_id
        taken.add(call.call_id)
    for conversation in found:
        conversation.metadata = {**call.metadata, **conversation.metadata}
        conversation.customer = conversation.customer or call.customer
    return found


def discover(source: str | Path) -> list[CallInput]:
    """Interactions from a folder, a manifest (``.csv``), a chat CSV, or a single recording,
    e-mail file, mbox archive or chat file."""
    src = Path(source).expanduser().absolute()  # recorded paths stay valid from any working folder
    if src.is_dir():
        return discover_folder(src)
    suffix = src.suffix.lower()
    if src.is_file() and suffix == ".csv":
        from pipeline.ingest.chat import is_chat_csv

        return written_conversations([src], set()) if is_chat_csv(src) else read_manifest(src)
    if src.is_file() and suffix in WRITTEN_EXTENSIONS:
        from pipeline.ingest.written import ChatFormatError

        return written_conversations([src], set()) or [
            CallInput(call_id=safe_call_id(src.stem), path=src, kind="chat",
                      problem=ChatFormatError(src, "not a chat: a JSON chat is a list of messages with time, "
                                              "sender, role and text (or an object with such a 'messages' list)"))]
    if src.is_file():
        return [CallInput(call_id=safe_call_id(src.stem), path=src)]
    kind = file_kind(src)
    if kind:
        raise InputError(f"{src}: is {kind}; give a folder, a manifest (.csv) or a recording")
    raise InputError(f"{src}: no such file or folder")
