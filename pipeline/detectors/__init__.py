"""Scorecard detectors, registered by name (pipeline/detectors/base.py).

Importing this package registers the built-in detectors: ``phrase`` (phrases.py),
``agent_name`` and ``customer_name`` (names.py), ``dead_air``, ``interruptions`` and
``hold_etiquette`` (timing.py), ``sentiment_end`` (experience.py), and the not-applicable
conditions ``no_customer_problem`` and ``no_customer_speech``.
"""

from pipeline.detectors import experience, names, phrases, timing  # noqa: F401 - they register themselves
from pipeline.detectors.base import CONDITIONS, DETECTORS, Detection, Detector, Evidence, make_detector, register

__all__ = ["CONDITIONS", "DETECTORS", "Detection", "Detector", "Evidence", "make_detector", "register", "validate_item"]


def validate_item(item, where: str) -> None:  # noqa: ANN001 - pipeline.scorecard.ItemSpec
    """Raise ConfigError when ``item`` names an unknown detector or condition or gives it bad
    parameters (scorecard templates are checked when they load)."""
    make_detector(item, where)
