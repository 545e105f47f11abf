"""Observations in, per-metric sample history and windowed aggregates out.

A read that failed, or that delivered NaN or a negative number, is a *failure* of that
metric for this evaluation: its points are not kept and the rules that read the metric
abstain. A metric whose newest point is older than its ``max_age`` is stale, which is a
failure too. Zero is never a stand-in for "no data".
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from .model import InputReport, Observation, Sample, build_input

__all__ = ["aggregate", "ingest", "read_metric"]

# Enough points for any window at sub-second polling; bounds memory on a chatty source.
MAX_POINTS_PER_METRIC = 4096


def ingest(
    history: Mapping[str, tuple[Sample, ...]],
    observations: Iterable[Observation],
    keep: timedelta,
    now: datetime,
) -> tuple[dict[str, tuple[Sample, ...]], dict[str, str]]:
    """Merge new points into the history; return it and the metrics that failed this time."""
    merged = dict(history)
    failures: dict[str, str] = {}
    for observation in observations:
        problem = observation.error or _invalid(observation.samples)
        if problem:
            failures[observation.metric] = problem
            continue
        merged[observation.metric] = _merge(merged.get(observation.metric, ()), observation.samples)
    cutoff = now - keep
    for metric, points in merged.items():
        if points and points[0].at < cutoff:
            # keep the newest point even when it is old, so it is reported as stale
            merged[metric] = points[min(_first_at_or_after(points, cutoff), len(points) - 1) :]
    return merged, failures


def _first_at_or_after(samples: tuple[Sample, ...], when: datetime) -> int:
    return bisect.bisect_left(samples, when, key=_time)


# a C-level key: bisect calls it at every probe
_time = operator.attrgetter("at")


def _invalid(samples: tuple[Sample, ...]) -> str | None:
    for sample in samples:
        if math.isfinite(sample.value) and sample.value >= 0:
            continue  # the common case, in one test
        if math.isnan(sample.value) or math.isinf(sample.value):
            return f"invalid value {sample.value} at {sample.at.isoformat()}"
        if sample.value < 0:
            return f"negative value {sample.value:g} at {sample.at.isoformat()}"
    return None


def _merge(old: tuple[Sample, ...], new: tuple[Sample, ...]) -> tuple[Sample, ...]:
    if not new:
        return old
    if not old or (new[0].at > old[-1].at and (len(new) == 1 or _ascending(new))):
        combined = old + new  # the common case: points arrive in order
    else:
        by_time = {sample.at: sample for sample in old}
        by_time.update((sample.at, sample) for sample in new)  # a re-read grain replaces
        combined = tuple(sorted(by_time.values(), key=lambda sample: sample.at))
    return combined[-MAX_POINTS_PER_METRIC:]


def _ascending(samples: tuple[Sample, ...]) -> bool:
    return all(a.at < b.at for a, b in itertools.pairwise(samples))


def aggregate(values: list[float], aggregation: str) -> float:
    """avg, min, max, total, count, last or pNN (linear interpolation) of ``values``."""
    if aggregation == "last":
        return values[-1]
    if aggregation == "avg":
        return sum(values) / len(values)
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    if aggregation == "total":
        return sum(values)
    if aggregation == "count":
        return float(len(values))
    if aggregation.startswith("p"):
        return _percentile(sorted(values), _percent(aggregation))
    raise ValueError(f"unknown aggregation {aggregation!r}")


@functools.cache
def _percent(aggregation: str) -> float:
    return float(aggregation[1:])


def _percentile(ordered: list[float], percent: float) -> float:
    rank = percent / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def read_metric(
    metric: str,
    source: str,
    samples: tuple[Sample, ...],
    aggregation: str,
    window: timedelta,
    max_age: timedelta,
    failure: str | None,
    now: datetime,
) -> InputReport:
    """Aggregate one metric over ``(now - window, now]``; a zero window means the newest point."""
    window_s = window.total_seconds()
    if failure is not None:
        return build_input(metric, source, None, aggregation, window_s, 0, None, failure)
    if not samples:
        return build_input(metric, source, None, aggregation, window_s, 0, None, "no data")
    newest = samples[-1]
    # a point stamped just after `now` (read after the tick began) is fresh, not from the future
    age = max(0.0, (now - newest.at).total_seconds())
    limit = max_age.total_seconds()
    if age > limit:
        error = f"stale: newest point is {age:g}s old (max age {limit:g}s)"
        return build_input(metric, source, None, aggregation, window_s, 0, age, error)
    if window_s <= 0:
        return build_input(metric, source, newest.value, aggregation, 0.0, 1, age)
    start = bisect.bisect_right(samples, now - window, key=_time)  # strictly newer than cutoff
    if start == len(samples):
        error = f"no data in the last {window_s:g}s"
        return build_input(metric, source, None, aggregation, window_s, 0, age, error)
    values = [sample.value for sample in samples[start:]]
    value = aggregate(values, aggregation)
    return build_input(metric, source, value, aggregation, window_s, len(values), age)
