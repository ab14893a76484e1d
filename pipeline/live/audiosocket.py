"""Asterisk AudioSocket input (``callqa serve --live --audiosocket-port PORT``).

The protocol: a TCP connection from Asterisk (the ``AudioSocket()`` dial-plan application, the
``AudioSocket/`` channel, or ARI's external media with ``encapsulation=audiosocket``) carrying
messages of a 1-byte kind, a 2-byte big-endian payload length and the payload: ``0x01`` the
call's UUID (16 bytes, first), ``0x10`` audio (signed 16-bit little-endian PCM, 8 kHz mono,
usually 320 bytes = 20 ms), ``0x03`` a DTMF digit (ignored), ``0x00`` hang-up, ``0xff`` an error
(its code in the payload; ``0x01``: the caller hung up). Audio at a higher rate (``0x11``..) is
refused: set the channel's format to ``slin`` (8 kHz).

**One connection is one leg** (one party's voice). The legs of a call are paired by the UUID:
the dial plan gives the same UUID to both legs, and it is the call's id (its canonical text
form, ``4b1e...-...``). **The party is the port**: legs connecting to ``PORT`` are the customer,
legs connecting to ``PORT + 1`` are the agent (``--audiosocket-port 9092`` listens on 9092 and
9093). This needs no convention inside the UUID and no race on which leg connects first, and a
leg that reconnects keeps its party. With ARI, for example: a snoop channel on the customer's
channel (``spy=in``) bridged to an external media channel ``external_host=callqa:9092,
encapsulation=audiosocket, transport=tcp, format=slin, data=<UUID>``, and the same on the agent's
channel to ``callqa:9093`` with the same UUID; in a plain dial plan the leg that runs
``AudioSocket(${CALLQA_UUID},callqa:9092)`` is the customer's.

**Authentication**: AudioSocket has no headers and no place for a token, so a source is
identified by its address: a connection whose peer is not in ``--audiosocket-allow CIDR``
(repeatable; default ``127.0.0.1/32``, i.e. Asterisk on the same host) is closed before a byte
is read. List the Asterisk servers' addresses only, and keep the ports off the public network.

**Placement**: AudioSocket audio has no timestamps. Each chunk is placed by its arrival time on
the server's clock, relative to the call's stream start (the first chunk of either leg, placed
at 0), so that a leg that stops sending (silence suppression, a hold, a leg that joins late)
stays aligned with the other: a chunk arriving within ``GAP_TOLERANCE_MS`` of its leg's end is
written right after it (network jitter never drifts a leg); one arriving later opens a gap.
The chunks after a gap are held ``HOLD_S`` and placed together at the earliest start their
arrival times allow (a burst after a network stall is not taken for a pause), on the 20 ms grid
and never before the leg's previous end; the gap stays silent. The stream start is corrected the
same way: a chunk cannot arrive before it was sent, so every chunk placed right after its leg's
end moves the start to at most its arrival time minus the leg's audio so far. A first chunk that
arrived late (a burst at the start of a stream, a stall of the server) thus no longer shifts
every later gap early. (This assumes real-time senders, as Asterisk is.)

**End**: a hang-up (``0x00``, or error ``0x01``) ends its leg; the call ends (``hangup``) when
both parties have hung up. A leg closed without hang-up, after a malformed message (a length
beyond the kind's limit, an unknown kind, audio before the UUID, a connection cut inside a
message) or after another error leaves the call to the other leg; when no leg is connected and
not both have hung up the call is dropped: it waits ``live.reconnect_grace_s`` for a leg with
the same UUID, then ends with what arrived. Every such case is logged; audio that arrived is
kept.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import CallqaError, ConfigError
from pipeline.live.calls import LiveCall, LiveCalls
from pipeline.live.options import PARTIES
from pipeline.live.twilio import SAMPLE_RATE

log = logging.getLogger("callqa.live")

HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
HIGHER_RATES = range(0x11, 0x20)
"""Audio kinds at 12 kHz and above (newer Asterisk versions): refused, 8 kHz only."""
MAX_PAYLOAD = {HANGUP: 64, UUID: 16, DTMF: 1, AUDIO: 16000, ERROR: 64}
"""The longest payload accepted per kind (audio: 1 s); a longer one closes the connection."""
KIND_NAMES = {HANGUP: "hang-up", UUID: "UUID", DTMF: "DTMF", AUDIO: "audio", ERROR: "error"}
ASTERISK_ERRORS = {0x01: "the caller hung up", 0x02: "frame forwarding error", 0x04: "memory error"}
DEFAULT_ALLOW = ("127.0.0.1/32",)

FRAME = SAMPLE_RATE * 20 // 1000
"""Samples in 20 ms: the grid a leg's audio after a gap is placed on."""
GAP_TOLERANCE_MS = 60
"""A chunk arriving up to this late after its leg's end is taken as jitter, not a gap."""
HOLD_S = 0.2
"""The chunks after a gap are held this long before they are placed (see the module docstring)."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AudioSocketError(CallqaError):
    """A connection that does not follow the AudioSocket protocol (or may not join its call)."""


@dataclass
class Message:
    kind: int
    payload: bytes


def check_header(kind: int, length: int) -> None:
    """AudioSocketError for a kind this server does not take or a length beyond its limit."""
    if kind in HIGHER_RATES:
        raise AudioSocketError(f"audio kind 0x{kind:02x} is above 8 kHz; set the channel's format to slin (8 kHz)")
    limit = MAX_PAYLOAD.get(kind)
    if limit is None:
        raise AudioSocketError(f"unknown message kind 0x{kind:02x}")
    if length > limit or (kind == UUID and length != 16) or (kind == AUDIO and length % 2):
        exact = " (a UUID is 16)" if kind == UUID else ""
        raise AudioSocketError(f"{KIND_NAMES[kind]} message of {length} bytes{exact}, limit {limit}")


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None when the connection closed between messages."""
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise AudioSocketError("the connection closed inside a message header") from e
    kind, length = struct.unpack(">BH", header)
    check_header(kind, length)
    try:
        payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as e:
        raise AudioSocketError(f"the connection closed inside a {KIND_NAMES[kind]} message") from e
    return Message(kind, payload)


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """The networks of ``--audiosocket-allow`` (a bare address is a /32 or /128)."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as e:
            raise ConfigError(f"--audiosocket-allow {cidr!r}: not an IP address or CIDR network ({e})") from e
    return networks


def peer_allowed(address: str, networks: Iterable[Network]) -> bool:
    """Whether a connection from ``address`` (IPv4, IPv6, IPv4-mapped IPv6) may stream."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in networks)


