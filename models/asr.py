"""Choose and load an ASR backend by name (once per process)."""

from __future__ import annotations

import os

from models.base import AsrBackend, AsrOptions
from models.errors import ConfigError

BACKENDS = ("faster-whisper", "openai-whisper")


def default_threads(workers: int, cores: int | None = None) -> int:
    """The machine's cores (or ``cores``) shared evenly among worker processes."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def load_backend(options: AsrOptions, threads: int) -> AsrBackend:
    """Load the configured backend with ``threads`` CPU threads."""
    if options.backend == "faster-whisper":
        from models.asr_faster import FasterWhisperBackend

        return FasterWhisperBackend(options, threads)
    if options.backend == "openai-whisper":
        from models.asr_openai import OpenAIWhisperBackend

        return OpenAIWhisperBackend(options, threads)
    raise ConfigError(f"asr.backend: '{options.backend}' is not one of {', '.join(BACKENDS)}")


def preflight(options: AsrOptions) -> None:
    """Check before a batch starts that the configured model exists, so a bad path fails the
    run at once with a clear message instead of failing every call."""
    if options.backend == "faster-whisper":
        from models.registry import ct2_model_dir

        ct2_model_dir(options.model)
    elif options.backend == "openai-whisper":
        from models.ct2_convert import openai_checkpoint

        openai_checkpoint(options.model)
    else:
        raise ConfigError(f"asr.backend: '{options.backend}' is not one of {', '.join(BACKENDS)}")
