"""Streaming transcription of one channel of a call in progress (issue 21, live monitoring).

A :class:`StreamingTranscriber` receives the channel's audio in small chunks (16 kHz float32
mono, 20-500 ms each, as a telephony stream delivers it) and returns words as they are
recognised, each ``{word, start, end, confirmed}`` with times in seconds from the start of the
stream. Confirmation follows LocalAgreement-2 (Machacek, Dabre and Bojar, "Turning Whisper
into Real-Time Transcription System", 2023):

- every ``step_s`` seconds of received audio the growing buffer (the audio since the last
  trim) is recognised again, without a prompt by default (as the batch pipeline decodes without
  the previous text; see ``StreamingOptions.prompt_chars``);
- a word is confirmed when two consecutive hypotheses agree on it and on every word before it
  (the longest common prefix of the words not yet confirmed); once confirmed a word never
  changes or disappears;
- the buffer is trimmed at the end of what is confirmed: at a pause (VAD closes the speech
  region and everything in it is confirmed), or, while someone talks on, at the last
  confirmed sentence end (else the last confirmed word) once it is longer than
  ``max_buffer_s``; so the cost of a step stays bounded however long the call runs.

The batch pipeline's VAD (Silero, its ``VadOptions``, models/vad.py) runs over the stream as
it arrives, with the LSTM state carried from window to window (the probabilities batch VAD
would give), and decides what the recogniser hears: only the speech regions of the buffer,
joined end to end as in batch transcription (pipeline/asr/transcribe.py), times mapped back.
While nobody speaks on the channel no decode runs and the silence is dropped from the buffer.
When every speech region of the buffer has closed (the speaker paused for
``vad.min_silence_duration_ms``), no later audio can change what the regions hold, so the
hypothesis of that step is final and confirmed whole (the "end of utterance" commit): the last
words of a turn do not wait for a second hypothesis.

Determinism: steps run at fixed points of the stream (every ``step_s`` seconds of audio, and
once more in :meth:`StreamingTranscriber.finish`), whatever the chunk sizes, and decoding is
greedy at temperature 0 (``StreamingOptions.temperatures``), so the same audio gives the same
words fed in any chunk sizes.

Latency bookkeeping: every confirmed word carries ``confirmed_at`` (seconds of audio received
when it was confirmed; minus its ``end``, the latency in stream time) and ``confirmed_wall``
(the clock at that moment, ``time.monotonic`` by default); every step is recorded in
``steps`` with its wall-clock processing time.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from models.base import SAMPLE_RATE, AsrBackend, fixed_numerics
from models.records import Segment
from models.vad import VAD_WINDOW, SpeechOnlyAudio, SpeechRegion, VadOptions, speech_from_probabilities

SENTENCE_END = re.compile(r"[.?!]['\"]?$")
"""A confirmed word ending a sentence: a place to trim a long buffer."""

_DEDUP_TOLERANCE_S = 0.1
"""A word of a new hypothesis starting this much before the end of the last confirmed word is
still taken as possibly new (word times move a little between hypotheses)."""

_MAX_NGRAM = 5
"""Longest run of words at the head of a new hypothesis checked against the confirmed tail
(the same words recognised again across the confirmation point are dropped)."""


@dataclass
class StreamingOptions:
    """Settings of streaming recognition (beside the batch pipeline's ``asr`` and ``vad``)."""

    step_s: float = 1.0
    """Seconds of audio between two recognitions of the buffer."""
    max_buffer_s: float = 15.0
    """A buffer of continuous speech longer than this is trimmed at its last confirmed
    sentence end (else its last confirmed word)."""
    hard_buffer_s: float = 25.0
    """Past this (hypotheses that keep disagreeing), the words of the latest hypothesis ending
    before the last ``max_buffer_s / 2`` seconds are confirmed and the buffer trimmed there:
    a step's cost stays bounded (Whisper's window is 30 s)."""
    catch_up_s: float = 5.0
    """A recogniser behind by more than a step takes what waits in steps of at most this many
    seconds (:meth:`StreamingTranscriber.catch_up`): longer ones would grow the buffer past what
    Whisper transcribes well in one go (with 18 s or more at once, tiny.en was seen to repeat a
    sentence with times that covered, and so dropped, the words after it)."""
    prompt_chars: int = 0
    """At most this many characters of confirmed text that has left the buffer are given to the
    recogniser as its prompt (0: none, the default). Measured on the labelled stereo calls
    (``scripts/benchmark_live.py``): with 200 characters, live WER 0.130 against 0.124 without,
    and 60% more decoding time (the prompt's tokens are decoded too); on a call looped for six
    minutes the prompt carried one loop's errors into the next (WER 0.226 against 0.163)."""
    temperatures: tuple[float, ...] = (0.0,)
    """Decoding temperatures: greedy at 0 only by default (no fallback: one decode per step,
    and the same words every run). A hypothesis caught in a repetition loop is decoded once
    more with the batch temperatures (see :meth:`StreamingTranscriber._decode`)."""
    encoder_s: float | None = 15.0
    """Whisper's encoder sees the buffer plus a second, at least this many seconds, not its
    whole 30 s window (the faster-whisper backend; ``AsrBackend.transcribe``): a step costs
    about half as much. 10 s was seen to repeat text; None: the whole window."""


@dataclass
class LiveWord:
    """A recognised word of the stream; times in seconds from the stream's start."""

    word: str
    start: float
    end: float
    probability: float = 1.0
    confirmed: bool = False
    confirmed_at: float | None = None
    """Seconds of audio received when the word was confirmed."""
    confirmed_wall: float | None = None
    """The transcriber's clock when the word was confirmed."""

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "confirmed": self.confirmed}


