"""``callqa eval sweep``: one evaluation per setting of a grid, on the cached speech stage.

A grid axis is ``KEY=V1,V2,...`` where KEY is a config key (``section.key``, as for ``--set``)
or a scorecard item's detector parameter, ``item:ITEM_ID:PARAM`` (the template is copied with
that parameter changed). Values are read as YAML (``0.5``, ``true``, ``null``, ``[a, b]`` is not
possible inside a comma list: use a config file for lists). Every combination of the axes is
evaluated; settings that change only the analysis (detectors, scorecard, sentiment, PII,
conversation metrics) re-score the cached transcripts and speakers, so each takes seconds.

Each row also says which config keys differ from the default setting (the config file and
``--set`` overrides without the grid; ``default`` marks the setting equal to it), how long its
speech stage took (the seconds recorded in the stage cache when its calls were transcribed,
summed over the calls: settings that share transcripts show the same time), and how it stands
against the best setting: ``best``, ``tie`` (the same ranking metric, or a difference the
changed calls or answers do not bear out: sign test as in ``callqa eval compare``) or ``worse``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Config, load_config, parse_override
from pipeline.errors import ConfigError
from pipeline.analysis.scorecard import template_path

ITEM_PREFIX = "item:"
DEFAULT_METRIC = "scorecard.overall.accuracy"
COLUMNS = [
    "scorecard.overall.accuracy", "scorecard.overall.kappa", "scorecard.overall.mean_f1", "scorecard.scores.mae",
    "transcription.overall.wer", "speakers.overall.der", "speakers.overall.role_accuracy",
]
"""The metrics the sweep table shows (all compared metrics go to sweep.json)."""


def parse_grid(specs: list[str]) -> list[tuple[str, list[Any]]]:
    """``[(key, values)]`` from ``--grid KEY=V1,V2`` texts; ConfigError naming a bad one."""
    axes: list[tuple[str, list[Any]]] = []
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--grid {spec}: expected KEY=V1,V2,... (KEY: section.key or item:ITEM_ID:PARAM)")
        key, raw = (part.strip() for part in spec.split("=", 1))
        if key.startswith(ITEM_PREFIX):
            if key.count(":") != 2 or not all(key.split(":")[1:]):
                raise ConfigError(f"--grid {spec}: an item parameter is item:ITEM_ID:PARAM, e.g. item:closing.thanks:last_s")
        else:
            parse_override(f"{key}=0")  # checks the key's form
        try:
            values = [yaml.safe_load(v) for v in raw.split(",")]
        except yaml.YAMLError as e:
            raise ConfigError(f"--grid {spec}: cannot read the values: {e}") from e
        if not raw.strip() or any(v == "" for v in raw.split(",")):
            raise ConfigError(f"--grid {spec}: empty value in the list")
        if any(k == key for k, _ in axes):
            raise ConfigError(f"--grid {spec}: {key} is already a grid axis")
        axes.append((key, values))
    if not axes:
        raise ConfigError("eval sweep: give at least one --grid KEY=V1,V2,...")
    return axes


def settings(axes: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the axes, in grid order."""
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in axes))]


def _value_text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def setting_text(setting: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in setting.items())


def _template_variant(base: Path, changes: dict[str, Any], folder: Path) -> Path:
    """A copy of the template ``base`` with item parameters changed (``{(item, param): value}``
    as ``"item:ID:PARAM"`` keys), written under ``folder`` by content hash."""
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    items = {i.get("id"): i for s in data.get("sections", []) for i in s.get("items", [])}
    for key, value in changes.items():
        _, item_id, param = key.split(":")
        if item_id not in items:
            raise ConfigError(f"--grid {key}: the template {base} has no item '{item_id}'; "
                              f"items: {', '.join(str(i) for i in items)}")
        items[item_id].setdefault("params", {})[param] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path = folder / "templates" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return path


