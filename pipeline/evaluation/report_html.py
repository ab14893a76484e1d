"""``report.html``: the evaluation report (``report.json``) as one self-contained page.

Inline CSS and inline SVG charts (pipeline/evaluation/plots.py), no script, no external URL:
the page opens from disk anywhere and can be mailed as one file. Every string taken from the
report is escaped, and the page depends only on the report (no date, no random id), so the same
report always renders to the same bytes. Any section or metric may be missing: it reads "n/a".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from pipeline.evaluation.plots import bar_chart, confusion_grid, esc, number, scatter
from pipeline.interaction.writers import write_atomic

NA = "n/a"
ANSWER_ORDER = ("yes", "no", "na")

CSS = """
:root { --ink: #1f2328; --muted: #667085; --line: #d0d7de; --soft: #f6f8fa; --bad: #b42318; --good: #1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 28px 64px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto; }
nav { margin: 8px 0 0; color: var(--muted); }
nav a { color: inherit; margin-right: 14px; }
.meta { border-collapse: collapse; margin: 12px 0; }
.meta th { text-align: left; font-weight: 600; padding: 2px 16px 2px 0; color: var(--muted); vertical-align: top; }
.meta td { padding: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 130px; background: #fff; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .sub { color: var(--muted); font-size: 11px; }
table.data { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: right; }
table.data th { background: var(--soft); font-weight: 600; }
table.data td.key, table.data th.key { text-align: left; }
table.data tfoot td { font-weight: 600; background: #fbfbfc; }
table.data td.wrong { color: var(--bad); font-weight: 600; }
table.data td.right { color: var(--good); }
.q { color: var(--muted); font-size: 12px; font-weight: normal; }
.na, .note { color: var(--muted); }
.grids { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: flex-start; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 36px; align-items: flex-start; margin: 8px 0; }
.dis { border-left: 3px solid var(--bad); padding: 4px 0 4px 12px; margin: 10px 0; }
.dis .head { font-weight: 600; }
.dis ul { margin: 4px 0; padding-left: 18px; }
.quote { font-style: italic; }
.bad { color: var(--bad); }
details { margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; }
"""


# ---------------------------------------------------------------- formatting


def _get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None where any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _map(obj: Any) -> Mapping[str, Any]:
    return obj if isinstance(obj, Mapping) else {}


def _list(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def pct(value: Any, digits: int = 1) -> str:
    """A rate (0.1234) as a percentage ("12.3%"), or "n/a"."""
    v = number(value)
    return NA if v is None else f"{v * 100:.{digits}f}%"


def dec(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or "n/a"."""
    v = number(value)
    return NA if v is None else f"{v:.{digits}f}"


def count(value: Any) -> str:
    v = number(value)
    return NA if v is None else (str(int(v)) if v == int(v) else f"{v:g}")


def seconds(value: Any) -> str:
    v = number(value)
    return NA if v is None else f"{v:.1f}"


def clock(value: Any, up: bool = False) -> str:
    """Seconds as ``m:ss`` (rounded down, or up with ``up``), or "?"."""
    v = number(value)
    if v is None:
        return "?"
    s = max(0, math.ceil(v) if up else math.floor(v))
    return f"{s // 60}:{s % 60:02d}"


def _na(text: str) -> str:
    return f'<span class="na">{esc(text)}</span>' if text == NA else esc(text)


def _table(head: list[str], rows: Iterable[list[str]], foot: Iterable[list[str]] = (), keys: int = 1) -> str:
    """A table; cells are already-escaped HTML; the first ``keys`` columns are left-aligned."""

    def line(cells: list[str], tag: str) -> str:
        out = []
        for i, cell in enumerate(cells):
            cls = ' class="key"' if i < keys else ""
            if tag == "td" and cell.startswith("\0"):  # marked cell: "\0class\0html"
                _, extra, cell = cell.split("\0", 2)
                cls = f' class="{extra}{" key" if i < keys else ""}"'
            out.append(f"<{tag}{cls}>{cell}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    parts = ['<table class="data">', "<thead>" + line([esc(h) for h in head], "th") + "</thead>", "<tbody>"]
    parts += [line(r, "td") for r in rows]
    parts.append("</tbody>")
    foot = list(foot)
    if foot:
        parts += ["<tfoot>", *[line(r, "td") for r in foot], "</tfoot>"]
    parts.append("</table>")
    return "\n".join(parts)


def _mark(cls: str, html_cell: str) -> str:
    return f"\0{cls}\0{html_cell}"


def _dump(obj: Any) -> str:
    try:
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False)
    except yaml.YAMLError:
        return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------- sections


def _header(report: Mapping[str, Any]) -> str:
    data = _map(report.get("data"))
    template = report.get("scorecard_template")
    sha = data.get("sha256")
    evaluated = data.get("evaluated") if isinstance(data.get("evaluated"), list) else []
    failed = _map(data.get("failed"))
    unlabelled = data.get("unlabelled") if isinstance(data.get("unlabelled"), list) else []
    if isinstance(template, Mapping):
        name = template.get("name")
        version = template.get("version")
        tpl = esc(name if name is not None else "(unnamed)") + (f" v{esc(version)}" if version is not None else "")
        plugins = [p for p in _list(template.get("plugins")) if isinstance(p, Mapping)]
        if plugins:  # detectors and conditions from other packages (pipeline/analysis/detectors/plugins.py)
            tpl += "; plugins: " + ", ".join(
                f"{esc(p.get('distribution') or '?')} {esc(p.get('version') or '')} ({esc(p.get('name') or '?')})"
                for p in plugins)
    else:
        tpl = '<span class="na">no scorecard</span>'
    sha_html = f'<code title="{esc(sha)}">{esc(str(sha)[:12])}</code>' if sha else _na(NA)
    calls = data.get("calls")
    counts = (
        f"{esc(count(calls))} in the data: {len(evaluated)} evaluated, {len(failed)} failed, "
        f"{len(unlabelled)} unlabelled"
    )
    rows = [
        ("Data", f"<code>{esc(data.get('path') or NA)}</code>"),
        ("Data sha256", sha_html),
        ("Calls", counts),
        ("Config hash", f"<code>{esc(report.get('config_hash') or NA)}</code>"),
        ("Scorecard template", tpl),
        ("callqa version", esc(report.get("callqa_version") or NA)),
        ("Report format", esc(report.get("format") or NA)),
    ]
    meta = "\n".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    out = [
        f"<h1>callqa evaluation: {esc(data.get('path') or 'unknown data')}</h1>",
        '<nav><a href="#transcription">Transcription</a><a href="#speakers">Speakers</a>'
        '<a href="#scorecard">Scorecard</a><a href="#disagreements">Disagreements</a>'
        '<a href="#config">Config and models</a></nav>',
        f'<table class="meta">\n{meta}\n</table>',
    ]
    if failed:
        items = "\n".join(f"<li><code>{esc(cid)}</code>: {esc(err)}</li>" for cid, err in failed.items())
        out.append(f'<p class="bad">Failed calls (not evaluated):</p>\n<ul>\n{items}\n</ul>')
    if unlabelled:
        out.append("<p>Unlabelled calls (no gold labels, not evaluated): " + ", ".join(
            f"<code>{esc(c)}</code>" for c in unlabelled) + "</p>")
    if evaluated:
        out.append(f"<details><summary>Evaluated calls ({len(evaluated)})</summary><p>" + ", ".join(
            f"<code>{esc(c)}</code>" for c in evaluated) + "</p></details>")
    return "\n".join(out)


def _cards(report: Mapping[str, Any]) -> str:
    tr = _get(report, "transcription", "overall")
    sp = _get(report, "speakers", "overall")
    sc = _get(report, "scorecard", "overall")
    scores = _get(report, "scorecard", "scores")
    collar = number(_get(report, "speakers", "collar_s"))
    collar_text = f"collar {collar:g} s" if collar is not None else "collar"
    cards = [
        ("WER", pct(_get(tr, "wer")), "word error rate, all calls"),
        ("CER", pct(_get(tr, "cer")), "character error rate"),
        ("DER", f"{pct(_get(sp, 'der'))} / {pct(_get(sp, 'der_collar'))}", f"no collar / {collar_text}"),
        ("JER", pct(_get(sp, "jer")), "Jaccard error rate, no collar"),
        ("Role accuracy", pct(_get(sp, "role_accuracy")), "agent / customer"),
        ("Item accuracy", pct(_get(sc, "accuracy")), f"{count(_get(sc, 'answers'))} answers"),
        ("Pooled kappa", dec(_get(sc, "kappa")), "Cohen's kappa, all items"),
        ("Mean F1", dec(_get(sc, "mean_f1")), "over items"),
        ("Score MAE", dec(_get(scores, "mae")), "total score, automatic vs gold"),
        ("Pearson", dec(_get(scores, "pearson")), "total score correlation"),
    ]
    html = []
    for label, value, sub in cards:
        cls = "value na" if value in (NA, f"{NA} / {NA}") else "value"
        html.append(
            f'<div class="card"><div class="label">{esc(label)}</div><div class="{cls}">{esc(value)}</div>'
            f'<div class="sub">{esc(sub)}</div></div>'
        )
    return '<div class="cards">\n' + "\n".join(html) + "\n</div>"


def _roles(*role_maps: Any) -> list[str]:
    """Role names in order of first appearance."""
    seen: dict[str, None] = {}
    for roles in role_maps:
        for role in _map(roles):
            seen.setdefault(str(role))
    return list(seen)


def _transcription(report: Mapping[str, Any]) -> str:
    out = ['<h2 id="transcription">Transcription</h2>']
    tr = report.get("transcription")
    if not isinstance(tr, Mapping):
        return out[0] + '\n<p class="na">No transcription results in this report.</p>'
    if report.get("normalisation"):
        out.append(f'<p class="note">Text normalisation before WER: {esc(report["normalisation"])}</p>')
    calls = _map(tr.get("calls"))
    roles = _roles(tr.get("roles"), *[_map(c).get("roles") for c in calls.values()])
    head = ["Call", "WER", "CER", *[f"{r} WER" for r in roles], "ref words", "sub / del / ins"]

    def edits(te: Any) -> str:
        return " / ".join(count(_get(te, k)) for k in ("substitutions", "deletions", "insertions"))

    rows = []
    for cid, te in calls.items():
        rows.append([
            f"<code>{esc(cid)}</code>", _na(pct(_get(te, "wer"))), _na(pct(_get(te, "cer"))),
            *[_na(pct(_get(te, "roles", r, "wer"))) for r in roles],
            _na(count(_get(te, "ref_words"))), esc(edits(te)),
        ])
    overall = tr.get("overall")
    foot = [[
        "all calls", _na(pct(_get(overall, "wer"))), _na(pct(_get(overall, "cer"))),
        *[_na(pct(_get(tr, "roles", r, "wer"))) for r in roles],
        _na(count(_get(overall, "ref_words"))), esc(edits(overall)),
    ]]
    for r in roles:
        te = _get(tr, "roles", r)
        foot.append([
            f"{esc(r)} (all calls)", _na(pct(_get(te, "wer"))), _na(pct(_get(te, "cer"))),
            *[_na(pct(_get(te, "wer"))) if other == r else "" for other in roles],
            _na(count(_get(te, "ref_words"))), esc(edits(te)),
        ])
    out.append(_table(head, rows, foot))
    if calls:
        out.append(bar_chart(list(calls), [_get(te, "wer") for te in calls.values()], "WER per call", fmt="{:.1%}"))
    return "\n".join(out)


def _speakers(report: Mapping[str, Any]) -> str:
    out = ['<h2 id="speakers">Speakers</h2>']
    sp = report.get("speakers")
    if not isinstance(sp, Mapping):
        return out[0] + '\n<p class="na">No speaker results in this report (no labels with roles).</p>'
    collar = number(sp.get("collar_s"))
    out.append(
        '<p class="note">DER and JER without a collar, and with pyannote.metrics\' collar of '
        f"{esc(f'{collar:g} s (±{collar / 2:g} s' if collar is not None else NA)} around each reference "
        "boundary); "
        "missed speech, false alarm and speaker confusion in seconds (no collar).</p>"
    )
    head = ["Call", "method", "reference", "DER", "DER collar", "JER", "JER collar", "role accuracy",
            "missed s", "false alarm s", "confusion s", "total s"]

    def figures(s: Any) -> list[str]:
        return [
            _na(pct(_get(s, "der"))), _na(pct(_get(s, "der_collar"))), _na(pct(_get(s, "jer"))),
            _na(pct(_get(s, "jer_collar"))), _na(pct(_get(s, "role_accuracy"))),
            *[_na(seconds(_get(s, k))) for k in ("missed", "false_alarm", "confusion", "total")],
        ]

    calls = _map(sp.get("calls"))
    rows = [
        [f"<code>{esc(cid)}</code>", _na(str(_get(s, "method") or NA)), _na(str(_get(s, "reference") or NA)),
         *figures(s)]
        for cid, s in calls.items()
    ]
    foot = [["all calls", "", "", *figures(sp.get("overall"))]]
    out.append(_table(head, rows, foot, keys=3))
    if calls:
        out.append(bar_chart(list(calls), [_get(s, "der") for s in calls.values()], "DER per call (no collar)",
                             fmt="{:.1%}"))
    return "\n".join(out)


def _answer_labels(ia: Any) -> list[str]:
    """The answers an item's confusion grid shows: yes / no / na first, then any other."""
    present = _get(ia, "labels_present")
    seen: dict[str, None] = {}
    for lab in present if isinstance(present, list) else []:
        seen.setdefault(str(lab))
    for gold, row in _map(_get(ia, "confusion")).items():
        for auto, n in _map(row).items():
            if (number(n) or 0) > 0:
                seen.setdefault(str(gold))
                seen.setdefault(str(auto))
    if not seen:
        seen = {str(k): None for k in _map(_get(ia, "confusion"))}
    return [a for a in ANSWER_ORDER if a in seen] + sorted(a for a in seen if a not in ANSWER_ORDER)


def _questions(sc: Mapping[str, Any]) -> dict[str, str]:
    """Each item's question, where the report gives it (an item's own entry or a disagreement)."""
    out: dict[str, str] = {}
    for iid, ia in _map(sc.get("items")).items():
        if _get(ia, "question"):
            out[str(iid)] = str(ia["question"])
    for d in _list(sc.get("disagreements")):
        if isinstance(d, Mapping) and d.get("item") is not None and d.get("question"):
            out.setdefault(str(d["item"]), str(d["question"]))
    return out


def _scorecard(report: Mapping[str, Any]) -> str:
    out = ['<h2 id="scorecard">Scorecard</h2>']
    sc = report.get("scorecard")
    if not isinstance(sc, Mapping):
        return out[0] + '\n<p class="na">No scorecard in this run.</p>'
    ov = _map(sc.get("overall"))
    out.append(
        f"<p>{esc(count(ov.get('answers')))} answers compared with gold: accuracy {_na(pct(ov.get('accuracy')))}, "
        f"pooled kappa {_na(dec(ov.get('kappa')))}, mean F1 {_na(dec(ov.get('mean_f1')))}, "
        f"mean kappa {_na(dec(ov.get('mean_kappa')))}.</p>"
    )
    items = _map(sc.get("items"))
    questions = _questions(sc)
    n_dis: dict[str, int] = {}
    for d in _list(sc.get("disagreements")):
        if isinstance(d, Mapping):
            n_dis[str(d.get("item"))] = n_dis.get(str(d.get("item")), 0) + 1
    out.append("<h3>Items</h3>")
    if items:
        rows = []
        for iid, ia in items.items():
            q = questions.get(str(iid))
            key = f"<code>{esc(iid)}</code>" + (f'<br><span class="q">{esc(q)}</span>' if q else "")
            rows.append([
                key, _na(count(_get(ia, "n"))), _na(pct(_get(ia, "accuracy"))), _na(dec(_get(ia, "precision"))),
                _na(dec(_get(ia, "recall"))), _na(dec(_get(ia, "f1"))), _na(dec(_get(ia, "kappa"))),
                str(n_dis.get(str(iid), 0)),
            ])
        out.append(_table(["Item", "n", "accuracy", "precision", "recall", "F1", "kappa", "disagreements"], rows))
        out.append(bar_chart(list(items), [_get(ia, "f1") for ia in items.values()], "F1 per item", max_value=1.0,
                             fmt="{:.3f}"))
        out.append("<h3>Confusion per item</h3>")
        out.append('<p class="note">Rows: gold answer; columns: automatic answer; green cells agree.</p>')
        grids = [confusion_grid(_get(ia, "confusion"), _answer_labels(ia), str(iid)) for iid, ia in items.items()]
        out.append('<div class="grids">\n' + "\n".join(grids) + "\n</div>")
        class_rows = []
        for iid, ia in items.items():
            for answer, m in _map(_get(ia, "classes")).items():
                class_rows.append([
                    f"<code>{esc(iid)}</code>", esc(answer), _na(dec(_get(m, "precision"))),
                    _na(dec(_get(m, "recall"))), _na(dec(_get(m, "f1"))), _na(count(_get(m, "support"))),
                ])
        if class_rows:
            out.append("<details><summary>Per-answer precision and recall</summary>")
            out.append(_table(["Item", "answer", "precision", "recall", "F1", "support"], class_rows, keys=2))
            out.append("</details>")
    else:
        out.append('<p class="na">No items.</p>')
    out.append(_reliability(_map(sc.get("answers"))))
    out.append(_scores(_map(sc.get("scores"))))
    out.append(_answers(_map(sc.get("answers")), list(items)))
    return "\n".join(out)


def _reliability(answers: Mapping[str, Any]) -> str:
    """How far the suggestions' confidences are right as often as they say (a reliability
    diagram with its expected calibration error), over every answer compared with gold."""
    from pipeline.learning.calibration import ece, reliability_svg

    pairs = [(float(a["confidence"]), a.get("auto") == a.get("gold")) for per_call in answers.values()
             if isinstance(per_call, Mapping) for a in per_call.values()
             if isinstance(a, Mapping) and isinstance(a.get("confidence"), (int, float))]
    if not pairs:
        return ""
    conf, right = [c for c, _ in pairs], [r for _, r in pairs]
    error = ece(conf, right)
    title = "Reliability of the confidences" + (f" (ECE {error:.3f})" if error is not None else "")
    return ("<h3>Confidence</h3>\n<p class=\"note\">Each bar: the answers whose confidence falls in the bin, and "
            "how often they agree with gold; a well calibrated confidence lies on the diagonal.</p>\n"
            + reliability_svg(conf, right, title))


def _contact(report: Mapping[str, Any]) -> str:
    """The contact block against the labels: reason agreement (token F1) and outcome accuracy."""
    c = report.get("contact")
    if not isinstance(c, Mapping):
        return ""
    out = ['<h2 id="contact">Contact reason and outcome</h2>']
    r, o = _map(c.get("reason")), _map(c.get("outcome"))
    out.append(
        f"<p>Reason: {esc(count(r.get('matched')))} of {esc(count(r.get('n')))} agree with the labelled sentence "
        f"(token F1 &ge; {esc(dec(r.get('threshold_f1'), 2))}): {_na(pct(r.get('agreement')))}, mean F1 "
        f"{_na(dec(r.get('mean_f1')))}. Outcome: {esc(count(o.get('correct')))} of {esc(count(o.get('n')))} "
        f"right, accuracy {_na(pct(o.get('accuracy')))}, kappa {_na(dec(o.get('kappa')))}, macro F1 "
        f"{_na(dec(o.get('f1')))}.</p>")
    if o.get("confusion"):
        out.append('<div class="grids">\n' + confusion_grid(o.get("confusion"), list(o.get("labels_present") or []),
                                                           "outcome") + "\n</div>")
    rows = []
    for cid, row in _map(c.get("items")).items():
        f1 = number(_get(row, "reason_f1"))
        ok = _get(row, "outcome_gold") == _get(row, "outcome_auto")
        rows.append([
            esc(cid), esc(str(_get(row, "reason_gold") or "")), esc(str(_get(row, "reason_auto") or "")),
            _na(dec(f1)) if f1 is not None else NA,
            (lambda cell: cell if ok else _mark("bad", cell))(
                esc(f"{_get(row, 'outcome_gold') or NA} / {_get(row, 'outcome_auto') or NA}")),
        ])
    if rows:
        out.append(_table(["Call", "labelled reason", "extracted reason", "F1", "outcome gold / auto"], rows))
    return "\n".join(out)


def _scores(scores: Mapping[str, Any]) -> str:
    out = ["<h3>Total score per call</h3>"]
    if not scores:
        return out[0] + '\n<p class="na">No scores.</p>'
    out.append(
        f"<p>{esc(count(scores.get('n')))} calls: MAE {_na(dec(scores.get('mae')))}, "
        f"bias {_na(dec(scores.get('bias')))} (automatic minus gold), Pearson {_na(dec(scores.get('pearson')))}, "
        f"Spearman {_na(dec(scores.get('spearman')))}, auto-fail agreement "
        f"{_na(pct(scores.get('auto_fail_agreement')))}.</p>"
    )
    calls = _map(scores.get("calls"))
    if not calls:
        return "\n".join(out)
    rows = []
    for cid, s in calls.items():
        auto, gold = number(_get(s, "auto")), number(_get(s, "gold"))
        diff = None if auto is None or gold is None else auto - gold
        fa, gfa = _get(s, "auto_fail"), _get(s, "gold_auto_fail")

        def flag(v: Any) -> str:
            return NA if v is None else ("yes" if v else "no")

        fa_cell = _na(flag(fa))
        if fa is not None and gfa is not None and bool(fa) != bool(gfa):
            fa_cell = _mark("wrong", fa_cell)
        rows.append([f"<code>{esc(cid)}</code>", _na(dec(auto)), _na(dec(gold)),
                     _na(NA if diff is None else f"{diff:+.3f}"), fa_cell, _na(flag(gfa))])
    table = _table(["Call", "automatic", "gold", "difference", "auto-fail", "gold auto-fail"], rows)
    plot = scatter([(number(_get(s, "gold")), number(_get(s, "auto")), str(cid)) for cid, s in calls.items()],
                   "Total score: automatic vs gold", "gold score", "automatic score")
    out.append(f'<div class="charts">\n<div>{plot}</div>\n<div>{table}</div>\n</div>')
    return "\n".join(out)


def _answers(answers: Mapping[str, Any], items: list[str]) -> str:
    if not answers:
        return ""
    cols: dict[str, None] = dict.fromkeys(items)
    for per_call in answers.values():
        for iid in _map(per_call):
            cols.setdefault(str(iid))
    rows = []
    for cid, per_call in answers.items():
        row = [f"<code>{esc(cid)}</code>"]
        for iid in cols:
            a = _get(per_call, iid)
            if not isinstance(a, Mapping):
                row.append("")
                continue
            auto, gold = a.get("auto"), a.get("gold")
            text = esc(auto if auto is not None else NA)
            if gold is not None and auto != gold:
                row.append(_mark("wrong", f'{text} <span class="q">(gold {esc(gold)})</span>'))
            else:
                row.append(_mark("right", text) if gold is not None else text)
        rows.append(row)
    return (
        "<details><summary>Answers per call (automatic; gold where they differ)</summary>\n"
        + _table(["Call", *cols], rows) + "\n</details>"
    )


def _disagreements(report: Mapping[str, Any]) -> str:
    out = ['<h2 id="disagreements">Disagreements</h2>']
    sc = report.get("scorecard")
    if not isinstance(sc, Mapping):
        return out[0] + '\n<p class="na">No scorecard in this run.</p>'
    dis = [d for d in _list(sc.get("disagreements")) if isinstance(d, Mapping)]
    if not dis:
        return out[0] + '\n<p class="na">None: every automatic answer matches gold.</p>'
    groups: dict[str, list[Mapping[str, Any]]] = {str(i): [] for i in _map(sc.get("items"))}
    for d in dis:
        groups.setdefault(str(d.get("item")), []).append(d)
    out.append(f"<p>{len(dis)} answers differ from gold, grouped by item.</p>")
    for iid, group in groups.items():
        if not group:
            continue
        q = next((str(d["question"]) for d in group if d.get("question")), None)
        out.append(f"<h3><code>{esc(iid)}</code> ({len(group)})"
                   + (f' <span class="q">{esc(q)}</span>' if q else "") + "</h3>")
        for d in group:
            out.append(_disagreement(d))
    return "\n".join(out)


def _disagreement(d: Mapping[str, Any]) -> str:
    auto, gold = d.get("auto"), d.get("gold")
    head = (
        f'<div class="head"><code>{esc(d.get("call_id", NA))}</code>: automatic '
        f'<b>{esc(auto if auto is not None else NA)}</b>, gold <b>{esc(gold if gold is not None else NA)}</b>, '
        f"confidence {_na(dec(d.get('confidence'), 2))}</div>"
    )
    parts = ['<div class="dis">', head]
    looked = d.get("looked_for")
    parts.append(f"<div>Looked for: {esc(looked)}</div>" if looked else '<div class="na">Looked for: n/a</div>')
    evidence = [e for e in _list(d.get("evidence")) if isinstance(e, Mapping)]
    if evidence:
        parts.append("<ul>")
        for e in evidence:
            when = f"{clock(e.get('start'))}\u2013{clock(e.get('end'), up=True)}"
            who = ", ".join(str(e[k]) for k in ("utterance_id", "role") if e.get(k))
            uid = f' <span class="q">{esc(who)}</span>' if who else ""
            rule = f" \u00b7 {esc(e['rule'])}" if e.get("rule") else ""
            quote = e.get("quote")
            quote_html = f' \u00b7 <span class="quote">\u201c{esc(quote)}\u201d</span>' if quote else ""
            parts.append(f'<li><span class="mono">{esc(when)}</span>{uid}{rule}{quote_html}</li>')
        parts.append("</ul>")
    else:
        parts.append('<div class="na">No evidence: nothing in the call matched.</div>')
    if d.get("details"):
        parts.append("<details><summary>Details</summary><pre>"
                     + esc(json.dumps(d["details"], indent=2, ensure_ascii=False, default=str)) + "</pre></details>")
    parts.append("</div>")
    return "\n".join(parts)


def _config(report: Mapping[str, Any]) -> str:
    out = ['<h2 id="config">Config and models</h2>']
    config, models = report.get("config"), report.get("models")
    out.append(f"<details><summary>Effective config (hash <code>{esc(report.get('config_hash') or NA)}</code>)"
               f"</summary><pre>{esc(_dump(config)) if config else NA}</pre></details>")
    out.append(f"<details><summary>Models</summary><pre>{esc(_dump(models)) if models else NA}</pre></details>")
    template = report.get("scorecard_template")
    if isinstance(template, Mapping) and template:
        out.append(f"<details><summary>Scorecard template</summary><pre>{esc(_dump(template))}</pre></details>")
    return "\n".join(out)


# ---------------------------------------------------------------- page


def render_html(report: dict) -> str:
    """The evaluation report as one self-contained HTML page."""
    report = report if isinstance(report, Mapping) else {}
    title = f"callqa evaluation: {_get(report, 'data', 'path') or 'report'}"
    body = [
        _header(report), _cards(report), _transcription(report), _speakers(report), _scorecard(report),
        _contact(report), _disagreements(report), _config(report),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def write_html(report: dict, path: str | Path) -> Path:
    """Render ``report`` and write it to ``path`` (atomically); returns the path."""
    path = Path(path)
    write_atomic(path, render_html(report))
    return path
