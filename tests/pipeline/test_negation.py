"""Negation polarity of phrases and the words that match them (pipeline/analysis/detectors/negation.py)."""

from __future__ import annotations

import pytest

from pipeline.analysis.detectors.negation import expand, negated, same_polarity, words_of


@pytest.mark.parametrize("text", ["I can't help", "i cant help", "I cannot help", "I can not help", "I won't",
                                  "i wont", "don't", "dont", "It isn't", "it isnt", "I never said that",
                                  "There's nothing I can do", "That is no problem of mine", "I don’t care"])
def test_negated(text):
    assert negated(words_of(text))


@pytest.mark.parametrize("text", ["I can help", "I will do that", "do", "No, I can help you with that",
                                  "I want it", "It went fine", "Note the point"])
def test_not_negated(text):
    assert not negated(words_of(text))


def test_negations_are_written_out_one_way():
    assert expand("I can't, cant, cannot") == "i can not, can not, can not"
    assert expand("won't wont isn't dont shan't ain't") == "will not will not is not do not shall not is not"
    assert expand("want went point") == "want went point"


@pytest.mark.parametrize("phrase, text, same", [
    ("i can not help you", "i can help you with that", False),
    ("i can not help you", "sorry i can not help you with that", True),
    ("i will not do that", "i will do that for you", False),
    ("i will do that", "sure i will not do that", False),
    ("do", "do not", False),
    ("help you", "i can not help you", False),     # a negation just before the matched words
    ("i do", "i do not", False),                   # "not" after an auxiliary
    ("thank you", "thank you not at all", True),   # ... but not after any word
    ("not my problem", "no problem", False),       # a first "no" answers, it does not negate
])
def test_same_polarity(phrase, text, same):
    assert same_polarity(phrase, text) is same
