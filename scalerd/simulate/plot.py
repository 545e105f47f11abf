"""``timeline.png`` (one replay) and ``compare.png`` (every config of a ``--compare`` on one
chart): a replay at a glance, readable at two weeks as at one hour.

Top: demand against the ready replicas' capacity, in work per second. Middle: provisioned
(and, for one replay, ready and recommended) replicas, with every scale action marked and
the min/max bounds in force drawn (a schedule profile moves them). Bottom: under-provisioning
as the share of each slice of time that demand exceeded ready capacity. A shortfall of 15
seconds in two weeks is far narrower than a pixel; shading whole slices would paint a
replay 17 % under-provisioned almost solid red. The slice's fraction reads true at any
length, and the slices add up exactly to the scored fraction (:func:`shortfall_slices`).

All panels share the time axis; ``window`` (seconds since the trace's start) zooms into
part of the replay. The PNG carries no metadata (matplotlib would stamp its version), so the
same replay draws the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .plotter import Replay
from .run import Timeline
from .scores import Scores, scale_actions

__all__ = [
    "Replay",
    "Slice",
    "plot_comparison",
    "plot_timeline",
    "prepare",
    "shortfall_slices",
    "steps",
]

_HOURS_AXIS_UP_TO = 48.0  # longer replays are read in days
# the bottom strip: this many slices of the window, at most
SLICES = 400
# markers small enough that a flapping replay still reads as a band, not a smear
_MANY_ACTIONS = 300
_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


@dataclass(frozen=True, slots=True)
class Slice:
    """Ticks ``[first, end)`` of a replay, and the share of them under-provisioned."""

    first: int
    end: int
    fraction: float


def shortfall_slices(
    timeline: Timeline, first: int = 0, end: int | None = None, slices: int = SLICES
) -> list[Slice]:
    """Ticks ``[first, end)`` cut into at most ``slices`` equal runs of ticks, each with the
    fraction of its ticks with demand > ready x capacity. Weighted by their lengths, they
    average to the fraction of those ticks under-provisioned: over the whole replay, the
    scored ``underprovisioned_fraction``."""
    end = len(timeline) if end is None else end
    size = max(1, math.ceil((end - first) / slices))
    capacity = timeline.capacity
    out = []
    for start in range(first, end, size):
        stop = min(start + size, end)
        short = sum(
            1
            for tick in range(start, stop)
            if timeline.demand[tick] > timeline.ready[tick] * capacity
        )
        out.append(Slice(start, stop, short / (stop - start)))
    return out


def plot_timeline(
    timeline: Timeline,
    scores: Scores,
    title: str,
    path: Path,
    window: tuple[float, float] | None = None,
) -> None:
    _draw([Replay(title, timeline, scores)], f"{title} — {_headline(scores)}", path, window)


def plot_comparison(
    replays: Sequence[Replay], title: str, path: Path, window: tuple[float, float] | None = None
) -> None:
    _draw(replays, title, path, window)


def _draw(
    replays: Sequence[Replay], title: str, path: Path, window: tuple[float, float] | None
) -> None:
    longest = max(len(r.timeline) * r.timeline.interval for r in replays)
    start, stop = window if window is not None else (0.0, longest)
    unit, per = _time_unit(min(stop, longest) - start)
    # each replay has its own interval: its own ticks and edges within the window
    views = [_View(replay, *_ticks(replay.timeline, window), per) for replay in replays]

    figure, (load, replicas, strip) = _spare.pop() if _spare else _figure()
    if window is not None:
        title += f"  [window {_span(start)} to {_span(stop)}]"
    figure.suptitle(title, fontsize=11)
    _draw_load(load, views)
    _draw_replicas(replicas, views)
    _draw_strip(strip, views)
    strip.set_xlabel(f"time since the trace's start ({unit})")
    strip.set_xlim(start / per, min(stop, longest) / per)
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


# a figure made ahead (prepare()), for the next chart
_spare: list[tuple[Figure, Any]] = []


def prepare() -> None:
    """Make the next chart's figure and its empty panels now, while there is time (the
    plotter's child does, while the replay runs): they are the same for every chart."""
    if not _spare:
        _spare.append(_figure())


def _figure() -> tuple[Figure, Any]:
    return plt.subplots(
        3, 1, sharex=True, figsize=(13, 8.5), height_ratios=(3, 2.4, 1), layout="constrained"
    )


class _View:
    """A replay's ticks ``[first, end)`` in the window, and their edges on the time axis
    (one more edge than ticks, so the last tick is drawn for its whole length)."""

    def __init__(self, replay: Replay, first: int, end: int, per: float) -> None:
        self.replay, self.timeline, self.first, self.end, self.per = (
            replay,
            replay.timeline,
            first,
            end,
            per,
        )
        # timeline.time(tick) / per, for every tick at once (the same floats)
        self.edges = np.arange(first, end + 1) * replay.timeline.interval / per

    def column(self, values: Sequence[float]) -> list[float]:
        return list(values[self.first : self.end])

    def array(self, values: Sequence[float]) -> np.ndarray[Any, Any]:
        """The window's part of a column, as numbers for numpy (a view of the column)."""
        return np.asarray(values)[self.first : self.end]


