"""E-mail threads: ``.eml`` files (one message each) and ``.mbox`` archives read as conversations.

Three steps, each usable alone:

1. :func:`scan_email_files` streams over the files and reads only the header block of each
   message: an :class:`EmailRef` per message (where it is, its threading headers, its hash), a
   :class:`~pipeline.ingest.written.MalformedEmailError` per file or message that is not e-mail.
   An mbox is split at its ``From `` lines (a ``From `` line after a blank line, or an
   asctime-style envelope ``From sender Mon Jun  3 10:00:00 2024`` anywhere, followed by a
   header line) as it is read, never held in memory whole.
2. :func:`thread_refs` rebuilds the conversations from Message-ID / In-Reply-To / References
   (JWZ-style: every linked id joins, so replies whose parent is missing still join the
   siblings that name the same root); the normalised subject joins only a message with no link
   at all, to a thread sharing a participant within 30 days. Each :class:`EmailThreadRef` has a
   stable, unique conversation id, the hash of its content and its size, and its messages'
   places packed in 32 bytes each. :func:`~pipeline.ingest.email_index.thread_email_files` does steps 1 and 2 for an input of
   any size with the same result: the headers go to an on-disk index, threading works on
   integer columns (:mod:`pipeline.ingest.email_index`).
3. :func:`read_email_thread` parses the messages of one thread into a
   :class:`~pipeline.ingest.written.WrittenThread`: the body (text/plain preferred, HTML turned
   into text), charsets, attachments listed by name and size (never kept), the quoted history
   and the signature set apart from what the message adds (:func:`split_reply`), auto-replies
   marked, roles given.

Defined behaviours (noted on the message or the thread):

- the sha256 of a message is taken over its bytes with line ends as LF and the mbox
  ``>From`` escaping undone, so the same message in an ``.eml`` and in an mbox has one hash;
- duplicate Message-IDs: an identical copy is left out, different messages are both kept;
- a References cycle is cut at its earliest message; an automatic reply answering an
  automatic reply is left out (a reply loop between two auto-responders);
- an unknown charset is read as UTF-8 (or windows-1252 when the text is not UTF-8), a wrong one
  as UTF-8 or windows-1252, undecodable bytes replaced; ISO-8859-1 is read as windows-1252, as
  mail clients do;
- a message without a Date has the time of the message before it (or its file's time);
- a message with a header block and no body at all is not a message (a truncated export).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.ingest.paths import file_kind, safe_call_id
from pipeline.ingest.written import (
    AGENT, CUSTOMER, Attachment, EmptyConversationError, MalformedEmailError, Message, WrittenInputError,
    WrittenThread,
)

EMAIL_KIND = "email"
SUBJECT_WINDOW = timedelta(days=30)
"""How far apart in time a message joined by its subject alone may be from the thread."""
MAX_HEADER_BYTES = 1 << 20
"""Header bytes kept per message (the rest of an oversized header block is not parsed)."""
_LINE_LIMIT = 1 << 16
_FLUSH_BYTES = 1 << 18
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_ENVELOPE = re.compile(rb"From \S+ +(?:[A-Za-z]{3} +){2}\d{1,2} +\d{1,2}:\d\d")
_ESCAPED_FROM = re.compile(rb">+From ")
_ESCAPED_FROM_LINES = re.compile(rb"^>(>*From )", re.M)
_MSGID = re.compile(r"<([^<>\s]+)>")
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|rv|rif|odp|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\]]*\]\s*)\s*",
    re.I)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:(?:automatic reply|auto[- ]?reply|auto[- ]?response|autoresponse|auto|automatische antwort|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|automatisch antwoord|autosvar|"
    r"risposta automatica|out of (?:the )?office(?: (?:auto)?reply| notice)?)\s*[:：]|"
    r"(?:automatic reply|out of (?:the )?office(?: (?:auto)?reply| notice)?|abwesenheitsnotiz)\s*$)",
    re.I)
_TAGS = re.compile(r"\[[^\]]*\]")
_AUTO_PRECEDENCE = frozenset({"auto_reply", "auto-reply", "bulk", "junk"})
_UNSAFE_CODECS = frozenset({"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined"})


# --------------------------------------------------------------------------- refs


@dataclass(frozen=True, slots=True)
class EmailRef:
    """Where one message is and what its headers say for threading (picklable, no text)."""

    path: str
    offset: int
    """Byte offset of the message in its file (after an mbox ``From `` line)."""
    length: int
    """Bytes of the message in its file (without the blank lines that end it in an mbox)."""
    message_id: str | None
    """``<...>``, lowercased; None when the message has none."""
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    """Normalised for threading: reply/forward prefixes and ``[tags]`` stripped, lowercased."""
    date: datetime | None
    """The Date header in UTC; None when missing or unreadable."""
    from_addr: str
    sha256: str
    """Of the message's bytes, line ends as LF and mbox ``>From`` escaping undone."""
    number: int | None = None
    """The message's number in its mbox archive (1-based); None for an ``.eml`` file."""
    to_addrs: tuple[str, ...] = ()
    """To and Cc addresses (lowercase)."""
    auto_reply: bool = False
    """Its headers or subject say it is an automatic reply."""

    @property
    def origin(self) -> str:
        """``mail/e001.eml`` or ``archive.mbox message 17``."""
        return self.path if self.number is None else f"{self.path} message {self.number}"


@dataclass(frozen=True, slots=True)
class _Located:
    """What reading a thread's message again takes from its header block (:func:`_reread` with
    ``threading=False``): the rest of an :class:`EmailRef` is for threading, done already."""

    path: str
    offset: int
    length: int
    message_id: str | None
    date: datetime | None
    number: int | None = None

    @property
    def origin(self) -> str:
        """As :attr:`EmailRef.origin`."""
        return self.path if self.number is None else f"{self.path} message {self.number}"


_RECORD = struct.Struct("<IQQIi4s")
"""One message of an :class:`EmailThreadRef` (32 bytes): the index of its file in the thread's
``paths``, its offset and length there, its mbox number (0: an ``.eml`` file), the index in the
thread of the message it answers (-1: not known) and the first 4 bytes of its sha256."""


@dataclass(frozen=True, slots=True)
class EmailThreadRef:
    """One e-mail conversation: where its messages are, in time order (picklable, small, no text).

    The messages are packed records of 32 bytes (:data:`_RECORD`), not :class:`EmailRef` objects,
    so that the hundreds of thousands of threads of a big archive take little memory wherever they
    are kept or sent; :attr:`refs` reads the messages' headers back from their files when a thread
    was not made from refs in memory.
    """

    conversation_id: str
    sha256: str
    """Of the concatenated message hashes: the content hash of the conversation."""
    size: int
    """Bytes of its messages."""
    notes: tuple[str, ...]
    paths: tuple[str, ...]
    """The files of its messages, in the order their first message comes in the thread."""
    records: bytes = field(repr=False)
    """Its messages in time order (messages without a date after the dated ones, in file order),
    packed as :data:`_RECORD`."""
    cached: tuple[EmailRef, ...] | None = field(default=None, compare=False, repr=False)
    """The refs it was made from (:func:`thread_refs`); None when threaded from an index."""

    @property
    def path(self) -> str:
        """The file of its first message."""
        return self.paths[0]

    @property
    def count(self) -> int:
        """Its number of messages."""
        return len(self.records) // _RECORD.size

    @property
    def locations(self) -> list[tuple[str, int, int, int | None]]:
        """(path, offset, length, mbox number or None) of each message, in time order."""
        return [(self.paths[p], offset, length, number or None)
                for p, offset, length, number, _, _ in _RECORD.iter_unpack(self.records)]

    @property
    def parents(self) -> tuple[int | None, ...]:
        """For each message, the index of the message it answers (None: not known)."""
        return tuple(None if parent < 0 else parent for *_, parent, _ in _RECORD.iter_unpack(self.records))

    @property
    def refs(self) -> tuple[EmailRef, ...]:
        """Its messages' refs, in time order (read again from the files when not cached: raises
        :class:`WrittenInputError` when a file changed since it was scanned)."""
        if self.cached is not None:
            return self.cached
        return tuple(ref for ref, _ in _read_thread(self))


