"""The speaker stage: who said each word, and which speaker is the agent.

Stereo recordings carry one party per channel: each channel is a speaker (S0 = left,
S1 = right) and the agent's channel comes from the manifest (column ``agent_channel``), the
queue (``speakers.queue_agent_channel``), the config (``speakers.agent_channel``), or, with
``auto``, from what each channel says. Fake stereo (both channels the same signal, or one of
them silent) is noticed before transcription and handled as mono, and faint cross-talk (each
party audible at a low level on the other's channel) is dropped instead of becoming phantom
utterances. A channel's own voice is kept even where the other party is much louder (both
talking at once): it stands well above what the other party's bleed would put on that channel
(``bleed_model``), which bleed never does.

Mono recordings are diarized (models/diarize.py); every word is given the speaker whose turn
covers it, so an ASR segment that spans a change of speaker is cut at the right word. Roles
then come from content (pipeline/speakers/roles.py). A manual override (a CSV written by hand or by
the reviewer app) always wins and is honoured on re-run.

**Speech turns** (``speech_turns``) are where each speaker talks: on a mono call the
diarizer's turns, on a stereo call each channel's speech (VAD run again inside the channel's
speech regions with the diarizer's tight turn settings, ``channel_speech``), so the two
parties overlap where both talk. The words refine them: a word outside its speaker's speech
adds its own span, short pauses inside one speaker's speech are bridged, and on a stereo call
a channel's speech holding none of its words (noise, bleed) is left out. The turns are kept in
the speakers block (``turns``) and written as diarization.rttm, and every utterance spans the
turns its words are in (``fit_to_turns``): the times people see, play and measure follow the
speech, not the recogniser's word times alone (those stay inside their utterance).
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.base import SAMPLE_RATE
from pipeline.ingest.audio import mix_down
from pipeline.errors import ConfigError
from pipeline.interaction.record import Interaction
from pipeline.interaction.utterances import Utterance, Word

AGENT, CUSTOMER, UNKNOWN = "agent", "customer", "unknown"
CHANNEL_NAMES = ("left", "right")
OVERRIDES_FILE = "speaker_overrides.csv"


@dataclass
class SpeakerOptions:
    """How speakers and roles are found (the ``speakers`` section of the config)."""

    agent_channel: str = "auto"
    """Stereo calls: the agent's channel, ``left``, ``right``, or ``auto`` (decided from what
    each channel says). A manifest column ``agent_channel`` overrides it per call."""
    queue_agent_channel: dict[str, str] = field(default_factory=dict)
    """Per-queue agent channel, e.g. ``{billing: left, sales: right}`` (manifest column
    ``queue``); between the manifest column and ``agent_channel`` in precedence."""
    identical_channels_correlation: float = 0.95
    """Stereo channels correlated at least this much are one signal twice (fake stereo): the
    call is handled as mono."""
    silent_channel_dbfs: float = -50.0
    """A stereo channel whose speech level (loudest 10% of 50 ms frames) is below this many
    dBFS is silent: the call is handled as mono on the other channel."""
    crosstalk_margin_db: float = 15.0
    """On stereo calls, where a channel is this many dB quieter than the other (20 ms frames)
    it carries only the other party bleeding through: any word recognised there is dropped;
    except where it carries its own voice, well above what the other party's bleed would give
    (both talking at once, ``own_voice``)."""
    crosstalk_mute: bool = True
    """Also silence those stretches before VAD and recognition, so that the recogniser does not
    hear the bleed. Off, it hears each channel as recorded (as openai-whisper does) and only the
    words found there are dropped: better where bleed is faint (stereo calls of the mixed
    benchmark archive, bleed about -27 dB: WER 0.097 instead of 0.105), much worse where it is
    loud (bleed at -20 dB: the bleed's words run into the party's own turns, WER 0.33 instead
    of under 0.15 against the clean transcript)."""
    background_mute: bool = True
    """On stereo calls, silence before VAD and recognition the stretches of a channel that
    carry only background (``find_background``: other voices of the floor or the street,
    quieter than the party), so that the recogniser does not write them as that party's
    words."""
    background_floor_db: float = 6.0
    """A stretch of a stereo channel is its party's speech only when its level (over
    ``BACKGROUND_SMOOTH_S``) is this many dB above the channel's background level (the 20th
    percentile of those levels), or within ``background_below_db`` of its speech level."""
    background_below_db: float = 12.0
    """See ``background_floor_db``: stretches within this many dB of the channel's speech
    level are always the party's."""
    background_min_probability: float = 0.4
    """On stereo calls, an utterance whose words the recogniser gave a mean probability below
    this is dropped (``drop_unsure``): what Whisper writes for background voices, noise or
    silence (babble, "Thank you." on an empty line) rather than the party. 0 = keep all."""
    background_utterance_share: float = 0.7
    """On stereo calls, an utterance whose loudness (its loudest tenth of 20 ms frames) lies in
    the lower ``background_utterance_share`` of the range from its channel's background level
    to the channel's speech level is dropped (``drop_background``): another voice of the floor
    heard through the party's microphone, louder than the stretches muted before recognition
    but still nearer the background than the party. On a quiet line the range is wide and the
    bar far under any speech. 0 = keep all."""
    overrides_file: str | None = None
    """CSV of manual role decisions (``call_id,agent``; agent = a speaker id such as S1, a
    channel name, or ``swap``). null = ``OUT/speaker_overrides.csv``."""


