"""Charts drawn on the server as inline SVG: grouped bars and lines, Russian labels, no library.

The console's policy forbids inline scripts and styles, and nothing comes from a CDN, so a chart
is plain SVG markup built here and placed in the page as is. Colours come from CSS classes
(``api/console/static/overview.css``: ``.bar.current``, ``.bar.previous``, ``.line.s0``...), with
presentation attributes as a fallback for an SVG saved on its own.

Every piece of text — labels, titles, series names — is escaped (``&``, ``<``, ``>``, quotes) and
stripped of control characters, so a topic named ``<script>`` is drawn as text, never run.
Charts without data come out as a small «нет данных» chart, not an error.

Each data mark carries ``data-label`` and ``data-value`` (bars: ``rect.bar``; lines: one
``path.line`` per series and a ``circle.point`` per value), which the page's tests count.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

__all__ = ["BarRow", "LineSeries", "bar_chart", "empty_chart", "line_chart", "nice_ticks"]

EMPTY_TEXT = "нет данных"
SERIES = ("Текущий период", "Предыдущий период")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID = re.compile(r"[^a-z0-9_-]+")
_FONT = 12
_CHAR_WIDTH = 7.4  # average width of a 12 px character, to fit labels in their column
_FILL = {"current": "#1f5fbf", "previous": "#a9bdd9"}
_LINE_COLOURS = ("#1f5fbf", "#d9822b", "#1d7f46", "#8e44ad")


@dataclass(frozen=True, slots=True)
class BarRow:
    """One category of a bar chart: its label, the current value and the compared one."""

    label: str
    current: float
    previous: float | None = None


@dataclass(frozen=True, slots=True)
class LineSeries:
    """One line: its name and a value per x position (None: no value there, the line breaks)."""

    name: str
    values: Sequence[float | None]


def _text(value: object) -> str:
    """Text safe inside SVG elements and attribute values."""
    return html.escape(_CONTROL.sub("", str(value)), quote=True)


def _chart_id(chart_id: str) -> str:
    cleaned = _ID.sub("-", chart_id.lower()).strip("-")
    return cleaned or "chart"


def _number(value: float, percent: bool = False) -> str:
    """12 345 or 45,3 % (a share in [0, 1]), as Russian texts write them."""
    if percent:
        return f"{100 * value:.1f}".replace(".", ",") + "\u202f%"
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:,.1f}".replace(",", "\u202f").replace(".", ",")


def _shorten(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[:max(1, chars - 1)].rstrip() + "…"


def nice_ticks(top: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round axis ticks from 0 up to at least ``top`` (steps of 1, 2 or 5 × 10ⁿ).

    ``integer``: counts, so a step is never below 1.
    """
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(step, 1.0)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _open(chart_id: str, kind: str, title: str, width: float, height: float,
          extra: str = "") -> list[str]:
    cid = _chart_id(chart_id)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" id="{cid}" '
            f'data-chart="{cid}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'aria-labelledby="{cid}-title" preserveAspectRatio="xMinYMin meet"{extra}>',
            f'<title id="{cid}-title">{_text(title)}</title>']


def _heading(title: str, width: float) -> str:
    return (f'<text class="chart-title" x="0" y="16" font-size="13" font-weight="bold">'
            f'{_text(_shorten(title, int(width / 7.2)))}</text>')


def _legend(names: Sequence[str], classes: Sequence[str], x: float, y: float) -> list[str]:
    parts = []
    for name, css in zip(names, classes, strict=True):
        fill = _FILL.get(css, _LINE_COLOURS[0])
        parts.append(f'<rect class="swatch {css}" x="{x:.1f}" y="{y - 9:.1f}" width="10" '
                     f'height="10" fill="{fill}"/>')
        parts.append(f'<text class="legend" x="{x + 14:.1f}" y="{y:.1f}" '
                     f'font-size="{_FONT}">{_text(name)}</text>')
        x += 14 + len(name) * _CHAR_WIDTH + 18
    return parts


