"""Scorecard detectors on hand-made calls with known answers (real packaged models)."""

from __future__ import annotations

import pytest

from pipeline.analysis.stage import AnalysisModels, AnalysisStage
from pipeline.config import Config
from pipeline.analysis.detectors import make_detector
from pipeline.analysis.detectors.context import CallContext, CallFacts, split_units
from pipeline.interaction.utterances import Utterance, Word
from pipeline.analysis.card import ItemSpec
from pipeline.analysis.scorecard import load_scorecard


def utt(i: int, role: str, start: float, text: str, wps: float = 3.0) -> Utterance:
    """An utterance of ``role`` starting at ``start``, its words evenly spread at ``wps``."""
    words = []
    t = start
    for w in text.split():
        words.append(Word(w, round(t, 3), round(t + 0.8 / wps * 2, 3), 0.9))
        t += 1.0 / wps
    return Utterance(f"u{i:04d}", 0 if role == "agent" else 1, start, words[-1].end, text, words,
                     "S0" if role == "agent" else "S1", role)


def call(*turns: tuple[str, float, str], company: str | None = "Northwind Power", stereo: bool = True) -> list[Utterance]:
    return [utt(i, role, start, text) for i, (role, start, text) in enumerate(turns, 1)]


@pytest.fixture(scope="module")
def models():
    return AnalysisModels(Config(), threads=2)


@pytest.fixture(scope="module")
def card():
    return {i.id: i for i in load_scorecard().items}


def answer(card, models, item_id: str, utterances: list[Utterance], company: str | None = "Northwind Power",
           stereo: bool = True, duration: float | None = None):
    facts = CallFacts(duration or max(u.end for u in utterances) + 1, stereo, {}, company)
    return make_detector(card[item_id])(CallContext(utterances, facts, models))


def test_units_are_sentences_with_word_times():
    u = utt(1, "agent", 10.0, "Thanks for holding. Is that okay?")
    units = split_units(u, 0)
    assert [x.text for x in units] == ["Thanks for holding.", "Is that okay?"]
    assert units[0].start == 10.0 and units[1].start == u.words[3].start and units[1].question
    assert units[0].norm == "thanks for holding" and units[1].word_range == (3, 5)


def test_greeting_needs_the_company_within_the_first_30_seconds(card, models):
    opening = call(("agent", 1.0, "Good afternoon, you're through to Northwind Power, how can I help?"),
                   ("customer", 5.0, "Hi, I have a question."))
    d = answer(card, models, "opening.greeting", opening)
    assert d.answer == "yes" and d.evidence[0].utterance_id == "u0001" and "company named" in d.evidence[0].rule
    assert answer(card, models, "opening.greeting", opening, company="Contoso Telecom").answer == "no"
    late = call(("customer", 1.0, "Hello? Hello?"), ("agent", 40.0, "Thank you for calling Northwind Power."))
    d = answer(card, models, "opening.greeting", late)
    assert d.answer == "no" and "first 30 s" in d.looked_for


def test_anything_else_is_found_when_reworded(card, models):
    closing = call(("agent", 1.0, "Hello, Northwind Power."), ("customer", 3.0, "Hi, my bill is wrong."),
                   ("agent", 30.0, "I've fixed that now. Was there something more I could do for you today?"),
                   ("customer", 36.0, "No thanks."))
    d = answer(card, models, "closing.anything_else", closing)
    assert d.answer == "yes" and d.evidence[0].start >= 30.0
    silent = call(("agent", 1.0, "Hello, Northwind Power."), ("agent", 30.0, "Right, bye."))
    d = answer(card, models, "closing.anything_else", silent)
    assert d.answer == "no" and d.evidence and d.evidence[0].rule.startswith("closest")


def test_prohibited_phrases_fail_and_polite_calls_pass(card, models):
    rude = call(("customer", 1.0, "This is the third time I've called!"), ("agent", 4.0, "Sir, you need to calm down."))
    d = answer(card, models, "courtesy.no_prohibited", rude)
    assert d.answer == "no" and "calm down" in d.evidence[0].rule
    polite = call(("customer", 1.0, "This is the third time I've called!"),
                  ("agent", 4.0, "I'm so sorry, let me look at this for you right away."))
    assert answer(card, models, "courtesy.no_prohibited", polite).answer == "yes"


