"""The interaction record: what callqa writes for every call or written conversation
(``OUT/calls/<id>/call.json``), and the one place that writes and reads it.

One record serves every source. ``source.kind`` says where the interaction came from (a
``recording`` read from a file, a live ``stream``, an ``email`` thread or a ``chat``), and
``channel`` says what kind of contact it is (``voice``, ``email``, ``chat``). Then come its
participants and their roles (``speakers``), the utterances with their words, and the blocks of
the analysis stage (``scorecard``, ``sentiment``, ``metrics``, ``pii``), with the provenance and
timing of the run that produced it. A failed interaction carries ``error`` instead.

Every record carries ``schema_version``. :meth:`Interaction.from_dict` reads any version this
callqa has written, migrating older ones step by step (:data:`MIGRATIONS`): call.json files
written before the version existed are version 1. Keys a reader does not know are kept as they
are (``extra``) and written back, so a newer file passes through an older reader unharmed.

The blocks below the top level are plain JSON mappings, documented in the README (Output);
:class:`Interaction` gives typed access to what readers use across the code (status, source,
roles, score, answers, agent).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import CallqaError
from pipeline.interaction.utterances import Utterance
from pipeline.interaction.writers import write_json

SCHEMA_VERSION = 2
"""Version of the record this callqa writes (1: call.json before the version was written)."""
RECORD_FILE = "call.json"

RECORDING, STREAM, EMAIL, CHAT = "recording", "stream", "email", "chat"
SOURCE_KINDS = (RECORDING, STREAM, EMAIL, CHAT)
"""Where an interaction comes from."""
AUDIO_SOURCES = frozenset({RECORDING, STREAM})
"""The sources with audio (and so with timing: silences, holds, interruptions, talk over)."""
CHANNEL_OF = {RECORDING: "voice", STREAM: "voice", EMAIL: "email", CHAT: "chat"}
"""The contact channel of each source kind."""

OK, FAILED = "ok", "failed"


class RecordError(CallqaError, ValueError):
    """A call.json that is not an interaction record this callqa can read (names the file)."""


@dataclass
class SourceInfo:
    """Where the interaction came from, and what its medium was (for audio: the recording as its
    container describes it)."""

    kind: str = RECORDING
    path: str = ""
    sha256: str = ""
    duration_s: float | None = None
    """Seconds from the first to the last moment of the interaction (a recording's length)."""
    sample_rate: int | None = None
    channels: int | None = None
    format: str | None = None
    codec: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """What a source adds of its own (kept as written)."""

    _OPTIONAL = ("duration_s", "sample_rate", "channels", "format", "codec")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "path": self.path, "sha256": self.sha256}
        for key in self._OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                d[key] = round(value, 3) if key == "duration_s" else value
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SourceInfo":
        known = {"kind", "path", "sha256", *cls._OPTIONAL}
        return cls(kind=d.get("kind", RECORDING), path=d.get("path", ""), sha256=d.get("sha256", ""),
                   **{k: d.get(k) for k in cls._OPTIONAL}, extra={k: v for k, v in d.items() if k not in known})


BLOCKS = ("scorecard", "sentiment", "metrics", "contact", "pii")
"""The analysis stage's blocks, in the order they are written (``contact``: the interaction
documented, pipeline/analysis/contact.py)."""


