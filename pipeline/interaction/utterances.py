"""Typed records handed between stages, and their JSON form.

Times are in seconds from the start of the recording, rounded to milliseconds when written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.records import Segment, Word, _r  # noqa: F401  (the recogniser's records, re-exported)


@dataclass
class Utterance:
    """A segment of one channel's speech in the call, with its words.

    ``channel`` is 0 (left / mono) or 1 (right). Later stages add ``speaker`` and ``role``.
    """

    id: str
    channel: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "channel": self.channel,
            "start": _r(self.start),
            "end": _r(self.end),
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.role is not None:
            d["role"] = self.role
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Utterance":
        return cls(
            id=d["id"],
            channel=d["channel"],
            start=d["start"],
            end=d["end"],
            text=d["text"],
            words=[Word.from_dict(w) for w in d.get("words", [])],
            speaker=d.get("speaker"),
            role=d.get("role"),
        )


@dataclass
class AudioInfo:
    """What the container says about a recording (read before decoding)."""

    path: str
    format: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = _r(self.duration_s)
        return d