def test_agent_name_from_introductions_but_not_from_common_words(card, models):
    named = call(("agent", 1.0, "Thanks for calling, my name is Priya, how can I help?"))
    assert answer(card, models, "opening.agent_name", named).answer == "yes"
    speaking = call(("agent", 1.0, "Hello, Northwind Power, Tomasz speaking."))
    assert answer(card, models, "opening.agent_name", speaking).answer == "yes"
    no_apostrophe = call(("agent", 1.0, "Hello, thanks for calling Clearview my names Nathan. How can I help?"))
    assert answer(card, models, "opening.agent_name", no_apostrophe).answer == "yes"  # as the recogniser writes it
    unnamed = call(("agent", 1.0, "Hello, I'm sorry for the wait, this is about your bill, I'm happy to help."))
    assert answer(card, models, "opening.agent_name", unnamed).answer == "no"


def test_customer_name_used_by_the_agent(card, models):
    turns = [("agent", 1.0, "Hello, Northwind Power, Dana speaking."), ("customer", 4.0, "Hi, this is Graham Whitfield.")]
    used = call(*turns, ("agent", 8.0, "Thanks Graham, what can I do for you?"))
    d = answer(card, models, "courtesy.customer_name", used)
    assert d.answer == "yes" and d.evidence[0].utterance_id == "u0003"
    unused = call(*turns, ("agent", 8.0, "Okay, what can I do for you?"))
    assert answer(card, models, "courtesy.customer_name", unused).answer == "no"


def test_hold_etiquette_na_without_a_hold_and_needs_announcement_and_thanks(card, models):
    base = [("agent", 1.0, "Hello, Northwind Power."), ("customer", 3.0, "Hi, my meter reading looks wrong.")]
    good = call(*base, ("agent", 6.0, "Let me check that, please bear with me for a moment."),
                ("agent", 20.0, "Thank you for holding. I've corrected the reading."))
    d = answer(card, models, "resolution.hold_etiquette", good)
    assert d.answer == "yes" and any("announced" in e.rule for e in d.evidence)
    other_words = call(*base, ("agent", 6.0, "I need to check with the lab. Stay on the line for me."),
                       ("agent", 20.0, "Thanks for being so patient, it's sorted."))
    assert answer(card, models, "resolution.hold_etiquette", other_words).answer == "yes"
    unannounced = call(*base, ("agent", 6.0, "Okay."), ("agent", 20.0, "Thank you for holding, all done."))
    assert answer(card, models, "resolution.hold_etiquette", unannounced).answer == "no"
    unthanked = call(*base, ("agent", 6.0, "Let me check that, one moment."), ("agent", 20.0, "Right, all done."))
    assert answer(card, models, "resolution.hold_etiquette", unthanked).answer == "no"
    none = call(*base, ("agent", 6.5, "I can fix that for you now."))
    assert answer(card, models, "resolution.hold_etiquette", none).answer == "na"


def test_dead_air_and_interruptions_from_the_timing(card, models):
    quiet = call(("agent", 1.0, "Hello there."), ("customer", 3.0, "Hi."), ("agent", 18.0, "Sorry, still here."))
    d = answer(card, models, "experience.dead_air", quiet)
    assert d.answer == "no" and d.evidence[0].end - d.evidence[0].start > 10
    fine = call(("agent", 1.0, "Hello there."), ("customer", 3.0, "Hi."), ("agent", 5.0, "How can I help?"))
    assert answer(card, models, "experience.dead_air", fine).answer == "yes"
    long_turn = "I have been trying to reach someone about my account for a very long time now and nobody answers"
    talked_over = [("customer", 1.0, long_turn), ("agent", 3.0, "Yes yes, I know, look, what is the account number?"),
                   ("customer", 9.0, long_turn), ("agent", 11.0, "Right, right, just give me the number please now."),
                   ("customer", 18.0, "Fine."), ("agent", 20.0, "Thanks.")]
    d = answer(card, models, "experience.interruptions", call(*talked_over))
    assert d.answer == "no" and d.details["count"] == 2


def test_empathy_is_na_when_the_customer_voices_no_problem(card, models):
    request = call(("agent", 1.0, "Hello, Northwind Power."), ("customer", 3.0, "Hi, I'd like to update my email address."),
                   ("agent", 7.0, "Of course, what is the new one?"))
    assert answer(card, models, "courtesy.empathy", request).answer == "na"
    problem = [("agent", 1.0, "Hello, Northwind Power."),
               ("customer", 3.0, "My heating has been off for two days and I'm really fed up.")]
    kind = call(*problem, ("agent", 9.0, "Oh no, I'm so sorry to hear that, that sounds awful."))
    d = answer(card, models, "courtesy.empathy", kind)
    assert d.answer == "yes"
    cold = call(*problem, ("agent", 9.0, "What is your account number?"))
    assert answer(card, models, "courtesy.empathy", cold).answer == "no"
    for sympathy in ("Ooh, that's not nice at all. Let's get it booked in.", "What a mess to come home to.",
                     "I'm sorry you've been left without heat."):
        assert answer(card, models, "courtesy.empathy", call(*problem, ("agent", 9.0, sympathy))).answer == "yes", sympathy
    polite = call(*problem, ("agent", 9.0, "Sorry, could you repeat the account number?"))
    assert answer(card, models, "courtesy.empathy", polite).answer == "no"


