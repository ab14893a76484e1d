"""Negation polarity: a phrase never matches words that say the opposite.

Fuzzy scores and sentence embeddings both barely see a negation: "I can help you" scores 93
against "I can't help you", and "I will do that" sits next to "I won't do that" in embedding
space. So phrase matching (pipeline/analysis/detectors/phrases.py) compares the polarity of what it looks
for with the polarity of the words that matched, and refuses a match whose polarity differs.

A text is negated when any of its words is a negator: "not", "never", "no", "cannot",
"nothing", "nobody", "none", "nowhere", "neither", "nor", any "...n't" contraction, and the
same contractions as recognisers write them without the apostrophe ("cant", "wont", "dont",
"isnt", ...). "No" as the first word does not count: at the start of a sentence it answers
what was said before ("No, I can help you with that") rather than negating what follows.

Fuzzy matching compares texts with their negations written out (``expand``): "can't", "cant",
"cannot" and "can not" all read "can not", so the way a negation is written costs no score.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

NEGATORS = frozenset({"not", "never", "no", "cannot", "nothing", "nobody", "none", "nowhere", "neither", "nor"})
"""Words that negate on their own."""

CONTRACTIONS = frozenset({
    "aint", "arent", "cant", "couldnt", "didnt", "doesnt", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt",
    "mustnt", "neednt", "shant", "shouldnt", "wasnt", "werent", "wont", "wouldnt",
})
"""The "n't" contractions as written without their apostrophe."""

CLAUSE_NEGATORS = frozenset({"not", "never", "cannot"})
"""Negators that negate the words right after them ("can not | help you"): one of these (or a
contraction) just before the matched words makes them negated too."""

AUXILIARIES = frozenset({"am", "are", "is", "was", "were", "be", "do", "does", "did", "have", "has", "had", "can",
                         "could", "will", "would", "shall", "should", "may", "might", "must", "need"})
"""Verbs that a "not" after them negates ("I do | not")."""

_WORD = re.compile(r"[\w']+")
_IRREGULAR = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
"""Contractions whose stem is not the verb ("won't": will not)."""
_CONTRACTED = re.compile(r"\b(cannot|\w+n't|" + "|".join(sorted(CONTRACTIONS)) + r")\b")


def _written_out(match: re.Match[str]) -> str:
    word = match.group(1)
    if word == "cannot":
        return "can not"
    stem = word[:-3] if word.endswith("n't") else word[:-2]
    return f"{_IRREGULAR.get(stem, stem)} not"


@lru_cache(maxsize=65536)
def expand(text: str) -> str:
    """Lowercase ``text`` (apostrophes straight) with every negated contraction written out:
    "can't" / "cant" / "cannot" as "can not", "won't" / "wont" as "will not", "isn't" as "is
    not"."""
    return _CONTRACTED.sub(_written_out, text.lower().replace("’", "'"))


def words_of(text: str) -> list[str]:
    """Lowercase words, apostrophes kept (curly ones made straight)."""
    return _WORD.findall(text.lower().replace("’", "'"))


def is_negator(word: str) -> bool:
    """Whether the (lowercase) word negates."""
    return word in NEGATORS or word in CONTRACTIONS or word.endswith("n't")


def negated(words: list[str]) -> bool:
    """Whether the words say something negated (see the module docstring)."""
    return any(is_negator(w) for w in (words[1:] if words[:1] == ["no"] else words))


def matched_words(phrase: list[str], words: list[str]) -> tuple[int, int]:
    """The run ``words[start:end]`` that is most like ``phrase`` (rapidfuzz ``ratio``), among the
    runs of one word fewer to two words more than the phrase: the words a fuzzy
    ``partial_ratio`` match stands for, whole words, a negation ("can not") included."""
    target = " ".join(phrase)
    best, span = -1.0, (0, len(words))
    for size in range(max(1, len(phrase) - 1), min(len(words), len(phrase) + 2) + 1):
        for start in range(len(words) - size + 1):
            score = fuzz.ratio(target, " ".join(words[start:start + size]))
            if score > best:
                best, span = score, (start, start + size)
    return span


def same_polarity(phrase: str, text: str) -> bool:
    """Whether the words of ``text`` that match ``phrase`` are negated exactly when the phrase
    is: the matched run of words (``matched_words``), counting a clause negator or contraction
    just before it ("I can not | help you" does not say "help you") and a "not" or "never"
    just after it when it ends in an auxiliary verb ("I do | not" does not say "I do")."""
    target, words = words_of(phrase), words_of(text)
    if not words:
        return not negated(target)
    start, end = matched_words(target, words)
    before = words[start - 1] if start > 0 else ""
    after = words[end] if end < len(words) else ""
    negated_before = before in CLAUSE_NEGATORS or before in CONTRACTIONS or before.endswith("n't")
    negated_after = after in CLAUSE_NEGATORS and words[end - 1] in AUXILIARIES
    return (negated(words[start:end]) or negated_before or negated_after) == negated(target)
