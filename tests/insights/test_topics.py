"""Topics of contact reasons (pipeline/insights/topics.py), with the real packaged sentence
embedder: paraphrases together, different topics apart, deterministic, readable labels, stable
ids, incremental embedding."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from insights_helpers import TOPIC_REASONS, Call, store_of, topic_calls, write_run
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline.insights.options import TopicOptions
from pipeline.insights.store import InsightStore
from pipeline.insights.topics import (
    NO_TOPIC,
    ctfidf_words,
    load_topics,
    min_cluster_size,
    sample_calls,
    update_topics,
)

WEEKS = ["2026-11-02", "2026-11-09"]


build = store_of


def assignments(store: InsightStore) -> dict[str, int]:
    return dict(store.conn.execute("SELECT call_id, topic_id FROM topic_assignments"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> InsightStore:
    store = build(tmp_path_factory.mktemp("run"), topic_calls(WEEKS))
    yield store
    store.close()


def test_paraphrases_together_and_topics_apart(built: InsightStore) -> None:
    by_source: dict[str, Counter] = {}
    for call_id, topic in assignments(built).items():
        by_source.setdefault(call_id.split("-")[0], Counter())[topic] += 1
    assert set(by_source) == set(TOPIC_REASONS)
    majority = {}
    for source, counts in by_source.items():
        topic, n = counts.most_common(1)[0]
        assert topic != NO_TOPIC, (source, counts)
        # paraphrases of one reason: at least 80% of its calls in one topic, none in another topic
        assert n >= 0.8 * sum(counts.values()), (source, counts)
        assert set(counts) <= {topic, NO_TOPIC}, (source, counts)
        majority[source] = topic
    assert len(set(majority.values())) == len(TOPIC_REASONS)  # different reasons, different topics
    assert len(load_topics(built)) == len(TOPIC_REASONS)


def test_labels_readable(built: InsightStore) -> None:
    expected = {"billing": {"charge", "charged", "twice", "bill", "invoice", "payment", "double"},
                "cancel": {"cancel", "subscription", "contract", "service", "plan"},
                "outage": {"internet", "broadband", "connection", "wifi", "fibre"},
                "delivery": {"parcel", "order", "delivery", "delivered", "package"},
                "password": {"password", "login", "log", "reset", "app", "sign"}}
    assigned = assignments(built)
    for topic in load_topics(built):
        assert 1 <= len(topic.words) <= 3 and topic.label == ", ".join(topic.words)
        words = {w for term in topic.words for w in term.split()}
        assert not words & ENGLISH_STOP_WORDS, topic.label
        assert all(re.fullmatch(r"[a-z]+", w) for w in words), topic.label
        source = Counter(cid.split("-")[0] for cid, t in assigned.items() if t == topic.topic_id).most_common(1)[0][0]
        assert words & expected[source], (source, topic.label)
        # the example is a real reason of that topic
        assert topic.example in TOPIC_REASONS[source] and assigned[topic.example_call_id] == topic.topic_id


def test_deterministic_across_runs(tmp_path: Path, built: InsightStore) -> None:
    again = build(tmp_path, topic_calls(WEEKS))
    try:
        first = [(t.topic_id, t.label, t.example_call_id, t.size) for t in load_topics(built)]
        assert [(t.topic_id, t.label, t.example_call_id, t.size) for t in load_topics(again)] == first
        assert assignments(again) == assignments(built)
        update_topics(again, TopicOptions(), force=True)  # clustered again in the same store
        assert [(t.topic_id, t.label, t.example_call_id, t.size) for t in load_topics(again)] == first
    finally:
        again.close()


def test_incremental_and_stable_ids(tmp_path: Path) -> None:
    out = tmp_path / "run"
    calls = topic_calls(WEEKS)
    store = build(out, calls)
    try:
        before = {t.topic_id: t.label for t in load_topics(store)}
        embedded = store.conn.execute("SELECT COUNT(*) FROM reason_vectors").fetchone()[0]
        assert embedded == len({c.reason for c in calls})  # one vector per distinct text
        # unchanged: nothing embedded, nothing clustered, nothing assigned again
        counts = update_topics(store, TopicOptions())
        assert (counts.embedded, counts.clustered, counts.assigned) == (0, 0, 0)
        # new calls, one with a reason never seen: only it is embedded; the topics keep their ids
        new = topic_calls(["2026-11-16"], {"billing": 3, "cancel": 3}, start_index=9000)
        new.append(Call("billing-new", "2026-11-18T10:00:00Z", "I was billed twice for the same phone bill",
                        customer="cx"))
        write_run(out, new)
        store.update(out)
        counts = update_topics(store, TopicOptions())
        assert counts.embedded == len({c.reason for c in new} - {c.reason for c in calls}) >= 1
        assert counts.clustered == len(sample_calls(store))
        after = {t.topic_id: t.label for t in load_topics(store)}
        assert set(after) == set(before)
        billing = Counter(t for cid, t in assignments(store).items() if cid.startswith("billing")).most_common(1)[0][0]
        assert assignments(store)["billing-new"] == billing
    finally:
        store.close()


def test_no_reasons_no_topics(tmp_path: Path) -> None:
    calls = [Call(f"x{i}", f"2026-11-0{1 + i % 5}T10:00:00Z", None, customer="c1", contact=i % 2 == 0)
             for i in range(8)]
    store = build(tmp_path, calls)
    try:
        assert load_topics(store) == [] and assignments(store) == {}
    finally:
        store.close()


def test_ctfidf_words() -> None:
    docs = [["my bill was charged twice", "charged twice on the bill", "a double charge on my bill [NAME]"],
            ["please cancel my subscription", "cancel the subscription now", "I want to cancel"],
            ["hello there", "thanks for calling"]]
    words = ctfidf_words(docs, 3)
    assert words[0][0] in ("bill", "charged twice") and "cancel" in words[1][0]
    assert "name" not in {w for t in words[0] for w in t.split()}  # masks are not words
    assert words[2] == []  # nothing but stop words and filler
    # a phrase chosen covers its words: "charged twice" and not also "charged" / "twice"
    flat = [w for term in words[0] for w in term.split()]
    assert len(flat) == len(set(flat))


def test_min_cluster_size_scales() -> None:
    options = TopicOptions(min_topic_size=3, max_topics=50)
    assert min_cluster_size(40, options) == 3
    assert min_cluster_size(20000, options) == 100


def test_sample_bounded_and_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.insights.topics as topics

    write_run(tmp_path, topic_calls(WEEKS))
    with InsightStore.for_run(tmp_path) as store:
        store.update(tmp_path)
        first = sample_calls(store, size=7)
        assert len(first) == 7 and first == sample_calls(store, size=7) == sorted(first)
        everything = sample_calls(store, size=10_000)
        assert set(first) <= set(everything) and len(everything) == store.count()
        # a smaller SAMPLE clusters 20 calls and assigns the rest to the nearest centroid
        monkeypatch.setattr(topics, "SAMPLE", 20)
        counts = update_topics(store, TopicOptions())
        assert counts.clustered == 20 and counts.assigned == store.count()
        rows = store.conn.execute("SELECT similarity FROM topic_assignments").fetchall()
        assert all(-1.0 <= r[0] <= 1.0 for r in rows)


def test_vectors_stored_per_text(built: InsightStore) -> None:
    rows = built.conn.execute("SELECT text, vector FROM reason_vectors").fetchall()
    assert rows and all(len(blob) == 384 * 4 for _, blob in rows)
    v = np.frombuffer(rows[0][1], dtype=np.float32)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-3
    with pytest.raises(sqlite3.IntegrityError):
        built.conn.execute("INSERT INTO reason_vectors VALUES (?, 'm', x'00')", (rows[0][0],))
