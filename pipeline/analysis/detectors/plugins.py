"""Detectors and not-applicable conditions from other packages, found by entry point.

A package adds a detector by declaring an entry point in the group ``callqa.detectors``: its
name is the detector's name in templates (``detector: keyword_count``), its object a
:class:`~pipeline.analysis.detectors.base.Detector` subclass. A not-applicable condition is an entry
point in ``callqa.na_conditions``: its name is the condition's name in ``na_when``, its object
a function ``(CallContext) -> (holds, evidence, why)``. In the package's pyproject.toml::

    [project.entry-points."callqa.detectors"]
    keyword_count = "callqa_example_plugin:KeywordCountDetector"

    [project.entry-points."callqa.na_conditions"]
    short_call = "callqa_example_plugin:short_call"

Installed (``pip install``), they are loaded once per process, the first time a detector is
made or the detectors are listed; nothing in callqa changes. Each call's provenance and each
evaluation report record the distribution and version of the plugins its scorecard used. A
plugin that cannot be loaded, is not what its group needs, or takes a name already taken is a
ConfigError naming the entry point and its distribution.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pipeline.analysis.detectors.base import CONDITIONS, DETECTORS, Detector
from pipeline.errors import ConfigError

DETECTOR_GROUP = "callqa.detectors"
CONDITION_GROUP = "callqa.na_conditions"
GROUPS = (DETECTOR_GROUP, CONDITION_GROUP)


@dataclass(frozen=True)
class Plugin:
    """One entry point that gave a detector or a condition."""

    group: str
    """``callqa.detectors`` or ``callqa.na_conditions``."""
    name: str
    """The detector's or condition's name."""
    entry_point: str
    """Where its object is, ``module:attribute``."""
    distribution: str | None
    """The package that declares it (None when the metadata does not say)."""
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "version": self.version, "group": self.group, "name": self.name,
                "entry_point": self.entry_point}

    def label(self) -> str:
        """``distribution version``, for listings."""
        return f"{self.distribution or 'unknown package'} {self.version or ''}".strip()


PLUGINS: dict[tuple[str, str], Plugin] = {}
"""The plugins loaded, by (group, name)."""

_loaded = False


def _plugin(ep: EntryPoint, group: str) -> Plugin:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    return Plugin(group, ep.name, ep.value, name, dist.version if dist is not None else None)


def _register(ep: EntryPoint, plugin: Plugin) -> None:
    where = f"plugin entry point '{ep.name} = {ep.value}' (group {plugin.group}, {plugin.label()})"
    try:
        obj = ep.load()
    except Exception as e:  # a plugin's import can raise anything: name the entry point, keep the cause
        raise ConfigError(f"{where}: cannot be loaded: {type(e).__name__}: {e}") from e
    if plugin.group == DETECTOR_GROUP:
        if not (inspect.isclass(obj) and issubclass(obj, Detector)):
            raise ConfigError(f"{where}: {obj!r} is not a subclass of pipeline.analysis.detectors.Detector")
        if DETECTORS.get(ep.name, obj) is not obj:
            raise ConfigError(f"{where}: there is already a detector '{ep.name}' ({DETECTORS[ep.name].__module__})")
        obj.name = ep.name
        DETECTORS[ep.name] = obj
    else:
        if not callable(obj):
            raise ConfigError(f"{where}: {obj!r} is not a function (CallContext) -> (holds, evidence, why)")
        if CONDITIONS.get(ep.name, obj) is not obj:
            raise ConfigError(f"{where}: there is already a condition '{ep.name}' ({CONDITIONS[ep.name].__module__})")
        CONDITIONS[ep.name] = obj
    PLUGINS[(plugin.group, ep.name)] = plugin


def load_plugins() -> dict[tuple[str, str], Plugin]:
    """Register the detectors and conditions of every installed plugin (once per process; a
    failed load is tried again next time)."""
    global _loaded
    if not _loaded:
        for group in GROUPS:
            for ep in entry_points(group=group):
                if (group, ep.name) not in PLUGINS:
                    _register(ep, _plugin(ep, group))
        _loaded = True
    return PLUGINS


def plugin_of(group: str, name: str) -> Plugin | None:
    """The plugin that gave the detector or condition ``name`` (None: built in)."""
    return load_plugins().get((group, name))


def plugins_used(items: list[Any]) -> list[dict[str, Any]]:
    """The plugins whose detectors or conditions the scorecard items (pipeline.analysis.scorecard.ItemSpec)
    name, each once, in item order (``Plugin.to_dict``)."""
    used: dict[tuple[str, str], Plugin] = {}
    for item in items:
        for key in [(DETECTOR_GROUP, item.detector), *((CONDITION_GROUP, c) for c in item.na_when)]:
            plugin = plugin_of(*key)
            if plugin is not None:
                used.setdefault(key, plugin)
    return [p.to_dict() for p in used.values()]
