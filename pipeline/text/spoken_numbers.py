"""Spoken numbers in recognised speech: the digits said over a run of words, and which words said them.

Speech recognisers write one number in many ways ("4 5 6 7", "four five six seven", "double five",
"oh" for zero, "forty two", "4567-89", split over words with punctuation and fillers). PII detection
(pipeline/pii/text.py) decides what a number is from its digits and grouping, and redacts words, so this
module turns the words of one utterance into runs of digits (:class:`NumberRun`), each with the
range of words that said them and how the speaker grouped them. It also holds the word cleaning
both modules share and the Luhn check for card numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_UNITS.update({"oh": 0, "o": 0, "nought": 0})
_TEENS = {w: 10 + i for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 20 + 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_FILLERS = {"uh", "um", "er", "erm", "ah", "hmm"}
_DIGITS = re.compile(r"\d+")
_DIGIT_GROUPS = re.compile(r"\d+(?:[-.]\d+)+")
_DECIMAL = re.compile(r"\d+\.\d{1,2}")
_GROUP_SEP = re.compile(r"[-.]")


def clean_word(word: str) -> str:
    """The word lowercased without the punctuation around it."""
    return word.strip(".,;:!?\"()[]{}-").lower()


def punct_after(word: str) -> bool:
    """Whether the word ends in punctuation (a pause or the end of a sentence)."""
    return word[-1:] in ",.;:!?" if word else False


_NUMBER_LETTERS = frozenset(_FILLERS | {"dash", "hyphen", "and", "oh", "o"} | set(_UNITS) | set(_TEENS) | set(_TENS)
                            | {"double", "triple", "hundred", "thousand"})
"""The words of letters alone that :func:`word_atoms` reads as part of a number (or a filler,
separator or "and" inside one): any other word of letters is none."""


def word_atoms(raw: str) -> list[tuple[str, Any]] | None:
    """The number pieces of one word, or None when the word is not part of a number."""
    c = clean_word(raw).lstrip("+")
    if c.isalpha() and c not in _NUMBER_LETTERS:
        return None  # what the checks of checked_atoms conclude for such a word, at once
    return checked_atoms(raw, c)


def checked_atoms(raw: str, c: str) -> list[tuple[str, Any]] | None:
    """:func:`word_atoms` of ``raw`` (``c``: its cleaned form) through every check."""
    if c in _FILLERS:
        return [("filler", None)]
    if c in ("dash", "hyphen"):
        return [("sep", None)]
    if c == "and":
        return [("and", None)]
    if c in ("oh", "o") and punct_after(raw):
        return None  # "Oh," is an interjection
    if _DIGITS.fullmatch(c):
        return [("lit", c)]
    if _DIGIT_GROUPS.fullmatch(c) and not _DECIMAL.fullmatch(c):
        out: list[tuple[str, Any]] = []
        for part in _GROUP_SEP.split(c):
            out += [("lit", part), ("sep", None)]
        return out[:-1]
    out = []
    for p in c.split("-"):
        if p in _UNITS:
            out.append(("unit", _UNITS[p]))
        elif p in _TEENS:
            out.append(("teen", _TEENS[p]))
        elif p in _TENS:
            out.append(("tens", _TENS[p]))
        elif p in ("double", "triple"):
            out.append(("mult", 2 if p == "double" else 3))
        elif p in ("hundred", "thousand"):
            out.append((p, None))
        else:
            return None
    return out


@dataclass
class NumberRun:
    """Digits said over consecutive words of one utterance (``first..last``)."""

    first: int
    last: int
    digits: str = ""
    groups: list[int] = field(default_factory=list)
    continued: bool = False
    """The run goes on from the end of the speaker's previous turn (already counted there)."""


def _below_100(atoms: list, j: int) -> tuple[int, int]:
    """Value of a number below 100 said at atoms[j:] ("forty two", "twelve", "seven") and the
    atoms it used (0 when there is none)."""
    kind, v = atoms[j][1:] if j < len(atoms) else (None, None)
    if kind == "tens":
        nxt = atoms[j + 1][1:] if j + 1 < len(atoms) else (None, None)
        return (v + nxt[1], 2) if nxt[0] == "unit" and nxt[1] else (v, 1)
    return (v, 1) if kind in ("teen", "unit") else (0, 0)


def number_runs(raw: list[str]) -> list[NumberRun]:
    """Every run of digits in the words, with the words it covers and its spoken grouping."""
    atoms: list[tuple[int, str, Any]] = []
    for i, w in enumerate(raw):
        pieces = word_atoms(w)
        atoms += [(i, *a) for a in pieces] if pieces is not None else [(i, "break", None)]
        if pieces is not None and punct_after(w):
            atoms.append((i, "sep", None))
    runs: list[NumberRun] = []
    cur: NumberRun | None = None

    def emit(first: int, digits: str, alone: bool = False) -> None:
        """Add digits said from word ``first`` to the last word of the atoms used so far."""
        nonlocal cur
        if cur is None:
            cur = NumberRun(first, first)
        if alone or not cur.groups:
            cur.groups.append(0)
        cur.digits += digits
        cur.groups[-1] += len(digits)
        cur.last = atoms[j - 1][0]
        if alone:
            cur.groups.append(0)

    def close() -> None:
        nonlocal cur
        if cur is not None:
            cur.groups = [g for g in cur.groups if g]
            runs.append(cur)
        cur = None

    j = 0
    while j < len(atoms):
        word, kind, v = atoms[j]
        j += 1
        if kind == "lit":
            emit(word, v, alone=len(v) > 1)
        elif kind == "unit" and j < len(atoms) and atoms[j][1] in ("hundred", "thousand"):
            scale = 100 if atoms[j][1] == "hundred" else 1000
            j += 1 + (j + 1 < len(atoms) and atoms[j + 1][1] == "and")
            rest, used = _below_100(atoms, j)
            j += used
            emit(word, str(v * scale + rest))
        elif kind in ("unit", "teen", "tens"):
            value, used = _below_100(atoms, j - 1)
            j += used - 1
            emit(word, str(value))
        elif kind == "mult" and j < len(atoms) and (atoms[j][1] == "unit" or (atoms[j][1] == "lit" and len(atoms[j][2]) == 1)):
            j += 1
            emit(word, str(atoms[j - 1][2]) * v)
        elif kind == "sep":
            if cur is not None and cur.groups and cur.groups[-1]:
                cur.groups.append(0)
        elif kind != "filler":
            close()
    close()
    return [r for r in runs if r.digits]


def luhn(digits: str) -> bool:
    """Whether the digits pass the Luhn checksum that every payment card number carries."""
    total = 0
    for k, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if k % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0
