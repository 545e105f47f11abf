"""``timeline.png``: a replay at a glance.

Top: demand against the ready replicas' capacity, in work per second, with the
under-provisioned time shaded. Bottom: provisioned and ready replicas, with every scale
action marked, and what the rules recommended before the behavior (windows, cooldowns,
rate limits) had its say. Both share the time axis. The PNG carries no metadata
(matplotlib would stamp its version), so the same replay draws the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from .run import Timeline
from .scores import Scores, scale_actions

__all__ = ["plot_timeline"]

_HOURS_AXIS_UP_TO = 48.0  # longer replays are read in days
# A 15-second shortfall in a two-week replay is far narrower than a pixel: the shading
# marks shortfalls on at most this many equal slices of the replay, so each one shows.
_SHADED_SLICES = 1500
# markers small enough that a flapping replay still reads as a band, not a smear
_MANY_ACTIONS = 300


def plot_timeline(timeline: Timeline, scores: Scores, title: str, path: Path) -> None:
    unit, per = _time_unit(len(timeline) * timeline.interval)
    # one more edge than ticks, so the last tick is drawn for its whole length
    edges = [timeline.time(tick) / per for tick in range(len(timeline) + 1)]

    figure, (load, replicas) = plt.subplots(
        2, 1, sharex=True, figsize=(13, 7.5), height_ratios=(3, 2), layout="constrained"
    )
    figure.suptitle(f"{title} — {_headline(scores)}", fontsize=11)
    _draw_load(load, timeline, edges)
    _draw_replicas(replicas, timeline, edges)
    replicas.set_xlabel(f"time since the trace's start ({unit})")
    replicas.set_xlim(edges[0], edges[-1])
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def _headline(scores: Scores) -> str:
    ratio = "n/a" if scores.cost_ratio_to_limit is None else f"{scores.cost_ratio_to_limit:.2f}"
    to_oracle = (
        "n/a" if scores.cost_ratio_to_oracle is None else f"{scores.cost_ratio_to_oracle:.2f}"
    )
    return (
        f"cost {to_oracle}x the oracle ({ratio}x the per-tick need), under-provisioned "
        f"{scores.underprovisioned_fraction:.1%} of the time, {scores.scale_actions} scale "
        f"actions ({scores.reversals} reversals)"
    )


def _draw_load(axes: Axes, timeline: Timeline, edges: Sequence[float]) -> None:
    serving = [ready * timeline.capacity for ready in timeline.ready]
    short = [demand > capacity for demand, capacity in zip(timeline.demand, serving, strict=True)]
    _shade(axes, edges, short)
    _steps(axes, edges, serving, color="tab:green", linewidth=1.0, label="ready capacity")
    _steps(axes, edges, timeline.demand, color="black", linewidth=0.6, label="demand")
    axes.set_ylabel("work per second")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9)
    axes.grid(alpha=0.3)


def _shade(axes: Axes, edges: Sequence[float], short: Sequence[bool]) -> None:
    """Shade, full height, every slice of the replay with a tick of demand > capacity.

    Each slice is its own rectangle (two points at each height): ``fill_between``'s
    ``where`` would leave out a slice whose neighbours are not shaded.
    """
    size = max(1, math.ceil(len(short) / _SHADED_SLICES))
    xs: list[float] = []
    heights: list[float] = []
    for start in range(0, len(short), size):
        marked = 1.0 if any(short[start : start + size]) else 0.0
        xs += [edges[start], edges[min(start + size, len(short))]]
        heights += [marked, marked]
    axes.fill_between(
        xs,
        0,
        heights,
        transform=axes.get_xaxis_transform(),
        color="tab:red",
        alpha=0.2,
        linewidth=0,
        label="under-provisioned",
    )


def _draw_replicas(axes: Axes, timeline: Timeline, edges: Sequence[float]) -> None:
    _steps(axes, edges, timeline.recommended, color="tab:gray", linewidth=0.6, label="recommended")
    _steps(axes, edges, timeline.provisioned, color="tab:blue", linewidth=1.0, label="provisioned")
    _steps(axes, edges, timeline.ready, color="tab:green", linewidth=1.0, label="ready")
    actions = scale_actions(timeline)
    size = 4 if len(actions) > _MANY_ACTIONS else 16
    for direction, marker, color, label in (
        (1, "^", "tab:orange", "scale out"),
        (-1, "v", "tab:purple", "scale in"),
    ):
        ticks = [tick for tick, moved in actions if moved == direction]
        axes.scatter(
            [edges[tick] for tick in ticks],
            [timeline.provisioned[tick] for tick in ticks],
            marker=marker,
            s=size,
            color=color,
            zorder=3,
            label=label,
        )
    axes.set_ylabel("replicas")
    # scaled to what was provisioned, with room for its markers and for a recommendation
    # above it; a wild recommendation runs off the top rather than flatten everything
    axes.set_ylim(0, max(timeline.provisioned) * 1.25 + 0.5)
    axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9)
    axes.grid(alpha=0.3)


def _steps(axes: Axes, edges: Sequence[float], values: Sequence[float], **style: Any) -> None:
    """Each value held from its tick's start to the next one's. A line, not ``stairs``:
    matplotlib simplifies long lines when drawing them, and a two-week replay has 80 000
    steps."""
    axes.step(edges, [*values, values[-1]], where="post", **style)


def _time_unit(seconds: float) -> tuple[str, float]:
    hours = seconds / 3600
    if hours > _HOURS_AXIS_UP_TO:
        return "days", 86400.0
    if hours >= 2:
        return "hours", 3600.0
    return "minutes", 60.0
