"""A detector plugin as another package would write it (tests/pipeline/test_plugins.py).

The tests declare its entry points in a ``*.dist-info`` they write to a temporary folder, as
pip would on install::

    [callqa.detectors]
    keyword_count = callqa_example_plugin:KeywordCountDetector

    [callqa.na_conditions]
    short_call = callqa_example_plugin:short_call
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.analysis.detectors import Detection, Detector, Evidence
from pipeline.analysis.detectors.context import CallContext


@dataclass
class KeywordCountParams:
    """Parameters of ``keyword_count``."""

    role: str = "agent"
    """Whose words."""
    keywords: list[str] = field(default_factory=list)
    """Whole words to count (lowercase)."""
    at_least: int = 1
    """Yes when the keywords are said at least this many times in all."""


class KeywordCountDetector(Detector):
    """Yes when the role says the keywords at least ``at_least`` times."""

    Params = KeywordCountParams

    def detect(self, ctx: CallContext) -> Detection:
        p = self.params
        hits = [u for u in ctx.select(p.role) for w in u.norm.split() if w in p.keywords]
        answer = "yes" if len(hits) >= p.at_least else "no"
        evidence = [Evidence.of_unit(u, "keyword") for u in hits[:3]]
        return Detection(answer, 0.9, evidence, f"{', '.join(p.keywords)} at least {p.at_least} times")


def short_call(ctx: CallContext) -> tuple[bool, list[Evidence], str]:
    """Holds for a call shorter than 30 seconds."""
    return ctx.facts.duration_s < 30.0, [], "the call is shorter than 30 s"
