"""What to process: the calls of a folder, a manifest CSV, or a single file.

A folder is searched recursively for files with an audio extension (hidden files and folders
are left out). A manifest is a CSV with at least ``path`` (relative to the manifest's folder or
absolute) and usually ``call_id,agent_id,queue,started_at``; every other column is kept as
metadata. Problems with one row (missing file, duplicate or unsafe call_id) fail that call
only; an unreadable manifest fails the whole input.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CallError, InputError

AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .mp4 .aac .wma .au .aif .aiff .caf .webm .amr".split()
)
MANIFEST_REQUIRED = ("path",)
MAX_CALL_ID_LEN = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ManifestRowError(CallError):
    """A manifest row cannot be processed (missing file, duplicate or unsafe call_id)."""


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
    pipeline/speakers.py), set by the runner."""


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


def discover_folder(root: Path) -> list[CallInput]:
    """Every audio file under ``root``, in a stable order, with unique call ids from the stems."""
    paths: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if not _is_hidden(name) and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                paths.append(Path(dirpath) / name)
    calls: list[CallInput] = []
    seen: dict[str, int] = {}
    for p in paths:
        base = safe_call_id(p.stem)
        cid = base
        if base in seen:
            rel = str(p.relative_to(root))
            cid = f"{base}-{hashlib.sha256(rel.encode()).hexdigest()[:8]}"
        seen[base] = seen.get(base, 0) + 1
        calls.append(CallInput(call_id=cid, path=p))
    return calls


def read_manifest(manifest: Path) -> list[CallInput]:
    """The calls a manifest CSV lists. Row problems are attached to the call, not raised."""
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
    seen: set[str] = set()
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
        if not raw_path:
            call.problem = ManifestRowError(manifest, f"line {lineno}: empty path")
            call.call_id = cid if raw_id else f"row{lineno}"
        elif raw_id and safe_call_id(raw_id) != raw_id:
            call.problem = ManifestRowError(
                path, f"{where}: call_id {raw_id!r} may only hold letters, digits, '.', '_' and '-'"
            )
            call.call_id = safe_call_id(raw_id)
        elif cid in seen:
            call.problem = ManifestRowError(path, f"{where}: duplicate call_id {cid!r}")
            call.call_id = f"{cid}-line{lineno}"
        elif not path.exists():
            call.problem = ManifestRowError(path, f"{where}: file not found")
        seen.add(call.call_id)
        calls.append(call)
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
    raise InputError(f"{src}: no such file or folder")