def empty_chart(title: str, message: str = EMPTY_TEXT, *, chart_id: str = "chart",
                width: int = 640, height: int = 90) -> Markup:
    """A chart that says there is nothing to draw (``message``) under its title."""
    parts = _open(chart_id, "empty", title, width, height, ' data-empty="true"')
    parts.append(_heading(title, width))
    parts.append(f'<rect class="frame" x="0.5" y="26.5" width="{width - 1}" '
                 f'height="{height - 28}" fill="none" stroke="#d9dee5"/>')
    parts.append(f'<text class="empty-text" x="{width / 2:.0f}" y="{(height + 30) / 2:.0f}" '
                 f'text-anchor="middle" font-size="13" fill="#5f6b7a">{_text(message)}</text>')
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text above went through _text


def bar_chart(rows: Sequence[BarRow], *, title: str, chart_id: str = "bars",
              series: Sequence[str] = SERIES, percent: bool = False, width: int = 640,
              label_width: int | None = None, empty: str = EMPTY_TEXT) -> Markup:
    """Horizontal bars per category: the current value and, when given, the compared one.

    Args:
        rows: Categories top to bottom. A row whose ``previous`` is None has one bar; when no row
            has a ``previous`` the chart has a single series.
        title: Caption above the chart (also the SVG's accessible name).
        chart_id: The SVG's id (letters, digits, ``-``; anything else is replaced).
        series: Names of the two series for the legend.
        percent: Values are shares in [0, 1], shown as percentages.
        width: Width of the drawing in SVG units (it scales to its box).
        label_width: Width of the label column (default: fits the labels, from 120 up to 40 %
            of ``width``).
        empty: Text of the chart when there are no rows.
    """
    if not rows:
        return empty_chart(title, empty, chart_id=chart_id, width=width)
    paired = any(row.previous is not None for row in rows)
    labels = [_CONTROL.sub("", str(row.label)) for row in rows]
    if label_width is None:
        longest = max(len(label) for label in labels)
        label_width = int(min(0.4 * width, max(120, longest * _CHAR_WIDTH + 12)))
    chars = int((label_width - 12) / _CHAR_WIDTH)
    bar, gap = 11, 9
    band = bar * (2 if paired else 1) + gap
    top, bottom, right = 44, 26, 64
    height = top + band * len(rows) + bottom
    plot = width - label_width - right
    values = [row.current for row in rows] + [row.previous or 0 for row in rows]
    ticks = nice_ticks(max(max(values), 0) or 1.0, integer=not percent)
    scale = plot / ticks[-1]
    parts = _open(chart_id, "bars", title, width, height,
                  f' data-rows="{len(rows)}" data-series="{2 if paired else 1}"')
    parts.append(_heading(title, width))
    classes = ["current", "previous"][:2 if paired else 1]
    parts += _legend(list(series)[:len(classes)], classes, label_width, 34)
    axis_y = top + band * len(rows)
    for tick in ticks:
        x = label_width + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                     f'y2="{axis_y}" stroke="#e3e7ee"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" '
                     f'font-size="11">{_text(_number(tick, percent))}</text>')
    parts.append(f'<line class="axis" x1="{label_width}" y1="{top - 4}" x2="{label_width}" '
                 f'y2="{axis_y}" stroke="#5f6b7a"/>')
    for n, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = top + n * band
        parts.append(f'<g class="row" data-label="{_text(label)}"><title>{_text(label)}: '
                     f'{_text(_number(row.current, percent))}'
                     + (f" / {_text(_number(row.previous, percent))}"
                        if row.previous is not None else "") + "</title>")
        parts.append(f'<text class="label" x="{label_width - 6}" y="{y + band / 2 + 1:.1f}" '
                     f'text-anchor="end" font-size="{_FONT}">{_text(_shorten(label, chars))}'
                     "</text>")
        marks = [("current", row.current)]
        if paired:
            marks.append(("previous", row.previous or 0))
        for k, (css, value) in enumerate(marks):
            length = max(0.0, float(value)) * scale
            by = y + k * bar
            parts.append(f'<rect class="bar {css}" x="{label_width}" y="{by:.1f}" '
                         f'width="{length:.1f}" height="{bar - 1}" fill="{_FILL[css]}" '
                         f'data-label="{_text(label)}" data-value="{float(value):g}"/>')
            parts.append(f'<text class="value {css}" x="{label_width + length + 4:.1f}" '
                         f'y="{by + bar - 2:.1f}" font-size="10">'
                         f'{_text(_number(value, percent))}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text above went through _text


def line_chart(x_labels: Sequence[str], series: Sequence[LineSeries], *, title: str,
               chart_id: str = "lines", percent: bool = False, y_max: float | None = None,
               target: float | None = None, target_label: str = "цель", width: int = 640,
               height: int = 240, empty: str = EMPTY_TEXT) -> Markup:
    """Lines over ``x_labels`` (days, months), one per series, with axes and a legend.

    Args:
        x_labels: Captions of the x positions (thinned out when they would overlap).
        series: The lines; a None value breaks its line. A series without any value is listed
            in the legend but draws nothing.
        title: Caption above the chart (also the SVG's accessible name).
        chart_id: The SVG's id.
        percent: Values are shares in [0, 1], shown as percentages.
        y_max: Top of the y axis (default: fits the values).
        target: A horizontal dashed line at this value (e.g. the precision target).
        target_label: Its caption.
        width: Width of the drawing.
        height: Height of the drawing.
        empty: Text of the chart when there are no x positions or no value at all.
    """
    points = [v for s in series for v in s.values if v is not None]
    if not x_labels or not points:
        return empty_chart(title, empty, chart_id=chart_id, width=width)
    left, right, top, bottom = 52, 16, 44, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    high = max([*points, target or 0.0])
    ticks = nice_ticks(y_max if y_max is not None else (high or 1.0), count=4,
                       integer=not percent)
    scale = plot_h / ticks[-1]
    n = len(x_labels)
    step_x = plot_w / max(n - 1, 1)

    def px(i: int) -> float:
        return left + (i * step_x if n > 1 else plot_w / 2)

    def py(value: float) -> float:
        return top + plot_h - min(max(value, 0.0), ticks[-1]) * scale

    parts = _open(chart_id, "lines", title, width, height,
                  f' data-points="{n}" data-series="{len(series)}"')
    parts.append(_heading(title, width))
    classes = [f"line s{k}" for k in range(len(series))]
    parts += _legend_lines([s.name for s in series], left, 34)
    for tick in ticks:
        y = py(tick)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" '
                     f'y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{_text(_number(tick, percent))}</text>')
    base = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" '
                 f'y2="{base}" stroke="#5f6b7a"/>')
    every = max(1, math.ceil(n / max(1, plot_w // 56)))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            parts.append(f'<text class="tick x" x="{px(i):.1f}" y="{base + 16}" '
                         f'text-anchor="middle" font-size="11">{_text(label)}</text>')
    if target is not None:
        y = py(target)
        parts.append(f'<line class="target" x1="{left}" y1="{y:.1f}" x2="{width - right}" '
                     f'y2="{y:.1f}" stroke="#b3261e" stroke-dasharray="4 3"/>')
        parts.append(f'<text class="target-label" x="{width - right}" y="{y - 4:.1f}" '
                     f'text-anchor="end" font-size="10">{_text(target_label)} '
                     f'{_text(_number(target, percent))}</text>')
    for k, (line, css) in enumerate(zip(series, classes, strict=True)):
        colour = _LINE_COLOURS[k % len(_LINE_COLOURS)]
        path, pen_down = [], False
        for i, value in enumerate(list(line.values)[:n]):
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{px(i):.1f},{py(value):.1f}")
            pen_down = True
        if not path:
            continue
        parts.append(f'<path class="{css}" d="{" ".join(path)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" data-label="{_text(line.name)}"/>')
        for i, value in enumerate(list(line.values)[:n]):
            if value is None:
                continue
            parts.append(f'<circle class="point s{k}" cx="{px(i):.1f}" cy="{py(value):.1f}" '
                         f'r="3" fill="{colour}" data-label="{_text(x_labels[i])}" '
                         f'data-value="{float(value):g}"><title>{_text(line.name)}, '
                         f'{_text(x_labels[i])}: {_text(_number(value, percent))}</title>'
                         "</circle>")
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text above went through _text


def _legend_lines(names: Sequence[str], x: float, y: float) -> list[str]:
    parts = []
    for k, name in enumerate(names):
        colour = _LINE_COLOURS[k % len(_LINE_COLOURS)]
        parts.append(f'<line class="swatch s{k}" x1="{x:.1f}" y1="{y - 4:.1f}" '
                     f'x2="{x + 14:.1f}" y2="{y - 4:.1f}" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text class="legend" x="{x + 18:.1f}" y="{y:.1f}" '
                     f'font-size="{_FONT}">{_text(name)}</text>')
        x += 18 + len(name) * _CHAR_WIDTH + 18
    return parts