class _Span:
    """One message as it is read from a file: where it is, its header block, its hash."""

    def __init__(self, start: int, number: int, unescape: bool):
        self.start = start
        self.end = start
        self.number = number
        self.unescape = unescape
        self.header: list[bytes] = []
        self.header_bytes = 0
        self.state = "first"
        self.junk = False
        self.has_body = False
        self._hash = hashlib.sha256()
        self._parts: list[bytes] = []
        self._size = 0
        self._blank: list[bytes] = []

    def add(self, line: bytes, pos: int, line_start: bool) -> None:
        blank = line_start and (line == b"\n" or line == b"\r\n")
        if self.state == "first":
            if blank:
                self.start = self.end = pos + len(line)
                return
            if line_start and _HEADER_LINE.match(line):
                self.state = "header"
            else:
                self.state, self.junk = "body", True
        elif self.state == "header":
            if blank:
                self.state = "body"
            elif line_start and line[:1] not in (b" ", b"\t") and not _HEADER_LINE.match(line):
                self.state = "body"
        if self.state == "header":
            if self.header_bytes < MAX_HEADER_BYTES:
                self.header.append(line)
                self.header_bytes += len(line)
        elif not blank and not self.has_body and line.strip():
            self.has_body = True
        if blank:
            self._blank.append(line)
            return
        if self._blank:
            self._parts.extend(self._blank)
            self._blank.clear()
        self.end = pos + len(line)
        if self.unescape and line_start and line[:1] == b">" and _ESCAPED_FROM.match(line):
            line = line[1:]
        self._parts.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES and line.endswith(b"\n"):
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            self._hash.update(b"".join(self._parts).replace(b"\r\n", b"\n"))
            self._parts.clear()
            self._size = 0

    def sha256(self) -> str:
        self._flush()
        return self._hash.hexdigest()


def _spans(f: BinaryIO, mbox: bool) -> Iterator[_Span]:
    """The messages of an open file, in file order: an mbox split at its ``From `` lines, any
    other file one message (an envelope ``From `` line before its headers skipped)."""
    readline = f.readline
    pos = 0
    number = 0
    cur: _Span | None = None
    prev_blank = True
    at_start = True
    first = True
    held: tuple[bytes, int] | None = None
    while True:
        line = readline(_LINE_LIMIT)
        if not line:
            break
        start = pos
        pos += len(line)
        line_start = at_start
        at_start = line.endswith(b"\n")
        if held is not None:
            from_line, from_pos = held
            held = None
            if line_start and _HEADER_LINE.match(line):
                if cur is not None:
                    yield cur
                number += 1
                cur = _Span(start, number, mbox)
                cur.add(line, start, True)
                prev_blank = False
                continue
            if cur is None:
                number += 1
                cur = _Span(from_pos, number, mbox)
            cur.add(from_line, from_pos, True)
        if line_start and line.startswith(b"From ") and (
                first or mbox and (prev_blank or _ENVELOPE.match(line))):
            held = (line, start)
            prev_blank = first = False
            continue
        first = False
        if cur is None:
            number += 1
            cur = _Span(start, number, mbox)
        cur.add(line, start, line_start)
        prev_blank = line_start and (line == b"\n" or line == b"\r\n")
    if held is not None:
        if cur is None:
            number += 1
            cur = _Span(held[1], number, mbox)
        cur.add(held[0], held[1], True)
    if cur is not None:
        yield cur


def _clean(s: str) -> str:
    """``s`` without lone surrogates (8-bit header bytes): read as UTF-8, else windows-1252."""
    if not any("\udc80" <= c <= "\udcff" for c in s):
        return s
    raw = s.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _raw_header(msg: EmailMessage, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _header(msg: EmailMessage, name: str) -> str:
    """A header's decoded value ("" when absent); the raw value when it cannot be parsed."""
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:
        text = _raw_header(msg, name)
    return _clean(" ".join(text.split()))


def _addresses(msg: EmailMessage, *names: str) -> list[tuple[str, str]]:
    """(display name, lowercase address) of the headers ``names``, in order."""
    out: list[tuple[str, str]] = []
    for name in names:
        try:
            value = msg.get(name)
            if value is None:
                continue
            pairs = [(a.display_name or "", a.addr_spec) for a in value.addresses]
        except Exception:
            pairs = getaddresses([_raw_header(msg, name)])
        for display, addr in pairs:
            addr = _clean(addr).strip().lower()
            if addr and addr != "<>":
                out.append((_clean(display).strip(), addr))
    return out


def normalize_message_id(value: str) -> str | None:
    """``<id>`` lowercased, from a header value (a bare id gets its brackets); None if none."""
    m = _MSGID.search(value)
    if m:
        return f"<{m.group(1).lower()}>"
    bare = value.strip().strip("<>").strip()
    return f"<{bare.lower()}>" if bare and not any(c.isspace() for c in bare) else None


def _message_ids(value: str) -> list[str]:
    ids = [f"<{x.lower()}>" for x in _MSGID.findall(value)]
    if not ids:
        ids = [f"<{x.strip('<>').lower()}>" for x in value.split() if "@" in x]
    return list(dict.fromkeys(ids))


def normalize_subject(subject: str) -> str:
    """The subject as threading compares it: ``Re:``/``Fwd:``/``AW:``/... prefixes, automatic
    reply prefixes and ``[tags]`` stripped, white space folded, lowercased."""
    s = subject
    while True:
        stripped = _AUTO_SUBJECT.sub("", _SUBJECT_PREFIX.sub("", s, count=1), count=1)
        if stripped == s:
            break
        s = stripped
    return " ".join(_TAGS.sub(" ", s).split()).lower()


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date as an aware UTC datetime (no zone: UTC); None when it is not one."""
    if not value or not value.strip():
        return None
    try:
        d = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    try:
        return d.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _decoded(value: str) -> str:
    """A raw header value with its RFC 2047 encoded words decoded (as it is when unreadable)."""
    if "=?" not in value:
        return value
    try:
        return _clean(" ".join(str(make_header(decode_header(value))).split()))
    except Exception:  # noqa: BLE001 - a malformed encoded word: the raw text
        return value


def _raw_addresses(msg: Any, *names: str) -> list[str]:
    """The lowercase addresses of the headers ``names`` of a compat32 header block."""
    out = []
    for name in names:
        for _, addr in getaddresses([str(v) for v in msg.get_all(name) or []]):
            addr = _clean(addr).strip().lower()
            if addr and addr != "<>":
                out.append(addr)
    return out


def is_auto_reply(msg: EmailMessage, subject: str | None = None) -> bool:
    """Whether a message's headers or subject say it was sent automatically (Auto-Submitted other
    than ``no``, X-Autoreply, X-Autorespond, Precedence auto_reply/bulk/junk, an
    "Automatic reply:" / "Out of office" / "Auto:" subject). X-Auto-Response-Suppress is not."""
    submitted = _header(msg, "auto-submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return True
    for name in ("x-autoreply", "x-autorespond"):
        if name in msg and _header(msg, name).strip().lower() not in ("no", "false", "0"):
            return True
    if _header(msg, "x-autogenerated").strip().lower() == "reply":
        return True
    if _header(msg, "precedence").strip().lower() in _AUTO_PRECEDENCE:
        return True
    return bool(_AUTO_SUBJECT.match(_header(msg, "subject") if subject is None else subject))


def _is_email(headers: EmailMessage) -> bool:
    names = {k.lower() for k in headers.keys()}
    return bool(names & {"from", "date", "message-id"})


def _ref(path: str, span: _Span, mbox: bool, threading: bool = True) -> EmailRef | _Located | MalformedEmailError:
    """The message of ``span`` as the scan finds it (a :class:`MalformedEmailError` when it is
    not e-mail); with ``threading`` False only where it is, its Message-ID and its Date (a
    :class:`_Located`, the same checks made): a thread read again needs no more."""
    where = f"message {span.number}: " if mbox else ""
    if span.junk or not span.header:
        return MalformedEmailError(path, f"{where}is not e-mail (no header block)")
    # compat32: the raw header strings; decoding only what threading needs is several times
    # faster than the default policy's full parse of every header (the scan's main cost)
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(b"".join(span.header))
    if not _is_email(headers):
        return MalformedEmailError(path, f"{where}is not e-mail (no From, Date or Message-ID header)")
    if not span.has_body:
        return MalformedEmailError(path, f"{where}has a header block but no body (a truncated or header-only message)")
    if not threading:
        return _Located(path=path, offset=span.start, length=span.end - span.start,
                        message_id=normalize_message_id(_header(headers, "message-id")),
                        date=parse_date(_raw_header(headers, "date")), number=span.number if mbox else None)
    senders = _raw_addresses(headers, "from") or _raw_addresses(headers, "sender")
    in_reply = _message_ids(_header(headers, "in-reply-to"))
    return EmailRef(
        path=path, offset=span.start, length=span.end - span.start,
        message_id=normalize_message_id(_header(headers, "message-id")),
        in_reply_to=in_reply[0] if in_reply else None,
        references=tuple(_message_ids(_header(headers, "references"))),
        subject=normalize_subject(_decoded(_header(headers, "subject"))),
        date=parse_date(_raw_header(headers, "date")),
        from_addr=senders[0][1] if senders else "",
        sha256=span.sha256(), number=span.number if mbox else None,
        to_addrs=tuple(dict.fromkeys(_raw_addresses(headers, "to", "cc"))),
        auto_reply=is_auto_reply(headers, _decoded(_header(headers, "subject"))),
    )


def is_mbox(path: str | Path) -> bool:
    """Whether a file is read as an mbox archive (by its ``.mbox`` extension)."""
    return str(path).lower().endswith(".mbox")


def iter_email_files(paths: Sequence[Path]) -> Iterator[EmailRef | WrittenInputError]:
    """What :func:`scan_email_files` finds, one message or error at a time (nothing kept)."""
    for p in paths:
        path = str(p)
        kind = file_kind(Path(p))
        if kind:
            yield WrittenInputError(path, f"is {kind}, not an e-mail file; it is not read")
            continue
        mbox = is_mbox(path)
        found = 0
        try:
            with open(p, "rb") as f:
                for span in _spans(f, mbox):
                    found += 1
                    yield _ref(path, span, mbox)
        except OSError as e:
            yield WrittenInputError(path, f"cannot be read: {e}")
            continue
        if not found:
            yield MalformedEmailError(path, "is empty" if _size(p) == 0 else "holds no message")


def scan_email_files(paths: list[Path]) -> tuple[list[EmailRef], list[WrittenInputError]]:
    """Every message of ``.eml`` files (one message each) and ``.mbox`` archives: its ref, or a
    :class:`MalformedEmailError` naming the file (and for an mbox the message number) when it
    is not e-mail. Only header blocks are parsed; files are streamed line by line, so memory
    stays flat whatever an archive's size (the refs themselves aside: see
    :func:`~pipeline.ingest.email_index.thread_email_files` for a big archive). A file that cannot be read is an error too;
    the scan carries on with the next."""
    refs: list[EmailRef] = []
    errors: list[WrittenInputError] = []
    for found in iter_email_files(paths):
        if isinstance(found, EmailRef):
            refs.append(found)
        else:
            errors.append(found)
    return refs, errors


def _size(p: Path) -> int:
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


# --------------------------------------------------------------------------- threading


_NO_DATE = -(1 << 63)
"""The date column's value for a message without a usable Date."""
_MICROSECOND = timedelta(microseconds=1)
_WINDOW = SUBJECT_WINDOW // _MICROSECOND