def _ticks(timeline: Timeline, window: tuple[float, float] | None) -> tuple[int, int]:
    if window is None:
        return 0, len(timeline)
    start, stop = window
    first = max(0, math.floor(start / timeline.interval))
    end = min(len(timeline), math.ceil(stop / timeline.interval))
    if end <= first:
        raise ValueError(
            f"the window {_span(start)} to {_span(stop)} holds no tick of this replay "
            f"(it lasts {_span(len(timeline) * timeline.interval)})"
        )
    return first, end


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


def _label(replay: Replay) -> str:
    scores = replay.scores
    ratio = "n/a" if scores.cost_ratio_to_limit is None else f"{scores.cost_ratio_to_limit:.2f}"
    under = scores.underprovisioned_fraction
    return f"{replay.label} (whole replay: cost {ratio}x, under {under:.1%})"


def _colour(index: int, single: str, views: Sequence[_View]) -> str:
    return single if len(views) == 1 else _COLOURS[index % len(_COLOURS)]


def _draw_load(axes: Axes, views: Sequence[_View]) -> None:
    if len(views) > 1:
        _draw_need(axes, views)
        return
    (view,) = views
    serving = view.array(view.timeline.ready) * view.timeline.capacity
    steps(axes, view.edges, serving, color="tab:green", linewidth=1.0, label="ready capacity")
    demand = view.array(view.timeline.demand)
    steps(axes, view.edges, demand, color="black", linewidth=0.6, label="demand")
    axes.set_ylabel("work per second")
    axes.set_ylim(bottom=0)
    _legend(axes, views)
    axes.grid(alpha=0.3)


def _draw_need(axes: Axes, views: Sequence[_View]) -> None:
    """Configs may model a replica's capacity differently (a queue worker, a web server), so
    their demand is compared as replicas needed: demand / capacity, against ready replicas."""
    finest = min(views, key=lambda view: view.timeline.interval)
    timeline = finest.timeline
    need = [demand / timeline.capacity for demand in finest.column(timeline.demand)]
    _draw_series(axes, finest, need, "black", "replicas needed (demand / capacity)", 0.6)
    for index, view in reversed(list(enumerate(views))):  # the first config on top
        ready = view.column(view.timeline.ready)
        _draw_series(
            axes, view, ready, _colour(index, "", views), f"{view.replay.label}: ready", 1.0
        )
    axes.set_ylabel("replicas")
    axes.set_ylim(bottom=0)
    _legend(axes, views)
    axes.grid(alpha=0.3)


def _draw_series(
    axes: Axes, view: _View, values: Sequence[float], colour: str, label: str, width: float
) -> None:
    """A column as steps when the window is short; on a long one, each slice's mean as a
    line within a band from its lowest to its highest value, so lines that flap every few
    ticks do not paint over each other."""
    if len(values) <= 2 * SLICES:
        steps(axes, view.edges, values, color=colour, linewidth=width, label=label)
        return
    size = math.ceil(len(values) / SLICES)
    xs, means, lows, highs = [], [], [], []
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        xs.append(view.edges[start])
        means.append(sum(chunk) / len(chunk))
        lows.append(min(chunk))
        highs.append(max(chunk))
    xs.append(view.edges[-1])
    axes.fill_between(
        xs,
        [*lows, lows[-1]],
        [*highs, highs[-1]],
        step="post",
        color=colour,
        alpha=0.12,
        linewidth=0,
    )
    steps(axes, xs, means, color=colour, linewidth=width, label=label)
    axes.set_title(
        f"each line: the mean of a {_span(size * view.timeline.interval)} slice; its band: "
        "the slice's lowest to highest",
        fontsize=8,
        loc="left",
    )


