"""Chats: one conversation per JSON file, or many conversations in one CSV file.

**JSON**, one conversation per file: a list of messages
``{"time": ISO 8601, "sender": str, "role": "agent"|"customer"|"system", "text": str}``, or an
object ``{"messages": [...], ...}`` whose other keys (``conversation_id``, ``agent_id``,
``queue``, ...) are the conversation's metadata. A message may also say ``"auto_reply": true``
(a bot's automatic answer: no one answered) and give its ``id``.

**CSV** with the columns ``conversation_id,time,sender,role,text`` (any order, more columns
allowed): many conversations per file, the rows of one conversation need not be adjacent;
the other columns are kept as the conversation's metadata (the first non-empty value of each).
:func:`scan_chat_csv` reads the file once and gives one :class:`ChatRef` per conversation (its
hash, size, where its rows start), never holding the text; :func:`read_chat_csv` reads one
conversation from its ref.

Defined behaviours (each noted on the message and on the thread):

- a time without a timezone is read as UTC;
- messages out of time order are sorted by time (stably: messages of the same time keep the
  order of the file);
- a missing or unknown role is taken from the same sender's other messages when they have one
  (the most frequent, when they have several);
- a message whose text is empty (only white space) is left out; a conversation with no message
  left is :class:`EmptyConversationError`;
- a system message (role ``system``) is kept, with role system;
- a CSV line that is not UTF-8 is read as latin-1.

Errors are :class:`ChatFormatError` naming the file and the message (``message 3``) or the CSV
line (``line 12``): invalid JSON or not a chat structure, a message without text or sender, a
time missing or not ISO 8601, a role that is missing or unknown and cannot be taken from the
sender's other messages.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from pipeline.ingest.written import (
    WRITTEN_ROLES, ChatFormatError, EmptyConversationError, Message, WrittenInputError,
    WrittenThread,
)

CHAT_KIND = "chat"
CHAT_COLUMNS = ("conversation_id", "time", "sender", "role", "text")
"""The columns a chat CSV must have (in any order; other columns are metadata)."""

_SNIFF_BYTES = 64 * 1024
"""How much of a .json file :func:`is_chat_json` reads to decide."""
_SNIFF_MAX_BYTES = 16 * 1024 * 1024
"""A .json file whose first :data:`_SNIFF_BYTES` do not decide is parsed whole up to this size
(larger ones are not chats)."""
_WS = " \t\r\n"


# --------------------------------------------------------------------------- sniffing


def _regular_file(path: Path) -> bool:
    try:
        return path.is_file()  # follows links; a FIFO, socket or device is not opened
    except OSError:
        return False


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _sniff_json(s: str) -> bool | None:
    """Whether JSON text ``s`` (possibly the start of a file) is a chat; None when ``s`` ends
    before that is decided. Raises ValueError/IndexError on text that is not JSON."""
    dec = json.JSONDecoder()
    s = s.lstrip("\ufeff" + _WS)
    if s.startswith("["):
        i = _skip_ws(s, 1)
        if i >= len(s):
            return None
        if s[i] != "{":
            return False  # empty list, or a list of something else
        first, _ = dec.raw_decode(s, i)
        return isinstance(first, dict) and "text" in first
    if s.startswith("{"):
        i = 1
        while True:
            i = _skip_ws(s, i)
            if i >= len(s):
                return None
            if s[i] == "}":
                return False
            key, i = dec.raw_decode(s, i)
            if not isinstance(key, str):
                return False
            i = _skip_ws(s, i)
            if i >= len(s):
                return None
            if s[i] != ":":
                return False
            i = _skip_ws(s, i + 1)
            if i >= len(s):
                return None
            if key == "messages":
                return s[i] == "["
            _, i = dec.raw_decode(s, i)  # another key's value: skipped
            i = _skip_ws(s, i)
            if i >= len(s):
                return None
            if s[i] == ",":
                i += 1
            else:
                return False
    return False


def _is_chat_structure(obj: Any) -> bool:
    if isinstance(obj, list):
        return bool(obj) and isinstance(obj[0], dict) and "text" in obj[0]
    return isinstance(obj, dict) and isinstance(obj.get("messages"), list)


def is_chat_json(path: str | Path) -> bool:
    """Whether a .json file holds a chat: a top-level list whose (first) element is an object
    with ``text``, or an object with a ``messages`` list. Decided from the first 64 KiB when
    they suffice (the file is parsed whole otherwise, up to 16 MiB): a file that starts as a
    chat is one even when its JSON breaks later (:func:`read_chat_json` then reports it rather
    than the conversation being skipped unseen). Anything else (a labels file, a config, JSON
    that breaks before it looks like a chat, an unreadable file, a FIFO) is False; it never
    raises."""
    p = Path(path)
    if not _regular_file(p):
        return False
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        complete = len(head) >= size
        try:
            verdict = _sniff_json(head.decode("utf-8", "replace"))
        except (ValueError, IndexError, RecursionError):
            verdict = False if complete else None
        if verdict is None and not complete and size <= _SNIFF_MAX_BYTES:
            return _is_chat_structure(json.loads(p.read_bytes()))
        return bool(verdict)
    except (OSError, ValueError, RecursionError):
        return False


def _header_columns(header: list[str]) -> list[str]:
    return [c.lstrip("\ufeff").strip() for c in header]


def is_chat_csv(path: str | Path) -> bool:
    """Whether a .csv file is a chat export: its header has the columns
    ``conversation_id,time,sender,role,text`` (case and surrounding spaces ignored). Never
    raises."""
    p = Path(path)
    if not _regular_file(p):
        return False
    try:
        with open(p, "rb") as f:
            first = f.readline(_SNIFF_BYTES)
        header = next(csv.reader([first.decode("utf-8-sig")]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    names = {c.lower() for c in _header_columns(header)}
    return all(c in names for c in CHAT_COLUMNS)


# --------------------------------------------------------------------------- messages


@dataclass
class _Raw:
    """One message as read, before the conversation's rules (roles, order) are applied."""

    where: str
    """``message 3`` / ``line 12`` (for errors and notes)."""
    origin: str
    time: datetime
    sender: str
    text: str
    role: str | None
    role_given: str
    """The role as written ("" when missing)."""
    auto_reply: bool = False
    message_id: str | None = None
    naive_time: bool = False
    """Its time had no timezone (read as UTC)."""
    notes: list[str] = field(default_factory=list)


