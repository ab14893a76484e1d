"""Labelled calls: the format the evaluation harness reads, loaded and checked.

A labelled data folder ``DATA`` holds recordings and, for each, ``DATA/labels/<call_id>.json``::

    DATA/
      manifest.csv            optional: call_id,path,... as for ``callqa run`` (agent_channel,
                              queue, company... are used as in a run); without it every
                              recording under DATA is a call, its id the file name's stem
      c001.wav ...
      labels/c001.json        the truth for call c001
      labels/c001.rttm        optional: reference speaker turns (NIST RTTM); without it the
                              label file's utterances are the reference

``labels/<call_id>.json`` is a mapping::

    {
      "utterances": [                       # what was said, in any order
        {"role": "agent" | "customer",      # who said it
         "speaker": "S0",                   # optional: speaker label (default: the role)
         "channel": 0,                      # optional: 0 left / mono, 1 right
         "start": 1.36, "end": 6.26,        # seconds from the start of the recording
         "text": "Good morning, thank you for calling ..."}
      ],
      "pii": [                              # optional: the personal data said
        {"utterance": 3,                    # index in "utterances" as written
         "text": "four five six seven",     # exactly as in that utterance's text
         "type": "ACCOUNT_NUMBER",          # a type of pipeline/pii/text.py (PERSON, DATE_OF_BIRTH ...)
         "occurrence": 0}                   # optional: which occurrence of the text (default 0)
      ],
      "scorecard": {"opening.greeting": "yes", "closing.thanks": "na", ...},
                                            # item id -> yes | no | na; items left out are not scored
      ...                                   # other keys (agent_name, company, notes) are kept, not used
    }

Either part may be missing: a call without ``utterances`` is left out of the transcription and
speaker figures, one without ``scorecard`` out of the scorecard figures, one without ``pii`` out of the PII
figures (``pii: []`` says the call has none; each gold utterance then carries its spans as
``pii``: type and character range). Every problem in a label
file is a :class:`LabelError` naming the file and where in it; the harness reports that call as
failed and carries on with the others.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import CallError, InputError
from pipeline.ingest.discover import CallInput, discover

LABELS_DIR = "labels"
MANIFEST = "manifest.csv"
ROLES = ("agent", "customer")
ANSWERS = ("yes", "no", "na")


class LabelError(CallError):
    """A label file cannot be used (names the file and the place in it)."""


@dataclass
class CallLabels:
    """The truth of one call."""

    call_id: str
    utterances: list[dict[str, Any]] | None
    """Gold utterances sorted by start: role, speaker, channel, start, end, text (None: no
    transcript labelled)."""
    scorecard: dict[str, str]
    rttm: list[tuple[float, float, str]] | None
    sha256: str
    """Hash of the label file and the RTTM file (part of the data hash)."""
    contact_reason: str | None = None
    """The customer's sentence that says why they called (None: not labelled)."""
    outcome: str | None = None
    """How the call ended: resolved, follow_up, escalated, transferred or unresolved (None: not labelled)."""

    def reference_turns(self) -> tuple[list[tuple[float, float, str]], str] | None:
        """Reference speaker turns and their source (``rttm`` or ``labels``), or None."""
        if self.rttm is not None:
            return self.rttm, "rttm"
        if self.utterances is not None:
            return [(u["start"], u["end"], u["speaker"]) for u in self.utterances], "labels"
        return None


@dataclass
class Dataset:
    """A labelled data folder: the calls, their labels, and what could not be used."""

    root: Path
    calls: list[CallInput]
    labels: dict[str, CallLabels] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """call id -> why the call cannot be evaluated (a label or manifest error)."""
    unlabelled: list[str] = field(default_factory=list)
    """Calls without a label file (left out)."""
    orphans: list[str] = field(default_factory=list)
    """Label files without a recording."""

    def sha256(self, audio_sha256: dict[str, str]) -> str:
        """Hash of the data: every evaluated call's id, recording hash, label hash and the
        manifest columns, so the same data gives the same hash wherever it lives."""
        h = hashlib.sha256()
        for call in sorted(self.calls, key=lambda c: c.call_id):
            if call.call_id not in self.labels:
                continue
            meta = json.dumps(call.metadata, sort_keys=True)
            h.update(f"{call.call_id}\t{audio_sha256.get(call.call_id, '')}\t"
                     f"{self.labels[call.call_id].sha256}\t{meta}\n".encode())
        return h.hexdigest()


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {value!r} is not a number of seconds >= 0")
    return float(value)


def _attach_pii(raw: Any, utterances: list[dict[str, Any]]) -> None:
    """Give each gold utterance its PII spans (``pii``: type, first_char, end_char) from the
    label file's ``pii`` list; nothing when the file has none. ValueError naming the entry."""
    from pipeline.pii.text import ENTITY_TYPES

    if raw is None:
        return
    if not isinstance(raw, list):
        raise ValueError("'pii' must be a list of {utterance, text, type}")
    for u in utterances:
        u["pii"] = []
    for k, p in enumerate(raw):
        where = f"pii[{k}]"
        if not isinstance(p, dict):
            raise ValueError(f"{where}: must be a mapping with utterance, text and type")
        i, text, kind, nth = p.get("utterance"), p.get("text"), p.get("type"), p.get("occurrence", 0)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(utterances):
            raise ValueError(f"{where}.utterance: {i!r} is not an index of 'utterances' (0 to {len(utterances) - 1})")
        if kind not in ENTITY_TYPES:
            raise ValueError(f"{where}.type: {kind!r} is not one of {', '.join(ENTITY_TYPES)}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}.text: must be the words as written in the utterance")
        if isinstance(nth, bool) or not isinstance(nth, int) or nth < 0:
            raise ValueError(f"{where}.occurrence: {nth!r} is not an integer >= 0")
        at = -1
        for _ in range(nth + 1):
            at = utterances[i]["text"].find(text, at + 1)
            if at < 0:
                raise ValueError(f"{where}.text: {text!r} is not said {nth + 1} time(s) in utterances[{i}]")
        utterances[i]["pii"].append({"type": kind, "first_char": at, "end_char": at + len(text)})


