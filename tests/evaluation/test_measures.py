"""The evaluation harness's metrics: known answers worked out by hand on small cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.evaluation.measures import (
    DiarizationTotals,
    diarization_errors,
    item_agreement,
    pooled_agreement,
    read_rttm,
    score_agreement,
    text_errors,
)
from pipeline.evaluation.measures import wer

# --- text_errors ------------------------------------------------------------------------------


def test_substitution_and_deletion():
    # the=the cat=cat sat->sit (S) on=on the (D) mat=mat: 1 S + 1 D over 6 reference words
    e = text_errors(["the cat sat on the mat"], ["the cat sit on mat"])
    assert e["wer"] == pytest.approx(2 / 6)
    assert (e["hits"], e["substitutions"], e["deletions"], e["insertions"]) == (4, 1, 1, 0)
    assert (e["ref_words"], e["hyp_words"]) == (6, 5)


def test_insertion():
    # hello=hello +big (I) world=world: 1 I over 2 reference words
    e = text_errors(["hello world"], ["hello big world"])
    assert e["wer"] == pytest.approx(1 / 2)
    assert (e["hits"], e["substitutions"], e["deletions"], e["insertions"]) == (2, 0, 0, 1)


def test_corpus_pools_errors_not_per_pair_rates():
    # (1 S + 1 D) + 1 I = 3 errors over 6 + 2 = 8 reference words = 0.375 (the mean of 1/3 and 1/2 would be 0.4167)
    e = text_errors(["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello big world"])
    assert e["wer"] == pytest.approx(3 / 8)
    assert (e["ref_words"], e["hyp_words"], e["hits"]) == (8, 8, 6)


def test_words_on_an_empty_reference_are_insertions():
    # pair 2 has nothing to say: "thank you" = 2 word insertions and 9 character insertions ("thank you");
    # wer = 2 / 2 reference words; cer = 9 / 11 reference characters ("hello world")
    e = text_errors(["hello world", ""], ["hello world", "thank you"])
    assert e["wer"] == pytest.approx(1.0)
    assert e["insertions"] == 2 and e["ref_words"] == 2 and e["hyp_words"] == 4
    assert e["cer"] == pytest.approx(9 / 11)
    assert (e["ref_chars"], e["char_errors"]) == (11, 9)


def test_no_reference_words_gives_none():
    both_empty = text_errors(["", "um", "!?"], ["", "", ""])  # fillers and punctuation normalise to nothing
    assert both_empty["wer"] is None and both_empty["cer"] is None
    assert (both_empty["ref_words"], both_empty["hyp_words"], both_empty["insertions"]) == (0, 0, 0)
    only_insertions = text_errors([""], ["thank you"])
    assert only_insertions["wer"] is None and only_insertions["insertions"] == 2
    assert only_insertions["char_errors"] == 9
    assert text_errors([], [])["wer"] is None
    # measures.wer keeps its convention for no reference words: 1.0 with hypothesis words, else 0.0
    assert wer([""], ["thank you"]) == 1.0
    assert wer([""], [""]) == 0.0


def test_normalisation_removes_formatting_differences():
    e = text_errors(["four five six", "The colour, Sir!", "It's OK."], ["456", "the color sir", "it is ok"])
    assert e["wer"] == 0.0 and e["cer"] == 0.0
    assert e["substitutions"] + e["deletions"] + e["insertions"] == 0 and e["char_errors"] == 0


def test_digit_strings_count_one_word_per_digit_on_both_sides():
    e = text_errors(["my pin is four four eight two"], ["My PIN is 4-4-8-2."])
    assert e["wer"] == 0.0 and e["cer"] == 0.0 and e["hits"] == e["ref_words"] == 7
    e = text_errors(["my pin is four four eight two"], ["my pin is 4482"])  # written together, same words
    assert e["wer"] == 0.0 and e["hyp_words"] == 7
    e = text_errors(["four four eight two"], ["4-4-8-7"])  # one digit misheard: one substitution
    assert (e["substitutions"], e["deletions"], e["insertions"]) == (1, 0, 0) and e["wer"] == pytest.approx(1 / 4)


def test_cer_known_values():
    # kitten -> sitting: k->s, e->i, +g = 3 character edits over 6 characters
    e = text_errors(["kitten"], ["sitting"])
    assert e["cer"] == pytest.approx(3 / 6) and e["char_errors"] == 3 and e["ref_chars"] == 6
    # the space between words is a character: "ab cd" (5 chars) -> "abcd" is 1 deletion = 1/5;
    # as words, ab->abcd (S) and cd deleted (D): 2 / 2
    e = text_errors(["ab cd"], ["abcd"])
    assert e["cer"] == pytest.approx(1 / 5) and e["ref_chars"] == 5
    assert e["wer"] == pytest.approx(1.0)


def test_pairs_must_match():
    with pytest.raises(ValueError):
        text_errors(["a", "b"], ["a"])


def test_textnorm_wer_is_text_errors():
    refs, hyps = ["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello big world"]
    assert wer(refs, hyps) == text_errors(refs, hyps)["wer"] == pytest.approx(3 / 8)


# --- diarization ------------------------------------------------------------------------------

REF_AB = [(0.0, 10.0, "A"), (10.0, 20.0, "B")]


def test_speaker_confusion():
    # X->A, Y->B; 8-10 s is A's speech labelled Y: 2 s confusion over 20 s = 0.1
    # JER: A/X: 1 - 8/10 = 0.2; B/Y: 1 - 10/12 = 1/6; mean (0.2 + 1/6) / 2 = 11/60
    d = diarization_errors(REF_AB, [(0.0, 8.0, "X"), (8.0, 20.0, "Y")], 20.0)
    assert d["der"] == pytest.approx(0.1)
    assert d["confusion"] == pytest.approx(2.0)
    assert d["missed"] == 0.0 and d["false_alarm"] == 0.0
    assert d["total"] == pytest.approx(20.0)
    assert d["jer"] == pytest.approx(11 / 60)


def test_missed_speech():
    # 6-10 s of A found by nobody: 4 s missed over 10 s = 0.4; JER 1 - 6/10 = 0.4
    d = diarization_errors([(0.0, 10.0, "A")], [(0.0, 6.0, "X")], 20.0)
    assert d["der"] == pytest.approx(0.4) and d["missed"] == pytest.approx(4.0)
    assert d["false_alarm"] == 0.0 and d["confusion"] == 0.0 and d["total"] == pytest.approx(10.0)
    assert d["jer"] == pytest.approx(0.4)


def test_false_alarm():
    # 10-12 s is speech only in the hypothesis: 2 s false alarm over 10 s = 0.2; JER 1 - 10/12 = 1/6
    d = diarization_errors([(0.0, 10.0, "A")], [(0.0, 12.0, "X")], 20.0)
    assert d["der"] == pytest.approx(0.2) and d["false_alarm"] == pytest.approx(2.0)
    assert d["missed"] == 0.0 and d["confusion"] == 0.0
    assert d["jer"] == pytest.approx(1 / 6)


def test_collar_is_the_total_width_around_each_reference_boundary():
    hyp = [(0.0, 10.4, "X"), (10.4, 20.0, "Y")]  # the speaker change found 0.4 s late
    # no collar: 0.4 s confusion over 20 s
    assert diarization_errors(REF_AB, hyp, 20.0)["der"] == pytest.approx(0.4 / 20)
    # collar 1.0 ignores +-0.5 s: 0-0.5, 9.5-10.5 and 19.5-20 are out, 18 s scored, no error left
    d = diarization_errors(REF_AB, hyp, 20.0, collar=1.0)
    assert d["der"] == pytest.approx(0.0, abs=1e-12) and d["total"] == pytest.approx(18.0)
    assert d["jer"] == pytest.approx(0.0, abs=1e-12)
    # collar 0.5 ignores +-0.25 s: 10.25-10.4 still wrong, 0.15 s over 20 - 0.25 - 0.5 - 0.25 = 19 s
    d = diarization_errors(REF_AB, hyp, 20.0, collar=0.5)
    assert d["der"] == pytest.approx(0.15 / 19) and d["total"] == pytest.approx(19.0)


def test_label_names_do_not_matter():
    # the hypothesis names the speakers the other way round: the optimal mapping undoes it
    d = diarization_errors(REF_AB, [(0.0, 10.0, "B"), (10.0, 20.0, "A")], 20.0)
    assert d["der"] == pytest.approx(0.0, abs=1e-12) and d["jer"] == pytest.approx(0.0, abs=1e-12)


def test_unmapped_reference_speaker():
    # one hypothesis speaker for both: mapped to one of them, the other's 10 s are confusion: 10 / 20
    # JER: mapped speaker 1 - 10/20 = 0.5, unmapped speaker 1; mean 0.75
    d = diarization_errors(REF_AB, [(0.0, 20.0, "X")], 20.0)
    assert d["der"] == pytest.approx(0.5) and d["confusion"] == pytest.approx(10.0)
    assert d["jer"] == pytest.approx(0.75)


def test_overlapping_turns_of_one_label_are_merged():
    # X 0-6 and X 4-10 are X 0-10; unmerged, pyannote would count 4-6 twice (2 s false alarm)
    d = diarization_errors([(0.0, 10.0, "A")], [(0.0, 6.0, "X"), (4.0, 10.0, "X")], 10.0)
    assert d["der"] == pytest.approx(0.0, abs=1e-12) and d["false_alarm"] == 0.0
    d = diarization_errors([(0.0, 6.0, "A"), (4.0, 10.0, "A")], [(0.0, 10.0, "X")], 10.0)
    assert d["total"] == pytest.approx(10.0) and d["der"] == pytest.approx(0.0, abs=1e-12)


def test_no_collar_between_touching_turns_of_one_speaker():
    # A 0-5 + A 5-10 is one turn A 0-10: collar 1.0 cuts 0-0.5, 9.5-10.5, 19.5-20, 18 s scored (not 17)
    d = diarization_errors([(0.0, 5.0, "A"), (5.0, 10.0, "A"), (10.0, 20.0, "B")], REF_AB, 20.0, collar=1.0)
    assert d["total"] == pytest.approx(18.0) and d["der"] == pytest.approx(0.0, abs=1e-12)


def test_overlapped_speech_counts_once_per_speaker():
    # A 0-10 and B 5-15 overlap for 5 s: 10 + 10 = 20 s of reference speech, all found
    d = diarization_errors([(0.0, 10.0, "A"), (5.0, 15.0, "B")], [(0.0, 10.0, "X"), (5.0, 15.0, "Y")], 15.0)
    assert d["total"] == pytest.approx(20.0) and d["der"] == pytest.approx(0.0, abs=1e-12)


def test_no_reference_speech():
    d = diarization_errors([], [(2.0, 5.0, "X")], 10.0)
    assert d["der"] is None and d["jer"] is None
    assert d["false_alarm"] == pytest.approx(3.0) and d["total"] == 0.0


def test_speech_outside_the_call_is_not_scored():
    # the hypothesis runs to 12 s on a 10 s call: only 0-10 is scored
    d = diarization_errors([(0.0, 10.0, "A")], [(0.0, 12.0, "X")], 10.0)
    assert d["der"] == pytest.approx(0.0, abs=1e-12) and d["false_alarm"] == 0.0


def test_totals_pool_seconds_and_speakers():
    totals = DiarizationTotals()
    first = totals.add(REF_AB, [(0.0, 8.0, "X"), (8.0, 20.0, "Y")], 20.0)  # 2 s confusion of 20
    second = totals.add([(0.0, 10.0, "A")], [(0.0, 6.0, "X")], 20.0)  # 4 s missed of 10
    assert first["der"] == pytest.approx(0.1) and second["der"] == pytest.approx(0.4)
    overall = totals.overall()
    # (2 + 4) / (20 + 10) = 0.2, not the mean of 0.1 and 0.4
    assert overall["der"] == pytest.approx(6 / 30)
    assert overall["total"] == pytest.approx(30.0) and overall["missed"] == pytest.approx(4.0)
    assert overall["confusion"] == pytest.approx(2.0) and overall["false_alarm"] == 0.0
    # JER: the mean over the 3 reference speakers (0.2, 1/6 in call 1; 0.4 in call 2) = 0.2556,
    # not the mean of the calls' JERs ((11/60 + 0.4) / 2 = 0.2917)
    assert overall["jer"] == pytest.approx((0.2 + 1 / 6 + 0.4) / 3)


def test_empty_totals():
    assert DiarizationTotals(0.25).overall() == {"der": None, "jer": None, "missed": 0.0, "false_alarm": 0.0,
                                                 "confusion": 0.0, "total": 0.0}


# --- read_rttm --------------------------------------------------------------------------------


def test_read_rttm(tmp_path: Path):
    path = tmp_path / "c001.rttm"
    path.write_text(
        ";; a comment\n"
        "\n"
        "SPKR-INFO c001 1 <NA> <NA> <NA> unknown agent <NA> <NA>\n"
        "SPEAKER c001 1 1.5 2.25 <NA> <NA> agent <NA> <NA>\n"
        "# another comment\n"
        "SPEAKER c001 1 4.0 1.0 <NA> <NA> customer\n"
    )
    assert read_rttm(path) == [(1.5, 3.75, "agent"), (4.0, 5.0, "customer")]


@pytest.mark.parametrize("bad", [
    "SPEAKER c001 1 abc 2.0 <NA> <NA> agent <NA> <NA>",
    "SPEAKER c001 1 1.0 -2.0 <NA> <NA> agent <NA> <NA>",
    "SPEAKER c001 1 1.0 2.0",
])
def test_read_rttm_names_file_and_line_of_a_bad_line(tmp_path: Path, bad: str):
    path = tmp_path / "bad.rttm"
    path.write_text(f"SPEAKER c001 1 0.0 1.0 <NA> <NA> agent <NA> <NA>\n\n{bad}\n")
    with pytest.raises(InputError) as err:
        read_rttm(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


# --- scorecard answers ------------------------------------------------------------------------


def _textbook() -> tuple[list[str], list[str]]:
    """20 calls: both yes 9, both no 6, gold yes / auto no 2, gold no / auto yes 3."""
    pairs = [("yes", "yes")] * 9 + [("no", "no")] * 6 + [("yes", "no")] * 2 + [("no", "yes")] * 3
    return [g for g, _ in pairs], [a for _, a in pairs]


def test_kappa_textbook():
    gold, auto = _textbook()
    r = item_agreement(gold, auto)
    # po = 15/20 = 0.75; gold yes 11 no 9, auto yes 12 no 8: pe = 11/20*12/20 + 9/20*8/20 = 0.51
    # kappa = (0.75 - 0.51) / (1 - 0.51) = 0.24 / 0.49
    assert r["kappa"] == pytest.approx(0.24 / 0.49)
    assert r["accuracy"] == pytest.approx(0.75) and r["n"] == 20
    # yes: P 9/12, R 9/11, F1 18/23; no: P 6/8, R 6/9, F1 12/17
    assert r["precision"] == pytest.approx(0.75)
    assert r["recall"] == pytest.approx((9 / 11 + 6 / 9) / 2)
    assert r["f1"] == pytest.approx((18 / 23 + 12 / 17) / 2)
    assert r["classes"]["yes"] == pytest.approx({"precision": 0.75, "recall": 9 / 11, "f1": 18 / 23, "support": 11})
    assert r["classes"]["no"] == pytest.approx({"precision": 0.75, "recall": 6 / 9, "f1": 12 / 17, "support": 9})
    assert r["labels_present"] == ["yes", "no"] and set(r["classes"]) == {"yes", "no"}
    assert r["confusion"] == {"yes": {"yes": 9, "no": 2, "na": 0}, "no": {"yes": 3, "no": 6, "na": 0},
                              "na": {"yes": 0, "no": 0, "na": 0}}


def test_undefined_kappa_is_none():
    r = item_agreement(["yes"] * 4, ["yes"] * 4)
    assert r["kappa"] is None
    assert r["accuracy"] == 1.0 and r["f1"] == 1.0 and r["labels_present"] == ["yes"]
    # all wrong with one label a side is defined: pe = 0, kappa = (0 - 0) / 1 = 0
    assert item_agreement(["yes"] * 3, ["no"] * 3)["kappa"] == pytest.approx(0.0)


def test_na_as_a_third_class():
    gold = ["yes", "no", "na", "na", "yes", "no"]
    auto = ["yes", "na", "na", "yes", "yes", "no"]
    r = item_agreement(gold, auto)
    assert r["accuracy"] == pytest.approx(4 / 6)
    # yes: P 2/3 R 2/2 F1 0.8; no: P 1/1 R 1/2 F1 2/3; na: P 1/2 R 1/2 F1 1/2
    assert r["precision"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert r["recall"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["f1"] == pytest.approx((0.8 + 2 / 3 + 0.5) / 3)
    # po = 4/6; gold 2/2/2, auto yes 3 no 1 na 2: pe = (2*3 + 2*1 + 2*2) / 36 = 1/3; kappa = (2/3 - 1/3) / (2/3)
    assert r["kappa"] == pytest.approx(0.5)
    assert r["confusion"]["no"] == {"yes": 0, "no": 1, "na": 1}
    assert r["confusion"]["na"] == {"yes": 1, "no": 0, "na": 1}
    assert r["labels_present"] == ["yes", "no", "na"]


def test_macro_f1_counts_a_label_only_auto_gave():
    # yes: P 1/1 R 1/2 F1 2/3; no: P 1 R 1 F1 1; na (never gold): P 0/1 R 0 F1 0
    r = item_agreement(["yes", "yes", "no"], ["yes", "na", "no"])
    assert r["labels_present"] == ["yes", "no", "na"]
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(1 / 2)
    assert r["f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert r["classes"]["na"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_no_answers_and_unknown_answers():
    r = item_agreement([], [])
    assert r["n"] == 0 and r["labels_present"] == []
    assert all(r[k] is None for k in ("accuracy", "precision", "recall", "f1", "kappa", "confusion", "classes"))
    with pytest.raises(ValueError):
        item_agreement(["yes"], ["maybe"])


def test_pooled_agreement():
    gold, auto = _textbook()
    r = pooled_agreement(list(zip(gold, auto)))
    assert r["answers"] == 20 and r["accuracy"] == pytest.approx(0.75)
    assert r["kappa"] == pytest.approx(0.24 / 0.49)
    assert pooled_agreement([("na", "na"), ("na", "na")]) == {"answers": 2, "accuracy": 1.0, "kappa": None}
    assert pooled_agreement([]) == {"answers": 0, "accuracy": None, "kappa": None}


# --- scores -----------------------------------------------------------------------------------


def test_score_agreement():
    r = score_agreement([1, 2, 3, 4], [2, 2, 4, 5])
    # differences 1, 0, 1, 1: mae = bias = 3/4
    assert r["n"] == 4 and r["mae"] == pytest.approx(0.75) and r["bias"] == pytest.approx(0.75)
    # deviations gold -1.5 -0.5 0.5 1.5, auto -1.25 -1.25 0.75 1.75: sum of products 5.5, squares 5 and 6.75
    assert r["pearson"] == pytest.approx(5.5 / math.sqrt(5 * 6.75))
    # ranks gold 1 2 3 4, auto 1.5 1.5 3 4: deviations -1 -1 0.5 1.5, products 4.5, squares 5 and 4.5
    assert r["spearman"] == pytest.approx(4.5 / math.sqrt(5 * 4.5))


def test_score_agreement_undefined_correlations():
    # differences -2 -1 0 1: mae 4/4 = 1, bias -2/4 = -0.5; gold constant: no correlation
    r = score_agreement([3, 3, 3, 3], [1, 2, 3, 4])
    assert r["mae"] == pytest.approx(1.0) and r["bias"] == pytest.approx(-0.5)
    assert r["pearson"] is None and r["spearman"] is None
    one = score_agreement([80.0], [70.0])
    assert one == {"n": 1, "mae": 10.0, "bias": -10.0, "pearson": None, "spearman": None}
    assert score_agreement([], []) == {"n": 0, "mae": None, "bias": None, "pearson": None, "spearman": None}


def test_masked_word_errors_take_a_mask_for_any_one_word() -> None:
    from pipeline.evaluation.measures import masked_word_errors

    assert masked_word_errors("This is Anna Lee speaking.", "This is [PERSON] [PERSON] speaking.") == (0, 5)
    assert masked_word_errors("This is Anna Lee speaking.", "This is [PERSON] speaking.") == (1, 5)  # one mask, two words
    assert masked_word_errors("my card ends in seven", "my car ends in [NUMBER]") == (1, 5)
    assert masked_word_errors("", "") == (0, 0)
