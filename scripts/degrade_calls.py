#!/usr/bin/env python3
"""Make a degraded copy of a labelled call folder (issue 24): the same calls as real lines damage them.

    .venv/bin/python scripts/degrade_calls.py recordings_sample --out /tmp/degraded [--seed 24] \\
        [--conditions all | babble,noise,gsm,loss,muffled] [--snr-db 10] [--babble-db 10] [--loss 0.04]

SRC_DIR is a labelled data folder as `callqa eval` reads it (recordings, optional manifest.csv,
labels/<call_id>.json). DST_DIR gets every call damaged (same call ids, same manifest columns; each
recording written as 16-bit PCM WAV at the source's sample rate and channel count, so the manifest's
`path` names `<call_id>.wav`), the label folder copied byte for byte (gold unchanged), and
`degradation.json`: the conditions, their parameters and, per call and channel, what was done
(babble donors and offsets, the SNR reached, the lost packets).

The damage, applied in this order (each one switchable with --conditions):

- muffled: one side quiet and muffled (default the customer, -12 dB, 4th-order Butterworth low-pass
  at 2.5 kHz). Stereo: the customer's channel. Mono: the customer's gold utterance spans (+-0.1 s,
  20 ms ramps).
- babble: background voices, a mixture of --babble-talkers (3) other calls of the same folder, each a
  random channel of a random other call (never the call itself), started at a random offset and
  looped, its speed changed by a random factor in 0.84-0.92 or 1.09-1.19 (pitch and formants move,
  so the synthetic voices that the sample calls share become other voices), each talker at the same
  level; the mixture is set --babble-db below the channel's speech. Stereo channels get different
  mixtures.
- noise: street-like noise, brown plus pink noise (equal power) with a slow (0.1-0.5 Hz) swell of
  +-3 dB, at --snr-db. Independent on each channel.
- gsm: GSM 06.10 full rate (13 kbit/s), a real encoder/decoder: libsndfile's GSM610 (the libgsm code
  it bundles, WAV49 framing), per channel at 8 kHz (other rates are resampled to 8 kHz and back).
- loss: packet loss over 20 ms packets from a two-state Gilbert-Elliott chain (mean burst
  --loss-burst packets, stationary loss --loss), each channel its own stream; a lost packet is
  concealed as a VoIP jitter buffer does: the last good packet repeated with a fade (-1/3 of full
  level per lost packet, silence from the third one on).

Levels: the "speech" level of a channel is its mean power over its gold utterance spans (stereo: the
utterances on that channel; a call without label utterances: the 20 ms frames within 30 dB of its
loudest); babble and noise levels are their mean power over the whole recording; SNR = speech / noise
in dB, measured on the signal as mixed (after `muffled`, so a muffled side keeps its SNR). If the mix
would clip, the whole recording is scaled down (`output_gain` in degradation.json).

Reproducible bit for bit: every random draw comes from a numpy Generator seeded from (--seed, a hash
of the call id, the condition, the channel), so the same seed gives the same bytes, and turning one
condition on or off does not change the draws of the others.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, sosfilt

CONDITIONS = ("muffled", "babble", "noise", "gsm", "loss")  # the order they are applied in
AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".au"}
FORMAT = "callqa-degradation/1"
PACKET_S = 0.020
SPEED_RANGES = ((0.84, 0.92), (1.09, 1.19))


class DegradeError(ValueError):
    """A bad argument or a source folder that cannot be degraded; the message says which."""


# ---------------------------------------------------------------------------------------------
# reading the source folder


def _call_hash(call_id: str) -> int:
    return int.from_bytes(hashlib.sha256(call_id.encode("utf-8")).digest()[:8], "little")


def rng_for(seed: int, call_id: str, condition: str, channel: int = 0) -> np.random.Generator:
    """The random stream of one condition on one channel of one call."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_call_hash(call_id), CONDITIONS.index(condition), channel))
    return np.random.Generator(np.random.PCG64(ss))