def test_customer_sentiment_at_the_end(card, models):
    happy = call(("customer", 1.0, "My refund is late."), ("agent", 4.0, "I've sent it now."),
                 ("customer", 8.0, "Oh brilliant, thank you so much, that's a relief."))
    assert answer(card, models, "experience.customer_sentiment_end", happy).answer == "yes"
    angry = call(("customer", 1.0, "My refund is late."), ("agent", 4.0, "There is nothing I can do."),
                 ("customer", 8.0, "This is absolutely useless, I'm furious and I'm cancelling."))
    d = answer(card, models, "experience.customer_sentiment_end", angry)
    assert d.answer == "no" and d.evidence[-1].utterance_id == "u0003"


def test_the_stage_answers_every_item_scores_and_redacts_evidence():
    stage = AnalysisStage(Config(), threads=2)
    utterances = call(("agent", 1.0, "Thank you for calling Northwind Power, my name is Dana."),
                      ("customer", 4.0, "Hi Dana, this is Graham Whitfield, my card number is 4111 1111 1111 1111."),
                      ("agent", 12.0, "Thanks Graham. Is there anything else I can help you with?"),
                      ("customer", 16.0, "No, that's all, thanks."), ("agent", 18.0, "Thank you for calling, bye."))
    blocks, written, spans = stage.run(utterances, CallFacts(20.0, True, {}, "Northwind Power"))
    items = {i["id"]: i for i in blocks["scorecard"]["items"]}
    assert list(items) == [i.id for i in stage.card.items]
    assert all(i["answer"] in ("yes", "no", "na") and 0 <= i["confidence"] <= 1 for i in items.values())
    assert items["opening.greeting"]["answer"] == "yes" and items["closing.anything_else"]["answer"] == "yes"
    assert blocks["scorecard"]["score"]["normalized"] is not None
    assert {s.type for s in spans} >= {"CREDIT_CARD"}
    text = " ".join(u.text for u in written)
    assert "4111" not in text and "[CREDIT_CARD]" in text
    for item in items.values():
        for e in item["evidence"]:
            assert "4111" not in e["quote"]
    # the names found as PII are masked in the detectors' rule texts too, not only in the quotes
    import json

    assert any(s.type == "PERSON" for s in spans)
    dumped = json.dumps(blocks["scorecard"])
    assert "Whitfield" not in dumped and "[PERSON]" in dumped
    assert blocks["sentiment"]["customer_end"] is not None and len(blocks["sentiment"]["quarters"]) == 4
    assert blocks["metrics"]["talk_s"]["agent"] > 0


def test_company_found_when_the_recogniser_splits_or_mishears_part_of_it(card, models):
    split = call(("agent", 1.0, "Good morning, North wind Power, how can I help?"))
    assert answer(card, models, "opening.greeting", split).answer == "yes"
    half = call(("agent", 1.0, "Good morning, Northwend Powder, how can I help?"), company="Northwind Power Group")
    assert answer(card, models, "opening.greeting", half).answer == "yes"
    other = call(("agent", 1.0, "Good morning, Contoso Telecom, how can I help?"))
    assert answer(card, models, "opening.greeting", other).answer == "no"


def test_an_address_is_not_the_customers_name(card, models):
    turns = call(("agent", 1.0, "Hello, Northwind Power, Dana speaking."),
                 ("customer", 4.0, "Hi, it's about the burst main on Hazel Grove, the road is flooded."),
                 ("agent", 9.0, "Okay, so that's Hazel Grove, I'll send a crew."))
    assert answer(card, models, "courtesy.customer_name", turns).answer == "no"


def test_a_problem_stated_as_plain_fact_makes_empathy_applicable(card, models):
    fact = call(("agent", 1.0, "Hello, Northwind Power."),
                ("customer", 3.0, "There has been no power in the whole street since this morning."),
                ("agent", 8.0, "Let me check the outage map."))
    d = answer(card, models, "courtesy.empathy", fact)
    assert d.answer == "no" and "sorry" in d.looked_for


