"""Cross-talk handling keeps a party's own words spoken over the other party (real audio).

The call is built from the stereo sample call c001 (agent left, customer right): the agent's
own "Could you please confirm your account number?" (left channel, 21.1-22.8 s) is spoken
again at 14.3 s, over the end of the customer's long first turn (right channel, to about
15.4 s), with its bleed onto the customer's channel at the call's own coupling (-27 dB). The
agent's channel is recorded 20 dB quieter than the customer's (a quiet headset), so over the
overlap the agent's channel is mostly 15 dB or more below the customer's: the plain level test
took the agent's words for the customer's bleed, muted them and dropped them, and the
interruption went with them.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLES
from pipeline.ingest import audio
from pipeline.interaction.utterances import Utterance, Word
from pipeline.speakers.stage import SpeakerOptions, channel_levels, check_channels, drop_crosstalk

SR = 16000
AT_S = 14.3
"""Where the agent's question starts: inside the customer's turn."""
PHRASE_S = (21.1, 22.8)
"""The agent's "Could you please confirm your account number?" in c001 (left channel)."""
AGENT_GAIN = 0.1
"""The agent's channel 20 dB down."""
COUPLING = 10 ** (-27 / 20)
"""The agent's bleed onto the customer's channel, as measured on c001."""

QUESTION = [("Could", 14.38, 14.48), ("you", 14.48, 14.68), ("please", 14.68, 14.92), ("confirm", 14.92, 15.16),
            ("your", 15.16, 15.46), ("account", 15.46, 15.7), ("number?", 15.7, 16.12)]
"""The question's words where the recogniser (tiny.en) times them in this call."""


def overlapped_call() -> np.ndarray:
    """The first 20 s of c001 with the agent's question over the customer (module docstring)."""
    _, stereo = audio.load(SAMPLES / "c001.wav")
    phrase = stereo[0, int(PHRASE_S[0] * SR) : int(PHRASE_S[1] * SR)]
    call = stereo[:, : 20 * SR].copy()
    at = int(AT_S * SR)
    call[0, at : at + phrase.size] += phrase
    call[1, at : at + phrase.size] += COUPLING * phrase
    call[0] *= AGENT_GAIN
    return call.astype(np.float32)


def _mean_db(levels: np.ndarray, channel: int, start: float, end: float) -> float:
    a, b = int(start * 50), int(np.ceil(end * 50))
    return float(10 * np.log10(np.mean(10 ** (levels[channel, a:b] / 10))))


def test_own_words_over_the_other_party_are_neither_muted_nor_dropped():
    call = overlapped_call()
    raw_levels = channel_levels(call)
    margin = SpeakerOptions().crosstalk_margin_db
    # the case at hand: over most of the question the agent's channel is at least the margin
    # below the customer's, which the plain level test called bleed
    quieter = [w for w, s, e in QUESTION if _mean_db(raw_levels, 0, s, e) < _mean_db(raw_levels, 1, s, e) - margin]
    assert len(quieter) >= 4, quieter

    muted, check = check_channels(call.copy(), SpeakerOptions())
    assert check.kind == "stereo" and check.bleed is not None and check.crosstalk_muted
    assert check.crosstalk_s[0] > 5.0  # the customer's bleed on the agent's channel is still muted
    at, end = int(QUESTION[0][1] * SR), int(QUESTION[-1][2] * SR)
    assert np.sum(muted[0, at:end] ** 2) > 0.95 * np.sum(call[0, at:end] ** 2), "the agent's question was muted"

    question = Utterance("u1", 0, QUESTION[0][1], QUESTION[-1][2], "Could you please confirm your account number?",
                         [Word(w, s, e, 0.9) for w, s, e in QUESTION])
    # a word the recogniser might find in the customer's bleed on the agent's channel
    phantom = Utterance("u2", 0, 10.34, 10.78, "received", [Word("received", 10.34, 10.78, 0.9)])
    customer = Utterance("u3", 1, 13.18, 14.16, "almost twice", [Word("almost", 13.18, 13.56, 0.9),
                                                                 Word("twice", 13.56, 14.16, 0.9)])
    kept, dropped = drop_crosstalk([question, phantom, customer], muted, margin, check.frame_levels, check.bleed)
    assert dropped == 1
    assert [(u.channel, [w.word for w in u.words]) for u in kept] == [
        (0, [w for w, _, _ in QUESTION]), (1, ["almost", "twice"])]


@pytest.mark.slow
def test_an_agent_question_over_the_customer_survives_and_counts_as_an_interruption():
    """The whole speech stage on the overlapped call: the agent's question is transcribed on the
    agent's channel, kept, given to the agent, and the conversation metrics count the agent
    interrupting the customer (the question starts inside the customer's turn and goes on
    after it)."""
    from models.asr import load_backend
    from models.base import AsrOptions
    from models.vad import VadOptions
    from pipeline.analysis.conversation import conversation_metrics
    from pipeline.asr.transcribe import speech_regions, transcribe_call
    from pipeline.config import load_config
    from pipeline.speakers.stage import SpeakerStage

    config = load_config(None)
    call = overlapped_call()
    samples, check = check_channels(call.copy(), config.speakers)
    assert check.kind == "stereo"
    regions = {ch: speech_regions(samples[ch], VadOptions()) for ch in range(2)}
    utterances = transcribe_call(samples, load_backend(AsrOptions(), threads=2), VadOptions(), regions)
    stage = SpeakerStage(config.speakers, config.diarization, config.roles, 2)
    utterances, block = stage.run(utterances, samples, check, {"agent_channel": "left"}, None, regions)

    said = [w.word.strip(",.?").lower() for u in utterances if u.role == "agent" and u.channel == 0
            for w in u.words if AT_S - 0.3 <= w.start <= QUESTION[-1][2] + 0.2]
    assert len(said) >= 6 and {"please", "confirm", "number"} <= set(said), said
    # the agent's speech turn overlaps the customer's in the written turns
    turns = block["turns"]
    assert any(s == "S0" and a <= AT_S + 0.3 and b >= 15.6 for a, b, s in turns), turns
    assert any(s == "S1" and a < AT_S and b > AT_S + 0.5 for a, b, s in turns), turns

    metrics = conversation_metrics(utterances, call.shape[1] / SR, stereo=True)
    cut_in = [i for i in metrics.interruptions if i.by == "agent" and i.over == "customer"
              and AT_S - 0.3 <= i.start <= AT_S + 0.5]
    assert cut_in and cut_in[0].overlap_s >= 0.5, metrics.interruptions
    assert metrics.interruptions_by["agent"] >= 1
