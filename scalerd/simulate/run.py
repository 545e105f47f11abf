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
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core import Capacity, Observation, Sample, TargetState, decide, record_applied
from ..core.model import Reason, Step
from ..core.rules import Ladder
from ..settings import SimulateSettings
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
    demand: array[float] = array("d")
    row = 0
    for tick in range(ticks):
        low = trace.start + tick * interval
        high = low + interval
        while ends[row] <= low:
            row += 1
        work = 0.0
        covering = row
        while covering < len(times) and times[covering] < high:
            work += values[covering] * (min(high, ends[covering]) - max(low, times[covering]))
            covering += 1
        demand.append(round(work * scale / interval, DEMAND_DECIMALS))
    return demand


class _Sensors:
    """Measures every metric the rules read at each tick, and hands the rules the
    measurement taken ``delay`` ticks earlier, stamped with the time it was taken."""

    def __init__(self, scenario: Scenario, workload: Workload) -> None:
        self._kinds = [(binding.name, binding.kind) for binding in scenario.metrics]
        self._measured: list[list[float]] = [[] for _ in self._kinds]
        self.readings = {name: array("d") for name, _ in self._kinds}
        self._delivered = list(self.readings.values())
        self._workload = workload
        self._start, self._step = scenario.settings.start, scenario.interval
        self._delay = scenario.delay_ticks

    def read(self, tick: int, demand: float, ready: float, queued: float) -> list[Observation]:
        """Measure ``demand`` on ``ready`` replicas (the last tick's; on a ladder, the
        serving units) and ``queued`` work."""
        seen = max(tick - self._delay, 0)
        seen_at = self._start + (tick - self._delay) * self._step
        observations = []
        for (name, kind), measured, delivered in zip(
            self._kinds, self._measured, self._delivered, strict=True
        ):
            measured.append(measure(kind, demand, ready, queued, self._workload))
            delivered.append(measured[seen])
            observations.append(Observation(name, (Sample(seen_at, measured[seen]),)))
        return observations


# how many evaluations between two progress reports: rare enough to cost nothing
PROGRESS_EVERY = 2000


def simulate(
    scenario: Scenario, trace: Trace, progress: Callable[[int, int], None] | None = None
) -> Timeline:
    """Replay ``trace`` through ``scenario``'s rules with the core the daemon uses.

    ``progress(done, total)`` is called every few thousand evaluations and at the end.
    """
    if scenario.spec.ladder is not None:
        return _simulate_ladder(scenario, scenario.spec.ladder, trace, progress)
    settings, spec, step = scenario.settings, scenario.spec, scenario.interval
    scale = trace_scale(settings, trace)
    demand = tick_demand(trace, step.total_seconds(), scale)
    workload = Workload.of(settings)
    sensors = _Sensors(scenario, workload)
    pool = ReplicaPool(scenario.initial, scenario.startup_ticks)
    columns: tuple[array[int], ...] = tuple(array("q") for _ in range(6))
    recommended, desired, provisioned, ready, minimum, maximum = columns
    state = TargetState()
    queued = 0.0
    failures = 0
    # the tick before the first: the system is taken to have been in the first one's state
    last_demand, last_ready = demand[0], pool.ready
    for tick, load in enumerate(demand):
        now = settings.start + tick * step
        pool.promote(tick)
        observations = sensors.read(tick, last_demand, last_ready, queued)
        capacity = Capacity(pool.provisioned, last_ready)
        decision, state = decide(spec, state, capacity, observations, now)
        if decision.changes:
            pool.scale_to(decision.desired, tick)
            state = record_applied(spec, state, decision, now)
        failures += any(report.error is not None for report in decision.inputs)
        recommended.append(decision.recommended)
        desired.append(decision.desired)
        provisioned.append(pool.provisioned)
        ready.append(pool.ready)
        low, high = _bounds(decision.steps, spec.rule.minimum, spec.rule.maximum)
        minimum.append(low)
        maximum.append(high)
        queued = queue_after(queued, load, pool.ready, workload.capacity, step.total_seconds())
        last_demand, last_ready = load, pool.ready
        if progress is not None and tick % PROGRESS_EVERY == 0:
            progress(tick, len(demand))
    if progress is not None:
        progress(len(demand), len(demand))
    return Timeline(
        interval=step.total_seconds(),
        capacity=settings.capacity,
        initial=scenario.initial,
        scale=scale,
        demand=demand,
        readings=sensors.readings,
        recommended=recommended,
        desired=desired,
        provisioned=provisioned,
        ready=ready,
        metric_failures=failures,
        startup_ticks=scenario.startup_ticks,
        minimum=minimum,
        maximum=maximum,
    )


