"""faster-whisper (CTranslate2) backend: the default, fast on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import (
    CONDITION_ON_PREVIOUS_TEXT,
    TEMPERATURES,
    WORD_TIMESTAMPS,
    AsrBackend,
    AsrOptions,
)
from models.registry import ct2_model_dir
from pipeline.records import Segment, Word


class FasterWhisperBackend(AsrBackend):
    name = "faster-whisper"

    def __init__(self, options: AsrOptions, threads: int):
        super().__init__(options, threads)
        try:
            import faster_whisper
            from faster_whisper import WhisperModel
        except ImportError as e:  # pragma: no cover - a default dependency
            raise ImportError("the faster-whisper backend needs: pip install faster-whisper") from e
        self.model_dir = ct2_model_dir(options.model)
        self._version = faster_whisper.__version__
        self.model = WhisperModel(
            str(self.model_dir),
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

    def transcribe(self, audio: np.ndarray) -> list[Segment]:
        if audio.size == 0:
            return []
        o = self.options
        segments, _info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=o.beam_size,
            best_of=o.beam_size,
            temperature=list(TEMPERATURES),
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=CONDITION_ON_PREVIOUS_TEXT,
            word_timestamps=WORD_TIMESTAMPS,
            vad_filter=False,
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