class Interaction:
    """One interaction's results (see the module docstring). Utterances are read from their
    JSON form on first use: readers that need only the scores (the review loader, over a
    year of calls) do not build them."""

    def __init__(self, call_id: str, status: str, source: SourceInfo, *, metadata: dict[str, Any] | None = None,
                 provenance: dict[str, Any] | None = None, processing: dict[str, Any] | None = None,
                 speakers: dict[str, Any] | None = None, utterances: list[Utterance] | None = None,
                 blocks: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                 channel: str | None = None, extra: dict[str, Any] | None = None):
        self.call_id = call_id
        self.status = status
        self.channel = channel or CHANNEL_OF.get(source.kind, "voice")
        self.source = source
        self.metadata: dict[str, Any] = metadata or {}
        self.provenance: dict[str, Any] = provenance or {}
        self.processing: dict[str, Any] = processing or {}
        self.error = error
        self.speakers = speakers
        """Participants and their roles: ``method``, ``roles`` (speaker -> agent / customer),
        ``confidence``, the evidence, and ``override`` / ``automatic`` after a manual override."""
        self._utterances = utterances
        self._utterance_dicts: list[dict[str, Any]] | None = None
        self.blocks: dict[str, Any] = dict(blocks or {})
        """The analysis stage's ``scorecard``, ``sentiment``, ``metrics`` and ``pii`` blocks."""
        self.extra: dict[str, Any] = extra or {}
        """Top-level keys this version does not know (kept as they are)."""

    # -- typed access ---------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def utterances(self) -> list[Utterance]:
        if self._utterances is None:
            self._utterances = [Utterance.from_dict(u) for u in self._utterance_dicts or []]
            self._utterance_dicts = None
        return self._utterances

    @utterances.setter
    def utterances(self, value: list[Utterance]) -> None:
        self._utterances, self._utterance_dicts = value, None

    def utterance_dicts(self) -> list[dict[str, Any]]:
        """The utterances in their JSON form (without building them when they were read)."""
        if self._utterances is None:
            return list(self._utterance_dicts or [])
        return [u.to_dict() for u in self._utterances]

    @property
    def scorecard(self) -> dict[str, Any] | None:
        return self.blocks.get("scorecard")

    @property
    def sentiment(self) -> dict[str, Any] | None:
        return self.blocks.get("sentiment")

    @property
    def metrics(self) -> dict[str, Any] | None:
        return self.blocks.get("metrics")

    @property
    def pii(self) -> dict[str, Any] | None:
        return self.blocks.get("pii")

    @property
    def contact(self) -> dict[str, Any] | None:
        """The interaction documented: contact reason, actions, outcome, follow-ups, mentions."""
        return self.blocks.get("contact")

    @property
    def started_at(self) -> str | None:
        """When the interaction started (ISO 8601): the manifest's ``started_at``, else (a
        written conversation) its first message's time."""
        given = self.metadata.get("started_at")
        if given:
            return str(given)
        first = self.source.extra.get("started_at") if self.channel in ("email", "chat") else None
        return first if isinstance(first, str) and first else None

    @property
    def customer_hash(self) -> str | None:
        """The customer's identity (caller number or e-mail address), hashed, when known."""
        value = self.source.extra.get("customer_hash") or self.metadata.get("customer_hash")
        return str(value) if value else None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The scorecard items as suggested (id, answer, confidence, evidence ...)."""
        return list((self.scorecard or {}).get("items") or [])

    @property
    def answers(self) -> dict[str, str]:
        """Item id -> the suggested answer."""
        return {i["id"]: i["answer"] for i in self.items}

    @property
    def score(self) -> float | None:
        """The suggested total score (0-1), None when the call was not scored."""
        return ((self.scorecard or {}).get("score") or {}).get("normalized")

    @property
    def roles(self) -> dict[str, str]:
        """Speaker (or channel speaker) -> role."""
        return dict((self.speakers or {}).get("roles") or {})

    @property
    def participants(self) -> list[dict[str, str]]:
        """The speakers heard (or writers read), each with its role, in order of id."""
        return [{"id": s, "role": r} for s, r in sorted(self.roles.items())]

    @property
    def override(self) -> str | None:
        """The manual speaker override the roles were set by, if any."""
        return (self.speakers or {}).get("override")

    @property
    def config_hash(self) -> str | None:
        return self.provenance.get("config_hash")

    @property
    def agent_id(self) -> str | None:
        return self.metadata.get("agent_id") or None

    @property
    def duration_s(self) -> float:
        return float(self.source.duration_s or 0.0)

    # -- JSON form ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "call_id": self.call_id, "status": self.status,
            "channel": self.channel, "source": self.source.to_dict(), "metadata": self.metadata,
            "provenance": self.provenance, "processing": self.processing,
        }
        if self.error is not None:
            d["error"] = self.error
        if self.speakers is not None:
            d["speakers"] = self.speakers
        d["utterances"] = self.utterance_dicts()
        for name in BLOCKS:
            if name in self.blocks:
                d[name] = self.blocks[name]
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, data: Any, where: str = "call.json") -> "Interaction":
        """The record in ``data`` (any version this callqa wrote: older ones are migrated);
        RecordError naming ``where`` when it is not one."""
        d = migrate(data, where)
        try:
            known = {"schema_version", "call_id", "status", "channel", "source", "metadata", "provenance",
                     "processing", "error", "speakers", "utterances", *BLOCKS}
            for key in ("call_id", "status"):
                if not isinstance(d[key], str) or not d[key]:
                    raise ValueError(f"{key} {d[key]!r} is not a name")
            record = cls(
                d["call_id"], d["status"], SourceInfo.from_dict(d.get("source") or {}),
                metadata=dict(d.get("metadata") or {}), provenance=dict(d.get("provenance") or {}),
                processing=dict(d.get("processing") or {}), speakers=d.get("speakers"),
                blocks={k: d[k] for k in BLOCKS if k in d}, error=d.get("error"), channel=d.get("channel"),
                extra={k: v for k, v in d.items() if k not in known},
            )
            utterances = d.get("utterances") or []
            if not isinstance(utterances, list):
                raise TypeError("utterances is not a list")
            record._utterance_dicts = utterances
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise RecordError(f"{where}: not an interaction record ({type(e).__name__}: {e})") from e
        return record

    @classmethod
    def load(cls, path: str | Path) -> "Interaction":
        """Read a call.json; RecordError (naming it) when it cannot be read or is not a record."""
        path = Path(path)
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            raise RecordError(f"{path}: cannot read the interaction record: {e}") from e
        return cls.from_dict(data, str(path))

    def save(self, folder: Path) -> Path:
        """Write the record as ``folder/call.json``, atomically and durably."""
        path = folder / RECORD_FILE
        write_json(path, self.to_dict(), durable=True)
        return path


# -- versions ---------------------------------------------------------------------------------


def _v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no version written) held recorded calls only: their source is a recording
    and their channel voice."""
    out: dict[str, Any] = {"schema_version": 2}
    out.update({k: d[k] for k in ("call_id", "status") if k in d})
    out["channel"] = "voice"
    out["source"] = {"kind": RECORDING, **(d.get("source") or {})}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
"""From version N to N + 1."""


def migrate(data: Any, where: str = "call.json") -> dict[str, Any]:
    """``data`` brought to :data:`SCHEMA_VERSION`; RecordError for what is not a record or is
    of a version newer than this callqa."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: not an interaction record (not a JSON object)")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"{where}: schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise RecordError(f"{where}: written by a newer callqa (schema_version {version}; this one reads up to "
                          f"{SCHEMA_VERSION}): upgrade callqa to read it")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data


def record_path(out_dir: Path, call_id: str) -> Path:
    """Where the record of ``call_id`` lives in a run's output folder."""
    return out_dir / "calls" / call_id / RECORD_FILE
