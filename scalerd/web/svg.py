"""The timeline and the sparkline, drawn as SVG on the server (no chart library, no script).

The timeline has a capacity panel — the min/max band, provisioned and ready as steps,
desired and recommended, and a mark per action, each a link to its decision with the
decision in its tooltip — and one panel per metric, its value against its target or
threshold on its own axis. Every mark has a shape as well as a colour (▲ up, ▼ down,
✕ failed, ◆ skipped, ○ dry run), so colour is never the only signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from .model import Mark, Timeline, why_in_words

__all__ = ["sparkline", "timeline_svg"]

WIDTH = 800
_LEFT, _RIGHT = 46, 12
_CAPACITY_H, _METRIC_H, _GAP, _AXIS = 190, 100, 34, 22
_TICKS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880)]

_MARK_PATHS = {
    "up": "M0,-7 L6,4 L-6,4 Z",
    "down": "M0,7 L6,-4 L-6,-4 Z",
    "failed": "M-5,-5 L5,5 M5,-5 L-5,5",
    "skipped": "M0,-6 L6,0 L0,6 L-6,0 Z",
    "dry-run": "M-5,0 a5,5 0 1,0 10,0 a5,5 0 1,0 -10,0",
}
_MARK_WORDS = {
    "up": "scaled up",
    "down": "scaled down",
    "failed": "failed",
    "skipped": "skipped",
    "dry-run": "dry run",
}


class _Axis:
    """Maps time to x and a value range to y inside one panel."""

    def __init__(self, start: datetime, end: datetime, top: float, height: float, high: float):
        self.start, self.span = start, max((end - start).total_seconds(), 1.0)
        self.top, self.height, self.high = top, height, max(high, 1e-9)
        self._origin = start.timestamp()
        self._per_second = (WIDTH - _LEFT - _RIGHT) / self.span

    def x(self, at: datetime) -> float:
        return _LEFT + (at.timestamp() - self._origin) * self._per_second

    def xs(self, at: Sequence[datetime]) -> list[float]:
        """Every x at once: the panels of one chart share them."""
        origin, scale = self._origin, self._per_second
        return [_LEFT + (when.timestamp() - origin) * scale for when in at]

    def y(self, value: float) -> float:
        clipped = min(max(value, 0.0), self.high)
        return self.top + self.height - clipped / self.high * self.height


def timeline_svg(timeline: Timeline, link: str = "/decisions/") -> str:
    """The whole chart; ``link`` + a record's id is where its mark leads."""
    metrics = list(timeline.metrics)
    height = _AXIS + _CAPACITY_H + len(metrics) * (_METRIC_H + _GAP) + _AXIS + 8
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(_summary(timeline))}</title>',
    ]
    top = float(_AXIS)
    parts += _capacity_panel(timeline, top, link)
    for name in metrics:
        top += (_CAPACITY_H if top == _AXIS else _METRIC_H) + _GAP
        parts += _metric_panel(timeline, name, top)
    parts += _time_axis(timeline, height - _AXIS - 8, height)
    parts.append("</svg>")
    return "".join(parts)


def _summary(timeline: Timeline) -> str:
    shown = [value for value in timeline.provisioned if value is not None]
    if not shown:
        return f"{timeline.target}: no decisions in this window"
    counts = {kind: 0 for kind in _MARK_WORDS}
    for mark in timeline.marks:
        counts[mark.kind] += 1
    actions = ", ".join(f"{n} {_MARK_WORDS[k]}" for k, n in counts.items() if n) or "no actions"
    return (
        f"{timeline.target}: capacity from {shown[0]} to {shown[-1]} "
        f"(between {min(shown)} and {max(shown)}) over {len(timeline)} decisions; {actions}"
    )


