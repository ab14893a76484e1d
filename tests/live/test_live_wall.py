"""The live wall through a real uvicorn server on loopback and a real SQLite database: the
supervisor role and who sees the wall, the live API and listen-in; flags stored with the
session's CSRF token and shown on the call's review page; listen-in over a real WebSocket
(``websockets``) refused without a session, relaying exactly the audio a Twilio stream sends,
recorded in the audit trail; a slow listener that never holds a call back."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from pipeline.live.calls import LiveCalls
from pipeline.live.listen import HEADER, QUEUE_S, Listener
from pipeline.live.options import LiveOptions
from pipeline.live.twilio import ULAW
from pipeline.review.db import AudioAccess, Assignment, LiveFlag, User, make_engine, sessions
from pipeline.review.loader import load_results
from pipeline.review.migrate import upgrade
from review_helpers import submit
from servers import PASSWORD, live_database, logged_in, start_server, stop_server
from test_twilio_stream import CHUNK, call_audio, messages, send, wait_for  # noqa: F401  (call_audio: a fixture)

USERS = (("lena", "lead"), ("adam", "admin"), ("sam", "supervisor"), ("rita", "reviewer"), ("abe", "agent"))


@pytest.fixture
def wall(tmp_path: Path):
    """A live server (no live transcription) over a fresh SQLite database with a user of every
    role (agent abe is agent a101, the streamed calls' agent) and a streaming token."""
    db, tokens = live_database(tmp_path, USERS)
    token = tokens["pbx"]
    engine = make_engine(db)
    from pipeline.review.app import create_app

    live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive"), reconnect_grace_s=30.0))
    srv, thread, url = start_server(create_app(db, live=live))
    ws = url.replace("http://", "ws://")
    yield {"url": url, "ws": ws, "stream": f"{ws}/live/twilio?token={token}", "live": live, "engine": engine,
           "tmp": tmp_path}
    stop_server(srv, thread)
    engine.dispose()


def cookie(client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"callqa_session={client.cookies['callqa_session']}"}


def open_call(wall: dict, audio: dict[str, np.ndarray], call_id: str, seconds: float) -> None:
    """A call streamed for ``seconds`` and left open (the stream dropped, the call waiting for
    its reconnect)."""
    asyncio.run(send(wall["stream"], messages(audio, 0, int(seconds * 8000), call_id, "MZ1"), stop=False))
    wait_for(lambda: wall["live"].get(call_id) is not None and not wall["live"].get(call_id).connected)


def test_supervisors_leads_and_admins_see_the_wall_reviewers_and_agents_do_not(wall, call_audio) -> None:
    open_call(wall, call_audio, "w1", 2.0)
    for name in ("sam", "lena", "adam"):
        c, _ = logged_in(wall["url"], name, PASSWORD)
        (row,) = c.get("/api/live/calls").json()["calls"]
        assert (row["call_id"], row["agent_id"], row["queue"], row["state"]) == ("w1", "a101", "billing", "live")
        assert {"customer_sentiment", "alert_list", "listeners"} <= row.keys()
        assert c.get("/api/live/calls/w1").json()["flags"] == []
        for page in ("/live", "/live/w1"):
            r = c.get(page)
            assert r.status_code == 200 and 'id="nav-live"' in r.text, (name, page)
        assert 'src="/static/live.js"' in c.get("/live").text
        assert 'src="/static/listen.js"' in c.get("/live/w1").text
        assert c.get("/live/nope").status_code == 404
    for name in ("rita", "abe"):
        c, _ = logged_in(wall["url"], name, PASSWORD)
        for path in ("/api/live/calls", "/api/live/calls/w1", "/api/live/calls/w1/flags", "/live", "/live/w1"):
            assert c.get(path).status_code == 403, (name, path)
        assert 'id="nav-live"' not in c.get("/").text
    anonymous = httpx.Client(base_url=wall["url"])
    assert anonymous.get("/api/live/calls").status_code == 401
    assert anonymous.get("/live", headers={"accept": "text/html"}).headers["location"] == "/login"


def test_a_supervisor_opens_no_recorded_call(wall, tmp_path: Path) -> None:
    """Private by default: the live wall is the supervisor's page; the queue, the calls, their
    audio, the dashboards, sampling, calibration and the audit trail stay closed to them."""
    from test_db import call_record, write_run

    write_run(tmp_path / "out", [call_record("c1", {"opening.greeting": "yes"})])
    with sessions(wall["engine"]).begin() as s:
        load_results(s, tmp_path / "out")
    sam, _ = logged_in(wall["url"], "sam", PASSWORD)
    home = sam.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/live"
    assert sam.get("/api/calls").json()["calls"] == []
    for path in ("/api/calls/c1", "/calls/c1", "/calls/c1/audio"):
        assert sam.get(path).status_code == 404, path
    for path in ("/dashboard", "/sample", "/calibrations", "/api/audio-access"):
        assert sam.get(path).status_code == 403, path
    lena, _ = logged_in(wall["url"], "lena", PASSWORD)
    assert [c["call_id"] for c in lena.get("/api/calls").json()["calls"]] == ["c1"]


def test_the_command_line_adds_a_supervisor(tmp_path: Path, capsys, monkeypatch) -> None:
    import io

    from pipeline.cli import main

    db = str(tmp_path / "review.db")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "sue", "--role", "supervisor", "--password-stdin", "--db", db]) == 0
    assert "added sue (supervisor)" in capsys.readouterr().out
    assert main(["users", "list", "--db", db]) == 0
    assert "supervisor" in capsys.readouterr().out