def _draw_replicas(axes: Axes, views: Sequence[_View]) -> None:
    single = len(views) == 1
    top = 0.0
    clipped = False
    bounds: dict[tuple[tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for index, view in reversed(list(enumerate(views))):  # the first config on top
        timeline, edges = view.timeline, view.edges
        colour = _colour(index, "tab:blue", views)
        provisioned = view.array(timeline.provisioned)
        most = int(provisioned.max())
        if single:
            recommended = view.array(timeline.recommended)
            steps(axes, edges, recommended, color="tab:gray", linewidth=0.6, label="recommended")
            ready = view.array(timeline.ready)
            steps(axes, edges, ready, color="tab:green", linewidth=1.0, label="ready")
            steps(axes, edges, provisioned, color=colour, linewidth=1.0, label="provisioned")
            clipped = int(recommended.max()) > most * 1.15 + 0.5
            _draw_actions(axes, view)
        else:
            label = _label(view.replay)
            _draw_series(axes, view, provisioned.tolist(), colour, label, 1.0)
        top = max(top, most)
        if timeline.minimum is not None and timeline.maximum is not None:
            key = (tuple(timeline.minimum), tuple(timeline.maximum))
            if key not in bounds:
                bounds[key] = []
                high = view.array(timeline.maximum)
                style: dict[str, Any] = {"color": "dimgray", "linewidth": 0.9}
                steps(axes, edges, high, linestyle="--", **style)
                steps(axes, edges, view.array(timeline.minimum), linestyle=":", **style)
                # a max far above what was used would flatten the lines: it may run off the top
                top = max(top, min(int(high.max()), most * 2 + 1))
            bounds[key].append(view.replay.label)
    for (lows, highs), labels in bounds.items():
        steady = len(set(lows)) == 1 and len(set(highs)) == 1
        shown = f"min {lows[0]}, max {highs[0]}" if steady else "min/max in force"
        who = "" if single else f" ({', '.join(labels)})"
        axes.plot([], [], color="dimgray", linestyle="--", linewidth=0.9, label=shown + who)
    axes.set_ylabel("replicas")
    axes.set_ylim(0, top * 1.15 + 0.5)
    if clipped:
        axes.text(
            0.005,
            0.97,
            "recommended runs off the top at times",
            transform=axes.transAxes,
            fontsize=8,
            va="top",
            color="tab:gray",
        )
    _legend(axes, views)
    axes.grid(alpha=0.3)


def _draw_actions(axes: Axes, view: _View) -> None:
    timeline, first = view.timeline, view.first
    actions = [(t, moved) for t, moved in scale_actions(timeline) if first <= t < view.end]
    size = 4 if len(actions) > _MANY_ACTIONS else 16
    for direction, marker, colour, label in (
        (1, "^", "tab:orange", "scale out"),
        (-1, "v", "tab:purple", "scale in"),
    ):
        ticks = np.array([tick for tick, moved in actions if moved == direction], dtype=int)
        axes.scatter(
            view.edges[ticks - first],
            np.asarray(timeline.provisioned)[ticks],
            marker=marker,
            s=size,
            color=colour,
            zorder=3,
            label=label,
        )


def _draw_strip(axes: Axes, views: Sequence[_View]) -> None:
    single = len(views) == 1
    for index, view in reversed(list(enumerate(views))):  # the first config on top
        timeline = view.timeline
        slices = shortfall_slices(timeline, view.first, view.end)
        xs = [timeline.time(s.first) / view.per for s in slices]
        xs.append(timeline.time(view.end) / view.per)
        values = [100 * s.fraction for s in slices]
        colour = _colour(index, "tab:red", views)
        label = "under-provisioned" if single else view.replay.label
        steps(axes, xs, values, color=colour, linewidth=1.0, label=label)
        if single:
            axes.fill_between(xs, [*values, values[-1]], step="post", color=colour, alpha=0.25)
    view = views[0]
    seconds = math.ceil((view.end - view.first) / SLICES) * view.timeline.interval
    axes.set_ylabel(f"% of each {_span(seconds)}\nunder-provisioned", fontsize=9)
    axes.set_ylim(0, 100)
    _legend(axes, views)
    axes.grid(alpha=0.3)


def _legend(axes: Axes, views: Sequence[_View]) -> None:
    """The legend, configs in the order given (they are drawn in reverse, the first on top)."""
    handles, labels = axes.get_legend_handles_labels()
    if len(views) > 1:
        names = [view.replay.label for view in views]

        def rank(label: str) -> int:
            if label.startswith("min"):
                return len(names)
            return next((i for i, name in enumerate(names) if label.startswith(name)), -1)

        order = sorted(range(len(labels)), key=lambda i: rank(labels[i]))
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9)


def steps(axes: Axes, edges: ArrayLike, values: ArrayLike, **style: Any) -> None:
    """Each value held from its tick's start to the next one's. A line, not ``stairs``:
    matplotlib simplifies long lines when drawing them, and a two-week replay has 80 000
    steps.

    A tick that holds the value of the tick before adds nothing to the line (the
    horizontal segment goes on through it), so it is left out: the same line, from the
    ticks where the value changes (a replica count changes a few thousand times in 80 000
    ticks, a bound often never), and every later step (layout, drawing) handles that many
    points rather than all of them."""
    ys = np.asarray(values, dtype=float)
    xs = np.asarray(edges, dtype=float)
    changes = np.empty(len(ys), dtype=bool)
    changes[:1] = True
    np.not_equal(ys[1:], ys[:-1], out=changes[1:])  # NaN != NaN: every NaN is kept
    axes.step(
        np.append(xs[:-1][changes], xs[-1]),
        np.append(ys[changes], ys[-1]),
        where="post",
        **style,
    )


def _time_unit(seconds: float) -> tuple[str, float]:
    hours = seconds / 3600
    if hours > _HOURS_AXIS_UP_TO:
        return "days", 86400.0
    if hours >= 2:
        return "hours", 3600.0
    return "minutes", 60.0


def _span(seconds: float) -> str:
    from datetime import timedelta

    from ..core.durations import format_duration

    return format_duration(timedelta(seconds=seconds))
