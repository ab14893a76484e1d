"""The sentiment model: the packaged head, VADER, a local transformers model, the training script."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.sentiment import (
    DATA_FILE,
    HEAD_FILE,
    LABELS,
    SentimentModel,
    SentimentOptions,
    label_groups,
    load_sentiment,
    packaged_path,
    validate,
)
from models.text_embedding import SentenceEmbedder
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

# Written for this test; test_examples_are_not_training_data checks they are not in the data set.
CLEAR = {
    "negative": [
        "Honestly this whole thing has been a horrendous experience and I'm really angry with your company.",
        "i am completely fed up you keep wasting my time and i want to leave",
        "This is the fifth letter you've lost, it's shameful and I'm sick of chasing you.",
    ],
    "neutral": [
        "My customer number is nine eight seven six five four.",
        "Can you tell me what time the technician will arrive on Wednesday?",
        "the meter is in the cupboard under the stairs",
    ],
    "positive": [
        "Thank you so much, that's wonderful, you've been incredibly helpful.",
        "fantastic i'm really happy it's all fixed thanks a million",
        "Oh that's great news, I'm so pleased, thanks for sorting it.",
    ],
}
TEXTS = [t for label in LABELS for t in CLEAR[label]]
EXPECTED = [label for label in LABELS for _ in CLEAR[label]]


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", text.lower()).strip()


def _rows() -> list[dict[str, str]]:
    with open(packaged_path(DATA_FILE), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def classifier() -> SentimentModel:
    return load_sentiment(SentimentOptions(), threads=2)


def test_examples_are_not_training_data():
    training = {_plain(r["text"]) for r in _rows()}
    assert not [t for t in TEXTS if _plain(t) in training]


def test_data_set_is_balanced_and_well_formed():
    rows = _rows()
    assert len(rows) >= 900
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS}
    assert min(counts.values()) >= 0.85 * max(counts.values())
    assert {r["role"] for r in rows} == {"agent", "customer"}


def test_packaged_head_scores_clear_sentences(classifier: SentimentModel):
    scores = classifier.score(TEXTS)
    assert [s.label for s in scores] == EXPECTED
    for s in scores:
        assert -1.0 <= s.score <= 1.0
        assert set(s.probabilities) == set(LABELS)
        assert sum(s.probabilities.values()) == pytest.approx(1.0)
        assert s.to_dict()["label"] == s.label
    negative = [s.score for s, label in zip(scores, EXPECTED) if label == "negative"]
    positive = [s.score for s, label in zip(scores, EXPECTED) if label == "positive"]
    assert max(negative) < 0 < min(positive)


def test_score_is_the_documented_blend(classifier: SentimentModel):
    w = classifier.options.vader_weight
    for s in classifier.score(TEXTS):
        p = s.probabilities
        assert s.score == pytest.approx((1 - w) * (p["positive"] - p["negative"]) + w * s.vader, abs=1e-9)


def test_precomputed_embeddings_give_the_same_result(classifier: SentimentModel):
    embeddings = SentenceEmbedder(2).encode(TEXTS)
    from_texts = classifier.score(TEXTS)
    from_embeddings = classifier.score(TEXTS, embeddings)
    assert [s.label for s in from_embeddings] == [s.label for s in from_texts]
    np.testing.assert_allclose([s.score for s in from_embeddings], [s.score for s in from_texts], atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        classifier.score(TEXTS, embeddings[:2])


def test_empty_input_and_cache(classifier: SentimentModel):
    assert classifier.score([]) == []
    assert load_sentiment(SentimentOptions(), threads=2) is classifier


def test_training_script_help():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_sentiment.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "cross-validation" in proc.stdout and "--data" in proc.stdout


def test_describe_names_the_head_and_its_data(classifier: SentimentModel):
    d = classifier.describe()
    head = json.loads(packaged_path(HEAD_FILE).read_text())
    assert d["backend"] == "classifier" and d["packaged"] is True
    assert d["data_sha256"] == hashlib.sha256(packaged_path(DATA_FILE).read_bytes()).hexdigest()
    assert d["head_sha256"] == hashlib.sha256(packaged_path(HEAD_FILE).read_bytes()).hexdigest()
    assert d["embedder"]["model"] == head["embedder"]["model"]
    assert head["recommended"] == {"vader_weight": SentimentOptions.vader_weight,
                                   "negative_threshold": SentimentOptions.negative_threshold,
                                   "positive_threshold": SentimentOptions.positive_threshold}


@pytest.mark.parametrize(("change", "key"), [
    ({"backend": "bert"}, "backend"),
    ({"backend": "transformers"}, "model"),
    ({"vader_weight": 1.5}, "vader_weight"),
    ({"vader_weight": -0.1}, "vader_weight"),
    ({"negative_threshold": -1.0}, "negative_threshold"),
    ({"negative_threshold": 0.3, "positive_threshold": 0.2}, "positive_threshold"),
    ({"positive_threshold": 1.0}, "positive_threshold"),
    ({"batch_size": 0}, "batch_size"),
])
def test_validation_names_the_key(change: dict, key: str):
    with pytest.raises(ConfigError, match=rf"sentiment\.{key}: .* use "):
        validate(SentimentOptions(**change))


def test_missing_or_bad_head_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no classifier head"):
        SentimentModel(SentimentOptions(model=str(tmp_path / "none.json")))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"labels": ["neg", "pos"], "coef": [[0.0]], "intercept": [0.0],
                               "embedder": {"model": "x"}}))
    with pytest.raises(ConfigError, match="3-class head"):
        SentimentModel(SentimentOptions(model=str(bad)))


def test_vader_backend():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    model = SentimentModel(SentimentOptions(backend="vader", negative_threshold=-0.05, positive_threshold=0.05))
    analyzer = SentimentIntensityAnalyzer()
    texts = ["Thank you, that's wonderful.", "This is terrible, I'm furious.", "The box is on the table."]
    scores = model.score(texts)
    assert [s.label for s in scores] == ["positive", "negative", "neutral"]
    for text, s in zip(texts, scores):
        assert s.score == pytest.approx(analyzer.polarity_scores(text)["compound"])
        assert s.vader == s.score
        assert sum(s.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert model.describe()["backend"] == "vader"


def test_label_groups():
    assert label_groups({0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}) == [[0], [1], [2]]
    assert label_groups({0: "positive", 1: "negative"}) == [[1], [], [0]]
    assert label_groups({i: f"{i + 1} stars" for i in range(5)}) == [[0, 1], [2], [3, 4]]
    assert label_groups({2: "LABEL_2", 0: "LABEL_0", 1: "LABEL_1"}) == [[0], [1], [2]]
    for labels in ({0: "LABEL_0", 1: "LABEL_1"}, {0: "joy", 1: "anger", 2: "other"}):
        with pytest.raises(ConfigError, match="cannot map"):
            label_groups(labels)


def _tiny_model(path: Path, id2label: dict[int, str]) -> Path:
    """A random-weight BERT text classifier with a word-level tokenizer, saved locally."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = "[PAD] [UNK] the call was great terrible okay thanks bill".split()
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, num_labels=len(id2label),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()})
    BertForSequenceClassification(config).save_pretrained(path)
    return path


