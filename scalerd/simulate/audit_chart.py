"""``scalerd audit --chart TARGET --since 6h``: the page's timeline as a PNG, for pasting
into an incident ticket.

It draws the same :class:`scalerd.web.Timeline` the page draws as SVG, with the simulate
plot's step lines: provisioned and ready capacity, desired and recommended, the min/max
band, a mark per action (▲ up, ▼ down, ✕ failed, ◆ skipped, ○ dry run), and each metric on
its own axis against its target or threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from matplotlib import dates
from matplotlib import pyplot as plt

from ..web import Timeline
from .plot import steps

__all__ = ["plot_audit"]

_MARKS = {
    "up": ("^", "tab:green", "scaled up"),
    "down": ("v", "tab:brown", "scaled down"),
    "failed": ("x", "tab:red", "failed"),
    "skipped": ("D", "goldenrod", "skipped"),
    "dry-run": ("o", "tab:blue", "dry run"),
}


def plot_audit(timeline: Timeline, path: Path) -> None:
    """Write ``timeline`` to ``path`` as a PNG (no metadata: the same records, the same bytes)."""
    metrics = list(timeline.metrics)
    figure, panels = plt.subplots(
        1 + len(metrics),
        1,
        sharex=True,
        squeeze=False,
        figsize=(13, 4 + 2 * len(metrics)),
        height_ratios=(3, *(1.6 for _ in metrics)),
        layout="constrained",
    )
    capacity, *metric_panels = (row[0] for row in panels)
    scaled = sum(mark.kind in ("up", "down") for mark in timeline.marks)
    figure.suptitle(
        f"{timeline.target}: {len(timeline)} decisions, {scaled} scale actions, "
        f"{timeline.start:%Y-%m-%d %H:%M} to {timeline.end:%Y-%m-%d %H:%M} UTC",
        fontsize=11,
    )
    xs = [_days(at) for at in timeline.at]
    edges = [*xs, _days(timeline.end)] if xs else []
    if xs:
        capacity.fill_between(
            edges,
            [*timeline.minimum, timeline.minimum[-1]],
            [*timeline.maximum, timeline.maximum[-1]],
            step="post",
            color="tab:blue",
            alpha=0.08,
            linewidth=0,
            label="min to max",
        )
        for values, style in (
            (timeline.maximum, {"color": "dimgray", "linestyle": "--", "label": "max"}),
            (timeline.minimum, {"color": "dimgray", "linestyle": ":", "label": "min"}),
            (timeline.recommended, {"color": "tab:gray", "linewidth": 0.7, "label": "recommended"}),
            (timeline.desired, {"color": "tab:brown", "linestyle": "--", "label": "desired"}),
            (timeline.ready, {"color": "tab:green", "label": "ready"}),
            (timeline.provisioned, {"color": "tab:blue", "linewidth": 1.6, "label": "provisioned"}),
        ):
            steps(capacity, edges, _numbers(values), **style)
    for kind, (marker, colour, label) in _MARKS.items():
        marks = [mark for mark in timeline.marks if mark.kind == kind]
        if marks:
            capacity.scatter(
                [_days(mark.at) for mark in marks],
                [mark.capacity for mark in marks],
                marker=marker,
                color=colour,
                s=36,
                zorder=3,
                label=f"{label} ({len(marks)})",
            )
    capacity.set_ylabel("capacity")
    capacity.set_ylim(bottom=0)
    for axes, name in zip(metric_panels, metrics, strict=True):
        if xs:
            axes.plot(
                xs, _numbers(timeline.metrics[name]), color="tab:purple", linewidth=1.0, label=name
            )
            for label, line in timeline.lines.get(name, []):
                steps(
                    axes,
                    edges,
                    _numbers(line),
                    color="tab:red",
                    linestyle="--",
                    linewidth=0.9,
                    label=label,
                )
        axes.set_ylabel(name)
        axes.set_ylim(bottom=0)
    for axes in (capacity, *metric_panels):
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9)
    last = metric_panels[-1] if metric_panels else capacity
    long = (timeline.end - timeline.start).total_seconds() > 86400
    # matplotlib's DateFormatter is untyped; its tz is UTC by default
    formatter = dates.DateFormatter("%m-%d %H:%M" if long else "%H:%M")  # type: ignore[no-untyped-call]
    last.xaxis.set_major_formatter(formatter)
    last.set_xlabel("UTC")
    last.set_xlim(_days(timeline.start), _days(timeline.end))
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def _days(at: datetime) -> float:
    """matplotlib's date number: days since its epoch, 1970-01-01 UTC."""
    return at.timestamp() / 86400


def _numbers(values: Sequence[float | None]) -> list[float]:
    """Missing values as NaN: matplotlib leaves a gap there."""
    return [math.nan if value is None else float(value) for value in values]
