"""PII detection and redaction: spoken numbers of every type, names through the packaged spaCy
model, numbers that are not personal data, redacted words and audio."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import soundfile as sf

from pipeline.ingest.audio import DiskChannel, DiskRecording
from pipeline.errors import ConfigError
from pipeline.pii.text import PiiOptions, PiiSpan, find_pii, masks_audio, redact_audio, redact_utterances, validate
from pipeline.interaction.utterances import Utterance, Word


def utt(text: str, uid: str = "u1", start: float = 0.0, speaker: str = "S1", channel: int = 0) -> Utterance:
    """An utterance whose words are the text's tokens, 0.4 s each from ``start``."""
    words = [Word(w, start + 0.4 * i, start + 0.4 * i + 0.35, 0.9 - 0.01 * i) for i, w in enumerate(text.split())]
    return Utterance(uid, channel, start, words[-1].end, text, words, speaker, "customer" if speaker == "S1" else "agent")


def found(*utterances: Utterance, **options: object) -> list[tuple[str, str]]:
    """(type, words covered) of each span found."""
    by_id = {u.id: u for u in utterances}
    spans = find_pii(list(utterances), PiiOptions(**options))
    return [(s.type, " ".join(w.word for w in by_id[s.utterance_id].words[s.first_word:s.last_word + 1])) for s in spans]


def ask(question: str, answer: str) -> list[tuple[str, str]]:
    """Spans found in an agent's question and the customer's answer."""
    return found(utt(question, "u1", 0.0, "S0"), utt(answer, "u2", 10.0, "S1"))


# -- numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("before", "number"), [
    ("my card number is", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"),
    ("it's", "four one one one, one one one one, one one one one, one one one one."),
    ("it's", "four triple one, one one one one, double one double one, one triple one."),
    ("yes", "4111 1111 1111 1111"),
    ("the long number is", "5 5 5 5. 5 5 5 5, 5 5 5 5, 4 4 4 4"),
    ("it's", "5 5 5 5 5 5 five five fifty five fifty five 4 4 forty four"),
])
def test_card_numbers_said_any_way_pass_luhn(before: str, number: str) -> None:
    assert found(utt(f"{before} {number} okay")) == [("CREDIT_CARD", number)]


