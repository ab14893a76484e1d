"""Conversation metrics on hand-made calls with known answers, and on the gold utterances of
the sample calls (whose interruptions follow from their times)."""

from __future__ import annotations

import json

import pytest

from conftest import label, manifest_rows
from pipeline.analysis.conversation import ConversationOptions, conversation_metrics, validate
from pipeline.errors import ConfigError
from pipeline.interaction.utterances import Utterance, Word

_ids = iter(range(1, 10_000))


def utt(role: str | None, *words: tuple[str, float, float], channel: int = 0) -> Utterance:
    """An utterance of ``(word, start, end)`` words."""
    ws = [Word(w, s, e, 0.9) for w, s, e in words]
    text = " ".join(w.word for w in ws)
    return Utterance(f"u{next(_ids):04d}", channel, ws[0].start, ws[-1].end, text, ws, None, role)


def spoken(role: str, text: str, start: float, step: float = 0.4, channel: int = 0) -> Utterance:
    """``text`` said from ``start``, one word every ``step`` seconds, each word lasting
    ``step - 0.05`` (pauses of 0.05 s inside the speech)."""
    times = [round(start + i * step, 3) for i in range(len(text.split()))]
    words = [(w, t, round(t + step - 0.05, 3)) for w, t in zip(text.split(), times)]
    return utt(role, *words, channel=channel)


def test_talk_time_bridges_small_pauses_and_counts_words() -> None:
    agent = utt("agent", ("Hello,", 0.0, 1.0), ("there.", 1.2, 2.0))  # 0.2 s pause: bridged
    customer = utt("customer", ("Hi.", 3.0, 3.5), ("Yes.", 4.5, 5.0))  # 1.0 s pause: not bridged
    m = conversation_metrics([agent, customer], 10.0, stereo=True)
    assert m.talk_s["agent"] == pytest.approx(2.0)
    assert m.talk_s["customer"] == pytest.approx(1.0)
    assert m.talk_ratio["agent"] == pytest.approx(2 / 3)
    assert m.non_talk_s == pytest.approx(7.0)
    assert m.overlap_s == 0.0
    assert m.words_per_minute["agent"] == pytest.approx(2 / (2.0 / 60))
    assert m.turns == {"agent": 1, "customer": 1}
    assert m.longest_silence_s == pytest.approx(1.0)
    assert m.silences == []  # 1.0 s is below min_silence_s


def test_silences_list_roles_and_leave_out_the_edges() -> None:
    calls = [
        utt("agent", ("Let", 1.0, 1.3), ("me", 1.3, 1.5), ("check.", 1.5, 2.0)),
        utt("agent", ("Right.", 5.0, 5.5)),
        utt("customer", ("Okay.", 8.0, 8.5)),
    ]
    m = conversation_metrics(calls, 12.0, stereo=False)
    assert [(s.start, s.end, s.before_role, s.after_role) for s in m.silences] == [
        (2.0, 5.0, "agent", "agent"), (5.5, 8.0, "agent", "customer")]
    assert m.longest_silence_s == pytest.approx(3.0)
    assert m.dead_air == [] and m.hold_candidates == []
    assert m.non_talk_s == pytest.approx(12.0 - 1.0 - 0.5 - 0.5)  # edges count as non-talk time


def test_dead_air_and_hold_candidates() -> None:
    calls = [
        spoken("agent", "I will look that up for you now", 0.0),
        spoken("customer", "Sure go ahead", 3.2),  # ends 4.35
        spoken("agent", "Found it", 10.0),  # 5.65 s silence: a hold candidate
        spoken("customer", "Great thanks", 22.0),  # 11.25 s silence: dead air too
    ]
    m = conversation_metrics(calls, 25.0, stereo=True)
    assert [round(s.duration_s, 2) for s in m.hold_candidates] == [5.65, 11.25]
    assert [round(s.duration_s, 2) for s in m.dead_air] == [11.25]
    assert m.dead_air[0].before_role == "agent" and m.dead_air[0].after_role == "customer"
    assert m.longest_silence_s == pytest.approx(11.25)
    shorter = conversation_metrics(calls, 25.0, stereo=True, options=ConversationOptions(dead_air_s=12.0))
    assert shorter.dead_air == []