def _simulate_ladder(
    scenario: Scenario,
    ladder: Ladder,
    trace: Trace,
    progress: Callable[[int, int], None] | None,
) -> Timeline:
    """The replay loop on a ladder of tiers (README: Simulation, ladders): the daemon's
    actuator reports the tier in effect, as provisioned and ready, and the change in
    flight as its operation, so the core holds until the change completes."""
    settings, spec, step = scenario.settings, scenario.spec, scenario.interval
    scale = trace_scale(settings, trace)
    demand = tick_demand(trace, step.total_seconds(), scale)
    workload = Workload.of(settings)
    sensors = _Sensors(scenario, workload)
    server = LadderServer(ladder, scenario.initial, scenario.change_ticks, scenario.downtime_ticks)
    columns: tuple[array[int], ...] = tuple(array("q") for _ in range(6))
    recommended, desired, provisioned, ready, minimum, maximum = columns
    units, serving = array("d"), array("d")
    in_flight: list[str] = []
    not_scaled: list[str] = []
    state = TargetState()
    queued = 0.0
    failures = 0
    last_demand, last_serving = demand[0], server.serving(0)
    for tick, load in enumerate(demand):
        now = settings.start + tick * step
        server.promote(tick)
        observations = sensors.read(tick, last_demand, last_serving, queued)
        operation = server.in_flight
        capacity = Capacity(server.current, server.current, operation)
        decision, state = decide(spec, state, capacity, observations, now)
        if decision.changes:
            server.change_to(decision.desired, tick)
            state = record_applied(spec, state, decision, now)
        failures += any(report.error is not None for report in decision.inputs)
        serves = server.serving(tick)
        recommended.append(decision.recommended)
        desired.append(decision.desired)
        provisioned.append(server.asked)
        ready.append(server.current if serves > 0 else 0)
        units.append(server.units)
        serving.append(serves)
        in_flight.append(operation or "")
        not_scaled.append(decision.not_scaled_reason or "")
        low, high = _bounds(decision.steps, spec.rule.minimum, spec.rule.maximum)
        minimum.append(low)
        maximum.append(high)
        queued = queue_after(queued, load, serves, workload.capacity, step.total_seconds())
        last_demand, last_serving = load, serves
        if progress is not None and tick % PROGRESS_EVERY == 0:
            progress(tick, len(demand))
    if progress is not None:
        progress(len(demand), len(demand))
    return Timeline(
        interval=step.total_seconds(),
        capacity=settings.capacity,
        initial=scenario.initial,
        scale=scale,
        demand=demand,
        readings=sensors.readings,
        recommended=recommended,
        desired=desired,
        provisioned=provisioned,
        ready=ready,
        metric_failures=failures,
        minimum=minimum,
        maximum=maximum,
        tier_units=tuple(tier.units for tier in ladder.tiers),
        units=units,
        serving=serving,
        in_flight=tuple(in_flight),
        not_scaled=tuple(not_scaled),
        change_ticks=scenario.change_ticks,
    )


def _bounds(steps: Sequence[Reason], minimum: int, maximum: int) -> tuple[int, int]:
    """The bounds a decision ran under: a schedule profile's, else the rule's."""
    for step in steps:
        if step.code == Step.SCHEDULE:
            return int(step.data.get("min", minimum)), int(step.data.get("max", maximum))
    return minimum, maximum
