"""What every reader of input files shares: result ids safe on every OS, and what kind of file a path is."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path

MAX_CALL_ID_LEN = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
