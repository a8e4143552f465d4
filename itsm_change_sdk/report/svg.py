"""Small inline SVG charts, generated here so the HTML report needs nothing from the network.

Every string that reaches the markup goes through :func:`esc`. Charts carry an ``id`` (the
tests find them in a real browser's DOM), a title and a description for screen readers, and
a ``<title>`` per point for hover values. Colours are presentation attributes, so the page's
stylesheet can restyle them (dark mode); series differ by marker and dash as well as colour,
and each line is labelled at its end, so no series is told apart by colour alone.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Bar", "Line", "Series", "bar_chart", "esc", "line_chart", "nice_ceiling", "slug"]

FONT = "font-size:11px"
TEXT = 'fill="#444"'
MARKERS = ("circle", "square", "triangle", "diamond", "cross")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``: round axis
    ticks (0, 10, 20 ...) instead of 9.8, 19.7."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10.0 * power


def slug(value: str) -> str:
    """A value safe in an element id (program ids are slugs already; this is a guard)."""
    return re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-") or "x"


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: Sequence[tuple[float, float]]
    """(x, y) pairs; x is usually a date ordinal."""
    width: float = 2.0
    marker: str = "circle"
    """One of :data:`MARKERS`, drawn at every point."""
    dash: str = ""


@dataclass(frozen=True)
class Line:
    """A horizontal (``y``) or vertical (``x``) reference line, such as a target."""

    value: float
    label: str
    color: str
    dash: str = "6 4"
    vertical: bool = False


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    color: str
    text: str = ""
    group: str = ""


@dataclass
class _Frame:
    width: int
    height: int
    left: int = 44
    right: int = 12
    top: int = 14
    bottom: int = 30
    x_min: float = 0.0
    x_max: float = 1.0
    y_min: float = 0.0
    y_max: float = 1.0
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (value - self.x_min) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        return self.height - self.bottom - (value - self.y_min) / span * (
            self.height - self.top - self.bottom)


def _open(chart_id: str, frame: _Frame, label: str, description: str) -> list[str]:
    ids = f"{esc(chart_id)}-title {esc(chart_id)}-desc"
    return [f'<svg id="{esc(chart_id)}" class="chart" role="img" aria-labelledby="{ids}" '
            f'width="{frame.width}" height="{frame.height}" '
            f'viewBox="0 0 {frame.width} {frame.height}">',
            f'<title id="{esc(chart_id)}-title">{esc(label)}</title>',
            f'<desc id="{esc(chart_id)}-desc">{esc(description or label)}</desc>']


def _marker(shape: str, x: float, y: float, color: str, tip: str) -> str:
    """A point drawn as ``shape``: the second cue, besides colour, for telling series apart."""
    title = f"<title>{tip}</title>"
    if shape == "square":
        return (f'<rect class="mark" x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" '
                f'fill="{color}">{title}</rect>')
    if shape == "triangle":
        return (f'<polygon class="mark" points="{x:.1f},{y - 4:.1f} {x - 4:.1f},{y + 3:.1f} '
                f'{x + 4:.1f},{y + 3:.1f}" fill="{color}">{title}</polygon>')
    if shape == "diamond":
        return (f'<polygon class="mark" points="{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} '
                f'{x:.1f},{y + 4:.1f} {x - 4:.1f},{y:.1f}" fill="{color}">{title}</polygon>')
    if shape == "cross":
        return (f'<path class="mark" d="M{x - 3:.1f},{y - 3:.1f}L{x + 3:.1f},{y + 3:.1f}'
                f'M{x - 3:.1f},{y + 3:.1f}L{x + 3:.1f},{y - 3:.1f}" stroke="{color}" '
                f'stroke-width="2">{title}</path>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">{title}</circle>'


def line_chart(chart_id: str, label: str, series: Sequence[Series], *,
               y_range: tuple[float, float], y_fmt: Callable[[float], str],
               x_fmt: Callable[[float], str], lines: Sequence[Line] = (),
               width: int = 380, height: int = 210, y_ticks: int = 4,
               description: str = "", end_labels: bool = False) -> str:
    """Weekly values as lines, with reference lines (target, baseline, go-live).

    ``end_labels`` writes each series' name at its last point (leaving room on the right).
    """
    xs = [x for s in series for x, _ in s.points] + [r.value for r in lines if r.vertical]
    frame = _Frame(width, height, right=92 if end_labels else 12)
    frame.x_min, frame.x_max = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if frame.x_min == frame.x_max:  # one week of data: centre it
        frame.x_min, frame.x_max = frame.x_min - 3.5, frame.x_max + 3.5
    frame.y_min, frame.y_max = y_range
    out = _open(chart_id, frame, label, description)
    out.append(f'<rect class="plot" x="{frame.left}" y="{frame.top}" '
               f'width="{width - frame.left - frame.right}" '
               f'height="{height - frame.top - frame.bottom}" fill="#fafafa" stroke="#ddd"/>')
    for i in range(y_ticks + 1):
        value = frame.y_min + (frame.y_max - frame.y_min) * i / y_ticks
        y = frame.y(value)
        out.append(f'<line class="grid" x1="{frame.left}" x2="{width - frame.right}" '
                   f'y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{frame.left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                   f'style="{FONT}" {TEXT}>{esc(y_fmt(value))}</text>')
    if xs:
        for value, anchor in ((frame.x_min, "start"), (frame.x_max, "end")):
            out.append(f'<text x="{frame.x(value):.1f}" y="{height - 10}" text-anchor="{anchor}"'
                       f' style="{FONT}" {TEXT}>{esc(x_fmt(value))}</text>')
    for ref in lines:
        if ref.vertical:
            x = frame.x(ref.value)
            out.append(f'<line class="ref" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" '
                       f'y2="{height - frame.bottom}" stroke="{ref.color}" '
                       f'stroke-dasharray="{ref.dash}"><title>{esc(ref.label)}</title></line>')
            near_end = x > width - frame.right - 50
            out.append(f'<text x="{x - 3 if near_end else x + 3:.1f}" y="{frame.top + 10}" '
                       f'text-anchor="{"end" if near_end else "start"}" style="{FONT}" {TEXT}>'
                       f'{esc(ref.label)}</text>')
        else:
            y = frame.y(min(max(ref.value, frame.y_min), frame.y_max))
            out.append(f'<line class="ref" x1="{frame.left}" x2="{width - frame.right}" '
                       f'y1="{y:.1f}" y2="{y:.1f}" stroke="{ref.color}" stroke-width="1.5" '
                       f'stroke-dasharray="{ref.dash}"><title>{esc(ref.label)}</title></line>')
            out.append(f'<text x="{width - frame.right - 2}" y="{y - 3:.1f}" text-anchor="end" '
                       f'style="font-size:10px;fill:{ref.color}">{esc(ref.label)}</text>')
    ends: list[float] = []
    for s in series:
        if not s.points:
            continue
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in s.points)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(f'<polyline class="series" fill="none" stroke="{s.color}" '
                   f'stroke-width="{s.width}"{dash} points="{path}"><title>{esc(s.name)}</title>'
                   "</polyline>")
        for x, y in s.points:
            out.append(_marker(s.marker, frame.x(x), frame.y(y), s.color,
                               f"{esc(s.name)} {esc(x_fmt(x))}: {esc(y_fmt(y))}"))
        if end_labels:
            last_x, last_y = s.points[-1]
            y = frame.y(last_y) + 4
            for taken in sorted(ends):  # keep labels of close lines from overlapping
                if abs(taken - y) < 11:
                    y = taken + 11
            ends.append(y)
            out.append(f'<text class="end-label" x="{frame.x(last_x) + 6:.1f}" y="{y:.1f}" '
                       f'style="{FONT}" {TEXT}>{esc(s.name)}</text>')
    if not any(s.points for s in series):
        out.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
                   f'style="{FONT}" {TEXT}>no data yet</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(chart_id: str, label: str, bars: Sequence[Bar], *, maximum: float,
              fmt: Callable[[float], str], lines: Sequence[Line] = (), width: int = 560,
              row: int = 22, label_width: int = 170, right: int = 60,
              description: str = "") -> str:
    """Horizontal bars, one per row, optionally in labelled groups, with reference lines."""
    groups: list[str] = []
    for bar in bars:
        if bar.group and bar.group not in groups:
            groups.append(bar.group)
    height = 16 + row * len(bars) + 18 * len(groups) + 20
    frame = _Frame(width, height, left=label_width, right=right, top=8, bottom=20)
    frame.x_min, frame.x_max = 0.0, maximum
    out = _open(chart_id, frame, label, description)
    y = frame.top
    current_group = None
    for bar in bars:
        if bar.group and bar.group != current_group:
            current_group = bar.group
            out.append(f'<text x="4" y="{y + 13}" style="font-size:12px;font-weight:600" '
                       f'fill="#222">{esc(bar.group)}</text>')
            y += 18
        out.append(f'<text x="{label_width - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" '
                   f'style="{FONT}" {TEXT}>{esc(bar.label)}</text>')
        if bar.value is None:
            out.append(f'<text x="{label_width + 4}" y="{y + row * 0.65:.1f}" '
                       f'style="{FONT}" {TEXT}>{esc(bar.text or "no data")}</text>')
        else:
            end = frame.x(min(bar.value, maximum))
            out.append(f'<rect class="bar" x="{label_width}" y="{y + 3}" '
                       f'width="{max(end - label_width, 1):.1f}" height="{row - 6}" '
                       f'fill="{bar.color}"><title>{esc(bar.label)}: {esc(fmt(bar.value))}'
                       "</title></rect>")
            out.append(f'<text x="{end + 4:.1f}" y="{y + row * 0.65:.1f}" style="{FONT}" {TEXT}>'
                       f"{esc(bar.text or fmt(bar.value))}</text>")
        y += row
    for ref in lines:
        x = frame.x(ref.value)
        out.append(f'<line class="ref" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" '
                   f'y2="{y}" stroke="{ref.color}" stroke-dasharray="{ref.dash}">'
                   f"<title>{esc(ref.label)}</title></line>")
        out.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle" '
                   f'style="font-size:10px;fill:{ref.color}">{esc(ref.label)}</text>')
    out.append("</svg>")
    return "".join(out)
