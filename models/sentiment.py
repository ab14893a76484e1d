"""Sentiment of what speakers say: negative, neutral or positive, one score per utterance.

The scorecard reads sentiment per utterance, then per role, per quarter of the call and at the
customer's start and end. No package ships a transformer sentiment classifier, so the default
``classifier`` backend is a multinomial logistic-regression head over the packaged sentence
embeddings (models/text_embedding.py, all-MiniLM-L6-v2), trained by scripts/train_sentiment.py
on call-centre utterances written for this project (models/data/sentiment_utterances.tsv) and
shipped as models/data/sentiment_head.json. VADER (the ``vaderSentiment`` lexicon) is a second
opinion blended into its score, and a backend of its own. The ``transformers`` backend runs a
local Hugging Face text-classification model a user has on disk. Nothing is downloaded.

Every backend gives a score in [-1, 1]: P(positive) - P(negative), blended with VADER's
compound score by ``vader_weight``; the label comes from that score and the two thresholds, so
one setting moves every backend the same way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import re
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ConfigError, check_options

LABELS = ("negative", "neutral", "positive")
"""The labels, in the order of every probability vector in this module."""
BACKENDS = ("classifier", "vader", "transformers")
HEAD_FILE = "sentiment_head.json"
DATA_FILE = "sentiment_utterances.tsv"

_MODELS: dict[tuple[Any, ...], "SentimentModel"] = {}
"""Loaded models by options and thread count (one load per process)."""


def packaged_path(name: str) -> Path:
    """A file shipped in models/data/ (the trained head, or the data set it was trained on)."""
    return Path(str(importlib.resources.files("models").joinpath("data", name)))


@dataclass
class SentimentOptions:
    """Utterance sentiment (the ``sentiment`` section of the config).

    The defaults of ``vader_weight`` and the thresholds were chosen by stratified 5-fold
    cross-validation on the packaged data set (scripts/train_sentiment.py; the figures are in
    the head's ``cv`` entry).
    """

    backend: str = "classifier"
    """``classifier``: the packaged logistic-regression head over the sentence embeddings
    (offline, nothing extra to install). ``vader``: the VADER lexicon alone. ``transformers``:
    a local Hugging Face text-classification model directory given in ``model``."""
    model: str | None = None
    """``classifier``: null for the packaged head, or the path of a head JSON written by
    scripts/train_sentiment.py. ``transformers``: the local model directory (required).
    Unused by ``vader``."""
    vader_weight: float = 0.25
    """Share of VADER's compound score in the blended score, in [0, 1]: score = (1 - w) *
    (P(pos) - P(neg)) + w * compound. 0 is the model alone; the ``vader`` backend ignores it."""
    negative_threshold: float = -0.3
    """A blended score at or below this is ``negative`` (in (-1, 1))."""
    positive_threshold: float = 0.2
    """A blended score at or above this is ``positive`` (above ``negative_threshold``, below 1);
    scores between the two thresholds are ``neutral``."""
    batch_size: int = 64
    """Texts given to the embedding or transformers model at once (bounds memory)."""


def validate(options: SentimentOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    checks = [
        (options.backend in BACKENDS, "backend", f"one of {', '.join(BACKENDS)}"),
        (options.backend != "transformers" or bool(options.model), "model",
         "the local directory of a Hugging Face text-classification model (backend transformers)"),
        (0.0 <= options.vader_weight <= 1.0, "vader_weight", "a weight in [0, 1]"),
        (-1.0 < options.negative_threshold < 1.0, "negative_threshold", "a score in (-1, 1)"),
        (options.negative_threshold < options.positive_threshold < 1.0, "positive_threshold",
         "a score above negative_threshold and below 1"),
        (isinstance(options.batch_size, int) and options.batch_size >= 1, "batch_size", "an integer >= 1"),
    ]
    check_options("sentiment", options, checks)


@dataclass
class SentimentScore:
    """The sentiment of one text."""

    label: str
    """``negative``, ``neutral`` or ``positive``: the blended score against the thresholds."""
    score: float
    """In [-1, 1]: P(positive) - P(negative), blended with VADER's compound score."""
    probabilities: dict[str, float] = field(default_factory=dict)
    """Label -> probability from the backend's model (VADER's neg/neu/pos shares for ``vader``)."""
    vader: float = 0.0
    """VADER's compound score of the text, in [-1, 1]."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(float(self.score), 4),
            "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()},
            "vader": round(float(self.vader), 4),
        }


def blend(probabilities: np.ndarray, vader: np.ndarray, vader_weight: float) -> np.ndarray:
    """Blended scores of rows of (negative, neutral, positive) probabilities and VADER scores."""
    model_score = probabilities[:, 2] - probabilities[:, 0]
    return (1.0 - vader_weight) * model_score + vader_weight * vader


def label_indices(scores: np.ndarray, negative_threshold: float, positive_threshold: float) -> np.ndarray:
    """Index into LABELS of each score: negative at or below one threshold, positive at or above
    the other, neutral between."""
    out = np.ones(len(scores), dtype=int)
    out[scores <= negative_threshold] = 0
    out[scores >= positive_threshold] = 2
    return out


def vader_analyzer() -> Any:
    """VADER's analyser (the lexicon ships with the package), or a ConfigError saying how to get it."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as e:
        raise ConfigError("sentiment needs the Python package 'vaderSentiment' (pip install vaderSentiment)") from e
    return SentimentIntensityAnalyzer()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_head(path: Path) -> dict[str, Any]:
    """A classifier head JSON written by scripts/train_sentiment.py, checked."""
    from models.text_embedding import MODEL_NAME

    if not path.is_file():
        raise ConfigError(f"sentiment.model: no classifier head at {path} (train one with scripts/train_sentiment.py)")
    try:
        head = json.loads(path.read_text())
        coef = np.asarray(head["coef"], dtype=np.float32)
        intercept = np.asarray(head["intercept"], dtype=np.float32)
        labels = tuple(head["labels"])
        embedder = head["embedder"]["model"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"sentiment.model: {path} is not a sentiment head JSON ({e})") from e
    if labels != LABELS or coef.ndim != 2 or coef.shape[0] != len(LABELS) or intercept.shape != (len(LABELS),):
        raise ConfigError(f"sentiment.model: {path} must hold a {len(LABELS)}-class head with labels {list(LABELS)}")
    if embedder != MODEL_NAME:
        raise ConfigError(f"sentiment.model: {path} was trained on '{embedder}' embeddings; callqa uses '{MODEL_NAME}'")
    head["coef"], head["intercept"] = coef, intercept
    return head


STAR = re.compile(r"^\s*([1-5])\s*stars?\s*$", re.IGNORECASE)
GENERIC = re.compile(r"^label_([0-9]+)$", re.IGNORECASE)


def label_groups(id2label: dict[int, str]) -> list[list[int]]:
    """For each of LABELS, the class indices of a text-classification model that make it up.

    Understood: names containing ``neg`` / ``neu`` / ``pos`` (a two-class negative/positive
    model has no neutral class), star ratings ``1 star`` .. ``5 stars`` (1-2 negative, 3
    neutral, 4-5 positive) and exactly three generic ``LABEL_0`` .. ``LABEL_2`` (negative,
    neutral, positive, the usual order). Anything else is a ConfigError listing the labels.
    """
    names = {int(i): str(n) for i, n in id2label.items()}
    stars = {i: STAR.match(n) for i, n in names.items()}
    generic = {i: GENERIC.match(n) for i, n in names.items()}
    groups: list[list[int]] = [[], [], []]
    if all(stars.values()):
        for i, m in stars.items():
            count = int(m.group(1))
            groups[0 if count <= 2 else 1 if count == 3 else 2].append(i)
    elif all(generic.values()) and sorted(int(m.group(1)) for m in generic.values()) == [0, 1, 2]:
        for i, m in generic.items():
            groups[int(m.group(1))].append(i)
    else:
        for i, n in names.items():
            hits = [k for k, stem in enumerate(("neg", "neu", "pos")) if stem in n.lower()]
            if len(hits) != 1:
                groups = [[], [], []]
                break
            groups[hits[0]].append(i)
    if not groups[0] or not groups[2]:
        raise ConfigError(
            f"sentiment.model: cannot map the model's labels {sorted(names.values())} to negative/neutral/positive "
            "(expected names containing neg/neu/pos, star ratings '1 star'..'5 stars', or LABEL_0..LABEL_2)"
        )
    return groups


class SentimentModel:
    """One loaded sentiment backend: texts in, a SentimentScore each out."""

    def __init__(self, options: SentimentOptions, threads: int = 1):
        validate(options)
        self.options = options
        self.threads = max(1, int(threads))
        self.vader = vader_analyzer()
        self.path: Path | None = None
        self.head: dict[str, Any] | None = None
        self.embedder: Any = None
        self.tokenizer: Any = None
        self.network: Any = None
        self.groups: list[list[int]] = []
        if options.backend == "classifier":
            from models.text_embedding import SentenceEmbedder

            self.path = Path(options.model) if options.model else packaged_path(HEAD_FILE)
            self.head = load_head(self.path)
            self.embedder = SentenceEmbedder(self.threads)
            if self.head["coef"].shape[1] != self.embedder.dim:
                raise ConfigError(f"sentiment.model: {self.path} expects {self.head['coef'].shape[1]}-d embeddings, "
                                  f"the embedder gives {self.embedder.dim}")
        elif options.backend == "transformers":
            self.path = Path(options.model)
            self._load_transformers()

    def _load_transformers(self) -> None:
        """The tokenizer and classifier from the local directory ``self.path``, offline."""
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"sentiment.model: {self.path} is not a local Hugging Face model directory "
                              "(no config.json); nothing is downloaded")
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as e:
            raise ConfigError("sentiment.backend transformers needs the Python package 'transformers'") from e
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.network = AutoModelForSequenceClassification.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise ConfigError(f"sentiment.model: cannot load a text-classification model from {self.path}: {e}") from e
        self.network.eval()
        self.groups = label_groups(self.network.config.id2label)

    def score(self, texts: list[str], embeddings: np.ndarray | None = None) -> list[SentimentScore]:
        """The sentiment of each text. ``embeddings``, for the ``classifier`` backend, are the
        texts' L2-normalised SentenceEmbedder vectors if the caller already has them (one row
        per text); other backends do not use them."""
        texts = list(texts)
        if not texts:
            return []
        vader = np.array([self.vader.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)
        if self.options.backend == "vader":
            shares = [self.vader.polarity_scores(t) for t in texts]
            probabilities = np.array([[s["neg"], s["neu"], s["pos"]] for s in shares], dtype=np.float64)
            scores = vader
        else:
            if self.options.backend == "classifier":
                probabilities = self._classifier_probabilities(texts, embeddings)
            else:
                probabilities = self._transformers_probabilities(texts)
            scores = blend(probabilities, vader, self.options.vader_weight)
        labels = label_indices(scores, self.options.negative_threshold, self.options.positive_threshold)
        return [
            SentimentScore(LABELS[k], float(s), dict(zip(LABELS, map(float, p))), float(v))
            for k, s, p, v in zip(labels, scores, probabilities, vader)
        ]

    def _classifier_probabilities(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            size = self.options.batch_size
            embeddings = np.concatenate([self.embedder.encode(texts[i:i + size]) for i in range(0, len(texts), size)])
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), self.head["coef"].shape[1]):
            raise ValueError(f"sentiment: embeddings of shape {embeddings.shape} given for {len(texts)} texts; "
                             f"expected ({len(texts)}, {self.head['coef'].shape[1]})")
        logits = embeddings.astype(np.float64) @ self.head["coef"].T.astype(np.float64) + self.head["intercept"]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def _transformers_probabilities(self, texts: list[str]) -> np.ndarray:
        import torch

        torch.set_num_threads(self.threads)
        size = self.options.batch_size
        rows = []
        with torch.no_grad():
            for i in range(0, len(texts), size):
                batch = self.tokenizer(texts[i:i + size], padding=True, truncation=True, return_tensors="pt")
                rows.append(torch.softmax(self.network(**batch).logits, dim=-1).double().numpy())
        p = np.concatenate(rows)
        return np.stack([p[:, g].sum(axis=1) for g in self.groups], axis=1)

    def describe(self) -> dict[str, Any]:
        """Provenance: backend, model path and hashes, library versions, the decision settings."""
        o = self.options
        d: dict[str, Any] = {
            "backend": o.backend,
            "vaderSentiment": importlib.metadata.version("vaderSentiment"),
            "negative_threshold": o.negative_threshold,
            "positive_threshold": o.positive_threshold,
        }
        if o.backend != "vader":
            d["vader_weight"] = o.vader_weight
            d["model_path"] = str(self.path)
        if self.head is not None:
            d["packaged"] = o.model is None
            d["head_sha256"] = sha256_file(self.path)
            d["data_sha256"] = self.head.get("data", {}).get("sha256")
            d["sklearn"] = self.head.get("sklearn_version")
            d["embedder"] = self.embedder.describe()
        if self.network is not None:
            import transformers

            d["transformers"] = transformers.__version__
            d["architecture"] = type(self.network).__name__
            d["labels"] = {LABELS[k]: [self.network.config.id2label[i] for i in g] for k, g in enumerate(self.groups)}
        return d


def load_sentiment(options: SentimentOptions, threads: int = 1) -> SentimentModel:
    """The sentiment model for ``options``, loaded once per process and thread count."""
    key = (astuple(options), max(1, int(threads)))
    if key not in _MODELS:
        _MODELS[key] = SentimentModel(options, threads)
    return _MODELS[key]
