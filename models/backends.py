"""Named implementations of one kind (ASR backends, diarizers, executors), chosen by a config
key. Each is registered as ``"module:attribute"`` and imported only when chosen, so that a
registry names every choice without loading any (nor the packages they need), and a module
may register an implementation that itself imports the registry's module without an import
circle. Plugins add their own with :meth:`Registry.register`.
"""

from __future__ import annotations

import importlib
from typing import Any

from models.errors import ConfigError


class Registry:
    """Choices of one config key: ``name -> "module:attribute"`` (or the object itself)."""

    def __init__(self, key: str, choices: dict[str, Any]):
        self.key = key
        """The config key that chooses (``asr.backend``): errors name it."""
        self._choices = dict(choices)

    def register(self, name: str, target: Any) -> None:
        """Add (or replace) the choice ``name``: an object, or ``"module:attribute"``."""
        self._choices[name] = target

    def names(self) -> tuple[str, ...]:
        return tuple(self._choices)

    def __contains__(self, name: object) -> bool:
        return name in self._choices

    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported on first use); ConfigError
        naming the key and the choices when there is none."""
        if name not in self._choices:
            raise ConfigError(f"{self.key}: '{name}' is not one of {', '.join(self._choices)}")
        target = self._choices[name]
        if isinstance(target, str):
            module, _, attribute = target.partition(":")
            target = getattr(importlib.import_module(module), attribute)
            self._choices[name] = target
        return target
