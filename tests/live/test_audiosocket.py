"""Asterisk AudioSocket legs over real TCP: clients on asyncio streams connect to the listener
that ``callqa serve --live --audiosocket-port`` starts in the app's lifespan (uvicorn on
loopback), one connection per leg, customer legs on the port and agent legs on the next; the
archived recording checked sample by sample against the audio sent."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES
from pipeline.errors import ConfigError
from pipeline.live.audiosocket import (AUDIO, FRAME, HANGUP, UUID, AudioSocketSettings, Placer, parse_networks,
                                       peer_allowed)
from pipeline.live.calls import LiveCalls
from pipeline.live.options import LiveOptions
from pipeline.review.db import make_engine
from pipeline.review.migrate import upgrade
from servers import start_server, stop_server

CHUNK = 160
"""Samples in one audio message (20 ms, 320 bytes), as Asterisk sends them."""


@pytest.fixture(scope="module")
def call_audio() -> dict[str, np.ndarray]:
    pcm, rate = sf.read(SAMPLES / "c001.wav", dtype="int16")
    assert rate == 8000 and pcm.ndim == 2
    return {"agent": pcm[:, 0].copy(), "customer": pcm[:, 1].copy()}


def two_free_ports() -> tuple[int, int]:
    socks = [socket.socket() for _ in range(2)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return socks[0].getsockname()[1], socks[1].getsockname()[1]
    finally:
        for s in socks:
            s.close()


def start_live(tmp_path: Path, allow: tuple[str, ...] = ("127.0.0.1/32",)) -> dict:
    db = str(tmp_path / "review.db")
    engine = make_engine(db)
    upgrade(engine)
    engine.dispose()
    from pipeline.review.app import create_app

    live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive"), reconnect_grace_s=0.5))
    customer, agent = two_free_ports()
    settings = AudioSocketSettings(customer, agent, "127.0.0.1", allow)
    srv, thread, _ = start_server(create_app(db, live=live, audiosocket=settings))
    return {"srv": srv, "thread": thread, "live": live, "archive": tmp_path / "archive",
            "ports": {"customer": customer, "agent": agent}}


@pytest.fixture
def server(tmp_path: Path):
    s = start_live(tmp_path)
    yield s
    stop_server(s["srv"], s["thread"])


def message(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


async def stream_leg(port: int, call: uuid.UUID, pcm: np.ndarray, t0: float, *, skip: range = range(0),
                     hangup: bool = True, local: str | None = None, late_start: int = 0) -> None:
    """One leg: the UUID, then ``pcm`` 20 ms a message at real-time pace from ``t0`` (the
    chunks in ``skip`` not sent: the leg is silent then; the first ``late_start`` chunks sent
    together, when the next one is due), then a hang-up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0) if local else None)
    writer.write(message(UUID, call.bytes))
    for k, i in enumerate(range(0, pcm.size, CHUNK)):
        if k in skip:
            continue
        await asyncio.sleep(max(0.0, t0 + max(k, late_start) * CHUNK / 8000 - time.monotonic()))
        writer.write(message(AUDIO, pcm[i : i + CHUNK].astype("<i2").tobytes()))
        await writer.drain()
    if hangup:
        writer.write(message(HANGUP))
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def stream_call(server: dict, call: uuid.UUID, audio: dict[str, np.ndarray],
                skip: dict[str, range] | None = None, late_start: int = 0) -> None:
    """Both legs of ``call`` at once, from one clock."""
    async def both() -> None:
        t0 = time.monotonic() + 0.1
        await asyncio.gather(*(stream_leg(server["ports"][p], call, audio[p], t0, skip=(skip or {}).get(p, range(0)),
                                          late_start=late_start)
                               for p in ("customer", "agent")))

    asyncio.run(both())


