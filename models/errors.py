"""The errors every layer shares: the base of every error callqa raises on purpose, invalid
settings (:class:`ConfigError`, naming file, key and what is allowed), and a full disk. The
model adapters raise these; ``pipeline.errors`` adds the errors of calls and inputs.
"""

from __future__ import annotations

import errno
import types
import typing
from pathlib import Path
from typing import Any


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


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is dict:
        return "a mapping"
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    args = typing.get_args(tp)
    if args:
        return " or ".join("null" if a is type(None) else a.__name__ for a in args)
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def coerce_value(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against a field type (bool, int, float, str, list of one of these, a
    mapping of names to strings or to such mappings, or X | None); ConfigError naming ``where`` otherwise."""
    if typing.get_origin(tp) is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {value!r} is not {_type_name(tp)}")
        inner = typing.get_args(tp)[0]
        return [coerce_value(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if typing.get_origin(tp) is dict:
        inner = typing.get_args(tp)[1] if len(typing.get_args(tp)) == 2 else str
        if typing.get_origin(inner) is dict:  # a mapping of names to mappings of names to strings
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{where}: {value!r} is not a mapping of names to mappings of names to strings")
            return {k: coerce_value(v, inner, f"{where}.{k}") for k, v in value.items()}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{where}: {value!r} is not a mapping of names to strings")
        return dict(value)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce_value(value, inner[0], where) if len(inner) == 1 else value
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise ConfigError(f"{where}: {value!r} is not {_type_name(tp)}")
    return float(value) if tp is float else value


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