def config_for(setting: dict[str, Any], config_file: str | None, overrides: list[str], folder: Path) -> Config:
    """The effective config of one setting: the file, the ``--set`` overrides, then the setting."""
    plain = [f"{k}={json.dumps(v)}" for k, v in setting.items() if not k.startswith(ITEM_PREFIX)]
    config = load_config(config_file, overrides + plain)
    items = {k: v for k, v in setting.items() if k.startswith(ITEM_PREFIX)}
    if items:
        variant = _template_variant(template_path(config.scorecard), items, folder)
        try:
            config = load_config(config_file, overrides + plain + [f"scorecard.template={json.dumps(str(variant))}"])
        except ConfigError as e:
            raise ConfigError(f"--grid {setting_text(items)}: {e}") from e
    return config


def changed_keys(config: Config, default: Config, setting: dict[str, Any]) -> list[str]:
    """The keys whose effective value in ``config`` differs from ``default``: config keys, and
    the setting's item parameters (whose template copy, not the template key, is the change)."""
    from pipeline.evaluation.compare import config_changes

    items = {k: v for k, v in setting.items() if k.startswith(ITEM_PREFIX)}
    keys = [c["key"] for c in config_changes(config.result_dict(), default.result_dict())
            if not (items and c["key"] in ("scorecard.template", "scorecard.template_sha256"))]
    if items:
        data = yaml.safe_load(template_path(default.scorecard).read_text(encoding="utf-8"))
        params = {i.get("id"): i.get("params") or {} for s in data.get("sections", []) for i in s.get("items", [])}
        absent = object()
        keys += [k for k, v in items.items() if params.get(k.split(":")[1], {}).get(k.split(":")[2], absent) != v]
    return keys


def speech_seconds(evaluator: Any, config: Config) -> float | None:
    """Seconds the speech stage of the evaluated calls took when they were transcribed (as the
    stage cache recorded them), summed; None when none is cached."""
    from pipeline.run.stage_cache import speech_key

    found = [evaluator.cache.get(speech_key(config, evaluator.hashes[c.call_id], c.metadata)) for c in evaluator.calls]
    found = [f for f in found if f is not None]
    return round(sum(f.seconds for f in found), 3) if found else None


def _units_of(report: dict[str, Any]) -> dict[str, Any]:
    """The per-call parts of a report that :func:`compare.unit_changes` reads."""
    sc = report.get("scorecard") or {}
    scores = sc.get("scores") or {}
    return {"transcription": {"calls": (report.get("transcription") or {}).get("calls", {})},
            "speakers": {"calls": (report.get("speakers") or {}).get("calls", {})},
            "scorecard": {"answers": sc.get("answers", {}), "scores": {"calls": scores.get("calls", {})}}}


def _against_best(rows: list[dict[str, Any]], units: list[dict[str, Any]], metric: str) -> None:
    """Mark every row ``best``, ``tie`` or ``worse`` (``n/a`` without the metric) against the
    first, with the sign test's p where the difference is not exactly nil."""
    from pipeline.evaluation.compare import ALPHA, sign_test, unit_changes

    top = rows[0]["metrics"].get(metric) if rows else None
    for k, row in enumerate(rows):
        value, row["vs_best_p"] = row["metrics"].get(metric), None
        if value is None or top is None:
            row["vs_best"] = "n/a"
        elif k == 0:
            row["vs_best"] = "best"
        elif abs(value - top) <= 1e-9:
            row["vs_best"] = "tie"
        else:
            changed = unit_changes(units[0], units[k], metric)
            if changed is None:
                row["vs_best"] = "worse"
            else:
                row["vs_best_p"] = round(sign_test(changed["better"], changed["worse"]), 4)
                row["vs_best"] = "tie" if row["vs_best_p"] >= ALPHA else "worse"


