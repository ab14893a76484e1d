"""Voice of the customer (pipeline/insights/voc.py): the statistics, growth never claimed on
tiny n, repeat contacts and FCR counted exactly on a constructed folder, complaint drivers and
drill-down ids, survey comments per topic, and a folder without contact reasons."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats
from insights_helpers import TOPIC_REASONS, Call, store_of, topic_calls, write_run

from pipeline.insights.options import InsightsOptions
from pipeline.insights.store import InsightStore
from pipeline.insights.voc import (
    InsightsError,
    benjamini_hochberg,
    insights,
    rate_ratio_test,
    resolve_period,
    wilson,
)




# -- statistics ---------------------------------------------------------------------------------------


def test_wilson() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def test_rate_ratio_test() -> None:
    same = rate_ratio_test(10, 100, 10, 100)
    assert same["rate_ratio"] == 1.0 and same["p"] == 1.0 and same["ci"][0] < 1 < same["ci"][1]
    up = rate_ratio_test(60, 200, 20, 200)
    assert up["rate_ratio"] == 3.0 and up["p"] < 1e-5 and up["ci"][0] > 1.5
    new = rate_ratio_test(12, 100, 0, 100)  # none before: the ratio is unbounded above
    assert new["rate_ratio"] is None and new["ci"][1] is None and new["ci"][0] > 1 and new["p"] < 0.001
    tiny = rate_ratio_test(2, 10, 0, 10)  # 2 of 10 against 0 of 10: nothing can be said
    assert tiny["p"] > 0.05


def test_benjamini_hochberg() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == [0.04, pytest.approx(0.0533, abs=1e-3),
                                                           pytest.approx(0.0533, abs=1e-3), 0.5]
    assert benjamini_hochberg([]) == []


def test_period_defaults_and_errors(tmp_path: Path) -> None:
    with InsightStore(tmp_path / "s.sqlite") as store:
        write_run(tmp_path / "run", [Call("a", "2026-11-20T10:00:00Z", "x")])
        store.update(tmp_path / "run")
        p = resolve_period(store, InsightsOptions(), None, None)
        assert (str(p["from"]), str(p["to"]), str(p["baseline_from"]), str(p["baseline_to"])) == \
            ("2026-10-24", "2026-11-21", "2026-09-26", "2026-10-24")
        with pytest.raises(InsightsError, match="not a date"):
            resolve_period(store, InsightsOptions(), "2026-13-01", None)
        with pytest.raises(InsightsError, match="period is empty"):
            resolve_period(store, InsightsOptions(), "2026-11-10", "2026-11-10")


# -- growth -----------------------------------------------------------------------------------------------


BASE_WEEKS = ["2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
PERIOD_WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]


@pytest.fixture(scope="module")
def growing(tmp_path_factory: pytest.TempPathFactory) -> InsightStore:
    """Four weeks of baseline, four of period: outage triples in the period; the rest steady."""
    calls = topic_calls(BASE_WEEKS, {t: 6 for t in TOPIC_REASONS})
    calls += topic_calls(PERIOD_WEEKS, {**{t: 6 for t in TOPIC_REASONS}, "outage": 18}, start_index=5000)
    store = store_of(tmp_path_factory.mktemp("growing"), calls)
    yield store
    store.close()


def topic_of(data: dict, source: str) -> dict:
    """The topic holding most calls of ``source`` (its calls' ids start with it)."""
    return max(data["topics"], key=lambda t: sum(1 for c in t["share"]["call_ids"] if c.startswith(source)))


def test_growth_detected_with_enough_data(growing: InsightStore) -> None:
    data = insights(growing, InsightsOptions(), "2026-11-02", "2026-11-30")
    assert data["baseline"] == {"from": "2026-10-05", "to": "2026-11-02", "n": 120}
    outage = topic_of(data, "outage")
    assert outage["growth"]["verdict"] == "growing", outage["growth"]
    assert outage["growth"]["ci"][0] > 1 and outage["growth"]["q"] < 0.05
    for source in ("billing", "cancel", "delivery", "password"):
        g = topic_of(data, source)["growth"]
        assert g["verdict"] in ("no clear change", "falling"), (source, g)
    # every weekly figure says its n; the trend lists every week of the period
    assert [w["week"] for w in outage["weeks"]] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert all(w["n"] == 42 and w["share"] == round(w["k"] / 42, 4) for w in outage["weeks"])  # 4 x 6 + 18
    assert sorted(i for w in outage["weeks"] for i in w["call_ids"]) == outage["share"]["call_ids"]
    assert len(outage["baseline"]["call_ids"]) == outage["baseline"]["k"] > 0


def test_no_growth_claimed_on_tiny_n(tmp_path: Path, growing: InsightStore) -> None:
    # the same store, a period of one day: too few contacts to judge anything
    data = insights(growing, InsightsOptions(min_sample=20), "2026-11-23", "2026-11-24")
    assert data["contacts"]["with_reason"] < 20
    assert all(t["growth"]["verdict"] == "too few to judge" and t["growth"]["p"] is None for t in data["topics"])
    assert all(t["share"]["too_few"] for t in data["topics"])
    # a new topic seen 3 times against nothing before: not enough for min_sample 10
    calls = topic_calls(BASE_WEEKS, {"billing": 6, "cancel": 6})
    calls += topic_calls(["2026-11-02"], {"billing": 6, "cancel": 6, "password": 3}, start_index=5000)
    with store_of(tmp_path, calls) as store:
        data = insights(store, InsightsOptions(min_sample=10), "2026-11-02", "2026-11-09")
        assert data["topics"] and all(t["growth"]["verdict"] != "new" for t in data["topics"])
        password = [t for t in data["topics"] if any(c.startswith("password") for c in t["share"]["call_ids"])]
        assert not password or password[0]["growth"]["verdict"] == "too few to judge"


# -- repeat contacts and FCR --------------------------------------------------------------------------------


def fcr_calls() -> list[Call]:
    reason = TOPIC_REASONS["billing"][0]

    def c(cid: str, when: str, customer: str | None, agent: str = "A2", channel: str = "voice") -> Call:
        return Call(cid, when, reason, customer=customer, agent_id=agent, team="care" if agent == "A1" else "sales",
                    channel=channel)

    return [
        c("b0", "2026-10-28T10:00:00Z", "cb"),               # before the period, 13 days before b1
        c("c0", "2026-10-30T09:00:00Z", "cc"),               # before the period; c1 repeats it
        c("a1", "2026-11-02T10:00:00Z", "ca", "A1"),         # a2 3 days later: not resolved
        c("a2", "2026-11-05T10:00:00Z", "ca", channel="chat"),
        c("a3", "2026-11-20T10:00:00Z", "ca"),               # 15 days after a2
        c("c1", "2026-11-03T09:00:00Z", "cc", "A1"),         # a repeat (of c0), itself resolved
        c("n1", "2026-11-04T10:00:00Z", None),               # no customer identity
        c("b1", "2026-11-10T10:00:00Z", "cb", "A1", "email"),  # b2 exactly 7 days later: not resolved
        c("b2", "2026-11-17T10:00:00Z", "cb"),
        c("d1", "2026-11-25T10:00:00Z", "cd"),               # in the last 7 days: not yet knowable
        c("d2", "2026-11-27T10:00:00Z", "cd"),
        c("z1", "2026-11-30T10:00:00Z", "cz"),               # the newest contact of the data
    ]


def test_repeat_contacts_and_fcr_exact(tmp_path: Path) -> None:
    with store_of(tmp_path, fcr_calls()) as store:
        data = insights(store, InsightsOptions(repeat_days=7, min_sample=2), "2026-11-01", "2026-12-01")
    rc = data["repeat_contacts"]
    assert rc["knowable_until"] == "2026-11-23"
    overall = rc["overall"]
    assert (overall["contacts"], overall["with_customer"], overall["not_yet_knowable"], overall["n"], overall["k"]) \
        == (10, 9, 3, 6, 4)
    assert overall["call_ids"] == ["a1", "b1"] and overall["repeat_contacts"] == 4  # a2, b2, c1, d2
    assert overall["share"] == round(4 / 6, 4) and overall["ci"] == wilson(4, 6)
    assert rc["pairs"] == [{"call_id": "a1", "repeat_call_id": "a2", "days": 3.0},
                           {"call_id": "b1", "repeat_call_id": "b2", "days": 7.0},
                           {"call_id": "d1", "repeat_call_id": "d2", "days": 2.0}]
    agents = {g["group"]: g for g in rc["by_agent"]}
    assert (agents["A1"]["n"], agents["A1"]["k"], agents["A1"]["call_ids"]) == (3, 1, ["a1", "b1"])  # a1, b1, c1
    assert (agents["A2"]["contacts"], agents["A2"]["n"], agents["A2"]["k"]) == (7, 3, 3)  # a2, a3, b2
    teams = {g["group"]: g for g in rc["by_team"]}
    assert teams["care"]["call_ids"] == ["a1", "b1"] and teams["sales"]["call_ids"] == []
    channels = {g["group"]: g for g in rc["by_channel"]}
    assert (channels["email"]["n"], channels["email"]["k"]) == (1, 0)
    assert (channels["chat"]["n"], channels["chat"]["k"]) == (1, 1)
    assert (channels["voice"]["n"], channels["voice"]["k"], channels["voice"]["contacts"]) == (4, 3, 8)


# -- drivers, drill-down, surveys ---------------------------------------------------------------------------


def driver_calls() -> list[Call]:
    calls = topic_calls(["2026-11-02", "2026-11-09"], {"billing": 6, "delivery": 6})
    for call in calls:
        n = int(call.call_id.split("-")[1])
        if call.call_id.startswith("billing"):
            call.sentiment_end = -0.8 if n % 2 else 0.4           # half negative
            call.outcome = "escalated" if n % 3 == 0 else "resolved"
        else:
            call.sentiment_end = None if n % 4 == 0 else 0.5      # some without sentiment
            call.outcome = "unresolved" if n % 6 == 0 else "resolved"
    calls[0].channel, calls[0].utterance_id = "chat", "m004"
    return calls


def test_drivers_and_drill_down(tmp_path: Path) -> None:
    calls = driver_calls()
    with store_of(tmp_path, calls) as store:
        data = insights(store, InsightsOptions(min_sample=5), "2026-11-02", "2026-11-16", negative_threshold=-0.3)
        assigned = dict(store.conn.execute("SELECT call_id, topic_id FROM topic_assignments"))
    by_id = {c.call_id: c for c in calls}
    for t in data["topics"]:  # a topic's ids are exactly the calls assigned to it, with their quotes
        assert t["share"]["call_ids"] == sorted(c for c, tid in assigned.items() if tid == t["topic_id"])
        for ev in t["calls"]:
            call = by_id[ev["call_id"]]
            assert ev["quote"] == call.reason and ev["topic_id"] == t["topic_id"]
            if call.channel == "voice":
                assert ev["start"] == call.reason_start and ev["message"] is None
            else:
                assert ev["start"] is None
    chat = next(ev for t in data["topics"] for ev in t["calls"] if ev["call_id"] == calls[0].call_id)
    assert chat["message"] == 4 and chat["utterance_id"] == "m004"

    billing = next(d for d in data["drivers"] if topic_of(data, "billing")["topic_id"] == d["topic_id"])
    mine = [c for c in calls if assigned.get(c.call_id) == billing["topic_id"]]
    negative = sorted(c.call_id for c in mine if c.sentiment_end is not None and c.sentiment_end < -0.3)
    escalated = sorted(c.call_id for c in mine if c.outcome in ("escalated", "unresolved"))
    assert billing["negative"]["call_ids"] == negative and billing["negative"]["n"] == len(mine)
    assert billing["escalated_unresolved"]["call_ids"] == escalated
    assert billing["problem"]["call_ids"] == sorted(set(negative) | set(escalated))
    assert billing["negative"]["ci"] == wilson(len(negative), len(mine))
    delivery = next(d for d in data["drivers"] if d["topic_id"] != billing["topic_id"])
    with_sentiment = [c for c in calls if assigned.get(c.call_id) == delivery["topic_id"]
                      and c.sentiment_end is not None]
    assert delivery["negative"]["n"] == len(with_sentiment) and delivery["negative"]["k"] == 0
    assert billing["rank"] == 1 and delivery["rank"] == 2  # billing has more problem contacts
    assert data["surveys"] == {"available": False, "matched": 0}


def test_survey_comments_per_topic(tmp_path: Path) -> None:
    calls = driver_calls()
    with store_of(tmp_path, calls) as store:
        # the surveys table as the import makes it (made here for the test only)
        store.conn.execute("CREATE TABLE surveys (call_id TEXT, csat REAL, nps REAL, comment TEXT)")
        billing_ids = [c.call_id for c in calls if c.call_id.startswith("billing")][:3]
        store.conn.executemany("INSERT INTO surveys VALUES (?, ?, ?, ?)",
                               [(billing_ids[0], 1.0, 2.0, "charged twice again, awful"),
                                (billing_ids[1], 2.0, None, None), (billing_ids[2], 3.0, 6.0, "ok in the end"),
                                ("not-a-call", 5.0, 10.0, "unmatched")])
        store.conn.commit()
        data = insights(store, InsightsOptions(), "2026-11-02", "2026-11-16")
    billing = topic_of(data, "billing")
    assert billing["csat"]["n"] == 3 and billing["csat"]["mean"] == 2.0
    # Student t with 2 degrees of freedom (three answers, standard deviation 1)
    assert math.isclose(billing["csat"]["ci"][1] - 2.0, stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3), abs_tol=1e-3)
    assert [c["comment"] for c in billing["comments"]] == ["charged twice again, awful", "ok in the end"]
    assert data["surveys"] == {"available": True, "matched": 3}
    assert topic_of(data, "delivery")["csat"] is None