def _capacity_panel(timeline: Timeline, top: float, link: str) -> list[str]:
    values = [
        v
        for series in (timeline.provisioned, timeline.ready, timeline.desired, timeline.maximum)
        for v in series
        if v is not None
    ]
    high = max(values, default=1) * 1.12 + 0.5
    axis = _Axis(timeline.start, timeline.end, top, _CAPACITY_H, high)
    parts = _frame(axis, "capacity", high)
    if len(timeline):
        xs = axis.xs(timeline.at)
        parts.append(_band(axis, xs, timeline.minimum, timeline.maximum))
        parts.append(_steps(axis, xs, timeline.maximum, "max", "bound"))
        parts.append(_steps(axis, xs, timeline.minimum, "min", "bound"))
        parts.append(_steps(axis, xs, timeline.recommended, "recommended", "recommended"))
        parts.append(_steps(axis, xs, timeline.desired, "desired", "desired"))
        parts.append(_steps(axis, xs, timeline.ready, "ready", "ready"))
        parts.append(_steps(axis, xs, timeline.provisioned, "provisioned", "provisioned"))
    parts.append('<g class="marks">')
    parts += [_mark(axis, mark, link) for mark in timeline.marks]
    parts.append("</g>")
    return parts


def _metric_panel(timeline: Timeline, name: str, top: float) -> list[str]:
    series = timeline.metrics[name]
    lines = timeline.lines.get(name, [])
    values = [v for v in series if v is not None]
    values += [v for _, line in lines for v in line if v is not None]
    high = max(values, default=1.0) * 1.12 or 1.0
    axis = _Axis(timeline.start, timeline.end, top, _METRIC_H, high)
    parts = _frame(axis, name, high)
    xs = axis.xs(timeline.at)
    for label, line in lines:
        parts.append(_steps(axis, xs, line, label, "threshold"))
    parts.append(_line(axis, xs, series, name))
    legend = " · ".join([f"{name} (solid)", *(f"{label} (dashed)" for label, _ in lines)])
    parts.append(f'<text class="legend" x="{WIDTH - _RIGHT}" y="{top - 4}" text-anchor="end">')
    parts.append(f"{escape(legend)}</text>")
    return parts


def _frame(axis: _Axis, label: str, high: float) -> list[str]:
    right = WIDTH - _RIGHT
    parts = [
        f'<rect class="panel" x="{_LEFT}" y="{axis.top:.1f}" width="{right - _LEFT}" '
        f'height="{axis.height}"/>',
        f'<text class="panel-label" x="{_LEFT}" y="{axis.top - 4:.1f}">{escape(label)}</text>',
    ]
    for value in _nice_ticks(high / 1.12):
        y = axis.y(value)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_short(value)}</text>"
        )
    return parts


