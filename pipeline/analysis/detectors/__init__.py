"""Scorecard detectors, registered by name (pipeline/analysis/detectors/base.py).

Importing this package registers the built-in detectors: ``phrase`` (phrases.py),
``agent_name`` and ``customer_name`` (names.py), ``dead_air``, ``interruptions`` and
``hold_etiquette`` (timing.py), ``sentiment_end`` (experience.py), ``response_time``,
``questions_answered``, ``concise``, ``spelling`` and ``signature`` (writing.py), and the not-applicable
conditions ``no_customer_problem`` and ``no_customer_speech``. Other packages add detectors
and conditions by entry point (``callqa.detectors``, ``callqa.na_conditions``; plugins.py).
"""

from pipeline.analysis.detectors import experience, names, phrases, timing, writing  # noqa: F401 - they register themselves
from pipeline.analysis.card import ItemSpec
from pipeline.analysis.detectors.base import CONDITIONS, DETECTORS, Detection, Detector, Evidence, register
from pipeline.errors import ConfigError
from pipeline.analysis.detectors.plugins import PLUGINS, Plugin, load_plugins, plugin_of, plugins_used

__all__ = ["CONDITIONS", "DETECTORS", "PLUGINS", "Detection", "Detector", "Evidence", "Plugin", "load_plugins",
           "make_detector", "plugin_of", "plugins_used", "register", "validate_item"]


def make_detector(item: ItemSpec, where: str = "") -> Detector:
    """The detector instance for ``item``; ConfigError for an unknown detector or condition
    (installed plugins are registered first)."""
    load_plugins()
    where = where or f"item '{item.id}'"
    if item.detector not in DETECTORS:
        raise ConfigError(f"{where}: detector: '{item.detector}' is not a detector; "
                          f"registered: {', '.join(sorted(DETECTORS))}")
    for cond in item.na_when:
        if cond not in CONDITIONS:
            raise ConfigError(f"{where}: na_when: '{cond}' is not a condition; known: {', '.join(sorted(CONDITIONS))}")
    return DETECTORS[item.detector](item, where)


def validate_item(item: ItemSpec, where: str) -> None:
    """Raise ConfigError when ``item`` names an unknown detector or condition or gives it bad
    parameters (scorecard templates are checked when they load)."""
    make_detector(item, where)
