"""The ``live`` config section: where ``callqa serve --live`` keeps the calls it receives and
what it does when one ends. Settings of the server, not of a run (they never change a call's
results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import check_options

PARTIES = ("agent", "customer")


@dataclass
class LiveOptions:
    archive: str = "live_archive"
    """Folder of the recordings of streamed calls: ``<call_id>.wav`` (stereo, 8 kHz, agent on the
    left channel, customer on the right) and ``manifest.csv`` (a row per finished call with its
    metadata), so that ``callqa run ARCHIVE/manifest.csv`` processes them like any recording.
    While a call goes on its audio is in ``ARCHIVE/.live/`` (written as it arrives)."""
    out: str | None = None
    """Results folder: each call that ends is run through the batch pipeline into it (with the
    server's ``--config``), as ``callqa run`` would; the nightly run on the same folder then finds
    it done. null: the calls are archived only."""
    inbound: str = "customer"
    """The party of Twilio's ``inbound`` track (the caller as Twilio hears it); ``outbound`` is
    the other one."""
    reconnect_grace_s: float = 15.0
    """A stream that drops without ``stop`` is kept open this long: a new stream with the same
    call id continues the same call. Then the call ends."""
    alert_items: list[str] = field(default_factory=lambda: ["courtesy.no_prohibited"])
    """Scorecard items whose answer "no" on what a live call has said so far raises an alert
    with the item's evidence (the default template's prohibited phrases)."""
    alert_negative_sentiment: bool = True
    """Alert when the customer's last turns are negative (``sentiment.negative_threshold``)."""
    alert_silence_s: float = 30.0
    """Alert when neither party has made a sound for this long (0: never)."""
    alert_crosstalk_s: float = 3.0
    """Alert when both parties talk at once for this long (0: never)."""
    alert_long_call_s: float = 900.0
    """Alert when a call goes on longer than this (0: never)."""
    step_s: float = 0.5
    """Seconds of a party's audio between two recognitions of its buffer while it talks: a word
    is confirmed when two recognitions agree, so shorter steps confirm sooner and cost more
    decodes. A worker that cannot keep up with every step recognises what has waited in one
    decode (its steps grow by themselves, its lag stays bounded). Measured through the server
    on 2 cores, two 6-minute calls: median latency 1.14 s with 0.5, 1.81 s with 1.0."""
    encoder_s: float | None = 15.0
    """Whisper's encoder sees a party's buffer plus a second, at least this many seconds,
    instead of its whole 30 s window: a recognition costs about half as much, the words the
    same (measured against the batch transcript; 10 s repeats text). null: the whole window.
    The faster-whisper backend only (openai-whisper always encodes 30 s)."""
    transcribe_calls: int = 2
    """Calls transcribed live at once (a recognition worker process beside the server, with the
    batch pipeline's ``asr`` and ``vad`` settings); a call beyond them is "recording only",
    transcribed by the batch pipeline when it ends. 0: no live transcription. 2: what 2 cores
    follow within the latency asked (median 1.14 s, 95th percentile 2.52 s); 4 calls were
    followed at 2.20 s and 4.21 s over 15 minutes."""


def _folder_possible(path: object) -> bool:
    """A folder that exists or can be made: its nearest existing ancestor is a folder."""
    if not isinstance(path, str) or not path:
        return False
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p.is_dir()


def validate(options: LiveOptions) -> None:
    """ConfigError naming ``live.KEY`` for a value out of range."""
    check_options("live", options, [
        (_folder_possible(options.archive), "archive", "a folder (one that exists or can be made)"),
        (options.out is None or _folder_possible(options.out), "out", "a folder (one that exists or can be made) or null"),
        (options.inbound in PARTIES, "inbound", "agent or customer"),
        (isinstance(options.reconnect_grace_s, (int, float)) and not isinstance(options.reconnect_grace_s, bool)
         and 0 <= options.reconnect_grace_s <= 3600, "reconnect_grace_s", "seconds between 0 and 3600"),
        (isinstance(options.alert_items, list) and all(isinstance(i, str) and i for i in options.alert_items),
         "alert_items", "a list of scorecard item ids"),
        *[(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 86400, k, "seconds between 0 and 86400")
          for k, v in (("alert_silence_s", options.alert_silence_s), ("alert_crosstalk_s", options.alert_crosstalk_s),
                       ("alert_long_call_s", options.alert_long_call_s))],
        (isinstance(options.step_s, (int, float)) and not isinstance(options.step_s, bool)
         and 0.2 <= options.step_s <= 10, "step_s", "seconds between 0.2 and 10"),
        (options.encoder_s is None or (isinstance(options.encoder_s, (int, float)) and not isinstance(options.encoder_s, bool)
                                       and 12 <= options.encoder_s <= 30), "encoder_s", "null or seconds from 12 to 30"),
        (isinstance(options.transcribe_calls, int) and not isinstance(options.transcribe_calls, bool)
         and 0 <= options.transcribe_calls <= 64, "transcribe_calls", "a number of calls, 0 to 64"),
    ])
