"""The errors every layer shares: the base of every error callqa raises on purpose, invalid
settings (:class:`ConfigError`, naming file, key and what is allowed), and a full disk. The
model adapters raise these; ``pipeline.errors`` adds the errors of calls and inputs.
"""

from __future__ import annotations

import errno
from pathlib import Path


class CallqaError(Exception):
    """Base class of every error callqa raises on purpose."""


class ConfigError(CallqaError):
    """A configuration file or override is invalid (names file, key and what is allowed)."""


def check_options(section: str, options: object, checks: list[tuple[bool, str, str]]) -> None:
    """Raise ConfigError for the first failed check ``(ok, key, what is allowed)`` of a config
    section's options, naming ``section.key``, its value and what is allowed."""
    for ok, key, allowed in checks:
        if not ok:
            value = getattr(options, key)
            shown = "null" if value is None else repr(value)  # as it is written in YAML
            raise ConfigError(f"{section}.{key}: {shown} is not allowed; use {allowed}")


class DiskFullError(CallqaError):
    """A result could not be written because the disk (or the user's quota) is full. The run
    stops cleanly: what is written stays valid, and a re-run after freeing space resumes."""

    def __init__(self, path: str | Path, detail: str = ""):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: disk full, cannot write{' (' + detail + ')' if detail else ''}; "
                         "free some space and run again (finished calls are kept)")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # raised in worker processes
        return (type(self), (self.path, self.detail))


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException) -> bool:
    """Whether an OSError says the disk (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS
