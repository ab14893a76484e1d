"""The packaged sentence model run by ONNX Runtime gives sentence-transformers' vectors."""

from __future__ import annotations

import numpy as np
import pytest

from models import text_embedding
from models.text_embedding import SentenceEmbedder, model_path

TEXTS = [
    "Thank you for calling Summit Energy, my name is Marcus. How can I help you today?",
    "Hi.",
    "",
    "I'm really fed up with this. My internet has been down for three days and nobody has fixed it.",
    "Could you please confirm the first line of your address?",
    "Café déjà vu: naïve résumé, ÉCOLE!",
    "four five six seven eight nine",
    "word " * 400,  # longer than the model's 256 tokens: cut, as sentence-transformers cuts it
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """sentence-transformers' own vectors of TEXTS (the library the model was published for)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(model_path()), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)


def fresh_encoder(threads: int = 1) -> text_embedding.BertEncoder:
    """An encoder made now (not the process's shared one), from the graph in the cache."""
    return text_embedding.BertEncoder(model_path(), threads)


@pytest.mark.slow
def test_vectors_match_sentence_transformers(reference: np.ndarray) -> None:
    got = fresh_encoder().encode(TEXTS)
    assert got.shape == (len(TEXTS), text_embedding.DIM) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got - reference).max() < 1e-5
    assert (got * reference).sum(axis=1).min() > 0.99999


def test_padding_does_not_change_a_vector() -> None:
    encoder = fresh_encoder(threads=2)
    batch = encoder.encode(TEXTS)  # short texts padded to the longest in their batch
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert np.abs(batch - alone).max() < 1e-5
    small = encoder.encode(TEXTS, batch_size=3)
    assert np.abs(batch - small).max() < 1e-5


def test_embedder_memo_and_order(reference: np.ndarray) -> None:
    embedder = SentenceEmbedder(threads=1)
    texts = [TEXTS[3], TEXTS[0], TEXTS[3]]
    got = embedder.encode(texts)
    assert np.abs(got - reference[[3, 0, 3]]).max() < 1e-5
    assert TEXTS[0] in text_embedding._MEMO
    assert embedder.encode([]).shape == (0, text_embedding.DIM)
    described = embedder.describe()
    assert described["model"] == text_embedding.MODEL_NAME and "onnxruntime" in described["runtime"]


@pytest.mark.slow
def test_graph_is_built_once_and_rebuilt_when_damaged(tmp_path, monkeypatch, reference: np.ndarray) -> None:
    monkeypatch.setenv("CALLQA_CACHE_DIR", str(tmp_path))
    path = text_embedding.onnx_path(model_path())
    assert path.parent == tmp_path / "models" and path.stat().st_size > 80e6  # the weights are in it
    built = path.stat().st_mtime_ns
    assert text_embedding.onnx_path(model_path()).stat().st_mtime_ns == built  # reused, not rebuilt
    path.write_bytes(path.read_bytes()[:1000])  # a cut-off file (a full disk, a killed build)
    got = fresh_encoder().encode(TEXTS[:2])
    assert np.abs(got - reference[:2]).max() < 1e-5
    assert path.stat().st_size > 80e6


def test_length_batches_cover_the_texts_in_order_and_cost_the_least() -> None:
    from models.text_embedding import RUN_TOKENS, length_batches

    lengths = sorted([4, 4, 5, 6, 7, 8, 10, 14, 19, 22, 34, 44, 60, 3, 3, 3])
    batches = length_batches(lengths, batch_size=4)
    assert [b for batch in batches for b in range(*batch)] == list(range(len(lengths)))
    assert all(0 < end - start <= 4 for start, end in batches)
    cost = sum((end - start) * lengths[end - 1] + RUN_TOKENS for start, end in batches)
    fixed = [(i, min(i + 4, len(lengths))) for i in range(0, len(lengths), 4)]
    assert cost <= sum((end - start) * lengths[end - 1] + RUN_TOKENS for start, end in fixed)
    assert length_batches([]) == [] and length_batches([7]) == [(0, 1)]
    assert len(length_batches([5] * 100)) == 2  # equal lengths: as few passes as the batch size allows


def test_a_vector_is_the_same_to_the_bit_whatever_its_batch() -> None:
    """The encoder chooses its batches by length: that must not change a single vector."""
    encoder = fresh_encoder(threads=1)
    batch = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert (batch == alone).all()
    assert (encoder.encode(TEXTS, batch_size=3) == batch).all()
