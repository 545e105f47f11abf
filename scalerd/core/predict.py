"""Predictive floors: a seasonal forecast of demand one lead time ahead, as a capacity floor.

The forecast is a seasonal-naive one corrected by the recent level, computed from the
target's own history of one metric (a total, such as a request rate):

* the history keeps, per ``bucket`` (5 minutes by default), the highest reading seen in
  it: capacity has to cover the peaks within a bucket, not its mean;
* ``seasonal(W)`` for a window ``W`` is the ``quantile`` of the peaks that the same
  window held one, two, … ``seasons`` seasons ago (a season is a day or a week);
* the level is ``sum(actual) / sum(seasonal)`` over the complete buckets of the last
  ``level_window``: 1.3 when today runs 30 % above the usual day;
* ``forecast = level x seasonal([now, now + lead])``, and the floor is
  ``ceil(forecast / target)`` with the target of the ``[[track]]`` rule it sizes for.

The floor only ever raises what the rules propose (``max``), so it scales out ahead of a
rise it has seen on earlier days and never scales in by itself. With no history for the
window ahead there is no forecast and no floor. Everything here is pure: ``now`` is a
parameter and the history lives in the :class:`~scalerd.core.model.TargetState`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .model import DemandHistory, Reason, Sample, Step, build_reason
from .rules import Predict, Rule, Track

__all__ = ["Forecast", "bucket_of", "forecast", "observe", "predictive_floor", "sized_track"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Forecast:
    """The demand expected over the lead window, and what it was made of."""

    value: float
    seasonal: float
    level: float
    # weighted absolute percentage error of ``level x seasonal`` over the level window
    # (the buckets the level was fitted on): how far off the forecast has been lately
    error: float | None
    # how many past seasons held data for the window ahead
    seasons: int


def bucket_of(at: datetime, spec: Predict) -> int:
    """The index of the bucket holding ``at``: buckets are aligned to the Unix epoch, so
    a season (a whole number of buckets) ago is always a whole number of indices back."""
    return int((at - _EPOCH) // spec.bucket)


def observe(history: DemandHistory, samples: Iterable[Sample], spec: Predict) -> DemandHistory:
    """``history`` with ``samples`` folded in: each bucket keeps its highest reading.

    A sample older than the oldest bucket kept is dropped; buckets no sample reached stay
    empty (``None``), so a gap is not read as zero demand. Only as many buckets are kept
    as the forecast can ever look back at.
    """
    first, peaks = history.first, list(history.peaks)
    for sample in samples:
        index = bucket_of(sample.at, spec)
        if not peaks:
            first, peaks = index, [sample.value]
            continue
        if index < first:
            continue
        offset = index - first
        if offset >= len(peaks):
            peaks.extend([None] * (offset - len(peaks) + 1))
        kept = peaks[offset]
        peaks[offset] = sample.value if kept is None else max(kept, sample.value)
    excess = len(peaks) - _buckets_kept(spec)
    if excess > 0:
        first, peaks = first + excess, peaks[excess:]
    return DemandHistory(first, tuple(peaks))


def _buckets_kept(spec: Predict) -> int:
    reach = spec.season * spec.seasons + spec.level_window + spec.lead + spec.bucket
    return math.ceil(reach / spec.bucket) + 1


def forecast(history: DemandHistory, now: datetime, spec: Predict) -> Forecast | None:
    """The demand expected over ``[now, now + lead]``, or ``None`` with no history for it.

    It reads only buckets before the current one, so it is the same for every evaluation
    within a bucket: it is computed once per bucket (a memo of the buckets it reads, not a
    state, so the result is exactly what computing it anew would give)."""
    start, end = bucket_of(now, spec), bucket_of(now + spec.lead, spec)
    if end - spec.season // spec.bucket >= start:  # a lead of a season reads this bucket too
        return _forecast(history.peaks, history.first, start, end, spec)
    past = history.peaks[: max(0, start - history.first)]
    return _forecast(past, history.first, start, end, spec)


# a bucket's forecast, per target: small, as each entry holds the history it was made of
@functools.lru_cache(maxsize=256)
def _forecast(
    peaks: tuple[float | None, ...], first: int, start: int, end: int, spec: Predict
) -> Forecast | None:
    history = DemandHistory(first, peaks)
    season = spec.season // spec.bucket

    def peak(index: int) -> float | None:
        offset = index - history.first
        return history.peaks[offset] if 0 <= offset < len(history.peaks) else None

    def seasonal(low: int, high: int) -> tuple[float, int] | None:
        values = []
        for lag in range(1, spec.seasons + 1):
            seen = [p for i in range(low, high + 1) if (p := peak(i - lag * season)) is not None]
            if seen:
                values.append(max(seen))
        if not values:
            return None
        return _quantile(values, spec.quantile), len(values)

    ahead = seasonal(start, end)
    if ahead is None:
        return None
    expected, seasons = ahead
    actual_sum = fitted_sum = 0.0
    pairs: list[tuple[float, float]] = []
    for index in range(start - spec.level_window // spec.bucket, start):
        actual, usual = peak(index), seasonal(index, index)
        if actual is None or usual is None:
            continue
        pairs.append((actual, usual[0]))
        actual_sum += actual
        fitted_sum += usual[0]
    # no recent bucket to compare, or a usual of zero: the level is unknown, take it as 1
    level = actual_sum / fitted_sum if fitted_sum > 0 else 1.0
    error = (
        sum(abs(actual - level * usual) for actual, usual in pairs) / actual_sum
        if actual_sum > 0
        else None
    )
    return Forecast(level * expected, expected, level, error, seasons)


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between order statistics (numpy's
    default), so that 0.5 of two values is their mean and 1 is the highest."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sized_track(rule: Rule, spec: Predict) -> Track:
    """The ``[[track]]`` rule whose metric is forecast and whose target sizes the floor."""
    for track in rule.track:
        if track.label == spec.track or (spec.track is None and track.type == "total"):
            return track
    raise ValueError("no [[track]] for [predict]")  # Rule's validation rules this out


def predictive_floor(
    spec: Predict, track: Track, history: DemandHistory, now: datetime, value: int
) -> Reason:
    """The ``PredictiveFloor`` step: ``value`` raised to the forecast's capacity when the
    mode is ``on``; computed and audited but never applied in ``shadow``."""
    predicted = forecast(history, now, spec)
    data: dict[str, object] = {
        "mode": spec.mode,
        "metric": track.metric,
        "lead_s": spec.lead.total_seconds(),
        "forecast": None,
    }
    if predicted is None:
        return build_reason(Step.PREDICTIVE_FLOOR, value, value, "no history yet: no floor", data)
    floor = math.ceil(predicted.value / track.target - 1e-9)
    data.update(
        forecast=predicted.value,
        seasonal=predicted.seasonal,
        level=predicted.level,
        error=predicted.error,
        seasons=predicted.seasons,
        floor=floor,
    )
    lead = f"{spec.lead.total_seconds():g}s"
    detail = (
        f"{track.metric} forecast {predicted.value:.4g} over the next {lead} "
        f"({predicted.level:.3g} x seasonal {predicted.seasonal:.4g}): floor {floor}"
    )
    after = value
    if floor > value and spec.mode == "on":
        after = floor
    elif floor > value:
        detail += " (shadow: not applied)"
    return build_reason(Step.PREDICTIVE_FLOOR, value, after, detail, data)
