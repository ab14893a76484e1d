"""How well the ``contact`` block (pipeline/analysis/contact.py) agrees with people: the contact
reason and the outcome of each labelled call or written conversation.

- **Reason**: the extracted reason (a quote of the customer, masked) against the labelled
  sentence (``contact_reason``: the customer's own words) by token F1 after normalisation
  (``pipeline.text.normalize.wer_text``: lower case, punctuation out, numbers as digits,
  contractions expanded, so recogniser spellings count as the same words; masked tokens such as
  ``[PERSON]`` are left out of the extracted side). A reason **agrees** when its F1 is at least
  ``REASON_MATCH_F1`` (0.5): the two mostly share their words, which allows for recognition
  errors and for a sentence cut a little differently. Reported: the share that agree, the mean
  F1, and the counts (an interaction with no extracted reason scores F1 0).
- **Outcome**: the automatic label against the labelled ``outcome`` (one of
  ``contact.OUTCOMES``): accuracy, Cohen's kappa, macro F1 and the confusion counts
  (``measures.item_agreement``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from typing import Any

REASON_MATCH_F1 = 0.5
CSV_NAME = "contact.csv"
CSV_COLUMNS = ["id", "channel", "reason_f1", "reason_match", "reason_gold", "reason_auto", "reason_confidence",
               "outcome_gold", "outcome_auto", "outcome_confidence"]
_MASK = re.compile(r"\[[A-Z_]+\]")


def reason_tokens(text: str | None) -> list[str]:
    """The words of a reason as compared: masked tokens out, then ``wer_text`` normalisation."""
    from pipeline.text.normalize import wer_text

    if not text:
        return []
    return wer_text(_MASK.sub(" ", text)).split()


def token_f1(gold: str | None, auto: str | None) -> float:
    """Token F1 (bag of words, counts clipped) of ``auto`` against ``gold`` after
    ``reason_tokens``; 0 when either side is empty."""
    g, a = Counter(reason_tokens(gold)), Counter(reason_tokens(auto))
    common = sum((g & a).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def check_outcome(value: Any) -> str | None:
    """A label's ``outcome`` (None when absent); ValueError naming the allowed values."""
    from pipeline.analysis.contact import OUTCOMES

    if value is None:
        return None
    if value not in OUTCOMES:
        raise ValueError(f"outcome: {value!r} is not one of {', '.join(OUTCOMES)}")
    return str(value)


class ContactMeasured:
    """The contact figures of an evaluation, interaction by interaction, then pooled."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, cid: str, block: dict[str, Any] | None, gold_reason: str | None, gold_outcome: str | None,
            channel: str = "voice") -> None:
        """One interaction's contact block against its labels (either label may be absent)."""
        if block is None or (not gold_reason and gold_outcome is None):
            return
        reason = block.get("reason") or {}
        outcome = block.get("outcome") or {}
        row: dict[str, Any] = {"channel": channel}
        if gold_reason:
            f1 = token_f1(gold_reason, reason.get("text"))
            row.update(reason_gold=gold_reason, reason_auto=reason.get("text"),
                       reason_confidence=reason.get("confidence"),
                       reason_f1=round(f1, 4), reason_match=f1 >= REASON_MATCH_F1)
        if gold_outcome is not None:
            row.update(outcome_gold=gold_outcome, outcome_auto=outcome.get("label"),
                       outcome_confidence=outcome.get("confidence"))
        self.rows[cid] = row

    def __bool__(self) -> bool:
        return bool(self.rows)

    def report(self) -> dict[str, Any]:
        from pipeline.analysis.contact import OUTCOMES
        from pipeline.evaluation.measures import item_agreement

        reasons = [r for r in self.rows.values() if "reason_f1" in r]
        outcomes = [r for r in self.rows.values() if "outcome_gold" in r]
        matched = sum(bool(r["reason_match"]) for r in reasons)
        agreement = item_agreement([r["outcome_gold"] for r in outcomes],
                                   [r["outcome_auto"] or "unresolved" for r in outcomes], OUTCOMES)
        return {
            "reason": {"n": len(reasons), "matched": matched, "threshold_f1": REASON_MATCH_F1,
                       "agreement": round(matched / len(reasons), 4) if reasons else None,
                       "mean_f1": round(sum(r["reason_f1"] for r in reasons) / len(reasons), 4) if reasons else None},
            "outcome": {**agreement, "correct": sum(r["outcome_gold"] == r["outcome_auto"] for r in outcomes)},
            "items": dict(sorted(self.rows.items())),
        }


def contact_csv(section: dict[str, Any]) -> str:
    """The contact section's rows as CSV (one row per interaction)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for cid, row in (section.get("items") or {}).items():
        writer.writerow({"id": cid, **{k: ("" if v is None else v) for k, v in row.items()}})
    return buf.getvalue()


def summary_line(section: dict[str, Any] | None) -> str | None:
    """One line for the terminal."""
    if not section:
        return None
    r, o = section["reason"], section["outcome"]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    return (f"contact: reason agreement {f(r['agreement'])} ({r['matched']} of {r['n']}, token F1 >= "
            f"{r['threshold_f1']}), mean F1 {f(r['mean_f1'])}; outcome accuracy {f(o['accuracy'])} "
            f"({o.get('correct', 0)} of {o['n']}), kappa {f(o['kappa'])}")
