"""The live wall as a supervisor uses it: headless Chromium (Debian's, driven by Playwright; no
browser download) against a live server with its recognition worker, a call streamed by a real
``websockets`` client in the Twilio format at real-time pace: the wall shows the call, its page
shows words appearing and the agent's prohibited phrase as an alert, listen-in plays the call's
audio, a flagged moment is stored and, once the call's batch run has loaded its result, shown on
the call's review page, where its time seeks the player."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import websockets

from pipeline.live.calls import LiveCalls
from pipeline.live.options import LiveOptions
from pipeline.review.db import AudioAccess, User, make_engine, sessions
from servers import PASSWORD, live_database, start_server, stop_server
from test_twilio_stream import CHUNK, angry_call, messages, ulaw_codes  # noqa: F401  (angry_call: a fixture)

pytestmark = pytest.mark.slow  # drives a browser, the live recogniser and a batch run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
FROM_S, TO_S = 29.5, 48.9
"""The stretch of sample call c002 streamed (19.4 s at real-time pace): the end of the customer's
complaint, the agent's "Look, that's not my problem. ..." (31.3-36.2 s: a prohibited phrase), the
customer's "This is unacceptable. I want to cancel my contract.", to the end of the call."""
MAX_OPEN_S = 90.0
"""The line stays open (silent) after the stretch until the test hangs up, at most this long from
the stream's start: recognition on a busy 2-core machine may lag behind the call by seconds."""


def wait_for(page, expression: str, timeout: float = 10.0) -> None:  # noqa: ANN001 - a playwright page
    """Wait until the JavaScript ``expression`` is true on ``page`` (``evaluate`` goes through
    the DevTools protocol; Playwright's ``wait_for_function`` is blocked by the app's CSP)."""
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {expression}")
        time.sleep(0.05)


def stream_at_real_time(url: str, codes: dict, call_id: str, hang_up: threading.Event) -> None:
    """The stretch of the call, 20 ms of both tracks at a time, each sent when its audio would
    have been spoken; then silence (the line open, nobody talking) until ``hang_up`` is set (at
    most :data:`MAX_OPEN_S`), then ``stop``."""
    import base64

    msgs = messages(codes, int(FROM_S * 8000), int(TO_S * 8000), call_id, "MZ1")
    quiet = base64.b64encode(ulaw_codes(np.zeros(CHUNK, dtype=np.int16)).tobytes()).decode()

    async def run() -> None:
        async with websockets.connect(url) as ws:
            for m in msgs[:2]:
                await ws.send(m)
            t0 = time.monotonic()
            k = 0
            while k * CHUNK < (TO_S - FROM_S) * 8000 or (not hang_up.is_set() and k * CHUNK < MAX_OPEN_S * 8000):
                delay = t0 + k * CHUNK / 8000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if 2 + 2 * k < len(msgs):  # inbound and outbound of one 20 ms chunk
                    await ws.send(msgs[2 + 2 * k])
                    await ws.send(msgs[3 + 2 * k])
                else:
                    for track in ("inbound", "outbound"):
                        await ws.send(json.dumps({"event": "media", "streamSid": "MZ1", "media": {
                            "track": track, "chunk": str(k + 1), "timestamp": str(k * 20), "payload": quiet}}))
                k += 1
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA1"}}))
            await ws.wait_closed()

    asyncio.run(run())


