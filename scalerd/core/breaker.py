"""Circuit breakers: hold scale-out while a dependency is failing.

Adding replicas in front of a database at its connection limit, or of an upstream API
that is failing, adds load to the thing that is already failing. A ``[[breaker]]`` reads
one metric of that dependency and, while it is open, holds any scale-out at the current
capacity. It never scales in by itself: scale-in the rules ask for goes ahead (fewer
replicas relieve the dependency), and the bounds still clamp the result, so ``min``
stays a floor. An operator's override and KEDA's activation from zero are not held.

Each breaker is a small state machine kept in ``TargetState.breakers``:

* closed → open at once, on a reading on the failing side of ``open_when``;
* open → closed only after the reading has stayed on the healthy side of ``close_when``
  for its hold time, every evaluation in between; a reading in the band between the two
  thresholds keeps it open and restarts the hold time (hysteresis);
* a missing, stale or invalid reading is what ``missing`` says: ``keep`` (no evidence
  either way: the state stays, and a running hold time restarts), ``open`` (counted as
  failing) or ``closed`` (counted as healthy, so an open breaker still waits out its
  hold time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .aggregate import read_metric
from .durations import format_duration
from .model import (
    BreakerState,
    InputReport,
    NotScaled,
    Reason,
    Sample,
    Step,
    build_reason,
)
from .rules import Breaker, MetricSpec

__all__ = ["Judged", "hold_scale_out", "judge"]


@dataclass(frozen=True, slots=True)
class Judged:
    """One breaker at one evaluation: its reading, its new state, and what changed."""

    breaker: Breaker
    report: InputReport
    state: BreakerState
    # "opened" or "closed" when it changed at this evaluation
    change: str | None
    # the words for the reading ("orders-db connection use 0.97 > 0.95", "... missing: …")
    reading: str


def judge(
    breakers: Sequence[Breaker],
    states: Mapping[str, BreakerState],
    samples: Mapping[str, tuple[Sample, ...]],
    failures: Mapping[str, str],
    metrics: Mapping[str, MetricSpec],
    now: datetime,
) -> tuple[tuple[Judged, ...], dict[str, BreakerState]]:
    """Every breaker's reading and next state (only configured breakers are kept)."""
    judged: list[Judged] = []
    kept: dict[str, BreakerState] = {}
    for breaker in breakers:
        spec = metrics[breaker.metric]
        report = read_metric(
            breaker.metric,
            spec.source,
            samples.get(breaker.metric, ()),
            breaker.aggregation,
            breaker.window,
            spec.max_age,
            failures.get(breaker.metric),
            now,
        )
        previous = states.get(breaker.name) or BreakerState(open=False, since=now)
        state, change, reading = _step(breaker, previous, report, now)
        judged.append(Judged(breaker, report, state, change, reading))
        kept[breaker.name] = state
    return tuple(judged), kept


def _step(
    breaker: Breaker, state: BreakerState, report: InputReport, now: datetime
) -> tuple[BreakerState, str | None, str]:
    value = report.value
    opening, closing = breaker.open_when, breaker.closing
    if value is None:
        reading = f"{breaker.metric} missing ({report.error})"
        failing = breaker.missing == "open"
        healthy = breaker.missing == "closed"
        reading += {
            "keep": ", kept as it is",
            "open": ", counted as failing",
            "closed": ", counted as healthy",
        }[breaker.missing]
    else:
        failing, healthy = opening.fails(value), closing.healthy(value)
        side = opening if failing else closing if healthy else None
        reading = f"{breaker.metric} {value:g}" + (f" {side}" if side is not None else "")
    if not state.open:
        if failing:
            return BreakerState(True, now, None, value), "opened", reading
        return state, None, reading
    if not healthy:
        if state.healthy_since is None:
            return state, None, reading
        return BreakerState(True, state.since, None, state.opened_at), None, reading
    healthy_since = state.healthy_since or now
    if now - healthy_since >= closing.hold:
        return BreakerState(False, now), "closed", reading
    return BreakerState(True, state.since, healthy_since, state.opened_at), None, reading


def hold_scale_out(
    judged: Sequence[Judged],
    states: Mapping[str, BreakerState],
    value: int,
    current: int,
    direct: str | None,
    now: datetime,
) -> list[Reason]:
    """The breaker steps of one decision. ``states`` are the states before it (for the
    time an open breaker has been open). An open breaker holds a scale-out to ``value``
    at ``current`` unless ``direct`` names what decides past the rules (an override,
    activation). A closed breaker adds a step only when it just closed or its reading
    is missing; one that stays closed on a healthy reading adds nothing."""
    steps: list[Reason] = []
    for item in judged:
        breaker, state = item.breaker, item.state
        data: dict[str, object] = {
            "breaker": breaker.name,
            "metric": breaker.metric,
            "value": item.report.value,
            "open": state.open,
            "since": state.since.isoformat(),
        }
        if not state.open:
            if item.change == "closed":
                was = states.get(breaker.name)
                opened = was.since if was is not None else state.since
                detail = (
                    f"breaker {breaker.name} closed: {item.reading} for "
                    f"{format_duration(breaker.closing.hold)} (open since {_clock(opened, now)}, "
                    f"{format_duration(now - opened)})"
                )
            elif item.report.value is None:
                detail = f"breaker {breaker.name} closed: {item.reading}"
            else:
                continue
            steps.append(build_reason(Step.BREAKER, value, value, detail, data))
            continue
        status = _open_words(item, now)
        if direct is not None:
            detail = f"{status}; {direct} is not held"
            steps.append(build_reason(Step.BREAKER, value, value, detail, data))
        elif value > current:
            detail = f"{status}; scale-out {current}→{value} held at {current}"
            data["held"] = True
            steps.append(
                build_reason(Step.BREAKER, value, current, detail, data, NotScaled.BREAKER_OPEN)
            )
            value = current
        else:
            steps.append(
                build_reason(Step.BREAKER, value, value, f"{status}; no scale-out to hold", data)
            )
    return steps


def _open_words(item: Judged, now: datetime) -> str:
    breaker, state = item.breaker, item.state
    since = _clock(state.since, now)
    head = f"breaker {breaker.name} {'opened' if item.change == 'opened' else 'open'}"
    if item.change == "opened":
        return f"{head}: {item.reading}"
    if state.healthy_since is not None:
        healthy_for = now - state.healthy_since
        return (
            f"{head}: {item.reading} for {format_duration(healthy_for)} of "
            f"{format_duration(breaker.closing.hold)} (open since {since})"
        )
    if item.report.value is None:
        return f"{head} since {since}: {item.reading}"
    if not breaker.open_when.fails(item.report.value):
        opened = "" if state.opened_at is None else f", opened on {state.opened_at:g}"
        return (
            f"{head}: {item.reading}, not yet {breaker.closing} "
            f"(open since {since}{opened} {breaker.open_when})"
        )
    return f"{head}: {item.reading} since {since}"


def _clock(at: datetime, now: datetime) -> str:
    """A time as on-call reads it: the time of day when it is today, else the date too."""
    if at.date() == now.date() and now - at < timedelta(days=1):
        return f"{at:%H:%M:%S}Z"
    return f"{at:%Y-%m-%d %H:%M:%S}Z"
