"""The tune report as one self-contained HTML page: the per-item table (held-out agreement and
kappa before and after, the thresholds, the calibration error) and reliability diagrams
(inline SVG) of the confidences before and after calibration, pooled and per item."""

from __future__ import annotations

from typing import Any

from pipeline.evaluation.plots import esc
from pipeline.learning import calibration as cal

STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}th{background:#f3f3f3}"
         ".plots{display:flex;flex-wrap:wrap;gap:1em}.muted{color:#666}")


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else esc(v)


def reliability_pair(before: list[float], after: list[float], right: list[bool], what: str) -> str:
    """Two reliability diagrams side by side (before and after calibration) with their ECE."""
    return ('<div class="plots">'
            + cal.reliability_svg(before, right, f"{what}: before (ECE {_f(cal.ece(before, right))})")
            + cal.reliability_svg(after, right, f"{what}: calibrated, held out (ECE {_f(cal.ece(after, right))})")
            + "</div>")


def tune_html(report: dict[str, Any], pooled: tuple[list[float], list[float], list[bool]] | None = None) -> str:
    rows = []
    for it in report["items"]:
        h, c = it["heldout"], (it.get("calibration") or {})
        ch = c.get("heldout") or {}
        thr = (f"{esc(it['param'])} {it['current']:g} &rarr; " + (f"<b>{it['proposed']:g}</b>" if it.get("proposed")
                                                                   is not None else "kept")
               if it["tunable"] else f'<span class="muted">not tunable: {esc(it["not_tunable"])}</span>')
        rows.append(f"<tr><td>{esc(it['template'])}</td><td>{esc(it['item'])}</td><td>{it['n']}</td><td>{thr}</td>"
                    f"<td>{_f(h['before']['agreement'])} &rarr; {_f(h['after']['agreement'])}</td>"
                    f"<td>{_f(h['before']['kappa'])} &rarr; {_f(h['after']['kappa'])}</td>"
                    f"<td>{_f(ch.get('ece_before'))} &rarr; {_f(ch.get('ece_after'))}"
                    f"{' (map proposed)' if c.get('proposed') else ''}</td></tr>")
    few = "".join(f"<li>{esc(t['item'])} ({esc(t['template'])}): {t['n']} reviewed answers</li>"
                  for t in report["too_few"])
    changes = "".join(f"<li>{esc(c)}</li>" for c in (report.get("overlay") or {}).get("changes", []))
    plots = ""
    if pooled and pooled[0]:
        plots = "<h2>Reliability, all items pooled</h2>" + reliability_pair(pooled[0], pooled[1], pooled[2], "all items")
    per_item = []
    for it in report["items"]:
        c = it.get("calibration") or {}
        b, a = c.get("reliability_before"), c.get("reliability_after")
        if b:
            from pipeline.evaluation.plots import scatter

            pts = lambda bins: [(x["confidence"], x["accuracy"], f"n={x['n']}") for x in bins]  # noqa: E731
            per_item.append(f"<h3>{esc(it['template'])} / {esc(it['item'])}</h3><div class=\"plots\">"
                            + scatter(pts(b), f"before (ECE {_f(c['heldout']['ece_before'])})", "confidence", "agreed")
                            + scatter(pts(a), f"calibrated, held out (ECE {_f(c['heldout']['ece_after'])})",
                                      "confidence", "agreed") + "</div>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>callqa tune report</title>"
            f"<style>{STYLE}</style></head><body><h1>Tuning on reviews</h1>"
            f"<p>{report['reviews']} reviewed calls, {report['answers']} answers; made {esc(report['made_at'])}. "
            "Agreement and kappa are measured on calls held out from the fit (GroupKFold, grouped as shown in the "
            "JSON report); nothing is adopted until a lead runs with the written config.</p>"
            "<table><thead><tr><th>Template</th><th>Item</th><th>n</th><th>Threshold</th>"
            "<th>Agreement before &rarr; after</th><th>Kappa before &rarr; after</th><th>ECE before &rarr; after</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + (f"<h2>Proposed changes</h2><ul>{changes}</ul>" if changes else "<p>No change proposed.</p>")
            + (f"<h2>Left unchanged: too few reviews (fewer than {report['min_reviews']})</h2><ul>{few}</ul>"
               if few else "")
            + plots + ("<h2>Reliability per item</h2>" + "".join(per_item) if per_item else "")
            + "</body></html>\n")
