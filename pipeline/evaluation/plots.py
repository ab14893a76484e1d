"""Small inline-SVG charts for the evaluation report (no plotting library).

Each function returns one ``<svg>`` element as a string. Output depends only on the input: no
random ids, no dates, coordinates printed with a fixed precision, so the same input always gives
byte-identical SVG. All text is XML-escaped; a ``None`` (or non-finite) value is drawn as "n/a".
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable, Mapping, Sequence

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
CHAR_W = 6.6
"""Rough width of one character at font-size 12 (layout only)."""
BAR_COLOUR = "#3b6ea5"
POINT_COLOUR = "#3b6ea5"
RIGHT_COLOUR = "#2e7d32"
WRONG_COLOUR = "#c62828"
MUTED = "#777777"
GRID = "#dddddd"
MAX_LABEL = 34
"""Longer labels are shortened (the full label is in the bar's tooltip)."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(text: Any) -> str:
    """``text`` as XML/HTML character data or attribute value (characters XML forbids dropped)."""
    return html.escape(_NOT_XML.sub("", str(text)), quote=True)


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, bools, strings, NaN and infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _c(x: float) -> str:
    """A coordinate, printed with a fixed precision."""
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def _fmt(fmt: str, value: Any) -> str:
    v = number(value)
    return "n/a" if v is None else fmt.format(v)


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _text_w(text: str) -> float:
    return len(text) * CHAR_W


def _svg(width: float, height: float, title: str, body: Iterable[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_c(width)}" height="{_c(height)}" '
        f'viewBox="0 0 {_c(width)} {_c(height)}" role="img" aria-label="{esc(title)}" '
        f'font-family="{esc(FONT)}" font-size="12">'
    )
    return "\n".join([head, f"<title>{esc(title)}</title>", *body, "</svg>"])


def _title(title: str, x: float = 4) -> str:
    return f'<text x="{_c(x)}" y="15" font-size="13" font-weight="600">{esc(title)}</text>'


def _empty(title: str, width: float = 320) -> str:
    return _svg(width, 44, title, [_title(title), f'<text x="4" y="35" fill="{MUTED}">no data</text>'])


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    max_value: float | None = None,
    fmt: str = "{:.2f}",
) -> str:
    """Horizontal bars, one per label, each with its value printed beside it (``fmt``).

    Bars are scaled to ``max_value`` (default: the largest value); a longer bar is cut at the
    full width but keeps its real value label. A ``None`` value has no bar and reads "n/a".
    """
    if len(labels) != len(values):
        raise ValueError(f"bar_chart: {len(labels)} labels but {len(values)} values")
    if not labels:
        return _empty(title)
    shown = [_short(str(lab)) for lab in labels]
    nums = [number(v) for v in values]
    top = number(max_value)
    if top is None or top <= 0:
        top = max([v for v in nums if v is not None] + [0.0])
        if top <= 0:
            top = 1.0
    label_w = min(MAX_LABEL * CHAR_W, max(48.0, max(_text_w(s) for s in shown))) + 16  # digits run wide
    value_texts = [_fmt(fmt, v) for v in nums]
    value_w = max(40.0, max(_text_w(t) for t in value_texts) + 10)
    bar_w = 300.0
    row_h, bar_h, y0 = 20.0, 14.0, 26.0
    width = label_w + bar_w + value_w + 8
    height = y0 + row_h * len(labels) + 6
    body = [_title(title)]
    body.append(
        f'<line x1="{_c(label_w)}" y1="{_c(y0 - 2)}" x2="{_c(label_w)}" y2="{_c(height - 4)}" stroke="#999999"/>'
    )
    for i, (full, lab, v, text) in enumerate(zip(labels, shown, nums, value_texts)):
        y = y0 + i * row_h
        mid = y + row_h / 2 + 4
        body.append(f'<text x="{_c(label_w - 6)}" y="{_c(mid)}" text-anchor="end">{esc(lab)}</text>')
        if v is None:
            body.append(f'<text x="{_c(label_w + 6)}" y="{_c(mid)}" fill="{MUTED}" font-style="italic">n/a</text>')
            continue
        length = max(0.0, min(1.0, v / top)) * bar_w
        body.append(
            f'<rect x="{_c(label_w)}" y="{_c(y + (row_h - bar_h) / 2)}" width="{_c(length)}" height="{_c(bar_h)}" '
            f'fill="{BAR_COLOUR}"><title>{esc(full)}: {esc(text)}</title></rect>'
        )
        body.append(f'<text x="{_c(label_w + length + 4)}" y="{_c(mid)}">{esc(text)}</text>')
    return _svg(width, height, title, body)


