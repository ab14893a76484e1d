"""Scorecard templates (``configs/scorecards/*.yaml``) and scoring.

A template has a name, a version and sections; each section has a weight and items; each item
has an id (``section.name``), a question, points, an auto-fail flag, the detector that answers
it (pipeline/analysis/detectors, by registered name) with the detector's parameters, and the conditions
under which it is not applicable (``na_when``). Loading validates all of it, and every error
names the file, the item and the key.

Scoring follows what QA teams and Google CCAI Insights do: a ``yes`` earns the item's points, a
``no`` earns none, an ``na`` leaves the potential score (``normalized = score / potential``).
A section's normalized score is its points over its potential; the total is the weighted mean
of the sections that have any potential (weights from the template). An auto-fail item answered
``no`` zeroes the total and the result says which item and why.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.card import ItemSpec, Scorecard, SectionSpec
from pipeline.analysis.detectors import plugins_used, validate_item
from pipeline.errors import ConfigError

DEFAULT_SCORECARD = Path(__file__).resolve().parents[2] / "configs" / "scorecards" / "inbound_support.yaml"


@dataclass
class ScorecardOptions:
    """The scorecard suggestion (the ``scorecard`` section)."""

    enabled: bool = True
    """Answer the scorecard for every call (off: transcripts and speakers only)."""
    template: str | None = None
    """A scorecard template (YAML); null: configs/scorecards/inbound_support.yaml."""
    by_queue: dict[str, str] = field(default_factory=dict)
    """Per-queue templates (manifest column ``queue``): they win over the channel's
    (``channels.email.scorecard``, ``channels.chat.scorecard``) and ``template``."""
    calibration: dict[str, dict[str, str]] = field(default_factory=dict)
    """Confidence calibration fitted on reviews (``callqa tune`` writes it): {template name:
    {item id: map}}, a map being ``"platt A B"`` (confidence c becomes 1 / (1 + exp(-(A *
    logit(c) + B)))) or ``"isotonic c1:p1 c2:p2 ..."`` (piecewise linear through the points,
    flat beyond them). Empty (the default): confidences are the detectors' own."""


DEFAULT_CHANNEL_SCORECARDS = {
    "email": DEFAULT_SCORECARD.with_name("email_support.yaml"),
    "chat": DEFAULT_SCORECARD.with_name("chat_support.yaml"),
}
"""The default template of each written channel (calls use ``template``)."""


def template_path(options: ScorecardOptions) -> Path:
    """The template file the options name."""
    return Path(options.template) if options.template else DEFAULT_SCORECARD


def template_for(options: ScorecardOptions, channel_templates: dict[str, str | None], channel: str,
                 queue: str | None = None) -> Path:
    """The template an interaction is scored with: its queue's (``by_queue``), else its written
    channel's (``channel_templates``, by channel: the configured one or the default), else
    ``template``."""
    if queue and queue in options.by_queue:
        return Path(options.by_queue[queue])
    if channel in DEFAULT_CHANNEL_SCORECARDS:
        configured = channel_templates.get(channel)
        return Path(configured) if configured else DEFAULT_CHANNEL_SCORECARDS[channel]
    return template_path(options)


def templates_in_use(options: ScorecardOptions, channel_templates: dict[str, str | None]) -> list[Path]:
    """Every template a run may score with (checked before the run, hashed into its config)."""
    paths = [template_path(options), *(template_for(options, channel_templates, c) for c in DEFAULT_CHANNEL_SCORECARDS),
             *(Path(p) for p in options.by_queue.values())]
    return list(dict.fromkeys(paths))


_TOP_KEYS = {"name", "version", "description", "sections"}
_SECTION_KEYS = {"id", "name", "weight", "items"}
_ITEM_KEYS = {"id", "question", "points", "auto_fail", "detector", "params", "na_when", "description"}


def _need(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}")


def _keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    _need(isinstance(obj, dict), where, "must be a mapping")
    unknown = sorted(set(obj) - allowed)
    _need(not unknown, where, f"unknown key '{unknown[0] if unknown else ''}'; allowed: {', '.join(sorted(allowed))}")
    return obj


def _number(value: Any, where: str, key: str, minimum: float = 0.0) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum
    _need(ok, f"{where}: {key}", f"{value!r} is not a number >= {minimum:g}")
    return float(value)


def parse_scorecard(data: Any, source: str) -> Scorecard:
    """A Scorecard from the parsed YAML ``data``; errors name ``source``, the item and the key."""
    top = _keys(data, _TOP_KEYS, source)
    for key in ("name", "sections"):
        _need(key in top, source, f"missing key '{key}'")
    _need(isinstance(top["name"], str) and top["name"].strip() != "", f"{source}: name", "must be a non-empty string")
    _need(isinstance(top["sections"], list) and top["sections"], f"{source}: sections", "must be a non-empty list")
    seen: set[str] = set()
    sections: list[SectionSpec] = []
    for i, raw in enumerate(top["sections"]):
        where = f"{source}: sections[{i}]"
        s = _keys(raw, _SECTION_KEYS, where)
        _need(isinstance(s.get("id"), str) and s["id"].isidentifier(), f"{where}: id",
              f"{s.get('id')!r} is not an identifier (letters, digits, _)")
        where = f"{source}: section '{s['id']}'"
        _need(isinstance(s.get("items"), list) and s["items"], f"{where}: items", "must be a non-empty list")
        section = SectionSpec(s["id"], str(s.get("name", s["id"])), _number(s.get("weight", 1.0), where, "weight"))
        for j, raw_item in enumerate(s["items"]):
            section.items.append(_parse_item(raw_item, section.id, f"{where}: items[{j}]", source, seen))
        sections.append(section)
    return Scorecard(str(top["name"]), str(top.get("version", "1")), sections,
                     plugins=plugins_used([item for s in sections for item in s.items]))


