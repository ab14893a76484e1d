"""openai-whisper backend: the reference implementation, for comparison and for users who
have their own openai-whisper checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import (
    CONDITION_ON_PREVIOUS_TEXT,
    WORD_TIMESTAMPS,
    AsrBackend,
    AsrOptions,
    decode_seed,
)
from models.ct2_convert import openai_checkpoint
from models.errors import ConfigError
from models.records import Segment, Word


class OpenAIWhisperBackend(AsrBackend):
    name = "openai-whisper"

    def __init__(self, options: AsrOptions, threads: int):
        super().__init__(options, threads)
        try:
            import torch
            import whisper
        except ImportError as e:
            raise ConfigError(
                "the openai-whisper backend needs the openai-whisper package "
                "(scripts/bootstrap.sh installs it: pip install --no-deps openai-whisper)"
            ) from e
        if options.compute_type not in ("float32", "default"):
            raise ConfigError(
                f"asr.compute_type: '{options.compute_type}' is not available with openai-whisper "
                "on CPU (float32 only)"
            )
        torch.set_num_threads(threads)
        self._torch = torch
        self._whisper = whisper
        self.checkpoint = openai_checkpoint(options.model)
        self.model = whisper.load_model(str(self.checkpoint), device="cpu")
        heads = torch.load(self.checkpoint, map_location="cpu", weights_only=True).get("alignment_heads")
        if heads:
            dims = self.model.dims
            mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
            for layer, head in heads:
                mask[layer, head] = True
            self.model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        if options.language is None and not self.model.is_multilingual:
            self.language: str | None = "en"
        else:
            self.language = options.language

    @classmethod
    def check_model(cls, options: AsrOptions) -> None:
        openai_checkpoint(options.model)

    def transcribe(self, audio: np.ndarray, prompt: str | None = None,
                   temperatures: tuple[float, ...] | None = None, encoder_s: float | None = None) -> list[Segment]:
        # encoder_s: openai-whisper always encodes the whole 30 s window (its encoder checks the length)
        if audio.size == 0:
            return []
        o = self.options
        self._torch.set_num_threads(self.threads)
        # openai-whisper samples from torch's global generator: seeded from the audio, the
        # windows of this audio are sampled alike whatever the worker decoded before
        self._torch.manual_seed(decode_seed(o.seed, audio))
        result = self._whisper.transcribe(
            self.model,
            audio.astype(np.float32, copy=False),
            verbose=None,
            language=self.language,
            temperature=tuple(o.temperatures if temperatures is None else temperatures),
            beam_size=o.beam_size if o.beam_size > 1 else None,
            best_of=o.beam_size if o.beam_size > 1 else None,
            compression_ratio_threshold=o.compression_ratio_threshold,
            logprob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=CONDITION_ON_PREVIOUS_TEXT,
            word_timestamps=WORD_TIMESTAMPS,
            fp16=False,
            initial_prompt=prompt or None,
        )
        out: list[Segment] = []
        for s in result["segments"]:
            words = [Word(w["word"].strip(), float(w["start"]), float(w["end"]), float(w["probability"])) for w in s.get("words", [])]
            words = [w for w in words if w.word]
            out.append(
                Segment(
                    start=float(s["start"]),
                    end=float(s["end"]),
                    text=s["text"].strip(),
                    words=words,
                    avg_logprob=float(s["avg_logprob"]),
                    no_speech_prob=float(s["no_speech_prob"]),
                )
            )
        return out

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "backend": self.name,
            "backend_version": version("openai-whisper"),
            "model": self.options.model,
            "model_path": str(self.checkpoint),
            "compute_type": "float32",
            "threads": self.threads,
        }
