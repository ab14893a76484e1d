"""The score of a reviewer's answers, computed the way the pipeline scores its own
(:func:`pipeline.analysis.scorecard.score_answers`): a ``yes`` earns the item's full points, a ``no``
none, an ``na`` leaves the potential; sections are weighted as in the template; an auto-fail
item answered ``no`` zeroes the call. Full points, sections and weights come from the default
template (``load_scorecard(None)``); an item it does not know is worth 1.0 point, in the
section its call item names (weight 1.0), auto-fail as its call item says."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from pipeline.review.db import CallItem
from pipeline.analysis.card import ItemSpec, Scorecard, SectionSpec, score_answers
from pipeline.analysis.scorecard import load_scorecard


@lru_cache(maxsize=1)
def default_card() -> Scorecard:
    return load_scorecard(None)


def _card_for(item_ids: Iterable[str], call_items: Sequence[CallItem] = ()) -> Scorecard:
    """The default template plus a 1-point item for every id it lacks (see the module docstring)."""
    card = default_card()
    known = {i.id for i in card.items}
    by_id = {i.item_id: i for i in call_items}
    missing = [i for i in dict.fromkeys([*item_ids, *by_id]) if i not in known]
    if not missing:
        return card
    sections = [SectionSpec(s.id, s.name, s.weight, list(s.items)) for s in card.sections]
    index = {s.id: s for s in sections}
    for item_id in missing:
        row = by_id.get(item_id)
        section_id = (row.section if row is not None and row.section else None) or item_id.split(".")[0]
        if section_id not in index:
            index[section_id] = SectionSpec(section_id, section_id, 1.0, [])
            sections.append(index[section_id])
        index[section_id].items.append(ItemSpec(item_id, row.question if row is not None else item_id, section_id,
                                                1.0, bool(row.auto_fail) if row is not None else False))
    return Scorecard(card.name, card.version, sections, card.path, card.sha256)


def review_score(answers: Mapping[str, str], call_items: Sequence[CallItem] = ()) -> float | None:
    """The normalized score (0-1) of the answers {item_id: yes/no/na}, scored as the module
    docstring says; None when no item is answered yes or no."""
    return score_answers(_card_for(answers, call_items), dict(answers))["normalized"]
