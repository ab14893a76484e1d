"""Topics of contact reasons across a results folder's archive, the BERTopic way with the
field's libraries: sentence embeddings of the reasons (the packaged all-MiniLM-L6-v2,
models/text_embedding.py), dimension reduction (PCA) and density clustering (scikit-learn's
HDBSCAN), readable labels from class-based TF-IDF (c-TF-IDF) over each cluster's reasons, and
the most representative reason of each topic as its example.

Everything is kept in the insight store, beside the interactions:

* ``reason_vectors`` (text, model, vector): one embedding per distinct reason text, computed
  once (an update embeds only texts not seen before);
* ``topics`` (topic_id, label, words, example, size, centroid, active ...): the topics, whose ids
  stay stable across runs where possible (a new cluster takes the id of the previous topic whose
  centroid is closest, when at least :data:`STABLE_SIMILARITY` alike);
* ``topic_assignments`` (call_id, topic_id, similarity, text): every call's topic (-1: none).

Bounded for scale: at most ``SAMPLE`` reasons are clustered, chosen deterministically (the
calls whose id hashes lowest, so a nightly run with 1% new calls keeps most of its sample); every
reason is then assigned to the nearest topic centroid (cosine similarity at least
``insights.topics.min_similarity``; else it stays without a topic). Deterministic: the same
store gives the same topics, labels and assignments on every run (fixed seeds, sorted inputs).
When the sample and options are those of the last run, no clustering is redone: only the new
calls are assigned.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.insights.options import TopicOptions
from pipeline.insights.store import InsightStore

SAMPLE = 20_000
"""Most reasons clustered; the others are assigned to the nearest topic."""
PCA_DIMS = 10
"""Dimensions the embeddings are reduced to before density clustering."""
STABLE_SIMILARITY = 0.85
"""A new topic keeps the id of a previous topic whose centroid is at least this alike."""
EMBED_BATCH = 512
"""Reasons embedded (and written) at once."""
READ_BATCH = 5000
"""Rows read from the store at once while assigning."""
NO_TOPIC = -1
SEED = 0

MASK = re.compile(r"\[[A-Z_]+\]")
"""Masked personal data (``[PHONE]``, ``[NAME]`` ...): not words of a label."""
EXTRA_STOP_WORDS = frozenset("""
hi hello hey thanks thank please just like want wanted wants need needs needed calling call called
ve ll don didn doesn isn wasn won im ive id know help could would get got getting tell trying try
today yesterday really still also ok okay yes yeah sure regarding question asking ask asked about
customer dear sir madam regards kind shows says said ago comes come came does did doing going way thing
things bit lot keep keeps kept
""".split())


def _embedder():  # noqa: ANN202 - models.text_embedding.SentenceEmbedder, imported late (loads onnxruntime)
    from models.text_embedding import SentenceEmbedder

    return SentenceEmbedder(threads=2)


def _model_name() -> str:
    from models.text_embedding import MODEL_NAME

    return MODEL_NAME


@dataclass
class Topic:
    topic_id: int
    label: str
    words: list[str]
    example_call_id: str | None
    example: str | None
    size: int
    """Reasons of the clustered sample in the topic."""
    centroid: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))


@dataclass
class TopicCounts:
    """What an update did (and how long each step took, seconds)."""

    embedded: int = 0
    """Reason texts embedded (new ones)."""
    clustered: int = 0
    """Reasons clustered (0: the sample had not changed, no clustering redone)."""
    topics: int = 0
    assigned: int = 0
    """Calls whose topic was (re)computed."""
    without_topic: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ensure_tables(store: InsightStore) -> None:
    c = store.conn
    c.execute("CREATE TABLE IF NOT EXISTS reason_vectors (text TEXT PRIMARY KEY, model TEXT, vector BLOB)")
    c.execute("CREATE TABLE IF NOT EXISTS topics (topic_id INTEGER PRIMARY KEY, label TEXT, words TEXT, "
              "example_call_id TEXT, example TEXT, size INTEGER, centroid BLOB, active INTEGER)")
    c.execute("CREATE TABLE IF NOT EXISTS topic_assignments (call_id TEXT PRIMARY KEY, topic_id INTEGER, "
              "similarity REAL, text TEXT)")
    c.execute("CREATE INDEX IF NOT EXISTS topic_assignments_topic ON topic_assignments (topic_id)")
    c.commit()


# -- embeddings ---------------------------------------------------------------------------------


def embed_reasons(store: InsightStore, embedder: Any = None) -> int:
    """Embed every distinct reason text of the store not embedded yet; returns how many."""
    ensure_tables(store)
    model = _model_name()
    missing = [row[0] for row in store.conn.execute(
        "SELECT DISTINCT i.reason FROM interactions i WHERE i.reason IS NOT NULL AND i.reason != '' AND NOT EXISTS "
        "(SELECT 1 FROM reason_vectors v WHERE v.text = i.reason AND v.model = ?) ORDER BY i.reason", (model,))]
    if not missing:
        return 0
    embedder = embedder or _embedder()
    for start in range(0, len(missing), EMBED_BATCH):
        texts = missing[start:start + EMBED_BATCH]
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        store.conn.executemany("INSERT OR REPLACE INTO reason_vectors VALUES (?, ?, ?)",
                               [(t, model, v.tobytes()) for t, v in zip(texts, vectors)])
        store.conn.commit()
    return len(missing)


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


# -- the sample and its clustering -----------------------------------------------------------------


def _rank(call_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(call_id.encode("utf-8"), digest_size=8).digest(), "big")


def sample_calls(store: InsightStore, size: int | None = None) -> list[tuple[str, str]]:
    """The (call_id, reason) pairs clustered: the ``size`` (default :data:`SAMPLE`) calls with a
    reason whose id hashes lowest (deterministic, and stable as calls are added), sorted by call id."""
    size = SAMPLE if size is None else size
    heap: list[tuple[int, str, str]] = []  # (-rank, call_id, reason): the largest rank on top
    cursor = store.conn.execute("SELECT call_id, reason FROM interactions WHERE reason IS NOT NULL AND reason != ''")
    while rows := cursor.fetchmany(READ_BATCH):
        for call_id, reason in rows:
            item = (-_rank(call_id), call_id, reason)
            if len(heap) < size:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    return sorted((cid, text) for _, cid, text in heap)


def _vectors_of(store: InsightStore, texts: list[str]) -> np.ndarray:
    model = _model_name()
    found: dict[str, np.ndarray] = {}
    unique = sorted(set(texts))
    for start in range(0, len(unique), 900):
        chunk = unique[start:start + 900]
        for text, blob in store.conn.execute(
                f"SELECT text, vector FROM reason_vectors WHERE model = ? AND text IN ({','.join('?' * len(chunk))})",
                (model, *chunk)):
            found[text] = _vector(blob)
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


JOIN_PASSES = 3
"""Rounds of outliers joining their nearest topic (each with the centroids of the last)."""
MIN_SAMPLES = 5
"""HDBSCAN's ``min_samples`` (how dense a core is), unless min_topic_size is larger."""
SCALE = 4
"""Over many reasons, a cluster holds at least 1 / (SCALE x max_topics) of the distinct texts
clustered (HDBSCAN with a fixed small minimum splits a large archive into hundreds of
micro-topics of one phrasing each, of which only max_topics would be kept)."""


