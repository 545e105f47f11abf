"""The replay loop: the daemon's tick on a virtual clock, against the capacity model.

Tick ``i`` starts at ``start + i x interval`` and lasts one interval. At each tick, in
the daemon's order:

1. replicas due by now become ready;
2. every metric is measured over the tick that just ended (a CPU % or a request rate is an
   average over a period, a queue length is read now), and the rules get the measurement
   taken ``metric_delay`` earlier; before the trace starts, the system is taken to have
   been in the state of its first tick;
3. ``core.decide`` sees the provisioned replicas and, as ready, those that served the
   whole of the last tick (one that became ready just now has no reading yet, so it
   counts as starting, the HPA's missing pod); if the decision changes capacity, the
   model carries it out and ``core.record_applied`` records it;
4. the row is written, with the capacity *after* the decision: what serves the tick;
5. the queue moves on by one tick.

Demand during a tick is the trace's average over the tick (the trace holds each value
until its next row), rounded to :data:`DEMAND_DECIMALS` places, which is exactly what
``timeline.csv`` shows; every score is computed from those numbers, so anyone can
recompute ``summary.json`` from the CSV.

On a ladder of tiers the same tick runs against a :class:`~.model.LadderServer`: step 1
completes a tier change that is due, step 3 sees the tier in effect and the change in
flight as the operation, and a change completes ``change_time`` later (README:
Simulation, ladders).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..core import Capacity, Observation, TargetState, decide, record_applied
from ..core.model import (
    Decision,
    Reason,
    Step,
    build_capacity,
    build_observation,
    build_sample,
)
from ..core.rules import Ladder
from ..settings import MetricKind, SimulateSettings
from ..traces import Trace, TraceError
from .model import LadderServer, ReplicaPool, Workload, measure, queue_after
from .scenario import Scenario

__all__ = ["DEMAND_DECIMALS", "Timeline", "simulate", "tick_demand", "trace_scale"]

DEMAND_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Timeline:
    """One replay, one entry per evaluation tick in every column.

    ``readings`` holds, per metric in the order the rules read them, the value the rules
    got at each tick; ``recommended`` is what the rules proposed before stabilization,
    cooldowns and rate limits, ``desired`` the decision (which the simulated actuator
    carries out at once, so it is also what is provisioned); ``provisioned`` and
    ``ready`` are the capacity serving the tick.
    """

    interval: float
    capacity: float
    initial: int
    scale: float
    demand: array[float]
    readings: dict[str, array[float]]
    recommended: array[int]
    desired: array[int]
    provisioned: array[int]
    ready: array[int]
    # ticks at which a metric failed (stale, missing, invalid). The model is built so that
    # this stays 0; anything else means the replay is not measuring what the rules expect.
    metric_failures: int
    # whole ticks from asking for a replica to its serving (what the oracle looks ahead)
    startup_ticks: int = 0
    # the bounds in force at each tick (a schedule profile moves them), when known
    minimum: array[int] | None = None
    maximum: array[int] | None = None
    # a ladder of tiers only (``provisioned`` is then the tier position asked for, and
    # ``ready`` the one serving, 0 during a restart): each tier's units, the units of the
    # tier in effect (billed) and of the one serving at each tick, the change in flight
    # the core saw at each tick and why the decision kept the tier ("" for none), and
    # how long a change takes, in ticks
    tier_units: tuple[float, ...] | None = None
    units: array[float] | None = None
    serving: array[float] | None = None
    in_flight: tuple[str, ...] | None = None
    not_scaled: tuple[str, ...] | None = None
    change_ticks: int = 0
    # with [[breaker]]s: the names of the breakers open at each tick ("" for none),
    # joined by "+"
    breakers_open: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.demand)

    def time(self, tick: int) -> float:
        return tick * self.interval


def trace_scale(settings: SimulateSettings, trace: Trace) -> float:
    """The factor applied to every value of the trace: ``scale``, or the one that makes
    the trace's highest row need ``peak_replicas`` replicas (1 if neither is set)."""
    if settings.scale is not None:
        return settings.scale
    if settings.peak_replicas is None:
        return 1.0
    peak = max(trace.values)
    if peak <= 0:
        raise TraceError(
            f"{trace.origin}: every value is 0, so no scale makes its peak need replicas"
        )
    return settings.peak_replicas * settings.capacity / peak


