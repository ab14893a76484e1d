"""The scorecard's model: the answers, a template's items and sections, and scoring.

What the detectors answer (``ItemSpec``) and what scores a call's answers; loading templates
from YAML, which checks every item against its detector, is pipeline/analysis/scorecard.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

YES, NO, NA = "yes", "no", "na"
ANSWERS = (YES, NO, NA)


@dataclass
class ItemSpec:
    """One question of a scorecard."""

    id: str
    """``section.item``, unique in the template (gold labels and reports use it)."""
    question: str
    section: str
    points: float = 1.0
    auto_fail: bool = False
    """Answered ``no``, the whole call scores 0."""
    detector: str = ""
    """Registered name of the detector that answers it (pipeline/analysis/detectors)."""
    params: dict[str, Any] = field(default_factory=dict)
    """The detector's parameters (validated by the detector)."""
    na_when: list[str] = field(default_factory=list)
    """Names of not-applicable conditions (pipeline/analysis/detectors: built in, or from a plugin);
    any that holds makes the answer ``na``."""


@dataclass
class SectionSpec:
    id: str
    name: str
    weight: float = 1.0
    items: list[ItemSpec] = field(default_factory=list)


@dataclass
class Scorecard:
    """A loaded, validated template."""

    name: str
    version: str
    sections: list[SectionSpec]
    path: str = ""
    sha256: str = ""
    """Hash of the template file: results record which template version scored them."""
    plugins: list[dict[str, Any]] = field(default_factory=list)
    """The plugin packages whose detectors or conditions the items use (distribution, version,
    entry point: pipeline/analysis/detectors/plugins.py)."""

    @property
    def items(self) -> list[ItemSpec]:
        return [item for s in self.sections for item in s.items]

    def describe(self) -> dict[str, Any]:
        """What scored a call: the template, and the plugins it uses when it uses any."""
        d: dict[str, Any] = {"name": self.name, "version": self.version, "path": self.path, "sha256": self.sha256}
        if self.plugins:
            d["plugins"] = self.plugins
        return d


# -- scoring ---------------------------------------------------------------------------------


def score_answers(card: Scorecard, answers: dict[str, str]) -> dict[str, Any]:
    """Section and total scores from item answers (item id -> yes / no / na; a missing answer
    counts as na). The result is the ``score`` part of call.json's ``scorecard`` block."""
    sections: list[dict[str, Any]] = []
    failed = [i.id for i in card.items if i.auto_fail and answers.get(i.id) == NO]
    weighted = weights = 0.0
    points = potential = 0.0
    for s in card.sections:
        got = sum(i.points for i in s.items if answers.get(i.id) == YES)
        pot = sum(i.points for i in s.items if answers.get(i.id) in (YES, NO))
        norm = got / pot if pot > 0 else None
        sections.append({"id": s.id, "name": s.name, "weight": s.weight, "score": got, "potential": pot,
                         "normalized": None if norm is None else round(norm, 4)})
        points, potential = points + got, potential + pot
        if norm is not None and s.weight > 0:
            weighted, weights = weighted + s.weight * norm, weights + s.weight
    normalized = weighted / weights if weights > 0 else None
    result: dict[str, Any] = {
        "points": points,
        "potential": potential,
        "normalized": None if normalized is None else round(normalized, 4),
        "auto_fail": bool(failed),
        "sections": sections,
    }
    if failed:
        result["normalized_before_auto_fail"] = result["normalized"]
        result["normalized"] = 0.0
        result["auto_fail_items"] = failed
        result["auto_fail_reason"] = "; ".join(
            f"{i.id} answered no ({i.question})" for i in card.items if i.id in failed)
    return result
