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
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CallError, InputError, ManifestRowError, NotRegularFileError


AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .mp4 .aac .wma .au .aif .aiff .caf .webm .amr".split()
)
MANIFEST_REQUIRED = ("path",)
MAX_CALL_ID_LEN = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    """The source kind that reads it (pipeline/ingest/sources.py): a ``recording`` today."""


def safe_call_id(name: str) -> str:
    """A call id usable as a folder name on every OS: ASCII letters, digits, ``._-``.

    Accents are folded (``café`` -> ``cafe``), other characters become ``_``; the id never
    starts with a dot or a dash. A name that keeps nothing becomes a hash of the name.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cid = _UNSAFE.sub("_", folded).strip("._-")
    if len(cid) > MAX_CALL_ID_LEN:
        cid = cid[: MAX_CALL_ID_LEN - 9] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return cid or "call_" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def file_kind(path: Path) -> str | None:
    """None for a regular file (or a link to one); otherwise what the path is ("a FIFO (named
    pipe)", "a socket", "a device", "a folder"), or None when it does not exist (the reader
    reports that). Decided by ``stat`` alone: the file is never opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


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
    """Every audio file under ``root``, in a stable order, with unique call ids from the stems.

    A FIFO, socket or device with an audio extension is listed as a failed call
    (:class:`NotRegularFileError`) and never opened; links to regular files are followed.
    """
    paths: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if not _is_hidden(name) and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                paths.append(Path(dirpath) / name)
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
    return calls


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
        call = CallInput(call_id=cid, path=path, metadata=metadata)
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
    return calls


def discover(source: str | Path) -> list[CallInput]:
    """Calls from a folder, a manifest (``.csv``) or a single recording."""
    src = Path(source).expanduser().absolute()  # recorded paths stay valid from any working folder
    if src.is_dir():
        return discover_folder(src)
    if src.is_file() and src.suffix.lower() == ".csv":
        return read_manifest(src)
    if src.is_file():
        return [CallInput(call_id=safe_call_id(src.stem), path=src)]
    kind = file_kind(src)
    if kind:
        raise InputError(f"{src}: is {kind}; give a folder, a manifest (.csv) or a recording")
    raise InputError(f"{src}: no such file or folder")