def test_stereo_interruption_and_backchannel() -> None:
    customer = spoken("customer", "so I called last week and they told me it would be fixed by friday but "
                      "nothing happened and now", 0.0, channel=1)  # 20 words: 0.0-7.95
    backchannel = spoken("agent", "Mhm.", 2.0)  # inside the customer's speech
    interrupting = spoken("agent", "Sorry let me stop you there I can see the fault", 6.6)  # 1.35 s before the end
    m = conversation_metrics([customer, backchannel, interrupting], 12.0, stereo=True)
    assert len(m.interruptions) == 1
    i = m.interruptions[0]
    assert (i.by, i.over, i.how) == ("agent", "customer", "overlap")
    assert i.start == pytest.approx(6.6)
    assert i.overlap_s == pytest.approx(7.95 - 6.6)
    assert (i.utterance_id, i.interrupted_utterance_id) == (interrupting.id, customer.id)
    assert "Sorry" in i.evidence
    assert m.interruptions_by == {"agent": 1, "customer": 0}
    assert m.backchannels == {"agent": 1, "customer": 0}
    assert m.turns == {"agent": 1, "customer": 1}  # the backchannel is not a turn
    assert m.overlap_s == pytest.approx(0.35 + 1.35)
    assert m.talk_s["customer"] == pytest.approx(7.95)


def test_stereo_short_overlap_at_a_turn_end_is_not_an_interruption() -> None:
    customer = spoken("customer", "that is all I wanted to ask", 0.0, channel=1)  # ends 2.75
    agent = spoken("agent", "Great I will send it today", 2.45)  # 0.3 s before the end
    m = conversation_metrics([customer, agent], 6.0, stereo=True)
    assert m.interruptions == []
    assert m.overlap_s == pytest.approx(0.3)
    longer = conversation_metrics([customer, agent], 6.0, stereo=True,
                                  options=ConversationOptions(interruption_min_overlap_s=0.25))
    assert [(i.by, i.over) for i in longer.interruptions] == [("agent", "customer")]


def test_mono_cut_off_mid_sentence_is_an_interruption() -> None:
    customer = utt("customer", ("I", 0.0, 0.2), ("have", 0.2, 0.5), ("been", 0.5, 0.8), ("waiting", 0.8, 1.3),
                   ("for", 1.3, 1.5), ("the", 1.5, 1.7))
    agent = utt("agent", ("Calm", 1.7, 2.0), ("down,", 2.0, 2.3), ("please.", 2.3, 2.8))
    m = conversation_metrics([customer, agent], 4.0, stereo=False)
    assert [(i.by, i.over, i.how, i.overlap_s) for i in m.interruptions] == [("agent", "customer", "cut-off", None)]
    assert m.interruptions[0].start == pytest.approx(1.7)
    assert m.interruptions[0].interrupted_utterance_id == customer.id
    assert "for the" in m.interruptions[0].evidence


@pytest.mark.parametrize("last_word, gap", [("today.", 0.0), ("today?", 0.0), ("today", 0.3)])
def test_mono_finished_sentence_or_pause_is_turn_taking(last_word: str, gap: float) -> None:
    customer = utt("customer", ("It", 0.0, 0.2), ("broke", 0.2, 0.6), (last_word, 0.6, 1.0))
    agent = utt("agent", ("Okay,", 1.0 + gap, 1.4 + gap), ("let", 1.4 + gap, 1.6 + gap), ("me", 1.6 + gap, 1.8 + gap),
                ("look.", 1.8 + gap, 2.2 + gap))
    assert conversation_metrics([customer, agent], 3.0, stereo=False).interruptions == []


def test_mono_backchannel_and_diarizer_flips() -> None:
    words = [("and", 0.0, 0.3), ("then", 0.3, 0.6), ("the", 0.6, 0.8), ("engineer", 0.8, 1.4)]
    back = [("mhm", 1.4, 1.7)]
    rest = [("came", 1.7, 2.0), ("round.", 2.0, 2.5)]
    backchannel = [utt("customer", *words), utt("agent", *back), utt("customer", *rest)]
    m = conversation_metrics(backchannel, 3.0, stereo=False)
    assert m.interruptions == []
    # Over mixed speech the diarizer flips back and forth: one interruption, by who holds the floor after.
    flips = [utt("customer", *words), utt("agent", ("we", 1.4, 1.6)), utt("customer", ("came", 1.6, 1.7)),
             utt("agent", ("can", 1.7, 1.9), ("send", 1.9, 2.2), ("someone", 2.2, 2.6), ("tomorrow.", 2.6, 3.2))]
    m = conversation_metrics(flips, 4.0, stereo=False)
    assert [(i.by, i.over, i.start) for i in m.interruptions] == [("agent", "customer", 1.4)]


def test_quarters_split_talk_time() -> None:
    agent = utt("agent", ("One", 0.0, 1.0), ("two", 1.0, 3.0))  # 0-3: quarter 0 (0-2) and 1 (2-4)
    customer = utt("customer", ("three", 6.5, 8.0))  # quarter 3
    m = conversation_metrics([agent, customer], 8.0, stereo=False)
    assert [(q.start, q.end) for q in m.quarters] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
    assert [q.talk_s["agent"] for q in m.quarters] == pytest.approx([2.0, 1.0, 0.0, 0.0])
    assert [q.talk_s["customer"] for q in m.quarters] == pytest.approx([0.0, 0.0, 0.0, 1.5])
    assert [q.non_talk_s for q in m.quarters] == pytest.approx([0.0, 1.0, 2.0, 0.5])
    assert m.quarters[3].talk_ratio == {"agent": 0.0, "customer": 1.0}
    assert m.quarters[2].talk_ratio == {"agent": 0.0, "customer": 0.0}


