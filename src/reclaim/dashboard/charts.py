"""Server-rendered SVG charts: no JavaScript, no fonts or scripts from anywhere else.

Each chart is a small, self-contained ``<svg>`` whose marks carry their data
(``data-label``, ``data-value``), so a test (or a curious admin's inspector)
reads the exact figures a chart was drawn from. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Final

__all__ = ["bar_chart", "line_chart"]

_W: Final = 1140
_H: Final = 250
_LEFT: Final = 70
_BOTTOM: Final = 28
_TOP: Final = 12
_RIGHT: Final = 12
#: the series colours (an accessible palette that reads on white)
PALETTE: Final = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2")

Format = Callable[[float], str]


#: nice maxima of an axis (times a power of ten) and how many intervals each is divided into
_NICE: Final = ((1.0, 4), (2.0, 4), (2.5, 5), (5.0, 5), (10.0, 5))


def _axis(values: Sequence[float], *, binary: bool = False, integer: bool = False) -> tuple[float, int]:
    """A nice top for ``values`` and its number of intervals (bytes in powers of 1024, counts whole)."""
    top = max(values, default=0.0)
    if integer:
        top = max(top, 4.0)
    if top <= 0:
        return 0.0, 1
    unit = 1.0
    if binary:
        while top / unit >= 1024:
            unit *= 1024
    scaled = top / unit
    magnitude = 1.0
    while magnitude * 10 <= scaled:
        magnitude *= 10
    while magnitude > scaled:
        magnitude /= 10
    for step, intervals in _NICE:
        if step * magnitude >= scaled:
            nice = step * magnitude * unit
            if integer and nice / intervals != int(nice / intervals):
                intervals = int(nice) if nice <= 10 else intervals
            return nice, intervals
    return top, 4  # pragma: no cover


def _frame(title: str, top: float, intervals: int, fmt: Format) -> list[str]:
    out = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    plot_h = _H - _TOP - _BOTTOM
    for tick in [top * n / intervals for n in range(intervals + 1)] if top else [0.0]:
        y = _TOP + plot_h - (plot_h * tick / top if top else 0)
        out.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(tick))}</text>'
        )
    return out


def _x_labels(labels: Sequence[str], x_of: Callable[[int], float]) -> list[str]:
    out = []
    every = max(1, len(labels) // 8)
    last = len(labels) - 1
    for index, label in enumerate(labels):
        if index % every == 0 or index == last:
            if 0 < last - index < every * 0.6:
                continue  # too close to the last label, which is always shown
            anchor = "start" if index == 0 and last else "end" if index == last and last else "middle"
            x, y = x_of(index), _H - 8
            out.append(
                f'<text class="axis" x="{x:.1f}" y="{y}" text-anchor="{anchor}">{escape(label)}</text>'
            )
    return out


def _short(label: str) -> str:
    """``2026-12-03`` -> ``12-03``; ``2026-12-03 16:49 UTC`` -> ``12-03 16:49``."""
    if len(label) >= 10 and label[4] == "-" and label[7] == "-":
        return label[5:].removesuffix(" UTC")
    return label


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], fmt: Format, *, binary: bool = True
) -> str:
    """One bar per label (e.g. bytes reclaimed per day, labels ``YYYY-MM-DD``); ``binary``: bytes."""
    top, intervals = _axis(values, binary=binary)
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM
    slot = plot_w / max(1, len(labels))
    out = _frame(title, top, intervals, fmt)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top if top else 0
        x = _LEFT + slot * index + slot * 0.15
        y = _TOP + plot_h - height
        out.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'data-label="{escape(label)}" data-value="{value:g}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
    out += _x_labels([_short(label) for label in labels], lambda i: _LEFT + slot * i + slot / 2)
    out.append("</svg>")
    return "".join(out)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    fmt: Format,
    *,
    binary: bool = False,
    integer: bool = False,
) -> str:
    """One line per series over shared x labels (e.g. quarantined bytes per day, candidates per scan)."""
    top, intervals = _axis([v for values in series.values() for v in values], binary=binary, integer=integer)
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM
    step = plot_w / max(1, len(labels) - 1)

    def x_of(index: int) -> float:
        return _LEFT + (step * index if len(labels) > 1 else plot_w / 2)

    out = _frame(title, top, intervals, fmt)
    for number, (name, values) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        points = [
            (x_of(i), _TOP + plot_h - (plot_h * v / top if top else 0), labels[i], v)
            for i, v in enumerate(values)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            out.append(f'<polyline class="line" fill="none" stroke="{colour}" points="{path}"/>')
        for x, y, label, value in points:
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" '
                f'data-series="{escape(name)}" data-label="{escape(label)}" data-value="{value:g}">'
                f"<title>{escape(name)} {escape(label)}: {escape(fmt(value))}</title></circle>"
            )
    out += _x_labels([_short(label) for label in labels], x_of)
    out.append("</svg>")
    return "".join(out)