def _parse_time(value: Any, path: Path, where: str) -> tuple[datetime, bool]:
    """The time of a message (aware) and whether it had no timezone (then read as UTC)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ChatFormatError(path, f"{where}: no time")
    if not isinstance(value, str):
        raise ChatFormatError(path, f"{where}: time {value!r} is not ISO 8601 text (e.g. 2026-03-02T14:05:00Z)")
    text = value.strip()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        t = None
    if t is None or not any(sep in text for sep in ("T", "t", " ")):  # a date alone is not a time
        raise ChatFormatError(path, f"{where}: time {value!r} is not ISO 8601 (e.g. 2026-03-02T14:05:00Z)")
    if t.tzinfo is None or t.utcoffset() is None:
        return t.replace(tzinfo=timezone.utc), True
    return t, False


def _raw_message(item: dict[str, Any], path: Path, where: str, origin: str) -> _Raw:
    """Check one message's fields (text, sender, time, role) and read them."""
    text = item.get("text")
    if text is None:
        raise ChatFormatError(path, f"{where}: no text")
    if not isinstance(text, str):
        raise ChatFormatError(path, f"{where}: text is not a string ({type(text).__name__})")
    sender = item.get("sender")
    if isinstance(sender, (int, float)) and not isinstance(sender, bool):
        sender = str(sender)
    if not isinstance(sender, str) or not sender.strip():
        raise ChatFormatError(path, f"{where}: no sender")
    t, naive = _parse_time(item.get("time"), path, where)
    given = item.get("role")
    given_s = "" if given is None else str(given).strip()
    role = given_s.lower() if given_s.lower() in WRITTEN_ROLES else None
    auto = item.get("auto_reply")
    ident = item.get("id", item.get("message_id"))
    is_auto = auto is True or (isinstance(auto, str) and auto.strip().lower() == "true")
    raw = _Raw(where=where, origin=origin, time=t, sender=sender.strip(), text=text.strip(), role=role,
               role_given=given_s, auto_reply=is_auto,
               message_id=None if ident is None or ident == "" else str(ident), naive_time=naive)
    if naive:
        raw.notes.append("time without a timezone: read as UTC")
    return raw