def scatter(
    points: Sequence[tuple[float | None, float | None, str]],
    title: str,
    x_label: str,
    y_label: str,
    lo: float = 0,
    hi: float = 1,
) -> str:
    """Points ``(x, y, label)`` on square axes from ``lo`` to ``hi`` with the y = x diagonal
    (points on it agree exactly). Values outside the range sit on its edge; points with an
    undefined coordinate are counted below the plot, not drawn. Each point's tooltip is its label."""
    if not hi > lo:
        raise ValueError(f"scatter: hi ({hi}) must be greater than lo ({lo})")
    side, left, top, bottom = 240.0, 52.0, 26.0, 44.0
    width, height = left + side + 16, top + side + bottom
    span = float(hi - lo)

    def px(v: float) -> float:
        return left + max(0.0, min(1.0, (v - lo) / span)) * side

    def py(v: float) -> float:
        return top + side - max(0.0, min(1.0, (v - lo) / span)) * side

    body = [_title(title)]
    for k in range(5):
        t = lo + span * k / 4
        x, y = px(t), py(t)
        body.append(f'<line x1="{_c(x)}" y1="{_c(top)}" x2="{_c(x)}" y2="{_c(top + side)}" stroke="{GRID}"/>')
        body.append(f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(left + side)}" y2="{_c(y)}" stroke="{GRID}"/>')
        tick = f"{t:.4g}"
        body.append(
            f'<text x="{_c(x)}" y="{_c(top + side + 14)}" text-anchor="middle" font-size="10">{esc(tick)}</text>'
        )
        body.append(f'<text x="{_c(left - 4)}" y="{_c(y + 3)}" text-anchor="end" font-size="10">{esc(tick)}</text>')
    body.append(
        f'<rect x="{_c(left)}" y="{_c(top)}" width="{_c(side)}" height="{_c(side)}" fill="none" stroke="#999999"/>'
    )
    body.append(
        f'<line x1="{_c(px(lo))}" y1="{_c(py(lo))}" x2="{_c(px(hi))}" y2="{_c(py(hi))}" stroke="{MUTED}" '
        f'stroke-dasharray="4 3"><title>y = x</title></line>'
    )
    body.append(
        f'<text x="{_c(left + side / 2)}" y="{_c(top + side + 30)}" text-anchor="middle">{esc(x_label)}</text>'
    )
    cy = top + side / 2
    body.append(
        f'<text x="12" y="{_c(cy)}" text-anchor="middle" transform="rotate(-90 12 {_c(cy)})">{esc(y_label)}</text>'
    )
    skipped = 0
    for x, y, label in points:
        xv, yv = number(x), number(y)
        if xv is None or yv is None:
            skipped += 1
            continue
        body.append(
            f'<circle cx="{_c(px(xv))}" cy="{_c(py(yv))}" r="4" fill="{POINT_COLOUR}" fill-opacity="0.7" '
            f'stroke="#ffffff" stroke-width="0.8"><title>{esc(label)}: {esc(x_label)} {xv:.4g}, '
            f"{esc(y_label)} {yv:.4g}</title></circle>"
        )
    if skipped:
        body.append(
            f'<text x="{_c(left)}" y="{_c(height - 2)}" fill="{MUTED}" font-size="10">'
            f'{skipped} not shown (n/a)</text>'
        )
    return _svg(width, height, title, body)


def confusion_grid(matrix: Mapping[str, Mapping[str, Any]] | None, labels: Sequence[str], title: str) -> str:
    """A heat grid of counts: rows are the gold answers, columns the automatic ones.

    Diagonal cells (agreement) are green, the others red, shaded by their count relative to
    the largest cell. ``labels`` gives the rows and columns (default: every label in ``matrix``).
    """
    rows = matrix.items() if isinstance(matrix, Mapping) else ()
    matrix = {str(gold): row for gold, row in rows if isinstance(row, Mapping)}
    if not labels:
        seen: dict[str, None] = {}
        for gold, row in matrix.items():
            seen.setdefault(gold)
            for auto in row:
                seen.setdefault(str(auto))
        labels = list(seen)
    if not labels:
        return _empty(title, 180)
    labels = [str(lab) for lab in labels]

    def count(gold: str, auto: str) -> int:
        v = number((matrix.get(gold) or {}).get(auto))
        return int(v) if v is not None and v > 0 else 0

    counts = [[count(g, a) for a in labels] for g in labels]
    peak = max([c for row in counts for c in row] + [0])
    shown = [_short(lab, 12) for lab in labels]
    cell = 34.0
    label_w = max(30.0, max(_text_w(s) for s in shown)) + 22
    grid_x, grid_y = label_w, 48.0
    n = len(labels)
    width = max(grid_x + n * cell + 8, _text_w(title) * 1.08 + 8)
    height = grid_y + n * cell + 8
    body = [_title(title)]
    body.append(
        f'<text x="{_c(grid_x + n * cell / 2)}" y="30" text-anchor="middle" fill="{MUTED}" font-size="10">'
        f"automatic</text>"
    )
    gy = grid_y + n * cell / 2
    body.append(
        f'<text x="9" y="{_c(gy)}" text-anchor="middle" fill="{MUTED}" font-size="10" '
        f'transform="rotate(-90 9 {_c(gy)})">gold</text>'
    )
    for j, lab in enumerate(shown):
        body.append(
            f'<text x="{_c(grid_x + j * cell + cell / 2)}" y="{_c(grid_y - 5)}" text-anchor="middle">{esc(lab)}</text>'
        )
    for i, lab in enumerate(shown):
        y = grid_y + i * cell
        body.append(f'<text x="{_c(grid_x - 5)}" y="{_c(y + cell / 2 + 4)}" text-anchor="end">{esc(lab)}</text>')
        for j in range(n):
            c = counts[i][j]
            x = grid_x + j * cell
            shade = c / peak if peak else 0.0
            colour = RIGHT_COLOUR if i == j else WRONG_COLOUR
            tip = f"gold {labels[i]}, automatic {labels[j]}: {c}"
            if c:
                fill = f'fill="{colour}" fill-opacity="{0.15 + 0.75 * shade:.2f}"'
            else:
                fill = 'fill="#f4f4f4"'
            body.append(
                f'<rect x="{_c(x)}" y="{_c(y)}" width="{_c(cell)}" height="{_c(cell)}" {fill} stroke="#ffffff" '
                f'stroke-width="1.5"><title>{esc(tip)}</title></rect>'
            )
            ink = "#ffffff" if c and shade > 0.55 else ("#222222" if c else "#aaaaaa")
            body.append(
                f'<text x="{_c(x + cell / 2)}" y="{_c(y + cell / 2 + 4)}" text-anchor="middle" fill="{ink}">{c}</text>'
            )
    return _svg(width, height, title, body)
