"""Rebuild openai-whisper checkpoints from the packaged CTranslate2 Whisper models.

openai-whisper ships its tokenizer and mel filters but no weights, and nothing may be
downloaded. The CTranslate2 models that ship in packages hold the same weights under other
names, so a checkpoint is rebuilt from them, once, into callqa's cache.

``model.bin`` layout (little-endian): uint32 binary version, string spec name, uint32 spec
revision, uint32 variable count; per variable: string name, uint8 rank, rank x uint32 dims,
uint8 dtype id, uint32 byte count, raw bytes; then uint32 alias count and (alias, target)
string pairs. A string is a uint16 length (counting a final NUL) followed by the bytes.

The name mapping is the reverse of CTranslate2's Whisper converter: fused self-attention
q/k/v split into query/key/value (key has no bias: its slice of the fused bias is zero),
fused cross-attention k/v split likewise, ffn ``linear_0``/``linear_1`` to ``mlp.0``/``mlp.2``,
layer norms ``gamma``/``beta`` to ``weight``/``bias``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from models.errors import ConfigError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BF16 = 5
SUPPORTED_BINARY_VERSIONS = (5, 6)


@dataclass
class Ct2Model:
    """The variables of a CTranslate2 ``model.bin`` (aliases resolved)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("unexpected end of file")
    return struct.unpack(fmt, data)