def test_without_contact_reasons(tmp_path: Path) -> None:
    calls = [Call(f"x{i}", f"2026-11-{2 + i:02d}T10:00:00Z", None, customer=f"c{i % 2}", contact=i % 2 == 0)
             for i in range(6)]
    with store_of(tmp_path, calls) as store:
        data = insights(store, InsightsOptions(min_sample=2), "2026-11-01", "2026-11-30")
    assert data["topics"] == [] and data["drivers"] == []
    assert any(n.startswith("no contact reasons") for n in data["notes"])
    assert data["contacts"]["n"] == 6 and data["contacts"]["with_reason"] == 0
    assert data["repeat_contacts"]["overall"]["contacts"] == 6
    assert data["repeat_contacts"]["by_topic"][0]["group"] == "(no contact reason)"


def test_new_topic(tmp_path: Path) -> None:
    calls = topic_calls(BASE_WEEKS, {"billing": 6, "cancel": 6})
    calls += topic_calls(["2026-11-02", "2026-11-09"], {"billing": 6, "cancel": 6, "password": 8}, start_index=5000)
    with store_of(tmp_path, calls) as store:
        data = insights(store, InsightsOptions(min_sample=10), "2026-11-02", "2026-11-16")
    password = topic_of(data, "password")
    assert password["baseline"] == {"k": 0, "n": 48, "call_ids": []} and password["share"]["k"] == 16
    g = password["growth"]
    assert g["verdict"] == "new" and g["rate_ratio"] is None and g["ci"][1] is None and g["ci"][0] > 1
    assert all(topic_of(data, s)["growth"]["verdict"] != "new" for s in ("billing", "cancel"))
