"""The ``live`` config section: where ``callqa serve --live`` keeps the calls it receives and
what it does when one ends. Settings of the server, not of a run (they never change a call's
results)."""

from __future__ import annotations

from dataclasses import dataclass
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
    transcribe_calls: int = 1
    """Calls transcribed live at once (a recognition worker process beside the server, with the
    batch pipeline's ``asr`` and ``vad`` settings); a call beyond them is "recording only",
    transcribed by the batch pipeline when it ends. 0: no live transcription."""


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
        (isinstance(options.transcribe_calls, int) and not isinstance(options.transcribe_calls, bool)
         and 0 <= options.transcribe_calls <= 64, "transcribe_calls", "a number of calls, 0 to 64"),
    ])