def tick_demand(trace: Trace, interval: float, scale: float) -> array[float]:
    """The scaled average of ``trace`` over each whole ``interval`` it covers.

    A partial last interval is left out: every tick has the same length, so the scores
    are plain sums over rows.
    """
    ticks = int(trace.duration // interval)
    if ticks == 0:
        raise TraceError(
            f"{trace.origin}: {trace.duration:g}s is shorter than one evaluation interval "
            f"({interval:g}s)"
        )
    times, values = trace.times, trace.values
    ends = array("d", times[1:])
    ends.append(times[-1] + trace.step)
    rows = len(times)
    start = trace.start
    demand: array[float] = array("d")
    row = 0
    for tick in range(ticks):
        low = start + tick * interval
        high = low + interval
        while ends[row] <= low:
            row += 1
        work = 0.0
        covering = row
        while covering < rows and times[covering] < high:
            # min(high, end) - max(low, begin), without the two calls
            end, begin = ends[covering], times[covering]
            work += values[covering] * (
                (end if end < high else high) - (begin if begin > low else low)
            )
            covering += 1
        demand.append(round(work * scale / interval, DEMAND_DECIMALS))
    return demand


class _Sensors:
    """Measures every metric the rules read at each tick, and hands the rules the
    measurement taken ``delay`` ticks earlier, stamped with the time it was taken."""

    def __init__(self, scenario: Scenario, workload: Workload) -> None:
        kinds = [(binding.name, binding.kind) for binding in scenario.metrics]
        self._dependencies = scenario.settings.dependencies
        self.readings = {name: array("d") for name, _ in kinds}
        # per metric: its name, its kind, what was measured at each tick, what the rules got
        self._channels: list[
            tuple[str, MetricKind | Literal["dependency"], list[float], array[float]]
        ] = [(name, kind, [], self.readings[name]) for name, kind in kinds]
        self._workload = workload
        self._step = scenario.interval
        self._delay = scenario.delay_ticks
        self._late = self._delay * self._step

    def read(
        self, tick: int, now: datetime, demand: float, ready: float, queued: float
    ) -> list[Observation]:
        """Measure ``demand`` on ``ready`` replicas (the last tick's; on a ladder, the
        serving units) and ``queued`` work at tick ``tick``, which starts at ``now``."""
        seen = max(tick - self._delay, 0)
        seen_at = now - self._late if self._delay else now
        observations = []
        for name, kind, measured, delivered in self._channels:
            if kind == "dependency":
                measured.append(self._dependencies[name].value_at(tick * self._step))
            else:
                measured.append(measure(kind, demand, ready, queued, self._workload))
            value = measured[seen]
            delivered.append(value)
            observations.append(build_observation(name, (build_sample(seen_at, value),)))
        return observations


# how many evaluations between two progress reports: rare enough to cost nothing
PROGRESS_EVERY = 2000


def simulate(
    scenario: Scenario, trace: Trace, progress: Callable[[int, int], None] | None = None
) -> Timeline:
    """Replay ``trace`` through ``scenario``'s rules with the core the daemon uses.

    ``progress(done, total)`` is called every few thousand evaluations and at the end.
    """
    replay = _Replay(scenario, trace, progress)
    if scenario.spec.ladder is not None:
        return _on_ladder(replay, scenario, scenario.spec.ladder)
    pool = ReplicaPool(scenario.initial, scenario.startup_ticks)
    # the tick before the first: the system is taken to have been in the first one's state
    last_ready = pool.ready
    capacity = build_capacity(pool.provisioned, last_ready)
    for tick in range(len(replay.demand)):
        pool.promote(tick)
        if capacity.provisioned != pool.provisioned or capacity.ready != last_ready:
            capacity = build_capacity(pool.provisioned, last_ready)
        decision = replay.decide(tick, capacity, last_ready)
        if decision.desired != capacity.provisioned:  # decision.changes
            pool.scale_to(decision.desired, tick)
        replay.record(tick, decision, pool.provisioned, pool.ready, pool.ready)
        last_ready = pool.ready
    return replay.timeline(startup_ticks=scenario.startup_ticks)


def _on_ladder(replay: _Replay, scenario: Scenario, ladder: Ladder) -> Timeline:
    """The replay on a ladder of tiers (README: Simulation, ladders): as the daemon's
    actuator does, the tier in effect is reported as provisioned and ready and the change
    in flight as the operation, so the core holds until the change completes."""
    server = LadderServer(ladder, scenario.initial, scenario.change_ticks, scenario.downtime_ticks)
    units, serving = array("d"), array("d")
    in_flight: list[str] = []
    not_scaled: list[str] = []
    last_serving = server.serving(0)
    for tick in range(len(replay.demand)):
        server.promote(tick)
        operation = server.in_flight
        capacity = build_capacity(server.current, server.current, operation)
        decision = replay.decide(tick, capacity, last_serving)
        if decision.changes:
            server.change_to(decision.desired, tick)
        last_serving = server.serving(tick)
        replay.record(
            tick, decision, server.asked, server.current if last_serving else 0, last_serving
        )
        units.append(server.units)
        serving.append(last_serving)
        in_flight.append(operation or "")
        not_scaled.append(decision.not_scaled_reason or "")
    return replay.timeline(
        tier_units=tuple(tier.units for tier in ladder.tiers),
        units=units,
        serving=serving,
        in_flight=tuple(in_flight),
        not_scaled=tuple(not_scaled),
        change_ticks=scenario.change_ticks,
    )


class _Replay:
    """What every replay loop shares, whatever the capacity model: the demand, the
    sensors, the core's state, the queue and the columns every timeline has."""

    def __init__(
        self, scenario: Scenario, trace: Trace, progress: Callable[[int, int], None] | None
    ) -> None:
        self._scenario, self._progress = scenario, progress
        self._spec, self._start, self._step = (
            scenario.spec,
            scenario.settings.start,
            scenario.interval,
        )
        self._seconds = scenario.interval.total_seconds()
        self.scale = trace_scale(scenario.settings, trace)
        self.demand = tick_demand(trace, self._seconds, self.scale)
        self._workload = Workload.of(scenario.settings)
        self._sensors = _Sensors(scenario, self._workload)
        self._state = TargetState()
        self._queued = 0.0
        self._failures = 0
        self._recommended, self._desired = array("q"), array("q")
        self._provisioned, self._ready = array("q"), array("q")
        self._minimum, self._maximum = array("q"), array("q")
        self._breakers: list[str] | None = [] if scenario.spec.rule.breaker else None

    def decide(self, tick: int, capacity: Capacity, last_serving: float) -> Decision:
        """Measure the last tick (``last_serving`` served it), decide on ``capacity``, and
        record a change as applied (the simulated actuator accepts every change)."""
        now = self._start + tick * self._step
        # the tick before the first: taken to have been in the first one's state
        last_demand = self.demand[tick - 1 if tick else 0]
        observations = self._sensors.read(tick, now, last_demand, last_serving, self._queued)
        decision, self._state = decide(self._spec, self._state, capacity, observations, now)
        if decision.desired != capacity.provisioned:  # decision.changes
            self._state = record_applied(self._spec, self._state, decision, now)
        for report in decision.inputs:
            if report.error is not None:
                self._failures += 1
                break
        return decision

    def record(
        self, tick: int, decision: Decision, provisioned: int, ready: int, serving: float
    ) -> None:
        """Write the tick's row, and move the queue on by the tick ``serving`` serves."""
        rule = self._spec.rule
        if rule.schedule:  # a SCHEDULE step names a profile's bounds
            low, high = _bounds(decision.steps, rule.minimum, rule.maximum)
        else:
            low, high = rule.minimum, rule.maximum
        self._recommended.append(decision.recommended)
        self._desired.append(decision.desired)
        self._provisioned.append(provisioned)
        self._ready.append(ready)
        self._minimum.append(low)
        self._maximum.append(high)
        if self._breakers is not None:
            self._breakers.append(_open_breakers(decision.steps))
        self._queued = queue_after(
            self._queued, self.demand[tick], serving, self._workload.capacity, self._seconds
        )
        if self._progress is not None and tick % PROGRESS_EVERY == 0:
            self._progress(tick, len(self.demand))

    def timeline(self, **model: Any) -> Timeline:
        if self._progress is not None:
            self._progress(len(self.demand), len(self.demand))
        return Timeline(
            interval=self._seconds,
            capacity=self._scenario.settings.capacity,
            initial=self._scenario.initial,
            scale=self.scale,
            demand=self.demand,
            readings=self._sensors.readings,
            recommended=self._recommended,
            desired=self._desired,
            provisioned=self._provisioned,
            ready=self._ready,
            metric_failures=self._failures,
            minimum=self._minimum,
            maximum=self._maximum,
            breakers_open=None if self._breakers is None else tuple(self._breakers),
            **model,
        )


def _open_breakers(steps: Sequence[Reason]) -> str:
    """The breakers a decision found open, joined by "+" ("" for none)."""
    return "+".join(
        str(step.data["breaker"])
        for step in steps
        if step.code == Step.BREAKER and step.data.get("open")
    )


def _bounds(steps: Sequence[Reason], minimum: int, maximum: int) -> tuple[int, int]:
    """The bounds a decision ran under: a schedule profile's, else the rule's."""
    for step in steps:
        if step.code == Step.SCHEDULE:
            return int(step.data.get("min", minimum)), int(step.data.get("max", maximum))
    return minimum, maximum
