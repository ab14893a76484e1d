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


def wer_text(text: str) -> str:
    """The normalisation applied to reference and hypothesis before WER."""
    return re.sub(r"\s+", " ", _english()(text)).strip()


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (errors over reference words) after ``wer_text`` on both sides."""
    import jiwer

    refs = [wer_text(r) for r in references]
    hyps = [wer_text(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    errors = sum(len(h.split()) for r, h in zip(refs, hyps) if not r)  # insertions on empty refs
    if not pairs:
        return float(errors > 0)
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    n_ref = sum(len(r.split()) for r, _ in pairs)
    return (out.substitutions + out.deletions + out.insertions + errors) / n_ref