@dataclass
class _Columns:
    """Messages to thread as integer columns, in file order (path, then offset; a path given twice:
    in scan order). Message-ids, subjects and addresses are ids (>= 1) of an interned table, 0
    for none (no Message-ID, an empty subject or sender); a message's References and To/Cc
    addresses are the slices ``ref_ids[ref_start[i]:ref_start[i + 1]]`` and ``to_ids[...]``.
    ``text`` gives back an id's string (only for the few notes that quote one)."""

    paths: list[str]
    path: np.ndarray
    """int32: the index of the message's file in ``paths``."""
    offset: np.ndarray
    length: np.ndarray
    number: np.ndarray
    """int32: its mbox number, 0 for an ``.eml`` file."""
    sha: np.ndarray
    """uint8 (n, 32): the sha256 of each message."""
    message_id: np.ndarray
    in_reply_to: np.ndarray
    ref_start: np.ndarray
    ref_ids: np.ndarray
    subject: np.ndarray
    date: np.ndarray
    """int64: microseconds since 1970 UTC, :data:`_NO_DATE` for none."""
    sender: np.ndarray
    to_start: np.ndarray
    to_ids: np.ndarray
    auto_reply: np.ndarray
    strings: int
    """One more than the largest string id."""
    text: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.offset)

    def origin(self, i: int) -> str:
        """``mail/e001.eml`` or ``archive.mbox message 17`` (as :attr:`EmailRef.origin`)."""
        path, number = self.paths[int(self.path[i])], int(self.number[i])
        return f"{path} message {number}" if number else path

    def subset(self, keep: np.ndarray) -> _Columns:
        """The messages where ``keep`` (a boolean mask) is true."""
        def sliced(start: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            counts = np.diff(start)[keep]
            return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), ids[np.repeat(keep, np.diff(start))]

        ref_start, ref_ids = sliced(self.ref_start, self.ref_ids)
        to_start, to_ids = sliced(self.to_start, self.to_ids)
        return _Columns(self.paths, self.path[keep], self.offset[keep], self.length[keep], self.number[keep],
                        self.sha[keep], self.message_id[keep], self.in_reply_to[keep], ref_start, ref_ids,
                        self.subject[keep], self.date[keep], self.sender[keep], to_start, to_ids,
                        self.auto_reply[keep], self.strings, self.text)


