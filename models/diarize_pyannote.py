"""The ``pyannote`` diarization backend: a pyannote.audio pipeline kept on local disk.

For users who have pyannote.audio installed (``pip install pyannote.audio``, an optional
extra, not a callqa dependency) and a pipeline directory on disk (its ``config.yaml`` and the
model checkpoints it names). The pipeline is loaded with ``Pipeline.from_pretrained(path)``
from that path only: the Hugging Face hub is kept offline (``HF_HUB_OFFLINE=1``), and
pyannote.audio's usage telemetry is switched off before it is imported
(``PYANNOTE_METRICS_ENABLED=0``, then ``set_telemetry_metrics(False)`` where it exists, as
pyannote.audio 4 documents).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.base import SAMPLE_RATE
from models.vad import SpeechRegion
from models.diarize import DiarizationOptions, Diarizer, SpeakerTurn, number_by_appearance, validate
from models.errors import ConfigError

TELEMETRY_ENV = "PYANNOTE_METRICS_ENABLED"
"""pyannote.audio's telemetry switch; read when pyannote.audio is imported."""

PIPELINE_CONFIG = "config.yaml"
MISSING_PACKAGE = ("diarization.backend: 'pyannote' needs the Python package 'pyannote.audio', which is not "
                   "installed (pip install pyannote.audio), or use the default backend 'embedding'")


def pipeline_path(path: str) -> Path:
    """The pipeline's directory or config.yaml, or a ConfigError naming the path."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"diarization.pyannote_pipeline: {p} does not exist (give the local directory of a "
                          f"pyannote.audio pipeline, holding its {PIPELINE_CONFIG})")
    if p.is_dir() and not (p / PIPELINE_CONFIG).is_file():
        raise ConfigError(f"diarization.pyannote_pipeline: {p} has no {PIPELINE_CONFIG}, so it is not a "
                          "pyannote.audio pipeline directory")
    return p


def check_available(path: str | None) -> Path:
    """The pipeline's directory or config.yaml, found before any call without importing
    pyannote.audio (seconds of torch imports): the path exists and the package is installed."""
    found = pipeline_path(path or "")
    try:
        installed = importlib.util.find_spec("pyannote.audio") is not None
    except (ImportError, ValueError):  # no pyannote namespace at all
        installed = False
    if not installed:
        raise ConfigError(MISSING_PACKAGE)
    return found


def telemetry_off() -> None:
    """Switch pyannote.audio's telemetry off: the environment variable (before import) and,
    with pyannote.audio 4, its session switch."""
    os.environ[TELEMETRY_ENV] = "0"
    try:
        from pyannote.audio.telemetry import set_telemetry_metrics
    except ImportError:  # pyannote.audio 3 has no telemetry
        return
    set_telemetry_metrics(False)


def annotation_turns(annotation: Any) -> list[SpeakerTurn]:
    """A pyannote.core Annotation as SpeakerTurns (speakers renamed S0, S1, ... by first
    appearance)."""
    return number_by_appearance(
        [(float(seg.start), float(seg.end), label) for seg, _, label in annotation.itertracks(yield_label=True)]
    )


class PyannoteDiarizer(Diarizer):
    """A pyannote.audio pipeline loaded once from the local directory
    ``diarization.pyannote_pipeline``."""

    def __init__(self, options: DiarizationOptions, threads: int):
        validate(options)
        self.path = pipeline_path(options.pyannote_pipeline or "")
        self.options = options
        os.environ["HF_HUB_OFFLINE"] = "1"
        telemetry_off()
        try:
            from pyannote.audio import Pipeline
        except ImportError as e:
            raise ConfigError(MISSING_PACKAGE) from e
        import torch

        torch.set_num_threads(threads)
        try:
            self.pipeline = Pipeline.from_pretrained(self.path)
        except Exception as e:  # noqa: BLE001 - any failure to load is a bad pipeline directory
            raise ConfigError(f"diarization.pyannote_pipeline: cannot load the pipeline in {self.path}: {e}") from e
        if self.pipeline is None:
            raise ConfigError(f"diarization.pyannote_pipeline: {self.path} gave no pipeline")

    def diarize(self, audio: np.ndarray, regions: list[SpeechRegion] | None = None) -> list[SpeakerTurn]:
        """Speaker turns of ``audio`` (float32 mono 16 kHz; ``regions`` are ignored: the
        pipeline finds speech itself)."""
        audio = np.asarray(audio[0 : audio.size], dtype=np.float32).reshape(-1)
        if audio.size == 0:
            return []
        import torch

        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)[None, :])
        output = self.pipeline(
            {"waveform": waveform, "sample_rate": SAMPLE_RATE},
            min_speakers=self.options.min_speakers,
            max_speakers=self.options.max_speakers,
        )
        # pyannote.audio 4 returns a DiarizeOutput; its exclusive diarization (no overlapping
        # turns) suits word-level speaker assignment. pyannote.audio 3 returns the Annotation.
        for name in ("exclusive_speaker_diarization", "speaker_diarization"):
            if getattr(output, name, None) is not None:
                return annotation_turns(getattr(output, name))
        return annotation_turns(output)

    def describe(self) -> dict[str, Any]:
        import torch

        return {
            "backend": "pyannote",
            "pipeline": str(self.path),
            "pipeline_class": f"{type(self.pipeline).__module__}.{type(self.pipeline).__qualname__}",
            "package": f"pyannote.audio {_version('pyannote.audio')}",
            "torch": torch.__version__,
            "telemetry": os.environ.get(TELEMETRY_ENV),
        }


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