@dataclass
class ChannelCheck:
    """What the stereo check found: ``stereo``, ``identical``, ``one_silent``, or ``mono``."""

    kind: str
    levels_dbfs: list[float]
    correlation: float | None = None
    kept_channel: int | None = None
    crosstalk_s: list[float] | None = None
    """Real stereo: seconds of each channel that carry only the other party's bleed."""
    crosstalk_muted: bool = False
    """Whether those seconds were silenced before transcription (``crosstalk_mute``)."""
    frame_levels: np.ndarray | None = field(default=None, repr=False)
    """Real stereo: the 20 ms frame levels of the call (``channel_levels``), the cross-talk
    frames at ``SILENT_FRAME_DB``, kept so the cross-talk word check does not read the call
    again."""
    bleed: Bleed | None = None
    """Real stereo: how each party bleeds onto the other's channel (``bleed_model`` of the
    audio before muting), for the cross-talk word check."""
    background_s: list[float] | None = None
    """Real stereo: seconds of each channel that carry only background (``find_background``)."""
    background_dbfs: list[float] | None = None
    """Real stereo: the background level of each channel (``background_levels``), in dBFS."""
    background_margin_db: list[float] | None = None
    """How far the speech of each channel transcribed (one for a call handled as mono) stands
    above its background level, in dB (``asr.noisy_model``): on a stereo channel 21-32 dB on a
    quiet telephone line, 12-18 dB with babble or street noise 10 dB under the party; a mono
    call reads higher (``background_margin``: 27-32 dB and 16-23 dB)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "levels_dbfs": [round(x, 1) for x in self.levels_dbfs]}
        if self.correlation is not None:
            d["correlation"] = round(self.correlation, 3)
        if self.kept_channel is not None:
            d["kept_channel"] = CHANNEL_NAMES[self.kept_channel]
        if self.crosstalk_s is not None:
            d["crosstalk_s"] = dict(zip(CHANNEL_NAMES, self.crosstalk_s))
            d["crosstalk_muted"] = self.crosstalk_muted
        if self.background_s is not None:
            d["background_s"] = dict(zip(CHANNEL_NAMES, self.background_s))
        if self.background_margin_db is not None:
            d["background_margin_db"] = [round(x, 1) for x in self.background_margin_db]
        if self.background_dbfs is not None:
            d["background_dbfs"] = dict(zip(CHANNEL_NAMES, (round(x, 1) for x in self.background_dbfs)))
        if self.bleed is not None:
            d["bleed_db"] = dict(zip(CHANNEL_NAMES, (round(x, 1) for x in self.bleed.coupling_db)))
        return d


def _dbfs(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-10)))


def speech_level_dbfs(channel: np.ndarray) -> float:
    """Level of the loud part of a channel: RMS of its loudest 10% of 50 ms frames, in dBFS."""
    if channel.size == 0:
        return _dbfs(0.0)
    power = 10 ** (_frame_dbfs(channel, SAMPLE_RATE // 20) / 10)
    top = np.sort(power)[-max(1, power.size // 10):]
    return _dbfs(float(np.sqrt(np.mean(top))))


CORRELATION_BLOCK = SAMPLE_RATE * 60
"""Samples per block when correlating the channels (no full-length float64 copies)."""


def channel_correlation(samples: np.ndarray) -> float:
    """Pearson correlation of the two channels, accumulated block by block."""
    n = samples.shape[1]
    if n == 0:
        return 0.0
    sums = np.zeros(5)  # sum a, sum b, sum aa, sum bb, sum ab
    for i in range(0, n, CORRELATION_BLOCK):
        a = samples[0, i : i + CORRELATION_BLOCK].astype(np.float64)
        b = samples[1, i : i + CORRELATION_BLOCK].astype(np.float64)
        sums += (a.sum(), b.sum(), np.dot(a, a), np.dot(b, b), np.dot(a, b))
    sa, sb, saa, sbb, sab = sums
    var_a, var_b = saa - sa * sa / n, sbb - sb * sb / n
    denom = float(np.sqrt(max(var_a, 0.0) * max(var_b, 0.0)))
    return float((sab - sa * sb / n) / denom) if denom > 0 else 0.0


def check_channels(samples: np.ndarray, options: SpeakerOptions) -> tuple[np.ndarray, ChannelCheck]:
    """Detect fake stereo; returns the audio to transcribe: mono when stereo is fake, else
    both channels (with cross-talk muted in place when ``crosstalk_mute`` asks, ``find_crosstalk``)."""
    if samples.shape[0] == 1:
        level = speech_level_dbfs(samples[0])
        return samples, ChannelCheck("mono", [level], background_margin_db=[background_margin(samples[0], level)])
    levels = [speech_level_dbfs(samples[0]), speech_level_dbfs(samples[1])]
    loud = int(np.argmax(levels))
    if min(levels) < options.silent_channel_dbfs:
        return samples[loud : loud + 1], ChannelCheck("one_silent", levels, kept_channel=loud,
                                                      background_margin_db=[background_margin(samples[loud], levels[loud])])
    corr = channel_correlation(samples)
    if corr >= options.identical_channels_correlation:
        mixed = mix_down(samples)
        margin = background_margin(mixed[0], speech_level_dbfs(mixed[0]))
        return mixed, ChannelCheck("identical", levels, correlation=corr, background_margin_db=[margin])
    samples, seconds, frame_levels, bleed = find_crosstalk(samples, options.crosstalk_margin_db, options.crosstalk_mute)
    smoothed = background_levels(frame_levels)
    floors = [floor for _, _, floor in smoothed]
    background = find_background(samples, smoothed, levels, options) if options.background_mute else None
    return samples, ChannelCheck("stereo", levels, correlation=corr, crosstalk_s=seconds,
                                 crosstalk_muted=options.crosstalk_mute, frame_levels=frame_levels, bleed=bleed,
                                 background_s=background, background_dbfs=floors,
                                 background_margin_db=[_margin(speech, floor) for speech, floor in zip(levels, floors)])


def _margin(speech_dbfs: float, background_dbfs: float) -> float:
    """Speech level over background level in dB; a background of digital silence (or a channel
    without sound enough to tell, ``SILENT_FRAME_DB``) is no floor at all: the widest margin,
    ``-SILENT_FRAME_DB``."""
    if background_dbfs <= SILENT_FRAME_DB:
        return -SILENT_FRAME_DB
    return float(max(0.0, speech_dbfs - background_dbfs))


MONO_BACKGROUND_SMOOTH_S = 0.2
MONO_BACKGROUND_PERCENTILE = 10
"""The background level of a call heard on one channel: this percentile of its 20 ms levels
averaged over ``MONO_BACKGROUND_SMOOTH_S``. Both parties talk on it, so the stretches with
neither are short and few: a shorter average and a lower percentile than a stereo channel's
(``BACKGROUND_SMOOTH_S``, ``BACKGROUND_PERCENTILE``), which is silent while the other party
talks, reach them."""


def background_margin(channel: np.ndarray, speech_dbfs: float) -> float:
    """How far the speech level (``speech_dbfs``) of a call heard on one channel stands above
    its background level (``MONO_BACKGROUND_PERCENTILE``), in dB. Digital silence counts (a
    line that sends nothing between the turns has no floor at all)."""
    levels = _frame_dbfs(channel, CROSSTALK_FRAME)
    width = max(1, int(round(MONO_BACKGROUND_SMOOTH_S * SAMPLE_RATE / CROSSTALK_FRAME)))
    if levels.size < width:
        return _margin(speech_dbfs, SILENT_FRAME_DB)
    power = np.convolve(10 ** (levels / 10), np.ones(width) / width, mode="valid")
    return _margin(speech_dbfs, 10 * np.log10(max(float(np.percentile(power, MONO_BACKGROUND_PERCENTILE)), 1e-20)))


CROSSTALK_FRAME = SAMPLE_RATE // 50
"""Frames of 20 ms over which the two channels' levels are compared for cross-talk."""


