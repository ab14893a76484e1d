"""The records a speech recogniser returns: recognised words and segments of one channel, and
their JSON form (times in seconds from the start of the recording, rounded to milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
