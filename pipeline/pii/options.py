"""What the ``pii`` section sets, and a span of personal data found in the words (shared by
the text and audio redaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.ner import DEFAULT_MODEL
from pipeline.errors import check_options

ENTITY_TYPES = ("CREDIT_CARD", "SSN", "PHONE", "ACCOUNT_NUMBER", "EMAIL", "PERSON", "DATE_OF_BIRTH", "ADDRESS")
AUDIO_METHODS = ("tone", "silence")


@dataclass
class PiiOptions:
    """The ``pii`` config section: what personal data is found and how outputs are redacted."""

    enabled: bool = True
    """Look for personal data at all."""
    redact: bool = True
    """Written outputs (call.json, transcripts, subtitles) carry redacted words; the spans are
    recorded either way."""
    entities: list[str] = field(default_factory=lambda: list(ENTITY_TYPES))
    """Types to find, from CREDIT_CARD, SSN, PHONE, ACCOUNT_NUMBER, EMAIL, PERSON,
    DATE_OF_BIRTH, ADDRESS."""
    min_account_digits: int = 6
    """A digit run this long (not a card, phone or SSN) is an account number without any cue
    word; shorter runs only right after "account / reference / policy ... number"."""
    min_spelled_digits: int = 4
    """Digits read out one by one ("four four eight two", "eight-two-one-nine", "double two
    five") are personal data from this many on, whatever was said before them (an account,
    card or phone number read digit by digit; the cue words are often misheard)."""
    names: bool = True
    """Use spaCy NER for PERSON names (with self-introduction patterns). False: patterns and
    capitalisation only, spaCy is never loaded."""
    spacy_model: str = DEFAULT_MODEL
    """Installed spaCy pipeline package or local pipeline directory (see models/ner.py)."""
    redact_audio: bool | None = None
    """Write ``audio_redacted.wav``, a copy of the call's audio with every span masked (the
    copy the review app plays). null: follow ``redact``, so redacted text never comes with
    unmasked audio; false only where nobody can open the audio."""
    audio_method: str = "tone"
    """``tone`` (a 1 kHz beep) or ``silence`` over each span."""
    audio_pad_s: float = 0.2
    """Seconds masked before and after each span (word times are approximate)."""


def masks_audio(options: PiiOptions) -> bool:
    """Whether a run with these options writes the masked copy of each call's audio."""
    return options.enabled and (options.redact if options.redact_audio is None else options.redact_audio)


def validate(options: PiiOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    bad_types = [e for e in options.entities if e not in ENTITY_TYPES]
    checks = [
        (not bad_types, "entities", f"a list of {', '.join(ENTITY_TYPES)}"),
        (isinstance(options.min_account_digits, int) and 3 <= options.min_account_digits <= 20,
         "min_account_digits", "an integer from 3 to 20"),
        (bool(options.spacy_model), "spacy_model", "an installed spaCy pipeline package or a local directory"),
        (options.audio_method in AUDIO_METHODS, "audio_method", f"one of {', '.join(AUDIO_METHODS)}"),
        (0 <= options.audio_pad_s <= 2, "audio_pad_s", "seconds from 0 to 2"),
        (isinstance(options.min_spelled_digits, int) and 2 <= options.min_spelled_digits <= 20,
         "min_spelled_digits", "an integer from 2 to 20"),
        (options.redact_audio is None or isinstance(options.redact_audio, bool), "redact_audio",
         "true, false or null (follow redact)"),
    ]
    for key in ("enabled", "redact", "names"):
        checks.append((isinstance(getattr(options, key), bool), key, "true or false"))
    check_options("pii", options, checks)


@dataclass
class PiiSpan:
    """Personal data found in words ``first_word..last_word`` (inclusive) of one utterance.

    For an utterance without words the indices count its whitespace-separated text tokens and
    the times are the utterance's. ``detector`` says which rule found it (luhn, digits, context,
    regex, spoken, spelled, date, pattern, ner, repeat, sounds-like).
    """

    type: str
    utterance_id: str
    first_word: int
    last_word: int
    start: float
    end: float
    detector: str

    def to_dict(self) -> dict[str, Any]:
        """The span without the words it covers: safe to write beside redacted outputs."""
        return {"type": self.type, "utterance_id": self.utterance_id, "first_word": self.first_word,
                "last_word": self.last_word, "start": round(float(self.start), 3),
                "end": round(float(self.end), 3), "detector": self.detector}