@pytest.mark.slow
def test_transformers_backend_wiring(tmp_path: Path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _tiny_model(tmp_path / "stars", {i: f"{i + 1} star" + ("s" if i else "") for i in range(5)})
    model = SentimentModel(SentimentOptions(backend="transformers", model=str(path), vader_weight=0.0, batch_size=2))
    texts = ["the call was great thanks", "terrible bill", "okay", "words it never saw"]
    scores = model.score(texts)

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    network = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    for text, s in zip(texts, scores):
        with torch.no_grad():
            p = torch.softmax(network(**tokenizer([text], return_tensors="pt")).logits, dim=-1)[0].numpy()
        assert s.probabilities["negative"] == pytest.approx(p[0] + p[1], abs=1e-5)
        assert s.probabilities["neutral"] == pytest.approx(p[2], abs=1e-5)
        assert s.probabilities["positive"] == pytest.approx(p[3] + p[4], abs=1e-5)
        assert s.score == pytest.approx(p[3] + p[4] - p[0] - p[1], abs=1e-5)
    d = model.describe()
    assert d["backend"] == "transformers" and d["labels"]["neutral"] == ["3 stars"]


def test_transformers_backend_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a local Hugging Face model directory"):
        SentimentModel(SentimentOptions(backend="transformers", model=str(tmp_path / "absent")))
    path = _tiny_model(tmp_path / "fruit", {0: "apple", 1: "pear", 2: "plum"})
    with pytest.raises(ConfigError, match=r"cannot map the model's labels \['apple', 'pear', 'plum'\]"):
        SentimentModel(SentimentOptions(backend="transformers", model=str(path)))


def test_training_script_on_a_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rows = _rows()
    subset = [r for label in LABELS for r in [r for r in rows if r["label"] == label][::12]]
    data = tmp_path / "subset.tsv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "role"], delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(subset)
    out = tmp_path / "head.json"
    spec = importlib.util.spec_from_file_location("train_sentiment", ROOT / "scripts" / "train_sentiment.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--data", str(data), "--out", str(out), "--folds", "3", "--C", "4", "--threads", "2"])
    assert "3-fold CV" in capsys.readouterr().out
    head = json.loads(out.read_text())
    assert head["data"]["rows"] == len(subset)
    assert head["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    for name in ("classifier", "vader", "blend"):
        assert 0.0 <= head["cv"][name]["macro_f1"] <= 1.0
    model = SentimentModel(SentimentOptions(model=str(out)), threads=2)
    scores = model.score(["Thank you so much, that's wonderful.", "I'm furious, this is a disgrace."])
    assert scores[0].score > scores[1].score
    assert model.describe()["data_sha256"] == head["data"]["sha256"]