def _wheres(raws: list[_Raw]) -> str:
    shown = ", ".join(r.where for r in raws[:5])
    return shown + (f" and {len(raws) - 5} more" if len(raws) > 5 else "")


def _thread(path: Path, conversation_id: str, raws: list[_Raw], notes: list[str]) -> WrittenThread:
    """The conversation's rules applied to its messages as read: roles taken from the sender's
    other messages, empty messages left out, time order; the thread with its notes."""
    naive = [r for r in raws if r.naive_time]
    if naive:
        notes.append(f"{len(naive)} message(s) with a time without a timezone, read as UTC ({_wheres(naive)})")
    blank = [r for r in raws if not r.text]
    if blank:
        notes.append(f"{len(blank)} message(s) without text left out ({_wheres(blank)})")
    # roles: the sender's other messages (all of them, the empty ones too) decide
    known: dict[str, Counter[str]] = {}
    for r in raws:
        if r.role:
            known.setdefault(r.sender, Counter())[r.role] += 1
    kept = [r for r in raws if r.text]
    if not kept:
        raise EmptyConversationError(path, f"conversation {conversation_id!r} has no message with text")
    inferred: list[_Raw] = []
    for r in kept:
        if r.role:
            continue
        counts = known.get(r.sender)
        what = f"role {r.role_given!r} is not agent, customer or system" if r.role_given else "no role"
        if not counts:
            raise ChatFormatError(path, f"{r.where}: {what}, and sender {r.sender!r} has no other message with a role")
        ranked = counts.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            raise ChatFormatError(path, f"{r.where}: {what}, and sender {r.sender!r}'s other messages have the roles "
                                        f"{' and '.join(sorted(counts))} as often")
        r.role = ranked[0][0]
        r.notes.append(f"{what}: taken as {r.role}, from the sender's other messages")
        inferred.append(r)
    if inferred:
        notes.append(f"{len(inferred)} message(s) with a missing or unknown role: role taken from the same "
                     f"sender's other messages ({_wheres(inferred)})")
    ordered = sorted(kept, key=lambda r: r.time)  # stable: equal times keep the file's order
    if any(a is not b for a, b in zip(ordered, kept)):
        notes.append("messages out of time order: sorted by time (equal times keep the file's order)")
    messages = [
        Message(time=r.time, sender=r.sender, text=r.text, role=r.role, name=r.sender, auto_reply=r.auto_reply,
                message_id=r.message_id, origin=r.origin, notes=list(r.notes))
        for r in ordered
    ]
    return WrittenThread(kind=CHAT_KIND, conversation_id=conversation_id, messages=messages,
                         origins=[str(path)], notes=notes)


def _metadata_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- JSON


