"""The speech recognition interface every backend implements, its options, and what the
model adapters share."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.records import Segment

NUMERIC_THREADS = 1
"""Threads of the numeric libraries whose results depend on how work is split between threads,
whatever ``asr.threads``: a threaded BLAS sums in another order (numpy's OpenBLAS under the
recogniser's features and word alignment: two threads gave other word probabilities than one),
and ONNX Runtime splits a batch between its threads while the packaged speaker embedder's int8
LSTMs (DynamicQuantizeLSTM) quantize each part on its own scale (voice vectors up to 0.07
apart, on a close call other speakers). With one thread a call gets the same numbers on any
worker split, executor or machine."""


def fixed_numerics() -> Any:
    """A context in which the BLAS libraries loaded in this process use NUMERIC_THREADS threads
    (the recogniser's own threads, ``asr.threads``, are set on the model and stay as they are).

    The libraries are found by threadpoolctl's cached controller, listed again whenever a module
    has been imported since (a BLAS library comes with the extension module that links it):
    listing them reads ``/proc/self/maps``, a few ms that an e-mail conversation, entered here
    once, does not otherwise take. A threadpoolctl without that cache lists them every time."""
    import threadpoolctl

    cached = getattr(threadpoolctl, "get_cached_controller", None)
    if cached is None:
        return threadpoolctl.threadpool_limits(limits=NUMERIC_THREADS, user_api="blas")
    return cached().limit(limits=NUMERIC_THREADS, user_api="blas")

SAMPLE_RATE = 16000
"""Whisper models take 16 kHz mono float32 audio in [-1, 1]."""


def cpu_session(path: Any, threads: int) -> Any:
    """An ONNX Runtime session of the model file ``path`` on the CPU with ``threads`` threads,
    whose idle threads sleep instead of spinning: these models run beside the recogniser
    (pipeline/run/call.py) and must not take the cores it is using."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class AsrOptions:
    """Speech recognition settings (the ``asr`` section of the config)."""

    backend: str = "faster-whisper"
    """``faster-whisper`` (CTranslate2, the fast default) or ``openai-whisper`` (the reference)."""
    model: str = "tiny.en"
    """A packaged model short name (``tiny.en``, ``base``) or a local path: a CTranslate2 model
    directory for faster-whisper, a ``.pt`` checkpoint for openai-whisper."""
    language: str | None = "en"
    """Language code of the calls, or null to detect it per channel (multilingual models only)."""
    beam_size: int = 1
    """Beam width; 1 is greedy decoding (fastest; on phone calls as accurate as 5 with tiny.en)."""
    compute_type: str = "float32"
    """CTranslate2 compute type (faster-whisper only): float32, int8, int8_float32, float16..."""
    threads: int = 0
    """CPU threads per worker for the model; 0 = the machine's cores divided by the workers."""
    no_speech_threshold: float = 0.6
    """A window whose no-speech probability is above this and whose average log-probability is
    below ``log_prob_threshold`` is dropped as silence (Whisper's hallucination guard)."""
    log_prob_threshold: float = -1.0
    """See ``no_speech_threshold``; also triggers temperature fallback."""
    compression_ratio_threshold: float = 2.4
    """A decode whose text compresses better than this (a loop) is retried at a higher
    temperature."""
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    """Whisper's temperature fallback, in order: each 30 s window is decoded at the first
    temperature (0 = greedy or beam search) and again at the next whenever the result looks
    wrong (see the two thresholds above); above 0 tokens are sampled."""
    seed: int = 0
    """Seed of the sampling at temperatures above 0. Each decoded window gets its own seed,
    derived from this one and the audio it is given (see :func:`decode_seed`), so a recording
    gives the same words whichever worker decodes it, in whatever order."""
    noisy_model: str | None = "base"
    """A second model (a packaged name or a local path, as ``model``) for calls on a noisy
    floor: a call with a channel whose speech stands less than ``noisy_below_db`` above its
    background level (``ChannelCheck.background_margin_db``) is transcribed with it, the others
    with ``model``. null = every call with ``model``. The packaged ``base`` costs about twice
    the recognition time of ``tiny.en`` and is much more accurate under babble and noise."""
    noisy_below_db: float = 20.0
    """See ``noisy_model``: the margin of speech over background, in dB, under which a channel
    of a stereo call is noisy (a quiet telephone line: 21-32 dB; babble or noise 10 dB under
    the party: 12-18 dB)."""
    noisy_below_db_mono: float = 25.0
    """The same for a call heard on one channel, whose background is read from the short
    gaps between the parties' turns, and so reads higher for the same floor (a quiet line:
    27-32 dB; babble or noise 10 dB under the parties: 16-23 dB)."""
    redecode_gap_s: float = 3.0
    """Speech (by VAD) left without a recognised word for at least this many seconds is
    recognised again on its own, and confident text found there is kept (Whisper sometimes
    jumps over part of its window); 0 = off."""


# Decoding settings both backends share and the config does not expose: word timestamps on,
# and no conditioning on previous text (with it, Whisper loops on phone audio).
CONDITION_ON_PREVIOUS_TEXT = False
WORD_TIMESTAMPS = True


def decode_seed(seed: int, audio: np.ndarray, *parts: int) -> int:
    """A 32-bit sampling seed that depends only on ``seed`` (``asr.seed``), the samples of
    ``audio`` and ``parts`` (such as the index of a window in it): never on the worker, the
    calls it decoded before or the time of day, so that sampling repeats exactly."""
    h = hashlib.blake2b(digest_size=4)
    h.update(int(seed).to_bytes(8, "little", signed=True))
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    for part in parts:
        h.update(int(part).to_bytes(8, "little", signed=True))
    return int.from_bytes(h.digest(), "little")


class AsrBackend(ABC):
    """A loaded speech recogniser. Load once per worker process; call ``transcribe`` per audio."""

    name: str = ""

    def __init__(self, options: AsrOptions, threads: int):
        self.options = options
        self.threads = threads

    @classmethod
    def check_model(cls, options: AsrOptions) -> None:
        """Raise ConfigError when the model ``options`` name is not there (checked before a
        batch starts, without loading it)."""
        raise NotImplementedError

    @abstractmethod
    def transcribe(self, audio: np.ndarray, prompt: str | None = None,
                   temperatures: tuple[float, ...] | None = None, encoder_s: float | None = None) -> list[Segment]:
        """Recognise speech in ``audio`` (float32, mono, 16 kHz).

        Voice activity detection is applied upstream: the audio given here is already speech
        (or is passed whole when VAD is off). Returns segments whose times, and the times of
        their words, are seconds from the start of ``audio``. ``prompt``: text said before the
        audio (Whisper's initial prompt; live recognition gives the words already confirmed);
        ``temperatures``: instead of ``asr.temperatures``; ``encoder_s``: where a backend can,
        its encoder sees only the audio of a window plus a second, at least this many seconds
        (not the whole 30 s window padded with silence: about half the cost of a short buffer,
        live recognition's case); None: the whole window, as Whisper was trained.
        """

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: backend name and version, model name, resolved path."""