def read_calls(src: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The manifest's columns and rows (call_id, path, ...) of SRC, or one row per recording."""
    manifest = src / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = [dict(r) for r in reader]
        for need in ("call_id", "path"):
            if need not in columns:
                raise DegradeError(f"{manifest}: no '{need}' column (columns: {', '.join(columns)})")
        for i, row in enumerate(rows):
            if not (row.get("call_id") or "").strip():
                raise DegradeError(f"{manifest}: row {i + 2} has no call_id")
            if not (src / row["path"]).is_file():
                raise DegradeError(f"{manifest}: row {i + 2}: recording {row['path']!r} not found in {src}")
    else:
        columns = ["call_id", "path"]
        rows = [{"call_id": p.stem, "path": p.relative_to(src).as_posix()}
                for p in sorted(src.rglob("*")) if p.suffix.lower() in AUDIO_EXT and p.is_file()
                and "labels" not in p.relative_to(src).parts]
    if not rows:
        raise DegradeError(f"{src}: no recordings (neither a manifest.csv nor audio files)")
    ids = [r["call_id"] for r in rows]
    dup = sorted({c for c in ids if ids.count(c) > 1})
    if dup:
        raise DegradeError(f"{src}: call ids occur more than once: {', '.join(dup)}")
    return columns, rows


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples x channels float64, sample rate)."""
    try:
        data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad recording
        raise DegradeError(f"{path}: cannot read the recording ({exc})") from exc
    return data, int(sr)


def load_label(src: Path, call_id: str) -> dict | None:
    path = src / "labels" / f"{call_id}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DegradeError(f"{path}: not valid JSON ({exc})") from exc


def customer_channel(label: dict | None, row: dict[str, str], n_channels: int) -> int | None:
    """Which channel of a stereo call is the customer's: from the gold utterances, else the manifest."""
    if n_channels < 2:
        return None
    votes = [u.get("channel") for u in (label or {}).get("utterances", []) if u.get("role") == "customer"]
    votes = [int(c) for c in votes if c in (0, 1)]
    if votes:
        return max(set(votes), key=votes.count)
    agent = (row.get("agent_channel") or "").strip().lower()
    if agent in ("left", "right"):
        return 1 if agent == "left" else 0
    return None


def speech_mask(label: dict | None, n: int, sr: int, channel: int | None, role: str | None = None,
                pad_s: float = 0.0) -> np.ndarray:
    """Samples inside the gold utterances (of that channel / role), as a boolean mask."""
    mask = np.zeros(n, dtype=bool)
    for u in (label or {}).get("utterances", []):
        if channel is not None and u.get("channel") is not None and int(u["channel"]) != channel:
            continue
        if role is not None and u.get("role") != role:
            continue
        try:
            a = max(0, int((float(u["start"]) - pad_s) * sr))
            b = min(n, int(np.ceil((float(u["end"]) + pad_s) * sr)))
        except (KeyError, TypeError, ValueError):
            continue
        if b > a:
            mask[a:b] = True
    return mask


