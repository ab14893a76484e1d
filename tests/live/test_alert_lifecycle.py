"""The lifecycle of a live call's alerts (issue 21): each alert keeps a stable key and is never
dropped; silence closes when someone speaks again, cross-talk when it stops, a negative customer
sentiment when the customer's latest turns are no longer negative (a relapse is a new alert with
a new key), an item answered no and a long call stay open until a supervisor acknowledges them
(a long call also closes when the call ends). Acknowledging goes through a real uvicorn server
on loopback with a real SQLite database: the user is recorded, the roles and the CSRF token are
checked as for the wall's other POST routes; the summary counts the open alerts. The call page in
headless Chromium shows open alerts first with an "Acknowledge" button and closed ones muted.

The analyses of the words are given by the test (:class:`ScriptedRecognizer`, no models): the
live recogniser and analysis themselves are tested in test_twilio_stream and test_browser_live."""

from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from pipeline.live.analysis import CONDITION, AlertBook, AlertClosed, SoundWatch
from pipeline.live.calls import LiveCalls
from pipeline.live.options import LiveOptions
from servers import PASSWORD, live_database, logged_in, start_server, stop_server
from test_twilio_stream import call_audio, messages, send, wait_for  # noqa: F401  (call_audio: a fixture)

THRESHOLD = -0.3
"""``sentiment.negative_threshold`` (the default)."""
PROHIBITED = "courtesy.no_prohibited"


# --- analyses of the words, as the live recogniser gives them ----------------------------------


def analysis(customer: list[tuple[float, float]] = (), prohibited: list[float] | None = None) -> dict[str, Any]:
    """An analysis of a call so far: the customer's turns ``(start, score)`` (labelled as the
    batch pipeline labels them) and, with ``prohibited``, the item "no prohibited phrases"
    answered no with evidence at those moments."""
    utterances, turns = [], []
    for n, (start, score) in enumerate(customer, 1):
        uid = f"c{n:04d}"
        utterances.append({"id": uid, "role": "customer", "start": start, "end": start + 2.0, "text": f"turn {n}",
                           "words": []})
        label = "negative" if score <= THRESHOLD else "positive" if score >= 0.2 else "neutral"
        turns.append({"utterance_id": uid, "role": "customer", "start": start, "score": score, "label": label})
    items = [{"id": "opening.greeting", "question": "Greeting?", "answer": "yes", "confidence": 0.9, "evidence": []}]
    if prohibited is not None:
        items.append({"id": PROHIBITED, "question": "No prohibited phrases?", "answer": "no" if prohibited else "yes",
                      "confidence": 0.9, "evidence": [{"quote": f"calm down ({at})", "start": at, "end": at + 1.0}
                                                      for at in prohibited]})
    return {"utterances": utterances, "items": items, "sentiment": {"turns": turns}}


def history(book: AlertBook) -> list[tuple[str, str, float, float | None, str | None]]:
    return [(a["key"], a["state"], a["opened_at"], a["closed_at"], a["closed_by"]) for a in book.listed()]


# --- the lifecycle ----------------------------------------------------------------------------


SPEECH = (np.random.default_rng(0).standard_normal(160) * 3000).astype(np.int16)
QUIET = np.zeros(160, dtype=np.int16)


def feed(watch: SoundWatch, seconds: float, agent: Any, customer: Any, start: float = 0.0) -> None:
    """20 ms chunks of both parties from ``start`` for ``seconds``; ``agent(t)`` and
    ``customer(t)``: whether that party talks at ``t``."""
    for k in range(round(seconds / 0.02)):
        t = round(start + k * 0.02, 2)
        watch.chunk("agent", t, SPEECH if agent(t) else QUIET)
        watch.chunk("customer", t, SPEECH if customer(t) else QUIET)