@pytest.fixture
def live_app(tmp_path: Path):
    """A live server with one call of live transcription and a batch run into OUT after each
    call; supervisor sam and lead lena."""
    from pipeline.live.recognizer import LiveRecognizer
    from pipeline.review.app import create_app

    db, tokens = live_database(tmp_path, [("sam", "supervisor"), ("lena", "lead")])
    token = tokens["pbx"]
    engine = make_engine(db)
    recognizer = LiveRecognizer(None, max_calls=1, threads=2)
    live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive"), out=str(tmp_path / "out")), None, recognizer)
    srv, thread, url = start_server(create_app(db, live=live))
    assert recognizer.ready.wait(180), "the recognition worker did not start"
    yield {"url": url, "stream": url.replace("http://", "ws://") + f"/live/twilio?token={token}", "live": live,
           "engine": engine}
    stop_server(srv, thread)
    engine.dispose()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def log_in(browser, url: str, name: str, violations: list[str]):  # noqa: ANN001, ANN201 - playwright objects
    ctx = browser.new_context()
    ctx.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page = ctx.new_page()
    page.goto(url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return ctx, page


def test_a_supervisor_watches_listens_to_and_flags_a_live_call_then_the_review_shows_the_flag(
        live_app, browser, angry_call) -> None:  # noqa: F811
    url, live = live_app["url"], live_app["live"]
    violations: list[str] = []
    ctx, wall = log_in(browser, url, "sam", violations)
    assert wall.url == url + "/live"  # a supervisor's home is the live wall
    wait_for(wall, "Number(document.getElementById('wall').dataset.updated) > 0")
    assert wall.locator("#wall tbody tr").count() == 0

    hang_up = threading.Event()
    streamer = threading.Thread(target=stream_at_real_time, args=(live_app["stream"], angry_call, "wall1", hang_up))
    streamer.start()
    try:
        wait_for(wall, "!!document.querySelector('#wall tr[data-call=\"wall1\"][data-state=\"live\"]')")
        row = wall.locator('#wall tr[data-call="wall1"]')
        assert (row.locator(".agent").inner_text(), row.locator(".queue").inner_text()) == ("a101", "billing")
        row.locator("a").click()
        wall.wait_for_url(url + "/live/wall1")
        page = wall

        # listen-in: both parties' audio arrives and is scheduled on a running audio context
        page.click("#listen")
        wait_for(page, "document.getElementById('listen-state').dataset.state === 'listening'")
        wait_for(page, "Number(document.getElementById('listen-state').dataset.samples) >= 16000", timeout=10)
        assert page.evaluate("Number(document.getElementById('listen-state').dataset.played)") > 0
        assert live.listeners.count("wall1") == 1

        # words appear while the call goes on (unconfirmed ones marked as partial), then the alert
        saw_partial = False
        end = time.monotonic() + MAX_OPEN_S
        while not page.evaluate("!!document.querySelector('.live-alert[data-kind=\"item\"]')"):
            assert time.monotonic() < end, "no alert for the prohibited phrase"
            saw_partial = saw_partial or page.evaluate("!!document.querySelector('#live-transcript .w.partial')")
            time.sleep(0.05)
        during_call = live.get("wall1").state == "live"
        assert int(page.get_attribute("#live-transcript", "data-words")) > 0
        assert saw_partial, "no unconfirmed word was ever shown"
        alert = page.locator('.live-alert[data-kind="item"]')
        assert "courtesy.no_prohibited" in alert.inner_text()
        evidence = " ".join(alert.locator("q.quote").all_inner_texts()).lower()  # what the agent said
        assert "not my problem" in evidence, evidence
        assert "not my problem" in page.locator("#live-transcript").inner_text().lower()

        # flag the moment of a word clicked, with a note, and the current moment
        word = page.locator("#live-transcript .w:not(.partial)", has_text="problem").first
        word.click()
        at = float(page.get_attribute("#flag-at", "data-at"))
        page.fill("#flag-note", "agent: not my problem")
        page.click("#flag")
        wait_for(page, "document.querySelectorAll('#live-flags .flag').length === 1")
        page.click("#flag")
        wait_for(page, "document.querySelectorAll('#live-flags .flag').length === 2")
    finally:
        hang_up.set()
        streamer.join(timeout=MAX_OPEN_S + 30)
    assert during_call, "the alert came only after the call ended"
    wait_for(page, "document.getElementById('listen-state').dataset.state === 'ended'", timeout=10)
    heard = int(page.get_attribute("#listen-state", "data-samples"))
    assert heard >= 2 * 8000 * 5  # at least 5 s of both parties

    # the call's batch run loads its result: the review page shows both flags; a flag's time seeks
    end = time.monotonic() + 300
    while live.get("wall1").state not in ("done", "failed"):
        assert time.monotonic() < end, "the call's batch run did not finish"
        time.sleep(0.2)
    assert live.get("wall1").state == "done", live.get("wall1").error
    lead_ctx, review = log_in(browser, url, "lena", violations)
    review.goto(url + "/calls/wall1")
    flags = review.locator("#flags .flag")
    assert flags.count() == 2
    first = flags.nth(0)
    assert first.locator(".flag-author").inner_text() == "sam"
    assert first.locator(".flag-note").inner_text() == "agent: not my problem"
    assert abs(float(first.locator("button.flag-at").get_attribute("data-start")) - at) < 0.01
    wait_for(review, "document.getElementById('player').readyState >= 1")
    first.locator("button.flag-at").click()
    wait_for(review, f"Math.abs(document.getElementById('player').currentTime - {at}) < 0.5")
    with sessions(live_app["engine"])() as s:
        rows = s.query(AudioAccess, User.username).join(User, User.id == AudioAccess.user_id).all()
        listens = [(a.call_id, name) for a, name in rows if a.kind == "listen"]
        assert listens == [("wall1", "sam")]
        assert [a for a, _ in rows if a.kind == "listen"][0].seconds >= 5
    ctx.close()
    lead_ctx.close()
    assert violations == []