@dataclass
class StepRecord:
    """One recognition step: where in the stream, and what it cost."""

    stream_s: float
    """Audio processed up to here (seconds from the stream's start)."""
    received_s: float
    """Audio received when the step ran."""
    wall_s: float
    """Processing time of the step (VAD, decode, bookkeeping), wall clock."""
    decoded: bool
    buffer_s: float
    """Length of the buffer the step looked at."""
    confirmed: int
    """Words confirmed by the step."""


@dataclass
class Update:
    """What a call to :meth:`StreamingTranscriber.feed` or ``finish`` brought: the words newly
    confirmed, and the current unconfirmed tail (replacing the previous one)."""

    confirmed: list[LiveWord] = field(default_factory=list)
    partial: list[LiveWord] = field(default_factory=list)
    stepped: bool = False

    def words(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.confirmed + self.partial]


def _norm(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


LOOP_REPEATS = 4
"""A run of one to three words said this many times in a row is taken for a decoding loop."""


def loop_start(words: list[LiveWord]) -> int | None:
    """Where the first repetition loop of a hypothesis repeats (the index of its second copy:
    the words before it kept), or None. Whisper, greedy and without the batch pipeline's
    temperature fallback, can write one word or phrase over and over to the end of its window
    ("-low -low -low ..."); as two hypotheses agree on it, it would be confirmed."""
    norms = [_norm(w.word) for w in words]
    best = None
    for size in (1, 2, 3):
        for i in range(len(norms) - size * LOOP_REPEATS + 1):
            if best is not None and i + size >= best:
                break
            unit = norms[i: i + size]
            if all(norms[i + k * size: i + (k + 1) * size] == unit for k in range(1, LOOP_REPEATS)):
                best = i + size
                break
    return best


class StreamingVad:
    """Silero speech probabilities of a stream, window by window, exactly as one run of the
    model over the whole audio would give them (faster-whisper's SileroVADModel: each window
    is preceded by the last 64 samples of the one before, and the LSTM state runs on)."""

    CONTEXT = 64

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities of the whole windows of ``audio`` (its size a multiple of VAD_WINDOW)."""
        frames = np.asarray(audio, dtype=np.float32).reshape(-1, VAD_WINDOW)
        if not frames.shape[0]:
            return np.zeros(0, dtype=np.float32)
        context = np.empty((frames.shape[0], self.CONTEXT), dtype=np.float32)
        context[0] = self._context
        context[1:] = frames[:-1, -self.CONTEXT:]
        batch = np.concatenate([context, frames], axis=1)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = frames[-1, -self.CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


_BACKEND_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _backend_lock(backend: AsrBackend) -> threading.Lock:
    """One lock per loaded backend: transcribers sharing a backend decode one at a time (its
    model is not re-entrant)."""
    with _LOCKS_LOCK:
        return _BACKEND_LOCKS.setdefault(id(backend), threading.Lock())


class StreamingTranscriber:
    """One channel of a call in progress, transcribed as its audio arrives (see the module
    docstring). ``feed`` chunks, read the :class:`Update` each returns (or ``confirmed``), and
    call ``finish`` when the stream ends."""

    def __init__(self, backend: AsrBackend, vad: VadOptions | None = None, options: StreamingOptions | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.backend = backend
        self.vad = vad or VadOptions()
        self.options = options or StreamingOptions()
        if self.options.step_s <= 0 or self.options.max_buffer_s <= 0:
            raise ValueError("step_s and max_buffer_s must be positive")
        self.clock = clock
        self._step = max(VAD_WINDOW, int(round(self.options.step_s * SAMPLE_RATE)))
        self._streaming_vad = StreamingVad() if self.vad.enabled else None
        self._lock = _backend_lock(backend)
        # Audio from _buffer_start (a multiple of VAD_WINDOW) to _processed, and the received
        # audio not processed yet (less than a step).
        self._audio = np.zeros(0, dtype=np.float32)
        self._tail = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._processed = 0
        self._received = 0
        self._vad_done = 0  # samples with speech probabilities (whole windows, then the end)
        self._probs = np.zeros(0, dtype=np.float32)  # one per window from _buffer_start
        self._pending: list[LiveWord] = []  # the last hypothesis' words not confirmed
        self._signature: Any = None  # what the last decode heard
        self._finished = False
        self.confirmed: list[LiveWord] = []
        self.steps: list[StepRecord] = []
        self.decode_calls = 0
        self.loop_retries = 0
        # keep this much silence at the end of a trimmed buffer: the next region's left padding
        self._keep = int(math.ceil(
            (self.vad.speech_pad_ms + self.vad.min_speech_duration_ms) / 1000 * SAMPLE_RATE / VAD_WINDOW + 2
        )) * VAD_WINDOW

    @classmethod
    def from_config(cls, config: Any, threads: int = 0, options: StreamingOptions | None = None,
                    backend: AsrBackend | None = None) -> "StreamingTranscriber":
        """A transcriber with a Config's ``asr`` and ``vad`` settings (its own backend loaded
        with ``threads`` threads unless ``backend`` is given)."""
        if backend is None:
            import os

            from models.asr import load_backend

            backend = load_backend(config.asr, threads or config.asr.threads or os.cpu_count() or 1)
        return cls(backend, config.vad, options)

    # -- input --------------------------------------------------------------------------------

    @property
    def received_s(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def partial(self) -> list[LiveWord]:
        return list(self._pending)

    def feed(self, chunk: np.ndarray) -> Update:
        """Take the next chunk of the channel (float32 mono 16 kHz); run the steps it
        completes."""
        self.push(chunk)
        update = Update(partial=list(self._pending))
        while self._tail.size >= self._step:
            piece, self._tail = self._tail[: self._step], self._tail[self._step:]
            self._advance(piece, update, final=False)
        return update

    def push(self, chunk: np.ndarray) -> None:
        """Take the next chunk without recognising it yet (see :meth:`catch_up`)."""
        if self._finished:
            raise RuntimeError("the stream has finished")
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._received += chunk.size
        self._tail = np.concatenate([self._tail, chunk]) if self._tail.size else chunk.copy()

    @property
    def due(self) -> bool:
        """Whether a step's worth of pushed audio waits to be recognised."""
        return self._tail.size >= self._step

    def catch_up(self) -> Update:
        """Recognise the whole steps of audio pushed so far in as few steps as may be: a
        recogniser that has fallen behind (more calls than it can follow at every step) decodes
        once per ``catch_up_s`` of what has arrived instead of once per step missed, so its lag
        stays bounded. When it keeps up (one step waiting) this is exactly :meth:`feed`."""
        update = Update(partial=list(self._pending))
        most = max(1, int(self.options.catch_up_s * SAMPLE_RATE) // self._step) * self._step
        while self._tail.size >= self._step:
            size = min(most, self._tail.size // self._step * self._step)
            piece, self._tail = self._tail[:size], self._tail[size:]
            self._advance(piece, update, final=False)
        return update

    def finish(self) -> Update:
        """The stream has ended: recognise what is left and confirm every word heard."""
        if self._finished:
            return Update()
        update = Update()
        piece, self._tail = self._tail, np.zeros(0, dtype=np.float32)
        self._advance(piece, update, final=True)
        self._finished = True
        return update

    def words(self) -> list[dict[str, Any]]:
        """Every word so far: the confirmed ones, then the unconfirmed tail."""
        return [w.to_dict() for w in self.confirmed + self._pending]

    # -- one step -----------------------------------------------------------------------------

    def _advance(self, piece: np.ndarray, update: Update, final: bool) -> None:
        t0 = self.clock()
        if piece.size:
            self._audio = np.concatenate([self._audio, piece]) if self._audio.size else piece.copy()
            self._processed += piece.size
        self._run_vad(final)
        n = (self._processed if final else self._vad_done) - self._buffer_start
        regions = self._regions(n)
        closed = final or not regions or regions[-1].end < n
        before = len(self.confirmed)
        decoded = False
        if regions:
            signature = (self._buffer_start, tuple((r.start, r.end) for r in regions), self._prompt())
            if signature != self._signature:
                hypothesis = self._decode(regions, signature[2])
                self._signature = signature
                decoded = True
                if closed:
                    # every region closed: later audio cannot change what they hold
                    self._confirm(hypothesis)
                    self._pending = []
                else:
                    agreed = 0
                    while (agreed < min(len(hypothesis), len(self._pending))
                           and _norm(hypothesis[agreed].word) == _norm(self._pending[agreed].word)):
                        agreed += 1
                    self._confirm(hypothesis[:agreed])
                    self._pending = hypothesis[agreed:]
            elif closed and self._pending:  # the same audio again: its hypothesis agrees with itself
                self._confirm(self._pending)
                self._pending = []
        elif self._pending:  # speech gone from the buffer (cannot happen unless trimmed): keep it
            self._confirm(self._pending)
            self._pending = []
        self._trim(regions, n, closed)
        new = self.confirmed[before:]
        update.confirmed.extend(new)
        update.partial = list(self._pending)
        update.stepped = True
        self.steps.append(StepRecord(
            stream_s=self._processed / SAMPLE_RATE, received_s=self._received / SAMPLE_RATE,
            wall_s=self.clock() - t0, decoded=decoded, buffer_s=n / SAMPLE_RATE, confirmed=len(new),
        ))

    def _run_vad(self, final: bool) -> None:
        """Speech probabilities of the whole windows processed (at the end: of the rest too,
        padded with zeros as batch VAD pads the end of a channel)."""
        whole = (self._processed - self._vad_done) // VAD_WINDOW * VAD_WINDOW
        rest = self._processed - self._vad_done - whole
        if self._streaming_vad is None:
            count = whole // VAD_WINDOW + (1 if final and rest else 0)
            self._probs = np.concatenate([self._probs, np.ones(count, dtype=np.float32)])
            self._vad_done += whole + (rest if final else 0)
            return
        start = self._vad_done - self._buffer_start
        block = self._audio[start: start + whole]
        if final and rest:
            block = np.concatenate([self._audio[start:], np.zeros(VAD_WINDOW - rest, dtype=np.float32)])
        if block.size:
            self._probs = np.concatenate([self._probs, self._streaming_vad(block)])
        self._vad_done += whole + (rest if final else 0)

    def _regions(self, n: int) -> list[SpeechRegion]:
        """Speech regions of the first ``n`` samples of the buffer (samples from its start)."""
        if n <= 0:
            return []
        if not self.vad.enabled:
            return [SpeechRegion(0, n)]
        windows = -(-n // VAD_WINDOW)
        return speech_from_probabilities(self._probs[:windows], n, self.vad)

    def _prompt(self) -> str:
        """The end of the confirmed text that has left the buffer (at most prompt_chars)."""
        limit = self.options.prompt_chars
        if limit <= 0:
            return ""
        start_s = self._buffer_start / SAMPLE_RATE
        words: list[str] = []
        size = 0
        for w in reversed(self.confirmed):
            if w.end > start_s + 1e-6:
                continue
            if size + len(w.word) + 1 > limit:
                break
            words.append(w.word)
            size += len(w.word) + 1
        return " ".join(reversed(words))

    def _decode(self, regions: list[SpeechRegion], prompt: str) -> list[LiveWord]:
        """Recognise the speech of the buffer; the words not yet confirmed (stream times). A
        hypothesis caught in a repetition loop (:func:`loop_start`) is decoded again with the
        batch pipeline's temperature fallback (``asr.temperatures``, seeded by the audio: the
        same words every run); a loop left after that is cut off, so it is never confirmed."""
        speech = SpeechOnlyAudio(self._audio, regions)
        with self._lock, fixed_numerics():
            words = self._words(speech, self._recognise(speech.audio, prompt))
            if loop_start(words) is not None:
                words = self._words(speech, self._recognise(speech.audio, prompt, fallback=True))
                self.loop_retries += 1
                words = words[: loop_start(words)]  # None: all of them
        self.decode_calls += 1
        return self._unconfirmed(words)

    def _words(self, speech: SpeechOnlyAudio, segments: list[Segment]) -> list[LiveWord]:
        """The recognised words in stream times, punctuation split off by Whisper's word timing
        put back on the word before."""
        offset = self._buffer_start / SAMPLE_RATE
        words: list[LiveWord] = []
        for seg in segments:
            for w in seg.words:
                if not _norm(w.word):
                    # As a word of its own a lone mark would be confirmed (two of them agree), go
                    # into the prompt and, once a few are there, make the recogniser write nothing
                    # else (a 6-minute call ended in 600 "." words).
                    mark = w.word.strip()
                    if words and not words[-1].word.endswith(mark):
                        words[-1].word += mark
                    continue
                region = speech.region_index((w.start + w.end) / 2)
                words.append(LiveWord(
                    w.word, offset + speech.to_original(w.start, region), offset + speech.to_original(w.end, region),
                    w.probability,
                ))
        return words

    def _recognise(self, audio: np.ndarray, prompt: str, fallback: bool = False) -> list[Segment]:
        """The backend's recogniser with the batch settings, greedy (``temperatures``; with
        ``fallback`` the batch temperatures), with the confirmed text before the buffer as its
        prompt if ``prompt_chars`` asks for one."""
        return self.backend.transcribe(audio, prompt=prompt or None,
                                       temperatures=None if fallback else self.options.temperatures,
                                       encoder_s=self.options.encoder_s)

    def _unconfirmed(self, words: list[LiveWord]) -> list[LiveWord]:
        """The words of a hypothesis after the confirmed ones: those starting after the last
        confirmed word (with a tolerance), less a head that repeats the confirmed tail."""
        if not self.confirmed:
            return words
        last = self.confirmed[-1]
        words = [w for w in words if w.start > last.end - _DEDUP_TOLERANCE_S]
        if words and words[0].start < last.end + 1.0:
            tail = [_norm(w.word) for w in self.confirmed[-_MAX_NGRAM:]]
            head = [_norm(w.word) for w in words[:_MAX_NGRAM]]
            for k in range(min(len(tail), len(head)), 0, -1):
                if tail[-k:] == head[:k]:
                    words = words[k:]
                    break
        return words

    def _confirm(self, words: list[LiveWord]) -> None:
        at = self._received / SAMPLE_RATE
        wall = self.clock()
        for w in words:
            if self.confirmed:  # times never run backwards
                floor = self.confirmed[-1].end
                if w.start < floor:
                    w.start = floor
                if w.end < w.start:
                    w.end = w.start
            w.confirmed, w.confirmed_at, w.confirmed_wall = True, at, wall
            self.confirmed.append(w)

    # -- trimming -----------------------------------------------------------------------------

    def _trim(self, regions: list[SpeechRegion], n: int, closed: bool) -> None:
        """Drop the start of the buffer that nothing unconfirmed needs any more."""
        if closed and not self._pending:
            # all heard is confirmed: keep only the silence the next region's padding may need
            self._cut(n - self._keep)
            return
        start_s = self._buffer_start / SAMPLE_RATE
        if len(regions) > 1:  # an earlier utterance, all confirmed: cut at the pause after it
            last = regions[-1]
            if not self._pending or self._pending[0].start >= start_s + last.start / SAMPLE_RATE:
                self._cut(last.start)
                start_s = self._buffer_start / SAMPLE_RATE
                n = (self._vad_done if not closed else self._processed) - self._buffer_start
        if n <= self.options.max_buffer_s * SAMPLE_RATE:
            return
        inside = [w for w in self.confirmed if w.end > start_s]
        if n > self.options.hard_buffer_s * SAMPLE_RATE and self._pending:
            limit = start_s + n / SAMPLE_RATE - self.options.max_buffer_s / 2
            forced = [w for w in self._pending if w.end <= limit]
            if forced:
                self._confirm(forced)
                self._pending = self._pending[len(forced):]
                inside = [w for w in self.confirmed if w.end > start_s]
        if not inside:
            return
        ends = [w for w in inside if SENTENCE_END.search(w.word)]
        word = ends[-1] if ends else inside[-1]
        at = int(math.ceil(word.end * SAMPLE_RATE / VAD_WINDOW)) * VAD_WINDOW
        if self._pending:
            at = min(at, int(self._pending[0].start * SAMPLE_RATE) // VAD_WINDOW * VAD_WINDOW)
        self._cut(at - self._buffer_start)

    def _cut(self, samples: int) -> None:
        """Move the buffer's start ``samples`` later (down to a whole VAD window, and never
        past the audio with speech probabilities)."""
        samples = min(int(samples), self._vad_done - self._buffer_start) // VAD_WINDOW * VAD_WINDOW
        if samples <= 0:
            return
        self._audio = self._audio[samples:]
        self._probs = self._probs[samples // VAD_WINDOW:]
        self._buffer_start += samples
