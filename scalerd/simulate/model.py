"""The capacity model a replay runs against: replicas that take time to start, a queue,
and the metrics the rules read, all derived from demand (work per second).

Every formula is here, so "why did the rule see 100?" has one place to look. None of
them ever produces NaN or a negative number: to the core those are metric failures, and
a replay must not invent failures the real system would not have.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ..core.rules import Rule
from ..settings import MetricKind, SimulateSettings

__all__ = [
    "ReplicaPool",
    "UnknownMetric",
    "Workload",
    "infer_kind",
    "measure",
    "need",
    "queue_after",
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


def measure(
    kind: MetricKind, demand: float, ready: int, queued: float, workload: Workload
) -> float:
    """What a metric of ``kind`` reads while ``ready`` replicas face ``demand``.

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


def queue_after(queued: float, demand: float, ready: int, capacity: float, seconds: float) -> float:
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
    named = _kind_from_name(metric)
    if named is None:
        raise UnknownMetric(
            f"cannot tell what metric {metric!r} measures: say it in [simulate.metrics], "
            "e.g. '\""
            + metric
            + '" = "rate"\' (utilization, rate, arrivals, backlog, concurrency or latency)'
        )
    return named, "the metric's name"