def test_card_number_failing_luhn_is_still_redacted_but_not_called_a_card() -> None:
    assert found(utt("it's 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2 thanks")) == [("ACCOUNT_NUMBER", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2")]
    # a card number the recogniser got one digit wrong in, said after the cue, stays a card
    assert [t for t, _ in found(utt("the card number is 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2"))] == ["CREDIT_CARD"]


def test_security_code_after_its_cue() -> None:
    assert ask("And the three digit security code on the back?", "It's seven three one.") == [
        ("CREDIT_CARD", "seven three one.")]


def test_ssn_by_grouping_or_cue() -> None:
    assert found(utt("it is one two three, four five, six seven eight nine")) == [
        ("SSN", "one two three, four five, six seven eight nine")]
    assert found(utt("my social security number is 123-45-6789.")) == [("SSN", "123-45-6789.")]


def test_phone_numbers() -> None:
    assert found(utt("call me on oh seven seven double oh nine double oh one two three please")) == [
        ("PHONE", "oh seven seven double oh nine double oh one two three")]
    assert ask("What's the best phone number to reach you?", "It's 5 5 5, 1 2 3 4.") == [("PHONE", "5 5 5, 1 2 3 4.")]
    assert found(utt("my number is 212 555 0147 okay")) == [("PHONE", "212 555 0147")]


def test_account_numbers_long_or_after_their_cue() -> None:
    assert found(utt("yes it's 7 7 2 1 9 4 and I need it today")) == [("ACCOUNT_NUMBER", "7 7 2 1 9 4")]
    assert ask("Can I take your account number, please?", "Yes, it's 4 5 six seven.") == [
        ("ACCOUNT_NUMBER", "4 5 six seven.")]
    assert found(utt("my policy number is forty two seventeen")) == [("ACCOUNT_NUMBER", "forty two seventeen")]
    assert found(utt("the order number is 8 3 1 5")) == [("ACCOUNT_NUMBER", "8 3 1 5")]
    assert found(utt("the reference is A B 1 2 3 4 5 6 okay")) == [("ACCOUNT_NUMBER", "A B 1 2 3 4 5 6")]


def test_a_number_continued_in_the_speakers_next_turn_is_one_number() -> None:
    first = utt("my card number is 4111 1111", "u1", 0.0)
    second = utt("1111 1111", "u2", first.end + 0.6)
    spans = find_pii([first, second])
    assert [(s.type, s.utterance_id, s.first_word, s.last_word) for s in spans] == [
        ("CREDIT_CARD", "u1", 4, 5), ("CREDIT_CARD", "u2", 0, 1)]


@pytest.mark.parametrize("said", [
    "It's twenty nine ninety nine a month.",
    "My internet has been down for three days.",
    "I'll call you back at two thirty tomorrow.",
    "I ordered 2 jackets and 3 shirts, that's 5 items.",
    "I've been a customer for 10 years and I called four times.",
    "A new one will arrive within five working days.",
    "It was 1,250 pounds in 2019, now it's $29.99 and 15 percent more.",
    "Oh, that's the second one this week.",
])
def test_numbers_that_are_not_personal_data_stay(said: str) -> None:
    assert found(utt(said)) == []


@pytest.mark.parametrize("number", [
    "five six seven eight nine.", "eight-two-one-nine", "4 4 8 2 1", "double two five one", "oh seven seven triple one",
])
def test_digits_read_out_one_by_one_are_masked_whatever_was_said_before(number: str) -> None:
    # the cue ("account number") is often misheard ("count number") or missing
    assert ask("Could you please confirm your count number?", f"Yes, it's {number}") == [("ACCOUNT_NUMBER", number)]
    assert found(utt(f"Sure, {number} okay")) == [("ACCOUNT_NUMBER", number)]


@pytest.mark.parametrize("said", ["It's nineteen eighty two.", "Just two three days ago.",
                                  "Four five six hundred pounds.", "Room one two three, please.",
                                  "one two three four days"])
def test_numbers_said_as_numbers_or_short_or_counted_are_not_read_out_digits(said: str) -> None:
    assert found(utt(said), min_spelled_digits=4) == []


def test_price_after_an_account_question_is_not_an_account_number() -> None:
    assert ask("Can I take your account number?", "It's 20 pounds a month, isn't it?") == []


# -- e-mails, dates, addresses -----------------------------------------------------------------

def test_emails_spoken_and_written() -> None:
    assert found(utt("my email is john dot smith at gmail dot com thanks")) == [
        ("EMAIL", "john dot smith at gmail dot com")]
    assert found(utt("send it to mary_ellis42@example.co.uk. please")) == [("EMAIL", "mary_ellis42@example.co.uk.")]
    assert found(utt("it's j.smith at hotmail.com")) == [("EMAIL", "j.smith at hotmail.com")]
    assert found(utt("it's sarah underscore jones 88 at yahoo dot co dot uk")) == [
        ("EMAIL", "sarah underscore jones 88 at yahoo dot co dot uk")]
    assert found(utt("I'm at home at the moment.")) == []


def test_date_of_birth_only_near_its_cue() -> None:
    assert ask("Could you confirm your date of birth?", "It's the fourth of May, nineteen eighty two.") == [
        ("DATE_OF_BIRTH", "fourth of May, nineteen eighty two.")]
    assert found(utt("I was born on March 3rd 1975 in Leeds")) == [("DATE_OF_BIRTH", "March 3rd 1975")]
    assert found(utt("my date of birth is 04/05/1982.")) == [("DATE_OF_BIRTH", "04/05/1982.")]
    assert found(utt("The engineer will come on the fourth of May.")) == []
    assert found(utt("I may need to call back.")) == []


def test_addresses() -> None:
    assert found(utt("I live at 24 Willow Lane, Riverside.")) == [("ADDRESS", "24 Willow Lane, Riverside.")]
    assert found(utt("it's twenty four Willow Lane.")) == [("ADDRESS", "twenty four Willow Lane.")]
    assert found(utt("I live at 15 Baker Street, London NW1 6XE.")) == [("ADDRESS", "15 Baker Street, London NW1 6XE.")]
    assert ask("And the first line of your address?", "It's Old Mill Road.") == [("ADDRESS", "Old Mill Road.")]
    assert found(utt("the postcode is SW1A 1AA.")) == [("ADDRESS", "SW1A 1AA.")]
    assert ask("What's your zip code?", "It's 9 0 2 1 0.") == [("ADDRESS", "9 0 2 1 0.")]
    assert found(utt("It's just down the road from me.")) == []


# -- names -------------------------------------------------------------------------------------

def test_names_by_ner_and_introductions_and_repeats() -> None:
    calls = [utt("Thank you for calling, you're speaking with Marcus.", "u1", 0.0, "S0"),
             utt("Hi, my name is Kevin Moore. My internet is down.", "u2", 5.0),
             utt("I'm sorry to hear that, Kevin.", "u3", 10.0, "S0")]
    assert found(*calls) == [("PERSON", "Marcus."), ("PERSON", "Kevin Moore."), ("PERSON", "Kevin.")]


def test_a_name_is_masked_wherever_it_recurs_in_the_call() -> None:
    # the recogniser's own spellings: "Marcus" heard as "Marka" in the introduction, "Hi" as "Fine"
    calls = [utt("Good morning. My name is Marka. How can I help you today?", "u1", 0.0, "S0"),
             utt("Fine Marcus this is Andrew Scott. I just received my bill", "u2", 5.0),
             utt("andrew.", "u3", 12.0, "S0"),
             utt("Thank you Andrew, I will grant you a refund. Marketing will call.", "u4", 15.0, "S0")]
    assert found(*calls) == [("PERSON", "Marka."), ("PERSON", "Marcus"), ("PERSON", "Andrew Scott."),
                             ("PERSON", "andrew."), ("PERSON", "Andrew,")]


def test_an_introduced_name_the_small_model_calls_a_nationality_is_still_a_name() -> None:
    # spaCy's small model labels "Priya" NORP; after "speaking with" it is the agent's name,
    # masked there and in every later greeting
    calls = [utt("Thanks for calling Bluewater Insurance, you're speaking with Priya.", "u1", 0.0, "S0"),
             utt("Hi Priya, it's Desmond Okafor here.", "u2", 5.0),
             utt("No thanks Priya, bye.", "u3", 9.0)]
    assert found(*calls) == [("PERSON", "Priya."), ("PERSON", "Priya,"), ("PERSON", "Desmond Okafor"),
                             ("PERSON", "Priya,")]


def test_an_introduced_name_goes_on_over_initials_and_misheard_words() -> None:
    # "Fiona Grant" heard as "P. Only Grant.": the whole name is masked, and its surname later
    calls = [utt("Hi, my name is P. Only Grant. I think I've lost my credit card.", "u1"),
             utt("Thank you, Ms Grant. Only one card?", "u2", 8.0, "S0")]
    assert found(*calls) == [("PERSON", "P. Only Grant."), ("PERSON", "Grant.")]


def test_a_name_given_in_answer_to_a_name_question() -> None:
    assert ask("And your mother's maiden name?", "Morgan.") == [("PERSON", "Morgan.")]
    assert ask("Can I take your full name, please?", "Sure, no problem.") == []


def test_names_without_spacy_use_the_patterns() -> None:
    assert found(utt("hello, this is Oliver Grant speaking from the bank"), names=False) == [
        ("PERSON", "Oliver Grant")]


def test_words_that_follow_name_cues_but_are_not_names_stay() -> None:
    said = [utt("This is unacceptable, I'm really angry.", "u1"), utt("Hello, you're through to Harbor Bank.", "u2", 5.0),
            utt("This is Harbor Bank, how can I help?", "u3", 9.0, "S0")]
    assert found(*said) == []


def test_options_choose_types_and_switch_off() -> None:
    said = utt("I'm Alan Chen, my email is alan at example dot com and my number is 0 7 7 0 0 9 0 0 1 2 3")
    assert [t for t, _ in found(said)] == ["PERSON", "EMAIL", "PHONE"]
    assert [t for t, _ in found(said, entities=["EMAIL"])] == ["EMAIL"]
    assert found(said, enabled=False) == []


# -- records and redaction ---------------------------------------------------------------------

def test_span_dict_carries_no_raw_text() -> None:
    said = utt("My name is Kevin Moore and my card is 4111 1111 1111 1111, email kev at mail dot com")
    spans = find_pii([said])
    assert {s.type for s in spans} == {"PERSON", "CREDIT_CARD", "EMAIL"}
    dumped = json.dumps([s.to_dict() for s in spans])
    for secret in ("Kevin", "Moore", "4111", "kev", "mail"):
        assert secret not in dumped
    assert set(spans[0].to_dict()) == {"type", "utterance_id", "first_word", "last_word", "start", "end", "detector"}


def test_redaction_keeps_words_times_and_text_consistent() -> None:
    calls = [utt("My name is Kevin Moore.", "u1", 0.0), utt("How can I help?", "u2", 4.0, "S0"),
             utt("my account number is 7 7 2 1 9 4 thanks", "u3", 8.0)]
    before = copy.deepcopy(calls)
    spans = find_pii(calls)
    redacted = redact_utterances(calls, spans)
    assert calls == before
    assert redacted[1] is calls[1]
    assert [w.word for w in redacted[0].words] == ["My", "name", "is", "[PERSON]"]
    assert redacted[2].text == "my account number is [ACCOUNT_NUMBER] thanks"
    for original, new in zip(calls, redacted):
        assert new.text == " ".join(w.word for w in new.words)
        assert (new.start, new.end, new.id) == (original.start, original.end, original.id)
    masked = redacted[2].words[4]
    digits = calls[2].words[4:10]
    assert (masked.start, masked.end) == (digits[0].start, digits[-1].end)
    assert masked.probability == min(w.probability for w in digits)
    span = next(s for s in spans if s.utterance_id == "u3")
    assert (span.start, span.end) == (masked.start, masked.end)


def test_utterance_without_words_is_redacted_by_pattern() -> None:
    bare = Utterance("u1", 0, 2.0, 6.0, "sure, it's john dot smith at gmail dot com okay", [])
    spans = find_pii([bare], PiiOptions(names=False))
    assert [(s.type, s.start, s.end) for s in spans] == [("EMAIL", 2.0, 6.0)]
    assert redact_utterances([bare], spans)[0].text == "sure, it's [EMAIL] okay"


# -- audio -------------------------------------------------------------------------------------

def _speechlike(seconds: float, channels: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * 16000)) / 16000
    return np.stack([(0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) + 0.05 * rng.standard_normal(t.size))
                     for c in range(channels)]).astype(np.float32)


