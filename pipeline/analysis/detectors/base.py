"""The detector interface: a registry by name, typed parameters, and the Detection record.

A scorecard item names its detector in YAML (``detector: phrase``) with parameters
(``params:``). A detector class declares its parameters as a dataclass (``Params``), and
registers itself with ``@register("name")``; a researcher adds one in a module of this package
(or any module imported before the scorecard loads) without touching the runner, and another
package adds detectors and conditions by entry point (pipeline/analysis/detectors/plugins.py). ``__call__``
does the shared work (not-applicable conditions, the record of what was looked for); subclasses
write only ``detect``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline.analysis.detectors.context import CallContext, Unit
from pipeline.errors import ConfigError, coerce_value
from pipeline.analysis.card import NA, NO, YES, ItemSpec


@dataclass
class Evidence:
    """Where in the call an answer comes from: one unit (or a stretch of time) and why."""

    start: float
    end: float
    rule: str
    """What matched or was measured, e.g. ``fuzzy 'thank you for calling' (92)``."""
    utterance_id: str | None = None
    role: str | None = None
    word_range: tuple[int, int] | None = None
    """Words of the utterance quoted (the quote is taken from the written, redacted words)."""
    quote: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "rule": self.rule}
        if self.utterance_id is not None:
            d["utterance_id"] = self.utterance_id
        if self.role is not None:
            d["role"] = self.role
        d["quote"] = self.quote
        if self.score is not None:
            d["score"] = round(float(self.score), 3)
        return d

    @classmethod
    def of_unit(cls, unit: Unit, rule: str, score: float | None = None) -> "Evidence":
        return cls(unit.start, unit.end, rule, unit.utterance_id, unit.role, unit.word_range, unit.text, score)


@dataclass
class Detection:
    """A detector's answer to one item."""

    answer: str
    """yes / no / na."""
    confidence: float
    """0-1: how sure the detector is of ``answer``."""
    evidence: list[Evidence] = field(default_factory=list)
    looked_for: str = ""
    """What the detector looked for and where, so that a "no" explains itself."""
    details: dict[str, Any] = field(default_factory=dict)


def confidence_from_margin(margin: float, scale: float) -> float:
    """0.5 at the decision threshold, towards 1 as the deciding score moves ``scale`` away."""
    return round(1.0 / (1.0 + math.exp(-3.0 * abs(margin) / max(scale, 1e-6))), 3)


class Detector(ABC):
    """Answers one kind of scorecard item. One instance per item (it holds that item's
    parameters); ``__call__`` is given each call's context."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = type(None)
    """A dataclass of the parameters, documented field by field."""
    sources: ClassVar[frozenset[str] | None] = None
    """The source kinds this detector applies to (pipeline/interaction/record.py: recording,
    stream, email, chat); None: every source. On any other source its item is answered na."""

    def __init__(self, item: ItemSpec, where: str = ""):
        self.item = item
        self.params = build_params(self.Params, item.params, where or f"item '{item.id}'")
        self.check(where or f"item '{item.id}'")

    def check(self, where: str) -> None:
        """Raise ConfigError for parameter values that are out of range (override)."""

    def __call__(self, ctx: CallContext) -> Detection:
        if self.sources is not None and ctx.facts.source not in self.sources:
            return Detection(NA, 1.0, [], f"not applicable: '{self.name}' applies to "
                             f"{' and '.join(sorted(self.sources))} sources, not to {ctx.facts.source}")
        for cond in self.item.na_when:
            holds, evidence, why = CONDITIONS[cond](ctx)
            if holds:
                return Detection(NA, 0.9, evidence, f"not applicable: {why}")
        return self.detect(ctx)

    @abstractmethod
    def detect(self, ctx: CallContext) -> Detection:
        """The answer for one call."""


def build_params(cls: type, raw: dict[str, Any], where: str) -> Any:
    """An instance of the dataclass ``cls`` from ``raw``; unknown keys and bad values raise a
    ConfigError naming ``where`` and the key."""
    if cls is type(None):
        if raw:
            raise ConfigError(f"{where}: params: this detector takes no parameters")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{where}: params.{key}: unknown parameter; allowed: {', '.join(fields)}")
        values[key] = coerce_value(value, hints[key], f"{where}: params.{key}")
    return cls(**values)


DETECTORS: dict[str, type[Detector]] = {}
"""Registered detector classes by name."""

Condition = Callable[[CallContext], tuple[bool, list[Evidence], str]]
CONDITIONS: dict[str, Condition] = {}
"""Not-applicable conditions by name: each returns (holds, evidence, why)."""


def register(name: str) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator: register a detector under ``name``."""

    def add(cls: type[Detector]) -> type[Detector]:
        if name in DETECTORS:
            raise ValueError(f"detector '{name}' is registered twice")
        cls.name = name
        DETECTORS[name] = cls
        return cls

    return add


def condition(name: str) -> Callable[[Condition], Condition]:
    """Function decorator: register a not-applicable condition under ``name``."""

    def add(fn: Condition) -> Condition:
        CONDITIONS[name] = fn
        return fn

    return add


__all__ = ["NA", "NO", "YES", "CallContext", "Detection", "Detector", "Evidence", "Unit", "confidence_from_margin",
           "condition", "register"]
