"""Output files: written atomically (a temp file beside the target, then a rename).

A reader, or a re-run after a crash, sees either the previous complete file or the new
complete file, never a half-written one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

from models.files import TMP_PREFIX, write_atomic  # noqa: F401  (re-exported: the one atomic write)
from pipeline.interaction.utterances import Utterance


def write_json(path: Path, obj: Any, durable: bool = False) -> None:
    write_atomic(path, json_text(obj) + "\n", durable=durable)


def json_text(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``, character for character, made about
    twice as fast: with an indent the standard library encodes in Python through one
    generator per nesting level, and a call's record nests its words four levels deep. What
    JSON cannot hold (another type, a circular reference) is left to ``json.dumps``, which
    raises its own error."""
    parts: list[str] = []
    try:
        _encode(obj, parts, "\n")
    except (TypeError, ValueError, RecursionError):
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return "".join(parts)


_string = json.encoder.encode_basestring  # ensure_ascii=False: the C version where there is one
_int = int.__repr__
_float_repr = float.__repr__
_INF = float("inf")


def _float(o: float) -> str:
    """A float as the json module writes it (allow_nan: NaN and Infinity as JavaScript names)."""
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return _float_repr(o)


def _scalar(o: Any) -> str | None:
    """The JSON of a value that is not a container (in the json module's order of checks:
    bool before int), None for a list, tuple or dict; TypeError for anything else."""
    if isinstance(o, str):
        return _string(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return _int(o)
    if isinstance(o, float):
        return _float(o)
    if isinstance(o, (list, tuple, dict)):
        return None
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _key(k: Any) -> str:
    """A dict key as the json module turns it into a string."""
    if isinstance(k, str):
        return _string(k)
    if isinstance(k, float):
        return _string(_float(k))
    if k is True or k is False or k is None:
        return _string({True: "true", False: "false", None: "null"}[k])
    if isinstance(k, int):
        return _string(_int(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


_INLINE = {str: _string, float: _float, int: _int}
"""The exact types written in place, without a call of :func:`_encode` (most of a record)."""


def _item(head: str, v: Any, parts: list[str], inner: str) -> None:
    """Append a container's item: ``head`` (its separator, and its key in a dict), then ``v``."""
    write = _INLINE.get(type(v))
    if write is not None:
        parts.append(head + write(v))
    else:
        parts.append(head)
        _encode(v, parts, inner)


def _encode(o: Any, parts: list[str], newline: str) -> None:
    """Append the JSON of ``o`` to ``parts``; ``newline`` is a line break and the indent of
    the line ``o`` starts on (two spaces a level, items after ",", keys followed by ": ").
    Strings, floats and ints inside a container (most of a record) are written in place."""
    text = _scalar(o)
    if text is not None:
        parts.append(text)
        return
    inner = newline + "  "
    if isinstance(o, dict):
        if not o:
            parts.append("{}")
            return
        sep = "{" + inner
        for k, v in o.items():
            _item(sep + (_string(k) if type(k) is str else _key(k)) + ": ", v, parts, inner)
            sep = "," + inner
        parts.append(newline + "}")
        return
    if not o:
        parts.append("[]")
        return
    sep = "[" + inner
    for v in o:
        _item(sep, v, parts, inner)
        sep = "," + inner
    parts.append(newline + "]")


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files a killed process left behind."""
    if folder.is_dir():
        for p in folder.glob(TMP_PREFIX + "*"):
            p.unlink(missing_ok=True)


def _clock(t: float, sep: str) -> str:
    ms = int(round(max(0.0, t) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def speaker_label(u: Utterance, channels: int) -> str | None:
    """Who speaks: the role once known, else the speaker, else the channel of a stereo call."""
    if u.role:
        return u.role
    if u.speaker:
        return u.speaker
    if channels > 1:
        return "left" if u.channel == 0 else "right"
    return None


def to_txt(utterances: Iterable[Utterance], channels: int) -> str:
    lines = []
    for u in utterances:
        who = speaker_label(u, channels)
        prefix = f"{who}: " if who else ""
        lines.append(f"[{_clock(u.start, '.')} - {_clock(u.end, '.')}] {prefix}{u.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def to_srt(utterances: Iterable[Utterance], channels: int) -> str:
    blocks = []
    for i, u in enumerate(utterances, 1):
        who = speaker_label(u, channels)
        text = f"{who}: {u.text}" if who else u.text
        blocks.append(f"{i}\n{_clock(u.start, ',')} --> {_clock(u.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(utterances: Iterable[Utterance], channels: int) -> str:
    blocks = ["WEBVTT\n"]
    for u in utterances:
        who = speaker_label(u, channels)
        text = _vtt_escape(u.text)
        if who:
            text = f"<v {_vtt_escape(who)}>{text}"
        blocks.append(f"{u.id}\n{_clock(u.start, '.')} --> {_clock(u.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def _rttm_name(role: str | None, speaker: str | None) -> str:
    """The RTTM speaker name: the role (``unknown-S2`` for a speaker with no role, so two
    unknown speakers stay apart)."""
    return role if role and role != "unknown" else f"unknown-{speaker or 'S?'}"


def speech_turns(speakers: dict[str, Any] | None) -> list[tuple[float, float, str]] | None:
    """The speech turns (start, end, speaker) a speakers block keeps (pipeline/speakers/stage.py:
    ``turns``; under ``automatic`` when a manual override replaced the block), None when it
    keeps none (a record written before turns were kept, or a source without them)."""
    if not speakers:
        return None
    turns = speakers.get("turns")
    if turns is None:
        turns = (speakers.get("automatic") or {}).get("turns")
    return None if turns is None else [(float(t[0]), float(t[1]), str(t[2])) for t in turns]


def to_rttm(utterances: Iterable[Utterance], call_id: str, speakers: dict[str, Any] | None = None) -> str:
    """NIST RTTM speaker turns; the speaker name is the role (``unknown-S2`` for a speaker
    with no role, so two unknown speakers stay apart). The turns are the speech turns of the
    ``speakers`` block (``speech_turns``: where each speaker talks, overlapping where two do),
    named by its ``roles``; without them, the utterances' spans."""
    turns = speech_turns(speakers)
    lines = []
    if turns is not None:
        roles = (speakers or {}).get("roles") or {}
        spans = [(start, end, _rttm_name(roles.get(speaker), speaker)) for start, end, speaker in turns]
    else:
        spans = [(u.start, u.end, _rttm_name(u.role, u.speaker)) for u in utterances]
    for start, end, who in spans:
        if end <= start:
            continue
        lines.append(f"SPEAKER {call_id} 1 {start:.3f} {end - start:.3f} <NA> <NA> {who} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


TRANSCRIPT_FILES = ("transcript.txt", "transcript.srt", "transcript.vtt", "diarization.rttm", "thread.txt")


def to_thread_txt(utterances: Iterable[Utterance], messages: list[dict[str, Any]]) -> str:
    """A written conversation as its messages: number, time, who wrote it, subject,
    attachments, then the text (as written: PII masked)."""
    text_of = {u.id: u.text for u in utterances}
    parts = []
    for m in messages:
        who = m["role"] + (f" ({m['name']})" if m.get("name") else "") + (", automatic reply" if m.get("auto_reply") else "")
        lines = [f"[{m['n']}] {m['time']}  {who}"]
        if m.get("subject"):
            lines.append(f"Subject: {m['subject']}")
        for a in m.get("attachments", []):
            lines.append(f"Attachment: {a['name']} ({a['size']} bytes)")
        lines.append(text_of.get(m["utterance_id"], ""))
        if m.get("signature"):
            lines.append(m["signature"])
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + ("\n" if parts else "")


def write_thread(folder: Path, utterances: list[Utterance], messages: list[dict[str, Any]], call_id: str) -> None:
    """thread.txt and transcript.txt beside call.json for a written conversation (no subtitle
    or RTTM file: it has no audio)."""
    for name in TRANSCRIPT_FILES[1:4]:
        (folder / name).unlink(missing_ok=True)  # from an earlier run of another kind
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "transcript.txt", to_txt(utterances, 1))
    write_atomic(folder / "thread.txt", to_thread_txt(utterances, messages))


def write_transcripts(folder: Path, utterances: list[Utterance], channels: int, call_id: str,
                      speakers: dict[str, Any] | None = None) -> None:
    """transcript.txt, .srt, .vtt and diarization.rttm beside call.json (the RTTM from the
    speech turns of the ``speakers`` block when it keeps them, see ``to_rttm``)."""
    write_atomic(folder / "transcript.txt", to_txt(utterances, channels))
    write_atomic(folder / "transcript.srt", to_srt(utterances, channels))
    write_atomic(folder / "transcript.vtt", to_vtt(utterances, channels))
    write_atomic(folder / "diarization.rttm", to_rttm(utterances, call_id, speakers))
    (folder / "thread.txt").unlink(missing_ok=True)


def remove_transcripts(folder: Path) -> None:
    for name in TRANSCRIPT_FILES:
        (folder / name).unlink(missing_ok=True)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Text a spreadsheet would run as a formula when it begins a cell."""


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: None empty, a list joined with "; ", and text that begins with
    = + - @ (or a tab or carriage return) prefixed with ' so that a spreadsheet shows it rather
    than running it (a customer's words in a contact reason, an agent id)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = "; ".join("" if v is None else str(v) for v in value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(rows: Iterable[Any], columns: list[str] | tuple[str, ...], *, line_end: str = "\n") -> str:
    """CSV text: the header, then each row (a mapping, read at ``columns``, or a sequence of
    cells in their order), every cell through :func:`csv_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=line_end)
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        cells = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
        writer.writerow([csv_cell(v) for v in cells])
    return buf.getvalue()


def write_csv(path: Path, rows: Iterable[Any], columns: list[str] | tuple[str, ...]) -> None:
    """:func:`csv_text` written atomically (private: mode 0600)."""
    write_atomic(path, csv_text(rows, columns))
