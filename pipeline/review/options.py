"""The ``review`` config section: what the reviewers' web app may serve and how it throttles
log-ins (``callqa serve --config``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import check_options


@dataclass
class ReviewOptions:
    """Settings of ``callqa serve``, not of a run (they never change a call's results)."""

    allow_original_audio: bool = False
    """Let the app play a call's original recording when the run wrote no masked copy
    (``audio_redacted.wav``): for a call whose text is not redacted, or whose run masked no
    audio. Off: such a call has no audio in the app (403 with the reason); an admin's choice."""
    login_window_s: int = 900
    """Failed log-ins are counted over this many seconds (from the first failure of a window)."""
    login_max_failures_account: int = 5
    """This many failures for one user name (known or not) in the window lock that name."""
    login_max_failures_address: int = 20
    """This many failures from one client address in the window lock that address."""
    login_lockout_s: int = 900
    """How long a locked name or address is refused, even with the right password."""
    one_click_accept: list[str] = field(default_factory=list)
    """Scorecard template names (as in the template's ``name``) whose calls show an "accept all
    suggestions" button. Elsewhere (the default) a reviewer answers every item explicitly, and
    a calibration call is always answered blind, whatever this says."""

    pass_mark: float = 0.8
    """A call passes when its score (the reviewed one where there is one, else the automatic
    one; 0-1) is at least this: the dashboards' pass rates."""

    uncertain_share: float = 0.2
    """The share of each period's sample (``callqa sample``: N per agent; rounded) that goes
    instead to the calls where the machine is least sure: the lowest item confidence, weighed by
    how often reviewers recently agreed with that item (pipeline/review/sampling.py). 0: a
    purely random sample."""
    uncertain_recent_days: int = 90
    """Reviews of calls started in this many days before the sampled period's end count as
    recent for an item's agreement."""

    def allows_one_click(self, template: str | None) -> bool:
        """Whether a call scored with ``template`` (the database's "NAME VERSION") allows it."""
        if not template:
            return False
        return template in self.one_click_accept or template.rsplit(" ", 1)[0] in self.one_click_accept


def validate(options: ReviewOptions) -> None:
    """ConfigError naming ``review.KEY`` for a value out of range."""
    check_options("review", options, [
        (options.login_window_s >= 1, "login_window_s", "a number of seconds, 1 or more"),
        (options.login_max_failures_account >= 1, "login_max_failures_account", "1 or more"),
        (options.login_max_failures_address >= 1, "login_max_failures_address", "1 or more"),
        (options.login_lockout_s >= 1, "login_lockout_s", "a number of seconds, 1 or more"),
        (isinstance(options.pass_mark, (int, float)) and not isinstance(options.pass_mark, bool)
         and 0.0 <= options.pass_mark <= 1.0, "pass_mark", "a score between 0 and 1"),
        (isinstance(options.uncertain_share, (int, float)) and not isinstance(options.uncertain_share, bool)
         and 0.0 <= options.uncertain_share <= 1.0, "uncertain_share", "a share between 0 and 1"),
        (options.uncertain_recent_days >= 1, "uncertain_recent_days", "a number of days, 1 or more"),
        (isinstance(options.one_click_accept, list) and all(isinstance(n, str) and n for n in options.one_click_accept),
         "one_click_accept", "a list of scorecard template names"),
    ])
