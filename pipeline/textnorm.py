"""Text normalisation for comparing transcripts (WER) and matching words.

``wer_text`` is the stated normalisation of every WER callqa reports: Whisper's English
normaliser (lowercase, punctuation out, spelled numbers to digits, contractions expanded,
British to American spelling), so "four five six" and "456" or "colour" and "color" are not
counted as errors. ``plain`` is a lighter normalisation for comparing two ASR outputs word
for word.
"""

from __future__ import annotations

import re
from functools import lru_cache


def plain(text: str) -> str:
    """Lowercase, hyphens to spaces, punctuation out, single spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1)
def _english():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


@lru_cache(maxsize=65536)
def wer_text(text: str) -> str:
    """The normalisation applied to reference and hypothesis before WER."""
    return re.sub(r"\s+", " ", _english()(text)).strip()


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (errors over reference words) after ``wer_text`` on both sides
    (``pipeline.evaluation.measures.text_errors``); with no reference words, 1.0 if there are
    hypothesis words and 0.0 if not."""
    from pipeline.evaluation.measures import text_errors

    errors = text_errors(references, hypotheses)
    if errors["wer"] is None:
        return float(errors["insertions"] > 0)
    return errors["wer"]
