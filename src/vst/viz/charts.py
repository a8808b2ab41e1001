"""Inline SVG charts for the viewer's index page (no scripts, no external files).

Every chart is a self-contained ``<svg>`` string with a ``<title>``: horizontal bars, one row per
item, sized to its longest label. Numbers are printed next to their bars. An optional threshold
is a dashed vertical line. Output is deterministic (fixed number formatting, no ids or dates).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "histogram"]

_ROW = 18
_LABEL_CHAR = 7.0
_BAR_W = 260


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    threshold: float | None = None,
    max_value: float | None = None,
    color: str = "#3b6ea8",
) -> str:
    """A horizontal bar chart of ``(label, value)`` pairs (values >= 0) as an SVG string.
    ``max_value`` fixes the scale (default: the largest value or ``threshold``)."""
    label_w = int(max((len(label) for label, _ in items), default=4) * _LABEL_CHAR) + 8
    top = 22
    height = top + _ROW * max(len(items), 1) + 6
    width = label_w + _BAR_W + 60
    scale_max = max_value
    if scale_max is None:
        scale_max = max([v for _, v in items] + [threshold or 0.0, 0.0])
    scale_max = scale_max or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="14" class="ct">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="4" y="{top + 12}" class="cl">(no data)</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * _ROW
        w = max(0.0, min(float(value), scale_max)) / scale_max * _BAR_W
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end" class="cl">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{_ROW - 5}" '
            f'fill="{color}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" class="cv">{_fmt(value)}</text>'
        )
    if threshold is not None:
        x = label_w + min(threshold, scale_max) / scale_max * _BAR_W
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{height - 4}" '
            'stroke="#c0392b" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: Sequence[float], bins: int = 10) -> str:
    """A histogram of ``values`` in ``bins`` equal-width bins, drawn by :func:`bar_chart`
    (labels are the bin ranges)."""
    if not values:
        return bar_chart(title, [])
    lo, hi = min(values), max(values)
    if hi == lo:
        return bar_chart(title, [(_fmt(lo), float(len(values)))])
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / step), bins - 1)] += 1
    items = [
        (f"{_fmt(lo + k * step)}-{_fmt(lo + (k + 1) * step)}", float(c))
        for k, c in enumerate(counts)
    ]
    return bar_chart(title, items)
