"""The windowed reads equal a naive reference, and an evaluation's work stays flat as
history grows: it touches what its windows hold, never the whole history.

The reference is written independently of ``scalerd.core.aggregate``: keep every point
ever seen, filter by time with plain comparisons, aggregate with numpy. The work test
counts what each evaluation touches (points aggregated, points and recommendations kept,
windows scanned), not time, so it holds on a loaded machine.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalerd.core import Capacity, Observation, Sample, TargetState, decide, record_applied
from scalerd.core.aggregate import MAX_POINTS_PER_METRIC, ingest, read_metric

from .build import at, rule, target

# the modules (``scalerd.core.decide`` the attribute is the function)
aggregate_module = importlib.import_module("scalerd.core.aggregate")
decide_module = importlib.import_module("scalerd.core.decide")
AGGREGATIONS = ("avg", "min", "max", "total", "count", "last", "p50", "p95", "p99", "p5")


def naive(values: list[float], aggregation: str) -> float:
    if aggregation == "avg":
        return float(numpy.mean(values))
    if aggregation == "total":
        return float(numpy.sum(values))
    if aggregation == "count":
        return float(len(values))
    if aggregation == "last":
        return values[-1]
    if aggregation in ("min", "max"):
        return float(getattr(numpy, aggregation)(values))
    return float(numpy.percentile(values, float(aggregation[1:])))  # numpy: linear


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[list[Sample]], list[int]]:
    """Ticks of fresh points, in time order, each tick's points at or before its time."""
    ticks = draw(st.integers(1, 40))
    batches: list[list[Sample]] = []
    times: list[int] = []
    clock = 0
    last = None
    for _ in range(ticks):
        clock += draw(st.integers(1, 120))
        offsets = sorted(set(draw(st.lists(st.integers(0, 119), max_size=4))), reverse=True)
        fresh = [
            Sample(at(clock - offset), draw(st.floats(0, 1e6, allow_nan=False)))
            for offset in offsets
        ]
        fresh = [sample for sample in fresh if last is None or sample.at > last]
        batches.append(fresh)
        times.append(clock)
        if fresh:
            last = fresh[-1].at
    return batches, times


@settings(max_examples=300, deadline=None)
@given(
    histories(),
    st.sampled_from(AGGREGATIONS),
    st.integers(0, 900),
    st.integers(30, 900),
)
def test_windowed_reads_equal_the_naive_reference(
    history: tuple[list[list[Sample]], list[int]], aggregation: str, window_s: int, keep_s: int
) -> None:
    batches, times = history
    window, keep = timedelta(seconds=window_s), timedelta(seconds=keep_s)
    max_age = timedelta(seconds=600)
    kept: dict[str, tuple[Sample, ...]] = {}
    everything: list[Sample] = []
    for fresh, second in zip(batches, times, strict=True):
        now = at(second)
        kept, failures = ingest(kept, [Observation("m", tuple(fresh))], keep, now)
        assert not failures
        everything += fresh
        # the reference: every point ever seen, those within `keep` (the newest always)
        inside = [sample for sample in everything if sample.at >= now - keep]
        expected = (inside or everything[-1:])[-MAX_POINTS_PER_METRIC:]
        assert list(kept.get("m", ())) == expected

        report = read_metric("m", "src", kept.get("m", ()), aggregation, window, max_age, None, now)
        if not everything:
            assert report.error == "no data"
            continue
        age = max(0.0, (now - everything[-1].at).total_seconds())
        assert report.age_s == age
        if age > max_age.total_seconds():
            assert report.value is None and report.error is not None
            continue
        if window_s == 0:
            assert (report.value, report.points) == (everything[-1].value, 1)
            continue
        in_window = [sample.value for sample in everything if sample.at > now - window]
        if window > keep:  # the reads only see what is kept: the reference too
            in_window = [s.value for s in expected if s.at > now - window]
        if not in_window:
            assert report.value is None and report.error is not None
            continue
        assert report.points == len(in_window)
        assert report.value is not None
        # below the smallest normal float, interpolation formulas differ by an underflow
        # (p5 of 0 and 5e-324: 0 + 5e-324 x 0.5 is 0 here, numpy's lerp gives 5e-324)
        expected = naive(in_window, aggregation)
        assert math.isclose(report.value, expected, rel_tol=1e-12, abs_tol=sys.float_info.min)


def _counting(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, measure: Callable[..., int]
) -> list[int]:
    """Record ``measure(*args)`` at each call of ``module.name``."""
    seen: list[int] = []
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(measure(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return seen


def test_an_evaluation_touches_its_windows_not_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """recommended.toml's shape (a p95 over 20 minutes, a 5-minute scale-down window) at
    15 s, on a load that keeps moving capacity: the points aggregated, the points and
    recommendations kept and the stabilization scan per evaluation are the same after
    5,000 evaluations as after 200 (the 20-minute window is full after 80)."""
    aggregated = _counting(
        monkeypatch, aggregate_module, "aggregate", lambda values, _: len(values)
    )
    scanned = _counting(
        monkeypatch, decide_module, "stabilize", lambda raw, current, history, *_: len(history)
    )
    spec = target(
        rule(
            interval="15s",
            max=200,
            track=[
                {"metric": "rps", "type": "total", "target": 90},
                {
                    "metric": "rps",
                    "type": "total",
                    "target": 90,
                    "aggregation": "p95",
                    "window": "20m",
                },
            ],
            behavior={"scale_down": {"stabilization_window": "300s"}},
        ),
        max_age="1m",
    )
    state, replicas = TargetState(), 1
    kept: list[tuple[int, int, int, int]] = []
    changes = 0
    for tick in range(5000):
        now = at(tick * 15)
        load = 900 + 800 * math.sin(tick / 37) + (400 if tick % 11 == 0 else 0)
        decision, state = decide(
            spec, state, Capacity.steady(replicas), [Observation.value("rps", now, load)], now
        )
        if decision.changes:
            state = record_applied(spec, state, decision, now)
            replicas = decision.desired
            changes += tick >= 4900
        kept.append(
            (
                len(state.samples["rps"]),
                len(state.recommendations),
                len(state.events),
                len(state.ready_history),
            )
        )
    assert changes > 0  # capacity keeps moving, so the windows and events are exercised
    per_evaluation = [
        (points, scan, *sizes)
        for points, scan, sizes in zip(aggregated, scanned, kept, strict=True)
    ]

    def most(ticks: list[tuple[int, ...]]) -> list[int]:
        return [max(column) for column in zip(*ticks, strict=True)]

    # flat: the most any evaluation touched late equals the most one touched early (the
    # ready count's change points depend on how often capacity moved lately: bounded below)
    late, early = most(per_evaluation[4900:]), most(per_evaluation[100:200])
    assert late[:5] == early[:5]
    points, scan, samples, recommendations, events, ready = late
    assert points == 80  # 20 minutes of 15 s points
    assert scan <= 300 // 15 + 1 and recommendations <= 300 // 15 + 1
    assert samples <= 81 + 4 and events <= 2 and ready <= 81 + 4
