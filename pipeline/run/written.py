"""The ``email`` and ``chat`` sources: a written conversation read by its reader
(pipeline/ingest/email.py, pipeline/ingest/chat.py) and given to the analysis stage as a
Conversation, one utterance per message.

Message n is utterance ``m{n:03d}`` (numbered in time order, auto-replies and system messages
included), at its time in seconds from the conversation's first message; its words are the
text's whitespace tokens, 10 ms apart, so that evidence quotes a span of
words as it does in a call and the written record gives the message number and the character
span of each quote. Auto-replies and system messages have the role ``system``: no detector
takes them for the agent or the customer. The participants are ``W1``, ``W2``, ... in order of
first message; the record keeps their roles, never their addresses (a customer's address is
kept only as a hash, for repeat contacts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.ingest.discover import CallInput
from pipeline.ingest.sources import Conversation, Source
from pipeline.ingest.written import AGENT, CUSTOMER, SYSTEM, EmptyConversationError, Message, WrittenThread
from pipeline.interaction.record import CHAT, EMAIL, SourceInfo
from pipeline.interaction.utterances import Utterance, Word

WORD_STEP_S = 0.01
"""Seconds between two words of a message (they share the message's time): apart enough for
quotes to be cut at the right words (times are compared to a millisecond), close enough that
a message's words stay at its time."""


def utterance_id(number: int) -> str:
    return f"m{number:03d}"


def analysed_role(message: Message) -> str:
    """The role a message's words have in the analysis: auto-replies are nobody's words."""
    if message.auto_reply or message.role == SYSTEM:
        return SYSTEM
    return message.role or "unknown"


def thread_conversation(thread: WrittenThread, path: str, sha256: str, fmt: str,
                        stages: dict[str, float] | None = None,
                        customer_key: bytes | None = None) -> tuple[Conversation, list[Message]]:
    """A written thread as the Conversation the analysis stage reads, and its messages; with
    ``customer_key`` (the results folder's, pipeline/insights/customers.py) the customer's
    address is kept as its keyed hash (``customer_hash``), without it not at all."""
    messages = list(thread.messages)
    if not messages:
        raise EmptyConversationError(path, "holds no message")
    t0 = messages[0].time
    speakers: dict[str, str] = {}  # sender -> W1, W2 ...
    roles: dict[str, str] = {}
    counts: dict[str, int] = {}
    utterances: list[Utterance] = []
    for n, m in enumerate(messages, 1):
        speaker = speakers.setdefault(m.sender, f"W{len(speakers) + 1}")
        if not m.auto_reply and m.role in (AGENT, CUSTOMER, SYSTEM):
            roles.setdefault(speaker, m.role)
        counts[speaker] = counts.get(speaker, 0) + 1
        at = max((m.time - t0).total_seconds(), 0.0)
        tokens = m.text.split()
        words = [Word(tok, at + i * WORD_STEP_S, at + (i + 1) * WORD_STEP_S, 1.0) for i, tok in enumerate(tokens)]
        utterances.append(Utterance(utterance_id(n), 0, at, at + len(tokens) * WORD_STEP_S, " ".join(tokens), words,
                                    speaker=speaker, role=analysed_role(m)))
    for speaker in speakers.values():
        roles.setdefault(speaker, "unknown")
    customer_senders = sorted({m.sender for m in messages if m.role == CUSTOMER and not m.auto_reply})
    span = (messages[-1].time - t0).total_seconds()
    extra: dict[str, Any] = {
        "messages": len(messages),
        "participants": len(speakers),
        "started_at": t0.isoformat(),
        "ended_at": messages[-1].time.isoformat(),
        "files": list(thread.origins),
    }
    if customer_senders and customer_key:
        from pipeline.insights.customers import customer_hash

        hashed = customer_hash(customer_senders[0], customer_key)
        if hashed:
            extra["customer_hash"] = hashed
    if thread.notes:
        extra["notes"] = list(thread.notes)
    source = SourceInfo(thread.kind, path, sha256, max(span, 0.0), format=fmt, extra=extra)
    block = {
        "method": "written",
        "roles": dict(sorted(roles.items())),
        "confidence": 1.0 if all(m.role for m in messages) else 0.7,
        "participants": {s: {"role": roles[s], "messages": counts[s]} for s in sorted(counts)},
        "evidence": [],
    }
    return Conversation(source, utterances, block, separate_channels=False, stages=dict(stages or {})), messages


def redacted_signatures(messages: list[Message], options: Any, company: str | None) -> list[str]:
    """Each message's signature with its personal data masked as the text is (names, phone
    numbers, addresses; the writers' From names wherever they are)."""
    from pipeline.ingest.written import person_names
    from pipeline.pii.text import find_pii, redact_utterances

    signed = [(n, m.signature) for n, m in enumerate(messages) if m.signature.strip()]
    out = [""] * len(messages)
    if not signed:
        return out
    if not options.enabled or not options.redact:
        for n, text in signed:
            out[n] = text
        return out
    lines = [(n, line) for n, text in signed for line in text.splitlines() if line.strip()]
    pieces = [Utterance(f"s{k:04d}", 0, 0.0, 0.0, " ".join(line.split()),
                        [Word(w, 0.0, 0.0, 1.0) for w in line.split()]) for k, (_, line) in enumerate(lines)]
    names = set().union(*person_names(messages).values())
    masked = redact_utterances(pieces, find_pii(pieces, options, company, names))
    for (n, _), piece in zip(lines, masked):
        out[n] = f"{out[n]}\n{piece.text}" if out[n] else piece.text
    return out


def message_block(messages: list[Message], signatures: list[str] | None = None) -> list[dict[str, Any]]:
    """The record's ``messages``: each message's number, time, role, subject, attachments and
    flags (its text is the utterance of the same number; no address is written), and its
    signature as ``signatures`` gives it (masked: ``redacted_signatures``)."""
    out = []
    for n, m in enumerate(messages, 1):
        d: dict[str, Any] = {"n": n, "utterance_id": utterance_id(n), "time": m.time.isoformat(), "role": analysed_role(m)}
        if m.role == AGENT and m.name:
            d["name"] = m.name
        if m.subject:
            d["subject"] = m.subject
        if m.attachments:
            d["attachments"] = [a.to_dict() for a in m.attachments]
        if m.auto_reply:
            d["auto_reply"] = True
        if signatures and signatures[n - 1]:
            d["signature"] = signatures[n - 1]
        if m.notes:
            d["notes"] = list(m.notes)
        out.append(d)
    return out


def agent_identity(messages: list[Message]) -> str | None:
    """Who answered for the company: the sender of the first agent message (an address or a
    chat name), for ``agent_id`` when the manifest gives none."""
    for m in messages:
        if m.role == AGENT and not m.auto_reply:
            return m.sender
    return None


class WrittenSource(Source):
    """Reads one kind of written conversation (see the module docstring)."""

    uses_scratch = False  # nothing is decoded: no folder to make and remove per conversation

    def __init__(self, config: Config, work_dir: Path, threads: int | None = None):
        self.config = config

    def read(self, call: CallInput) -> tuple[WrittenThread, dict[str, str], str]:
        """The thread, metadata it carries, and its format name."""
        raise NotImplementedError

    @contextmanager
    def open(self, call: CallInput, sha256: str, scratch: Path) -> Iterator[Conversation]:
        t0 = time.perf_counter()
        thread, metadata, fmt = self.read(call)
        for key, value in metadata.items():
            call.metadata.setdefault(key, value)
        conversation, messages = thread_conversation(thread, str(call.path), sha256, fmt,
                                                     {"read": time.perf_counter() - t0}, call.customer_key)
        agent = agent_identity(messages)
        if agent and not call.metadata.get("agent_id"):
            call.metadata["agent_id"] = agent
        conversation.messages = messages
        yield conversation


class EmailSource(WrittenSource):
    kind = EMAIL

    def read(self, call: CallInput) -> tuple[WrittenThread, dict[str, str], str]:
        from pipeline.ingest.email import read_email_thread

        o = self.config.channels.email
        thread = read_email_thread(call.locator, o.agent_domains, o.agent_addresses)
        fmt = "mbox" if str(call.path).lower().endswith(".mbox") else "eml"
        return thread, {}, fmt


class ChatSource(WrittenSource):
    kind = CHAT

    def read(self, call: CallInput) -> tuple[WrittenThread, dict[str, str], str]:
        from pipeline.ingest.chat import read_chat_csv, read_chat_json

        if call.locator is not None:
            thread, metadata = read_chat_csv(call.locator)
            fmt = "csv"
        else:
            thread, metadata = read_chat_json(Path(call.path), call.call_id)
            fmt = "json"
        return thread, {k: str(v) for k, v in metadata.items() if v is not None}, fmt
