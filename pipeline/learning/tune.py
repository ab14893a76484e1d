"""``callqa tune --from-reviews``: fit each item's threshold and its confidence calibration to
the reviewers' submitted answers, measure both on calls held out from the fit, and write a
config overlay for a lead to review and adopt (nothing changes silently).

**What is tuned.** An item whose detector records its decision score in call.json
(``details.decision``: the score, the parameter it is compared with, the comparison and the
answers on either side; pipeline/analysis/detectors) is re-thresholded without re-running the
call: ``phrase`` items with examples (``semantic_threshold``: the closest sentence's cosine;
a word, pattern or fuzzy phrase that matched holds whatever the threshold), ``sentiment_end``
(``negative_below``: the mean sentiment of the last turns, the sentiment head's calibration
for that item), ``dead_air`` (``max_silence_s``: the longest silence) and ``interruptions``
(``max_allowed``: their count). Before fitting, the current threshold is applied to the
recorded scores: an item is tuned only when that reproduces every one of its reviewed answers;
otherwise (or without a recorded score: ``agent_name``, ``customer_name``, ``hold_etiquette``,
the written-channel rules) it is listed as *not tunable*, with the reason. No scorecard
detector combines weighted scores, so there are no weights to fit. An ``na`` from a
not-applicable condition is decided before the detector and stays as it is.

**The fit.** Candidate thresholds are the current one and the midpoints between the recorded
scores (whole numbers for counts); the one giving the most answers equal to the reviewers'
wins, ties going to the one nearest the current value, and the current one is kept unless
another is strictly better on the calls fitted. Agreement and Cohen's kappa before (the
answers given) and after (each call answered with the threshold fitted on the other folds) are
measured on held-out calls: GroupKFold by agent (every call of an agent, so every call too, in
one fold), or by call when there are too few agents. A new threshold is proposed only when its
held-out agreement is higher than before.

**Calibration.** Per item, a map from the confidence to the chance that the reviewer agrees
(Platt scaling by default, or isotonic), fitted on all its reviews, proposed when it lowers
the expected calibration error on held-out calls (same folds). It is fitted on the answers as
they were given: after adopting new thresholds, run tune again on new reviews to refit it.

**Too few reviews.** Items with fewer than ``min_reviews`` reviewed answers are left unchanged
and listed; when no item has enough, nothing is written (:class:`TooFewReviews`, exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.detectors import DETECTORS, load_plugins
from pipeline.analysis.detectors.base import build_params
from pipeline.analysis.scorecard import DEFAULT_CHANNEL_SCORECARDS, load_scorecard, template_path, templates_in_use
from pipeline.errors import ConfigError
from pipeline.evaluation.measures import item_agreement
from pipeline.learning import calibration as cal
from pipeline.learning.data import Pair

REPORT_FORMAT = "callqa-tune-report/1"
MIN_REVIEWS = 20
FOLDS = 5
DIGITS = {"semantic_threshold": 3, "negative_below": 3, "max_silence_s": 2}
"""Decimals a tuned float threshold is written with (and evaluated at)."""
RANGES = {"semantic_threshold": (0.01, 1.0), "negative_below": (-1.0, 1.0), "max_silence_s": (0.5, 600.0),
          "max_allowed": (0, 1000)}


NO_SCORE = {
    "phrase": "matches by words, patterns or fuzzy phrases only (no examples): no recorded score whose "
              "threshold re-thresholding could move",
    "agent_name": "rule-based (a self-introduction with a name-like word): no score to re-threshold",
    "customer_name": "rule-based (the customer's name found in the agent's words): no score to re-threshold",
    "hold_etiquette": "several decisions per hold (announcement, thanks): no single score to re-threshold",
    "questions_answered": "per question, by meaning or shared words: no single score reproduces its answer",
}
"""Why an item of these detectors is not tunable by re-thresholding (no recorded decision)."""


class TooFewReviews(ConfigError):
    """No item has enough reviewed answers to tune (exit code 2)."""


# -- deciding again from a recorded score ------------------------------------------------------

def decide(decision: dict[str, Any], threshold: float) -> str:
    """The answer a recorded decision gives at ``threshold``."""
    if decision.get("fixed"):
        return decision["then"]
    score = decision.get("score")
    if score is None:
        return decision["else"]
    op = decision.get("op")
    hit = {">=": score >= threshold, ">": score > threshold, "<": score < threshold,
           "<=": score <= threshold}.get(op)
    if hit is None:
        raise ValueError(f"unknown comparison {op!r}")
    return decision["then"] if hit else decision["else"]


def predict(rows: list[Pair], threshold: float | None) -> list[str]:
    """Each row's answer at ``threshold`` (None: the answers given). An na, and a row without a
    recorded decision, keep the answer given."""
    if threshold is None:
        return [r.machine for r in rows]
    return [r.machine if r.machine == "na" or r.decision is None else decide(r.decision, threshold) for r in rows]


def agreement(rows: list[Pair], answers: list[str]) -> dict[str, Any]:
    a = item_agreement([r.human for r in rows], answers)
    return {"n": a["n"], "agreement": None if a["accuracy"] is None else round(a["accuracy"], 4),
            "kappa": None if a["kappa"] is None else round(a["kappa"], 4)}


def candidates(rows: list[Pair], current: float, integer: bool, param: str) -> list[float]:
    scores = sorted({float(r.decision["score"]) for r in rows
                     if r.decision and r.decision.get("score") is not None and not r.decision.get("fixed")})
    lo, hi = RANGES.get(param, (-1e9, 1e9))
    if integer:
        top = int(max(scores, default=current)) + 1
        out = {float(v) for v in range(int(lo), min(top, int(hi)) + 1)}
    else:
        digits = DIGITS.get(param, 3)
        mids = [(a + b) / 2 for a, b in zip(scores, scores[1:])]
        ends = [scores[0] - 10 ** -digits, scores[-1] + 10 ** -digits] if scores else []
        out = {round(v, digits) for v in mids + ends}
    out = {v for v in out if lo <= v <= hi}
    out.add(float(current))
    return sorted(out)


def fit_threshold(rows: list[Pair], current: float, integer: bool, param: str) -> float:
    """The threshold with the most answers equal to the reviewers' on ``rows``; the current one
    unless another is strictly better; ties to the nearest to the current value."""
    def right(t: float) -> int:
        return sum(a == r.human for a, r in zip(predict(rows, t), rows))

    scored = [(right(t), t) for t in candidates(rows, current, integer, param)]
    top = max(n for n, _ in scored)
    if top <= right(current):
        return float(current)
    return min((t for n, t in scored if n == top), key=lambda t: (abs(t - current), t))


# -- the folds ----------------------------------------------------------------------------------

def folds_of(rows: list[Pair], n_folds: int) -> tuple[list[tuple[list[int], list[int]]], str]:
    """GroupKFold splits (train, test row indexes) by agent, or by call when fewer than
    ``n_folds`` agents (or any call without one); and what was grouped on."""
    from sklearn.model_selection import GroupKFold

    agents = {r.agent_id for r in rows}
    by_agent = None not in agents and len(agents) >= min(n_folds, 3)
    groups = [r.agent_id if by_agent else r.call_id for r in rows]
    k = min(n_folds, len(set(groups)))
    if k < 2:
        return [], "too few calls"
    splits = GroupKFold(n_splits=k).split(list(range(len(rows))), groups=groups)
    return [(list(tr), list(te)) for tr, te in splits], ("agent" if by_agent else "call") + f" ({k} folds)"


# -- one item -----------------------------------------------------------------------------------

def _current(item: Any, param: str) -> tuple[float, bool] | None:
    """(the item's current value of ``param``, whether it is a whole number), from its params or
    its detector's default; None when the detector has no such parameter."""
    cls = DETECTORS.get(item.detector)
    if cls is None or cls.Params is type(None):
        return None
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    if param not in fields:
        return None
    params = build_params(cls.Params, item.params, f"item '{item.id}'")
    hint = typing.get_type_hints(cls.Params)[param]
    return float(getattr(params, param)), hint is int


def tune_item(rows: list[Pair], item: Any, n_folds: int, method: str) -> dict[str, Any]:
    """The figures and proposals of one item (``item``: its ItemSpec)."""
    out: dict[str, Any] = {"n": len(rows), "detector": item.detector, "tunable": False}
    given = predict(rows, None)
    folds, grouped = folds_of(rows, n_folds)
    out["grouped_by"] = grouped
    out["all"] = agreement(rows, given)
    # -- the threshold
    decided = [r for r in rows if r.machine != "na"]
    params = {r.decision.get("param") for r in decided if r.decision}
    reason = None
    param = next(iter(params)) if len(params) == 1 else None
    missing = sum(r.decision is None for r in decided)
    if not any(r.decision for r in decided):
        reason = NO_SCORE.get(item.detector, f"the '{item.detector}' detector records no decision score: "
                                             "re-thresholding cannot reproduce its answers")
    elif param is None:
        reason = f"the recorded decisions name several parameters ({', '.join(sorted(map(str, params)))})"
    elif missing:
        reason = f"{missing} of {len(decided)} reviewed answers have no recorded score (calls analysed before " \
                 "scores were recorded: run them again)"
    cur = _current(item, param) if param and reason is None else None
    if reason is None and cur is None:
        reason = f"the '{item.detector}' detector has no parameter '{param}'"
    if reason is None:
        current, integer = cur
        wrong = sum(decide(r.decision, current) != r.machine for r in decided)
        if wrong:
            reason = (f"re-thresholding the recorded scores at the current {param}={current:g} reproduces "
                      f"{len(decided) - wrong} of {len(decided)} answers, not all")
    if reason is not None:
        out["not_tunable"] = reason
        out["heldout"] = {"before": agreement(rows, given), "after": agreement(rows, given)}
    else:
        out["tunable"] = True
        out["param"] = param
        out["current"] = current
        heldout = list(given)
        fold_thresholds = []
        for train, test in folds:
            t = fit_threshold([rows[i] for i in train], current, integer, param)
            fold_thresholds.append(t)
            for i, a in zip(test, predict([rows[i] for i in test], t)):
                heldout[i] = a
        before, after = agreement(rows, given), agreement(rows, heldout)
        fitted = fit_threshold(rows, current, integer, param)
        out["fold_thresholds"] = fold_thresholds
        out["fitted"] = int(fitted) if integer else fitted
        out["fitted_all"] = agreement(rows, predict(rows, fitted))
        gain = (after["agreement"] or 0) > (before["agreement"] or 0)
        out["proposed"] = (int(fitted) if integer else fitted) if fitted != current and gain else None
        if fitted == current:
            out["why"] = "the current threshold fits the reviews best"
        elif not gain:
            out["why"] = "no gain on held-out calls: left unchanged"
        out["heldout"] = {"before": before, "after": after if out["proposed"] is not None else before,
                          "after_if_refitted": after}
    return out


def calibrate_group(rows: list[Pair], n_folds: int, method: str) -> dict[str, Any] | None:
    """The calibration of one detector's answers (``rows``: every reviewed answer of its items):
    the map fitted on all of them, and each answer's confidence through the map fitted on the
    other folds (held out); None when an answer has no confidence or there are too few calls."""
    conf = [r.confidence for r in rows]
    if not rows or any(c is None for c in conf):
        return None
    folds, grouped = folds_of(rows, n_folds)
    if not folds:
        return None
    right = [r.machine == r.human for r in rows]
    held = list(conf)
    for train, test in folds:
        m = cal.fit_map([conf[i] for i in train], [right[i] for i in train], method)
        for i, c in zip(test, cal.apply_map(m, [conf[i] for i in test])):
            held[i] = c
    before, after = cal.ece(conf, right), cal.ece(held, right)
    return {"map": cal.fit_map(conf, right, method), "grouped_by": grouped, "conf": conf, "held": held,
            "right": right, "ece_before": before, "ece_after": after,
            "better": before is not None and after is not None and after < before}


# -- the sentiment head's blend (sentiment.vader_weight), fitted jointly --------------------------

WEIGHTS = [round(0.05 * k, 2) for k in range(21)]


def _reweighted(rows: list[Pair], w: float) -> list[Pair]:
    """The rows with each recorded sentiment score recomputed at VADER weight ``w``."""
    out = []
    for r in rows:
        d = r.decision
        if d and d.get("components") and r.machine != "na":
            c = d["components"]
            r = dataclasses.replace(r, decision={**d, "score": (1 - w) * c["model"] + w * c["vader"]})
        out.append(r)
    return out


def _fit_joint(groups: dict[tuple[str, str], list[Pair]], current_w: float,
               current_t: dict[tuple[str, str], float]) -> tuple[float, dict[tuple[str, str], float]]:
    """(weight, {item: threshold}) with the most answers equal to the reviewers' over every
    sentiment item; the current weight unless another is strictly better."""
    def best_at(w: float) -> tuple[int, dict[tuple[str, str], float]]:
        right, ts = 0, {}
        for key, rows in groups.items():
            moved = _reweighted(rows, w)
            ts[key] = fit_threshold(moved, current_t[key], False, "negative_below")
            right += sum(a == r.human for a, r in zip(predict(moved, ts[key]), moved))
        return right, ts

    base_right, base_ts = best_at(current_w)
    best = (base_right, -0.0, current_w, base_ts)
    for w in WEIGHTS:
        right, ts = best_at(w)
        if right > best[0] or (right == best[0] and right > base_right and abs(w - current_w) < abs(best[2] - current_w)):
            best = (right, 0.0, w, ts)
    return best[2], best[3]


def tune_sentiment_weight(groups: dict[tuple[str, str], list[Pair]], current_w: float,
                          current_t: dict[tuple[str, str], float], n_folds: int) -> dict[str, Any] | None:
    """The VADER weight of the sentiment blend, fitted with each sentiment item's threshold on
    the items' reviewed answers together (GroupKFold over all of them); None when a reviewed
    answer has no recorded components (re-thresholding could not reproduce it)."""
    keys = sorted(groups)
    rows = [(k, r) for k in keys for r in groups[k]]
    if not rows or any(r.machine != "na" and not (r.decision or {}).get("components") for _, r in rows):
        return None
    if any(abs(r.decision["components"]["vader_weight"] - current_w) > 1e-9 for _, r in rows if r.machine != "na"):
        return None  # scored under another weight than the config's
    folds, grouped = folds_of([r for _, r in rows], n_folds)
    given = [r.machine for _, r in rows]
    held = list(given)
    for train, test in folds:
        part: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for i in train:
            part[rows[i][0]].append(rows[i][1])
        w, ts = _fit_joint({k: part.get(k, []) for k in keys}, current_w, current_t)
        for i in test:
            k, r = rows[i]
            held[i] = predict(_reweighted([r], w), ts[k])[0]
    human = [r for _, r in rows]
    before, after = agreement(human, given), agreement(human, held)
    per_item = {}
    for k in keys:
        idx = [i for i, (key, _) in enumerate(rows) if key == k]
        per_item[f"{k[0]} / {k[1]}"] = {"before": agreement([human[i] for i in idx], [given[i] for i in idx]),
                                        "after": agreement([human[i] for i in idx], [held[i] for i in idx])}
    w, ts = _fit_joint(groups, current_w, current_t)
    gain = (after["agreement"] or 0) > (before["agreement"] or 0)
    changed = w != current_w or any(ts[k] != current_t[k] for k in keys)
    return {"param": "sentiment.vader_weight", "items": [f"{k[0]} / {k[1]}" for k in keys], "n": len(rows),
            "grouped_by": grouped, "current": current_w, "fitted": w,
            "thresholds": {f"{k[0]} / {k[1]}": {"current": current_t[k], "fitted": ts[k]} for k in keys},
            "per_item": per_item,
            "proposed": changed and gain,
            "heldout": {"before": before, "after": after if changed and gain else before, "after_if_refitted": after},
            **({} if changed and gain else {"why": "no change fits better" if not changed
                                            else "no gain on held-out calls: left unchanged"})}


# -- the whole run --------------------------------------------------------------------------------

def _templates(config: Any) -> dict[str, tuple[Path, Any]]:
    """{template name: (path, Scorecard)} of every template the config may score with."""
    out: dict[str, tuple[Path, Any]] = {}
    for path in templates_in_use(config.scorecard, config.channel_templates()):
        card = load_scorecard(path)
        out.setdefault(card.name, (Path(path), card))
    return out


def tune(pairs: list[Pair], config: Any, min_reviews: int = MIN_REVIEWS, n_folds: int = FOLDS,
         method: str = "platt") -> dict[str, Any]:
    """The tune report (a JSON-ready dict, without the overlay written) of ``pairs`` under
    ``config`` (a :class:`pipeline.config.Config`). TooFewReviews when no item has
    ``min_reviews`` reviewed answers."""
    if min_reviews < 2:
        raise ConfigError(f"tune: --min-reviews {min_reviews} must be 2 or more")
    if method not in cal.METHODS:
        raise ConfigError(f"tune: calibration {method!r} is not one of {', '.join(cal.METHODS)}")
    load_plugins()
    templates = _templates(config)
    by_key: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for p in pairs:
        by_key[p.key].append(p)
    items: list[dict[str, Any]] = []
    too_few: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    item_rows: dict[tuple[str, str], list[Pair]] = {}
    for (template, item_id), rows in sorted(by_key.items()):
        spec = None
        if template in templates:
            spec = next((i for i in templates[template][1].items if i.id == item_id), None)
        if spec is None:
            unknown.append({"template": template, "item": item_id, "n": len(rows),
                            "why": "not an item of the config's templates"})
            continue
        if len(rows) < min_reviews:
            too_few.append({"template": template, "item": item_id, "n": len(rows)})
            continue
        result = tune_item(rows, spec, n_folds, method)
        items.append({"template": template, "item": item_id, **result})
        item_rows[(template, item_id)] = rows
    if not items:
        names = ", ".join(f"{t['item']} ({t['template']}: {t['n']})" for t in too_few) or "none reviewed"
        raise TooFewReviews(f"tune: too few reviews to tune any item (at least {min_reviews} reviewed answers per "
                            f"item are needed; --min-reviews changes it): {names}. Nothing written.")
    # the sentiment blend's weight, with the sentiment items' thresholds (one weight for all of them)
    senti = {(it["template"], it["item"]): it for it in items if it["detector"] == "sentiment_end" and it["tunable"]}
    sentiment = None
    if senti:
        sentiment = tune_sentiment_weight({k: item_rows[k] for k in senti}, float(config.sentiment.vader_weight),
                                          {k: float(it["current"]) for k, it in senti.items()}, n_folds)
        if sentiment and sentiment["proposed"]:
            for k, it in senti.items():  # the joint fit replaces each item's own
                t = sentiment["thresholds"][f"{k[0]} / {k[1]}"]["fitted"]
                it["proposed"] = t if t != it["current"] else None
                it["why"] = "fitted with sentiment.vader_weight (see sentiment): held out as fitted jointly"
                joint = sentiment["per_item"][f"{k[0]} / {k[1]}"]
                it["heldout"] = {"before": joint["before"], "after": joint["after"], "after_if_refitted": joint["after"]}
    # calibration per detector (its items' answers pooled: more calls than one item has)
    by_detector: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for it in items:
        by_detector[it["detector"]].append(it)
    pooled: tuple[list[float], list[float], list[bool]] = ([], [], [])
    proposed_conf: list[float] = []
    detectors = {}
    for detector, its in sorted(by_detector.items()):
        rows = [r for it in its for r in item_rows[(it["template"], it["item"])]]
        got = calibrate_group(rows, n_folds, method)
        if got is None:
            for it in its:
                it["calibration"] = {"proposed": None, "why": "no confidence recorded, or too few calls"}
            continue
        detectors[detector] = {"n": len(rows), "map": got["map"], "grouped_by": got["grouped_by"],
                               "ece_before": got["ece_before"], "ece_after": got["ece_after"],
                               "proposed": got["better"]}
        pooled[0].extend(got["conf"])
        pooled[1].extend(got["held"])
        pooled[2].extend(got["right"])
        proposed_conf.extend(got["held"] if got["better"] else got["conf"])
        start = 0
        for it in its:
            n = it["n"]
            conf, held, right = got["conf"][start:start + n], got["held"][start:start + n], got["right"][start:start + n]
            start += n
            it["calibration"] = {
                "method": method, "level": f"detector '{detector}' ({len(rows)} answers)", "map": got["map"],
                "proposed": got["map"] if got["better"] else None,
                "heldout": {"ece_before": cal.ece(conf, right), "ece_after": cal.ece(held, right),
                            "brier_before": cal.brier(conf, right), "brier_after": cal.brier(held, right)},
                "reliability_before": cal.reliability(conf, right), "reliability_after": cal.reliability(held, right),
                **({} if got["better"] else {"why": f"no lower calibration error on held-out calls for the "
                                                   f"'{detector}' detector's answers: not proposed"}),
            }
    return {
        "format": REPORT_FORMAT,
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reviews": len({p.call_id for p in pairs}), "answers": len(pairs), "min_reviews": min_reviews,
        "folds": n_folds, "calibration_method": method,
        "templates": {name: str(path) for name, (path, _) in templates.items()},
        "items": items, "too_few": too_few, "unknown": unknown,
        "sentiment": sentiment,
        "calibration_by_detector": detectors,
        # every detector's map on held-out calls (no selection), and as proposed (maps kept
        # only where they helped on those same calls: an optimistic figure)
        "calibration_pooled": {"ece_before": cal.ece(pooled[0], pooled[2]), "ece_after": cal.ece(pooled[1], pooled[2]),
                               "ece_after_as_proposed": cal.ece(proposed_conf, pooled[2]),
                               "reliability_before": cal.reliability(pooled[0], pooled[2]),
                               "reliability_after": cal.reliability(pooled[1], pooled[2])},
        "_pooled": pooled,
    }


# -- writing the overlay ------------------------------------------------------------------------

def _template_keys(config: Any) -> dict[str, list[tuple[str, ...]]]:
    """{template path (resolved): the config keys that make it score calls}."""
    keys: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    keys[str(template_path(config.scorecard).resolve())].append(("scorecard", "template"))
    channels = config.channel_templates()
    for channel, default in DEFAULT_CHANNEL_SCORECARDS.items():
        path = Path(channels.get(channel) or default)
        keys[str(path.resolve())].append(("channels", channel, "scorecard"))
    for queue, path in config.scorecard.by_queue.items():
        keys[str(Path(path).resolve())].append(("scorecard", "by_queue", queue))
    return keys


def _set(data: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    """Set ``key`` (a path of mapping keys) in the config mapping ``data``."""
    for part in key[:-1]:
        if not isinstance(data.get(part), dict):
            if data.get(part) is not None:
                raise ConfigError(f"tune: cannot set {'.'.join(key)}: the base config's {part} is not a mapping")
            data[part] = {}
        data = data[part]
    data[key[-1]] = value


def write_overlay(report: dict[str, Any], config: Any, base_config: str | Path | None, out: str | Path) -> list[Path]:
    """Write TUNED.yaml (the base config file's content, or nothing, plus the tuned keys), a
    tuned copy of each template with a proposed threshold beside it, the JSON report
    (``TUNED.report.json``) and its page (``TUNED.report.html``). Returns the files written."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {}
    if base_config is not None:
        base = yaml.safe_load(Path(base_config).read_text(encoding="utf-8")) or {}
    data = json.loads(json.dumps(base))  # a copy
    written: list[Path] = []
    changes: list[str] = []
    keys = _template_keys(config)
    proposals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for it in report["items"]:
        if it.get("proposed") is not None:
            proposals[it["template"]].append(it)
    for name, its in sorted(proposals.items()):
        src = Path(report["templates"][name])
        raw = yaml.safe_load(src.read_text(encoding="utf-8"))
        for it in its:
            for section in raw["sections"]:
                for item in section["items"]:
                    if item["id"] == it["item"]:
                        item.setdefault("params", {})[it["param"]] = it["proposed"]
            changes.append(f"{name} / {it['item']}: {it['param']} {it['current']:g} -> {it['proposed']:g}")
        dest = out.with_name(f"{out.stem}.{src.stem}.yaml")
        header = (f"# {src.name} with thresholds tuned on reviews by `callqa tune` "
                  f"({report['made_at']}; see {out.stem}.report.html):\n"
                  + "".join(f"#   {it['item']}: {it['param']} {it['current']:g} -> {it['proposed']:g}\n" for it in its))
        dest.write_text(header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
        written.append(dest)
        for key in keys.get(str(src.resolve()), []):
            _set(data, key, str(dest))
    sentiment = report.get("sentiment") or {}
    if sentiment.get("proposed") and sentiment["fitted"] != sentiment["current"]:
        _set(data, ("sentiment", "vader_weight"), sentiment["fitted"])
        changes.append(f"sentiment.vader_weight {sentiment['current']:g} -> {sentiment['fitted']:g} (every sentiment "
                       "score: the turns' labels and customer_sentiment_end too)")
    calibration: dict[str, dict[str, str]] = {}
    for it in report["items"]:
        proposed = (it.get("calibration") or {}).get("proposed")
        if proposed:
            calibration.setdefault(it["template"], {})[it["item"]] = proposed
            changes.append(f"{it['template']} / {it['item']}: confidence calibration {proposed}")
    if calibration:
        _set(data, ("scorecard", "calibration"), calibration)
    header = ("# Written by `callqa tune --from-reviews` " + report["made_at"] + ": a proposal for a lead to review.\n"
              f"# Base config: {base_config or '(defaults)'}; report: {out.stem}.report.html / .report.json\n"
              "# Adopt it with `callqa run --config " + out.name + "` (the calls are scored again).\n"
              + ("".join(f"#   {c}\n" for c in changes) if changes else "#   no change proposed\n"))
    out.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    written.append(out)
    report["overlay"] = {"config": str(out), "templates": [str(p) for p in written[:-1]], "changes": changes}
    pooled = report.pop("_pooled", None)
    json_path = out.with_name(out.stem + ".report.json")
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    html_path = out.with_name(out.stem + ".report.html")
    from pipeline.learning.report import tune_html

    html_path.write_text(tune_html(report, pooled), encoding="utf-8")
    written += [json_path, html_path]
    return written


def table(report: dict[str, Any]) -> str:
    """The report as a text table, one line per item (held-out agreement and kappa)."""
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines = [f"{'template / item':52} {'n':>4}  {'threshold':34} {'agree before->after':20} {'kappa before->after':20} "
             f"{'ECE before->after'}"]
    for it in report["items"]:
        h = it["heldout"]
        c = (it.get("calibration") or {}).get("heldout") or {}
        if it["tunable"]:
            thr = f"{it['param']} {it['current']:g}" + (f"->{it['proposed']:g}" if it.get("proposed") is not None
                                                       else " (kept)")
        else:
            thr = "not tunable"
        ece = f"{f(c.get('ece_before'))}->{f(c.get('ece_after'))}" + (
            " *" if (it.get("calibration") or {}).get("proposed") else "")
        lines.append(f"{(it['template'] + ' / ' + it['item'])[:52]:52} {it['n']:>4}  {thr[:34]:34} "
                     f"{f(h['before']['agreement'])}->{f(h['after']['agreement']):14} "
                     f"{f(h['before']['kappa'])}->{f(h['after']['kappa']):14} {ece}")
    for it in report["items"]:
        if not it["tunable"]:
            lines.append(f"  not tunable: {it['item']} ({it['template']}): {it['not_tunable']}")
    if report["too_few"]:
        lines.append(f"left unchanged, fewer than {report['min_reviews']} reviewed answers: "
                     + ", ".join(f"{t['item']} ({t['template']}: {t['n']})" for t in report["too_few"]))
    sen = report.get("sentiment")
    if sen:
        h = sen["heldout"]
        lines.append(f"sentiment.vader_weight {sen['current']:g}" + (f" -> {sen['fitted']:g}" if sen["proposed"] else
                                                                    " (kept)")
                     + f" with the thresholds of {len(sen['items'])} sentiment item(s): held-out agreement "
                     f"{f(h['before']['agreement'])} -> {f(h['after']['agreement'])}, kappa {f(h['before']['kappa'])} "
                     f"-> {f(h['after']['kappa'])} (n {sen['n']})")
    p = report["calibration_pooled"]
    lines.append(f"calibration, all items pooled, held out: ECE {f(p['ece_before'])} -> {f(p['ece_after'])} with "
                 f"every detector's map, {f(p['ece_after_as_proposed'])} with the maps proposed "
                 "(* = a map is proposed for the item's detector, fitted on all its items' answers)")
    return "\n".join(lines)