SILENT_FRAME_DB = -200.0
"""The level ``_frame_dbfs`` gives a frame of digital silence (its power floor, 1e-20)."""


def _frame_dbfs(channel: np.ndarray, frame: int) -> np.ndarray:
    """Level of each ``frame``-sample frame of a channel in dBFS (a last partial frame too),
    computed a block at a time (no full-length temporaries)."""
    n = -(-channel.size // frame)
    power = np.empty(n, dtype=np.float64)
    block = frame * 3000
    for i in range(0, channel.size, block):
        part = channel[i : i + block]
        whole = part.size // frame
        first = i // frame
        if whole:
            frames = part[: whole * frame].reshape(whole, frame)
            power[first : first + whole] = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame
        if part.size % frame:
            tail = part[whole * frame :].astype(np.float64)
            power[first + whole] = float(np.dot(tail, tail)) / frame
    return 10 * np.log10(np.maximum(power, 10 ** (SILENT_FRAME_DB / 10)))


def channel_levels(samples: np.ndarray) -> np.ndarray:
    """(2, frames) level of each 20 ms frame of both channels, in dBFS."""
    return np.stack([_frame_dbfs(samples[0], CROSSTALK_FRAME), _frame_dbfs(samples[1], CROSSTALK_FRAME)])


def crosstalk_frames(levels: np.ndarray, margin_db: float) -> np.ndarray:
    """(2, frames) mask of the frames (levels from ``channel_levels``) where a channel is at
    least ``margin_db`` quieter than the other: there it carries only the other party bleeding
    through (or silence)."""
    return np.stack([levels[0] < levels[1] - margin_db, levels[1] < levels[0] - margin_db])


CROSSTALK_KEEP_FRAMES = 5
"""Frames (100 ms) kept on each side of a channel's own sound when muting cross-talk, so that
the onsets and tails of its words are not cut."""

CROSSTALK_FLOOR_DB = 10.0
"""A frame is a channel's own sound only this far above the channel's noise floor (its 10th
percentile frame level)."""


def _widen(keep: np.ndarray, frames: int) -> np.ndarray:
    """``keep`` (bool per frame) grown by ``frames`` on each side."""
    if frames <= 0 or not keep.any():
        return keep
    csum = np.concatenate([[0], np.cumsum(keep)])
    idx = np.arange(keep.size)
    return (csum[np.minimum(idx + frames + 1, keep.size)] - csum[np.maximum(idx - frames, 0)]) > 0


@dataclass
class Bleed:
    """How each party of a stereo call bleeds onto the other's channel (``bleed_model``)."""

    coupling_db: list[float]
    """Per channel: the level of the other party's bleed on it relative to the other channel
    (e.g. -25: the other party is heard 25 dB down)."""
    floor_db: list[float]
    """Per channel: its noise floor (the 10th percentile of its sounding 20 ms frames), dBFS."""


OWN_VOICE_DB = 10.0
"""A 20 ms frame of a stereo channel carries that channel's own voice, even where the other
channel is far louder, when it is this many dB above what the other party's bleed and the
channel's noise floor would give (``own_voice``). Bleed is the other party's voice scaled down
by a fixed coupling: over the sample calls not one of the frames muted as cross-talk was more
than 10 dB above that estimate, while a party's own words spoken over the other are 10 to 30
dB above it."""

OWN_VOICE_MIN_FRAMES = 2
"""A word on a channel far quieter than the other is its own speech, not bleed, when at least
this many of its 20 ms frames (40 ms, part of a syllable: the recogniser's word times are
approximate, a short word may hold little more) carry the channel's own voice."""

BLEED_SOURCE_DB = 20.0
"""The coupling is measured over the frames where the other party is loud (this far above its
channel's noise floor) and dominant (``crosstalk_margin_db`` above this channel)."""

MIN_BLEED_FRAMES = 25
"""Fewer such frames than this (half a second): no coupling can be measured, and it is taken
to be ``-crosstalk_margin_db`` (no frame then counts as own voice where the channel is that
much quieter than the other: the plain level test)."""


def bleed_model(levels: np.ndarray, margin_db: float) -> Bleed:
    """The coupling of each channel to the other party and its noise floor, from the frame
    levels (``channel_levels``) of the call: the median, over the frames where the other party
    is loud and dominant, of this channel's level minus the other's. Frames of digital silence
    (a muted stretch) are left out."""
    sounding = levels > SILENT_FRAME_DB
    floors = [float(np.percentile(levels[ch][sounding[ch]], 10)) if sounding[ch].any() else SILENT_FRAME_DB
              for ch in (0, 1)]
    coupling = []
    for ch in (0, 1):
        own, other = levels[ch], levels[1 - ch]
        source = (other > own + margin_db) & (other > floors[1 - ch] + BLEED_SOURCE_DB) & sounding[ch]
        coupling.append(float(np.median(own[source] - other[source])) if source.sum() >= MIN_BLEED_FRAMES
                        else -float(margin_db))
    return Bleed(coupling, floors)


LN10_DB = np.log(10) / 10
"""dB to natural-log power (for adding powers given in dB with ``np.logaddexp``)."""


def own_voice(levels: np.ndarray, bleed: Bleed) -> np.ndarray:
    """(2, frames) mask of the frames where a channel carries its own voice: at least
    ``OWN_VOICE_DB`` above the other channel's level times the coupling plus the noise floor
    (what bleed alone would give there)."""
    out = np.empty(levels.shape, dtype=bool)
    for ch in (0, 1):
        expected = np.logaddexp((levels[1 - ch] + bleed.coupling_db[ch]) * LN10_DB, bleed.floor_db[ch] * LN10_DB)
        out[ch] = levels[ch] * LN10_DB > expected + OWN_VOICE_DB * LN10_DB
    return out


def find_crosstalk(samples: np.ndarray, margin_db: float, mute: bool = False) -> tuple[np.ndarray, list[float], np.ndarray, Bleed]:
    """Where each channel of a stereo call only carries the other party faintly (see
    ``crosstalk_frames``; not where it carries its own voice, ``own_voice``): the audio (with
    those stretches silenced in place when ``mute``, so that neither VAD nor ASR hears the
    bleed; no copy of a long call), the seconds of cross-talk per channel, the frame levels
    (``channel_levels``, the cross-talk frames at ``SILENT_FRAME_DB``: ``drop_crosstalk`` drops
    the words there), and the bleed model of the call (``bleed_model``)."""
    levels = channel_levels(samples)
    bleed = bleed_model(levels, margin_db)
    mask = crosstalk_frames(levels, margin_db) & ~own_voice(levels, bleed)
    for ch in (0, 1):
        # the channel's own sound: not cross-talk, and clearly above its noise floor
        own = ~mask[ch] & (levels[ch] > np.percentile(levels[ch], 10) + CROSSTALK_FLOOR_DB)
        mask[ch] &= ~_widen(own, CROSSTALK_KEEP_FRAMES)
    from models.diarize import runs

    for ch in (0, 1) if mute else ():
        for a, b, is_muted in runs(mask[ch].astype(np.int8)):
            if is_muted:
                samples[ch, a * CROSSTALK_FRAME : b * CROSSTALK_FRAME] = 0.0
    seconds = [round(float(m.sum()) * CROSSTALK_FRAME / SAMPLE_RATE, 2) for m in mask]
    return samples, seconds, np.where(mask, SILENT_FRAME_DB, levels), bleed


BACKGROUND_SMOOTH_S = 0.5
"""Stretch over which a channel's level is averaged when telling its party from background:
long enough to even out the syllables of babble, short enough to follow turns."""

BACKGROUND_KEEP_FRAMES = 10
"""Frames (200 ms) kept on each side of a party's speech when muting background."""

BACKGROUND_PERCENTILE = 20
"""The background level of a channel: this percentile of its smoothed levels (each party is
silent on its own channel for much more than a fifth of a call, while the other talks)."""


def background_levels(frame_levels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """For each stereo channel (its 20 ms ``frame_levels``, cross-talk frames at
    ``SILENT_FRAME_DB`` and left out): its level averaged over ``BACKGROUND_SMOOTH_S``, the
    mask of the frames that sound, and its background level (``BACKGROUND_PERCENTILE`` of the
    averaged levels; ``SILENT_FRAME_DB`` when too little of it sounds to tell)."""
    width = max(1, int(round(BACKGROUND_SMOOTH_S * SAMPLE_RATE / CROSSTALK_FRAME)))
    out = []
    for levels in frame_levels:
        sounding = levels > SILENT_FRAME_DB
        if sounding.sum() < width:
            out.append((np.full(levels.shape, SILENT_FRAME_DB), sounding, SILENT_FRAME_DB))
            continue
        power = np.where(sounding, 10 ** (levels / 10), 0.0)
        count = np.convolve(sounding.astype(np.float64), np.ones(width), mode="same")
        smooth = 10 * np.log10(np.maximum(np.convolve(power, np.ones(width), mode="same") / np.maximum(count, 1), 1e-20))
        out.append((smooth, sounding, float(np.percentile(smooth[sounding], BACKGROUND_PERCENTILE))))
    return out


def find_background(samples: np.ndarray, smoothed: list[tuple[np.ndarray, np.ndarray, float]],
                    speech_dbfs: list[float], options: SpeakerOptions) -> list[float]:
    """Silence in place the stretches of each stereo channel that carry only background: its
    level averaged over ``BACKGROUND_SMOOTH_S`` at most ``background_floor_db`` above the
    channel's background level (``smoothed``, from ``background_levels``) and more than
    ``background_below_db`` below its speech level (``speech_dbfs``), kept
    ``BACKGROUND_KEEP_FRAMES`` away from the party's speech. On a quiet line the background
    level is the noise floor, far below any speech, and nothing is silenced; on a noisy floor
    it is the other voices' level, about 10 dB under the party's. Frames already muted as
    cross-talk are left out. Returns the seconds silenced per channel."""
    from models.diarize import runs

    seconds = []
    for ch, (smooth, sounding, floor) in enumerate(smoothed):
        if floor <= SILENT_FRAME_DB:
            seconds.append(0.0)
            continue
        threshold = min(floor + options.background_floor_db, speech_dbfs[ch] - options.background_below_db)
        party = _widen(smooth > threshold, BACKGROUND_KEEP_FRAMES)
        mask = sounding & ~party
        for a, b, muted in runs(mask.astype(np.int8)):
            if muted:
                samples[ch, a * CROSSTALK_FRAME : b * CROSSTALK_FRAME] = 0.0
        seconds.append(round(float(mask.sum()) * CROSSTALK_FRAME / SAMPLE_RATE, 2))
    return seconds


def loudness_dbfs(frame_levels: np.ndarray, start: float, end: float) -> float:
    """The loudness of ``start``..``end`` seconds of a channel (its 20 ms ``frame_levels``):
    the RMS of its loudest tenth of frames, in dBFS (as ``speech_level_dbfs`` for a whole
    channel)."""
    a = min(int(start * SAMPLE_RATE) // CROSSTALK_FRAME, frame_levels.size - 1)
    b = min(max(a + 1, -(-int(end * SAMPLE_RATE) // CROSSTALK_FRAME)), frame_levels.size)
    power = np.sort(10 ** (frame_levels[a:b] / 10))
    return _dbfs(float(np.sqrt(np.mean(power[-max(1, power.size // 10):]))))


def drop_background(utterances: list[Utterance], check: ChannelCheck, share: float) -> tuple[list[Utterance], int]:
    """Drop the stereo utterances whose loudness (``loudness_dbfs``) lies in the lower ``share``
    of the range from their channel's background level to its speech level (``check``): the
    other voices of a noisy floor, which reach the party's microphone about 10 dB under the
    party. A channel whose background level is unknown, or not under its speech level, keeps
    everything. Returns the utterances and the number of words (or word-less utterances)
    dropped."""
    if share <= 0 or check.frame_levels is None or check.background_dbfs is None:
        return utterances, 0
    kept, dropped = [], 0
    for u in utterances:
        floor, speech = check.background_dbfs[u.channel], check.levels_dbfs[u.channel]
        bar = floor + share * (speech - floor)
        if floor <= SILENT_FRAME_DB or floor >= speech or loudness_dbfs(check.frame_levels[u.channel], u.start, u.end) >= bar:
            kept.append(u)
        else:
            dropped += max(1, len(u.words))
    return kept, dropped


def drop_crosstalk(
    utterances: list[Utterance], samples: np.ndarray, margin_db: float, levels: np.ndarray | None = None,
    bleed: Bleed | None = None,
) -> tuple[list[Utterance], int]:
    """Drop the words of stereo utterances that are the other party heard faintly on this
    channel: the channel at least ``margin_db`` quieter than the other over the word, and fewer
    than ``OWN_VOICE_MIN_FRAMES`` of its frames carrying the channel's own voice (a party's
    words spoken over the other party are kept). An utterance left without words is dropped.
    ``levels``: the audio's ``channel_levels`` when already known; ``bleed``: the call's
    ``bleed_model`` before muting (else found from ``levels``, leaving muted frames out).
    Returns the utterances and the number of words (or word-less utterances) dropped."""
    if samples.shape[0] < 2:
        return utterances, 0
    levels = channel_levels(samples) if levels is None else levels
    power = 10 ** (levels / 10)
    voiced = np.concatenate([np.zeros((2, 1), dtype=np.int64),
                             np.cumsum(own_voice(levels, bleed or bleed_model(levels, margin_db)), axis=1)], axis=1)

    def is_bleed(channel: int, start: float, end: float) -> bool:
        a = min(int(start * SAMPLE_RATE) // CROSSTALK_FRAME, power.shape[1] - 1)
        b = min(max(a + 1, -(-int(end * SAMPLE_RATE) // CROSSTALK_FRAME)), power.shape[1])
        own, other = power[channel, a:b].mean(), power[1 - channel, a:b].mean()
        if not 10 * np.log10(max(own, 1e-20)) < 10 * np.log10(max(other, 1e-20)) - margin_db:
            return False
        return bool(voiced[channel, b] - voiced[channel, a] < OWN_VOICE_MIN_FRAMES)

    kept: list[Utterance] = []
    dropped = 0
    for u in utterances:
        if not u.words:
            if is_bleed(u.channel, u.start, u.end):
                dropped += 1
            else:
                kept.append(u)
            continue
        words = [w for w in u.words if not is_bleed(u.channel, w.start, w.end)]
        dropped += len(u.words) - len(words)
        if not words:
            continue
        if len(words) == len(u.words):
            kept.append(u)
        else:
            text = " ".join(w.word.strip() for w in words)
            kept.append(Utterance(u.id, u.channel, words[0].start, words[-1].end, text, words, u.speaker))
    return kept, dropped


def drop_unsure(utterances: list[Utterance], min_probability: float) -> tuple[list[Utterance], int]:
    """The utterances whose words' mean probability is at least ``min_probability`` (those
    without words are kept), and the number of words dropped."""
    kept, dropped = [], 0
    for u in utterances:
        if u.words and sum(w.probability for w in u.words) / len(u.words) < min_probability:
            dropped += len(u.words)
        else:
            kept.append(u)
    return kept, dropped


def _speaker_of(word: Word, turns: list[Any]) -> str | None:
    """The speaker whose turn overlaps the word most; when none overlaps it (a word the
    recogniser gave no duration, or one in a pause), the turn nearest to its middle: the turn
    holding that instant, else the closest turn end or start."""
    best, best_overlap = None, 0.0
    for t in turns:
        overlap = min(word.end, t.end) - max(word.start, t.start)
        if overlap > best_overlap:
            best, best_overlap = t.speaker, overlap
    if best is not None:
        return best
    mid = (word.start + word.end) / 2
    nearest = min(turns, key=lambda t: max(t.start - mid, 0.0, mid - t.end), default=None)
    return nearest.speaker if nearest is not None else None


def split_at_speaker_changes(utterances: list[Utterance], turns: list[Any]) -> list[Utterance]:
    """Give every word a speaker from the diarization turns and cut utterances where it changes."""
    out: list[Utterance] = []
    for u in utterances:
        if not u.words:
            speaker = _speaker_of(Word(u.text, u.start, u.end, 1.0), turns)
            out.append(Utterance(u.id, u.channel, u.start, u.end, u.text, [], speaker))
            continue
        groups: list[tuple[str | None, list[Word]]] = []
        for w in u.words:
            s = _speaker_of(w, turns)
            if groups and groups[-1][0] == s:
                groups[-1][1].append(w)
            else:
                groups.append((s, [w]))
        for speaker, words in groups:
            text = u.text if len(groups) == 1 else " ".join(w.word for w in words)
            out.append(Utterance(u.id, u.channel, words[0].start, words[-1].end, text, words, speaker))
    return renumber(out)


def renumber(utterances: list[Utterance]) -> list[Utterance]:
    """Order utterances by time and number them u0001, u0002..."""
    utterances.sort(key=lambda u: (u.start, u.channel))
    for i, u in enumerate(utterances, 1):
        u.id = f"u{i:04d}"
    return utterances


# -- speech turns ------------------------------------------------------------------------------

TURN_BRIDGE_S = 0.5
"""A pause shorter than this inside one speaker's speech does not end the speaker's turn (on a
mono call only when nobody else speaks in it): the conversation metrics' ``bridge_gap_s``,
where a breath between two words is still talking. Diarized and VAD turns break at every
pause of 0.2 s or more (``diarization.turn_min_pause_ms``)."""

TURN_PIECE_S = 30.0
"""``channel_speech`` runs VAD over pieces of a speech region of at most this many seconds."""

Span = tuple[float, float]
Turn = tuple[float, float, str]
"""A speech turn: start and end in seconds, speaker."""


def _union(spans: list[Span], bridge_s: float = 0.0) -> list[Span]:
    """Sorted, disjoint union of spans; gaps shorter than ``bridge_s`` closed."""
    out: list[list[float]] = []
    for start, end in sorted(spans):
        if out and (start <= out[-1][1] or start - out[-1][1] < bridge_s):
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def channel_speech(channel: np.ndarray, regions: list[Any], diarization: Any = None) -> list[Span]:
    """Where one channel of a stereo call has speech, in seconds: inside its speech regions
    (samples at 16 kHz, as transcription used them), what VAD finds again with the diarizer's
    tight turn settings (``diarization.turn_vad_*``, the cut of mono turns), or the regions
    themselves when those are off (``turn_vad_threshold`` null)."""
    from models.diarize import DiarizationOptions
    from models.vad import VadOptions, detect_speech

    options = diarization if diarization is not None else DiarizationOptions()
    n = int(channel.shape[0])
    regions = [(max(0, int(r.start)), min(n, int(r.end))) for r in regions]
    regions = [(a, b) for a, b in regions if b > a]
    if options.turn_vad_threshold is None:
        return _union([(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in regions])
    tight = VadOptions(threshold=options.turn_vad_threshold, speech_pad_ms=options.turn_pad_ms,
                       min_silence_duration_ms=options.turn_min_pause_ms)
    piece = int(TURN_PIECE_S * SAMPLE_RATE)
    spans = []
    for a, b in regions:
        for start in range(a, b, piece):
            audio_piece = np.asarray(channel[start : min(b, start + piece)], dtype=np.float32)
            spans += [((start + q.start) / SAMPLE_RATE, (start + q.end) / SAMPLE_RATE)
                      for q in detect_speech(audio_piece, tight)]
    return _union(spans)


class _Spans:
    """Disjoint spans in time order, looked up by bisection (calls of hours have thousands)."""

    def __init__(self, spans: list[Span]):
        self.spans = spans
        self.starts = [s for s, _ in spans]

    def containing(self, t: float) -> Span | None:
        """The span holding time ``t`` (ends included), if any."""
        i = bisect.bisect_right(self.starts, t) - 1
        return self.spans[i] if i >= 0 and self.spans[i][1] >= t else None

    def touches(self, start: float, end: float) -> bool:
        """Whether a span overlaps or touches [start, end]."""
        i = bisect.bisect_right(self.starts, end) - 1
        return i >= 0 and self.spans[i][1] >= start

    def inside(self, start: float, end: float) -> bool:
        """Whether a span lies partly inside the open pause (start, end)."""
        i = bisect.bisect_left(self.starts, end) - 1
        return i >= 0 and self.spans[i][1] > start


def _word_spans(utterances: list[Utterance]) -> dict[str, list[Span]]:
    """Each speaker's word spans (an utterance without word times: its own span)."""
    out: dict[str, list[Span]] = {}
    for u in utterances:
        if u.speaker is not None:
            out.setdefault(u.speaker, []).extend([(w.start, w.end) for w in u.words] or [(u.start, u.end)])
    return out


def speech_turns(speech: list[Turn], utterances: list[Utterance], mono: bool,
                 bridge_s: float = TURN_BRIDGE_S) -> list[Turn]:
    """Each speaker's turns, in time order: the stretches of ``speech`` (start, end, speaker:
    the diarizer's turns of a mono call, or each channel's speech with its speaker) refined
    by the words of ``utterances`` (speaker given): a word outside all of its speaker's speech
    adds its own span, and pauses shorter than ``bridge_s`` inside one speaker's speech are
    closed, on a ``mono`` call only when no other speaker's speech or word is in the pause.
    On a stereo call (not ``mono``) a stretch holding none of its speaker's words is left out
    (noise, or bleed the cross-talk check could not mute); a mono call keeps all the
    diarizer's turns (speech the recogniser gave no word, such as a short "mhm"). Turns of two
    speakers overlap where both talk (stereo); the diarizer gives one speaker at a time."""
    words = _word_spans(utterances)
    by_speaker: dict[str, list[Span]] = {}
    for start, end, speaker in speech:
        if end > start:
            by_speaker.setdefault(speaker, []).append((start, end))
    spans: dict[str, list[Span]] = {}
    for speaker in sorted(set(by_speaker) | set(words)):
        own = _Spans(_union(by_speaker.get(speaker, [])))
        stray = [w for w in words.get(speaker, []) if w[1] > w[0] and not own.touches(*w)]
        spans[speaker] = _union(own.spans + stray)
    out: list[Turn] = []
    for speaker, own_spans in spans.items():
        others = _Spans(_union([s for k, v in spans.items() if k != speaker for s in v]
                               + [w for k, v in words.items() if k != speaker for w in v]))
        joined: list[list[float]] = []
        for start, end in own_spans:
            if joined and start - joined[-1][1] < bridge_s and not (mono and others.inside(joined[-1][1], start)):
                joined[-1][1] = end
            else:
                joined.append([start, end])
        mine = _Spans(_union(words.get(speaker, [])))
        out += [(start, end, speaker) for start, end in joined if mono or mine.touches(start, end)]
    return sorted(out, key=lambda t: (t[0], t[1], t[2]))


def fit_to_turns(utterances: list[Utterance], turns: list[Turn]) -> list[Utterance]:
    """Utterance times that follow the speech turns (each speaker's turns disjoint, as
    ``speech_turns`` gives them): an utterance starts where the turn of its first word starts
    and ends where the turn of its last word ends (never inside a word: a word the recogniser
    timed past its turn keeps its utterance around it). Utterances of one speaker in one turn
    share it: each but the first starts at its first word, the one before it ends there.
    Utterances without words keep their times. Returns them in time order, numbered again."""
    by_speaker: dict[str, list[Span]] = {}
    for start, end, speaker in turns:
        by_speaker.setdefault(speaker, []).append((start, end))
    groups: dict[str, list[Utterance]] = {}
    for u in utterances:
        if u.words and u.speaker is not None:
            groups.setdefault(u.speaker, []).append(u)
    for speaker, group in groups.items():
        own = _Spans(_union(by_speaker.get(speaker, [])))
        spans = []  # [start, end, first word start, last word end, utterance]
        for u in sorted(group, key=lambda u: min(w.start for w in u.words)):
            lo, hi = min(w.start for w in u.words), max(w.end for w in u.words)
            first, last = own.containing(lo), own.containing(hi)
            spans.append([min(lo, first[0]) if first else lo, max(hi, last[1]) if last else hi, lo, hi, u])
        for a, b in zip(spans, spans[1:]):
            if a[1] > b[0]:  # one turn: the later utterance starts at its first word
                a[1], b[0] = max(a[3], min(a[1], b[2])), b[2]
        for start, end, _, _, u in spans:
            u.start, u.end = round(start, 3), round(end, 3)
    return renumber(utterances)


def turns_block(turns: list[Turn]) -> list[list[Any]]:
    """Speech turns as the speakers block keeps them: ``[start, end, speaker]``."""
    return [[round(start, 3), round(end, 3), speaker] for start, end, speaker in turns]


def turns_by_speaker(utterances: list[Utterance]) -> dict[str, list[tuple[float, float, str]]]:
    turns: dict[str, list[tuple[float, float, str]]] = {}
    for u in utterances:
        if u.speaker is not None:
            turns.setdefault(u.speaker, []).append((u.start, u.end, u.text))
    return turns


def configured_agent_channel(metadata: dict[str, str], options: SpeakerOptions) -> tuple[str, str]:
    """The agent channel for a stereo call and where the setting came from."""
    column = (metadata.get("agent_channel") or "").strip().lower()
    if column:
        if column not in (*CHANNEL_NAMES, "auto"):
            raise ConfigError(f"manifest column agent_channel: '{column}' is not left, right or auto")
        return column, "manifest column agent_channel"
    queue = (metadata.get("queue") or "").strip()
    if queue and queue in options.queue_agent_channel:
        return options.queue_agent_channel[queue], f"speakers.queue_agent_channel[{queue}]"
    return options.agent_channel, "speakers.agent_channel"


# -- manual overrides ------------------------------------------------------------------------


def overrides_path(options: SpeakerOptions, out_dir: Path) -> Path:
    return Path(options.overrides_file).expanduser() if options.overrides_file else out_dir / OVERRIDES_FILE


def read_overrides(path: Path) -> dict[str, str]:
    """``call_id -> agent`` from the overrides CSV (absent file: no overrides)."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"call_id", "agent"} <= set(reader.fieldnames):
                raise ConfigError(f"{path}: a speaker overrides file needs the columns call_id,agent")
            rows = {}
            for n, row in enumerate(reader, 2):
                call_id, agent = (row.get("call_id") or "").strip(), (row.get("agent") or "").strip()
                if not call_id or not agent:
                    raise ConfigError(f"{path}, line {n}: call_id and agent must both be given")
                rows[call_id] = agent
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{path}: cannot read speaker overrides: {e}") from e


def apply_override(roles: dict[str, str], override: str, channel_speakers: dict[str, str]) -> dict[str, str]:
    """Roles after a manual decision: ``swap`` exchanges agent and customer; a speaker id (or a
    channel name on stereo calls) names the agent and makes the other main speaker the customer."""
    if override.lower() == "swap":
        flip = {AGENT: CUSTOMER, CUSTOMER: AGENT}
        return {s: flip.get(r, r) for s, r in roles.items()}
    agent = channel_speakers.get(override.lower(), override)
    if agent not in roles:
        raise ConfigError(f"speaker override names '{override}', which is not a speaker of this call ({', '.join(roles) or 'none'})")
    out = {}
    for s, r in roles.items():
        if s == agent:
            out[s] = AGENT
        elif r in (AGENT, CUSTOMER):
            out[s] = CUSTOMER
        else:
            out[s] = r
    return out


def set_roles(utterances: list[Utterance], roles: dict[str, str]) -> None:
    for u in utterances:
        u.role = roles.get(u.speaker, UNKNOWN) if u.speaker is not None else UNKNOWN


def relabelled(block: dict[str, Any], override: str | None) -> dict[str, Any]:
    """The speakers block with the manual ``override`` applied (recording the automatic
    decision beside it), or back to the automatic decision when ``override`` is None."""
    automatic = block.get("automatic", block)
    if not override:
        return dict(automatic)
    channel_speakers = block.get("channel_speakers", {})
    new_block = {
        "method": "override", "roles": apply_override(dict(automatic["roles"]), override, channel_speakers),
        "confidence": 1.0, "override": override, "automatic": automatic,
        "evidence": [{"cue": "manual override", "value": override}],
    }
    if channel_speakers:
        new_block["channel_speakers"] = channel_speakers
    return new_block


def relabel_record(record: Interaction, override: str | None) -> Interaction:
    """Apply (or remove) a manual override on a finished interaction without redoing any work."""
    record.speakers = relabelled(record.speakers or {}, override)
    set_roles(record.utterances, record.speakers["roles"])
    return record


def with_override(utterances: list[Utterance], block: dict[str, Any],
                  override: str | None) -> tuple[list[Utterance], dict[str, Any]]:
    """Roles on ``utterances`` from the automatic ``block``, or from the manual ``override``
    when there is one (then the block records both); returns them and the block."""
    if override:
        block = relabelled(block, override)
    set_roles(utterances, block["roles"])
    return utterances, block


# -- the stage --------------------------------------------------------------------------------


class SpeakerStage:
    """Finds speakers and roles for one call; holds the diarizer and text model (loaded lazily,
    once per worker)."""

    def __init__(self, options: SpeakerOptions, diarization: Any, roles: Any, threads: int):
        self.options = options
        self.diarization_options = diarization
        self.role_options = roles
        self.threads = threads
        self._diarizer = None
        self._embedder = None
        self.used: set[str] = set()
        """The models the call being processed has used (:meth:`describe`; ``begin`` empties it)."""

    def begin(self) -> None:
        """A new call: no model used by it yet."""
        self.used = set()

    @property
    def diarizer(self):  # noqa: ANN201 - models.diarize.Diarizer
        if self._diarizer is None:
            from models.diarize import load_diarizer

            self._diarizer = load_diarizer(self.diarization_options, self.threads)
        self.used.add("diarization")
        return self._diarizer

    @property
    def embedder(self):  # noqa: ANN201 - models.text_embedding.SentenceEmbedder
        if self._embedder is None:
            from models.text_embedding import SentenceEmbedder

            self._embedder = SentenceEmbedder(self.threads)
        self.used.add("text_embedding")
        return self._embedder

    def describe(self) -> dict[str, Any]:
        """Provenance of the models the current call used (not of every model this worker
        loaded for calls before it: a call's record is the same on any worker split)."""
        d: dict[str, Any] = {}
        if "diarization" in self.used and self._diarizer is not None:
            d["diarization"] = self._diarizer.describe()
        if "text_embedding" in self.used and self._embedder is not None:
            d["text_embedding"] = self._embedder.describe()
        return d

    def diarize(self, samples: Any, regions: list[Any] | None = None) -> list[Any]:
        """Speaker turns of a mono call (``samples`` of shape (1, n)); may run on a thread
        beside transcription (the models release the interpreter while they compute)."""
        return self.diarizer.diarize(samples[0], regions)

    @staticmethod
    def _regions(channel: Any, regions: list[Any] | None) -> list[Any]:
        """A channel's speech regions as transcription found them, or found now with the
        default VAD settings when not given."""
        if regions is not None:
            return regions
        from models.vad import VadOptions, speech_regions

        return speech_regions(channel, VadOptions())

    def _decide(self, utterances: list[Utterance], company: str | None) -> dict[str, Any]:
        from pipeline.speakers.roles import assign_roles

        decision = assign_roles(turns_by_speaker(utterances), self.role_options, self.embedder, company=company)
        return {"roles": dict(decision.roles), "confidence": round(float(decision.confidence), 3),
                "low_confidence": bool(decision.low_confidence),
                "scores": {k: round(float(v), 3) for k, v in decision.scores.items()}, "evidence": decision.evidence}

    def run(self, utterances: list[Utterance], samples: np.ndarray, check: ChannelCheck,
            metadata: dict[str, str], override: str | None,
            regions: list[Any] | None = None, turns: list[Any] | None = None) -> tuple[list[Utterance], dict[str, Any]]:
        """Assign speaker and role to every utterance and fit its times to the speech turns;
        returns them and the ``speakers`` block (its ``turns``: ``speech_turns``).

        ``regions``: the speech regions transcription found, per channel (``{channel:
        regions}``; a list: channel 0's), found again when not given; ``turns``: a mono call's
        diarization when already done (``diarize``). ``samples`` is the audio as transcribed
        (stereo only when the check found real stereo).
        """
        company = (metadata.get("company") or "").strip() or None
        by_channel = regions if isinstance(regions, dict) else ({0: regions} if regions is not None else {})
        block: dict[str, Any]
        if samples.shape[0] == 2:
            utterances, dropped = drop_crosstalk(utterances, samples, self.options.crosstalk_margin_db,
                                                 check.frame_levels, check.bleed)
            utterances, unsure = drop_unsure(utterances, self.options.background_min_probability)
            utterances, quiet = drop_background(utterances, check, self.options.background_utterance_share)
            for u in utterances:
                u.speaker = f"S{u.channel}"
            speech = [(start, end, f"S{ch}") for ch in (0, 1)
                      for start, end in channel_speech(samples[ch], self._regions(samples[ch], by_channel.get(ch)),
                                                       self.diarization_options)]
            written = speech_turns(speech, utterances, mono=False)
            utterances = fit_to_turns(utterances, written)
            channel_speakers = {name: f"S{i}" for i, name in enumerate(CHANNEL_NAMES)}
            agent_channel, source = configured_agent_channel(metadata, self.options)
            if agent_channel == "auto":
                block = {"method": "channel", **self._decide(utterances, company), "agent_channel": "auto"}
                for s in ("S0", "S1"):
                    block["roles"].setdefault(s, UNKNOWN)
            else:
                agent = channel_speakers[agent_channel]
                block = {"method": "channel", "agent_channel": agent_channel, "confidence": 1.0,
                         "roles": {s: AGENT if s == agent else CUSTOMER for s in ("S0", "S1")},
                         "evidence": [{"cue": "configured agent channel", "value": agent_channel, "source": source}]}
            block["channel_speakers"] = channel_speakers
            block["crosstalk_dropped"] = dropped
            block["unsure_dropped"] = unsure
            block["background_dropped"] = quiet
        else:
            if not utterances:
                turns = []
            elif turns is None:
                turns = self.diarize(samples, by_channel.get(0))
            utterances = split_at_speaker_changes(utterances, turns) if turns else renumber(utterances)
            if not turns:
                for u in utterances:
                    u.speaker = "S0"
            written = speech_turns([(t.start, t.end, t.speaker) for t in turns], utterances, mono=True)
            utterances = fit_to_turns(utterances, written)
            block = {"method": "diarization", **self._decide(utterances, company),
                     "speaker_count": len({t.speaker for t in turns})}
        block["channel_check"] = check.to_dict()
        block["turns"] = turns_block(written)
        return with_override(utterances, block, override)