def _inside(n: int, spans: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for a, b in spans:
        mask[int(a * 16000):int(b * 16000)] = True
    return mask


@pytest.mark.parametrize("method", ["tone", "silence"])
def test_audio_redaction_changes_only_the_spans_on_their_channel(tmp_path, method: str) -> None:
    samples = _speechlike(4.0, 2)
    spans = [PiiSpan("PHONE", "u2", 0, 3, 1.0, 1.5, "digits"), PiiSpan("PERSON", "u1", 2, 2, 2.5, 2.8, "ner")]
    options = PiiOptions(audio_method=method, audio_pad_s=0.1)
    seconds = redact_audio(samples, spans, tmp_path / "r.wav", options, {"u1": 0, "u2": 1})
    out, rate = sf.read(tmp_path / "r.wav", dtype="float32", always_2d=True)
    out = out.T
    assert rate == 16000 and out.shape == samples.shape
    assert seconds == pytest.approx(0.7 + 0.5, abs=1e-3)
    for ch, (a, b) in ((1, (0.9, 1.6)), (0, (2.4, 2.9))):
        inside = _inside(samples.shape[1], [(a, b)])
        assert np.abs(out[ch, ~inside] - samples[ch, ~inside]).max() < 1e-4
        if method == "silence":
            assert np.abs(out[ch, inside]).max() < 1e-4
        else:
            spectrum = np.abs(np.fft.rfft(out[ch, inside]))
            assert np.fft.rfftfreq(inside.sum(), 1 / 16000)[spectrum.argmax()] == pytest.approx(1000, abs=5)
            assert 0.05 < np.sqrt(np.mean(out[ch, inside] ** 2)) < 0.1


def test_audio_redaction_reads_a_disk_recording_block_by_block(tmp_path) -> None:
    samples = _speechlike(70.0, 1)
    samples[0].astype("<f4").tofile(tmp_path / "channel0.f32")
    recording = DiskRecording([DiskChannel(tmp_path / "channel0.f32", samples.shape[1])])
    spans = [PiiSpan("ACCOUNT_NUMBER", "u9", 0, 5, 29.5, 31.0, "digits")]  # across a block edge
    redact_audio(recording, spans, tmp_path / "r.wav", PiiOptions(audio_method="silence", audio_pad_s=0.0), {})
    out, _ = sf.read(tmp_path / "r.wav", dtype="float32")
    inside = _inside(samples.shape[1], [(29.5, 31.0)])
    assert np.abs(out[inside]).max() < 1e-4
    assert np.abs(out[~inside] - samples[0, ~inside]).max() < 1e-4


# -- options -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("entities", ["CREDIT_CARD", "IBAN"], "CREDIT_CARD"), ("audio_method", "beep", "tone, silence"),
    ("min_account_digits", 2, "3 to 20"), ("audio_pad_s", -0.1, "0 to 2"), ("redact", "yes", "true or false"),
    ("min_spelled_digits", 1, "2 to 20"), ("redact_audio", "yes", "null"),
])
def test_validate_names_the_key_and_what_is_allowed(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ConfigError, match=rf"pii\.{field}:.*{allowed}"):
        validate(PiiOptions(**{field: value}))
    validate(PiiOptions())