def read_chat_json(path: Path, conversation_id: str) -> tuple[WrittenThread, dict[str, str]]:
    """The chat of a JSON file, as the conversation ``conversation_id``, and its metadata (the
    object's keys other than ``messages``, each as a string: text as it is, other values as
    JSON; none for a list). :class:`ChatFormatError` / :class:`EmptyConversationError` name
    the file and the message."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise ChatFormatError(path, f"cannot read: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ChatFormatError(path, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except (ValueError, RecursionError) as e:  # not UTF-8/16/32, or nested too deeply
        raise ChatFormatError(path, f"not valid JSON: {e}") from e
    if isinstance(data, list):
        items, metadata = data, {}
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        items = data["messages"]
        metadata = {str(k): _metadata_value(v) for k, v in data.items() if k != "messages"}
    else:
        raise ChatFormatError(path, "not a chat: expected a list of messages or an object with a \"messages\" list "
                                    "(each {\"time\", \"sender\", \"role\", \"text\"})")
    raws: list[_Raw] = []
    for n, item in enumerate(items, start=1):
        where = f"message {n}"
        if not isinstance(item, dict):
            raise ChatFormatError(path, f"{where}: not an object with time, sender, role and text")
        raws.append(_raw_message(item, path, where, f"{path} {where}"))
    return _thread(path, conversation_id, raws, []), metadata


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class ChatRef:
    """Where one conversation of a chat CSV is: enough to read it again, and to know whether it
    changed (picklable: it goes to the worker that reads it)."""

    conversation_id: str
    path: Path
    sha256: str
    """Hash of the file's header line and the conversation's rows (their bytes, in file order):
    it changes with them and only with them."""
    size: int
    """Bytes of the conversation's rows."""
    n_messages: int
    """Its rows (messages with empty text included)."""
    first_line: int
    """The line its first row starts on (the header is line 1)."""
    offset: int = 0
    """The byte offset of its first row (reading starts there)."""


class _Lines:
    """The physical lines of a CSV file opened in binary, decoded for the csv reader; keeps the
    raw bytes of the record being read, its first line and whether a line was not UTF-8."""

    def __init__(self, f: IO[bytes], line: int = 0, offset: int = 0):
        self.f = f
        self.line = line
        """The last line read (1-based)."""
        self.offset = offset
        self.raw: list[bytes] = []
        self.latin1: list[int] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        b = self.f.readline()
        if not b:
            raise StopIteration
        self.raw.append(b)
        self.line += 1
        self.offset += len(b)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            self.latin1.append(self.line)
            return b.decode("latin-1")

    def start(self) -> tuple[int, int]:
        """Forget the last record; the line and offset where the next one starts."""
        self.raw.clear()
        self.latin1.clear()
        return self.line + 1, self.offset

    def record(self) -> bytes:
        return b"".join(self.raw)


def _read_header(path: Path, f: IO[bytes]) -> tuple[list[str], dict[str, int], bytes]:
    """The header's column names, the index of each chat column, and the header's bytes."""
    lines = _Lines(f)
    try:
        header = next(csv.reader(lines), [])
    except csv.Error as e:
        raise ChatFormatError(path, f"line 1: cannot read the header: {e}") from e
    names = _header_columns(header)
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name.lower(), i)
    missing = [c for c in CHAT_COLUMNS if c not in index]
    if missing:
        raise ChatFormatError(path, f"line 1: a chat CSV needs the columns {','.join(CHAT_COLUMNS)}; "
                                    f"missing {', '.join(missing)}")
    return names, index, lines.record()


_Row = tuple[list[str], int, int, bytes, list[int]]
"""A CSV record: its fields, first line, byte offset, raw bytes, and the lines read as latin-1."""


def _rows(path: Path, f: IO[bytes], lines: _Lines) -> Iterator[_Row | ChatFormatError]:
    """Each non-blank record from the current position: (fields, first line, offset, raw bytes,
    lines read as latin-1), or the error of a record the csv reader refused (it carries on)."""
    reader = csv.reader(lines)
    while True:
        first_line, offset = lines.start()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield ChatFormatError(path, f"line {first_line}: {e}; the row is left out")
            continue
        if not row:
            continue  # a blank line
        yield row, first_line, offset, lines.record(), list(lines.latin1)


def _cell(row: list[str], i: int) -> str:
    return row[i] if i < len(row) else ""


