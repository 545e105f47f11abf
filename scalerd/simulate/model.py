"""The capacity model a replay runs against: replicas that take time to start (or a ladder
of tiers whose changes take time), a queue, and the metrics the rules read, all derived
from demand (work per second).

Every formula is here, so "why did the rule see 100?" has one place to look. None of
them ever produces NaN or a negative number: to the core those are metric failures, and
a replay must not invent failures the real system would not have.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.rules import Ladder, Rule
from ..settings import MetricKind, SimulateSettings

__all__ = [
    "LadderServer",
    "ReplicaPool",
    "UnknownMetric",
    "Workload",
    "infer_kind",
    "measure",
    "need",
    "queue_after",
    "tier_need",
]


@dataclass(frozen=True, slots=True)
class Workload:
    """The per-replica facts the metric formulas need, as plain floats for the hot loop."""

    capacity: float
    service_time: float
    latency_cap: float

    @classmethod
    def of(cls, settings: SimulateSettings) -> Workload:
        return cls(settings.capacity, settings.service_time_s, settings.latency_cap.total_seconds())


def need(demand: float, capacity: float) -> int:
    """The fewest replicas that serve ``demand``: the smallest n with n x capacity ≥ demand.

    Written as the same comparison that counts under-provisioned time (demand > ready x
    capacity), so the clairvoyant schedule is never under-provisioned by rounding.
    """
    replicas = math.ceil(demand / capacity)
    while replicas > 0 and (replicas - 1) * capacity >= demand:
        replicas -= 1
    while replicas * capacity < demand:
        replicas += 1
    return replicas


def tier_need(demand: float, capacity: float, units: Sequence[float]) -> float:
    """The units of the smallest tier that serves ``demand`` (units x capacity ≥ demand,
    the comparison that counts under-provisioned time), or of the largest if none does."""
    return min((size for size in units if size * capacity >= demand), default=max(units))


def measure(
    kind: MetricKind, demand: float, ready: float, queued: float, workload: Workload
) -> float:
    """What a metric of ``kind`` reads while ``ready`` replicas face ``demand`` (on a
    ladder, ``ready`` is the serving tier's units: every formula reads it the same way).

    * ``utilization`` — percent of the ready replicas' capacity in use, capped at 100 as a
      CPU is: ``min(100, 100 x demand / (ready x capacity))``; with no ready replica, 100
      if there is demand, else 0. The cap is why tracking CPU under-reacts to overload.
    * ``rate`` — work per second per ready replica, not capped: ``demand / ready``; with no
      ready replica, all of ``demand`` (it waits for the first one).
    * ``arrivals`` — work arriving per second in total, not per replica: ``demand`` itself,
      as a load balancer's request count or a queue's incoming-message rate reports it.
    * ``concurrency`` — requests in flight per ready replica by Little's law:
      ``rate x service_time``.
    * ``latency`` — response time in seconds, M/M/1-like: ``service_time / (1 - rho)`` with
      ``rho = demand / (ready x capacity)``, capped at ``latency_cap`` (which it reads at
      rho ≥ 1, and with demand but no ready replica); with no demand, ``service_time``.
    * ``backlog`` — the queue's length, a total across replicas: the work waiting
      (``queued``, see :func:`queue_after`) plus the work in service (served rate x
      service_time), as a Service Bus active-message count includes locked messages.
    """
    if kind == "utilization":
        if ready == 0:
            return 100.0 if demand > 0 else 0.0
        return min(100.0, 100.0 * demand / (ready * workload.capacity))
    if kind == "rate":
        return demand / ready if ready else demand
    if kind == "arrivals":
        return demand
    if kind == "concurrency":
        return (demand / ready if ready else demand) * workload.service_time
    if kind == "latency":
        serving = ready * workload.capacity
        if demand <= 0:
            return workload.service_time
        if demand >= serving:
            return workload.latency_cap
        return min(workload.latency_cap, workload.service_time / (1.0 - demand / serving))
    serving = ready * workload.capacity
    served = serving if queued > 0 else min(demand, serving)
    return queued + served * workload.service_time


def queue_after(
    queued: float, demand: float, ready: float, capacity: float, seconds: float
) -> float:
    """The work waiting ``seconds`` later: it grows by (demand - ready x capacity) per
    second and never falls below 0. Rates are constant within a tick, so this is exact."""
    return max(0.0, queued + (demand - ready * capacity) * seconds)


class ReplicaPool:
    """Replicas asked for, and the tick at which each starts serving.

    A new replica is ready ``startup_ticks`` evaluation ticks after it was asked for:
    readiness is seen at ticks, so the startup time is rounded up to whole intervals. A
    removed replica is gone at once, and the ones still starting go first (a Kubernetes
    ReplicaSet deletes unready pods first, and so would anyone paying for them).
    """

    __slots__ = ("_starting", "_startup_ticks", "ready", "starting")

    def __init__(self, initial: int, startup_ticks: int) -> None:
        self.ready = initial
        self.starting = 0
        self._startup_ticks = startup_ticks
        # (tick at which they are ready, how many), in the order they were asked for
        self._starting: deque[tuple[int, int]] = deque()

    @property
    def provisioned(self) -> int:
        return self.ready + self.starting

    def promote(self, tick: int) -> None:
        """Make every replica due by ``tick`` ready."""
        while self._starting and self._starting[0][0] <= tick:
            _, count = self._starting.popleft()
            self.starting -= count
            self.ready += count

    def scale_to(self, replicas: int, tick: int) -> None:
        change = replicas - self.provisioned
        if change > 0:
            self._starting.append((tick + self._startup_ticks, change))
            self.starting += change
            self.promote(tick)
            return
        remove = -change
        while remove and self._starting:
            due, count = self._starting.pop()
            taken = min(count, remove)
            if taken < count:
                self._starting.append((due, count - taken))
            self.starting -= taken
            remove -= taken
        self.ready -= remove


class LadderServer:
    """A resource on a ladder of tiers: the tier in effect, and the change in flight.

    A change asked for at tick ``t`` completes at ``t + change_ticks``: until then the old
    tier serves and is the one billed. A change to or from a tier that restarts the
    resource serves nothing for the last ``downtime_ticks`` of it. One change at a time:
    the core holds while one is in flight, as it does on the daemon's ``operation``.
    """

    __slots__ = ("_change_ticks", "_done_at", "_downtime_ticks", "_target", "current", "ladder")

    def __init__(
        self, ladder: Ladder, initial: int, change_ticks: int, downtime_ticks: int
    ) -> None:
        self.ladder = ladder
        self.current = initial
        self._change_ticks = change_ticks
        self._downtime_ticks = downtime_ticks
        self._target: int | None = None
        self._done_at = 0

    @property
    def asked(self) -> int:
        """The tier asked for: the one in flight, else the one in effect."""
        return self.current if self._target is None else self._target

    @property
    def in_flight(self) -> str | None:
        """The change in flight, named as the daemon's ``operation`` would be."""
        if self._target is None:
            return None
        return f"tier change to {self.ladder.tier(self._target).name}"

    @property
    def units(self) -> float:
        """The units of the tier in effect: what is billed."""
        return self.ladder.units(self.current)

    def serving(self, tick: int) -> float:
        """The units serving during ``tick``: none while a restart is under way."""
        if self._target is not None and tick >= self._done_at - self._downtime_ticks:
            restarts = (
                self.ladder.tier(self.current).restarts or self.ladder.tier(self._target).restarts
            )
            if restarts:
                return 0.0
        return self.units

    def promote(self, tick: int) -> None:
        """Complete the change in flight if it is due by ``tick``."""
        if self._target is not None and self._done_at <= tick:
            self.current, self._target = self._target, None

    def change_to(self, position: int, tick: int) -> None:
        self._target, self._done_at = position, tick + self._change_ticks
        self.promote(tick)


class UnknownMetric(ValueError):
    """A metric whose kind can be neither read from ``[simulate.metrics]`` nor inferred."""


# Checked in order: the first hint found in the lower-cased name decides. Latency and
# concurrency come before rate so that "requests in flight" is not read as a rate.
_NAME_HINTS: tuple[tuple[tuple[str, ...], MetricKind], ...] = (
    (("cpu", "memory", "percent", "utiliz", "utilis"), "utilization"),
    (("latency", "response", "duration"), "latency"),
    (
        ("concurren", "in flight", "in-flight", "inflight", "in_flight", "connections"),
        "concurrency",
    ),
    (("queue", "backlog", "message", "depth", "pending"), "backlog"),
    (("arrival", "incoming", "demand"), "arrivals"),
    (("request", "rps", "rate", "throughput", "per second", "per_second"), "rate"),
)


def _kind_from_name(metric: str) -> MetricKind | None:
    lowered = metric.lower()
    for hints, kind in _NAME_HINTS:
        if any(hint in lowered for hint in hints):
            return kind
    return None


def infer_kind(rule: Rule, metric: str) -> tuple[MetricKind, str]:
    """What ``metric`` most likely is, from the first rule that reads it, and why.

    A tracked metric's ``type`` says most: ``utilization`` is a utilisation; a ``total``
    is a queue length unless its name says it is a rate (then it is the arrivals); an
    ``average`` is a per-replica rate unless its name says it is a concurrency or a
    latency. Threshold and step rules only have the name to go on.
    """
    for track in rule.track:
        if track.metric != metric:
            continue
        if track.type == "utilization":
            return "utilization", "[[track]] type utilization"
        named = _kind_from_name(metric)
        if track.type == "total":
            if named in ("rate", "arrivals"):
                return "arrivals", "[[track]] type total, and the name says it is an arrival rate"
            return "backlog", "[[track]] type total"
        if named in ("concurrency", "latency"):
            return named, f"[[track]] type average, and the name says {named}"
        return "rate", "[[track]] type average"
    for drain in rule.drain:
        if drain.backlog == metric:
            return "backlog", "[[drain]] backlog"
        if drain.arrivals == metric:
            return "arrivals", "[[drain]] arrivals"
    named = _kind_from_name(metric)
    if named is None:
        raise UnknownMetric(
            f"cannot tell what metric {metric!r} measures: say it in [simulate.metrics], "
            "e.g. '\""
            + metric
            + '" = "rate"\' (utilization, rate, arrivals, backlog, concurrency or latency)'
        )
    return named, "the metric's name"
