"""Written conversations (e-mail threads and chats) as their readers give them to the source.

An e-mail thread (pipeline/ingest/email.py) and a chat (pipeline/ingest/chat.py) both become a
:class:`WrittenThread`: its messages in time order, each with its sender, role (when known),
time, and the text the message adds (quoted history and signature set apart). The written
source (pipeline/run/written.py) turns a thread into the Conversation the one analysis stage
reads, one utterance per message.

Errors name the file and, where it is one message that is wrong, the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.errors import CallError

AGENT, CUSTOMER, SYSTEM = "agent", "customer", "system"
WRITTEN_ROLES = (AGENT, CUSTOMER, SYSTEM)


class WrittenInputError(CallError):
    """A written conversation that cannot be read as one (names the file, and the message)."""


class MalformedEmailError(WrittenInputError):
    """An e-mail file or mbox archive that is not e-mail (or holds no message with a body)."""


class ChatFormatError(WrittenInputError):
    """A chat file that is not in the chat format (JSON messages or the chat CSV columns)."""


class EmptyConversationError(WrittenInputError):
    """A conversation without a single message that says anything."""


@dataclass
class Attachment:
    """An attachment as listed (never stored): its name, size in bytes and type."""

    name: str
    size: int
    content_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "content_type": self.content_type}


@dataclass
class Message:
    """One message of a written conversation."""

    time: datetime
    """When it was sent (timezone-aware)."""
    sender: str
    """The e-mail address (lowercase) or the chat sender's name."""
    text: str
    """What this message adds: the quoted history and the signature are not in it."""
    role: str | None = None
    """agent / customer / system; None when the reader cannot tell (decided by the source)."""
    name: str | None = None
    """The sender's display name (``From: "Anna Lee" <...>``; a chat sender), when known."""
    subject: str = ""
    signature: str = ""
    """The signature block the sender closed with (kept apart from ``text``)."""
    quoted: str = ""
    """The earlier messages quoted in this one (not analysed: they are their own messages)."""
    attachments: list[Attachment] = field(default_factory=list)
    auto_reply: bool = False
    """An automatic reply (out of office, ticket acknowledgement): no one answered."""
    message_id: str | None = None
    origin: str = ""
    """Where it was read: ``mail/x.eml``, ``archive.mbox message 17``, ``chats.csv line 12``."""
    notes: list[str] = field(default_factory=list)
    """Defined behaviours applied to it (e.g. an unknown charset read as latin-1)."""


@dataclass
class WrittenThread:
    """One written conversation: an e-mail thread or a chat."""

    kind: str
    """``email`` or ``chat`` (pipeline/interaction/record.py)."""
    conversation_id: str
    messages: list[Message]
    """In time order."""
    origins: list[str] = field(default_factory=list)
    """The files its messages came from."""
    notes: list[str] = field(default_factory=list)
    """Defined behaviours applied to the conversation (duplicate Message-IDs, reply loops, ...)."""


NAME_LABEL_WORDS = frozenset("customer client agent support team service services care desk help helpdesk bot system "
                             "admin info sales billing accounts noreply no-reply reply mr mrs ms miss dr the of and".split())
"""Words of a display name that label a mailbox or a role rather than name a person."""


SIGN_OFF = re.compile(
    r"\b(regards|kind regards|best regards|warm regards|best wishes|all the best|best|sincerely|yours|cheers|"
    r"thanks|thank you|many thanks|take care|warmly|speak soon|talk soon|have a (great|good|nice|lovely) (day|week|weekend))\W*$",
    re.IGNORECASE)
"""A line closing a message ("Kind regards,", "Cheers", "Have a great day!"), read on lines of
at most eight words."""


def is_sign_off(line: str) -> bool:
    return bool(SIGN_OFF.search(line)) and len(line.split()) <= 8


def signature_name(signature: str) -> str | None:
    """The name a signature is signed with: the line after its sign-off ("Best wishes," then
    "Jess"), or its first line when that is all a name (one to three capitalised words)."""
    lines = [ln.strip() for ln in signature.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if is_sign_off(line):
            return lines[i + 1] if i + 1 < len(lines) else None
    if lines and re.fullmatch(r"(-\s*)?[A-Z][a-z'-]+( [A-Z][a-z'-]+){0,2}", lines[0]):
        return lines[0].lstrip("- ")
    return None


def person_names(messages: list[Message]) -> dict[str, set[str]]:
    """Per role, the words of the writers' display names (the From name of an e-mail, a chat's
    sender name, the name a signature is signed with) that name a person: a name of one to three words, none a label such as
    "Support" or "Customer Care" (a mailbox's name names no one), lowercase."""
    out: dict[str, set[str]] = {}
    for m in messages:
        if m.auto_reply or not m.role:
            continue
        for text in (m.name, m.sender if "@" not in (m.sender or "") else None, signature_name(m.signature)):
            words = re.findall(r"[A-Za-z][A-Za-z'-]+", re.sub(r"\(.*?\)", " ", text or ""))
            if 1 <= len(words) <= 3 and not any(w.lower() in NAME_LABEL_WORDS for w in words):
                out.setdefault(m.role, set()).update(w.lower() for w in words if len(w) >= 2)
    return out