def test_a_silence_opens_and_closes_when_someone_speaks_again_a_second_one_is_a_new_alert() -> None:
    book = AlertBook()
    watch = SoundWatch(LiveOptions(alert_silence_s=2.0, alert_crosstalk_s=0, alert_long_call_s=0), book)
    feed(watch, 1.0, lambda t: True, lambda t: False)  # the agent talks 0-1 s
    feed(watch, 2.5, lambda t: False, lambda t: False, start=1.0)  # nobody, 1-3.5 s
    (silence,) = book.listed()
    assert (silence["kind"], silence["state"], silence["closed_at"], silence["closed_by"]) == ("silence", "open", None, None)
    assert silence["opened_at"] == silence["at"] == 1.0 and silence["key"] == "silence:1.0"
    assert book.counts() == (1, 1)
    feed(watch, 1.0, lambda t: False, lambda t: True, start=3.5)  # the customer speaks again at 3.5 s
    (silence,) = book.listed()
    assert (silence["key"], silence["state"], silence["closed_at"], silence["closed_by"]) == (
        "silence:1.0", "closed", 3.5, CONDITION)
    assert silence["evidence"] == [{"start": 1.0, "end": 3.5}]
    feed(watch, 3.0, lambda t: False, lambda t: False, start=4.5)  # another silence from 4.5 s
    assert history(book) == [("silence:1.0", "closed", 1.0, 3.5, CONDITION), ("silence:4.5", "open", 4.5, None, None)]
    assert book.counts() == (1, 2)
    book.end(7.5)  # the call ends in silence: the sound's alerts are over
    assert history(book)[-1] == ("silence:4.5", "closed", 4.5, 7.5, CONDITION)


def test_cross_talk_closes_when_it_stops() -> None:
    book = AlertBook()
    watch = SoundWatch(LiveOptions(alert_silence_s=0, alert_crosstalk_s=1.0, alert_long_call_s=0), book)
    feed(watch, 4.0, lambda t: t >= 1.0, lambda t: t < 3.0)  # both talk 1-3 s, then the agent alone
    (crosstalk,) = book.listed()
    assert (crosstalk["kind"], crosstalk["key"], crosstalk["state"], crosstalk["closed_by"]) == (
        "crosstalk", "crosstalk:1.0", "closed", CONDITION)
    assert crosstalk["opened_at"] == 1.0 and crosstalk["closed_at"] == 3.0  # the customer's last sound


def test_the_same_audio_gives_the_same_history() -> None:
    options = LiveOptions(alert_silence_s=1.0, alert_crosstalk_s=0.5, alert_long_call_s=6.0)
    rng = np.random.default_rng(7)
    talks = {p: np.repeat(rng.random(40) < 0.5, 10) for p in ("agent", "customer")}  # 0.2 s blocks of 8 s

    def run() -> list[dict[str, Any]]:
        watch = SoundWatch(options, AlertBook())
        feed(watch, 8.0, lambda t: talks["agent"][int(t / 0.02)], lambda t: talks["customer"][int(t / 0.02)])
        watch.book.end(8.0)
        return watch.book.listed()

    first = run()
    assert {a["kind"] for a in first} >= {"crosstalk", "long_call"} and all(a["state"] == "closed" for a in first)
    assert run() == first


def test_a_negative_sentiment_opens_closes_and_a_relapse_is_a_new_alert() -> None:
    book, options = AlertBook(), LiveOptions()
    calm, angry = [(5.0, 0.1), (10.0, -0.5)], [(15.0, -0.7)]
    book.words(analysis(calm[:1]), options, THRESHOLD)
    assert book.listed() == []
    book.words(analysis(calm), options, THRESHOLD)  # one negative turn, but the last two average -0.2
    assert book.listed() == []
    book.words(analysis(calm + angry), options, THRESHOLD)
    (alert,) = book.listed()
    assert (alert["kind"], alert["key"], alert["state"], alert["opened_at"], alert["at"]) == (
        "sentiment", "sentiment:15.0", "open", 15.0, 15.0)
    assert alert["evidence"] == [{"quote": "turn 3", "start": 15.0, "score": -0.7}]
    still = calm + angry + [(20.0, -0.8)]
    book.words(analysis(still), options, THRESHOLD)
    (alert,) = book.listed()
    assert (alert["key"], alert["state"], alert["at"]) == ("sentiment:15.0", "open", 20.0)  # at: the latest turn
    calmer = still + [(25.0, 0.6)]  # the last two average -0.1: no longer negative
    book.words(analysis(calmer), options, THRESHOLD)
    assert history(book) == [("sentiment:15.0", "closed", 15.0, 25.0, CONDITION)]
    book.words(analysis(calmer), options, THRESHOLD)  # the same analysis again: nothing changes
    book.words(copy.deepcopy(analysis(calmer)), options, THRESHOLD)
    assert history(book) == [("sentiment:15.0", "closed", 15.0, 25.0, CONDITION)]
    relapse = calmer + [(30.0, -0.2), (35.0, -0.9)]
    book.words(analysis(relapse), options, THRESHOLD)
    assert history(book) == [("sentiment:15.0", "closed", 15.0, 25.0, CONDITION),
                             ("sentiment:35.0", "open", 35.0, None, None)]
    assert book.counts() == (1, 2)

    # a fresh book given only the last analysis has the same history: the customer's turns are
    # replayed in order, so a stretch that began and ended between two looks is not missed
    fresh = AlertBook()
    fresh.words(analysis(relapse), options, THRESHOLD)
    assert fresh.listed() == book.listed()
    off = AlertBook()
    off.words(analysis(relapse), LiveOptions(alert_negative_sentiment=False), THRESHOLD)
    assert off.listed() == []