@pytest.mark.parametrize("duration", [0.0, 30.0])
def test_empty_call(duration: float) -> None:
    m = conversation_metrics([], duration, stereo=True)
    assert m.talk_s == {"agent": 0.0, "customer": 0.0}
    assert m.talk_ratio == {"agent": 0.0, "customer": 0.0}
    assert m.non_talk_s == duration
    assert m.longest_silence_s == 0.0 and m.silences == [] and m.interruptions == []
    assert m.words_per_minute == {"agent": None, "customer": None}
    assert m.turns == {"agent": 0, "customer": 0}
    assert [q.non_talk_s for q in m.quarters] == [duration / 4] * 4
    json.dumps(m.to_dict())


def test_one_party_call_and_unknown_role() -> None:
    calls = [spoken("agent", "Hello is anyone there", 1.0), utt(None, ("hello?", 9.0, 9.5))]
    m = conversation_metrics(calls, 10.0, stereo=False)
    assert m.talk_s["customer"] == 0.0 and m.words_per_minute["customer"] is None
    assert m.talk_s["unknown"] == pytest.approx(0.5)
    assert m.talk_ratio["agent"] == pytest.approx(1.55 / (1.55 + 0.5))  # four words: 1.0-2.55
    assert m.interruptions == [] and m.turns == {"agent": 1, "customer": 0, "unknown": 1}
    assert [(s.before_role, s.after_role) for s in m.silences] == [("agent", "unknown")]


def test_call_with_no_word_times_uses_utterance_spans() -> None:
    calls = [Utterance("u1", 0, 0.5, 3.5, "Thanks for calling, how can I help?", [], "S0", "agent"),
             Utterance("u2", 1, 3.0, 6.0, "My bill is wrong this month.", [], "S1", "customer")]
    m = conversation_metrics(calls, 8.0, stereo=True)
    assert m.talk_s == pytest.approx({"agent": 3.0, "customer": 3.0})
    assert m.overlap_s == pytest.approx(0.5)
    assert m.words_per_minute["agent"] == pytest.approx(7 / (3.0 / 60))
    assert [(i.by, i.overlap_s) for i in m.interruptions] == [("customer", pytest.approx(0.5))]


def test_speech_past_the_end_is_clipped_and_to_dict_rounds() -> None:
    m = conversation_metrics([utt("agent", ("Bye.", 4.0001234, 5.5))], 5.0, stereo=False)
    assert m.talk_s["agent"] == pytest.approx(0.9998766)
    d = m.to_dict()
    assert d["talk_s"]["agent"] == 1.0 and d["duration_s"] == 5.0
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(ValueError, match="duration_s"):
        conversation_metrics([], -1.0, stereo=False)


@pytest.mark.parametrize("call_id", [row["call_id"] for row in manifest_rows()])
def test_gold_sample_calls_interruptions(call_id: str) -> None:
    """On the true utterance times every overlap is visible (as on stereo): the interruptions
    are those of the rule the sample calls were made with."""
    gold = label(call_id)["utterances"]
    calls = [Utterance(f"g{n}", u["channel"], u["start"], u["end"], u["text"], [], u["speaker"], u["role"])
             for n, u in enumerate(gold)]
    m = conversation_metrics(calls, max(u["end"] for u in gold) + 0.5, stereo=True)
    expected = sorted((a["start"], a["role"]) for a in gold if any(
        c["role"] != a["role"] and c["start"] < a["start"] and c["end"] - a["start"] >= 0.5 for c in gold))
    assert sorted((i.start, i.by) for i in m.interruptions) == expected


@pytest.mark.parametrize("key, value", [
    ("min_silence_s", 0.0), ("dead_air_s", -1.0), ("hold_min_s", 0.0), ("bridge_gap_s", 2.0),
    ("bridge_gap_s", -0.1), ("interruption_min_overlap_s", 0.0), ("backchannel_max_words", -1),
    ("mono_max_gap_s", 1.5), ("mono_burst_s", -1.0),
])
def test_validate_names_the_key(key: str, value: float) -> None:
    options = ConversationOptions(**{key: value})
    with pytest.raises(ConfigError, match=f"conversation.{key}: .* use "):
        validate(options)
    with pytest.raises(ConfigError):
        conversation_metrics([], 1.0, stereo=False, options=options)


def test_default_options_are_valid() -> None:
    validate(ConversationOptions())
