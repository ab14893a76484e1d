"""``callqa eval compare A B``: what changed between two evaluation reports.

Every metric of :data:`METRICS` found in either report is compared, knowing whether higher or
lower is better; answers whose correctness changed are listed per call and item; and warnings
say when the two reports are not measured on the same thing (other data, template, calls,
normalisation or collar), so a difference may not come from callqa itself.

A change is only called an improvement or a regression when it is consistent over the calls:
among the units whose own value changed between A and B (the calls, for the transcription and
speaker metrics and the total scores; the answers whose correctness changed, for the scorecard
metrics: of that item for an item's metrics, all answers for the overall ones), those that went
the metric's way must outnumber the others by a two-sided sign test at p < :data:`ALPHA`.
Otherwise the verdict is ``tie``: within the noise of the data (with fewer than 6 changed units
nothing can be more than a tie). ``same`` is an exact tie (``|delta| <= tolerance``). Where the
reports hold no per-call values for a metric, its verdict follows the sign of ``delta`` alone.
Runs are deterministic (issue 16), so the same config on the same data gives ``same`` throughout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipeline.errors import InputError

FORMAT = "callqa-eval-report/1"
REPORT_FILE = "report.json"
HIGHER, LOWER = "higher", "lower"

METRICS: dict[str, str] = {
    "transcription.overall.wer": LOWER,
    "transcription.overall.cer": LOWER,
    "transcription.roles.<role>.wer": LOWER,
    "speakers.overall.der": LOWER,
    "speakers.overall.der_collar": LOWER,
    "speakers.overall.jer": LOWER,
    "speakers.overall.jer_collar": LOWER,
    "speakers.overall.role_accuracy": HIGHER,
    "scorecard.overall.accuracy": HIGHER,
    "scorecard.overall.kappa": HIGHER,
    "scorecard.overall.mean_f1": HIGHER,
    "scorecard.overall.mean_kappa": HIGHER,
    "scorecard.scores.mae": LOWER,
    "scorecard.scores.pearson": HIGHER,
    "scorecard.scores.spearman": HIGHER,
    "scorecard.scores.auto_fail_agreement": HIGHER,
    "scorecard.items.<item>.accuracy": HIGHER,
    "scorecard.items.<item>.precision": HIGHER,
    "scorecard.items.<item>.recall": HIGHER,
    "scorecard.items.<item>.f1": HIGHER,
    "scorecard.items.<item>.kappa": HIGHER,
}
"""The compared metrics (flattened paths; ``<role>`` / ``<item>`` stand for every key at that
level) and which direction is better. Counts are not compared."""

VERDICTS = ("regressed", "improved", "tie", "added", "removed", "n/a", "same")

ALPHA = 0.05
"""Significance level of the sign test that separates a change from a tie (see the module
docstring)."""
TIMING_FILE = "timing.json"


def load_report(path: str | Path) -> dict:
    """The report in ``path`` (a report folder holding report.json, or the JSON file itself)."""
    p = Path(path)
    file = p / REPORT_FILE if p.is_dir() else p
    if not file.is_file():
        where = f"{p}: no {REPORT_FILE} in this folder" if p.is_dir() else f"{p}: no such report (file or folder)"
        raise InputError(where)
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{file}: cannot read the report: {err}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{file}: not JSON ({err.msg}, line {err.lineno})") from err
    fmt = report.get("format") if isinstance(report, dict) else None
    if fmt != FORMAT:
        raise InputError(f"{file}: not a callqa evaluation report (format {fmt!r}; expected {FORMAT!r})")
    timing = file.parent / TIMING_FILE
    if "timing" not in report and timing.is_file():
        try:  # beside the report (callqa eval writes it): how long its speech stage and scoring took
            report["timing"] = json.loads(timing.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass  # the times are only shown; a damaged timing.json leaves them out
    return report


def _map(obj: Any) -> Mapping[str, Any]:
    return obj if isinstance(obj, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _expand(report: Any, pattern: str) -> list[tuple[str, float | None]]:
    """``(metric, value)`` for every path of ``pattern`` present in ``report``, in report order;
    a present but undefined (None, non-numeric) value is None."""
    found: list[tuple[str, float | None]] = []

    def walk(node: Any, parts: list[str], done: list[str]) -> None:
        if not isinstance(node, Mapping):
            return
        head, rest = parts[0], parts[1:]
        keys = [str(k) for k in node] if head.startswith("<") else ([head] if head in node else [])
        for key in keys:
            if rest:
                walk(node[key], rest, done + [key])
            else:
                found.append((".".join(done + [key]), _number(node[key])))

    walk(report, pattern.split("."), [])
    return found


def flatten_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """Every compared metric present in ``report`` (:data:`METRICS` order), its value or None."""
    return {m: v for pattern in METRICS for m, v in _expand(report, pattern)}


def better(metric: str) -> str:
    """``"higher"`` or ``"lower"``: which way ``metric`` improves."""
    parts = metric.split(".")
    for pattern, direction in METRICS.items():
        pp = pattern.split(".")
        # an item id may itself contain dots: match the fixed head and tail around the placeholder
        if "<" not in pattern:
            if pp == parts:
                return direction
            continue
        i = next(k for k, p in enumerate(pp) if p.startswith("<"))
        tail = pp[i + 1:]
        if len(parts) > len(pp) - 1 and parts[:i] == pp[:i] and parts[len(parts) - len(tail):] == tail:
            return direction
    raise KeyError(f"{metric}: not a compared metric")


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test: the probability of a split at least as uneven as ``better``
    against ``worse`` if each changed unit went either way by chance."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1))
    return min(1.0, 2 * tail / 2**n)


def _dig(node: Any, path: list[str]) -> Any:
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _call_values(report: Mapping[str, Any], section: str, path: list[str]) -> dict[str, float | None]:
    """``{call_id: value}`` of a per-call figure (``section.calls.<id>.<path>``)."""
    calls = _map(_map(report.get(section)).get("calls"))
    return {str(cid): _number(_dig(row, path)) for cid, row in calls.items()}


def _score_values(report: Mapping[str, Any], name: str) -> dict[str, float | None]:
    """Per call, a value that is higher when the call's total score agrees better with gold:
    minus the absolute score error, or 1 / 0 for auto-fail agreement."""
    calls = _map(_map(_map(report.get("scorecard")).get("scores")).get("calls"))
    out: dict[str, float | None] = {}
    for cid, row in calls.items():
        row = _map(row)
        if name == "auto_fail_agreement":
            out[str(cid)] = float(row.get("auto_fail") == row.get("gold_auto_fail"))
        else:
            auto, gold = _number(row.get("auto")), _number(row.get("gold"))
            out[str(cid)] = None if auto is None or gold is None else -abs(auto - gold)
    return out


def unit_changes(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    """The units behind ``metric`` whose own value changed from A to B: ``{unit, better,
    worse}`` (unit ``calls`` or ``answers``), or None where the reports hold no per-unit values."""
    parts = metric.split(".")
    direction = better(metric)
    if parts[0] == "scorecard" and parts[1] in ("overall", "items"):
        if not _answers(a) or not _answers(b):
            return None
        item = ".".join(parts[2:-1]) if parts[1] == "items" else None
        changed = [c for c in _calls_changed(a, b) if item is None or c["item"] == item]
        return {"unit": "answers", "better": sum(c["change"] == "fixed" for c in changed),
                "worse": sum(c["change"] == "broken" for c in changed)}
    if parts[0] == "scorecard" and parts[1] == "scores":
        va, vb, direction = _score_values(a, parts[-1]), _score_values(b, parts[-1]), HIGHER
    elif parts[0] in ("transcription", "speakers") and parts[1] in ("overall", "roles"):
        path = [parts[-1]] if parts[1] == "overall" else ["roles", ".".join(parts[2:-1]), parts[-1]]
        va, vb = _call_values(a, parts[0], path), _call_values(b, parts[0], path)
    else:
        return None
    pairs = [(va[c], vb[c]) for c in va if c in vb and va[c] is not None and vb[c] is not None]
    if not pairs:
        return None
    ups = sum(1 for x, y in pairs if y > x + 1e-12)
    downs = sum(1 for x, y in pairs if y < x - 1e-12)
    good, bad = (downs, ups) if direction == LOWER else (ups, downs)
    return {"unit": "calls", "better": good, "worse": bad}


def _verdict(a: float | None, b: float | None, direction: str, tolerance: float,
             units: dict[str, Any] | None = None) -> tuple[float | None, str]:
    """Delta and verdict; ``units`` (from :func:`unit_changes`, with its sign test ``p``) turn
    a change that is not consistent over the units into a tie."""
    if a is None or b is None:
        return None, "n/a"
    delta = b - a
    if abs(delta) <= tolerance:
        return round(delta, 6), "same"
    gain = delta < 0 if direction == LOWER else delta > 0
    if units is not None and units["better"] + units["worse"] > 0:
        toward = units["better"] > units["worse"] if gain else units["worse"] > units["better"]
        if units["p"] >= ALPHA or not toward:
            return round(delta, 6), "tie"
    return round(delta, 6), "improved" if gain else "regressed"


def _metrics(a: Mapping[str, Any], b: Mapping[str, Any], tolerance: float) -> list[dict[str, Any]]:
    """One row per metric in either report: fixed metrics in :data:`METRICS` order, those of one
    role or item together (in the order of A, then the ones only B has)."""
    rows = []
    groups: dict[str, int] = {}
    for index, (pattern, direction) in enumerate(METRICS.items()):
        in_a, in_b = dict(_expand(a, pattern)), dict(_expand(b, pattern))
        head, _, tail = pattern.partition("<")
        group = groups.setdefault(head, index)
        tail = tail.partition(">")[2]
        for metric in [*in_a, *(m for m in in_b if m not in in_a)]:
            va, vb = in_a.get(metric), in_b.get(metric)
            units = None
            if metric not in in_b:
                delta, verdict = None, "removed"
            elif metric not in in_a:
                delta, verdict = None, "added"
            else:
                units = unit_changes(a, b, metric)
                if units is not None:
                    units["p"] = round(sign_test(units["better"], units["worse"]), 4)
                delta, verdict = _verdict(va, vb, direction, tolerance, units)
            member = metric[len(head): len(metric) - len(tail)] if tail else ""
            order = (group, _member_order(member, head, a, b), index)
            rows.append((order, {"metric": metric, "a": va, "b": vb, "delta": delta, "verdict": verdict,
                                 "better": direction, "units": units}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _member_order(member: str, head: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    """Position of a role / item among the keys under ``head`` in A, then those only in B."""
    if not member:
        return 0
    keys: list[str] = []
    for report in (a, b):
        node: Any = report
        for part in head.rstrip(".").split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        for k in node if isinstance(node, Mapping) else ():
            if str(k) not in keys:
                keys.append(str(k))
    return keys.index(member) if member in keys else len(keys)


def _answers(report: Mapping[str, Any]) -> Mapping[str, Any]:
    sc = report.get("scorecard")
    answers = sc.get("answers") if isinstance(sc, Mapping) else None
    return answers if isinstance(answers, Mapping) else {}


def _calls_changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (call, item) answered in both reports: where its correctness changed."""
    answers_a, answers_b = _answers(a), _answers(b)
    out = []
    for cid, items_a in answers_a.items():
        items_b = answers_b.get(cid)
        if not isinstance(items_a, Mapping) or not isinstance(items_b, Mapping):
            continue
        for iid, ans_a in items_a.items():
            ans_b = items_b.get(iid)
            if not isinstance(ans_a, Mapping) or not isinstance(ans_b, Mapping):
                continue
            if ans_a.get("gold") is None or ans_b.get("gold") is None:
                continue
            right_a = ans_a.get("auto") is not None and ans_a.get("auto") == ans_a.get("gold")
            right_b = ans_b.get("auto") is not None and ans_b.get("auto") == ans_b.get("gold")
            if right_a != right_b:
                out.append({
                    "call_id": cid, "item": iid, "change": "fixed" if right_b else "broken",
                    "a_auto": ans_a.get("auto"), "b_auto": ans_b.get("auto"),
                    "a_gold": ans_a.get("gold"), "b_gold": ans_b.get("gold"),
                })
    return out