def energy_mask(x: np.ndarray, sr: int, floor_db: float = 30.0) -> np.ndarray:
    """20 ms frames within floor_db of the loudest frame."""
    hop = max(1, int(sr * PACKET_S))
    nf = max(1, len(x) // hop)
    frames = x[: nf * hop].reshape(nf, hop) if len(x) >= hop else x.reshape(1, -1)
    p = np.mean(frames ** 2, axis=1) + 1e-20
    keep = 10 * np.log10(p) > 10 * np.log10(p.max()) - floor_db
    mask = np.zeros(len(x), dtype=bool)
    mask[: len(keep) * hop] = np.repeat(keep, hop)[: len(x)]
    return mask


def speech_power(x: np.ndarray, mask: np.ndarray, sr: int) -> float:
    """Mean power of x over mask (the channel's speech), or over its loud frames without one."""
    if mask.sum() < sr * 0.2:
        mask = energy_mask(x, sr)
    return float(np.mean(x[mask] ** 2)) if mask.any() else float(np.mean(x ** 2))


def db(p: float) -> float:
    return 10 * np.log10(max(p, 1e-20))


# ---------------------------------------------------------------------------------------------
# the conditions


def muffle(x: np.ndarray, sr: int, gain_db: float, cutoff_hz: float, mask: np.ndarray | None) -> np.ndarray:
    """x quieter and low-passed; with a mask only there (20 ms ramps at its edges)."""
    cutoff = min(cutoff_hz, 0.45 * sr)
    sos = butter(4, cutoff, btype="low", fs=sr, output="sos")
    y = sosfilt(sos, x) * 10 ** (gain_db / 20)
    if mask is None:
        return y
    w = mask.astype(np.float64)
    ramp = max(1, int(0.02 * sr))
    w = np.convolve(w, np.ones(ramp) / ramp, mode="same")
    return w * y + (1 - w) * x


def speed_change(x: np.ndarray, factor: float, sr: int) -> np.ndarray:
    """x played factor times faster (pitch and formants up by factor), same sample rate."""
    return soxr.resample(x, sr * factor, sr, quality="HQ") if abs(factor - 1) > 1e-9 else x


def babble_for(rng: np.random.Generator, n: int, sr: int, donors: list[tuple[str, np.ndarray, int]],
               talkers: int) -> tuple[np.ndarray, list[dict]]:
    """A mixture of `talkers` voices from the donor recordings (other calls), each looped from a random
    offset at a random speed, at equal speech level; returns (babble of n samples, what was used)."""
    picks = rng.choice(len(donors), size=min(talkers, len(donors)), replace=False)
    out = np.zeros(n)
    used = []
    for k in sorted(int(p) for p in picks):
        call_id, audio, dsr = donors[k]
        ch = int(rng.integers(audio.shape[1]))
        lo, hi = SPEED_RANGES[int(rng.integers(2))]
        factor = float(rng.uniform(lo, hi))
        v = audio[:, ch]
        if dsr != sr:
            v = soxr.resample(v, dsr, sr, quality="HQ")
        v = speed_change(v, factor, sr)
        offset = int(rng.integers(len(v)))
        reps = int(np.ceil((n + offset) / len(v))) + 1
        seg = np.tile(v, reps)[offset: offset + n]
        level = speech_power(seg, np.zeros(n, dtype=bool), sr)
        out += seg / np.sqrt(max(level, 1e-20))
        used.append({"call_id": call_id, "channel": ch, "offset_s": round(offset / sr, 3), "speed": round(factor, 4)})
    return out, used


def street_noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Brown + pink noise (equal power) with a slow +-3 dB swell, unit mean power."""
    nfft = 1 << int(np.ceil(np.log2(max(n, 2))))
    f = np.fft.rfftfreq(nfft, 1 / sr)
    f[0] = f[1]
    parts = []
    for exponent in (1.0, 2.0):  # pink (1/f power), brown (1/f^2 power)
        spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) / f ** (exponent / 2)
        spec[f < 20] = 0  # no DC / sub-audio rumble
        s = np.fft.irfft(spec, nfft)[:n]
        parts.append(s / np.sqrt(np.mean(s ** 2) + 1e-30))
    noise = parts[0] + parts[1]
    rate = rng.uniform(0.1, 0.5)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(n) / sr
    noise *= 10 ** (3 * np.sin(2 * np.pi * rate * t + phase) / 20)
    return noise / np.sqrt(np.mean(noise ** 2) + 1e-30)


def gsm_0610(x: np.ndarray, sr: int) -> np.ndarray:
    """x through GSM 06.10 full rate (libsndfile's GSM610 encoder and decoder) at 8 kHz."""
    y = soxr.resample(x, sr, 8000, quality="HQ") if sr != 8000 else x
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    scale = 0.99 / peak if peak > 0.99 else 1.0  # the codec takes 16-bit PCM
    buf = io.BytesIO()
    sf.write(buf, y * scale, 8000, format="WAV", subtype="GSM610")
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float64")
    z = z[: len(y)] / scale
    if len(z) < len(y):
        z = np.concatenate([z, np.zeros(len(y) - len(z))])
    if sr != 8000:
        z = soxr.resample(z, 8000, sr, quality="HQ")
        z = z[: len(x)] if len(z) >= len(x) else np.concatenate([z, np.zeros(len(x) - len(z))])
    return z


def gilbert_elliott(rng: np.random.Generator, n_packets: int, loss: float, burst: float) -> np.ndarray:
    """Lost packets (bool) from a two-state chain: stationary loss `loss`, mean burst `burst` packets."""
    lost = np.zeros(n_packets, dtype=bool)
    if loss <= 0 or n_packets == 0:
        return lost
    r = 1.0 / burst  # bad -> good
    p = loss * r / (1 - loss)  # good -> bad
    u = rng.random(n_packets)
    bad = rng.random() < loss  # start in the stationary distribution
    for i in range(n_packets):
        lost[i] = bad
        bad = (u[i] >= r) if bad else (u[i] < p)
    return lost


def conceal(x: np.ndarray, lost: np.ndarray, hop: int) -> np.ndarray:
    """Each lost packet replaced by the last good one, faded by 1/3 of full level per lost packet."""
    y = x.copy()
    last = np.zeros(hop)
    run = 0
    for i, is_lost in enumerate(lost):
        a, b = i * hop, min(len(x), (i + 1) * hop)
        if not is_lost:
            last = x[a:b] if b - a == hop else np.concatenate([x[a:b], np.zeros(hop - (b - a))])
            run = 0
            continue
        g0, g1 = max(0.0, 1 - run / 3), max(0.0, 1 - (run + 1) / 3)
        y[a:b] = (last * np.linspace(g0, g1, hop, endpoint=False))[: b - a]
        run += 1
    return y


# ---------------------------------------------------------------------------------------------
# one call, the folder


def degrade_call(call_id: str, audio: np.ndarray, sr: int, label: dict | None, row: dict[str, str],
                 donors: list[tuple[str, np.ndarray, int]], opts: argparse.Namespace) -> tuple[np.ndarray, dict]:
    n, n_ch = audio.shape
    conds = opts.conditions
    meta: dict = {"sample_rate": sr, "channels": n_ch, "duration_s": round(n / sr, 3)}
    cust = customer_channel(label, row, n_ch)
    if n_ch >= 2:
        meta["customer_channel"] = cust
    out = audio.copy()
    chans: list[dict] = [{} for _ in range(n_ch)]

    if "muffled" in conds:
        side = opts.muffle_side
        if n_ch >= 2:
            target = cust if side == "customer" else (None if cust is None else 1 - cust)
            if target is None:
                meta["muffled"] = "skipped: no label or agent_channel says which channel is whose"
            else:
                out[:, target] = muffle(out[:, target], sr, -opts.muffle_db, opts.muffle_hz, None)
                chans[target]["muffled"] = True
        else:
            mask = speech_mask(label, n, sr, None, role=side, pad_s=0.1)
            if mask.any():
                out[:, 0] = muffle(out[:, 0], sr, -opts.muffle_db, opts.muffle_hz, mask)
                chans[0]["muffled_s"] = round(float(mask.sum()) / sr, 3)
            else:
                meta["muffled"] = f"skipped: no gold {side} utterances"

    clean = out.copy()  # speech as mixed: the reference of the SNRs
    for c in range(n_ch):
        mask = speech_mask(label, n, sr, c if n_ch >= 2 else None)
        p_speech = speech_power(clean[:, c], mask, sr)
        chans[c]["speech_db"] = round(db(p_speech), 2)
        if "babble" in conds:
            b, used = babble_for(rng_for(opts.seed, call_id, "babble", c), n, sr, donors, opts.babble_talkers)
            b *= np.sqrt(p_speech / 10 ** (opts.babble_db / 10) / max(np.mean(b ** 2), 1e-30))
            out[:, c] += b
            chans[c]["babble"] = {"talkers": used, "speech_to_babble_db": round(db(p_speech) - db(np.mean(b ** 2)), 2)}
        if "noise" in conds:
            z = street_noise(rng_for(opts.seed, call_id, "noise", c), n, sr)
            z *= np.sqrt(p_speech / 10 ** (opts.snr_db / 10))
            out[:, c] += z
            chans[c]["noise"] = {"snr_db": round(db(p_speech) - db(np.mean(z ** 2)), 2)}

    peak = float(np.max(np.abs(out))) if out.size else 0.0
    gain = 1.0
    if peak > 0.98:
        gain = 0.98 / peak
        out *= gain
    meta["output_gain"] = round(gain, 6)

    if "gsm" in conds:
        for c in range(n_ch):
            out[:, c] = gsm_0610(out[:, c], sr)
            chans[c]["gsm"] = True
    if "loss" in conds:
        hop = int(round(sr * PACKET_S))
        n_packets = int(np.ceil(n / hop))
        for c in range(n_ch):
            lost = gilbert_elliott(rng_for(opts.seed, call_id, "loss", c), n_packets, opts.loss, opts.loss_burst)
            out[:, c] = conceal(out[:, c], lost, hop)
            chans[c]["loss"] = {"packets": n_packets, "lost": int(lost.sum()),
                                "fraction": round(float(lost.mean()) if n_packets else 0.0, 4),
                                "lost_packets": np.flatnonzero(lost).tolist()}
    meta["per_channel"] = chans
    return np.clip(out, -1.0, 32767 / 32768), meta


def parse_conditions(text: str) -> list[str]:
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not items:
        raise DegradeError("--conditions: give 'all' or some of " + ", ".join(CONDITIONS))
    if items == ["all"]:
        return list(CONDITIONS)
    bad = [t for t in items if t not in CONDITIONS]
    if bad:
        raise DegradeError(f"--conditions: unknown {', '.join(repr(b) for b in bad)}; "
                           f"choose from {', '.join(CONDITIONS)} or 'all'")
    return [c for c in CONDITIONS if c in items]


def check_options(opts: argparse.Namespace) -> None:
    if not opts.src.is_dir():
        raise DegradeError(f"SRC_DIR {opts.src} is not a folder")
    src, dst = opts.src.resolve(), opts.out.resolve()
    if dst == src or src in dst.parents:
        raise DegradeError(f"--out {opts.out} must not be SRC_DIR or inside it")
    if dst.exists() and not dst.is_dir():
        raise DegradeError(f"--out {opts.out} is a file, not a folder")
    if dst.exists() and any(dst.iterdir()):
        if not opts.force:
            raise DegradeError(f"--out {opts.out} exists and is not empty (--force replaces it)")
    if not -20 <= opts.snr_db <= 60:
        raise DegradeError(f"--snr-db {opts.snr_db}: give a value from -20 to 60 dB")
    if not -20 <= opts.babble_db <= 60:
        raise DegradeError(f"--babble-db {opts.babble_db}: give a value from -20 to 60 dB")
    if not 0 <= opts.loss < 0.5:
        raise DegradeError(f"--loss {opts.loss}: give a fraction of packets from 0 to 0.5 (0.04 is 4%)")
    if opts.loss_burst < 1:
        raise DegradeError(f"--loss-burst {opts.loss_burst}: the mean burst is at least 1 packet")
    if opts.babble_talkers < 1:
        raise DegradeError("--babble-talkers must be at least 1")
    if not 0 <= opts.muffle_db <= 60:
        raise DegradeError(f"--muffle-db {opts.muffle_db}: give the attenuation in dB, 0 to 60")
    if not 300 <= opts.muffle_hz <= 20000:
        raise DegradeError(f"--muffle-hz {opts.muffle_hz}: give a cut-off from 300 to 20000 Hz")
    if opts.seed < 0:
        raise DegradeError("--seed must be a non-negative integer")


def run(opts: argparse.Namespace) -> dict:
    opts.conditions = parse_conditions(opts.conditions) if isinstance(opts.conditions, str) else opts.conditions
    check_options(opts)
    columns, rows = read_calls(opts.src)
    if "babble" in opts.conditions and len(rows) < 2:
        raise DegradeError("babble needs at least two calls in SRC_DIR (a call's babble comes from the others)")
    audio = {r["call_id"]: read_audio(opts.src / r["path"]) for r in rows}
    if opts.out.exists() and opts.force:
        shutil.rmtree(opts.out)
    opts.out.mkdir(parents=True, exist_ok=True)

    calls = {}
    out_rows = []
    for row in rows:
        cid = row["call_id"]
        data, sr = audio[cid]
        donors = [(d, a, s) for d, (a, s) in audio.items() if d != cid]
        label = load_label(opts.src, cid)
        y, meta = degrade_call(cid, data, sr, label, row, donors, opts)
        name = f"{cid}.wav"
        sf.write(str(opts.out / name), y if y.shape[1] > 1 else y[:, 0], sr, format="WAV", subtype="PCM_16")
        meta = {"source": row["path"], "output": name, **meta}
        calls[cid] = meta
        out_rows.append({**row, "path": name})
        if not opts.quiet:
            print(f"{cid}: {', '.join(opts.conditions)} -> {opts.out / name}", file=sys.stderr)

    with (opts.out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(out_rows)
    labels = opts.src / "labels"
    if labels.is_dir():
        shutil.copytree(labels, opts.out / "labels")
    report = {
        "format": FORMAT,
        "source": str(opts.src),
        "seed": opts.seed,
        "conditions": opts.conditions,
        "parameters": {
            "muffled": {"side": opts.muffle_side, "gain_db": -opts.muffle_db, "lowpass_hz": opts.muffle_hz,
                        "filter": "butterworth-4 low-pass"},
            "babble": {"speech_to_babble_db": opts.babble_db, "talkers": opts.babble_talkers,
                       "speed_ranges": [list(r) for r in SPEED_RANGES], "source": "other calls of SRC_DIR"},
            "noise": {"snr_db": opts.snr_db, "kind": "brown+pink, +-3 dB swell at 0.1-0.5 Hz"},
            "gsm": {"codec": "GSM 06.10 full rate (libsndfile GSM610)", "rate_hz": 8000, "bitrate_kbps": 13},
            "loss": {"fraction": opts.loss, "mean_burst_packets": opts.loss_burst, "packet_ms": PACKET_S * 1000,
                     "model": "Gilbert-Elliott (lossless good state, lossy bad state)",
                     "concealment": "repeat last good packet, -1/3 level per lost packet"},
        },
        "levels": "speech: mean power over the channel's gold utterance spans; babble/noise: mean power over the recording",
        "calls": calls,
    }
    report["parameters"] = {k: v for k, v in report["parameters"].items() if k in opts.conditions}
    (opts.out / "degradation.json").write_text(json.dumps(report, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, metavar="SRC_DIR", help="labelled data folder (recordings, manifest.csv, labels/)")
    p.add_argument("--out", type=Path, required=True, metavar="DST_DIR", help="where the degraded folder goes")
    p.add_argument("--seed", type=int, default=24, help="random seed (default 24)")
    p.add_argument("--conditions", default="all",
                   help="'all' or a comma list of " + ", ".join(CONDITIONS) + " (default all)")
    p.add_argument("--snr-db", type=float, default=10.0, help="speech to street-noise ratio (default 10)")
    p.add_argument("--babble-db", type=float, default=10.0, help="speech to babble ratio (default 10)")
    p.add_argument("--babble-talkers", type=int, default=3, help="voices in each babble mixture (default 3)")
    p.add_argument("--loss", type=float, default=0.04, help="fraction of 20 ms packets lost (default 0.04)")
    p.add_argument("--loss-burst", type=float, default=2.0, help="mean length of a loss burst, packets (default 2)")
    p.add_argument("--muffle-side", choices=("customer", "agent"), default="customer", help="the quiet, muffled side")
    p.add_argument("--muffle-db", type=float, default=12.0, help="how much quieter that side is (default 12 dB)")
    p.add_argument("--muffle-hz", type=float, default=2500.0, help="its low-pass cut-off (default 2500 Hz)")
    p.add_argument("--force", action="store_true", help="replace a non-empty DST_DIR")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    opts = parser.parse_args(argv)
    try:
        report = run(opts)
    except DegradeError as exc:
        parser.exit(2, f"degrade_calls.py: error: {exc}\n")
    if not opts.quiet:
        print(f"{len(report['calls'])} calls degraded ({', '.join(report['conditions'])}) into {opts.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
