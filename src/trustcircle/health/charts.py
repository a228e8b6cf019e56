"""Bar and donut charts as SVG text, made on the server (no script, no external service).

Every label is escaped for XML and stripped of characters XML cannot carry, every count
is written as text next to its bar or in the legend, and each chart carries a
``<title>`` and ``aria-label`` so it reads without the picture. Output is a complete
``<svg>`` element to place inline in a page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#1f5f8b", "#2e8b57", "#c0392b", "#d68910", "#7a2f8c", "#5b6875", "#17a2b8", "#8e6c3a")
VERDICT_COLORS: Mapping[str, str] = {
    "valid": "#2e8b57",
    "invalid": "#c0392b",
    "missing": "#d68910",
    "untrusted": "#7a2f8c",
    "orphan": "#5b6875",
    "trusted": "#2e8b57",
    "active": "#2e8b57",
    "inactive": "#5b6875",
}
MAX_BARS = 12
MAX_LABEL = 22
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EMPTY = "#d5dce3"


def _text(value: object) -> str:
    """*value* as XML-safe text (escaped; characters XML forbids removed)."""
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _color(label: str, index: int, colors: Mapping[str, str] | None) -> str:
    if colors and label in colors:
        return colors[label]
    return PALETTE[index % len(PALETTE)]


def _limited(items: Sequence[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """At most *limit* items: the largest, then ``other (n)`` summing the rest."""
    ordered = [(str(k), max(0, int(v))) for k, v in items]
    if len(ordered) <= limit:
        return ordered
    ordered.sort(key=lambda kv: (-kv[1], kv[0]))
    head, rest = ordered[: limit - 1], ordered[limit - 1 :]
    return [*head, (f"other ({len(rest)})", sum(v for _, v in rest))]


def _open(title: str, width: int, height: int, summary: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{_text(title)}: {_text(summary)}">',
        f"<title>{_text(title)}</title>",
        f'<text x="0" y="16" class="chart-title" font-size="14" font-weight="600" '
        f'fill="#1d2733">{_text(title)}</text>',
    ]


def bar_chart(
    title: str,
    items: Sequence[tuple[str, int]],
    *,
    colors: Mapping[str, str] | None = None,
    limit: int = MAX_BARS,
) -> str:
    """Horizontal bars, one per (label, count), with the count at the end of each bar."""
    rows = _limited(items, limit)
    width, label_w, row_h, top = 400, 150, 26, 30
    bar_max = width - label_w - 60
    height = top + max(1, len(rows)) * row_h + 6
    biggest = max((v for _, v in rows), default=0)
    summary = ", ".join(f"{k} {v}" for k, v in rows) or "no data"
    parts = _open(title, width, height, summary)
    if not rows:
        parts.append(f'<text x="0" y="{top + 17}" font-size="13" fill="#5b6875">no data</text>')
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        length = 0 if biggest == 0 else max(2, round(bar_max * value / biggest)) if value else 0
        parts += [
            f'<g class="bar" data-label="{_text(label)}" data-value="{value}">',
            f"<title>{_text(label)}: {value}</title>",
            f'<text x="{label_w - 8}" y="{y + 17}" font-size="13" text-anchor="end" '
            f'fill="#1d2733">{_text(_short(label))}</text>',
            f'<rect x="{label_w}" y="{y + 4}" width="{length}" height="{row_h - 8}" rx="3" '
            f'fill="{_color(label, i, colors)}"/>',
            f'<text x="{label_w + length + 6}" y="{y + 17}" font-size="13" class="value" '
            f'fill="#1d2733">{value}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def donut_chart(
    title: str,
    items: Sequence[tuple[str, int]],
    *,
    colors: Mapping[str, str] | None = None,
    limit: int = MAX_BARS,
) -> str:
    """A ring split by (label, count), the total in the middle, a legend with each count."""
    rows = _limited(items, limit)
    total = sum(v for _, v in rows)
    radius, stroke, cx, cy = 60, 26, 90, 110
    circumference = 2 * math.pi * radius
    legend_h = 24 * len(rows) + 40
    height = max(cy + radius + stroke, legend_h)
    summary = ", ".join(f"{k} {v}" for k, v in rows) + f"; total {total}"
    parts = _open(title, 420, height, summary)
    ring = (
        f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="none" stroke-width="{stroke}" '
        f'stroke="{{color}}" stroke-dasharray="{{dash}}" stroke-dashoffset="{{offset}}" '
        f'transform="rotate(-90 {cx} {cy})"/>'
    )
    parts.append(ring.format(color=_EMPTY, dash=f"{circumference:.2f} 0", offset="0"))
    offset = 0.0
    for i, (label, value) in enumerate(rows):
        if not value:
            continue
        length = circumference * value / total
        parts += [
            f'<g class="slice" data-label="{_text(label)}" data-value="{value}">',
            f"<title>{_text(label)}: {value}</title>",
            ring.format(
                color=_color(label, i, colors),
                dash=f"{length:.2f} {circumference - length:.2f}",
                offset=f"{-offset:.2f}",
            ),
            "</g>",
        ]
        offset += length
    parts.append(
        f'<text x="{cx}" y="{cy + 7}" font-size="22" font-weight="700" text-anchor="middle" '
        f'class="total" fill="#1d2733">{total}</text>'
    )
    for i, (label, value) in enumerate(rows):
        y = 40 + i * 24
        parts += [
            f'<g class="legend" data-label="{_text(label)}" data-value="{value}">',
            f'<rect x="190" y="{y}" width="14" height="14" rx="2" '
            f'fill="{_color(label, i, colors)}"/>',
            f'<text x="212" y="{y + 12}" font-size="13" fill="#1d2733">{_text(_short(label))}'
            f'<tspan class="value" font-weight="700" dx="8">{value}</tspan></text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)