def _time_axis(timeline: Timeline, y: float, height: float) -> list[str]:
    span = timeline.end - timeline.start
    step = next((tick for tick in _TICKS if span / tick <= 7), _TICKS[-1])
    seconds = step.total_seconds()
    first = datetime.fromtimestamp(
        (timeline.start.timestamp() // seconds + 1) * seconds, tz=timeline.start.tzinfo
    )
    axis = _Axis(timeline.start, timeline.end, 0, height, 1)
    fmt = "%a %d %H:%M" if step >= timedelta(hours=12) else "%H:%M"
    parts = []
    at = first
    while at < timeline.end:
        x = axis.x(at)
        parts.append(f'<line class="vgrid" x1="{x:.1f}" x2="{x:.1f}" y1="{_AXIS}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle">'
            f"{at:{fmt}}</text>"
        )
        at += step
    parts.append(
        f'<text class="tick" x="{WIDTH - _RIGHT}" y="{_AXIS - 8}" text-anchor="end">UTC</text>'
    )
    return parts


def _step_vertices(
    axis: _Axis, xs: Sequence[float], values: Sequence[float | None]
) -> list[list[tuple[float, float]]]:
    """Runs of vertices of a step line: each value held until the next record's time, a
    vertex only where it changes; a missing value breaks the line."""
    runs: list[list[tuple[float, float]]] = []
    previous: float | None = None
    last = len(values) - 1
    for index, value in enumerate(values):
        if value is None:
            previous = None
            continue
        x = xs[index]
        if previous is None:
            runs.append([(x, axis.y(value))])
        elif value != previous:
            y = axis.y(value)
            runs[-1] += [(x, runs[-1][-1][1]), (x, y)]
        previous = value
        if index == last or values[index + 1] is None:
            end = xs[index + 1] if index < last else x
            runs[-1].append((end, runs[-1][-1][1]))
    return runs


def _steps(
    axis: _Axis, xs: Sequence[float], values: Sequence[float | None], label: str, css: str
) -> str:
    runs = _step_vertices(axis, xs, values)
    path = "".join("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in runs)
    return f'<path class="{css}" d="{path}"><title>{escape(label)}</title></path>' if path else ""


def _line(axis: _Axis, xs: Sequence[float], values: Sequence[float | None], label: str) -> str:
    """A polyline; where several points fall on one x unit, only that unit's first, lowest,
    highest and last are drawn (the same picture, a tenth of the points on a busy day)."""
    path: list[str] = []
    bucket: list[tuple[float, float]] = []
    pen_down = False

    def flush() -> None:
        nonlocal pen_down
        if not bucket:
            return
        low = min(bucket, key=lambda point: point[1])
        high = max(bucket, key=lambda point: point[1])
        keep = sorted({bucket[0], low, high, bucket[-1]}, key=bucket.index)
        for x, value in keep:
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{axis.y(value):.1f}")
            pen_down = True
        bucket.clear()

    for x, value in zip(xs, values, strict=True):
        if value is None:
            flush()
            pen_down = False
            continue
        if bucket and int(x) != int(bucket[0][0]):
            flush()
        bucket.append((x, value))
    flush()
    return f'<path class="metric" d="{"".join(path)}"><title>{escape(label)}</title></path>'


def _band(axis: _Axis, xs: Sequence[float], low: Sequence[int], high: Sequence[int]) -> str:
    """The allowed range, min to max, as a filled step polygon."""
    upper = _step_vertices(axis, xs, high)
    lower = _step_vertices(axis, xs, low)
    if not upper or not lower:
        return ""
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in [*upper[0], *lower[0][::-1]])
    return f'<polygon class="band" points="{points}"><title>min to max</title></polygon>'


def _mark(axis: _Axis, mark: Mark, link: str) -> str:
    record = mark.record
    x, y = axis.x(mark.at), axis.y(mark.capacity)
    current = record.current or {}
    change = f"{current.get('provisioned', '?')} → {record.desired}" if record.desired else ""
    tip = f"{record.ts:%Y-%m-%d %H:%M:%S} UTC {_MARK_WORDS[mark.kind]} {change}\n{why_in_words(record)}"
    return (
        f'<a class="mark {mark.kind}" href="{link}{escape(record.id)}" data-id="{escape(record.id)}" '
        f'aria-label="{escape(tip)}" transform="translate({x:.1f},{y:.1f})">'
        f'<circle class="hit" r="11"/><path d="{_MARK_PATHS[mark.kind]}"/>'
        f"<title>{escape(tip)}</title></a>"
    )


def sparkline(
    at: Sequence[datetime], values: Sequence[int | None], start: datetime, end: datetime
) -> str:
    """Capacity over the last hours, 120 x 28, no axes (the text beside it has the numbers)."""
    shown = [v for v in values if v is not None]
    if not shown:
        return '<svg class="spark" viewBox="0 0 120 28" aria-hidden="true"></svg>'
    axis = _Axis(start, end, 2, 24, max(shown) * 1.1 or 1)
    spark = _steps(axis, axis.xs(at), values, "capacity", "provisioned")
    # the sparkline's own x range: shift the panel margins away
    return (
        f'<svg class="spark" viewBox="{_LEFT} 0 {WIDTH - _LEFT - _RIGHT} 28" '
        f'preserveAspectRatio="none" role="img" aria-label="capacity from {shown[0]} to '
        f'{shown[-1]}, between {min(shown)} and {max(shown)}">{spark}</svg>'
    )


def _nice_ticks(top: float) -> list[float]:
    """0 and round steps (1, 2 or 5 times a power of ten) up to ``top``: three to five lines."""
    if top <= 0:
        return [0.0]
    magnitude = 10 ** math.floor(math.log10(top / 3))
    step = next(m * magnitude for m in (1, 2, 5, 10) if top / (m * magnitude) <= 4.5)
    return [step * n for n in range(int(top / step + 1e-9) + 1)]


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2g}"