def _read_string(f: BinaryIO) -> str:
    (n,) = _read(f, "<H")
    data = f.read(n)
    if len(data) != n:
        raise ValueError("unexpected end of file")
    return data[:-1].decode("utf-8")


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` into numpy arrays."""
    try:
        with open(path, "rb") as f:
            (version,) = _read(f, "<I")
            if version not in SUPPORTED_BINARY_VERSIONS:
                raise ValueError(f"binary version {version} (supported: {SUPPORTED_BINARY_VERSIONS})")
            spec = _read_string(f)
            (revision,) = _read(f, "<I")
            (count,) = _read(f, "<I")
            variables: dict[str, np.ndarray] = {}
            for _ in range(count):
                name = _read_string(f)
                (rank,) = _read(f, "<B")
                dims = _read(f, f"<{rank}I") if rank else ()
                (dtype_id,) = _read(f, "<B")
                (nbytes,) = _read(f, "<I")
                raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise ValueError(f"unexpected end of file in variable {name}")
                if dtype_id == _BF16:
                    bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                    array = bits.view(np.float32)
                elif dtype_id in _DTYPES:
                    array = np.frombuffer(raw, dtype=_DTYPES[dtype_id])
                else:
                    raise ValueError(f"variable {name} has unknown dtype id {dtype_id}")
                variables[name] = array.reshape(dims)
            (aliases,) = _read(f, "<I")
            for _ in range(aliases):
                alias, target = _read_string(f), _read_string(f)
                variables[alias] = variables[target]
    except (OSError, ValueError, struct.error) as e:
        raise ConfigError(f"{path}: not a readable CTranslate2 model ({e})") from e
    return Ct2Model(spec, revision, variables)


def _layer_count(variables: dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def _scalar(variables: dict[str, np.ndarray], name: str) -> int:
    return int(np.asarray(variables[name]).reshape(-1)[0])


def ct2_to_openai_state(model: Ct2Model) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Map a CTranslate2 Whisper model to openai-whisper's ``dims`` and ``model_state_dict``."""
    if model.spec != "WhisperSpec":
        raise ConfigError(f"not a Whisper model: spec '{model.spec}'")
    v = model.variables
    state: dict[str, np.ndarray] = {}

    def linear(src: str, dst: str, bias: bool = True) -> None:
        state[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            state[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(src: str, dst: str) -> None:
        state[f"{dst}.weight"] = v[f"{src}/gamma"]
        state[f"{dst}.bias"] = v[f"{src}/beta"]

    def split(src: str, dsts: list[str], biased: list[bool]) -> None:
        weights = np.split(v[f"{src}/weight"], len(dsts), axis=0)
        biases = np.split(v[f"{src}/bias"], len(dsts), axis=0)
        for dst, w, b, has_bias in zip(dsts, weights, biases, biased):
            state[f"{dst}.weight"] = w
            if has_bias:
                state[f"{dst}.bias"] = b
            elif np.any(b):
                raise ConfigError(f"{src}: expected a zero bias for {dst}")

    def block(src: str, dst: str, cross: bool) -> None:
        split(f"{src}/self_attention/linear_0", [f"{dst}.attn.{p}" for p in ("query", "key", "value")], [True, False, True])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        if cross:
            linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
            split(f"{src}/attention/linear_1", [f"{dst}.cross_attn.{p}" for p in ("key", "value")], [False, True])
            linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
            norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")

    try:
        n_enc = _layer_count(v, "encoder")
        n_dec = _layer_count(v, "decoder")
        state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
        linear("encoder/conv1", "encoder.conv1")
        linear("encoder/conv2", "encoder.conv2")
        for i in range(n_enc):
            block(f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
        norm("encoder/layer_norm", "encoder.ln_post")
        state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
        state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
        for i in range(n_dec):
            block(f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
        norm("decoder/layer_norm", "decoder.ln")
        dims = {
            "n_mels": int(v["encoder/conv1/weight"].shape[1]),
            "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
            "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
            "n_audio_head": _scalar(v, "encoder/num_heads"),
            "n_audio_layer": n_enc,
            "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
            "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
            "n_text_state": int(v["decoder/embeddings/weight"].shape[1]),
            "n_text_head": _scalar(v, "decoder/num_heads"),
            "n_text_layer": n_dec,
        }
    except KeyError as e:
        raise ConfigError(f"the CTranslate2 Whisper model lacks variable {e}") from e
    return dims, state


def convert_ct2_to_openai(ct2_dir: Path, out_path: Path) -> Path:
    """Write an openai-whisper checkpoint (``.pt``) rebuilt from a CTranslate2 model directory.

    The checkpoint holds ``dims``, ``model_state_dict`` (float16, as OpenAI's own checkpoints)
    and ``alignment_heads`` (from the model's config.json) for word timestamps. Written to a
    temporary file and renamed, so a half-written checkpoint is never loaded.
    """
    import torch

    ct2_dir = Path(ct2_dir)
    dims, state = ct2_to_openai_state(read_ct2_model(ct2_dir / "model.bin"))
    heads: list[list[int]] | None = None
    config = ct2_dir / "config.json"
    if config.is_file():
        heads = json.loads(config.read_text()).get("alignment_heads")
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(a, dtype=np.float16)) for k, a in state.items()},
        "alignment_heads": [[int(layer), int(head)] for layer, head in heads] if heads else None,
        "source": str(ct2_dir),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f"{out_path.name}.tmp{os.getpid()}")
    torch.save(checkpoint, tmp)
    os.replace(tmp, out_path)
    return out_path


def openai_checkpoint(name_or_path: str) -> Path:
    """Resolve an openai-whisper checkpoint: an existing ``.pt`` file, or a packaged model short
    name whose checkpoint is rebuilt into the cache from its CTranslate2 files on first use."""
    from models.registry import PACKAGED_CT2, cache_dir, ct2_model_dir

    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if name_or_path not in PACKAGED_CT2:
        raise ConfigError(
            f"asr.model: '{name_or_path}' is neither an existing openai-whisper checkpoint (.pt) "
            f"nor a packaged model; packaged: {', '.join(sorted(PACKAGED_CT2))}"
        )
    source = ct2_model_dir(name_or_path)
    stat = (source / "model.bin").stat()
    target = cache_dir() / "models" / f"openai-whisper-{name_or_path}-{stat.st_size}.pt"
    if not target.is_file():
        convert_ct2_to_openai(source, target)
    return target