def min_cluster_size(n: int, options: TopicOptions) -> int:
    """HDBSCAN's ``min_cluster_size`` for ``n`` distinct texts: ``min_topic_size``, raised
    for a large sample to n / (SCALE x max_topics)."""
    return max(options.min_topic_size, math.ceil(n / (SCALE * options.max_topics)))


def cluster(vectors: np.ndarray, options: TopicOptions) -> np.ndarray:
    """Cluster labels (-1: outlier) of unit ``vectors``: PCA to :data:`PCA_DIMS` dimensions, then
    HDBSCAN with ``min_topic_size``; deterministic."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    n = len(vectors)
    if n < max(options.min_topic_size, 3):
        return np.full(n, -1, dtype=int)
    dims = min(PCA_DIMS, n - 1, vectors.shape[1])
    reduced = PCA(n_components=dims, svd_solver="full", random_state=SEED).fit_transform(vectors.astype(np.float64))
    size = min_cluster_size(n, options)
    model = HDBSCAN(min_cluster_size=size, min_samples=min(size, max(options.min_topic_size, MIN_SAMPLES), n - 1),
                    metric="euclidean", cluster_selection_method="eom", copy=True)
    return model.fit(reduced).labels_


# -- labels (c-TF-IDF) ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return MASK.sub(" ", text)


def ctfidf_words(documents: list[list[str]], top: int) -> list[list[str]]:
    """The ``top`` label terms (words or two-word phrases) of each class, by class-based TF-IDF:
    a term's frequency in the class (L1-normalised) times log(1 + A / f), A the mean number of
    words per class and f the term's frequency over every class. ``documents``: the distinct
    texts of each class (the last may be the outliers, giving context only); a phrase must be
    in two of them. A phrase chosen covers its
    words (they are not repeated); English stop words and call-centre filler are left out."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    joined = [" ".join(_clean(t) for t in texts) for texts in documents]
    if not any(j.strip() for j in joined):
        return [[] for _ in documents]
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words=sorted(ENGLISH_STOP_WORDS | EXTRA_STOP_WORDS),
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", lowercase=True)
    try:
        tf = vectorizer.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # nothing but stop words
        return [[] for _ in documents]
    terms = vectorizer.get_feature_names_out()
    sums = tf.sum(axis=1, keepdims=True)
    norm = tf / np.maximum(sums, 1)
    avg_words = max(float(sums.mean()), 1.0)
    freq = tf.sum(axis=0)
    scores = norm * np.log(1 + avg_words / np.maximum(freq, 1))
    out = []
    for row in scores:
        order = sorted(range(len(terms)), key=lambda i: (-row[i], terms[i]))
        chosen: list[str] = []
        for i in order:
            if row[i] <= 0 or len(chosen) >= top:
                break
            term = str(terms[i])
            words = set(term.split())
            if len(words) > 1 and tf[len(out), i] < 2:
                continue  # a phrase of one reason only says nothing of the topic
            covered = {w for c in chosen for w in c.split()}
            if words <= covered:
                continue
            if len(words) > 1:
                chosen = [c for c in chosen if not (len(c.split()) == 1 and c in words)]
            chosen.append(term)
        out.append(chosen[:top])
    return out