def test_an_acknowledged_sentiment_stays_closed_while_the_customer_stays_negative() -> None:
    book, options = AlertBook(), LiveOptions()
    turns = [(5.0, -0.6), (10.0, -0.7)]
    book.words(analysis(turns), options, THRESHOLD)
    book.acknowledge("sentiment:5.0", "sam", 11.0)
    book.words(analysis(turns + [(15.0, -0.8)]), options, THRESHOLD)  # the same stretch goes on
    assert history(book) == [("sentiment:5.0", "closed", 5.0, 11.0, "sam")]
    book.words(analysis(turns + [(15.0, -0.8), (20.0, 0.7), (25.0, -0.9), (30.0, -0.8)]), options, THRESHOLD)
    assert history(book) == [("sentiment:5.0", "closed", 5.0, 11.0, "sam"),  # calm at 20, angry again at 30
                             ("sentiment:30.0", "open", 30.0, None, None)]


def test_an_item_answered_no_stays_open_until_acknowledged() -> None:
    book, options = AlertBook(), LiveOptions()
    book.words(analysis(prohibited=[]), options, THRESHOLD)
    assert book.listed() == []
    book.words(analysis(prohibited=[12.0]), options, THRESHOLD)
    (alert,) = book.listed()
    assert (alert["kind"], alert["key"], alert["state"], alert["opened_at"]) == ("item", f"item:{PROHIBITED}", "open", 12.0)
    assert alert["message"] == f"{PROHIBITED}: No prohibited phrases?"
    book.words(analysis(prohibited=[12.0, 14.0]), options, THRESHOLD)  # more of the same while open: one alert
    (alert,) = book.listed()
    assert [e["start"] for e in alert["evidence"]] == [12.0, 14.0] and alert["state"] == "open"
    book.words(analysis(prohibited=[]), options, THRESHOLD)  # the item reads otherwise later: still open
    assert history(book) == [(f"item:{PROHIBITED}", "open", 12.0, None, None)]
    acked = book.acknowledge(f"item:{PROHIBITED}", "sam", 16.5)
    assert (acked["state"], acked["closed_at"], acked["closed_by"]) == ("closed", 16.5, "sam")
    with pytest.raises(AlertClosed) as again:
        book.acknowledge(f"item:{PROHIBITED}", "lena", 17.0)
    assert again.value.alert["closed_by"] == "sam"  # the first acknowledgement is the one kept
    with pytest.raises(KeyError):
        book.acknowledge("item:nope", "sam", 17.0)
    book.words(analysis(prohibited=[12.0, 14.0]), options, THRESHOLD)  # nothing new: nothing raised
    assert book.counts() == (0, 1)
    book.words(analysis(prohibited=[12.0, 14.0, 30.0]), options, THRESHOLD)  # said again after the ack
    assert history(book) == [(f"item:{PROHIBITED}", "closed", 12.0, 16.5, "sam"),
                             (f"item:{PROHIBITED}:30.0", "open", 30.0, None, None)]
    assert [e["start"] for e in book.get(f"item:{PROHIBITED}:30.0")["evidence"]] == [30.0]
    assert [e["start"] for e in book.get(f"item:{PROHIBITED}")["evidence"]] == [12.0, 14.0]  # as acknowledged


