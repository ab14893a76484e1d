"""Text normalisation for comparing transcripts (WER) and matching words.

``wer_text`` is the stated normalisation of every WER callqa reports: Whisper's English
normaliser (lowercase, punctuation out, spelled numbers to digits, contractions expanded,
British to American spelling), so "four five six" and "456" or "colour" and "color" are not
counted as errors. ``plain`` is a lighter normalisation for comparing two ASR outputs word
for word.

Digit strings are written one digit per word on both sides, whatever their form: "8-2-1-9",
"8 2 1 9", "8219", "eight two one nine" and "eight twenty-one nine" all become "8 2 1 9", and
"double two" "2 2". Whisper's normaliser alone joins spelled digits into one word but leaves
written ones apart (and writes a lone "1" as "one", and drops the leading zero of "0199" after a
hyphen), so a perfectly recognised account number counted as several errors. One digit per word
also makes a misheard digit one error, not a whole number wrong. Numbers with a unit or a mark
("$25", "3.5%", "1st", "1990s") stay one word.
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


_DIGIT_NAMES = "zero one two three four five six seven eight nine".split()

_WRITTEN_DIGITS = re.compile(r"(?<![\w$£€#.,:/])(?<!\d[.,:/])\d+(?:-\d+)*(?![.,:/]?\d)(?![\w%$£€])")
"""A digit string written as such: digits, or groups of digits joined by hyphens, standing
alone (not a decimal, a thousands group, a time, a fraction, an amount or an ordinal)."""


def _spelled(match: re.Match[str]) -> str:
    return " " + " ".join(_DIGIT_NAMES[int(c)] for c in match.group() if c != "-") + " "


@lru_cache(maxsize=65536)
def wer_text(text: str) -> str:
    """The normalisation applied to reference and hypothesis before WER: written digit strings
    spelled out digit by digit, Whisper's English normaliser, then every all-digit word split
    into one word per digit (see the module docstring)."""
    words = _english()(_WRITTEN_DIGITS.sub(_spelled, text)).split()
    return " ".join(" ".join(w) if w.isdigit() else w for w in words)
