"""Typed errors. Every error about an input names the file it is about.

The batch runner catches :class:`CallError` (and its subclasses) per call, records
``type(err).__name__`` and ``str(err)`` in ``run.json`` and carries on with the next call.
"""

from __future__ import annotations

from pathlib import Path

from models.errors import (  # noqa: F401  (the shared errors, re-exported: one class each)
    DISK_FULL_ERRNOS, CallqaError, ConfigError, DiskFullError, check_options, coerce_value, is_disk_full,
)


# Exit codes of the callqa command (documented in `callqa --help` and the README).
EXIT_OK = 0
"""Every call succeeded (or was already done)."""
EXIT_ERROR = 1
"""callqa itself failed unexpectedly."""
EXIT_USAGE = 2
"""Bad command line, config or input (nothing was processed)."""
EXIT_CALLS_FAILED = 3
"""The batch finished but some calls failed; run.json lists them with their errors."""
EXIT_DISK_FULL = 4
"""Stopped because the disk is full; finished calls are kept and a re-run resumes."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C; a re-run resumes."""


class InputError(CallqaError):
    """The batch input (folder or manifest) cannot be read at all."""


class CallError(CallqaError):
    """Processing one call failed; the batch records it and carries on."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class ManifestRowError(CallError):
    """A manifest row cannot be processed (missing file, duplicate or unsafe call_id, or an id
    whose result folder belongs to another row)."""


class AudioError(CallError):
    """A recording cannot be used as audio."""


class NotRegularFileError(AudioError):
    """The path is a FIFO (named pipe), socket, device or folder, not a file; it is not opened
    (reading a FIFO would block the batch)."""


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
