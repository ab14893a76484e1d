"""faster-whisper (CTranslate2) backend: the default, fast on CPU."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from models.base import (
    CONDITION_ON_PREVIOUS_TEXT,
    WORD_TIMESTAMPS,
    AsrBackend,
    AsrOptions,
    decode_seed,
)
from models.registry import ct2_model_dir
from models.records import Segment, Word


class _WindowDecoder:
    """The loaded CTranslate2 model as one window's temperature fallback sees it: greedy and
    beam decodes run on the loaded model, sampled ones on a replica made for this window and
    seeded for it (loaded at the first sampled decode, so a window without fallback costs
    nothing)."""

    def __init__(self, loaded: Any, seed: Callable[[], int], replica_args: dict[str, Any]):
        self._loaded = loaded
        self._seed = seed
        self._replica_args = replica_args
        self._replica: Any = None

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("sampling_temperature", 0) > 0:
            return self._loaded.generate(*args, **kwargs)
        if self._replica is None:
            import ctranslate2

            # read by the replica's thread when it first samples, just below
            ctranslate2.set_random_seed(self._seed())
            self._replica = ctranslate2.models.Whisper(**self._replica_args)
        return self._replica.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loaded, name)


def _seeded_model_class() -> type:
    """faster-whisper's ``WhisperModel`` whose temperature fallback samples reproducibly.

    CTranslate2 draws samples from one random generator per model thread, seeded once, when
    that thread first samples (``ctranslate2.set_random_seed`` has no effect on it afterwards):
    the tokens sampled for a window would depend on everything the worker sampled before, so
    on which worker got which calls. Here every window's sampled decodes run on a fresh replica
    of the model whose generator is seeded from ``asr.seed``, the audio and the window's index.
    """
    from faster_whisper import WhisperModel

    class SeededWhisperModel(WhisperModel):
        def __init__(self, model_path: str, seed: int, **kwargs: Any):
            super().__init__(model_path, **kwargs)
            self.seed = seed
            self._replica_args = {
                "model_path": model_path,
                "device": "cpu",
                "compute_type": kwargs["compute_type"],
                "intra_threads": kwargs["cpu_threads"],
                "inter_threads": 1,
            }
            self._audio = np.zeros(0, dtype=np.float32)
            self._window = 0
            self._encoder_frames: int | None = None
            self._frame_rate = self.feature_extractor.sampling_rate // self.feature_extractor.hop_length  # a second

        def start(self, audio: np.ndarray, encoder_s: float | None = None) -> None:
            """Number the windows of ``audio`` from 0 (call before transcribing it); with
            ``encoder_s``, encode each window's features only up to its audio plus a second,
            at least ``encoder_s`` seconds (``encode``)."""
            self._audio = audio
            self._window = 0
            self._encoder_frames = None if encoder_s is None else int(round(encoder_s * self._frame_rate))

        def encode(self, features: np.ndarray) -> Any:
            """The window's features (padded to 30 s with zeros by faster-whisper) cut after
            their last frame of audio plus a second, to at least ``encoder_s``: Whisper's
            encoder then runs over the audio there is, not 30 s. The cut is even (the encoder
            halves the frames)."""
            if self._encoder_frames is not None:
                frames = features if features.ndim == 3 else features[None]
                sounding = np.flatnonzero(np.any(frames != 0, axis=(0, 1)))
                content = int(sounding[-1]) + 1 if sounding.size else 0
                keep = min(frames.shape[-1], max(self._encoder_frames, content + self._frame_rate))
                features = frames[..., : keep + keep % 2]
            return super().encode(features)

        def generate_with_fallback(self, encoder_output: Any, prompt: Any, tokenizer: Any, options: Any) -> Any:
            loaded = self.model
            window, audio = self._window, self._audio
            self._window += 1
            self.model = _WindowDecoder(loaded, lambda: decode_seed(self.seed, audio, window), self._replica_args)
            try:
                return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)
            finally:
                self.model = loaded

    return SeededWhisperModel


class FasterWhisperBackend(AsrBackend):
    name = "faster-whisper"

    def __init__(self, options: AsrOptions, threads: int):
        super().__init__(options, threads)
        try:
            import faster_whisper
        except ImportError as e:  # pragma: no cover - a default dependency
            raise ImportError("the faster-whisper backend needs: pip install faster-whisper") from e
        self.model_dir = ct2_model_dir(options.model)
        self._version = faster_whisper.__version__
        self.model = _seeded_model_class()(
            str(self.model_dir),
            seed=options.seed,
            device="cpu",
            compute_type=options.compute_type,
            cpu_threads=threads,
            num_workers=1,
            local_files_only=True,
        )
        if options.language is None and not self.model.model.is_multilingual:
            self.language: str | None = "en"
        else:
            self.language = options.language

    @classmethod
    def check_model(cls, options: AsrOptions) -> None:
        ct2_model_dir(options.model)

    def transcribe(self, audio: np.ndarray, prompt: str | None = None,
                   temperatures: tuple[float, ...] | None = None, encoder_s: float | None = None) -> list[Segment]:
        if audio.size == 0:
            return []
        o = self.options
        self.model.start(audio, encoder_s)
        segments, _info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=o.beam_size,
            best_of=o.beam_size,
            temperature=list(o.temperatures if temperatures is None else temperatures),
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=CONDITION_ON_PREVIOUS_TEXT,
            word_timestamps=WORD_TIMESTAMPS,
            vad_filter=False,
            initial_prompt=prompt or None,
        )
        out: list[Segment] = []
        for s in segments:
            words = [Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)) for w in (s.words or [])]
            words = [w for w in words if w.word]
            out.append(
                Segment(
                    start=float(s.start),
                    end=float(s.end),
                    text=s.text.strip(),
                    words=words,
                    avg_logprob=s.avg_logprob,
                    no_speech_prob=s.no_speech_prob,
                )
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "backend_version": self._version,
            "model": self.options.model,
            "model_path": str(self.model_dir),
            "compute_type": self.options.compute_type,
            "threads": self.threads,
        }
