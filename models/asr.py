"""Choose and load an ASR backend by name (once per process)."""

from __future__ import annotations

import os

from models.base import AsrBackend, AsrOptions
from models.backends import Registry

ASR_BACKENDS = Registry("asr.backend", {
    "faster-whisper": "models.asr_faster:FasterWhisperBackend",
    "openai-whisper": "models.asr_openai:OpenAIWhisperBackend",
})
"""The speech recognisers ``asr.backend`` chooses from (each an AsrBackend class)."""
BACKENDS = ASR_BACKENDS.names()


def default_threads(workers: int, cores: int | None = None) -> int:
    """The machine's cores (or ``cores``) shared evenly among worker processes."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def load_backend(options: AsrOptions, threads: int) -> AsrBackend:
    """Load the configured backend with ``threads`` CPU threads."""
    return ASR_BACKENDS.get(options.backend)(options, threads)


def preflight(options: AsrOptions) -> None:
    """Check before a batch starts that the configured model exists, so a bad path fails the
    run at once with a clear message instead of failing every call."""
    ASR_BACKENDS.get(options.backend).check_model(options)