def test_a_flag_needs_the_csrf_token_is_stored_and_shown_on_the_review_page(wall, call_audio, tmp_path: Path) -> None:
    open_call(wall, call_audio, "w2", 4.0)
    sam, csrf = logged_in(wall["url"], "sam", PASSWORD)
    url = "/api/live/calls/w2/flags"
    assert sam.post(url, json={"note": "no token"}).status_code == 403
    assert sam.post(url, json={"note": "forged"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    rita, rita_csrf = logged_in(wall["url"], "rita", PASSWORD)
    assert rita.post(url, json={"note": "x"}, headers={"X-CSRF-Token": rita_csrf}).status_code == 403
    for bad in ({"at": -1}, {"at": 60.0}, {"at": "soon"}, {"at": True}, {"note": 5}, {"note": "x" * 2001}):
        assert sam.post(url, json=bad, headers={"X-CSRF-Token": csrf}).status_code == 422, bad
    assert sam.post(url, content=b"{not json", headers={"X-CSRF-Token": csrf,
                                                         "Content-Type": "application/json"}).status_code == 400
    now = sam.post(url, json={"note": "agent talks over <the> customer"}, headers={"X-CSRF-Token": csrf})
    assert now.status_code == 201 and now.json()["at"] == 4.0 and now.json()["author"] == "sam"  # now: the audio so far
    word = sam.post(url, json={"note": "", "at": 1.25}, headers={"X-CSRF-Token": csrf})
    assert word.status_code == 201 and word.json()["at"] == 1.25
    assert sam.post("/api/live/calls/nope/flags", json={}, headers={"X-CSRF-Token": csrf}).status_code == 404
    listed = sam.get(url).json()["flags"]
    note = "agent talks over <the> customer"
    assert [(f["at"], f["note"], f["author"]) for f in listed] == [(1.25, "", "sam"), (4.0, note, "sam")]
    assert sam.get("/api/live/calls/w2").json()["flags"] == listed
    with sessions(wall["engine"])() as s:
        assert s.query(LiveFlag).filter_by(call_id="w2").count() == 2

    # the call ends; its result is loaded (as the live server does after its batch run): the
    # review page shows the flags to a lead and to the reviewer it is assigned to, not to the agent
    from test_db import call_record, write_run

    asyncio.run(send(wall["stream"], messages(call_audio, 32000, 32000, "w2", "MZ2"), stop=True))
    record = call_record("w2", {"opening.greeting": "yes"})
    record["metadata"]["agent_id"] = "a101"
    write_run(tmp_path / "out", [record])
    with sessions(wall["engine"]).begin() as s:
        load_results(s, tmp_path / "out")
        ids = {u.username: u.id for u in s.query(User)}
        s.add(Assignment(call_id="w2", reviewer_id=ids["rita"]))
        submit(s, "w2", ids["lena"], {"opening.greeting": "yes"})  # reviewed: agent a101 sees the call now
    lena, _ = logged_in(wall["url"], "lena", PASSWORD)
    for client in (lena, rita):
        page = client.get("/calls/w2").text
        assert page.count('class="flag"') == 2 and 'id="flags"' in page
        assert 'data-start="1.25"' in page and 'data-start="4.0"' in page
        assert "agent talks over &lt;the&gt; customer" in page and "<the>" not in page.split('id="payload"')[0]
        assert [f["note"] for f in client.get("/api/calls/w2").json()["flags"]] == ["", note]
    abe, _ = logged_in(wall["url"], "abe", PASSWORD)
    page = abe.get("/calls/w2")
    assert page.status_code == 200 and 'id="flags"' not in page.text and "talks over" not in page.text
    assert abe.get("/api/calls/w2").json()["flags"] == []


STOP = json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA1"}})


def frames_of(messages_: list[bytes]) -> list[tuple[int, int, np.ndarray]]:
    """The frames of listen-in messages: (first sample, party, samples)."""
    out = []
    for data in messages_:
        offset = 0
        while offset < len(data):
            place, n, party, zero = HEADER.unpack_from(data, offset)
            assert zero == 0
            out.append((place, party, np.frombuffer(data, "<i2", n, offset + HEADER.size)))
            offset += HEADER.size + 2 * n
    return out


def test_listen_in_is_refused_before_the_handshake_without_a_session_or_the_role(wall, call_audio) -> None:
    open_call(wall, call_audio, "l0", 1.0)
    url = wall["ws"] + "/live/listen/l0"
    sam, _ = logged_in(wall["url"], "sam", PASSWORD)
    refused = [(None, 403), ({"Cookie": "callqa_session=forged"}, 403),
               (cookie(logged_in(wall["url"], "rita", PASSWORD)[0]), 403),
               (cookie(logged_in(wall["url"], "abe", PASSWORD)[0]), 403),
               ({**cookie(sam), "Origin": "http://evil.example"}, 403)]  # another site's page with sam's cookie

    async def handshake(target: str, headers: dict[str, str] | None) -> int:
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(target, additional_headers=headers):
                pass
        return e.value.response.status_code

    for headers, status in refused:
        assert asyncio.run(handshake(url, headers)) == status, headers
    assert asyncio.run(handshake(wall["ws"] + "/live/listen/nope", cookie(sam))) == 404
    host = wall["url"].split("://", 1)[1]
    ok = asyncio.run(_hello(url, {**cookie(sam), "Origin": f"http://{host}"}))  # the app's own page
    assert ok["call_id"] == "l0" and ok["sample_rate"] == 8000 and ok["parties"] == ["agent", "customer"]
    with sessions(wall["engine"])() as s:
        assert [(a.kind, a.call_id) for a in s.query(AudioAccess)] == [("listen", "l0")]  # only the one let in


async def _hello(url: str, headers: dict[str, str]) -> dict:
    async with websockets.connect(url, additional_headers=headers) as ws:
        return json.loads(await ws.recv())


def test_listen_in_relays_both_parties_audio_as_it_arrives_and_is_audited(wall, call_audio) -> None:
    """A supervisor listening from the first second of a Twilio stream gets every sample of both
    parties sent after that, each at its place in the call, until the call ends (close 1000);
    the audit trail holds the listen-in with the seconds relayed."""
    sam, _ = logged_in(wall["url"], "sam", PASSWORD)
    msgs = messages(call_audio, 0, 40000, "l1", "MZ1")  # 5 s
    first = 2 + 2 * 50  # connected, start and the first second of both tracks

    async def scenario() -> tuple[dict, list[bytes], int | None, str]:
        async with websockets.connect(wall["stream"]) as source:
            for m in msgs[:first]:
                await source.send(m)
            while wall["live"].get("l1") is None or wall["live"].get("l1").recording.seconds() < 1.0:
                await asyncio.sleep(0.02)
            async with websockets.connect(wall["ws"] + "/live/listen/l1", additional_headers=cookie(sam)) as ear:
                hello = json.loads(await ear.recv())
                for k in range(first, len(msgs), 2):  # four times faster than a call: the listener keeps up
                    await source.send(msgs[k])
                    await source.send(msgs[k + 1])
                    await asyncio.sleep(CHUNK / 8000 / 4)
                await source.send(STOP)
                got = [m async for m in ear]
            await source.wait_closed()
            return hello, got, ear.close_code, ear.close_reason

    hello, got, code, reason = asyncio.run(scenario())
    assert hello["at"] == 1.0 and (code, reason) == (1000, "the call ended")
    heard = frames_of(got)
    for party, name in enumerate(("agent", "customer")):
        mine = [(place, pcm) for place, p, pcm in heard if p == party]
        assert mine[0][0] == 8000 and all(a[0] + a[1].size == b[0] for a, b in zip(mine, mine[1:]))  # no gap, in order
        assert np.array_equal(np.concatenate([pcm for _, pcm in mine]), ULAW[call_audio[name][8000:40000]])
    with sessions(wall["engine"])() as s:
        (row,) = s.query(AudioAccess).all()
        assert (row.kind, row.call_id, row.seconds) == ("listen", "l1", 4.0) and row.ended_at is not None
        assert "4.0 s of the call relayed" in row.detail and "dropped" not in row.detail
    lena, _ = logged_in(wall["url"], "lena", PASSWORD)
    (trail,) = lena.get("/api/audio-access", params={"call_id": "l1"}).json()["access"]
    assert (trail["user"], trail["kind"], trail["seconds"]) == ("sam", "listen", 4.0)
    assert not wall["live"].listeners.of  # the listener is gone with its call


def test_a_listener_that_never_reads_holds_nothing_back(tmp_path: Path) -> None:
    """Ingest only offers audio to a listener: with every listener a call may have, none of them
    reading, a minute of both parties goes in about as fast as with none, each listener keeps
    at most QUEUE_S of audio per party (the latest), and the recording has every sample."""
    from pipeline.live.listen import MAX_LISTENERS

    rng = np.random.default_rng(1)
    pcm = {p: (rng.standard_normal(480000) * 2000).astype(np.int16) for p in ("agent", "customer")}

    def feed(live: LiveCalls, call_id: str) -> float:
        call = live.get(call_id)
        t0 = time.perf_counter()
        for i in range(0, 480000, CHUNK):
            for party in ("agent", "customer"):
                live.audio(call, party, i // 8, pcm[party][i:i + CHUNK])
        return time.perf_counter() - t0

    async def scenario() -> tuple[float, float, list[Listener], LiveCalls]:
        live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive")))
        live.open("quiet", "twilio", "CA1", {})
        live.open("heard", "twilio", "CA2", {})
        listeners = [live.listen("heard") for _ in range(MAX_LISTENERS)]
        with pytest.raises(ValueError, match="listeners already"):
            live.listen("heard")
        alone = feed(live, "quiet")
        watched = feed(live, "heard")
        return alone, watched, listeners, live

    alone, watched, listeners, live = asyncio.run(scenario())
    assert watched < 2 * alone + 1.0, (alone, watched)
    for listener in listeners:
        stats = listener.stats()
        assert stats["offered_s"] == 120.0 and stats["queued_s"] <= 2 * QUEUE_S
        assert stats["dropped_s"] == pytest.approx(120.0 - stats["queued_s"])
        newest = frames_of([b"".join(f for f, _, _ in listener.waiting)])
        assert newest[-1][0] + newest[-1][2].size == 480000  # what waits is the latest audio
    call = live.get("heard")
    live.end(call, "stop")
    recorded, _ = sf.read(tmp_path / "archive" / "heard.wav", dtype="int16")
    assert np.array_equal(recorded[:, 0], pcm["agent"]) and np.array_equal(recorded[:, 1], pcm["customer"])
    assert all(listener.ended for listener in listeners)


def test_a_stalled_listener_over_the_network_does_not_slow_a_stream(wall, call_audio) -> None:
    """A listener whose browser stopped reading (a tiny receive buffer, nothing read) while a
    few minutes of call are streamed as fast as a client can: the stream goes in at full speed, the
    server drops the listener's oldest audio instead of queueing it, the archive is complete."""
    import socket

    sam, _ = logged_in(wall["url"], "sam", PASSWORD)
    # three times the call: more audio for the listener (6.5 MB) than the kernel's socket buffers
    # on loopback can absorb (up to 4 MB sent, auto-tuned), so the server's own queue must drop
    call_audio = {party: np.tile(codes, 3) for party, codes in call_audio.items()}
    n = call_audio["agent"].size
    msgs = messages(call_audio, 0, n, "slow1", "MZ1")
    host, port = wall["url"].split("://", 1)[1].split(":")

    async def scenario() -> tuple[float, dict[str, float]]:
        async with websockets.connect(wall["stream"]) as source:
            for m in msgs[:4]:
                await source.send(m)
            while wall["live"].get("slow1") is None:
                await asyncio.sleep(0.02)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, int(port)))
            async with websockets.connect(wall["ws"] + "/live/listen/slow1", sock=sock, max_queue=1, close_timeout=0.2,
                                          additional_headers=cookie(sam)):
                t0 = time.perf_counter()
                for m in msgs[4:]:
                    await source.send(m)
                while wall["live"].get("slow1").recording.seconds() < n / 8000:
                    await asyncio.sleep(0.01)
                elapsed = time.perf_counter() - t0
                (listener,) = wall["live"].listeners.of["slow1"]
                stats = listener.stats()
                await source.send(STOP)
                return elapsed, stats

    elapsed, stats = asyncio.run(scenario())
    audio_s = n / 8000
    assert elapsed < audio_s / 4, elapsed  # far faster than real time: nothing waited for the listener
    assert stats["queued_s"] <= 2 * QUEUE_S
    assert stats["dropped_s"] > 0  # the oldest audio went, for this listener only
    wav = wall["tmp"] / "archive" / "slow1.wav"
    wait_for(wav.exists)
    recorded, _ = sf.read(wav, dtype="int16")
    assert np.array_equal(recorded[:, 0], ULAW[call_audio["agent"]])
    assert np.array_equal(recorded[:, 1], ULAW[call_audio["customer"]])

    def ended() -> list[AudioAccess]:
        with sessions(wall["engine"])() as s:
            return s.query(AudioAccess).filter(AudioAccess.ended_at.is_not(None)).all()

    wait_for(ended)
    (row,) = ended()
    assert "dropped (the listener was too slow)" in row.detail


def test_each_playback_of_a_recording_is_in_the_audit_trail(wall, tmp_path: Path) -> None:
    from test_app import masked_copy, write_run_json
    from test_db import call_record, write_run

    out = tmp_path / "out"
    write_run(out, [call_record("c1", {"opening.greeting": "yes"})])
    write_run_json(out, [tmp_path])
    masked_copy(out, "c1")
    with sessions(wall["engine"]).begin() as s:
        load_results(s, out)
    lena, _ = logged_in(wall["url"], "lena", PASSWORD)
    assert lena.get("/calls/c1/audio").status_code == 200
    assert lena.get("/calls/c1/audio", headers={"Range": "bytes=0-"}).status_code == 206  # played again
    assert lena.get("/calls/c1/audio", headers={"Range": "bytes=1000-"}).status_code == 206  # a seek: same playback
    trail = lena.get("/api/audio-access").json()["access"]
    assert [(a["user"], a["call_id"], a["kind"], a["detail"]) for a in trail] == [
        ("lena", "c1", "recording", "masked copy")] * 2
    assert logged_in(wall["url"], "rita", PASSWORD)[0].get("/api/audio-access").status_code == 403


def test_after_its_batch_run_a_live_call_alone_is_loaded(tmp_path: Path) -> None:
    """What the live server does when a call's batch run has finished: that call's result goes
    into the review database; the other calls of the folder are left to ``callqa db load``."""
    from pipeline.live.wall import result_loader
    from pipeline.review.db import Call
    from test_db import call_record, write_run

    engine = make_engine(str(tmp_path / "review.db"))
    upgrade(engine)
    write_run(tmp_path / "out", [call_record("live7", {"opening.greeting": "yes"}),
                                 call_record("nightly1", {"opening.greeting": "no"})])
    load = result_loader(sessions(engine), str(tmp_path / "out"))
    load("live7")
    load("live7")  # again: unchanged, nothing to do
    with sessions(engine)() as s:
        assert [c.call_id for c in s.query(Call)] == ["live7"]
    engine.dispose()
