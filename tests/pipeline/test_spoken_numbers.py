"""Direct tests of the spoken-number parser behind PII detection, with answers worked out by hand."""

from __future__ import annotations

import pytest

from pipeline.text.spoken_numbers import NumberRun, luhn, number_runs, word_atoms


@pytest.mark.parametrize(("said", "digits"), [
    ("4 5 6 7", "4567"),
    ("four five six seven", "4567"),
    ("double five", "55"),
    ("triple oh", "000"),
    ("double 5", "55"),
    ("oh seven seven", "077"),
    ("nought one", "01"),
    ("forty two", "42"),
    ("forty-two", "42"),
    ("twelve", "12"),
    ("one hundred and five", "105"),
    ("four thousand", "4000"),
    ("4 five 6 seven", "4567"),
    ("four uh five", "45"),
])
def test_one_number_said_any_way(said: str, digits: str) -> None:
    words = said.split()
    assert number_runs(words) == [NumberRun(0, len(words) - 1, digits, [len(digits)])]


def test_mixed_digits_and_words_keep_their_word_range_and_grouping() -> None:
    words = "my number is 0 7 7 double 0, nine one two thanks".split()
    assert number_runs(words) == [NumberRun(3, 10, "07700912", [5, 3])]


def test_grouping_of_written_digits() -> None:
    assert number_runs(["123", "45", "6789"]) == [NumberRun(0, 2, "123456789", [3, 2, 4])]
    assert number_runs(["1234-5678"]) == [NumberRun(0, 0, "12345678", [4, 4])]


def test_words_between_numbers_split_them() -> None:
    assert number_runs("room 4 and then five".split()) == [NumberRun(1, 1, "4", [1]), NumberRun(4, 4, "5", [1])]


@pytest.mark.parametrize("said", ["Oh, I see", "it costs 3.50", "hello there"])
def test_no_number(said: str) -> None:
    assert number_runs(said.split()) == []


def test_word_atoms() -> None:
    assert word_atoms("Forty-two,") == [("tens", 40), ("unit", 2)]
    assert word_atoms("double") == [("mult", 2)]
    assert word_atoms("Oh,") is None
    assert word_atoms("hello") is None


def test_luhn() -> None:
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")


def test_a_word_of_letters_is_read_as_before_without_the_checks() -> None:
    """word_atoms answers a word of letters alone that no number word is with None at once: every
    such word, and any other word, reads as it does through all the checks (checked_atoms)."""
    import random

    from pipeline.text.spoken_numbers import _TEENS, _TENS, _UNITS, checked_atoms, clean_word

    words = (list(_UNITS) + list(_TEENS) + list(_TENS)
             + "Oh, o. Double triple Hundred thousand and AND uh Um, dash hyphen + +44 4-5 1.5 12.345 forty-two "
               "twenty-one, hello Hello! naïve éclair ﬁve İstanbul ß x² ٣ Ⅷ o'clock".split())
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyzAOT0123456789-.,+'é²٣Ⅷ"
    words += ["".join(rng.choice(letters) for _ in range(rng.randint(0, 8))) for _ in range(20000)]
    for w in words:
        assert word_atoms(w) == checked_atoms(w, clean_word(w).lstrip("+")), w
