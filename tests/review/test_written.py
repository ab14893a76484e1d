"""Written conversations (e-mail threads, chats) in the review app, beside calls, through a real
server on SQLite and PostgreSQL: the loader fills ``calls.channel`` and ``calls.messages`` (an
older database's rows become ``voice``), the queue filters and shows the channel, the call JSON
and page give a written conversation's messages (no audio), and the dashboards filter by
channel and split their KPIs and trends by it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select, text

from pipeline.review.db import Assignment, Call, ItemTally, make_engine, sessions
from pipeline.review.loader import load_results
from pipeline.review.migrate import current_revision, upgrade
from pipeline.review.users import add_user
from review_helpers import db_url, postgres_url  # noqa: F401  (fixtures)
from servers import review_sites
from test_app import PASSWORD, login, start_server
from test_db import call_record, write_run
from written_helpers import CHAT, EMAIL_ANSWERS, EMAIL_THREAD, written_record, write_written

E1_SPAN = 23 * 3600 + 15 * 60  # 2026-11-02 09:00 to 2026-11-03 08:15


def make_site(root: Path, db: str) -> dict:
    """A run with a call (v1, agent a1), an e-mail thread (e1, agent a1, assigned to rita) and a
    chat (ch1, agent a2, queue support) loaded into ``db``; a lead (lena) and a reviewer (rita);
    the app on a free port. {"url", "out", "engine", "server", "thread"}."""
    from pipeline.review.app import create_app

    out = root / "out"
    write_run(out, [call_record("v1", {"opening.greeting": "yes", "closing.thanks": "no"})])
    write_written(out, [written_record("e1", "email", answers=EMAIL_ANSWERS, score=1.0),
                        written_record("ch1", "chat", CHAT, {"opening.greeting": ("no", [])}, agent="a2",
                                       queue="support", score=0.25, started_at="2026-11-04T14:00:00Z",
                                       redacted=False)])
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        counts = load_results(s, out)
        assert counts.to_dict() == {"added": 3, "updated": 0, "unchanged": 0, "skipped": 0}
        users = {name: add_user(s, name, PASSWORD, role) for name, role in (("lena", "lead"), ("rita", "reviewer"))}
        s.add(Assignment(call_id="e1", reviewer_id=users["rita"].id))
    srv, thread, url = start_server(create_app(db))
    return {"url": url, "out": out, "engine": engine, "server": srv, "thread": thread}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from review_sites(request, tmp_path_factory, "written", make_site)


# -- the database and the loader -----------------------------------------------------------------

def test_the_loader_fills_the_channel_and_the_messages(site):
    with sessions(site["engine"])() as s:
        rows = {c.call_id: c for c in s.scalars(select(Call))}
        assert {k: (c.channel, c.messages) for k, c in rows.items()} == {
            "v1": ("voice", None), "e1": ("email", 4), "ch1": ("chat", 3)}
        e1 = rows["e1"]
        assert e1.duration_s == E1_SPAN and e1.channels is None and e1.audio_path is None
        assert e1.started_at == "2026-11-02T09:00:00+00:00"  # no manifest time: the first message's
        assert rows["ch1"].started_at == "2026-11-04T14:00:00Z"  # the manifest's when it gives one
        assert e1.score == 1.0 and e1.pii_redacted is True and rows["ch1"].pii_redacted is False
        assert [i.item_id for i in e1.items] == list(EMAIL_ANSWERS)
        assert e1.items[1].evidence[0]["message"] == 3 and e1.items[1].evidence[0]["chars"] == \
            EMAIL_ANSWERS["courtesy.empathy"][1][0]["chars"]
    with sessions(site["engine"])() as s:  # the item tallies know the channel
        tallies = {(t.channel, t.item_id): (t.yes, t.decided) for t in s.scalars(select(ItemTally))}
    assert tallies[("email", "courtesy.empathy")] == (1, 1) and tallies[("chat", "opening.greeting")] == (0, 1)
    assert tallies[("voice", "closing.thanks")] == (0, 1)
    with sessions(site["engine"]).begin() as s:  # loading again changes nothing
        assert load_results(s, site["out"]).to_dict() == {"added": 0, "updated": 0, "unchanged": 3, "skipped": 0}


def test_a_record_of_a_channel_the_app_does_not_know_is_skipped(site, tmp_path: Path):
    out = tmp_path / "odd"
    fax = written_record("fax1", "email")
    fax.channel = "fax"
    write_written(out, [fax])
    with sessions(site["engine"]).begin() as s:
        assert load_results(s, out).to_dict() == {"added": 0, "updated": 0, "unchanged": 0, "skipped": 1}
        assert s.get(Call, "fax1") is None


def test_an_older_database_gets_voice_for_every_call(db_url, tmp_path: Path):  # noqa: F811
    """A database at revision 0008 with a call and its tally: after the upgrade the call and
    the tally are ``voice``, and a written record loads beside it."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from pipeline.review.migrate import MIGRATIONS

    eng = make_engine(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        conn.execute(text("INSERT INTO calls (call_id, out_dir, agent_id, started_at, score, auto_fail, "
                          "low_confidence_items, result_sha256, metadata_json, loaded_at) VALUES ('k1', '/tmp', 'a1', "
                          "'2026-11-02T10:00:00Z', 1.0, false, 0, 'x', '{}', '2026-11-01 00:00:00')"))
        conn.execute(text("INSERT INTO item_tallies (day, agent_id, queue, item_id, position, yes, decided) "
                          "VALUES ('2026-11-02', 'a1', NULL, 'opening.greeting', 0, 1, 1)"))
    upgrade(eng)
    assert current_revision(eng) == "0012"
    with sessions(eng)() as s:
        call = s.get(Call, "k1")
        assert (call.channel, call.messages) == ("voice", None)
        assert [(t.day, t.channel, t.yes) for t in s.scalars(select(ItemTally))] == [("2026-11-02", "voice", 1)]
    out = tmp_path / "out"
    write_written(out, [written_record("e9", "email", agent="a7")])
    with sessions(eng).begin() as s:
        load_results(s, out)
    with sessions(eng)() as s:
        assert {c.call_id: c.channel for c in s.scalars(select(Call))} == {"k1": "voice", "e9": "email"}
        assert {(t.agent_id, t.channel) for t in s.scalars(select(ItemTally))} == {("a1", "voice"), ("a7", "email")}
    eng.dispose()


# -- the queue ------------------------------------------------------------------------------------

def test_the_queue_filters_by_channel_and_shows_it(site):
    lena, _ = login(site, "lena")
    every = lena.get("/api/calls", params={"period": "all"}).json()["calls"]
    assert {r["call_id"]: (r["channel"], r["messages"]) for r in every} == {
        "v1": ("voice", None), "e1": ("email", 4), "ch1": ("chat", 3)}
    for channel, ids in (("voice", ["v1"]), ("email", ["e1"]), ("chat", ["ch1"])):
        got = lena.get("/api/calls", params={"period": "all", "channel": channel}).json()
        assert [r["call_id"] for r in got["calls"]] == ids and got["total"] == 1
    both = lena.get("/api/calls", params={"period": "all", "agent": "a1", "channel": "email"}).json()["calls"]
    assert [r["call_id"] for r in both] == ["e1"]
    ordered = lena.get("/api/calls", params={"period": "all", "sort": "channel"}).json()["calls"]
    assert [r["channel"] for r in ordered] == ["chat", "email", "voice"]
    bad = lena.get("/api/calls", params={"channel": "fax"})
    assert bad.status_code == 422 and "voice, email, chat" in bad.json()["detail"]

    page = lena.get("/", params={"period": "all", "channel": "email"}).text
    rows = re.findall(r'<tr data-channel="(\w+)"><td><a href="/calls/([\w-]+)">', page)
    assert rows == [("email", "e1")]
    assert '<option value="email" selected>' in page and "4 messages" in page
    assert '<span class="badge channel-email">e-mail</span>' in page
    whole = lena.get("/", params={"period": "all"}).text
    assert sorted(re.findall(r'<tr data-channel="(\w+)">', whole)) == ["chat", "email", "voice"]
    assert "60 s" in whole  # a call's length as before
    rita, _ = login(site, "rita")  # a reviewer's queue: her e-mail thread, channel and all
    assert [(r["call_id"], r["channel"]) for r in rita.get("/api/calls").json()["calls"]] == [("e1", "email")]


# -- the call page and its JSON ---------------------------------------------------------------------

def test_a_written_thread_comes_as_messages_with_their_text(site):
    rita, _ = login(site, "rita")
    data = rita.get("/api/calls/e1").json()
    assert data["channel"] == "email" and data["written"] is True and data["audio"] is None
    messages = data["messages"]
    assert [(m["n"], m["utterance_id"], m["role"]) for m in messages] == [
        (1, "m001", "customer"), (2, "m002", "system"), (3, "m003", "agent"), (4, "m004", "customer")]
    assert [m["text"] for m in messages] == [" ".join(m["text"].split()) for m in EMAIL_THREAD]
    assert [m["text"] for m in messages] == [u["text"] for u in data["utterances"]]
    first, auto, answer = messages[0], messages[1], messages[2]
    assert first["subject"] == "Double charge on my invoice" and first["time"] == "2026-11-02T09:00:00+00:00"
    assert first["time_label"] == "2026-11-02 09:00 UTC"
    assert first["attachments"] == [{"name": "invoice-october.pdf", "size": 48213, "size_label": "47.1 KB",
                                     "content_type": "application/pdf"}]
    assert auto["auto_reply"] is True and first["auto_reply"] is False
    assert answer["name"] == "Nina" and answer["signature"] == "Nina, Billing team" and first["name"] is None
    assert data["thread"]["messages"] == 4 and data["thread"]["participants"] == 2
    assert data["thread"]["span_s"] == E1_SPAN and data["thread"]["span_label"] == "23.2 h"
    response = data["thread"]["response"]
    assert response["first"]["label"] == "2.5 h" and response["policy_label"] == "4.0 h"
    # every piece of evidence points at its message, and its characters are the quote
    by_n = {m["n"]: m["text"] for m in messages}
    evidence = [e for item in data["items"] for e in item["evidence"]]
    assert len(evidence) == 3
    for e in evidence:
        assert by_n[e["message"]][e["chars"][0]:e["chars"][1]] == e["quote"]
    assert rita.get("/calls/e1/audio").status_code == 404  # nothing to play

    lena, _ = login(site, "lena")  # a call as before, with its channel
    call = lena.get("/api/calls/v1").json()
    assert call["channel"] == "voice" and call["written"] is False and call["messages"] == []
    assert call["thread"] is None and set(call["audio"]) == {"playable", "masked", "reason"}


def test_the_written_call_page_shows_the_thread_and_no_player(site):
    rita, csrf = login(site, "rita")
    page = rita.get("/calls/e1").text
    assert "<h1>E-mail thread e1</h1>" in page
    assert page.count('<li class="message ') == 4 and 'id="thread"' in page
    assert '<li class="message message-system auto-reply" id="m002" data-n="2"' in page
    assert '<span class="badge auto-reply-mark">auto-reply</span>' in page
    assert ('<span class="attachment-name">invoice-october.pdf</span> '
            '<span class="attachment-size muted">(47.1 KB)</span>') in page
    assert '<span class="message-name">Nina</span>' in page and "Double charge on my invoice" in page
    assert '<time datetime="2026-11-02T11:30:00+00:00">2026-11-02 11:30 UTC</time>' in page
    assert "<audio" not in page and 'id="no-audio"' not in page and "No audio" not in page
    assert "/static/thread.js" in page and "/static/player.js" not in page
    assert 'id="transcript"' not in page and 'id="not-redacted"' not in page
    chars = EMAIL_ANSWERS["courtesy.empathy"][1][0]["chars"]
    assert (f'data-message="3" data-chars="{chars[0]},{chars[1]}">'
            '#3 apology: “I am sorry about the double charge.”') in page
    assert "First response: 2.5 h (business hours), message #1 answered by #3" in page
    # the review works as on a call
    r = rita.put("/api/calls/e1/review", headers={"X-CSRF-Token": csrf}, json={"version": 0, "answers": {
        "opening.greeting": {"answer": "yes"}}})
    assert r.status_code == 200 and r.json()["state"] == "draft"

    lena, _ = login(site, "lena")
    chat = lena.get("/calls/ch1").text
    assert "<h1>Chat ch1</h1>" in chat and chat.count('<li class="message ') == 3
    assert 'id="not-redacted"' in chat and "as they were written" in chat and "<audio" not in chat
    assert "Subject:" not in chat
    static = lena.get("/static/thread.js")
    assert static.status_code == 200 and "evidence-mark" in static.text


# -- the dashboards ---------------------------------------------------------------------------------

def test_the_dashboards_filter_by_channel_and_split_by_it(site):
    lena, csrf = login(site, "lena")
    data = lena.get("/api/dashboard", params={"period": "all"}).json()
    assert data["channel"] is None
    channels = {c["channel"]: c for c in data["channels"]}
    assert list(channels) == ["voice", "email", "chat"]
    assert {k: (c["calls"], c["mean_score"]) for k, c in channels.items()} == {
        "voice": (1, 0.5), "email": (1, 1.0), "chat": (1, 0.25)}
    assert channels["email"]["pass_rates"]["courtesy.empathy"] == 1.0
    assert channels["voice"]["pass_rates"]["courtesy.empathy"] is None
    assert list(data["channel_trends"]) == ["voice", "email", "chat"]
    assert sum(r["calls"] for rows in data["channel_trends"].values() for r in rows) == 3

    email = lena.get("/api/dashboard", params={"period": "all", "channel": "email"}).json()
    assert [(a["agent_id"], a["calls"]) for a in email["agents"]] == [("a1", 1)]
    assert set(email["agents"][0]["pass_rates"]) == set(EMAIL_ANSWERS)  # the thread's items only
    assert [c["channel"] for c in email["channels"]] == ["email"] and list(email["channel_trends"]) == ["email"]
    assert sum(r["calls"] for r in email["trend"]) == 1 and set(email["team_trends"]) == {"billing"}
    assert email["agreement"] == {}
    a2 = lena.get("/api/dashboard", params={"period": "all", "agent": "a2"}).json()
    assert [c["channel"] for c in a2["channels"]] == ["chat"]  # an agent's figures per channel
    assert lena.get("/api/dashboard", params={"channel": "fax"}).status_code == 422

    # a submitted review of the thread counts for the e-mail channel only
    version = lena.get("/api/calls/e1").json()["review"]["version"]
    r = lena.put("/api/calls/e1/review", headers={"X-CSRF-Token": csrf}, json={"version": version, "submit": True,
                 "answers": {"opening.greeting": {"answer": "yes"}, "courtesy.empathy": {"answer": "no"},
                             "closing.resolved": {"answer": "yes"}}})
    assert r.status_code == 200, r.text
    after = {c["channel"]: c for c in lena.get("/api/dashboard", params={"period": "all"}).json()["channels"]}
    assert after["email"]["reviewed_calls"] == 1 and after["voice"]["reviewed_calls"] == 0
    assert after["email"]["pass_rates"]["courtesy.empathy"] == 0.0
    email = lena.get("/api/dashboard", params={"period": "all", "channel": "email"}).json()
    assert email["agreement"]["courtesy.empathy"]["n"] == 1

    page = lena.get("/dashboard", params={"period": "all"}).text
    assert 'id="chart-channels"' in page and '<tr data-channel="email">' in page
    assert '<option value="chat" >chat</option>' in page or '<option value="chat">chat</option>' in page
    links = dict(re.findall(r'<tr data-channel="(\w+)">\s*<td><a class="channel-only" href="([^"]+)"', page))
    assert set(links) == {"voice", "email", "chat"} and "channel=chat" in links["chat"]
    calls = re.search(r'<tr data-channel="chat">.*?<a class="channel-calls" href="([^"]+)"', page, re.S).group(1)
    got = lena.get("/api/calls", params=dict(p.split("=") for p in calls.replace("&amp;", "&")[2:].split("&")))
    assert [c["call_id"] for c in got.json()["calls"]] == ["ch1"]  # the channel's count opens its calls
    per_channel = re.search(r'<table id="channel-pass-rates">.*?</table>', page, re.S).group(0)
    email_row = re.search(r'<tr data-channel="email">.*?</tr>', per_channel, re.S).group(0)
    assert email_row.count("<a href=") == 3 and "0%</a>" in email_row  # empathy, answered no by the review
    no_empathy = re.search(r'<a href="([^"]+item=courtesy.empathy[^"]*)">0%</a>', email_row).group(1)
    got = lena.get("/api/calls", params=dict(p.split("=") for p in no_empathy.replace("&amp;", "&")[2:].split("&")))
    assert [c["call_id"] for c in got.json()["calls"]] == ["e1"]
    filtered = lena.get("/dashboard", params={"period": "all", "channel": "chat"}).text
    assert '<option value="chat" selected>' in filtered and 'id="chart-channels"' not in filtered  # one line: no chart
    assert re.findall(r'<tr data-agent="([^"]*)">', filtered) == ["a2"]

    exported = lena.get("/dashboard.csv", params={"period": "all", "rows": "channels"})
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0][:3] == ["channel", "calls", "mean_score"] and [r[0] for r in table[1:]] == ["voice", "email", "chat"]
    assert lena.get("/dashboard.csv", params={"rows": "users"}).status_code == 422
    assert lena.get("/dashboard.csv", params={"period": "all"}).text.startswith("agent_id,")