# -- building and assigning ---------------------------------------------------------------------------


def _signature(sample: list[tuple[str, str]], options: TopicOptions) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([_model_name(), SAMPLE, PCA_DIMS, options.min_topic_size, options.max_topics,
                         options.label_words, options.min_similarity]).encode())
    for cid, text in sample:
        h.update(f"{cid}\x00{text}\x01".encode("utf-8"))
    return h.hexdigest()


def _meta(store: InsightStore, key: str) -> str | None:
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def load_topics(store: InsightStore, active_only: bool = True) -> list[Topic]:
    """The store's topics (the active ones: those of the last clustering), largest first."""
    ensure_tables(store)
    rows = store.conn.execute("SELECT topic_id, label, words, example_call_id, example, size, centroid FROM topics"
                              + (" WHERE active = 1" if active_only else "") + " ORDER BY size DESC, topic_id")
    return [Topic(tid, label, json.loads(words or "[]"), ecid, ex, size, _vector(c).copy())
            for tid, label, words, ecid, ex, size, c in rows]


def build_topics(store: InsightStore, sample: list[tuple[str, str]], options: TopicOptions) -> list[Topic]:
    """Cluster ``sample`` and keep the topics (stable ids), replacing the active ones."""
    texts = [t for _, t in sample]
    vectors = _vectors_of(store, texts)
    # distinct texts are clustered (the same reason said by many is one point of the density, not
    # a cluster of its own); a topic's size counts the calls
    distinct = sorted(set(texts))
    position = {t: k for k, t in enumerate(distinct)}
    first = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    labels_distinct = cluster(vectors[[first[t] for t in distinct]], options)
    labels = [labels_distinct[position[t]] for t in texts]
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab >= 0:
            groups.setdefault(int(lab), []).append(i)
    kept = sorted(groups.values(), key=lambda idx: (-len(idx), sample[idx[0]][0]))[:options.max_topics]
    kept_rows = {i for idx in kept for i in idx}
    rest = [i for i in range(len(texts)) if i not in kept_rows]
    for _ in range(JOIN_PASSES):  # outliers of the sample join the nearest topic when alike enough (as assign
        if not kept or not rest:  # does), the centroids moved by those joining before
            break
        centroids = np.stack([_unit(vectors[idx].mean(axis=0)) for idx in kept])
        sims = vectors[rest] @ centroids.T
        best = sims.argmax(axis=1)
        joined = [k for k in range(len(rest)) if sims[k, best[k]] >= options.min_similarity]
        if not joined:
            break
        for k in joined:
            kept[int(best[k])].append(rest[k])
        kept = [sorted(idx) for idx in kept]
        kept_rows = {i for idx in kept for i in idx}
        rest = [i for i in range(len(texts)) if i not in kept_rows]
    outliers = sorted({texts[i] for i in range(len(texts)) if i not in kept_rows})
    words = ctfidf_words([sorted({texts[i] for i in idx}) for idx in kept] + [outliers],
                         options.label_words)[:len(kept)]
    made = []
    for idx, terms in zip(kept, words):
        centroid = _unit(vectors[idx].mean(axis=0))
        sims = vectors[idx] @ centroid
        best = min(range(len(idx)), key=lambda k: (-round(float(sims[k]), 6), sample[idx[k]][0]))
        cid, example = sample[idx[best]]
        label = ", ".join(terms) if terms else example[:60]
        made.append(Topic(0, label, terms, cid, example, len(idx), centroid.astype(np.float32)))
    _keep_ids(store, made)
    return made


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def _keep_ids(store: InsightStore, made: list[Topic]) -> None:
    """Give each new topic the id of the most alike previous topic (greedy by similarity, at
    least STABLE_SIMILARITY), else a new id; write the topics (previous ones left inactive)."""
    previous = load_topics(store, active_only=False)
    pairs = []
    for i, topic in enumerate(made):
        for p in previous:
            if len(p.centroid) == len(topic.centroid):
                sim = float(p.centroid @ topic.centroid)
                if sim >= STABLE_SIMILARITY:
                    pairs.append((-sim, i, p.topic_id))
    taken_new, taken_old = set(), set()
    for _, i, tid in sorted(pairs):
        if i not in taken_new and tid not in taken_old:
            made[i].topic_id = tid
            taken_new.add(i)
            taken_old.add(tid)
    next_id = max([p.topic_id for p in previous] + [0]) + 1
    for topic in made:
        if topic.topic_id == 0:
            topic.topic_id, next_id = next_id, next_id + 1
    c = store.conn
    c.execute("UPDATE topics SET active = 0")
    c.executemany("INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                  [(t.topic_id, t.label, json.dumps(t.words), t.example_call_id, t.example, t.size, t.centroid.tobytes())
                   for t in made])
    c.commit()