async def send_raw(port: int, data: bytes, local: str | None = None) -> bytes:
    """Send ``data`` on one connection; what the server sent back before it closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0) if local else None)
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        pass
    try:
        got = await asyncio.wait_for(reader.read(), timeout=5)  # EOF: the server closed the connection
    except ConnectionResetError:  # closed with our data unread
        got = b""
    writer.close()
    return got


def wait_for(predicate, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_legs_of_a_call_are_archived_sample_for_sample(server, call_audio) -> None:
    """5 s of each party on its own connection, paced as Asterisk sends, then a hang-up on
    both: one stereo recording, each channel exactly what its leg sent."""
    call = uuid.uuid4()
    n = 5 * 8000
    stream_call(server, call, {p: a[:n] for p, a in call_audio.items()})
    wav = server["archive"] / f"{call}.wav"
    wait_for(wav.exists, timeout=10)
    pcm, rate = sf.read(wav, dtype="int16")
    assert rate == 8000 and pcm.shape == (n, 2)
    assert np.array_equal(pcm[:, 0], call_audio["agent"][:n])
    assert np.array_equal(pcm[:, 1], call_audio["customer"][:n])
    detail = server["live"].get(str(call))
    assert (detail.source, detail.state, detail.ended_reason, detail.streams) == ("audiosocket", "ended", "hangup", 1)


@pytest.mark.parametrize("late_start", [0, 15], ids=["on-time", "start-300ms-late"])
def test_a_paused_leg_stays_aligned_with_the_other(server, call_audio, late_start) -> None:
    """The agent's leg sends nothing for 1 s (chunks 50..99) while the customer's goes on: the
    agent's audio after the pause lands where it was sent (within 40 ms), the pause silent; also
    when both legs' first 300 ms arrived together and late (a stream start the server cannot
    time, as on a loaded machine)."""
    call = uuid.uuid4()
    n = 3 * 8000
    stream_call(server, call, {p: a[:n] for p, a in call_audio.items()}, skip={"agent": range(50, 100)},
                late_start=late_start)
    wav = server["archive"] / f"{call}.wav"
    wait_for(wav.exists, timeout=10)
    pcm, _ = sf.read(wav, dtype="int16")
    assert np.array_equal(pcm[:n, 1], call_audio["customer"][:n])
    agent = pcm[:, 0]
    assert np.array_equal(agent[:8000], call_audio["agent"][:8000])
    resumed = call_audio["agent"][16000:n]
    shifts = [s for s in range(-640, 641) if np.array_equal(agent[16000 + s : 16000 + s + resumed.size], resumed)]
    assert shifts and abs(shifts[0]) <= 2 * FRAME, shifts
    assert not agent[8000 : 16000 + shifts[0]].any()  # the pause is silence
    assert abs(pcm.shape[0] - n) <= 2 * FRAME


def test_a_peer_not_allowed_is_refused_before_any_audio(server, call_audio, caplog) -> None:
    data = message(UUID, uuid.uuid4().bytes) + message(AUDIO, call_audio["customer"][:CHUNK].tobytes())
    assert asyncio.run(send_raw(server["ports"]["customer"], data, local="127.0.0.2")) == b""
    assert "refused: not in --audiosocket-allow" in caplog.text
    assert server["live"].snapshot() == []


def test_an_allow_list_without_the_peer_refuses_it(tmp_path: Path, call_audio, caplog) -> None:
    s = start_live(tmp_path, allow=("10.0.0.0/8",))
    try:
        data = message(UUID, uuid.uuid4().bytes) + message(AUDIO, call_audio["customer"][:CHUNK].tobytes())
        assert asyncio.run(send_raw(s["ports"]["agent"], data)) == b""
        assert "from 127.0.0.1 refused" in caplog.text
        assert s["live"].snapshot() == []
    finally:
        stop_server(s["srv"], s["thread"])


def test_the_allow_list() -> None:
    nets = parse_networks(["127.0.0.1/32", "10.1.0.0/16", "fd00::/8"])
    assert peer_allowed("127.0.0.1", nets) and peer_allowed("10.1.200.3", nets) and peer_allowed("fd00::7", nets)
    assert peer_allowed("::ffff:10.1.0.9", nets)  # IPv4 on a dual-stack socket
    assert not peer_allowed("127.0.0.2", nets) and not peer_allowed("10.2.0.1", nets)
    assert not peer_allowed("::1", nets) and not peer_allowed("", nets) and not peer_allowed("garbage", nets)
    with pytest.raises(ConfigError, match="not an IP address"):
        parse_networks(["10.0.0.0/33"])
    with pytest.raises(ConfigError, match="not a TCP port"):
        AudioSocketSettings.from_port(65535)


@pytest.mark.parametrize("bad, logged", [
    (b"\x10\x4e\x20", "audio message of 20000 bytes, limit 16000"),
    (message(0x42, b"x"), "unknown message kind 0x42"),
    (message(0x12, b"\0" * 640), "above 8 kHz"),
    (message(UUID, uuid.uuid4().bytes), "a second UUID"),
], ids=["oversized", "unknown-kind", "16-khz", "second-uuid"])
def test_a_malformed_message_closes_the_leg_and_keeps_the_audio(server, call_audio, caplog, bad: bytes,
                                                                logged: str) -> None:
    call = uuid.uuid4()
    sent = call_audio["customer"][:8000]
    data = message(UUID, call.bytes) + b"".join(message(AUDIO, sent[i : i + CHUNK].tobytes())
                                                for i in range(0, sent.size, CHUNK))
    asyncio.run(send_raw(server["ports"]["customer"], data + bad + message(AUDIO, b"\1\0" * CHUNK)))
    assert logged in caplog.text and f"customer leg of {call} from 127.0.0.1 closed" in caplog.text
    wav = server["archive"] / f"{call}.wav"
    wait_for(wav.exists, timeout=10)  # dropped: ended after the grace period with what arrived
    pcm, _ = sf.read(wav, dtype="int16")
    assert pcm.shape == (8000, 2) and np.array_equal(pcm[:, 1], sent) and not pcm[:, 0].any()
    assert server["live"].get(str(call)).ended_reason == "disconnected"


def test_audio_before_the_uuid_and_a_second_leg_of_one_party_are_refused(server, call_audio, caplog) -> None:
    chunk = message(AUDIO, call_audio["agent"][:CHUNK].tobytes())
    assert asyncio.run(send_raw(server["ports"]["agent"], chunk + message(UUID, uuid.uuid4().bytes))) == b""
    assert "audio message before the UUID" in caplog.text
    assert server["live"].snapshot() == []

    call = uuid.uuid4()

    async def two_agents() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server["ports"]["agent"])
        writer.write(message(UUID, call.bytes) + chunk)
        await writer.drain()
        await asyncio.sleep(0.2)
        await send_raw(server["ports"]["agent"], message(UUID, call.bytes) + chunk)
        writer.write(message(HANGUP))
        writer.close()

    asyncio.run(two_agents())
    assert f"call {call} has a agent leg connected already" in caplog.text


def test_placement_keeps_jitter_and_bursts_contiguous_and_places_a_pause() -> None:
    """The placer alone, chunks of 160 samples: late by up to 60 ms: right after the previous;
    a burst after a stall: no gap; a real pause: a gap on the 20 ms grid."""
    p = Placer(0)
    chunk = np.ones(CHUNK, dtype=np.int16)
    assert p.add(0, chunk) == [(None, chunk)]
    assert p.add(CHUNK + 400, chunk)[0][0] is None  # 50 ms late: jitter
    assert p.end == 2 * CHUNK
    # a stall: chunks 2..16 held back in the network arrive at once, then 17 and 18 on time
    for _ in range(2, 17):
        assert p.add(16 * CHUNK, chunk) == []
    for k in (17, 18):
        assert p.add(k * CHUNK, chunk) == []
    ((position, audio),) = p.flush()
    assert position is None and audio.size == 17 * CHUNK and p.end == 19 * CHUNK
    # a 1 s pause: the next chunks arrive paced, 8000 samples after the leg's end (+ 10 ms latency)
    start = p.end + 8000
    for k in range(3):
        assert p.add(start + k * CHUNK + 80, chunk) == []
    ((position, audio),) = p.flush()
    assert position == start and position % FRAME == 0 and p.end == start + 3 * CHUNK


def test_serve_takes_the_audiosocket_port_only_with_live(capsys) -> None:
    from pipeline.cli import main

    assert main(["serve", "--audiosocket-port", "9092", "--db", "unused.db"]) != 0
    assert "--audiosocket-port PORT is for --live" in capsys.readouterr().err