def run_sweep(evaluator: Any, axes: list[tuple[str, list[Any]]], config_file: str | None, overrides: list[str],
              metric: str = DEFAULT_METRIC, log: Any = None) -> list[dict[str, Any]]:
    """One row per setting, best first by ``metric``: the setting, its metrics (flattened as in
    ``callqa eval compare``), the config hash, the keys changed from the default and whether it
    is the default, the speech-stage and scoring times, and ``vs_best`` (see the module
    docstring)."""
    from pipeline.evaluation.compare import better, flatten_metrics

    direction = better(metric)
    default = load_config(config_file, overrides)
    rows, units = [], []
    for setting in settings(axes):
        config = config_for(setting, config_file, overrides, evaluator.cache_dir)
        report = evaluator.evaluate(config)
        changed = changed_keys(config, default, setting)
        row = {"setting": setting, "config_hash": report["config_hash"], "metrics": flatten_metrics(report),
               "evaluated": len(report["data"]["evaluated"]), "seconds": evaluator.timing["scoring"]["seconds"],
               "speech_seconds": speech_seconds(evaluator, config), "changed": changed, "default": not changed}
        rows.append(row)
        units.append(_units_of(report))
        if log is not None:
            log(f"{setting_text(setting)}: {metric} {_fmt(row['metrics'].get(metric))} "
                f"({row['evaluated']} calls, scoring {row['seconds']:.1f} s)")

    def rank(k: int) -> tuple[int, float]:
        v = rows[k]["metrics"].get(metric)
        return (1, 0.0) if v is None else (0, -v if direction == "higher" else v)

    order = sorted(range(len(rows)), key=rank)  # stable: equal settings keep grid order
    rows, units = [rows[k] for k in order], [units[k] for k in order]
    _against_best(rows, units, metric)
    return rows


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _changed_text(row: dict[str, Any]) -> str:
    return "default" if row.get("default") else ", ".join(row.get("changed") or [])


def format_table(rows: list[dict[str, Any]], metric: str = DEFAULT_METRIC) -> str:
    """The sweep as a text table, best first, the ranking metric first; then each setting's
    standing against the best, its speech-stage seconds, and the keys it changes from the
    default (or ``default``)."""
    cols = [metric] + [c for c in COLUMNS if c != metric]
    cols = [c for c in cols if any(c in r["metrics"] for r in rows)]
    names = [setting_text(r["setting"]) for r in rows]
    width = max([len("setting")] + [len(n) for n in names])
    heads = [c.replace("scorecard.", "").replace("overall.", "").replace("transcription.", "")
             .replace("speakers.", "") for c in cols]
    out = io.StringIO()
    out.write(f"{'rank':>4}  {'setting':<{width}}  " + "  ".join(f"{h:>14}" for h in heads)
              + f"  {'vs best':>7}  {'speech s':>8}  changed\n")
    for k, (row, name) in enumerate(zip(rows, names), 1):
        speech = row.get("speech_seconds")
        out.write(f"{k:>4}  {name:<{width}}  " + "  ".join(f"{_fmt(row['metrics'].get(c)):>14}" for c in cols)
                  + f"  {row.get('vs_best', ''):>7}  {'n/a' if speech is None else f'{speech:.1f}':>8}"
                  + f"  {_changed_text(row)}\n")
    return out.getvalue()


def write_sweep(rows: list[dict[str, Any]], out_dir: Path, metric: str) -> None:
    """``sweep.json`` (every metric of every setting) and ``sweep.csv`` (the table's columns)."""
    from pipeline.interaction.writers import write_atomic, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", {"metric": metric, "rows": rows})
    keys = list(dict.fromkeys(k for r in rows for k in r["setting"]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", *keys, "config_hash", *COLUMNS, "vs_best", "speech_seconds", "scoring_seconds",
                     "changed"])
    for k, r in enumerate(rows, 1):
        writer.writerow([k, *(_value_text(r["setting"].get(key)) for key in keys), r["config_hash"],
                         *("" if r["metrics"].get(c) is None else r["metrics"][c] for c in COLUMNS),
                         r.get("vs_best", ""), "" if r.get("speech_seconds") is None else r["speech_seconds"],
                         r.get("seconds", ""), _changed_text(r)])
    write_atomic(out_dir / "sweep.csv", buf.getvalue())