def test_an_analysis_that_failed_changes_nothing() -> None:
    book, options = AlertBook(), LiveOptions()
    book.words(analysis(prohibited=[3.0]), options, THRESHOLD)
    for result in (None, {}, {"error": "RuntimeError: boom"}, {"utterances": [], "items": None, "sentiment": {}}):
        book.words(result, options, THRESHOLD)
    assert history(book) == [(f"item:{PROHIBITED}", "open", 3.0, None, None)]


def test_a_long_call_stays_open_until_acknowledged_or_the_call_ends(tmp_path: Path) -> None:
    live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive"), alert_silence_s=0, alert_crosstalk_s=0,
                                 alert_long_call_s=2.0))
    for call_id in ("acked", "ended"):
        call = live.open(call_id, "twilio", "CA" + call_id, {})
        for i in range(0, 3 * 8000, 160):  # 3 s of both parties
            for party in ("agent", "customer"):
                live.audio(call, party, i // 8, SPEECH)
        (alert,) = live.view(call)["alerts"]
        assert (alert["key"], alert["state"], alert["opened_at"]) == ("long_call", "open", 2.0)
    live.acknowledge(live.get("acked"), "long_call", "sam")
    live.end(live.get("acked"), "stop")
    live.end(live.get("ended"), "stop")
    assert history(live.get("acked").alerts) == [("long_call", "closed", 2.0, 3.0, "sam")]
    assert history(live.get("ended").alerts) == [("long_call", "closed", 2.0, 3.0, CONDITION)]
    assert [(c["call_id"], c["alerts"], c["alerts_total"]) for c in live.snapshot()] == [("acked", 0, 1), ("ended", 0, 1)]


# --- acknowledging through the server -----------------------------------------------------------


class ScriptedRecognizer:
    """What :class:`LiveCalls` asks of its live recogniser, answering with the analysis a test
    sets per call (``analyses``) instead of running models."""

    def __init__(self) -> None:
        self.analyses: dict[str, dict[str, Any]] = {}
        self.finished: set[str] = set()
        self.ready = threading.Event()
        self.ready.set()
        self.process = SimpleNamespace(is_alive=lambda: True)

    def admit(self, call_id: str, meta: dict[str, str]) -> bool:
        self.analyses.setdefault(call_id, {"utterances": [], "items": [], "sentiment": {}})
        return True

    def feed(self, call_id: str, party: str, pcm: np.ndarray) -> None:
        pass

    def finish(self, call_id: str) -> None:
        self.finished.add(call_id)

    def view(self, call_id: str) -> dict[str, Any] | None:
        return self.analyses.get(call_id)

    def close(self) -> None:
        pass


USERS = (("lena", "lead"), ("adam", "admin"), ("sam", "supervisor"), ("rita", "reviewer"), ("abe", "agent"))


@pytest.fixture
def server(tmp_path: Path):
    """A live server whose calls' analyses the test gives, alerting on the prohibited phrase,
    the customer's sentiment and a call past 2 s (no silence or cross-talk alerts), over a fresh
    SQLite database with a user of every role."""
    from pipeline.review.app import create_app

    db, tokens = live_database(tmp_path, USERS)
    recognizer = ScriptedRecognizer()
    live = LiveCalls(LiveOptions(archive=str(tmp_path / "archive"), reconnect_grace_s=30.0, alert_silence_s=0,
                                 alert_crosstalk_s=0, alert_long_call_s=2.0), recognizer=recognizer)
    srv, thread, url = start_server(create_app(db, live=live))
    yield {"url": url, "stream": url.replace("http://", "ws://") + f"/live/twilio?token={tokens['pbx']}", "live": live,
           "recognizer": recognizer}
    stop_server(srv, thread)


def open_call(server: dict, audio: dict[str, np.ndarray], call_id: str, seconds: float) -> None:
    """A call streamed for ``seconds`` and left open (waiting for its stream to reconnect)."""
    asyncio.run(send(server["stream"], messages(audio, 0, int(seconds * 8000), call_id, "MZ1"), stop=False))
    wait_for(lambda: server["live"].get(call_id) is not None and not server["live"].get(call_id).connected)


def test_a_supervisor_acknowledges_an_alert_and_the_wall_counts_the_open_ones(server, call_audio) -> None:
    server["recognizer"].analyses["a1"] = analysis([(0.5, -0.6), (1.5, -0.8)], prohibited=[1.2])
    open_call(server, call_audio, "a1", 3.0)
    sam, csrf = logged_in(server["url"], "sam", PASSWORD)
    (row,) = sam.get("/api/live/calls").json()["calls"]
    assert (row["alerts"], row["alerts_total"]) == (3, 3)
    assert [(a["key"], a["kind"], a["state"]) for a in row["alert_list"]] == [
        ("sentiment:0.5", "sentiment", "open"), (f"item:{PROHIBITED}", "item", "open"), ("long_call", "long_call", "open")]

    ack = sam.post(f"/api/live/calls/a1/alerts/item:{PROHIBITED}/ack", headers={"X-CSRF-Token": csrf})
    assert ack.status_code == 200, ack.text
    alert = ack.json()
    assert (alert["key"], alert["state"], alert["closed_by"], alert["closed_at"], alert["opened_at"]) == (
        f"item:{PROHIBITED}", "closed", "sam", 3.0, 1.2)  # closed at the call's moment: the audio so far
    (row,) = sam.get("/api/live/calls").json()["calls"]
    assert (row["alerts"], row["alerts_total"]) == (2, 3)
    assert {a["key"]: a["state"] for a in row["alert_list"]} == {
        "sentiment:0.5": "open", f"item:{PROHIBITED}": "closed", "long_call": "open"}
    detail = sam.get("/api/live/calls/a1").json()
    assert (detail["alerts_open"], detail["alerts_total"]) == (2, 3)
    shown = {a["key"]: a for a in detail["alerts"]}
    assert {k: (a["state"], a["closed_by"]) for k, a in shown.items()} == {
        "sentiment:0.5": ("open", None), f"item:{PROHIBITED}": ("closed", "sam"), "long_call": ("open", None)}
    assert shown[f"item:{PROHIBITED}"]["evidence"][0]["quote"] == "calm down (1.2)"
    assert all({"key", "state", "opened_at", "closed_at", "closed_by", "at", "message", "evidence"} <= a.keys()
               for a in detail["alerts"])

    # acknowledged already: 409 with the alert as it is (still sam's); unknown: 404
    lena, lena_csrf = logged_in(server["url"], "lena", PASSWORD)
    again = lena.post(f"/api/live/calls/a1/alerts/item:{PROHIBITED}/ack", headers={"X-CSRF-Token": lena_csrf})
    assert again.status_code == 409 and again.json()["alert"]["closed_by"] == "sam"
    assert lena.post("/api/live/calls/a1/alerts/nope/ack", headers={"X-CSRF-Token": lena_csrf}).status_code == 404
    assert lena.post("/api/live/calls/nope/alerts/long_call/ack", headers={"X-CSRF-Token": lena_csrf}).status_code == 404
    # leads and admins may acknowledge too
    assert lena.post("/api/live/calls/a1/alerts/long_call/ack", headers={"X-CSRF-Token": lena_csrf}).json()["closed_by"] == "lena"
    adam, adam_csrf = logged_in(server["url"], "adam", PASSWORD)
    assert adam.post("/api/live/calls/a1/alerts/sentiment:0.5/ack", headers={"X-CSRF-Token": adam_csrf}).json()[
        "closed_by"] == "adam"
    (row,) = sam.get("/api/live/calls").json()["calls"]
    assert (row["alerts"], row["alerts_total"]) == (0, 3)

    # the customer calms down, then is angry again: the closed alert stays, the relapse is new
    server["recognizer"].analyses["a1"] = analysis([(0.5, -0.6), (1.5, -0.8), (2.0, 0.9), (2.5, -0.7), (2.8, -0.9)],
                                                   prohibited=[1.2])
    detail = sam.get("/api/live/calls/a1").json()
    assert [(a["key"], a["state"], a["closed_by"]) for a in detail["alerts"] if a["kind"] == "sentiment"] == [
        ("sentiment:0.5", "closed", "adam"), ("sentiment:2.8", "open", None)]  # 2.5 averages 0.1 with 2.0
    assert (detail["alerts_open"], detail["alerts_total"]) == (1, 4)


def test_acknowledging_is_refused_without_the_role_a_session_or_the_csrf_token(server, call_audio) -> None:
    open_call(server, call_audio, "a2", 3.0)
    url = "/api/live/calls/a2/alerts/long_call/ack"
    for name in ("rita", "abe"):  # a reviewer and an agent, with their own CSRF token
        client, token = logged_in(server["url"], name, PASSWORD)
        assert client.post(url, headers={"X-CSRF-Token": token}).status_code == 403, name
    anonymous = httpx.Client(base_url=server["url"])
    assert anonymous.post(url).status_code == 401
    assert anonymous.post(url, headers={"X-CSRF-Token": "x"}).status_code == 401
    sam, csrf = logged_in(server["url"], "sam", PASSWORD)
    assert sam.post(url).status_code == 403  # no token
    assert sam.post(url, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert server["live"].get("a2").alerts.get("long_call")["state"] == "open"  # none of them closed it
    assert sam.get("/api/live/calls").json()["calls"][0]["alerts"] == 1
    ok = sam.post(url, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["closed_by"] == "sam"


def test_a_long_call_closes_when_the_call_ends(server, call_audio) -> None:
    open_call(server, call_audio, "a3", 3.0)
    asyncio.run(send(server["stream"], messages(call_audio, 24000, 32000, "a3", "MZ2"), stop=True))
    wait_for(lambda: server["live"].get("a3").state != "live")
    lena, _ = logged_in(server["url"], "lena", PASSWORD)
    (alert,) = lena.get("/api/live/calls/a3").json()["alerts"]
    assert (alert["key"], alert["state"], alert["closed_by"], alert["closed_at"]) == ("long_call", "closed", CONDITION, 4.0)
    assert lena.get("/api/live/calls").json()["calls"][0]["alerts"] == 0


# --- the call page in a browser -------------------------------------------------------------------


@pytest.mark.slow
def test_the_call_page_shows_open_alerts_first_and_acknowledges_one(server, call_audio) -> None:
    """Headless Chromium (the app's CSP: no inline script): the open alerts with an
    "Acknowledge" button, a click closes one, which is then shown muted with who acknowledged it;
    the wall counts the open alerts."""
    from test_browser_live import CHROMIUM, FLAGS, log_in
    from test_browser_live import wait_for as wait_in

    from playwright.sync_api import sync_playwright

    server["recognizer"].analyses["b1"] = analysis([(0.5, -0.6), (1.5, -0.8), (2.0, 0.9)], prohibited=[1.2])
    open_call(server, call_audio, "b1", 3.0)
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            ctx, page = log_in(browser, server["url"], "sam", violations)
            wait_in(page, "!!document.querySelector('#wall tr[data-call=\"b1\"]')")
            row = page.locator('#wall tr[data-call="b1"]')
            assert (row.get_attribute("data-alerts"), row.get_attribute("data-alerts-total")) == ("2", "3")
            assert page.locator('#wall tr[data-call="b1"] .alert-chip.open').count() == 2
            assert page.locator('#wall tr[data-call="b1"] .alert-chip.closed').get_attribute("data-kind") == "sentiment"

            page.goto(server["url"] + "/live/b1")
            wait_in(page, "document.getElementById('live-alerts').dataset.total === '3'")
            states = page.eval_on_selector_all("#live-alerts .live-alert", "els => els.map(e => e.dataset.state)")
            assert states == ["open", "open", "closed"]  # open ones first
            item = page.locator(f'.live-alert[data-key="item:{PROHIBITED}"]')
            assert "calm down (1.2)" in item.inner_text()
            assert page.locator(".live-alert.closed button.ack").count() == 0
            assert "closed at 0:02 (it ended)" in page.locator('.live-alert[data-kind="sentiment"]').inner_text()
            item.locator("button.ack").click()
            wait_in(page, f"document.querySelector('.live-alert[data-key=\"item:{PROHIBITED}\"]').dataset.state === 'closed'")
            assert "acknowledged by sam" in page.locator(f'.live-alert[data-key="item:{PROHIBITED}"]').inner_text()
            assert page.inner_text("#alert-msg") == "Acknowledged."
            assert server["live"].get("b1").alerts.get(f"item:{PROHIBITED}")["closed_by"] == "sam"
            wait_in(page, "document.getElementById('live-alerts').dataset.open === '1'")
            assert page.inner_text("#alert-count") == "(1 open, 3 in all)"
            ctx.close()
        finally:
            browser.close()
    assert violations == []
