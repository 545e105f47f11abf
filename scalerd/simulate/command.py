"""``scalerd simulate --config PATH --trace CSV [--target NAME] [--out DIR] [--compare PATH ...]
[--window START:END] [--no-plot]``.

Every config named (``--config`` first, then each ``--compare``) is replayed on the same
trace in this one process, with the same command-line overrides of ``[simulate]``. One
config writes ``timeline.csv``, ``summary.json`` and ``timeline.png`` to ``--out``;
several write them to ``--out/<label>/`` each, and ``--out/compare.png`` draws them all on
one chart. ``--window`` zooms the plots (never the files or scores) into part of the trace.
The scores go to stdout as one table.

The simulator is imported when the command runs, not when the CLI starts, so that
``scalerd``'s other commands do not pay for loading it. matplotlib is loaded, and the
charts drawn, by a :class:`~.plotter.Plotter` in a child process while the replays run and
their files are written; ``--no-plot`` (or a ladder, which has no chart) never loads it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..traces import Trace
    from .plotter import Plotter, Replay
    from .scenario import Scenario

__all__ = ["add_arguments", "run"]

# the [simulate] keys a flag of the same name overrides
_OVERRIDES = (
    "capacity",
    "startup",
    "metric_delay",
    "scale",
    "peak_replicas",
    "initial",
    "service_time",
    "latency_cap",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        help="a config.toml, or a rule file such as rules/recommended.toml",
    )
    parser.add_argument(
        "--trace",
        required=True,
        type=Path,
        help="demand trace: a t_seconds,value CSV, value = work per second",
    )
    parser.add_argument(
        "--target",
        help="the target to replay, when a config.toml has several (a rule file has one)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("simulation"),
        help="output folder (default: ./simulation/)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="more configs or rule files to replay on the same trace: one table row each",
    )
    parser.add_argument(
        "--window",
        type=_window,
        metavar="START:END",
        help="plot only this part of the trace, as durations from its start, e.g. 3d:4d",
    )
    parser.add_argument(
        "--no-plot",
        action="store_true",
        help="write the files and the table only: no timeline.png or compare.png",
    )
    model = parser.add_argument_group(
        "capacity model", "each overrides the config's [simulate] key of the same name"
    )
    model.add_argument("--capacity", type=float, help="work per second one ready replica serves")
    model.add_argument(
        "--startup", metavar="DURATION", help="from asking for a replica to its serving, e.g. 45s"
    )
    model.add_argument(
        "--metric-delay", metavar="DURATION", help="how late the metric reaches the rules, e.g. 3m"
    )
    model.add_argument("--scale", type=float, help="multiply the trace by this")
    model.add_argument(
        "--peak-replicas",
        type=int,
        help="scale the trace so that its peak needs this many replicas",
    )
    model.add_argument(
        "--initial", type=int, help="replicas at the start (default: the target's min)"
    )
    model.add_argument(
        "--service-time",
        metavar="DURATION",
        help="time one unit of work spends in service, e.g. 200ms",
    )
    model.add_argument(
        "--latency-cap",
        metavar="DURATION",
        help="the longest response time the latency metric reads",
    )
    model.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME=KIND",
        help="what a metric is: utilization, rate, arrivals, backlog, concurrency or latency",
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..traces import TraceError, load_trace
    from .plotter import Plotter
    from .report import SCORE_HEADERS, format_table, score_cells
    from .scenario import load_scenario

    try:
        overrides = _overrides(args)
        trace = load_trace(args.trace)
        scenarios = [
            load_scenario(path, target=args.target, overrides=overrides)
            for path in (args.config, *args.compare)
        ]
        labels = _unique([scenario.label for scenario in scenarios])
        several = len(scenarios) > 1
        # the plots draw replicas; a ladder's replay writes its files only (README)
        charts = not args.no_plot and any(scenario.spec.ladder is None for scenario in scenarios)
        # started before the replays, so that matplotlib loads while they run
        with Plotter.start(fork=charts) as plotter, _progress(labels) as bars:
            replays = [
                _replay(
                    scenario,
                    trace,
                    label,
                    args.out / label if several else args.out,
                    args.window,
                    plotter if charts else None,
                    bars.get(label),
                )
                for scenario, label in zip(scenarios, labels, strict=True)
            ]
            if charts and several and all(replay.timeline.tier_units is None for replay in replays):
                title = f"{', '.join(labels)} on {Path(trace.origin).name}"
                plotter.comparison(replays, title, args.out / "compare.png", args.window)
            failures = plotter.finish()
    except ConfigError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        return 1
    except (TraceError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    except OSError as error:  # the output folder or a file in it cannot be written
        print(f"cannot write {error.filename or args.out}: {error.strerror}", file=sys.stderr)
        return 1
    if failures:
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    rows = [[replay.label, *score_cells(replay.scores)] for replay in replays]
    print(format_table(("config", *SCORE_HEADERS), rows))
    print(f"\noutputs in {args.out}/")
    return 0


def _replay(
    scenario: Scenario,
    trace: Trace,
    label: str,
    out: Path,
    window: tuple[float, float] | None,
    plotter: Plotter | None,
    bar: _Bar | None = None,
) -> Replay:
    """Replay, write the two files to ``out``, hand the chart to ``plotter`` (``None``: no
    chart), and return the replay."""
    from .output import summary, write_outputs
    from .plotter import Replay
    from .run import simulate
    from .scores import score

    timeline = simulate(scenario, trace, progress=bar.replaying if bar else None)
    if bar is not None:
        bar.writing()
    scores = score(timeline)
    trace_name = Path(trace.origin).name
    out.mkdir(parents=True, exist_ok=True)
    if plotter is not None and timeline.tier_units is None:
        # drawn (in the plotter's process) while the files are written here
        plotter.timeline(timeline, scores, f"{label} on {trace_name}", out / "timeline.png", window)
    write_outputs(out, timeline, summary(scenario, trace_name, timeline, scores))
    if bar is not None:
        bar.done()
    return Replay(label, timeline, scores)


def _window(text: str) -> tuple[float, float]:
    """``START:END``, each a duration from the trace's start (``0s:1d``, ``2d12h:3d``)."""
    from ..core import parse_duration

    start, colon, end = text.partition(":")
    try:
        if not colon:
            raise ValueError("no colon")
        window = (parse_duration(start).total_seconds(), parse_duration(end).total_seconds())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write START:END as durations from the trace's start, e.g. 3d:4d"
        ) from None
    if window[1] <= window[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: END must come after START")
    return window


class _Bar:
    """One config's line of the progress display: evaluations replayed, then the files."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None, phase="waiting")

    def replaying(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total, phase="replaying")

    def writing(self) -> None:
        self._progress.update(self._task, phase="writing files and plot")

    def done(self) -> None:
        self._progress.update(self._task, phase="done")


@contextlib.contextmanager
def _progress(labels: list[str]) -> Iterator[dict[str, _Bar]]:
    """A rich progress bar per config on stderr, when it is a terminal (a pipe or a file
    gets nothing, so the table stays the only output)."""
    if not _may_be_terminal():
        yield {}
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield {}
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("evaluations, {task.fields[phase]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield {label: _Bar(progress, label) for label in labels}


def _may_be_terminal() -> bool:
    """False where rich's ``Console(stderr=True).is_terminal`` is sure to be: stderr is no
    tty and neither ``TTY_COMPATIBLE=1`` nor ``FORCE_COLOR`` says otherwise. A pipe or a
    file then never loads rich; anything else is left to rich to decide."""
    import os

    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from ..errors import ConfigError, ConfigIssue

    overrides: dict[str, Any] = {
        key: getattr(args, key) for key in _OVERRIDES if getattr(args, key) is not None
    }
    kinds: dict[str, str] = {}
    for entry in args.metric:
        name, sep, kind = entry.rpartition("=")
        if not sep or not name:
            message = f"{entry!r}: write NAME=KIND, e.g. --metric 'queue=backlog'"
            raise ConfigError([ConfigIssue("command line", None, "--metric", message)])
        kinds[name] = kind
    if kinds:
        overrides["metrics"] = kinds
    return overrides


def _unique(labels: list[str]) -> list[str]:
    """The labels, with a repeated one numbered (two files may share a stem)."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return unique