def parse_labels(call_id: str, data: Any, path: Path) -> tuple[list[dict[str, Any]] | None, dict[str, str]]:
    """The gold utterances and scorecard answers of a parsed label file; LabelError naming
    ``path`` and the place of the first problem."""
    try:
        if not isinstance(data, dict):
            raise ValueError("the top level must be a mapping with 'utterances' and/or 'scorecard'")
        utterances = None
        if data.get("utterances") is not None:
            raw = data["utterances"]
            if not isinstance(raw, list):
                raise ValueError("'utterances' must be a list")
            utterances = []
            for i, u in enumerate(raw):
                where = f"utterances[{i}]"
                if not isinstance(u, dict):
                    raise ValueError(f"{where}: must be a mapping")
                role = u.get("role")
                if role not in ROLES:
                    raise ValueError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
                start, end = _number(u.get("start"), f"{where}.start"), _number(u.get("end"), f"{where}.end")
                if end < start:
                    raise ValueError(f"{where}: end {end} is before start {start}")
                text = u.get("text", "")
                if not isinstance(text, str):
                    raise ValueError(f"{where}.text: must be a string")
                speaker = u.get("speaker") or role
                if not isinstance(speaker, str):
                    raise ValueError(f"{where}.speaker: must be a string")
                channel = u.get("channel")
                if channel is not None and channel not in (0, 1):
                    raise ValueError(f"{where}.channel: {channel!r} is not 0 or 1")
                utterances.append({"role": role, "speaker": speaker, "channel": channel,
                                   "start": start, "end": end, "text": text})
            _attach_pii(data.get("pii"), utterances)
            utterances.sort(key=lambda u: (u["start"], u["end"]))
        elif data.get("pii") is not None:
            raise ValueError("'pii' needs 'utterances' (its spans name them by index)")
        answers = data.get("scorecard") or {}
        if not isinstance(answers, dict):
            raise ValueError("'scorecard' must be a mapping of item id to yes, no or na")
        for item, answer in answers.items():
            if answer not in ANSWERS:
                raise ValueError(f"scorecard.{item}: {answer!r} is not one of {', '.join(ANSWERS)}")
        return utterances, {str(k): v for k, v in answers.items()}
    except ValueError as e:
        raise LabelError(path, f"label file of call {call_id}: {e}") from e


def load_call_labels(call_id: str, labels_dir: Path) -> CallLabels | None:
    """The labels of ``call_id`` (None when it has no label file)."""
    from pipeline.evaluation.measures import read_rttm

    path = labels_dir / f"{call_id}.json"
    if not path.is_file():
        return None
    h = hashlib.sha256()
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise LabelError(path, f"cannot read label file: {e}") from e
    h.update(raw)
    utterances, answers = parse_labels(call_id, data, path)
    rttm_path = labels_dir / f"{call_id}.rttm"
    rttm = None
    if rttm_path.is_file():
        try:
            h.update(rttm_path.read_bytes())
            rttm = read_rttm(rttm_path)
        except InputError as e:
            raise LabelError(rttm_path, str(e).removeprefix(f"{rttm_path}: ")) from e
        except OSError as e:
            raise LabelError(rttm_path, f"cannot read RTTM file: {e.strerror or e}") from e
    reason, outcome = parse_contact(call_id, data, path)
    return CallLabels(call_id, utterances, answers, rttm, h.hexdigest(), reason, outcome)


def parse_contact(call_id: str, data: Any, path: Path) -> tuple[str | None, str | None]:
    """A label file's ``contact_reason`` and ``outcome`` (each None when absent); LabelError
    naming ``path`` for a wrong value."""
    from pipeline.evaluation.contact_eval import check_outcome

    try:
        reason = data.get("contact_reason")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("contact_reason: must be a string")
        return (reason or None), check_outcome(data.get("outcome"))
    except ValueError as e:
        raise LabelError(path, f"label file of call {call_id}: {e}") from e


def load_dataset(root: str | Path) -> Dataset:
    """The calls of a labelled folder and their labels (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of labelled calls (recordings and labels/<call_id>.json)")
    labels_dir = root / LABELS_DIR
    if not labels_dir.is_dir():
        raise InputError(f"{root}: no '{LABELS_DIR}' folder; labelled data keeps labels/<call_id>.json "
                         f"beside the recordings (see the README, 'Labelled data')")
    manifest = root / MANIFEST
    calls = discover(manifest if manifest.is_file() else root)
    dataset = Dataset(root, calls)
    for call in calls:
        if call.problem is not None:
            dataset.problems[call.call_id] = f"{type(call.problem).__name__}: {call.problem}"
            continue
        try:
            labels = load_call_labels(call.call_id, labels_dir)
        except LabelError as e:
            dataset.problems[call.call_id] = f"LabelError: {e}"
            continue
        if labels is None:
            dataset.unlabelled.append(call.call_id)
        else:
            dataset.labels[call.call_id] = labels
    ids = {c.call_id for c in calls}
    dataset.orphans = sorted(p.stem for p in labels_dir.glob("*.json") if p.stem not in ids)
    if not dataset.labels and not dataset.problems:
        raise InputError(f"{root}: none of its {len(calls)} recording(s) has a label file in {labels_dir}")
    return dataset