def _few(names: Iterable[Any], limit: int = 5) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _template(report: Mapping[str, Any]) -> tuple[Any, Any, Any] | None:
    t = report.get("scorecard_template")
    return (t.get("name"), t.get("version"), t.get("sha256")) if isinstance(t, Mapping) else None


def _warnings(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    out = []
    data_a, data_b = _map(a.get("data")), _map(b.get("data"))
    sha_a, sha_b = data_a.get("sha256"), data_b.get("sha256")
    if sha_a and sha_b and sha_a != sha_b:
        out.append(f"not the same data (sha256 {str(sha_a)[:12]} vs {str(sha_b)[:12]}): "
                   "differences may come from the data")
    ev_a, ev_b = data_a.get("evaluated"), data_b.get("evaluated")
    if isinstance(ev_a, list) and isinstance(ev_b, list) and {str(c) for c in ev_a} != {str(c) for c in ev_b}:
        only_a = [str(c) for c in ev_a if str(c) not in {str(x) for x in ev_b}]
        only_b = [str(c) for c in ev_b if str(c) not in {str(x) for x in ev_a}]
        parts = ([f"{len(only_a)} only in A ({_few(only_a)})"] if only_a else []) + (
            [f"{len(only_b)} only in B ({_few(only_b)})"] if only_b else [])
        out.append("the evaluated calls differ: " + "; ".join(parts) + ": overall figures cover different calls")
    ta, tb = _template(a), _template(b)
    if ta != tb and (ta is not None or tb is not None):
        def name(t: tuple[Any, Any, Any] | None) -> str:
            return "none" if t is None else f"{t[0]} v{t[1]}" + (f" ({str(t[2])[:12]})" if t[2] else "")

        if ta is not None and tb is not None and ta[:2] == tb[:2]:
            out.append(f"the scorecard template {name(ta)} changed between the reports (its sha256 differs)")
        else:
            out.append(f"different scorecard templates: {name(ta)} vs {name(tb)}: item results may not be comparable")
    if a.get("normalisation") and b.get("normalisation") and a["normalisation"] != b["normalisation"]:
        out.append("different text normalisation before WER: WER and CER are not directly comparable")
    ca, cb = _map(a.get("speakers")).get("collar_s"), _map(b.get("speakers")).get("collar_s")
    if ca is not None and cb is not None and ca != cb:
        out.append(f"different DER collar ({ca} s vs {cb} s): the *_collar figures are not comparable")
    return out


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"section.key": value}`` of a config dict (nested mappings joined with dots; lists
    and empty mappings are values)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The config keys whose values differ between two configs (``report["config"]``), in key
    order: ``{key, a, b}`` (None where a side lacks the key)."""
    fa, fb = flatten_config(_map(a)), flatten_config(_map(b))
    absent = object()
    return [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted({*fa, *fb})
            if fa.get(k, absent) != fb.get(k, absent)]


def _side(report: Mapping[str, Any]) -> dict[str, Any]:
    data = _map(report.get("data"))
    t = report.get("scorecard_template")
    timing = _map(report.get("timing"))
    speech, scoring = _map(timing.get("speech")), _map(timing.get("scoring"))
    return {
        "callqa_version": report.get("callqa_version"),
        "config_hash": report.get("config_hash"),
        "data_path": data.get("path"),
        "data_sha256": data.get("sha256"),
        "evaluated": len(data["evaluated"]) if isinstance(data.get("evaluated"), list) else 0,
        "template": f"{t.get('name')} v{t.get('version')}" if isinstance(t, Mapping) else None,
        "speech_computed": speech.get("computed"),
        "speech_cached": speech.get("cached"),
        "speech_seconds": speech.get("seconds"),
        "scoring_seconds": scoring.get("seconds"),
    }


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any], tolerance: float = 1e-9) -> dict[str, Any]:
    """What changed from report ``a`` to report ``b``.

    ``metrics``: one row per compared metric in either report, ``{metric, a, b, delta (b - a),
    verdict, better, units}`` (``units``: the calls or answers behind it that changed, ``{unit,
    better, worse, p}``, or None; a ``tie`` is a change they do not bear out, see the module
    docstring); ``config_changes``: the config keys that differ, ``{key, a, b}``;
    ``calls_changed``: the answers that became right ("fixed") or wrong ("broken"); ``warnings``;
    ``counts`` of every verdict and of fixed / broken answers; ``a`` / ``b``: each report's
    config hash, data, and speech-stage and scoring times when its timing.json was beside it.
    """
    metrics = _metrics(a, b, tolerance)
    changed = _calls_changed(a, b)
    counts = {v: sum(1 for m in metrics if m["verdict"] == v) for v in VERDICTS}
    counts["fixed"] = sum(1 for c in changed if c["change"] == "fixed")
    counts["broken"] = sum(1 for c in changed if c["change"] == "broken")
    return {
        "a": _side(a), "b": _side(b), "tolerance": tolerance, "alpha": ALPHA,
        "config_changes": config_changes(_map(a.get("config")), _map(b.get("config"))),
        "metrics": metrics, "calls_changed": changed, "warnings": _warnings(a, b), "counts": counts,
    }


def _value(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _delta(v: Any) -> str:
    return "" if v is None else f"{v:+.4f}"


def _seconds(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def _speech_time(side: Mapping[str, Any]) -> str:
    """The speech stage's time as measured: only calls computed in that evaluation took any."""
    computed, cached = side.get("speech_computed") or 0, side.get("speech_cached") or 0
    if computed:
        return f"speech stage {_seconds(side.get('speech_seconds'))} for {computed} calls transcribed" + (
            f" ({cached} from the cache)" if cached else "")
    return f"speech stage from the cache ({cached} calls; transcription time not measured)"


