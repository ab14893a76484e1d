"""Streaming transcription for live monitoring (pipeline/live/streaming.py): LocalAgreement-2
over chunks of a real call, against the batch transcript of the same audio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT
from models.asr import load_backend
from models.base import SAMPLE_RATE, AsrOptions
from models.records import Word
from models.vad import VadOptions
from pipeline.asr.transcribe import transcribe_channel
from pipeline.evaluation.measures import text_errors, wer
from pipeline.ingest import audio
from pipeline.live.streaming import LiveWord, StreamingOptions, StreamingTranscriber, loop_start
from pipeline.text.normalize import wer_text

EXCERPT_S = 32.0
"""The first 32 s of c001: both channels are silent at 32.0 s (gold: the customer stops at
31.6 s, the agent starts at 32.3 s), so the excerpt cuts no word in two. The customer's
channel (1) starts with 6.9 s of silence."""

CHANNEL = 1

MAX_WER_VS_BATCH = 0.12
"""Live against batch transcript of the same audio. Not 0: the two decode different audio
windows (the batch recogniser hears the whole channel's speech at once, the live one a buffer
of at most 15 s), and tiny.en on 8 kHz phone audio changes
words with its context. Measured on this excerpt: 0.094 (3 substitutions of 32 words,
"Marcus"/"work", "court"/"Scott", "four"/"for"; on "court"/"Scott" the live transcript is the
right one); with 20 ms and 250 ms chunks alike. Words dropped or repeated at chunk edges
would show as insertions/deletions, bounded separately below."""

MAX_INSERTIONS_DELETIONS = 2


@pytest.fixture(scope="module")
def backend():
    return load_backend(AsrOptions(), threads=2)


@pytest.fixture(scope="module")
def excerpt() -> np.ndarray:
    _, samples = audio.load(ROOT / "recordings_sample" / "c001.wav")
    return samples[CHANNEL, : int(EXCERPT_S * SAMPLE_RATE)].copy()


def stream(backend, signal: np.ndarray, chunk_ms: float, options: StreamingOptions | None = None):
    """Feed ``signal`` in chunks; the transcriber, and the confirmed words after each chunk."""
    live = StreamingTranscriber(backend, VadOptions(), options)
    size = max(1, int(round(chunk_ms / 1000 * SAMPLE_RATE)))
    snapshots = []
    for i in range(0, signal.size, size):
        live.feed(signal[i: i + size])
        snapshots.append([(w.word, w.start, w.end) for w in live.confirmed])
    live.finish()
    snapshots.append([(w.word, w.start, w.end) for w in live.confirmed])
    return live, snapshots


@pytest.fixture(scope="module")
def streamed(backend, excerpt):
    return {ms: stream(backend, excerpt, ms) for ms in (20, 250)}


@pytest.fixture(scope="module")
def batch_text(backend, excerpt) -> str:
    return " ".join(w.word for seg in transcribe_channel(excerpt, backend, VadOptions()) for w in seg.words)


def _text(live: StreamingTranscriber) -> str:
    return " ".join(w.word for w in live.confirmed)


def _repeats(text: str) -> int:
    """Runs of 1-3 words said twice in a row (a word repeated at a chunk edge)."""
    words = wer_text(text).split()
    return sum(words[i: i + n] == words[i + n: i + 2 * n]
               for n in (1, 2, 3) for i in range(len(words) - 2 * n + 1))


@pytest.mark.slow
def test_live_text_matches_batch_whatever_the_chunk_size(streamed, batch_text):
    texts = {ms: _text(live) for ms, (live, _) in streamed.items()}
    # steps run at fixed points of the stream: the chunk size changes when, not what
    assert texts[20] == texts[250]
    for ms, text in texts.items():
        assert len(text.split()) > 20
        assert wer([batch_text], [text]) <= MAX_WER_VS_BATCH, (ms, batch_text, text)
        errors = text_errors([batch_text], [text])
        assert errors["insertions"] + errors["deletions"] <= MAX_INSERTIONS_DELETIONS, (ms, errors)
        assert _repeats(text) <= _repeats(batch_text)


@pytest.mark.slow
def test_confirmed_words_are_never_revised_and_run_forward(streamed, excerpt):
    for ms, (live, snapshots) in streamed.items():
        for before, after in zip(snapshots, snapshots[1:]):
            assert after[: len(before)] == before  # confirmed words only ever added to
        words = live.confirmed
        assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))
        assert all(0 <= w.start <= w.end <= EXCERPT_S for w in words)
        # confirmation comes after the word was heard, and within a few steps of it
        assert all(w.end - 0.5 <= w.confirmed_at <= w.end + 5 for w in words), ms
        latencies = [w.confirmed_at - w.end for w in words]
        assert np.median(latencies) <= 2.0


@pytest.mark.slow
def test_no_decode_while_the_channel_is_silent(streamed):
    for ms, (live, _) in streamed.items():
        # the customer says nothing for the first 6.9 s (and the VAD pads speech by 0.4 s)
        early = [s for s in live.steps if s.stream_s <= 6.0]
        assert len(early) == 6 and not any(s.decoded for s in early)
        assert all(s.buffer_s < 2.0 for s in early)  # the silence is dropped (a step + 0.6 s kept)
        assert live.decode_calls == sum(s.decoded for s in live.steps) < len(live.steps)
        assert not any(w.start < 6.0 for w in live.confirmed)


def test_silence_gives_no_words_and_no_decode(backend):
    live = StreamingTranscriber(backend, VadOptions())
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.standard_normal(20 * SAMPLE_RATE)).astype(np.float32)
    for i in range(0, quiet.size, 320):
        assert live.feed(quiet[i: i + 320]).confirmed == []
    assert live.finish().confirmed == []
    assert live.confirmed == [] and live.decode_calls == 0 and len(live.steps) == 21
    assert max(s.buffer_s for s in live.steps) < 2.0


@pytest.mark.slow
def test_finish_confirms_what_is_left(backend, excerpt):
    # 1-9.5 s: the customer is mid-sentence when the stream stops
    piece = excerpt[1 * SAMPLE_RATE: int(9.5 * SAMPLE_RATE)]
    live = StreamingTranscriber(backend, VadOptions())
    for i in range(0, piece.size, 4000):
        live.feed(piece[i: i + 4000])
    pending = [w.word for w in live.partial]
    before = len(live.confirmed)
    assert pending
    update = live.finish()
    assert live.partial == [] and update.partial == []
    assert len(live.confirmed) >= before + 1 and update.confirmed == live.confirmed[before:]
    assert all(w.confirmed and w.confirmed_at == pytest.approx(8.5) for w in update.confirmed)
    assert live.finish().confirmed == []
    with pytest.raises(RuntimeError):
        live.feed(piece[:320])


@pytest.mark.slow
def test_a_transcriber_behind_catches_up_in_one_step_and_loses_no_word(backend, excerpt, batch_text):
    """A recogniser that fell behind (audio pushed for several steps before it could look) decodes
    once over all that waits, not once per step missed; when it keeps up, catch_up is feed."""
    behind = StreamingTranscriber(backend, VadOptions())
    step = int(StreamingOptions().step_s * SAMPLE_RATE)
    for at in range(0, excerpt.size, 4 * step):  # looks only every 4 s of audio
        for i in range(at, min(at + 4 * step, excerpt.size), 320):
            behind.push(excerpt[i: i + 320])
        assert behind.due
        steps, decodes = len(behind.steps), behind.decode_calls
        behind.catch_up()
        assert not behind.due
        assert len(behind.steps) == steps + 1 and behind.decode_calls <= decodes + 1
    behind.finish()
    text = _text(behind)
    assert len(behind.steps) == int(EXCERPT_S) // 4 + 1
    assert wer([batch_text], [text]) <= MAX_WER_VS_BATCH, (batch_text, text)
    errors = text_errors([batch_text], [text])
    assert errors["insertions"] + errors["deletions"] <= MAX_INSERTIONS_DELETIONS, errors

    burst = StreamingTranscriber(backend, VadOptions())  # the whole excerpt arrives at once
    burst.push(excerpt)
    burst.catch_up()
    burst.finish()
    # taken in steps of at most catch_up_s: one decode over 32 s would be past what Whisper
    # transcribes well in one go (longer bursts were seen to lose the words after a repeat)
    assert len(burst.steps) == -(-int(EXCERPT_S) // int(StreamingOptions().catch_up_s)) + 1
    text = _text(burst)
    assert wer([batch_text], [text]) <= MAX_WER_VS_BATCH, (batch_text, text)
    errors = text_errors([batch_text], [text])
    assert errors["insertions"] + errors["deletions"] <= MAX_INSERTIONS_DELETIONS, errors

    keeping_up = StreamingTranscriber(backend, VadOptions())
    for i in range(0, 10 * step, step):
        keeping_up.push(excerpt[i: i + step])
        keeping_up.catch_up()
    fed = StreamingTranscriber(backend, VadOptions())
    fed.feed(excerpt[: 10 * step])
    assert [(w.word, w.start) for w in keeping_up.confirmed + keeping_up.partial] == \
        [(w.word, w.start) for w in fed.confirmed + fed.partial]


def test_a_loop_is_found_where_it_repeats_and_a_short_repeat_is_not_one() -> None:
    def words(text: str) -> list[LiveWord]:
        return [LiveWord(w, k, k + 0.5) for k, w in enumerate(text.split())]

    assert loop_start(words("It's 24 -wheel -low -low -low -low -low -low Riverside")) == 4
    assert loop_start(words("the second of June, of June. of June of June of June")) == 4  # "the second of June," kept
    assert loop_start(words("No, no, no. That's not what I asked for")) is None  # said three times: speech
    assert loop_start(words("thank you thank you so much")) is None
    assert loop_start([]) is None


class DamagedBackend:
    """The real recogniser, with the two ways tiny.en's greedy decodes went wrong on a long
    call: a word's full stop given as a word of its own, and, with ``loop``, a greedy decode
    (temperatures ``(0.0,)``) that ends in a repetition loop; decodes with the batch
    temperatures come out right."""

    def __init__(self, real, loop: bool):  # noqa: ANN001
        self.real, self.loop = real, loop
        self.temperatures: list = []

    def transcribe(self, audio_, prompt=None, temperatures=None, encoder_s=None):  # noqa: ANN001, ANN201
        segments = self.real.transcribe(audio_, prompt=prompt, temperatures=temperatures, encoder_s=encoder_s)
        self.temperatures.append(temperatures)
        out = []
        for seg in segments:
            words = []
            for w in seg.words:
                if w.word.endswith(".") and len(w.word) > 1:
                    words += [replace(w, word=w.word[:-1]), Word(".", w.end, w.end, w.probability)]
                else:
                    words.append(w)
            out.append(replace(seg, words=words))
        if self.loop and temperatures == (0.0,) and out and out[-1].words:
            end = out[-1].words[-1].end
            out[-1].words.extend(Word("-low", end + 0.05 * k, end + 0.05 * (k + 1), 0.9) for k in range(12))
        return out


@pytest.mark.slow
def test_lone_marks_and_decoding_loops_never_reach_the_confirmed_words(backend, excerpt, streamed):
    """A full stop split off its word is put back on it; a greedy decode caught in a loop is
    decoded again with the batch temperatures, and what is confirmed is the words the undamaged
    recogniser gives."""
    expected = [w.word for w in streamed[20][0].confirmed]
    for loop in (False, True):
        damaged = DamagedBackend(backend, loop)
        live, _ = stream(damaged, excerpt, 20)
        assert [w.word for w in live.confirmed] == expected, loop
        assert all(any(c.isalnum() for c in w.word) for w in live.confirmed)
        assert live.loop_retries == (damaged.temperatures.count(None) if loop else 0)
        assert live.loop_retries >= (live.decode_calls // 2 if loop else 0)
