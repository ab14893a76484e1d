"""The ``review`` config section: what the reviewers' web app may serve (``callqa serve --config``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReviewOptions:
    """Settings of ``callqa serve``, not of a run (they never change a call's results)."""

    allow_original_audio: bool = False
    """Let the app play a call's original recording when the run wrote no masked copy
    (``audio_redacted.wav``): for a call whose text is not redacted, or whose run masked no
    audio. Off: such a call has no audio in the app (403 with the reason); an admin's choice."""
