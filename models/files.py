"""Writing a file so that it appears whole or not at all (a temp file beside the target, then a
rename): a reader, or a re-run after a crash, sees the previous complete file or the new one,
never a half-written one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from models.errors import DiskFullError, is_disk_full

TMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: str | bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all.

    ``durable`` also flushes to disk before the rename (for the files that mark a call done).
    A full disk raises :class:`DiskFullError` and leaves the previous file as it was.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if is_disk_full(e):
            raise DiskFullError(path, e.strerror or str(e)) from e
        raise
