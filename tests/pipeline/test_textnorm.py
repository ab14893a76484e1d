"""The WER every callqa figure uses: known answers on hand-made cases."""

from __future__ import annotations

import pytest

from pipeline.evaluation.measures import wer
from pipeline.text.normalize import plain, wer_text


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


@pytest.mark.parametrize("written", ["8-2-1-9", "8 2 1 9", "8219", "8, 2, 1, 9.", "eight two one nine",
                                     "Eight-two-one-nine", "eight twenty-one nine", "8 2 one 9"])
def test_digit_strings_are_one_digit_per_word_whatever_their_form(written):
    assert wer_text(written) == "8 2 1 9"
    assert wer(["eight two one nine"], [written]) == 0.0
    assert wer([written], ["8-2-1-9"]) == 0.0


def test_a_perfectly_heard_account_number_is_no_error_and_a_misheard_digit_is_one():
    reference = "my account number is four four eight two one double two zero one nine nine"
    assert wer([reference], ["My account number is 4-4-8-2-1-2-2-0-1-9-9."]) == 0.0
    assert wer([reference], ["my account number is 44821 220199"]) == 0.0
    assert wer_text("1-800-555-0199") == "1 8 0 0 5 5 5 0 1 9 9"  # the leading zero of a group kept
    # one digit wrong is one substitution over the 4 + 11 reference words
    assert wer([reference], ["my account number is 4-4-8-2-7-2-2-0-1-9-9"]) == pytest.approx(1 / 15)


def test_amounts_and_ordinals_stay_one_word_and_other_measures_still_hold():
    assert wer_text("It costs $25.50, 3.5% more, on the 1st.") == "it costs $25.50 3.5% more on the 1st"
    assert wer(["twenty five dollars"], ["$25"]) == 0.0
    assert wer_text("I have 1 dog") == wer_text("I have one dog") == "i have one dog"