def assign(store: InsightStore, topics: list[Topic], min_similarity: float, only_new: bool) -> tuple[int, int]:
    """Each call's topic: the nearest centroid when at least ``min_similarity`` alike, else
    none (-1). ``only_new``: only calls not assigned yet (or whose reason changed). Returns
    (calls assigned, of which without a topic)."""
    c = store.conn
    model = _model_name()
    if not only_new:
        c.execute("DELETE FROM topic_assignments")
    else:
        c.execute("DELETE FROM topic_assignments WHERE call_id NOT IN "
                  "(SELECT call_id FROM interactions WHERE reason IS NOT NULL AND reason != '')")
    centroids = np.stack([t.centroid for t in topics]) if topics else np.zeros((0, 384), np.float32)
    ids = np.array([t.topic_id for t in topics], dtype=np.int64)
    query = ("SELECT i.call_id, i.reason, v.vector FROM interactions i JOIN reason_vectors v "
             "ON v.text = i.reason AND v.model = ? ")
    if only_new:
        query += ("LEFT JOIN topic_assignments a ON a.call_id = i.call_id "
                  "WHERE a.call_id IS NULL OR a.text IS NOT i.reason")
    cursor = c.execute(query, (model,))
    out: list[tuple[str, int, float, str]] = []
    while rows := cursor.fetchmany(READ_BATCH):
        if len(centroids):
            sims = np.stack([_vector(r[2]) for r in rows]) @ centroids.T
            best = sims.argmax(axis=1)
            top = sims[np.arange(len(rows)), best]
        for k, (cid, text, _) in enumerate(rows):
            if len(centroids) and top[k] >= min_similarity:
                out.append((cid, int(ids[best[k]]), round(float(top[k]), 4), text))
            else:
                out.append((cid, NO_TOPIC, round(float(top[k]), 4) if len(centroids) else 0.0, text))
    c.executemany("INSERT OR REPLACE INTO topic_assignments VALUES (?, ?, ?, ?)", out)
    c.commit()
    return len(out), sum(1 for r in out if r[1] == NO_TOPIC)


def update_topics(store: InsightStore, options: TopicOptions, embedder: Any = None, force: bool = False) -> TopicCounts:
    """Bring the store's topics up to date: embed new reasons, recluster when the sample or
    options changed (or ``force``), assign calls to topics."""
    import time

    ensure_tables(store)
    counts = TopicCounts()
    t0 = time.perf_counter()
    counts.embedded = embed_reasons(store, embedder)
    t1 = time.perf_counter()
    sample = sample_calls(store)
    signature = _signature(sample, options)
    same = not force and _meta(store, "topics_signature") == signature
    if same:
        topics = load_topics(store)
    else:
        topics = build_topics(store, sample, options)
        counts.clustered = len(sample)
        store.conn.execute("INSERT OR REPLACE INTO meta VALUES ('topics_signature', ?)", (signature,))
        store.conn.commit()
    t2 = time.perf_counter()
    counts.topics = len(topics)
    counts.assigned, counts.without_topic = assign(store, topics, options.min_similarity, only_new=same)
    t3 = time.perf_counter()
    counts.seconds = {"embedding": round(t1 - t0, 3), "clustering": round(t2 - t1, 3), "assigning": round(t3 - t2, 3)}
    return counts