@dataclass
class Placer:
    """Where one leg's chunks go, in samples from the start of the call's current stream (see
    the module docstring). ``add`` and ``flush`` give the writes to make: (position, or None for
    right after the leg's previous chunk; audio)."""

    end: int
    """The leg's end so far (negative: the leg is behind the stream start, after a reconnect)."""
    held: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """Chunks after a gap, not placed yet, with the start their arrival gives."""

    def add(self, arrival_start: int, pcm: np.ndarray) -> list[tuple[int | None, np.ndarray]]:
        if not self.held and arrival_start <= self.end + GAP_TOLERANCE_MS * SAMPLE_RATE // 1000:
            self.end += pcm.size
            return [(None, pcm)]
        self.held.append((arrival_start, pcm))
        return []

    def flush(self) -> list[tuple[int | None, np.ndarray]]:
        if not self.held:
            return []
        earliest, before = None, 0
        for start, pcm in self.held:  # a chunk cannot have started after it arrived
            earliest = start - before if earliest is None else min(earliest, start - before)
            before += pcm.size
        position = max(self.end, max(0, earliest) // FRAME * FRAME)
        audio = np.concatenate([pcm for _, pcm in self.held])
        self.held = []
        writes: list[tuple[int | None, np.ndarray]] = [(None if position == self.end else position, audio)]
        self.end = position + audio.size
        return writes


@dataclass
class Leg:
    party: str
    peer: str
    placer: Placer
    timer: asyncio.TimerHandle | None = None


@dataclass
class CallLegs:
    """One call's legs on this server."""

    call: LiveCall
    legs: dict[str, Leg] = field(default_factory=dict)
    """The connected legs by party."""
    hung_up: set[str] = field(default_factory=set)
    origin: float | None = None
    """Monotonic time of the current stream's start (set by its first chunk)."""


@dataclass
class AudioSocketSettings:
    """Where the AudioSocket listener listens and whom it lets in (``callqa serve`` arguments)."""

    port: int
    """Customer legs."""
    agent_port: int
    """Agent legs (``--audiosocket-port`` + 1)."""
    host: str = "127.0.0.1"
    allow: tuple[str, ...] = DEFAULT_ALLOW
    networks: list[Network] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, port in (("customer", self.port), ("agent", self.agent_port)):
            if not 1 <= port <= 65535:
                raise ConfigError(f"--audiosocket-port: the {name} port {port} is not a TCP port (1-65534)")
        self.networks = parse_networks(self.allow)

    @classmethod
    def from_port(cls, port: int, host: str = "127.0.0.1", allow: Iterable[str] | None = None) -> AudioSocketSettings:
        return cls(port, port + 1, host, tuple(allow or DEFAULT_ALLOW))


class AudioSocketServer:
    """The listener: one TCP server per party, the legs of each call paired by UUID."""

    def __init__(self, live: LiveCalls, settings: AudioSocketSettings):
        self.live = live
        self.settings = settings
        self.calls: dict[str, CallLegs] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        s = self.settings
        for party, port in (("customer", s.port), ("agent", s.agent_port)):
            server = await asyncio.start_server(lambda r, w, p=party: self._connected(p, r, w), s.host, port)
            self.servers.append(server)
            log.info("live: AudioSocket %s legs on %s:%d", party, s.host, port)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.servers = []

    async def _connected(self, party: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await self._serve_leg(party, reader, writer)
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()

    async def _serve_leg(self, party: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not peer_allowed(address, self.settings.networks):
            log.warning("live: AudioSocket connection from %s refused: not in --audiosocket-allow", address)
            return
        legs: CallLegs | None = None
        leg: Leg | None = None
        hung_up = False
        try:
            first = await read_message(reader)
            if first is None:
                return
            if first.kind != UUID:
                raise AudioSocketError(f"{KIND_NAMES[first.kind]} message before the UUID")
            legs, leg = self._join(str(uuid.UUID(bytes=first.payload)), party, address)
            while (msg := await read_message(reader)) is not None:
                if msg.kind == AUDIO:
                    self._audio(legs, leg, np.frombuffer(msg.payload, dtype="<i2").astype(np.int16))
                elif msg.kind == UUID:
                    raise AudioSocketError("a second UUID on one connection")
                elif msg.kind == HANGUP:
                    hung_up = True
                    break
                elif msg.kind == ERROR:
                    code = msg.payload[0] if msg.payload else 0
                    if code == 0x01:
                        hung_up = True
                        break
                    raise AudioSocketError(f"Asterisk reported error 0x{code:02x} "
                                           f"({ASTERISK_ERRORS.get(code, 'application-specific')})")
            if not hung_up:
                log.warning("live: AudioSocket %s leg of %s from %s closed without hang-up", party,
                            legs.call.call_id, address)
        except AudioSocketError as e:
            where = f" of {legs.call.call_id}" if legs is not None else ""
            log.warning("live: AudioSocket %s leg%s from %s closed: %s", party, where, address, e)
        except (ConnectionError, OSError) as e:
            log.warning("live: AudioSocket %s leg from %s lost: %s", party, address, e)
        finally:
            if legs is not None and leg is not None:
                await self._leave(legs, leg, hung_up)

    def _join(self, call_id: str, party: str, address: str) -> tuple[CallLegs, Leg]:
        """The leg starts or joins its call (opened once for the legs connected together)."""
        for cid in [c for c, legs in self.calls.items() if not legs.legs and legs.call.state != "live"]:
            del self.calls[cid]
        legs = self.calls.get(call_id)
        if legs is not None and party in legs.legs:
            raise AudioSocketError(f"call {call_id} has a {party} leg connected already")
        if legs is None or not legs.legs:
            try:
                call = self.live.open(call_id, "audiosocket", call_id, {})
            except ValueError as e:
                raise AudioSocketError(str(e)) from e
            if legs is None or legs.call is not call:
                legs = self.calls[call_id] = CallLegs(call)
            legs.origin = None
            log.info("live: %s started (AudioSocket %s leg from %s)", call_id, party, address)
        recording = legs.call.recording
        leg = Leg(party, address, Placer(recording.samples[party] - recording.base))
        legs.legs[party] = leg
        legs.hung_up.discard(party)
        return legs, leg

    def _audio(self, legs: CallLegs, leg: Leg, pcm: np.ndarray) -> None:
        now = time.monotonic()
        if legs.origin is None:
            legs.origin = now - pcm.size / SAMPLE_RATE
        arrival_start = round((now - legs.origin) * SAMPLE_RATE) - pcm.size
        writes = leg.placer.add(arrival_start, pcm)
        if writes:  # placed right after the leg's end: it cannot have arrived before that end was sent
            legs.origin = min(legs.origin, now - leg.placer.end / SAMPLE_RATE)
        self._write(legs, leg, writes)
        if leg.placer.held and leg.timer is None:
            leg.timer = asyncio.get_running_loop().call_later(HOLD_S, self._flush, legs, leg)

    def _flush(self, legs: CallLegs, leg: Leg) -> None:
        if leg.timer is not None:
            leg.timer.cancel()
            leg.timer = None
        if legs.call.state == "live":  # else archived already (the server stopping)
            self._write(legs, leg, leg.placer.flush())

    def _write(self, legs: CallLegs, leg: Leg, writes: list[tuple[int | None, np.ndarray]]) -> None:
        for position, pcm in writes:
            timestamp_ms = None if position is None else position * 1000 // SAMPLE_RATE
            self.live.audio(legs.call, leg.party, timestamp_ms, pcm)

    async def _leave(self, legs: CallLegs, leg: Leg, hung_up: bool) -> None:
        """The leg's connection closed: the call ends, is dropped, or goes on with the other leg."""
        self._flush(legs, leg)
        legs.legs.pop(leg.party, None)
        if hung_up:
            legs.hung_up.add(leg.party)
        if legs.legs or legs.call.state != "live":
            return
        if legs.hung_up >= set(PARTIES):
            self.calls.pop(legs.call.call_id, None)
            await asyncio.to_thread(self.live.end, legs.call, "hangup")
        else:
            self.live.dropped(legs.call)
