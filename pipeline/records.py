"""Typed records handed between stages, and their JSON form.

Times are in seconds from the start of the recording, rounded to milliseconds when written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _r(t: float) -> float:
    return round(float(t), 3)


@dataclass
class Word:
    """One recognised word with its time span and the recogniser's probability."""

    word: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "start": _r(self.start),
            "end": _r(self.end),
            "probability": round(float(self.probability), 4),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Word":
        return cls(d["word"], d["start"], d["end"], d.get("probability", 1.0))


@dataclass
class Segment:
    """A stretch of recognised speech as the ASR backend returns it (one channel)."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


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
