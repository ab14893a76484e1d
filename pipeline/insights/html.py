"""The voice-of-the-customer page: one self-contained HTML file (no external assets, inline CSS,
charts as inline SVG from pipeline/evaluation/plots.py and a weekly sparkline drawn here), every
text escaped. :func:`render_html` takes the insights.json content (pipeline/insights/voc.py),
so the review app can show the same page. Each call links to the review app's call page
(``/calls/{call_id}``) with its reason quote and where it was said."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pipeline.evaluation.plots import bar_chart, esc

CALLS_SHOWN = 50
"""Calls listed under a figure on the page (every id is in insights.json)."""
CALL_HREF = "/calls/{call_id}"

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}.few{color:#888;font-style:italic}
.verdict-growing,.verdict-new{color:#b71c1c;font-weight:600}.verdict-falling{color:#2e7d32;font-weight:600}
.note{background:#fff8e1;border:1px solid #ffe082;padding:6px 10px;margin:6px 0}
blockquote{margin:2px 0 2px 8px;color:#444;font-style:italic}details{margin:6px 0}summary{cursor:pointer}
.muted{color:#777}ul.calls{margin:4px 0;padding-left:18px;font-size:13px}
"""


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: Any) -> str:
    if not ci:
        return ""
    low, high = ci
    return f" [{_pct(low)}, {_pct(high)}]"


def _figure(f: dict[str, Any]) -> str:
    text = f"{_pct(f['share'])}{_ci(f['ci'])} &middot; {f['k']} of {f['n']}"
    return f'<span class="few" title="fewer than min_sample">{text} (too few)</span>' if f.get("too_few") else text


def _where(ev: dict[str, Any]) -> str:
    if ev.get("message") is not None:
        return f"message {ev['message']}"
    if ev.get("start") is not None:
        s = float(ev["start"])
        return f"{int(s // 60)}:{s % 60:04.1f}"
    return ""


def call_link(call_id: str, href: str = CALL_HREF) -> str:
    return f'<a href="{esc(href.format(call_id=quote(str(call_id), safe="")))}">{esc(call_id)}</a>'


def _evidence_list(calls: list[dict[str, Any]], href: str) -> str:
    items = []
    for ev in calls[:CALLS_SHOWN]:
        where = _where(ev)
        items.append(f"<li>{call_link(ev['call_id'], href)} <span class=\"muted\">{esc(ev.get('channel') or '')} "
                     f"{esc((ev.get('started_at') or '')[:16])}{' &middot; ' + esc(where) if where else ''}</span>"
                     f"<blockquote>&ldquo;{esc(ev.get('quote') or '')}&rdquo;</blockquote></li>")
    more = len(calls) - CALLS_SHOWN
    tail = f'<li class="muted">and {more} more (every call id is in insights.json)</li>' if more > 0 else ""
    return f'<ul class="calls">{"".join(items)}{tail}</ul>'


def _id_list(ids: list[str], href: str) -> str:
    shown = ", ".join(call_link(i, href) for i in ids[:CALLS_SHOWN])
    more = len(ids) - CALLS_SHOWN
    return shown + (f' <span class="muted">and {more} more</span>' if more > 0 else "")


def sparkline(weeks: list[dict[str, Any]], title: str) -> str:
    """The topic's weekly share as a small inline SVG (weeks with too few contacts hollow)."""
    w, h, pad = 150.0, 34.0, 4.0
    shares = [wk["share"] for wk in weeks]
    top = max([s for s in shares if s is not None] + [0.01])
    step = (w - 2 * pad) / max(1, len(weeks) - 1)
    points, dots = [], []
    for i, wk in enumerate(weeks):
        if wk["share"] is None:
            continue
        x, y = pad + i * step, h - pad - (h - 2 * pad) * wk["share"] / top
        points.append(f"{x:.1f},{y:.1f}")
        fill = "none" if wk["too_few"] else "#3b6ea5"
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{fill}" stroke="#3b6ea5">'
                    f'<title>{esc(wk["week"])}: {wk["k"]} of {wk["n"]}{" (too few)" if wk["too_few"] else ""}'
                    f'</title></circle>')
    line = f'<polyline points="{" ".join(points)}" fill="none" stroke="#3b6ea5" stroke-width="1.5"/>' \
        if len(points) > 1 else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>{line}{"".join(dots)}</svg>')