def _columns_of(refs: Sequence[EmailRef]) -> tuple[_Columns, list[EmailRef]]:
    """The columns of refs held in memory (strings interned in a dict), and the refs in their order."""
    items = sorted(refs, key=lambda r: (r.path, r.offset))
    ids: dict[str, int] = {}
    names: list[str] = [""]
    path_ids: dict[str, int] = {}

    def intern(value: str | None) -> int:
        if not value:
            return 0
        i = ids.get(value)
        if i is None:
            i = ids[value] = len(names)
            names.append(value)
        return i

    ref_ids = [intern(x) for r in items for x in r.references]
    to_ids = [intern(x) for r in items for x in r.to_addrs]
    columns = _Columns(
        paths=list(dict.fromkeys(r.path for r in items)),
        path=np.array([path_ids.setdefault(r.path, len(path_ids)) for r in items], np.int32),
        offset=np.array([r.offset for r in items], np.int64),
        length=np.array([r.length for r in items], np.int64),
        number=np.array([r.number or 0 for r in items], np.int32),
        sha=np.frombuffer(b"".join(bytes.fromhex(r.sha256) for r in items), np.uint8).reshape(len(items), 32),
        message_id=np.array([intern(r.message_id) for r in items], np.int32),
        in_reply_to=np.array([intern(r.in_reply_to) for r in items], np.int32),
        ref_start=np.concatenate([[0], np.cumsum([len(r.references) for r in items])]).astype(np.int64),
        ref_ids=np.array(ref_ids, np.int32),
        subject=np.array([intern(r.subject) for r in items], np.int32),
        date=np.array([_NO_DATE if r.date is None else (r.date - _EPOCH) // _MICROSECOND for r in items], np.int64),
        sender=np.array([intern(r.from_addr) for r in items], np.int32),
        to_start=np.concatenate([[0], np.cumsum([len(r.to_addrs) for r in items])]).astype(np.int64),
        to_ids=np.array(to_ids, np.int32),
        auto_reply=np.array([r.auto_reply for r in items], bool),
        strings=len(names), text=names.__getitem__,
    )
    return columns, items


def _first_equal(keys: list[np.ndarray]) -> np.ndarray:
    """For each row, the first row (lowest index) whose ``keys`` are all equal to its own."""
    n = len(keys[0])
    index = np.arange(n)
    order = np.lexsort([index, *reversed(keys)])
    new = np.ones(n, bool)
    if n > 1:
        same = np.ones(n - 1, bool)
        for key in keys:
            ordered = key[order]
            same &= ordered[1:] == ordered[:-1]
        new[1:] = ~same
    first = np.empty(n, np.int64)
    first[order] = order[new][np.cumsum(new) - 1]
    return first


class _Node:
    """One message of a thread being built: its threading fields as Python values (ids, not strings)."""

    __slots__ = ("k", "message_id", "in_reply_to", "references", "date", "from_addr", "auto_reply", "_columns")

    def __init__(self, c: _Columns, k: int):
        self.k = k
        self.message_id = int(c.message_id[k]) or None
        self.in_reply_to = int(c.in_reply_to[k]) or None
        self.references = tuple(c.ref_ids[c.ref_start[k]:c.ref_start[k + 1]].tolist())
        date = int(c.date[k])
        self.date = None if date == _NO_DATE else date
        self.from_addr = int(c.sender[k])
        self.auto_reply = bool(c.auto_reply[k])
        self._columns = c

    @property
    def origin(self) -> str:
        return self._columns.origin(self.k)

    @property
    def name(self) -> str:
        """Its Message-ID, else its origin (for notes)."""
        return self._columns.text(self.message_id) if self.message_id else self.origin


def _time_order(nodes: Sequence[_Node]) -> list[_Node]:
    dated = sorted((x for x in nodes if x.date is not None), key=lambda x: (x.date, x.k))
    return dated + sorted((x for x in nodes if x.date is None), key=lambda x: x.k)


def _parents(refs: Sequence[Any]) -> list[int | None]:
    """For each ref (an :class:`EmailRef`, or a :class:`_Node`), the index of the one it answers
    (In-Reply-To, else the last of its References present), None when that message is not among
    ``refs``."""
    index: dict[Any, int] = {}
    for i, r in enumerate(refs):
        if r.message_id:
            index.setdefault(r.message_id, i)
    out: list[int | None] = []
    for i, r in enumerate(refs):
        parent = None
        for link in ([r.in_reply_to] if r.in_reply_to else []) + list(reversed(r.references)):
            j = index.get(link)
            if j is not None and j != i and link != r.message_id:
                parent = j
                break
        out.append(parent)
    return out


def _cut_cycles(nodes: Sequence[_Node], parents: list[int | None], notes: list[str]) -> None:
    state = [0] * len(parents)
    for s in range(len(parents)):
        path: list[int] = []
        v: int | None = s
        while v is not None and state[v] == 0:
            state[v] = 1
            path.append(v)
            v = parents[v]
        if v is not None and state[v] == 1:
            cycle = path[path.index(v):]
            child = min(cycle)
            ids = " -> ".join(nodes[i].name for i in cycle + [cycle[0]])
            notes.append(f"reply loop: References cycle {ids}; the link of {nodes[child].origin} "
                         f"to {nodes[parents[child]].origin} is cut")  # type: ignore[index]
            parents[child] = None
        for u in path:
            state[u] = 2


def _build_thread(nodes: list[_Node], notes: list[str]) -> tuple[list[_Node], list[int | None]]:
    """A thread's messages in time order with their parents; References cycles cut and automatic
    replies answering automatic replies left out (both noted)."""
    ordered = _time_order(nodes)
    parents = _parents(ordered)
    _cut_cycles(ordered, parents, notes)
    drop: set[int] = set()
    for i, r in enumerate(ordered):
        if not r.auto_reply:
            continue
        p = parents[i]
        if p is None and i > 0 and ordered[i - 1].auto_reply and ordered[i - 1].from_addr != r.from_addr:
            p = i - 1
        if p is not None and ordered[p].auto_reply:
            drop.add(i)
    if not drop:
        return ordered, parents
    notes.append(f"reply loop: {len(drop)} automatic repl{'y' if len(drop) == 1 else 'ies'} answering automatic "
                 f"replies left out ({', '.join(ordered[i].origin for i in sorted(drop))})")
    kept = [i for i in range(len(ordered)) if i not in drop]
    new_index = {old: new for new, old in enumerate(kept)}

    def ancestor(i: int) -> int | None:
        p = parents[i]
        seen = set()
        while p is not None and p in drop and p not in seen:
            seen.add(p)
            p = parents[p]
        return None if p is None or p in drop else p

    return ([ordered[i] for i in kept],
            [None if (a := ancestor(i)) is None else new_index[a] for i in kept])


def _suffixed(base: str, salt: str, taken: set[str]) -> str:
    digest = hashlib.sha256(salt.encode()).hexdigest()[:8]
    cid = f"{base}-{digest}"
    n = 2
    while cid in taken:
        cid = f"{base}-{digest}-{n}"
        n += 1
    return cid


def _deduplicate(c: _Columns, notes_of: dict[int, list[str]]) -> np.ndarray:
    """The mask of the messages kept: an identical copy (same sha256) of an earlier message is
    left out, noted on that message; a different message with an earlier one's Message-ID is
    kept, noted on the earlier one (``notes_of`` is keyed by index among the kept)."""
    n = len(c)
    words = np.ascontiguousarray(c.sha).view("<u8").reshape(n, 4)
    same_sha = _first_equal([words[:, j] for j in range(4)])
    index = np.arange(n)
    keep = same_sha == index
    with_id = np.flatnonzero(keep & (c.message_id > 0))
    same_id = index.copy()
    if len(with_id):
        same_id[with_id] = with_id[_first_equal([c.message_id[with_id]])]
    kept_index = np.cumsum(keep) - 1
    for i in np.flatnonzero(~keep | (same_id != index)).tolist():
        message_id = c.text(int(c.message_id[i])) if c.message_id[i] else None
        if not keep[i]:
            first = int(same_sha[i])
            note = (f"duplicate message {message_id or ''} in {c.origin(i)}: identical to "
                    f"{c.origin(first)}, left out").replace("  ", " ")
        else:
            first = int(same_id[i])
            note = (f"Message-ID {message_id} is used by different messages ({c.origin(first)}, {c.origin(i)}); "
                    "both kept")
        notes_of.setdefault(int(kept_index[first]), []).append(note)
    return keep


def _link_groups(c: _Columns) -> np.ndarray:
    """For each message, its group (0, 1, ...) of messages joined by Message-ID / In-Reply-To /
    References ids (the connected components of messages and the ids they name)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(c)
    nodes = c.strings + n
    key = np.where(c.message_id > 0, c.message_id, c.strings + np.arange(n)).astype(np.int64)
    replying = c.in_reply_to > 0
    src = np.concatenate([key[replying], np.repeat(key, np.diff(c.ref_start))])
    dst = np.concatenate([c.in_reply_to[replying], c.ref_ids]).astype(np.int64)
    graph = coo_matrix((np.ones(len(src), np.int32), (src, dst)), shape=(nodes, nodes)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.unique(labels[key], return_inverse=True)[1].reshape(-1)


def _join_by_subject(c: _Columns, group: np.ndarray, notes_of: dict[int, list[str]]) -> np.ndarray:
    """The groups after the subject fallback (see :func:`thread_refs`): each message's group root."""
    n = len(c)
    groups = int(group.max()) + 1 if n else 0
    parent = np.arange(groups)
    sizes = np.bincount(group, minlength=groups)
    dated = c.date != _NO_DATE
    no_refs = np.diff(c.ref_start) == 0
    loose = np.flatnonzero((c.in_reply_to == 0) & no_refs & (c.subject > 0) & dated & (c.sender > 0)
                           & (sizes[group] == 1))
    if not len(loose):
        return group
    loose = loose[np.lexsort((loose, c.date[loose]))]
    # (subject, address) -> the dated messages with that subject the address sends or receives
    with_subject = dated & (c.subject > 0)
    senders = np.flatnonzero(with_subject & (c.sender > 0))
    receivers = np.repeat(np.arange(n), np.diff(c.to_start))
    received = with_subject[receivers]
    person_k = np.concatenate([senders, receivers[received]])
    person_key = (c.subject[person_k].astype(np.int64) * c.strings
                  + np.concatenate([c.sender[senders], c.to_ids[received]]))
    order = np.lexsort((person_k, person_key))
    person_k, person_key = person_k[order], person_key[order]
    if len(person_k) > 1:
        first = np.concatenate([[True], (person_key[1:] != person_key[:-1]) | (person_k[1:] != person_k[:-1])])
        person_k, person_key = person_k[first], person_key[first]
    # members of each group as circular lists (joined in O(1))
    by_group = np.argsort(group, kind="stable")
    ends = np.cumsum(sizes)
    starts = ends - sizes
    following = np.empty(n, np.int64)
    following[by_group[:-1]] = by_group[1:]
    following[by_group[ends - 1]] = by_group[starts]
    member = by_group[starts]

    def find(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = int(parent[g])
        return g

    def people(root: int) -> set[int]:
        start = k = int(member[root])
        found: set[int] = set()
        while True:
            found.add(int(c.sender[k]))
            found.update(c.to_ids[c.to_start[k]:c.to_start[k + 1]].tolist())
            k = int(following[k])
            if k == start:
                return found

    for u in loose.tolist():
        own = find(int(group[u]))
        date = int(c.date[u])
        to = set(c.to_ids[c.to_start[u]:c.to_start[u + 1]].tolist())
        key = int(c.subject[u]) * c.strings + int(c.sender[u])
        lo, hi = np.searchsorted(person_key, [key, key + 1])
        best: tuple[int, int, int] | None = None
        for j in person_k[lo:hi].tolist():
            root = find(int(group[j]))
            gap = abs(int(c.date[j]) - date)
            if root == own or gap > _WINDOW or (best is not None and (gap, j) >= best[:2]):
                continue
            if not to or people(root) & to:
                best = (gap, j, root)
        if best is None:
            continue
        root = best[2]
        parent[own] = root
        a, b = int(member[root]), int(member[own])
        following[a], following[b] = following[b], following[a]
        notes_of.setdefault(u, []).append(f"{c.origin(u)} joined by its subject {c.text(int(c.subject[u]))!r} "
                                          "(it has no Message-ID link)")
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    return parent[group]


def _thread_columns(c: _Columns, refs: Sequence[EmailRef] | None = None) -> list[EmailThreadRef]:
    """:func:`thread_refs` over columns (``refs``: the refs of the columns' rows, kept on the threads)."""
    if not len(c):
        return []
    notes_of: dict[int, list[str]] = {}
    keep = _deduplicate(c, notes_of)
    if not keep.all():
        c = c.subset(keep)
        refs = [refs[i] for i in np.flatnonzero(keep).tolist()] if refs is not None else None
    root = _join_by_subject(c, _link_groups(c), notes_of)
    roots, first = np.unique(root, return_index=True)
    rank = np.empty(int(roots.max()) + 1, np.int64)
    rank[roots[np.argsort(first)]] = np.arange(len(roots))
    thread_of = rank[root]
    members = np.argsort(thread_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(thread_of))]).tolist()

    paths_of: dict[tuple[int, ...], tuple[str, ...]] = {}
    built: list[tuple[bytes, tuple[str, ...], tuple[str, ...], str, int, int, tuple[EmailRef, ...] | None]] = []
    archive_entries: list[tuple[int, int, int]] = []  # (path, offset, thread) of each mbox a thread is in
    for g in range(len(bounds) - 1):
        ks = members[bounds[g]:bounds[g + 1]].tolist()
        notes = [note for k in ks for note in notes_of.get(k, ())]
        ordered, parents = _build_thread([_Node(c, k) for k in ks], notes)
        order = [x.k for x in ordered]
        file_ids = list(dict.fromkeys(int(c.path[k]) for k in order))
        local = {p: i for i, p in enumerate(file_ids)}
        key = tuple(file_ids)
        paths = paths_of.get(key)
        if paths is None:
            paths = paths_of[key] = tuple(c.paths[p] for p in file_ids)
        records = b"".join(
            _RECORD.pack(local[int(c.path[k])], int(c.offset[k]), int(c.length[k]), int(c.number[k]),
                         -1 if parent is None else parent, c.sha[k, :4].tobytes())
            for k, parent in zip(order, parents))
        digest = hashlib.sha256("".join(c.sha[k].tobytes().hex() for k in order).encode()).hexdigest()
        firsts: dict[int, int] = {}
        for k in order:
            if c.number[k]:
                p = int(c.path[k])
                firsts[p] = min(firsts.get(p, int(c.offset[k])), int(c.offset[k]))
        archive_entries.extend((p, offset, g) for p, offset in firsts.items())
        built.append((records, paths, tuple(notes), digest, int(c.length[order].sum()), order[0],
                      tuple(refs[k] for k in order) if refs is not None else None))

    archive_n: dict[int, int] = {}  # thread -> its number in the archive of its first message
    archive_entries.sort()
    n = 0
    for i, (p, _, g) in enumerate(archive_entries):
        n = n + 1 if i and archive_entries[i - 1][0] == p else 1
        head = built[g][5]
        if int(c.path[head]) == p and c.number[head]:
            archive_n[g] = n
    stems: dict[int, str] = {}
    bases: list[str] = []
    for g, (*_, head, _) in enumerate(built):
        p = int(c.path[head])
        if p not in stems:
            stems[p] = safe_call_id(Path(c.paths[p]).stem)
        bases.append(f"{stems[p]}-{archive_n[g]}" if c.number[head] else stems[p])
    taken: set[str] = set()
    reserved = set(bases)  # the ids taken so far and every base
    threads: list[EmailThreadRef] = []
    for g, (records, paths, notes_t, digest, size, head, kept_refs) in enumerate(built):
        cid = bases[g]
        if cid in taken:
            message_id = c.text(int(c.message_id[head])) if c.message_id[head] else None
            cid = _suffixed(cid, f"{c.sha[head].tobytes().hex()}:{message_id}", reserved)
            reserved.add(cid)
        taken.add(cid)
        threads.append(EmailThreadRef(cid, digest, size, notes_t, paths, records, kept_refs))
    built.clear()
    return threads


def thread_refs(refs: list[EmailRef]) -> list[EmailThreadRef]:
    """The conversations of ``refs``, in order of their first message in the files.

    Messages join when their Message-ID / In-Reply-To / References share an id (union of the
    linked ids). A message with no link at all joins the thread (the nearest in time) that has
    a message with the same normalised subject within :data:`SUBJECT_WINDOW` and that its
    sender and one of its recipients take part in (one shared address alone would join two
    customers' "Order status" mails through the support address both wrote to). Identical
    copies of a message are kept once; different messages with one Message-ID are both kept;
    References cycles are cut (at the cycle's earliest message); automatic replies answering
    automatic replies are left out (each noted on the thread). Conversation ids are the stem of
    the file of the thread's earliest message (``<stem>-<n>`` for an mbox: the n-th thread of
    that archive), made unique with a short hash; the same input gives the same ids.

    The threads keep ``refs`` (:attr:`EmailThreadRef.refs`); :func:`~pipeline.ingest.email_index.thread_email_files` gives the
    same threads for files without holding a ref per message.
    """
    columns, items = _columns_of(refs)
    return _thread_columns(columns, items)


# --------------------------------------------------------------------------- bodies


_BLOCK_TAGS = frozenset(
    "p div li ul ol tr table tbody thead tfoot h1 h2 h3 h4 h5 h6 pre section article header footer dl dt dd "
    "address center form fieldset figure figcaption main nav aside caption".split())
_PARAGRAPH_TAGS = frozenset("p h1 h2 h3 h4 h5 h6 table ul ol pre".split())
_SKIP_TAGS = frozenset("script style head title template xml".split())


class _HtmlText(HTMLParser):
    """HTML to plain text: script/style/head dropped, paragraphs and line breaks kept,
    blockquotes as ``> `` lines, a Gmail signature block after a ``-- `` line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.depth = 0
        self.line_depth = 0
        self.skip = 0
        self.pre = 0

    def _end_line(self, paragraph: bool = False) -> None:
        text = "".join(self.line).strip(" ")
        if text:
            self.lines.append("> " * self.line_depth + text)
        self.line = []
        if paragraph and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _append(self, text: str) -> None:
        if not self.line:
            self.line_depth = self.depth
        self.line.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skip = 0
        if tag in _SKIP_TAGS:
            self.skip += 1
            return
        if tag == "br":
            self._end_line()
        elif tag == "hr":
            self._end_line(paragraph=True)
        elif tag == "blockquote":
            self._end_line(paragraph=True)
            self.depth += 1
        elif tag in _BLOCK_TAGS:
            self._end_line(paragraph=tag in _PARAGRAPH_TAGS)
            if tag == "div" and "gmail_signature" in (dict(attrs).get("class") or ""):
                self.lines.append("-- ")
            if tag == "li":
                self._append("- ")
        elif tag in ("td", "th"):
            self._append(" ")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(self.skip - 1, 0)
        elif tag == "blockquote":
            self._end_line(paragraph=True)
            self.depth = max(self.depth - 1, 0)
        elif tag in _BLOCK_TAGS:
            self._end_line(paragraph=tag in _PARAGRAPH_TAGS)
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        data = data.replace("\xa0", " ")
        if self.pre:
            for i, part in enumerate(data.split("\n")):
                if i:
                    self._end_line()
                self._append(part)
            return
        text = re.sub(r"\s+", " ", data)
        if not self.line:
            text = text.lstrip()
        if text:
            self._append(text)

    def text(self) -> str:
        self._end_line()
        return "\n".join(self.lines).strip("\n")


def html_to_text(html: str) -> str:
    """The text of an HTML body (standard library html.parser): scripts and styles dropped,
    paragraphs and line breaks kept, blockquoted history as ``> `` lines."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        pass
    return parser.text()


def decode_text(payload: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text bytes decoded by their declared charset, and a note when that was not possible.

    An unknown charset is read as UTF-8, else windows-1252; a wrong one (bytes it cannot
    decode) as UTF-8, else (for a declared UTF-8 with no valid multi-byte sequence)
    windows-1252, else the declared charset with undecodable bytes replaced. Text without a
    charset, US-ASCII or ``unknown-8bit`` is read as UTF-8 when it is, ISO-8859-1 as
    windows-1252 (as mail clients read both), silently.
    """
    label = (charset or "").strip().strip('"').lower()
    undeclared = label in ("", "unknown-8bit", "x-unknown", "unknown")
    codec: str | None = None
    if not undeclared:
        try:
            codec = codecs.lookup(label).name
        except LookupError:
            codec = None
        if codec in _UNSAFE_CODECS:
            codec = None
        if codec is None:
            for name in ("utf-8", "cp1252"):
                try:
                    return payload.decode(name), f"unknown charset {label!r}: read as {_NAMES[name]}"
                except UnicodeDecodeError:
                    pass
            return (payload.decode("cp1252", "replace"),
                    f"unknown charset {label!r}: read as windows-1252, undecodable bytes replaced")
    if codec is None or codec == "ascii":
        for name in ("ascii", "utf-8"):
            try:
                return payload.decode(name), None
            except UnicodeDecodeError:
                pass
        what = f"declared {label}" if label else "without a charset"
        return _cp1252(payload), f"8-bit text {what}: read as windows-1252"
    if codec == "latin-1":
        try:
            return payload.decode("cp1252"), None
        except UnicodeDecodeError:
            return payload.decode("latin-1"), None
    try:
        return payload.decode(codec), None
    except (UnicodeDecodeError, LookupError):
        pass
    if codec != "utf-8":
        try:
            return payload.decode("utf-8"), f"text is not valid {label}: read as utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return payload.decode(codec, "replace"), f"text is not valid {label}: undecodable bytes replaced"
        except LookupError:
            return _cp1252(payload), f"text is not valid {label}: read as windows-1252"
    loose = payload.decode("utf-8", "replace")
    if any(ord(c) > 127 and c != "\ufffd" for c in loose):
        return loose, "text is not valid utf-8: undecodable bytes replaced"
    return _cp1252(payload), "text is not valid utf-8: read as windows-1252"


def _cp1252(payload: bytes) -> str:
    try:
        return payload.decode("cp1252")
    except UnicodeDecodeError:
        return payload.decode("cp1252", "replace")


_NAMES = {"utf-8": "utf-8", "cp1252": "windows-1252", "latin-1": "latin-1", "ascii": "us-ascii"}


def _part_text(part: EmailMessage, notes: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text, note = decode_text(payload, charset)
    if note:
        notes.append(note)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/html":
        text = html_to_text(text)
    return text


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    if part.get_content_maintype() == "message" or not part.is_multipart():
        yield part
        return
    for sub in part.iter_parts():
        yield from _leaves(sub)  # type: ignore[arg-type]


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return _clean(str(name)).strip() if name else ""


def _attachments(msg: EmailMessage, bodies: list[EmailMessage]) -> list[Attachment]:
    out: list[Attachment] = []
    for part in _leaves(msg):
        if any(part is b for b in bodies):
            continue
        ctype = part.get_content_type()
        maintype = part.get_content_maintype()
        try:
            disposition = part.get_content_disposition()
        except Exception:
            disposition = None
        name = _filename(part)
        if maintype == "image" and disposition != "attachment" and (disposition == "inline" or part.get("content-id")):
            continue
        if ctype in ("text/plain", "text/html") and not name and disposition != "attachment":
            continue
        if maintype == "multipart":
            continue
        if maintype == "message":
            try:
                size = len(part.as_bytes())
            except Exception:
                size = 0
            if not name:
                inner = part.get_payload(0) if part.is_multipart() else None
                subject = _header(inner, "subject") if isinstance(inner, EmailMessage) else ""
                name = f"{subject or 'message'}.eml" if ctype == "message/rfc822" else ctype
        else:
            try:
                payload = part.get_payload(decode=True)
            except Exception:
                payload = None
            size = len(payload) if isinstance(payload, bytes) else 0
        out.append(Attachment(name=name or "unnamed", size=size, content_type=ctype))
    return out


def _bodies(msg: EmailMessage) -> tuple[EmailMessage | None, EmailMessage | None]:
    """The text/plain and text/html bodies (either may be None)."""
    plain = html = None
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except Exception:
        pass
    if plain is None and html is None and not msg.is_multipart() and msg.get_content_maintype() == "text":
        plain = msg
    return plain, html  # type: ignore[return-value]


# --------------------------------------------------------------------------- quotes and signatures


_ATTRIBUTION = re.compile(
    r"^\s*(?:on\s.+[\s>]wrote|am\s.+[\s>]schrieb.*|le\s.+[\s>]a\s+[ée]crit|el\s.+[\s>]escribi[óo]|"
    r"op\s.+[\s>]schreef.*|den\s.+[\s>]skrev.*|il\s.+[\s>]ha\s+scritto)\s*:\s*$", re.I | re.S)
_WROTE = re.compile(
    r"^\s*\S.{0,100}[\s>](?:wrote|writes|schrieb|a écrit|escribió|schreef|skrev|ha scritto)\s*:\s*$", re.I)
_ATTRIBUTION_START = re.compile(r"^\s*(?:on|am|le|el|op|den|il)\s", re.I)
_ORIGINAL = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|message d'origine|"
    r"mensaje original|oorspronkelijk bericht|originalmeddelande|opprinnelig melding|oprindelig meddelelse|"
    r"messaggio originale|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)"
    r"\s*[-_=*]{2,}\s*$", re.I)
_FORWARD_BEGIN = re.compile(
    r"^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié)\s*:\s*$",
    re.I)
_HDR_FROM = re.compile(r"^\s*\*?\s*(?:from|von|de|van|från|fra|da|od)\s*\*?\s*:\s*\*?\s*\S", re.I)
_HDR_OTHER = re.compile(
    r"^\s*\*?\s*(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|objet|à|enviado|fecha|para|asunto|"
    r"verzonden|aan|onderwerp|skickat|till|ämne|sendt|til|emne|inviato|oggetto|data|a)\s*\*?\s*:", re.I)
_RULE = re.compile(r"^\s*(?:_{10,}|-{10,}|[—–]{5,})\s*$")
_FOOTER = re.compile(
    r"mailing list|unsubscribe|newsletter|listinfo|view (?:it )?(?:on|in) (?:github|your browser)", re.I)
_SALUTATION = re.compile(r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings)\b.{0,50}$", re.I)
_DASH_NAME = re.compile(r"^\s*[-–—~]\s?(\S.*?)\s*$")
_BANNER = re.compile(
    r"^\W*(?:caution|warning|external|attention|notice|\[?external\]?)\b.{0,300}?(?:originated (?:from )?outside|"
    r"outside (?:of )?(?:the|this|your|our) (?:organi[sz]ation|company|network)|external sender|"
    r"do not click (?:on )?links)", re.I | re.S)
_QUOTED = re.compile(r"^\s*>")
_MOBILE = re.compile(
    r"^\s*(?:sent from my \S.{0,40}|sent from (?:outlook|mail|yahoo mail|gmail|samsung|proton ?mail)\b.{0,40}|"
    r"get outlook for \S.{0,30}|sent from mail for windows.{0,20}|sent via \S.{0,40}|"
    r"von meinem \S.{0,30} gesendet|gesendet von (?:meinem )?\S.{0,30}|envoy[ée] de mon \S.{0,30}|"
    r"enviado desde mi \S.{0,30}|verzonden (?:vanaf|met) (?:mijn )?\S.{0,30}|skickat från min \S.{0,30}|"
    r"inviato da(?:l mio)? \S.{0,30})\s*$", re.I)
_VALEDICTION = re.compile(
    r"^\s*(?:(?:kind(?:est)?|best|warm(?:est)?|many|with (?:kind |best |warm )?)?\s*(?:regards|wishes)|"
    r"best|cheers|thanks(?: (?:again|a lot|so much|in advance|and regards))?|"
    r"thank you(?: (?:again|very much|so much|in advance))?|many thanks|sincerely|"
    r"yours(?: sincerely| truly| faithfully)?|all the best|take care|respectfully|cordially|rgds|br|"
    r"mit freundlichen grüßen|mit freundlichen gruessen|mfg|viele grüße|beste grüße|liebe grüße|"
    r"freundliche grüße|gruß|grüße|met vriendelijke groet(?:en)?|vriendelijke groet(?:en)?|groeten|"
    r"cordialement|bien (?:à vous|cordialement)|salutations|saludos(?: cordiales)?|atentamente|un saludo|"
    r"cordiali saluti|distinti saluti|saluti|med vänliga hälsningar|vänliga hälsningar|hälsningar|mvh|"
    r"med venlig hilsen|venlig hilsen|hilsen)"
    r"\s*[,.!]*(?:\s*[,–—-]\s*[^\W\d_][\w.'-]*(?:\s+[^\W\d_][\w.'-]*){0,2})?\s*$", re.I)
_DISCLAIMER = re.compile(
    r"intended (?:solely |only )?for (?:the )?(?:use (?:of|by) )?(?:the )?(?:named )?"
    r"(?:recipient|addressee|individual)|"
    r"intended recipient|if you are not the recipient|strictly prohibited|scanned for viruses|"
    r"received this (?:e-?mail|message|communication) (?:in error|by mistake)|confidentiality notice|"
    r"disclaimer|legally privileged|may contain (?:confidential|privileged)|is confidential and|"
    r"before printing|consider the environment|vertraulich|irrtümlich erhalten|"
    r"virus(?:es)? (?:check|scan|free)", re.I)
_CONTACT = re.compile(r"(?:\+?\d[\d ()./-]{6,}\d)|(?:[\w.+-]+@[\w-]+\.[\w.]+)|(?:www\.|https?://)", re.I)
_NAME_WORD = re.compile(r"^(?:[^\W\d_][\w'’-]*\.?|[^\W\d_]\.)$")
_NOT_NAME = frozenset(
    "team support service services customer customers care desk help helpdesk ltd limited inc llc gmbh ag corp "
    "corporation company co department dept manager specialist agent officer director representative assistant "
    "engineer sales account billing office the of and for at your our head lead senior junior service-desk "
    "regards thanks thank best kind cheers sincerely mobile phone tel fax email e-mail web www".split())


def _is_attribution(lines: list[str], i: int) -> int:
    """How many lines (1-3) an ``On ... wrote:`` attribution starting at line ``i`` spans; 0 if
    it is not one."""
    if not lines[i].strip() or len(lines[i]) > 400:
        return 0
    if lines[i].rstrip().endswith(":") and _ATTRIBUTION.match(lines[i]):
        return 1
    if _WROTE.match(lines[i]):
        nxt = next((line for line in lines[i + 1:] if line.strip()), "")
        return 1 if _QUOTED.match(nxt) else 0
    if not _ATTRIBUTION_START.match(lines[i]):
        return 0
    joined = lines[i]
    for n in (2, 3):
        if i + n - 1 >= len(lines) or not lines[i + n - 1].strip():
            return 0
        joined += " " + lines[i + n - 1].strip()
        if joined.rstrip().endswith(":") and len(joined) <= 400 and _ATTRIBUTION.match(joined):
            return n
    return 0


def _outlook_block(lines: list[str], i: int) -> bool:
    if not _HDR_FROM.match(lines[i]):
        return False
    following = [line for line in lines[i + 1:i + 7] if line.strip()][:4]
    return bool(following) and bool(_HDR_OTHER.match(following[0])) and sum(
        1 for line in following if _HDR_OTHER.match(line)) >= 2


def _quote_start(lines: list[str]) -> tuple[int | None, int | None]:
    """Where the quoted history starts: (line of a header that quotes all that follows, line of
    an ``On ... wrote:`` attribution followed by ``>`` lines only in part — an interleaved
    reply). Both None when there is no header."""
    for i, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        if _ORIGINAL.match(line) or _FORWARD_BEGIN.match(line):
            return i, None
        if _RULE.match(line):
            nxt = next((j for j in range(i + 1, min(i + 4, len(lines))) if lines[j].strip()), None)
            if nxt is not None and _outlook_block(lines, nxt):
                return i, None
        if _outlook_block(lines, i):
            return i, None
        n = _is_attribution(lines, i)
        if n:
            rest = [line for line in lines[i + n:] if line.strip()]
            own = [line for line in rest if not _QUOTED.match(line)]
            if rest and _QUOTED.match(rest[0]) and own and _own_text_after_quote(lines[i + n:]):
                return None, i
            return i, None
    return None, None


def _own_text_after_quote(lines: list[str]) -> bool:
    """Whether non-quoted text stands between quoted blocks or after them (an interleaved reply),
    rather than only a signature after the quote."""
    last_quoted = max((j for j, line in enumerate(lines) if _QUOTED.match(line)), default=-1)
    after = [line for line in lines[last_quoted + 1:] if line.strip()]
    between = [line for line in lines[:last_quoted] if line.strip() and not _QUOTED.match(line)]
    if between:
        return True
    if not after:
        return False
    body, sig = _split_signature(after)
    return any(line.strip() for line in body)


def _paragraphs_from_end(lines: list[str], end: int) -> int:
    """The first line of the paragraph that ends at ``end`` (exclusive)."""
    j = end
    while j > 0 and lines[j - 1].strip():
        j -= 1
    return j


def _split_signature(lines: list[str], names: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(body lines, signature lines) of a message's own text (``names``: the sender's name
    words and address parts, lowercase, for a closing line with the sender's name alone)."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    for i in range(end - 1, -1, -1):
        if lines[i].rstrip() in ("--", "-- "):
            start = i
            break
    top = start
    for _ in range(6):
        while top and not lines[top - 1].strip():
            top -= 1
        para = _paragraphs_from_end(lines, top)
        if para == top or not any(line.strip() for line in lines[:para]):
            break
        block = lines[para:top]
        if _DISCLAIMER.search(" ".join(block)) or all(_RULE.match(line) for line in block) and top == start:
            start = para
        top = para
    nonblank = [i for i in range(start) if lines[i].strip()]
    for pos in range(max(len(nonblank) - 7, 1), len(nonblank)):
        i = nonblank[pos]
        after = [lines[j] for j in range(i + 1, start) if lines[j].strip()]
        if (_RULE.match(lines[i]) and after and all(len(a) <= 100 and not a.rstrip().endswith("?") for a in after)
                and any(_CONTACT.search(a) or _FOOTER.search(a) for a in after)):
            start = i
            break
    nonblank = [i for i in range(start) if lines[i].strip()]
    for i in nonblank[-3:]:
        if _MOBILE.match(lines[i]) and all(len(lines[j]) <= 80 for j in range(i, start)):
            start = i
            break
    nonblank = [i for i in range(start) if lines[i].strip()]
    for pos in range(len(nonblank) - 1, max(len(nonblank) - 22, -1), -1):
        i = nonblank[pos]
        if not _VALEDICTION.match(lines[i]) or len(lines[i].strip()) > 60:
            continue
        after = [lines[j].strip() for j in range(i + 1, start) if lines[j].strip()]
        if after and not (_signature_line(after[0]) or after[0] == "--" or _RULE.match(after[0])):
            continue
        if len(after) > 20 or (len(after) > 8 or any(len(a) > 80 for a in after)) and not (
                after and _RULE.match(after[0])):
            continue
        if pos == 0 or all(_SALUTATION.match(lines[j]) for j in nonblank[:pos]):
            if after:
                start = nonblank[pos + 1]
        else:
            start = i
        break
    else:
        nonblank = [i for i in range(start) if lines[i].strip()]
        sign_off = lines[nonblank[-1]].strip().lstrip("-–—/ ").rstrip(",.") if len(nonblank) > 1 else ""
        dashed = [i for i in nonblank[1:][-3:] if (m := _DASH_NAME.match(lines[i])) and _looks_like_name(m.group(1))]
        if dashed:
            start = dashed[0]
        elif sign_off and _looks_like_name(sign_off) and sign_off.split()[0].lower() in names:
            start = nonblank[-1]
        elif len(nonblank) > 1:
            para = _paragraphs_from_end(lines, nonblank[-1] + 1)
            block = [lines[j] for j in range(para, nonblank[-1] + 1)]
            if (para > nonblank[0] and 1 < len(block) <= 6 and all(len(b.strip()) <= 60 for b in block)
                    and _looks_like_name(block[0].strip()) and any(_CONTACT.search(b) for b in block)):
                start = para
    return lines[:start], lines[start:]


def _signature_line(line: str) -> bool:
    """A name (``Anna Lee``, ``Anna Lee | Support``, ``Anna Lee, Support Team``) or a contact line."""
    head = re.split(r"\s*[|,–—]\s*|\s+-\s+", line.strip(), maxsplit=1)[0]
    return _looks_like_name(head) or bool(_CONTACT.search(line)) or bool(_MOBILE.match(line))


def _looks_like_name(line: str) -> bool:
    words = line.replace(",", " ").split()
    if not 1 <= len(words) <= 4 or any(c.isdigit() or c in "@:/|()" for c in line):
        return False
    for w in words:
        if not _NAME_WORD.match(w) or not w[0].isupper() or w.lower().strip(".") in _NOT_NAME:
            return False
    return not (len(words) == 1 and len(words[0]) < 2)


def name_from_signature(signature: str) -> str | None:
    """The first line of a signature that looks like a person's name (``Anna Lee``), or the
    name closing a valediction (``Thanks, Anna``); None when none does."""
    for line in signature.splitlines():
        text = line.strip()
        if not text or text == "--":
            continue
        m = _VALEDICTION.match(text)
        if m:
            for sep in (",", "–", "—", " - "):
                if sep in text:
                    tail = text.split(sep, 1)[1].strip().strip(",.!")
                    if tail and _looks_like_name(tail):
                        return tail
            continue
        if _MOBILE.match(text):
            continue
        if _looks_like_name(text):
            return text.rstrip(",")
    return None


def split_reply(text: str, sender: str = "") -> tuple[str, str, str]:
    """(what the message adds, the quoted history, the signature) of a message's text.

    Quoted history: everything from an Outlook ``-----Original Message-----`` line or
    ``From: ... Sent:/To:/Subject:`` header block (with the ``____`` rule before it), a forwarded
    message, or a Gmail/Apple ``On ... wrote:`` attribution on; and every ``>`` line (an
    interleaved reply keeps the text between them). Signature: from a ``-- `` line, a
    valediction (``Kind regards,``) followed by a short block, a "Sent from my iPhone" line, a
    ``-Name`` line, a closing contact block (a name with phone / e-mail / web lines), a last line
    with the sender's name alone (``sender``: the display name and/or address); mailing-list
    footers under a rule and legal disclaimer paragraphs at the end, and an external-sender
    warning a mail server put at the top, go with the signature too.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, interleaved = _quote_start(lines)
    tail = lines[cut:] if cut is not None else []
    head = lines[:cut] if cut is not None else lines
    own: list[str] = []
    quoted: list[str] = []
    skip_to = -1
    for i, line in enumerate(head):
        if i < skip_to:
            continue
        if interleaved is not None and i >= interleaved and not _QUOTED.match(line):
            n = _is_attribution(head, i)
            if n:
                quoted.extend(head[i:i + n])
                skip_to = i + n
                continue
        if _QUOTED.match(line):
            quoted.append(line)
        else:
            own.append(line)
    names = frozenset(w for w in re.split(r"[\s._@<>\"',+-]+", sender.lower()) if len(w) > 1)
    banner = _banner(own)
    body, signature = _split_signature(own[banner:], names)
    boilerplate = _tidy("\n".join(own[:banner]))
    return (_tidy("\n".join(body)), _tidy("\n".join(quoted + tail)),
            _tidy("\n\n".join(x for x in (_tidy("\n".join(signature)), boilerplate) if x)))


def _banner(lines: list[str]) -> int:
    """Lines of an external-sender warning a mail server put at the top ("CAUTION: This email
    originated from outside ..."), 0 when there is none."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return 0
    end = first
    while end < len(lines) and lines[end].strip():
        end += 1
    if _BANNER.match(" ".join(lines[first:end])) and any(line.strip() for line in lines[end:]):
        return end
    return 0


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# --------------------------------------------------------------------------- messages


class _ParsedHeaders(HeaderRegistry):
    """The default policy's header registry, answering a header it has parsed already (the same
    name and value) with the same header object. The email package parses a header again each
    time it is read: a message's Content-Type about ten times (``get_body``, ``get_content_type``
    of every part, the attachments), its Subject twice. Header objects are read-only values (a
    str with the parse's results), so one parse of each serves every read; one registry serves
    one message (:func:`_policy`), so nothing is kept from message to message."""

    def __init__(self) -> None:
        super().__init__()
        self.parsed: dict[tuple[str, str], Any] = {}

    def __call__(self, name: str, value: str) -> Any:
        key = (name, value)
        header = self.parsed.get(key)
        if header is None:
            header = self.parsed[key] = super().__call__(name, value)  # a parse that raises is not kept
        return header


def _policy() -> Any:
    """The default policy with a header registry of its own (:class:`_ParsedHeaders`), for one
    message's parse."""
    return email_policy.default.clone(header_factory=_ParsedHeaders())


def _parse(data: bytes, origin: str) -> tuple[Message, datetime | None]:
    """A message (role None) and its Date (None when it has none it can use)."""
    msg = BytesParser(policy=_policy()).parsebytes(data)
    notes: list[str] = []
    senders = _addresses(msg, "from") or _addresses(msg, "sender")
    display, sender = senders[0] if senders else ("", "")
    date = parse_date(_raw_header(msg, "date"))
    plain, html = _bodies(msg)
    bodies = [b for b in (plain, html) if b is not None]
    text = _part_text(plain, notes) if plain is not None else ""
    if not text.strip() and html is not None:
        text = _part_text(html, notes)
    own, quoted, signature = split_reply(text, f"{display} {sender.partition('@')[0]}")
    message = Message(
        time=date or _EPOCH, sender=sender, text=own, name=display or None,
        subject=_header(msg, "subject"), signature=signature, quoted=quoted,
        attachments=_attachments(msg, bodies), auto_reply=is_auto_reply(msg),
        message_id=normalize_message_id(_header(msg, "message-id")), origin=origin, notes=notes,
    )
    return message, date


def _received_date(data: bytes) -> datetime | None:
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(data)
    for value in headers.get_all("received") or []:
        d = parse_date(str(value).rpartition(";")[2])
        if d is not None:
            return d
    return None


def parse_email_bytes(data: bytes, origin: str) -> Message:
    """One message parsed fully (role None): sender and display name, time (Date, else the
    newest Received, else 1970-01-01 noted), subject, the text it adds with its quoted history
    and signature apart, attachments listed, auto-reply flag, notes on charsets."""
    message, date = _parse(data, origin)
    if date is None:
        received = _received_date(data)
        if received is not None:
            message.time = received
            message.notes.append("no usable Date header: time taken from its Received header")
        else:
            message.notes.append("no usable Date header: time unknown")
    return message


def _reread(path: str, offset: int, length: int, number: int | None,
            threading: bool = True) -> tuple[EmailRef | _Located, bytes]:
    """A message read again from its file: its ref as the scan made it (``threading`` False:
    only where it is, its Message-ID and Date, :func:`_ref`), and its bytes with the mbox
    ``>From`` escaping undone. Raises :class:`WrittenInputError` when it cannot be read or is
    no longer the message that was scanned there."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
    except OSError as e:
        raise WrittenInputError(path, f"cannot be read: {e}") from e
    mbox = number is not None
    changed = WrittenInputError(path, f"{f'message {number} ' if mbox else ''}changed since it was scanned; "
                                      "scan the input again")
    if len(raw) != length:
        raise changed
    # the scan's own reading of the message's lines (same line pieces, same state), so the ref is the scan's
    span = _Span(offset, number or 0, mbox)
    stream = io.BytesIO(raw)
    pos, at_start = offset, True
    while line := stream.readline(_LINE_LIMIT):
        span.add(line, pos, at_start)
        pos += len(line)
        at_start = line.endswith(b"\n")
    ref = _ref(path, span, mbox, threading)
    if not isinstance(ref, (EmailRef, _Located)) or (ref.offset, ref.length) != (offset, length):
        raise changed
    return ref, _ESCAPED_FROM_LINES.sub(rb"\1", raw) if mbox else raw


def _read_thread(thread: EmailThreadRef, threading: bool = True) -> Iterator[tuple[EmailRef | _Located, bytes]]:
    """The ref (``threading`` False: a :class:`_Located`) and bytes of each message of
    ``thread``, read from the files (see :func:`_reread`);
    a message whose hash is not the one scanned raises :class:`WrittenInputError` (the first 4
    bytes of each message's hash, then the thread's hash once all are read)."""
    hashes: list[str] = []
    for p, offset, length, number, _, prefix in _RECORD.iter_unpack(thread.records):
        path = thread.paths[p]
        ref, data = _reread(path, offset, length, number or None, threading)
        sha = hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()
        if bytes.fromhex(sha[:8]) != prefix:
            where = f"message {number} " if number else ""
            raise WrittenInputError(path, f"{where}changed since it was scanned; scan the input again")
        hashes.append(sha)
        yield ref, data
    if hashlib.sha256("".join(hashes).encode()).hexdigest() != thread.sha256:
        raise WrittenInputError(thread.path, "changed since it was scanned; scan the input again")


def _domain_matches(addr: str, domains: Sequence[str]) -> bool:
    domain = addr.rpartition("@")[2]
    for d in domains:
        d = d.strip().lower().lstrip("@").lstrip(".")
        if d and (domain == d or domain.endswith("." + d)):
            return True
    return False


def _assign_roles(messages: list[Message], parents: Sequence[int | None], agent_domains: Sequence[str],
                  agent_addresses: Sequence[str]) -> None:
    if agent_domains or agent_addresses:
        agents = {a.strip().lower() for a in agent_addresses}
        for m in messages:
            agent = bool(m.sender) and (m.sender in agents or _domain_matches(m.sender, agent_domains))
            m.role = AGENT if agent else CUSTOMER
        return
    humans = [i for i, m in enumerate(messages) if not m.auto_reply and m.sender]
    if not humans:
        return
    role = {messages[humans[0]].sender: CUSTOMER}
    edges: list[tuple[str, str]] = []
    for i in humans:
        p = parents[i] if i < len(parents) else None
        if p is None:
            p = next((j for j in range(i - 1, -1, -1) if messages[j].sender != messages[i].sender
                      and not messages[j].auto_reply), None)
        if p is not None and messages[p].sender and messages[p].sender != messages[i].sender:
            edges.append((messages[i].sender, messages[p].sender))
    other = {AGENT: CUSTOMER, CUSTOMER: AGENT}
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if b in role and a not in role:
                role[a] = other[role[b]]
                changed = True
            elif a in role and b not in role:
                role[b] = other[role[a]]
                changed = True
    for m in messages:
        m.role = role.get(m.sender)


def read_email_thread(thread: EmailThreadRef, agent_domains: Sequence[str] = (),
                      agent_addresses: Sequence[str] = ()) -> WrittenThread:
    """The messages of ``thread`` parsed (see :func:`parse_email_bytes`), in time order, with
    roles: ``agent`` for an address in ``agent_addresses`` or of a domain (or subdomain) in
    ``agent_domains``, ``customer`` for the others; without either, from who answers whom (the
    thread's starter is the customer, whoever answers the customer the agent, and so on; an
    auto-reply has its sender's role; an address that cannot be placed has None). An agent
    message without a display name takes its name from the signature. Raises
    :class:`EmptyConversationError` naming the file when no message says anything, and
    :class:`WrittenInputError` when a file changed since it was scanned."""
    if not thread.records:
        raise EmptyConversationError("", f"e-mail thread {thread.conversation_id} has no message")
    messages: list[Message] = []
    previous: datetime | None = None
    for ref, data in _read_thread(thread, threading=False):
        try:
            message, _ = _parse(data, ref.origin)
        except Exception as e:  # the email package is lenient; anything it still raises names the message
            where = f"message {ref.number}: " if ref.number is not None else ""
            raise MalformedEmailError(ref.path, f"{where}cannot be parsed: {type(e).__name__}: {e}") from e
        message.message_id = message.message_id or ref.message_id
        if ref.date is not None:
            message.time = ref.date
        elif previous is not None:
            message.time = previous
            message.notes.append("no usable Date header: time taken from the message before it")
        else:
            message.time = _file_time(ref.path)
            message.notes.append("no usable Date header: time taken from its file's modification time")
        previous = message.time
        messages.append(message)
    parents = list(thread.parents)
    _assign_roles(messages, parents, agent_domains, agent_addresses)
    for m in messages:
        if m.role == AGENT and not m.name and m.signature:
            m.name = name_from_signature(m.signature)
    if not any(m.text.strip() for m in messages):
        raise EmptyConversationError(
            thread.path, f"e-mail thread {thread.conversation_id}: none of its {len(messages)} message(s) says "
                         "anything (empty, attachments only, or only quoted history and signature)")
    return WrittenThread(kind=EMAIL_KIND, conversation_id=thread.conversation_id, messages=messages,
                         origins=list(thread.paths), notes=list(thread.notes))


def _file_time(path: str) -> datetime:
    try:
        return datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc)
    except (OSError, OverflowError, ValueError):
        return _EPOCH