def test_quote_keeps_a_zero_length_word_at_the_end_of_the_span():
    """Whisper gives the last word of a segment no duration at times: it is still quoted."""
    from pipeline.analysis.stage import quote
    from pipeline.interaction.utterances import Utterance, Word

    u = Utterance("u1", 0, 5.8, 6.7, "Now may I, Hell?",
                  [Word("Now", 5.8, 5.81, 1), Word("may", 5.81, 6.0, 1), Word("I,", 6.0, 6.6, 1), Word("Hell?", 6.7, 6.7, 1)])
    assert quote(u, 5.8, 6.7) == "Now may I, Hell?"
    assert quote(u, 6.0, 6.6) == "I,"


def phrase_item(present: str = "no", **params) -> ItemSpec:
    return ItemSpec("courtesy.test", "Does the agent avoid it?", "courtesy", detector="phrase",
                    params={"role": "agent", "present": present, **params})


def said(models, item: ItemSpec, text: str) -> str:
    utterances = call(("agent", 1.0, text), ("customer", 6.0, "Okay, thanks."))
    return make_detector(item)(CallContext(utterances, CallFacts(20.0, True, {}, None), models)).answer


@pytest.mark.parametrize("text, answer", [
    ("I can help you with that.", "yes"),          # fuzzy 93 against the prohibited phrase: not a match
    ("No, I can help you with that.", "yes"),      # "no" answering the question does not negate
    ("I cannot help you with that.", "no"),
    ("I cant help you with that.", "no"),          # recogniser spelling without the apostrophe
    ("I can not help you with that.", "no"),
])
def test_a_phrase_never_matches_across_a_negation(models, text, answer):
    assert said(models, phrase_item(phrases=["i can't help you"], fuzzy_threshold=90), text) == answer


def test_will_and_wont_do_and_dont_are_told_apart(models):
    wont = phrase_item(phrases=["i won't do that"], fuzzy_threshold=80)
    assert said(models, wont, "I will do that for you now.") == "yes"
    assert said(models, wont, "I wont do that for you now.") == "no"
    will = phrase_item("yes", phrases=["i will do that"], fuzzy_threshold=80)
    assert said(models, will, "I won't do that for you now.") == "no"
    assert said(models, will, "Sure, I will do that for you now.") == "yes"
    assert said(models, phrase_item("yes", phrases=["do"], fuzzy_threshold=90), "Don't.") == "no"
    assert said(models, phrase_item("yes", phrases=["don't"], fuzzy_threshold=90), "Do.") == "no"
    assert said(models, phrase_item("yes", phrases=["help you"]), "Sorry, I can't help you.") == "no"


def test_semantic_matching_compares_a_unit_with_examples_of_its_own_polarity(models, card):
    item = phrase_item(examples=["I won't do that for you."], semantic_threshold=0.7)  # cosine 0.73 with "I will"
    assert said(models, item, "I will not do that for you.") == "no"
    assert said(models, item, "I will do that for you.") == "yes"
    both = phrase_item("yes", examples=["I will do that for you.", "I won't do that for you."], semantic_threshold=0.8)
    assert said(models, both, "I will not do that for you.") == "yes"
    # the template's prohibited example "I don't care what you were told." (cosine 0.81, threshold 0.78)
    assert said(models, card["courtesy.no_prohibited"], "I do care what you were told.") == "yes"
    assert said(models, card["courtesy.no_prohibited"], "I don't care what you were told.") == "no"


def test_a_phrase_matcher_is_compiled_once_per_item_and_slot_values(models):
    from pipeline.analysis.detectors.phrases import matcher_for

    item = phrase_item(present="yes", phrases=["thank you for calling {company}"])
    detector = make_detector(item)
    utterances = call(("agent", 1.0, "Thank you for calling Northwind Power."), ("customer", 6.0, "Hi."))

    def context(company: str | None) -> CallContext:
        return CallContext(utterances, CallFacts(20.0, True, {}, company), models)

    northwind, contoso = context("Northwind Power"), context("Contoso Telecom")
    assert matcher_for(detector.params, northwind) is matcher_for(detector.params, context("Northwind Power"))
    assert matcher_for(detector.params, contoso) is not matcher_for(detector.params, northwind)
    assert [detector(c).answer for c in (northwind, contoso, northwind, context(None))] == ["yes", "no", "yes", "no"]
