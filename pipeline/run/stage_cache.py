"""The speech-stage cache: a call's transcript and speakers kept by their inputs.

The costly part of a call is its *speech stage*: decoding, transcription, diarization and the
role decision. Its result depends only on the recording (its sha256), the options of the
sections ``audio``, ``vad``, ``asr``, ``speakers``, ``diarization`` and ``roles`` (not the
thread count, not where manual overrides live), the manifest columns the speaker stage reads
(``agent_channel``, ``queue``, ``company``) and the callqa version. :func:`speech_key` hashes
exactly those, so a change to a detector, the scorecard, sentiment, conversation metrics or
PII options finds every call in the cache and only re-runs the analysis; a change to any of
the former misses it and redoes the call.

An entry is one gzipped JSON file, ``ROOT/speech/<key[:2]>/<key>.json.gz``, written atomically;
an unreadable entry counts as a miss and is replaced. Entries hold unredacted words (the
analysis needs them), so the cache is off in ``callqa run`` unless ``run.stage_cache`` names a
folder; the evaluation harness (``callqa eval``) always uses one.

The manual speaker override is applied after the cache (``pipeline.speakers.stage.with_override``),
so flipping the roles of a scored call re-scores it from the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.interaction.utterances import AudioInfo, Utterance
from pipeline.interaction.writers import write_atomic

log = logging.getLogger("callqa")

SPEECH_SECTIONS = ("audio", "vad", "asr", "speakers", "diarization", "roles")
SPEECH_METADATA = ("agent_channel", "queue", "company")
"""Manifest columns the speaker stage reads (pipeline/speakers/stage.py)."""
FORMAT = 1


def speech_config(config: Any) -> dict[str, Any]:
    """The options that decide a call's speech stage (what :func:`speech_key` hashes)."""
    d = config.to_dict()
    out = {s: d[s] for s in SPEECH_SECTIONS}
    out["asr"] = {k: v for k, v in out["asr"].items() if k != "threads"}
    out["speakers"] = {k: v for k, v in out["speakers"].items() if k != "overrides_file"}
    return out


def speech_key(config: Any, sha256: str, metadata: dict[str, str]) -> str:
    """Cache key of a call's speech stage: recording, stage options, the speaker stage's
    manifest columns, callqa version."""
    blob = json.dumps({
        "format": FORMAT, "callqa": __version__, "sha256": sha256, "config": speech_config(config),
        "metadata": {k: metadata.get(k) or "" for k in SPEECH_METADATA},
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class SpeechResult:
    """A call after the speech stage: attributed utterances (roles by the automatic decision,
    before any manual override), the speakers block, and what the audio was."""

    info: AudioInfo
    channels: int
    """Channels as transcribed: 2 for real stereo, 1 for mono or a folded-down stereo call."""
    utterances: list[Utterance]
    speakers: dict[str, Any]
    models: dict[str, Any] = field(default_factory=dict)
    """Provenance of the models that produced it."""
    seconds: float = 0.0
    """Time the stage took when it was computed."""
    cached: bool = False
    """True when this came from the cache."""
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds of each step (decode, vad, asr, diarization, speakers) when computed in this
    run; empty for a cached result."""

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "info": self.info.to_dict(), "channels": self.channels,
                "utterances": [u.to_dict() for u in self.utterances], "speakers": self.speakers,
                "models": self.models, "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], cached: bool = False) -> "SpeechResult":
        return cls(AudioInfo(**d["info"]), int(d["channels"]), [Utterance.from_dict(u) for u in d["utterances"]],
                   d["speakers"], d.get("models", {}), float(d.get("seconds", 0.0)), cached)

    def normalised(self) -> "SpeechResult":
        """This result as it reads back from the cache (times to the millisecond, copies of
        everything), so that a fresh result and a cached one give identical answers."""
        return SpeechResult.from_dict(json.loads(json.dumps(self.to_dict())), self.cached)


class StageCache:
    """Speech-stage results under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / "speech" / key[:2] / f"{key}.json.gz"

    def get(self, key: str) -> SpeechResult | None:
        path = self.path(key)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
            if data.get("format") != FORMAT:
                return None
            return SpeechResult.from_dict(data, cached=True)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            log.warning("stage cache: ignoring unreadable entry %s (%s)", path, e)
            return None

    def put(self, key: str, result: SpeechResult) -> None:
        raw = json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        write_atomic(self.path(key), gzip.compress(raw, compresslevel=5, mtime=0))
