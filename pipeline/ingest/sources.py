"""The source seam: where an interaction comes from, and what every source gives the analysis.

A *source* reads one interaction of its kind and yields a :class:`Conversation`: attributed
utterances (speaker, role, words with their times), the participants and their roles, and the
facts of the interaction (its length, whether its parties were on separate channels, where it
came from). The one analysis stage (pipeline/analysis/stage.py) takes a Conversation whatever
its source, so a detector or a scorecard item is written once for every channel; detectors that
need timing say which sources they apply to (``Detector.sources``).

Source kinds (pipeline/interaction/record.py): ``recording`` (a file: decoded, transcribed,
diarized; pipeline/run/recording.py), the written ``email`` and ``chat`` conversations
(pipeline/run/written.py), and next a live ``stream``. :data:`SOURCES` names the class of each; the call processor builds one of
each kind it meets, once per worker, and it keeps its models for the worker's life.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from models.backends import Registry
from pipeline.ingest.discover import CallInput
from pipeline.interaction.record import AUDIO_SOURCES, CHAT, EMAIL, RECORDING, SourceInfo
from pipeline.interaction.utterances import Utterance


@dataclass
class Conversation:
    """One interaction as a source gives it to the analysis stage."""

    source: SourceInfo
    """Where it came from (written as the record's ``source``)."""
    utterances: list[Utterance]
    """In time order, each with its speaker and role (roles by the automatic decision, before
    any manual override)."""
    speakers: dict[str, Any]
    """Participants and their roles: the record's ``speakers`` block."""
    separate_channels: bool = False
    """Each party on a channel of its own (a stereo recording, a stream's two tracks)."""
    models: dict[str, Any] = field(default_factory=dict)
    """Provenance of the models that produced the utterances."""
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds of each step the source took."""
    cache: str | None = None
    """The stage cache's part: ``hit``, ``miss``, ``off``; None for a source without one."""
    audio: Callable[[], Any] | None = None
    """The decoded audio (channels x samples at 16 kHz), read when called (for the redacted
    copy a reviewer plays); None for a source without audio."""
    messages: list[Any] | None = None
    """A written conversation's messages (pipeline/ingest/written.py), message n being
    utterance ``m{n:03d}``; None for a source without messages."""

    @property
    def duration_s(self) -> float:
        return float(self.source.duration_s or 0.0)


class Source(ABC):
    """Reads interactions of one kind (built once per worker, with the run's config)."""

    kind: ClassVar[str] = ""
    uses_scratch: ClassVar[bool] = True
    """Whether ``open`` writes to its scratch folder (decoded audio); a source that does not
    is given the folder's path without the folder being made."""

    @property
    def has_audio(self) -> bool:
        return self.kind in AUDIO_SOURCES

    @abstractmethod
    def open(self, call: CallInput, sha256: str, scratch: Path) -> AbstractContextManager[Conversation]:
        """The interaction ``call`` as a Conversation, for the duration of the block; ``scratch``
        is an empty folder of its own (decoded audio goes there), removed after the block
        (only its path when the source does not ``uses_scratch``). A
        :class:`~pipeline.errors.CallError` names what is wrong with the input."""

    def describe(self) -> dict[str, Any]:
        """Provenance of the models the source has used."""
        return {}


SOURCES = Registry("source kind", {
    RECORDING: "pipeline.run.recording:RecordingSource",
    EMAIL: "pipeline.run.written:EmailSource",
    CHAT: "pipeline.run.written:ChatSource",
})
"""The class reading each source kind (a Source subclass taking ``(config, work_dir, threads)``)."""