def scan_chat_csv(path: Path) -> tuple[list[ChatRef], list[WrittenInputError]]:
    """The conversations of a chat CSV, read once (memory bounded by the number of
    conversations, not their text): one :class:`ChatRef` each, in the order of their first
    rows. A row without a conversation_id, or one the csv reader refuses, is an error naming
    the file and the line, and the scan carries on; a file that cannot be read or lacks the
    chat columns is the only error (no refs). Rows are checked further when read."""
    path = Path(path)
    errors: list[WrittenInputError] = []
    found: dict[str, dict[str, Any]] = {}
    try:
        with open(path, "rb") as f:
            _names, index, header_bytes = _read_header(path, f)
            lines = _Lines(f, line=1, offset=len(header_bytes))
            cid_at = index["conversation_id"]
            for item in _rows(path, f, lines):
                if isinstance(item, ChatFormatError):
                    errors.append(item)
                    continue
                row, first_line, offset, raw, _ = item
                cid = _cell(row, cid_at).strip()
                if not cid:
                    errors.append(ChatFormatError(path, f"line {first_line}: no conversation_id; the row is left out"))
                    continue
                conv = found.get(cid)
                if conv is None:
                    h = hashlib.sha256()
                    h.update(header_bytes)
                    conv = found[cid] = {"hash": h, "size": 0, "n": 0, "line": first_line, "offset": offset}
                conv["hash"].update(raw)
                conv["size"] += len(raw)
                conv["n"] += 1
    except OSError as e:
        return [], [ChatFormatError(path, f"cannot read: {e.strerror or e}")]
    except ChatFormatError as e:
        return [], [e]
    refs = [ChatRef(conversation_id=cid, path=path, sha256=c["hash"].hexdigest(), size=c["size"], n_messages=c["n"],
                    first_line=c["line"], offset=c["offset"])
            for cid, c in found.items()]
    return refs, errors


def read_chat_csv(ref: ChatRef) -> tuple[WrittenThread, dict[str, str]]:
    """The conversation ``ref`` of a chat CSV, and its metadata: the columns other than the
    five chat columns, each the first non-empty value among its rows (a column whose rows
    differ is noted on the thread). Reads from the conversation's first row to its last.
    :class:`ChatFormatError` / :class:`EmptyConversationError` name the file and the line;
    :class:`WrittenInputError` when the conversation's rows changed since the scan."""
    path = ref.path
    raws: list[_Raw] = []
    metadata: dict[str, str] = {}
    meta_line: dict[str, int] = {}
    notes: list[str] = []
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            names, index, header_bytes = _read_header(path, f)
            h.update(header_bytes)
            extra = [(i, n) for i, n in enumerate(names) if n.lower() not in CHAT_COLUMNS and n]
            f.seek(ref.offset)
            lines = _Lines(f, line=ref.first_line - 1, offset=ref.offset)
            for item in _rows(path, f, lines):
                if isinstance(item, ChatFormatError):
                    continue  # the scan left it out too (its conversation is not known)
                row, first_line, _offset, raw, latin1 = item
                if _cell(row, index["conversation_id"]).strip() != ref.conversation_id:
                    continue
                h.update(raw)
                where = f"line {first_line}"
                fields = {c: _cell(row, index[c]) for c in CHAT_COLUMNS}
                msg = _raw_message(fields, path, where, f"{path} {where}")
                if latin1:
                    msg.notes.append(f"line {', '.join(map(str, latin1))} not UTF-8: read as latin-1")
                raws.append(msg)
                for i, name in extra:
                    value = _cell(row, i).strip()
                    if not value:
                        continue
                    if not metadata.get(name):
                        metadata[name], meta_line[name] = value, first_line
                    elif metadata[name] != value:
                        notes.append(f"column {name}: line {first_line} says {value!r}, kept {metadata[name]!r} "
                                     f"(line {meta_line[name]})")
                if len(raws) == ref.n_messages:
                    break
            for _i, name in extra:
                metadata.setdefault(name, "")
    except OSError as e:
        raise ChatFormatError(path, f"cannot read: {e.strerror or e}") from e
    if len(raws) != ref.n_messages or h.hexdigest() != ref.sha256:
        raise WrittenInputError(path, f"conversation {ref.conversation_id!r} changed since the file was scanned "
                                      f"(line {ref.first_line}); scan it again")
    latin = [r for r in raws if any("latin-1" in n for n in r.notes)]
    if latin:
        notes.append(f"{len(latin)} row(s) not UTF-8, read as latin-1 ({_wheres(latin)})")
    return _thread(path, ref.conversation_id, raws, notes), metadata
