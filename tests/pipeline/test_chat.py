"""Chats: JSON (one conversation a file) and CSV (many a file), their defined behaviours and
their typed errors."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.ingest.chat import (
    ChatRef, is_chat_csv, is_chat_json, read_chat_csv, read_chat_json, scan_chat_csv,
)
from pipeline.ingest.written import ChatFormatError, EmptyConversationError, WrittenInputError

UTC = timezone.utc


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def msg(time: str, sender: str, role: str | None, text: str, **extra: object) -> dict:
    m: dict = {"time": time, "sender": sender, "text": text, **extra}
    if role is not None:
        m["role"] = role
    return m


CHAT = [
    msg("2026-03-02T10:00:00Z", "Lena", "customer", "Hi, my parcel has not arrived."),
    msg("2026-03-02T10:00:02Z", "system", "system", "Anna joined the chat"),
    msg("2026-03-02T10:00:40+01:00", "Anna", "agent", "Hello Lena, let me check."),  # 09:00:40Z: out of order
    msg("2026-03-02T10:01:30Z", "Anna", "agent", "It arrives tomorrow."),
]


# --------------------------------------------------------------------------- sniffing


def test_is_chat_json_recognises_chats_and_nothing_else(tmp_path: Path):
    assert is_chat_json(write_json(tmp_path / "list.json", CHAT))
    assert is_chat_json(write_json(tmp_path / "obj.json", {"conversation_id": "c1", "messages": CHAT}))
    assert is_chat_json(write_json(tmp_path / "empty_obj.json", {"messages": []}))
    # a labels file, a config, other lists, broken or missing files: not chats, never an exception
    assert not is_chat_json(write_json(tmp_path / "label.json", {"call_id": "c001", "utterances": [{"text": "hi"}]}))
    assert not is_chat_json(write_json(tmp_path / "config.json", {"asr": {"model": "base"}, "messages": "x"}))
    assert not is_chat_json(write_json(tmp_path / "numbers.json", [1, 2, 3]))
    assert not is_chat_json(write_json(tmp_path / "rows.json", [{"a": 1}]))
    assert not is_chat_json(write_json(tmp_path / "empty_list.json", []))
    # a chat cut short is a chat: reading it reports the broken JSON (it is not skipped unseen)
    (tmp_path / "cut.json").write_text('{"messages": [')
    assert is_chat_json(tmp_path / "cut.json")
    (tmp_path / "broken.json").write_text('{"call_id": ')
    assert not is_chat_json(tmp_path / "broken.json")
    (tmp_path / "zero.json").write_bytes(b"")
    assert not is_chat_json(tmp_path / "zero.json")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    assert not is_chat_json(tmp_path / "binary.json")
    assert not is_chat_json(tmp_path / "missing.json")
    assert not is_chat_json(tmp_path)


def test_is_chat_json_decides_a_large_file_from_its_start(tmp_path: Path):
    # the "messages" key comes after a large other key: decided by parsing the file whole
    big = {"notes": "x" * 200_000, "messages": CHAT}
    assert is_chat_json(write_json(tmp_path / "late.json", big))
    # a long chat: its first message decides
    long_chat = CHAT * 2000
    assert is_chat_json(write_json(tmp_path / "long.json", long_chat))
    assert not is_chat_json(write_json(tmp_path / "big_label.json", {"utterances": [{"text": "x" * 100}] * 2000}))


def test_is_chat_csv_needs_the_five_columns(tmp_path: Path):
    (tmp_path / "chats.csv").write_text("Conversation_ID, time,sender,role,text,queue\n")
    (tmp_path / "manifest.csv").write_text("call_id,path,agent_id\nc1,a.wav,a7\n")
    (tmp_path / "partial.csv").write_text("conversation_id,time,sender,text\n")
    assert is_chat_csv(tmp_path / "chats.csv")
    assert not is_chat_csv(tmp_path / "manifest.csv")
    assert not is_chat_csv(tmp_path / "partial.csv")
    assert not is_chat_csv(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- JSON


def test_json_list_is_read_in_time_order_with_origins(tmp_path: Path):
    path = write_json(tmp_path / "chats" / "c1.json", CHAT)
    thread, meta = read_chat_json(path, "c1")
    assert thread.kind == "chat" and thread.conversation_id == "c1" and meta == {}
    assert thread.origins == [str(path)]
    # message 3 (09:00:40Z) came before message 1: sorted, noted
    assert [m.text for m in thread.messages][:2] == ["Hello Lena, let me check.", "Hi, my parcel has not arrived."]
    assert thread.messages[0].origin.endswith("chats/c1.json message 3")
    assert thread.messages[0].time == datetime(2026, 3, 2, 9, 0, 40, tzinfo=UTC)
    assert any("out of time order" in n for n in thread.notes)
    # the system message is kept, with role system
    system = [m for m in thread.messages if m.sender == "system"]
    assert len(system) == 1 and system[0].role == "system"
    assert [m.role for m in thread.messages] == ["agent", "customer", "system", "agent"]
    assert thread.messages[0].name == "Anna"


def test_json_object_keys_are_metadata(tmp_path: Path):
    path = write_json(tmp_path / "c2.json", {"conversation_id": "c2", "agent_id": "a7", "queue": "billing",
                                             "priority": 2, "vip": True, "messages": CHAT[:1]})
    thread, meta = read_chat_json(path, "c2")
    assert meta == {"conversation_id": "c2", "agent_id": "a7", "queue": "billing", "priority": "2", "vip": "true"}
    assert len(thread.messages) == 1 and thread.notes == []


def test_equal_times_keep_the_file_order(tmp_path: Path):
    t = "2026-03-02T10:00:00Z"
    chat = [msg("2026-03-02T10:00:05Z", "Lena", "customer", "third"), msg(t, "Lena", "customer", "first"),
            msg(t, "Anna", "agent", "second")]
    thread, _ = read_chat_json(write_json(tmp_path / "c.json", chat), "c")
    assert [m.text for m in thread.messages] == ["first", "second", "third"]


def test_time_without_timezone_is_utc_and_noted(tmp_path: Path):
    chat = [msg("2026-03-02T10:00:00", "Lena", "customer", "hi"), msg("2026-03-02T10:00:30Z", "Anna", "agent", "hello")]
    thread, _ = read_chat_json(write_json(tmp_path / "c.json", chat), "c")
    first = thread.messages[0]
    assert first.time == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert any("UTC" in n for n in first.notes) and thread.messages[1].notes == []
    assert any("UTC" in n and "message 1" in n for n in thread.notes)


def test_missing_or_unknown_role_is_taken_from_the_sender(tmp_path: Path):
    chat = [msg("2026-03-02T10:00:00Z", "Lena", None, "hi"),
            msg("2026-03-02T10:00:10Z", "Anna", "bot", "hello"),
            msg("2026-03-02T10:00:20Z", "Lena", "customer", "my parcel"),
            msg("2026-03-02T10:00:30Z", "Anna", "Agent", "checking")]
    thread, _ = read_chat_json(write_json(tmp_path / "c.json", chat), "c")
    assert [m.role for m in thread.messages] == ["customer", "agent", "customer", "agent"]
    assert any("no role" in n for n in thread.messages[0].notes)
    assert any("'bot'" in n for n in thread.messages[1].notes)
    assert any("role taken from the same sender" in n and "message 1, message 2" in n for n in thread.notes)


def test_role_that_cannot_be_taken_from_the_sender_is_an_error(tmp_path: Path):
    chat = [msg("2026-03-02T10:00:00Z", "Lena", "customer", "hi"), msg("2026-03-02T10:00:10Z", "Anna", "bot", "hello")]
    path = write_json(tmp_path / "c.json", chat)
    with pytest.raises(ChatFormatError, match=r"c\.json: message 2: role 'bot' .*'Anna'"):
        read_chat_json(path, "c")


@pytest.mark.parametrize("content, match", [
    ('[{"time": "2026-03-02T10:00:00Z", ', r"not valid JSON.*line 1"),
    ('{"messages": [', r"not valid JSON"),
    ('"just a string"', r"not a chat"),
    ('{"conversation_id": "x"}', r"not a chat"),
    ('{"messages": {"a": 1}}', r"not a chat"),
    ('[{"time": "2026-03-02T10:00:00Z", "sender": "Lena", "role": "customer", "text": "a"}, "hello"]',
     r"message 2: not an object"),
])
def test_invalid_json_or_structure_is_a_chat_format_error(tmp_path: Path, content: str, match: str):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ChatFormatError, match=match) as err:
        read_chat_json(path, "bad")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("broken, match", [
    ({"text": None}, r"message 2: no text"),
    ({"text": 5}, r"message 2: text is not a string"),
    ({"sender": ""}, r"message 2: no sender"),
    ({"sender": None}, r"message 2: no sender"),
    ({"time": None}, r"message 2: no time"),
    ({"time": "yesterday at ten"}, r"message 2: time 'yesterday at ten' is not ISO 8601"),
    ({"time": "2026-03-02"}, r"message 2: time '2026-03-02' is not ISO 8601"),
    ({"time": 1772445600}, r"message 2: time 1772445600 is not ISO 8601"),
])
def test_message_errors_name_the_message(tmp_path: Path, broken: dict, match: str):
    second = {**msg("2026-03-02T10:00:10Z", "Anna", "agent", "hello"), **broken}
    second = {k: v for k, v in second.items() if v is not None}
    chat = [msg("2026-03-02T10:00:00Z", "Lena", "customer", "hi"), second]
    path = write_json(tmp_path / "c.json", chat)
    with pytest.raises(ChatFormatError, match=match):
        read_chat_json(path, "c")


@pytest.mark.parametrize("data", [
    [],
    {"messages": []},
    [msg("2026-03-02T10:00:00Z", "Lena", "customer", "  "), msg("2026-03-02T10:00:05Z", "Anna", "agent", "")],
])
def test_conversation_without_text_is_empty(tmp_path: Path, data: object):
    with pytest.raises(EmptyConversationError, match=r"e\.json: .*no message with text"):
        read_chat_json(write_json(tmp_path / "e.json", data), "e")


def test_message_with_empty_text_is_left_out_and_noted(tmp_path: Path):
    chat = [msg("2026-03-02T10:00:00Z", "Lena", "customer", "hi"), msg("2026-03-02T10:00:05Z", "Lena", "customer", " "),
            msg("2026-03-02T10:00:09Z", "Anna", "agent", "hello")]
    thread, _ = read_chat_json(write_json(tmp_path / "c.json", chat), "c")
    assert [m.text for m in thread.messages] == ["hi", "hello"]
    assert any("without text left out (message 2)" in n for n in thread.notes)


def test_auto_reply_and_id_are_read(tmp_path: Path):
    chat = [msg("2026-03-02T10:00:00Z", "Lena", "customer", "hi", id="m1"),
            msg("2026-03-02T10:00:01Z", "Bot", "agent", "An agent will be with you shortly.", auto_reply=True)]
    thread, _ = read_chat_json(write_json(tmp_path / "c.json", chat), "c")
    assert [m.auto_reply for m in thread.messages] == [False, True]
    assert thread.messages[0].message_id == "m1"


# --------------------------------------------------------------------------- CSV

CSV = (
    "conversation_id,time,sender,role,text,queue\n"                          # line 1
    "c1,2026-03-02T10:00:00Z,Lena,customer,Hi there,billing\n"                # line 2
    "c2,2026-03-02T11:00:00Z,Omar,customer,\"Two\nlines\",tech\n"             # lines 3-4
    ",2026-03-02T11:00:05Z,Omar,customer,lost row,tech\n"                     # line 5
    "c1,2026-03-02T10:00:30Z,Anna,,\"Hello, Lena\",\n"                        # line 6
    "\n"                                                                      # line 7: blank
    "c2,2026-03-02T11:01:00Z,Ben,agent,Hi Omar,tech\n"                        # line 8
    "c1,2026-03-02T10:00:20Z,Anna,agent,Checking,billing\n"                   # line 9
)


def test_scan_gives_one_ref_per_conversation_and_errors_per_row(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_text(CSV)
    refs, errors = scan_chat_csv(path)
    assert [r.conversation_id for r in refs] == ["c1", "c2"]
    c1, c2 = refs
    assert (c1.n_messages, c1.first_line, c2.n_messages, c2.first_line) == (3, 2, 2, 3)
    assert c1.path == path and len(c1.sha256) == 64 and c1.sha256 != c2.sha256
    lines = CSV.encode().splitlines(keepends=True)
    assert c1.size == len(lines[1]) + len(lines[5]) + len(lines[8])
    assert c2.size == len(lines[2]) + len(lines[3]) + len(lines[7])
    assert len(errors) == 1 and isinstance(errors[0], ChatFormatError)
    assert "chats.csv: line 5: no conversation_id" in str(errors[0])
    # frozen and picklable (it goes to a worker process)
    assert pickle.loads(pickle.dumps(c1)) == c1
    with pytest.raises(dataclasses.FrozenInstanceError):
        c1.n_messages = 9  # type: ignore[misc]


def test_read_csv_conversation(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_text(CSV)
    refs, _ = scan_chat_csv(path)
    t1, m1 = read_chat_csv(refs[0])
    assert t1.kind == "chat" and t1.conversation_id == "c1" and m1 == {"queue": "billing"}
    assert [m.text for m in t1.messages] == ["Hi there", "Checking", "Hello, Lena"]
    assert [m.role for m in t1.messages] == ["customer", "agent", "agent"]  # line 6's role from Anna's line 9
    assert [m.origin.rsplit(" ", 2)[1:] for m in t1.messages] == [["line", "2"], ["line", "9"], ["line", "6"]]
    assert t1.messages[0].origin.endswith("chats.csv line 2")
    assert any("out of time order" in n for n in t1.notes) and any("line 6" in n for n in t1.notes)
    t2, m2 = read_chat_csv(refs[1])
    assert [m.text for m in t2.messages] == ["Two\nlines", "Hi Omar"] and m2 == {"queue": "tech"}
    assert t2.messages[1].origin.endswith("line 8")


def test_csv_hash_follows_the_conversation_only(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_text(CSV)
    before = {r.conversation_id: r.sha256 for r in scan_chat_csv(path)[0]}
    path.write_text(CSV.replace("Hi Omar", "Hi Omar!"))
    after = {r.conversation_id: r.sha256 for r in scan_chat_csv(path)[0]}
    assert after["c1"] == before["c1"] and after["c2"] != before["c2"]


def test_csv_changed_since_the_scan_is_refused(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_text(CSV)
    ref = scan_chat_csv(path)[0][1]
    path.write_text(CSV.replace("Hi Omar", "Hi Omar!"))
    with pytest.raises(WrittenInputError, match="changed since"):
        read_chat_csv(ref)


@pytest.mark.parametrize("row, match", [
    ("c9,not a time,Lena,customer,hi", r"line 3: time 'not a time' is not ISO 8601"),
    ("c9,,Lena,customer,hi", r"line 3: no time"),
    ("c9,2026-03-02T10:00:05Z,,customer,hi", r"line 3: no sender"),
    ("c9,2026-03-02T10:00:05Z,Lena,robot,hi", r"line 3: role 'robot' .* no other message with a role"),
])
def test_csv_row_errors_name_the_line(tmp_path: Path, row: str, match: str):
    path = tmp_path / "chats.csv"
    path.write_text("conversation_id,time,sender,role,text\n"
                    "c9,2026-03-02T10:00:00Z,Anna,agent,Hello\n" + row + "\n")
    refs, errors = scan_chat_csv(path)
    assert errors == [] and len(refs) == 1
    with pytest.raises(ChatFormatError, match=match) as err:
        read_chat_csv(refs[0])
    assert "chats.csv" in str(err.value)


def test_csv_empty_conversation_and_naive_times(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_text("conversation_id,time,sender,role,text\n"
                    "e1,2026-03-02T10:00:00Z,Lena,customer,\n"
                    "n1,2026-03-02 10:00:00,Lena,customer,hi\n")
    refs, _ = scan_chat_csv(path)
    with pytest.raises(EmptyConversationError, match="e1"):
        read_chat_csv(refs[0])
    thread, meta = read_chat_csv(refs[1])
    assert thread.messages[0].time == datetime(2026, 3, 2, 10, 0, tzinfo=UTC) and meta == {}
    assert any("UTC" in n for n in thread.notes)


def test_csv_without_the_columns_or_unreadable_is_one_error(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("call_id,path\nc1,a.wav\n")
    refs, errors = scan_chat_csv(path)
    assert refs == [] and len(errors) == 1 and "missing conversation_id" in str(errors[0])
    refs, errors = scan_chat_csv(tmp_path / "nope.csv")
    assert refs == [] and len(errors) == 1 and "cannot read" in str(errors[0])


def test_csv_line_not_utf8_is_latin1(tmp_path: Path):
    path = tmp_path / "chats.csv"
    path.write_bytes("conversation_id,time,sender,role,text\n".encode()
                     + "c1,2026-03-02T10:00:00Z,Lena,customer,Grüße\n".encode("latin-1")
                     + "c1,2026-03-02T10:00:09Z,Anna,agent,Grüße zurück\n".encode())
    refs, errors = scan_chat_csv(path)
    thread, _ = read_chat_csv(refs[0])
    assert [m.text for m in thread.messages] == ["Grüße", "Grüße zurück"]
    assert any("latin-1" in n for n in thread.messages[0].notes)
    assert any("latin-1" in n for n in thread.notes)


def test_chat_ref_fields():
    names = [f.name for f in dataclasses.fields(ChatRef)]
    assert names[:6] == ["conversation_id", "path", "sha256", "size", "n_messages", "first_line"]