def _config_value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def format_comparison(cmp: Mapping[str, Any]) -> str:
    """The comparison as plain text for the terminal: warnings, each side's config and times,
    the config keys that changed, regressions, improvements, ties (changed within the noise,
    with the calls or answers that went each way and the sign test's p), metrics added /
    removed / undefined ("-": not in that report, "n/a": undefined there), the number
    unchanged, then the answers fixed and broken."""
    lines: list[str] = []
    for w in cmp.get("warnings") or []:
        lines.append(f"warning: {w}")
    if lines:
        lines.append("")
    sa, sb = cmp.get("a") or {}, cmp.get("b") or {}
    for tag, side in (("A", sa), ("B", sb)):
        if side:
            lines.append(
                f"{tag}: config {side.get('config_hash') or 'n/a'}, callqa {side.get('callqa_version') or 'n/a'}, "
                f"{side.get('evaluated', 0)} calls, template {side.get('template') or 'none'}"
            )
            if side.get("speech_seconds") is not None or side.get("scoring_seconds") is not None:
                lines.append(f"   time: {_speech_time(side)}, scoring {_seconds(side.get('scoring_seconds'))}")
    changes = list(cmp.get("config_changes") or [])
    if changes:
        lines.extend(["", f"Config changes ({len(changes)}):"])
        lines.extend(f"  {c['key']}: {_config_value(c['a'])} -> {_config_value(c['b'])}" for c in changes)
    elif sa.get("config_hash") and sa.get("config_hash") == sb.get("config_hash"):
        lines.extend(["", "Config: the same (same config hash): differences come from the code, models or data"])
    metrics = list(cmp.get("metrics") or [])
    width = max([len("metric")] + [len(m["metric"]) for m in metrics])
    header = f"  {'metric':<{width}}  {'A':>8}  {'B':>8}  {'delta':>8}  better"

    def block(title: str, verdict: str) -> None:
        rows = [m for m in metrics if m["verdict"] == verdict]
        if not rows:
            return
        lines.extend(["", f"{title} ({len(rows)}):", header])
        for m in rows:
            va = "-" if m["verdict"] == "added" else _value(m["a"])
            vb = "-" if m["verdict"] == "removed" else _value(m["b"])
            line = f"  {m['metric']:<{width}}  {va:>8}  {vb:>8}  {_delta(m['delta']):>8}  {m.get('better', '')}"
            units = m.get("units")
            if verdict == "tie" and units:
                line += f"  {units['unit']} {units['better']} better, {units['worse']} worse, p={units['p']:.2f}"
            lines.append(line)

    block("Regressions", "regressed")
    block("Improvements", "improved")
    block(f"Ties: changed, but within the noise (sign test p >= {cmp.get('alpha', ALPHA)})", "tie")
    block("Only in B (added)", "added")
    block("Only in A (removed)", "removed")
    block("Undefined in A or B (n/a)", "n/a")
    same = sum(1 for m in metrics if m["verdict"] == "same")
    lines.extend(["", f"Unchanged: {same} metric{'s' if same != 1 else ''}"])
    changed = list(cmp.get("calls_changed") or [])
    fixed = [c for c in changed if c["change"] == "fixed"]
    broken = [c for c in changed if c["change"] == "broken"]
    lines.append(f"Answers: {len(fixed)} fixed (wrong in A, right in B), {len(broken)} broken (right in A, wrong in B)")
    if changed:
        cw = max(len(str(c["call_id"])) for c in changed)
        iw = max(len(str(c["item"])) for c in changed)
        for c in broken + fixed:
            gold = c["b_gold"] if c["a_gold"] == c["b_gold"] else f"{c['a_gold']} -> {c['b_gold']}"
            lines.append(f"  {c['change']:<6}  {str(c['call_id']):<{cw}}  {str(c['item']):<{iw}}  "
                         f"A: {c['a_auto'] or 'n/a':<4} B: {c['b_auto'] or 'n/a':<4} gold: {gold}")
    return "\n".join(lines) + "\n"
