"""Scorecard detectors, registered by name (pipeline/detectors/base.py).

Importing this package registers the built-in detectors: ``phrase`` (phrases.py),
``agent_name`` and ``customer_name`` (names.py), ``dead_air``, ``interruptions`` and
``hold_etiquette`` (timing.py), ``sentiment_end`` (experience.py), and the not-applicable
conditions ``no_customer_problem`` and ``no_customer_speech``. Other packages add detectors
and conditions by entry point (``callqa.detectors``, ``callqa.na_conditions``; plugins.py).
"""

from pipeline.detectors import experience, names, phrases, timing  # noqa: F401 - they register themselves
from pipeline.detectors.base import CONDITIONS, DETECTORS, Detection, Detector, Evidence, make_detector, register
from pipeline.detectors.plugins import PLUGINS, Plugin, load_plugins, plugin_of, plugins_used

__all__ = ["CONDITIONS", "DETECTORS", "PLUGINS", "Detection", "Detector", "Evidence", "Plugin", "load_plugins",
           "make_detector", "plugin_of", "plugins_used", "register", "validate_item"]


def validate_item(item, where: str) -> None:  # noqa: ANN001 - pipeline.scorecard.ItemSpec
    """Raise ConfigError when ``item`` names an unknown detector or condition or gives it bad
    parameters (scorecard templates are checked when they load)."""
    make_detector(item, where)
