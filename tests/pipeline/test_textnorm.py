"""The WER every callqa figure uses: known answers on hand-made cases."""

from __future__ import annotations

import pytest

from pipeline.textnorm import plain, wer, wer_text


def test_spelled_numbers_and_spellings_do_not_count_as_errors():
    assert wer_text("It's four five six, Mr. Smith's colour.") == wer_text("it is 456 mister smith's color")
    assert wer(["My account is four five six seven."], ["my account is 4567"]) == 0.0


def test_known_error_counts():
    # one substitution, one deletion, one insertion over 6 reference words
    assert wer(["the quick brown fox jumps high"], ["the quick red fox jumps very high"]) == pytest.approx(2 / 6)
    assert wer(["the quick brown fox jumps high"], ["the quick red fox high"]) == pytest.approx(2 / 6)
    assert wer(["one two", "three four"], ["one two", ""]) == pytest.approx(2 / 4)


def test_words_on_an_empty_reference_are_errors():
    assert wer(["hello there"], ["hello there"]) == 0.0
    assert wer(["hello there", ""], ["hello there", "thank you"]) == pytest.approx(2 / 2)
    assert wer([""], [""]) == 0.0


def test_plain_keeps_apostrophes_and_drops_punctuation():
    assert plain("Hello, World! It's well-known.") == "hello world it's well known"