def _parse_item(raw: Any, section: str, where: str, source: str, seen: set[str]) -> ItemSpec:
    d = _keys(raw, _ITEM_KEYS, where)
    item_id = d.get("id")
    _need(isinstance(item_id, str) and item_id.startswith(section + ".") and item_id.count(".") == 1, f"{where}: id",
          f"{item_id!r} must be '{section}.<name>'")
    _need(item_id not in seen, f"{where}: id", f"'{item_id}' is used twice")
    seen.add(item_id)
    where = f"{source}: item '{item_id}'"
    _need(isinstance(d.get("question"), str) and d["question"].strip() != "", f"{where}: question", "must be a sentence")
    _need(isinstance(d.get("auto_fail", False), bool), f"{where}: auto_fail", "must be true or false")
    params = d.get("params") or {}
    _need(isinstance(params, dict), f"{where}: params", "must be a mapping")
    na_when = d.get("na_when") or []
    if isinstance(na_when, str):
        na_when = [na_when]
    _need(isinstance(na_when, list) and all(isinstance(c, str) for c in na_when), f"{where}: na_when",
          "must be a condition name or a list of them")
    item = ItemSpec(item_id, d["question"].strip(), section, _number(d.get("points", 1.0), where, "points"),
                    d.get("auto_fail", False), str(d.get("detector", "")), dict(params), list(na_when))
    validate_item(item, where)
    return item


def load_scorecard(path: str | Path | None = None) -> Scorecard:
    """Load and validate a template file (default: configs/scorecards/inbound_support.yaml)."""
    p = Path(path) if path is not None else DEFAULT_SCORECARD
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read scorecard template: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    card = parse_scorecard(data, str(p))
    card.path = str(p)
    card.sha256 = hashlib.sha256(raw).hexdigest()
    return card


# -- confidence calibration (scorecard.calibration) -------------------------------------------

def parse_calibration_map(text: str, where: str) -> tuple[str, list[float]]:
    """("platt", [A, B]) or ("isotonic", [c1, p1, c2, p2, ...]) from a map's text; ConfigError
    naming ``where`` for anything else."""
    parts = str(text).split()
    try:
        if parts and parts[0] == "platt" and len(parts) == 3:
            values = [float(parts[1]), float(parts[2])]
            if all(math.isfinite(v) for v in values):
                return "platt", values
        elif parts and parts[0] == "isotonic" and len(parts) >= 2:
            points = [tuple(float(v) for v in p.split(":")) for p in parts[1:]]
            xs = [x for x, _ in points]
            if (all(len(p) == 2 and 0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0 for p in points)
                    and xs == sorted(xs) and all(a <= b for (_, a), (_, b) in zip(points, points[1:]))):
                return "isotonic", [v for p in points for v in p]
    except ValueError:
        pass
    raise ConfigError(f"{where}: {text!r} is not a calibration map; use 'platt A B' or "
                      "'isotonic c1:p1 c2:p2 ...' (confidences and probabilities in 0-1, both increasing)")


def calibrate(confidence: float, kind: str, values: list[float]) -> float:
    """A confidence through a parsed map (:func:`parse_calibration_map`)."""
    c = min(max(float(confidence), 1e-4), 1.0 - 1e-4)
    if kind == "platt":
        z = values[0] * math.log(c / (1.0 - c)) + values[1]
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
    xs, ys = values[0::2], values[1::2]
    if c <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if c <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (c - x0) / (x1 - x0)
    return ys[-1]


def check_calibration(calibration: dict[str, dict[str, str]]) -> None:
    """ConfigError naming ``scorecard.calibration.TEMPLATE.ITEM`` for a map that cannot be read."""
    for template, items in (calibration or {}).items():
        for item, text in items.items():
            parse_calibration_map(text, f"scorecard.calibration.{template}.{item}")


def apply_calibration(items: list[dict[str, Any]], calibration: dict[str, dict[str, str]] | None,
                      template: str) -> list[dict[str, Any]]:
    """The scorecard items of a call (as written in call.json) with each confidence passed
    through its item's map for ``template`` (the template's name), the detector's own kept as
    ``confidence_raw``; items without a map, and every item when ``calibration`` is empty, are
    returned unchanged. Answers never change."""
    maps = (calibration or {}).get(template) or {}
    if not maps:
        return items
    out = []
    for item in items:
        text = maps.get(item.get("id"))
        if text is None or item.get("confidence") is None:
            out.append(item)
            continue
        kind, values = parse_calibration_map(text, f"scorecard.calibration.{template}.{item.get('id')}")
        out.append({**item, "confidence": round(calibrate(item["confidence"], kind, values), 3),
                    "confidence_raw": item["confidence"]})
    return out
