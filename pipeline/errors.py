"""Typed errors. Every error about an input names the file it is about.

The batch runner catches :class:`CallError` (and its subclasses) per call, records
``type(err).__name__`` and ``str(err)`` in ``run.json`` and carries on with the next call.
"""

from __future__ import annotations

from pathlib import Path


# Exit codes of the callqa command (documented in `callqa --help` and the README).
EXIT_OK = 0
"""Every call succeeded (or was already done)."""
EXIT_ERROR = 1
"""callqa itself failed unexpectedly."""
EXIT_USAGE = 2
"""Bad command line, config or input (nothing was processed)."""
EXIT_CALLS_FAILED = 3
"""The batch finished but some calls failed; run.json lists them with their errors."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C; a re-run resumes."""


class CallqaError(Exception):
    """Base class of every error callqa raises on purpose."""


class ConfigError(CallqaError):
    """A configuration file or override is invalid (names file, key and what is allowed)."""


def check_options(section: str, options: object, checks: list[tuple[bool, str, str]]) -> None:
    """Raise ConfigError for the first failed check ``(ok, key, what is allowed)`` of a config
    section's options, naming ``section.key``, its value and what is allowed."""
    for ok, key, allowed in checks:
        if not ok:
            raise ConfigError(f"{section}.{key}: {getattr(options, key)!r} is not allowed; use {allowed}")


class InputError(CallqaError):
    """The batch input (folder or manifest) cannot be read at all."""


class CallError(CallqaError):
    """Processing one call failed; the batch records it and carries on."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class AudioError(CallError):
    """A recording cannot be used as audio."""


class NotAudioError(AudioError):
    """The file holds no audio stream a decoder recognises (text, image, random bytes...)."""


class EmptyFileError(AudioError):
    """The file has zero bytes."""


class ZeroLengthAudioError(AudioError):
    """The file is valid audio but holds no samples."""


class CorruptAudioError(AudioError):
    """Decoding failed part-way: damaged data inside the stream."""


class TruncatedAudioError(CorruptAudioError):
    """The file ends before the length its header declares (an interrupted copy or upload)."""


class TooManyChannelsError(AudioError):
    """More than two channels: callqa handles mono and stereo (agent/customer) recordings."""


class TooLongError(AudioError):
    """The recording is longer than ``audio.max_duration_s``."""


class TranscriptionError(CallError):
    """The speech recogniser failed on this call."""