def test_redacted_text_comes_with_masked_audio_by_default() -> None:
    from pipeline.config import load_config

    assert masks_audio(PiiOptions()) and masks_audio(load_config().pii)
    assert not masks_audio(PiiOptions(redact=False)) and not masks_audio(PiiOptions(enabled=False))
    assert masks_audio(PiiOptions(redact=False, redact_audio=True))
    assert not masks_audio(PiiOptions(redact_audio=False))


def test_the_company_name_is_no_persons_but_the_agents_name_is() -> None:
    greeting = utt("Good afternoon, Keystone Credit, Harriet speaking.", "u1", 0.0, "S0")
    names = [(s.type, " ".join(w.word for w in greeting.words[s.first_word:s.last_word + 1]))
             for s in find_pii([greeting], PiiOptions(), organisation="Keystone Credit")]
    assert names == [("PERSON", "Harriet")]


def test_a_conversation_in_other_words_and_names() -> None:
    """Written after the detector was built, with names, numbers and wording of its own."""
    calls = [utt("Good afternoon, Redline Telecom, Tomasz speaking.", "u1", 0.0, "S0"),
             utt("Hello, my name is Greta Lindqvist.", "u2", 4.0),
             utt("Hi Greta, what's the mobile number on the account?", "u3", 8.0, "S0"),
             utt("Oh seven nine double four, five five one, two eight three.", "u4", 12.0),
             utt("Can you also update my email, it's greta dot l at mailbox dot com.", "u5", 18.0),
             utt("Yes, it will. Grant us a day or two. We'll mark it as done.", "u6", 24.0, "S0"),
             utt("Mark will call you back. Only one card is on file.", "u7", 30.0, "S0")]
    by_id = {u.id: u for u in calls}
    spans = find_pii(calls, PiiOptions(), organisation="Redline Telecom")
    got = [(s.type, " ".join(w.word for w in by_id[s.utterance_id].words[s.first_word:s.last_word + 1])) for s in spans]
    assert [g[1] for g in got] == ["Tomasz", "Greta Lindqvist.", "Greta,",
                                   "Oh seven nine double four, five five one, two eight three.",
                                   "greta dot l at mailbox dot com.", "Mark"]
    assert got[4][0] == "EMAIL" and {t for t, _ in got[:3]} == {"PERSON"}


def test_the_name_cue_is_looked_for_only_after_a_word_it_can_end_with() -> None:
    """_names runs the name-cue expression only when the word before ends as a cue does
    (_NAME_CUE_ENDS): whenever the expression finds a cue, that holds."""
    import random

    from pipeline.pii.text import _NAME_CUE, _NAME_CUE_ENDS

    cues = ["my name is", "my name's", "name is", "name's", "the name on the account is", "account holder is",
            "this is", "i'm", "i am", "speaking with", "speaking to", "call me", "mr", "mrs", "ms", "miss", "dr",
            "mister"]
    vocab = ["hello", "yes", "is", "his", "this", "am", "name", "dream", "tom", "to", "me", "home", "mrs", "ms", "",
             "x", "it's", "i'm", "with", "account", "holder", "-", "we're", "dr.", "is\n"]
    rng = random.Random(3)
    found = 0
    for _ in range(20000):
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 5))]
        if rng.random() < 0.5:
            words += rng.choice(cues).split()
        words = words[-6:]
        text = " ".join(words)
        if _NAME_CUE.search(text):
            found += 1
            assert words and words[-1].rstrip("\n").endswith(_NAME_CUE_ENDS), text
    assert found > 5000