def render_html(data: dict[str, Any], call_href: str = CALL_HREF) -> str:
    """The page of ``data`` (the insights.json content). ``call_href``: a call's link, with
    ``{call_id}``."""
    p, b, c = data["period"], data["baseline"], data["contacts"]
    o = data["options"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Voice of the customer {esc(p['from'])} to {esc(p['last_day'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Voice of the customer: {esc(p['from'])} to {esc(p['last_day'])}</h1>",
        f"<p>{c['n']} interactions, {c['with_reason']} with a contact reason ({c['with_topic']} in a topic, "
        f"{c['without_topic']} in none), {c['with_customer']} with a known customer. Baseline: {esc(b['from'])} up to "
        f"{esc(b['to'])} (exclusive), {b['n']} contacts with a reason. Figures: share [Wilson 95% interval] &middot; k of n; "
        f"fewer than {o['min_sample']} (min_sample) is marked too few.</p>",
    ]
    parts += [f'<div class="note">{esc(n)}</div>' for n in data["notes"]]

    topics = data["topics"]
    parts.append("<h2>Topics of contact reasons</h2>")
    if topics:
        parts.append(bar_chart([t["label"] for t in topics[:20]], [t["share"]["k"] for t in topics[:20]],
                               "Contacts per topic (period)", fmt="{:.0f}"))
        parts.append("<table><tr><th>Topic</th><th>Share of contacts with a reason</th><th>Weekly share</th>"
                     "<th>Against the baseline</th><th>CSAT</th><th>Example</th></tr>")
        for t in topics:
            g = t["growth"]
            rr = ""
            if g.get("rate_ratio") is not None or g.get("ci"):
                high = g["ci"][1] if g.get("ci") else None
                high_text = "&infin;" if high is None else esc(high)
                rr = (f"<br>rate ratio {esc(g['rate_ratio'] if g['rate_ratio'] is not None else 'n/a (none before)')}"
                      f" [{esc(g['ci'][0] if g.get('ci') else '')}, {high_text}]")
            csat = t["csat"]
            csat_text = f"{csat['mean']:.2f} (n={csat['n']})" if csat else '<span class="muted">none</span>'
            ex = t["example"]
            ex_text = (f"&ldquo;{esc(ex['quote'])}&rdquo; {call_link(ex['call_id'], call_href)}" if ex else "")
            parts.append(
                f'<tr><td><a href="#topic-{t["topic_id"]}">{esc(t["label"])}</a></td><td class="num">{_figure(t["share"])}'
                f'</td><td>{sparkline(t["weeks"], "weekly share of " + t["label"])}</td>'
                f'<td><span class="verdict-{esc(g["verdict"].replace(" ", "-"))}">{esc(g["verdict"])}</span>'
                f' <span class="muted">(baseline {t["baseline"]["k"]} of {t["baseline"]["n"]})</span>{rr}</td>'
                f"<td>{csat_text}</td><td>{ex_text}</td></tr>")
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No topics.</p>')

    parts.append("<h2>Complaint drivers</h2><p>Topics ranked by their problem contacts: negative customer "
                 "sentiment at the end, escalated or unresolved outcome, or a repeat contact within "
                 f"{o['repeat_days']} days.</p>")
    if data["drivers"]:
        parts.append("<table><tr><th>#</th><th>Topic</th><th>Problem contacts</th><th>Negative sentiment</th>"
                     "<th>Escalated / unresolved</th><th>Repeat contact</th></tr>")
        for d in data["drivers"]:
            parts.append(f'<tr><td>{d["rank"]}</td><td><a href="#topic-{d["topic_id"]}">{esc(d["label"])}</a></td>'
                         + "".join(f'<td class="num">{_figure(d[m])}</td>' for m in
                                   ("problem", "negative", "escalated_unresolved", "repeat")) + "</tr>")
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No drivers (no topics).</p>')

    rc = data["repeat_contacts"]
    parts.append(f"<h2>Repeat contacts and first-contact resolution</h2><p>A contact is resolved at first contact "
                 f"when the same customer does not contact again within {rc['repeat_days']} days. Contacts after "
                 f"{esc(rc['knowable_until'] or 'n/a')} are not yet knowable (their {rc['repeat_days']} days are not "
                 "all in the data) and are left out of the rate.</p>")
    for key, title in (("by_team", "Team"), ("by_agent", "Agent"), ("by_topic", "Topic"), ("by_channel", "Channel")):
        rows = [{"group": "all", **rc["overall"]}] + rc[key] if key == "by_team" else rc[key]
        parts.append(f"<table><tr><th>{title}</th><th>Contacts</th><th>Not yet knowable</th><th>FCR</th>"
                     "<th>Repeat contacts</th><th>Not resolved at first contact</th></tr>")
        for g in rows:
            fcr = _figure(g) if g["n"] else '<span class="muted">n/a</span>'
            parts.append(f"<tr><td>{esc(g['group'])}</td><td class=\"num\">{g['contacts']}</td>"
                         f"<td class=\"num\">{g['not_yet_knowable']}</td><td class=\"num\">{fcr}</td>"
                         f"<td class=\"num\">{g['repeat_contacts']}</td><td>{_id_list(g['call_ids'], call_href)}</td></tr>")
        parts.append("</table>")

    parts.append("<h2>Topics, call by call</h2>")
    for t in topics:
        parts.append(f'<details id="topic-{t["topic_id"]}"><summary><b>{esc(t["label"])}</b> &middot; '
                     f'{t["share"]["k"]} calls</summary>')
        if t["comments"]:
            parts.append("<p>Survey comments:</p><ul class=\"calls\">" + "".join(
                f"<li>{call_link(s['call_id'], call_href)} CSAT {esc(s.get('csat'))}: "
                f"<blockquote>{esc(s.get('comment'))}</blockquote></li>" for s in t["comments"][:CALLS_SHOWN]) + "</ul>")
        parts.append(_evidence_list(t["calls"], call_href) + "</details>")
    if data["without_topic"]["n"]:
        parts.append(f'<details id="topic-none"><summary>Reasons in no topic &middot; {data["without_topic"]["n"]} '
                     f'calls</summary>{_evidence_list(data["without_topic"]["calls"], call_href)}</details>')
    parts.append("</body></html>")
    return "\n".join(parts)
