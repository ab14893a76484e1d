"""Per-agent aggregates of a run's scored calls (``agents.csv``), from the summary rows."""

from __future__ import annotations

from typing import Any

AGENT_COLUMNS = ["agent_id", "channel", "calls", "scored", "mean_score", "min_score", "max_score", "auto_fails",
                 "mean_customer_sentiment_end", "low_confidence_calls"]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def agent_rows(rows: list[dict[str, Any]], item_ids: list[str]) -> list[dict[str, Any]]:
    """One row per agent and channel (manifest column ``agent_id``, else who answered a written
    conversation; calls without one under ``unknown``): calls, calls scored, mean / min / max
    normalized score, auto-fails, the customer's mean end sentiment, calls with a low-confidence
    answer, and each item's pass rate (yes / (yes + no))."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row.get("agent_id") or "unknown"), str(row.get("channel") or "voice")), []).append(row)
    out = []
    for (agent, channel), calls in sorted(groups.items()):
        scored = [r for r in calls if r.get("status") in ("ok", "skipped") and r.get("score") not in (None, "")]
        scores = [float(r["score"]) for r in scored]
        ends = [float(r["customer_sentiment_end"]) for r in scored if r.get("customer_sentiment_end") not in (None, "")]
        row: dict[str, Any] = {
            "agent_id": agent, "channel": channel, "calls": len(calls), "scored": len(scored), "mean_score": _mean(scores),
            "min_score": min(scores) if scores else None, "max_score": max(scores) if scores else None,
            "auto_fails": sum(1 for r in scored if str(r.get("auto_fail")) in ("True", "true", "1")),
            "mean_customer_sentiment_end": _mean(ends),
            "low_confidence_calls": sum(1 for r in scored if int(r.get("low_confidence_items") or 0) > 0),
        }
        for item in item_ids:
            answers = [r.get(item) for r in scored]
            judged = [a for a in answers if a in ("yes", "no")]
            row[f"{item}_pass_rate"] = round(judged.count("yes") / len(judged), 4) if judged else None
        out.append(row)
    return out
