"""The capacity model's formulas, each checked by hand: metric readings, the fewest
replicas a demand needs, the queue, and replicas that take time to start."""

from __future__ import annotations

import math

import pytest

from scalerd.settings import MetricKind
from scalerd.simulate.model import ReplicaPool, Workload, measure, need, queue_after

# capacity 2 work/s per replica, 0.5 s in service, latency capped at 10 s
WORK = Workload(capacity=2.0, service_time=0.5, latency_cap=10.0)


@pytest.mark.parametrize(
    ("kind", "demand", "ready", "queued", "expected"),
    [
        # 100 x 3 / (2 x 2) = 75
        pytest.param("utilization", 3.0, 2, 0.0, 75.0, id="utilization"),
        # 100 x 10 / (2 x 2) = 250, capped as a CPU is
        pytest.param("utilization", 10.0, 2, 0.0, 100.0, id="utilization capped at 100"),
        pytest.param("utilization", 1.0, 0, 0.0, 100.0, id="utilization, demand, none ready"),
        pytest.param("utilization", 0.0, 0, 0.0, 0.0, id="utilization, idle, none ready"),
        # 10 / 2 = 5 per replica, not capped
        pytest.param("rate", 10.0, 2, 0.0, 5.0, id="rate is not capped"),
        pytest.param("rate", 3.0, 0, 0.0, 3.0, id="rate, none ready: all of it"),
        pytest.param("arrivals", 10.0, 2, 0.0, 10.0, id="arrivals: the demand itself"),
        # Little's law: 3 / 2 per replica x 0.5 s = 0.75 in flight
        pytest.param("concurrency", 3.0, 2, 0.0, 0.75, id="concurrency"),
        # rho = 3 / (2 x 2) = 0.75: 0.5 / (1 - 0.75) = 2 s
        pytest.param("latency", 3.0, 2, 0.0, 2.0, id="latency"),
        pytest.param("latency", 4.0, 2, 0.0, 10.0, id="latency at rho = 1 reads the cap"),
        pytest.param("latency", 1.0, 0, 0.0, 10.0, id="latency, none ready, reads the cap"),
        pytest.param("latency", 0.0, 0, 0.0, 0.5, id="latency, idle: the service time"),
        # nothing waiting: min(3, 2 x 2) x 0.5 = 1.5 in service
        pytest.param("backlog", 3.0, 2, 0.0, 1.5, id="backlog, keeping up: what is in service"),
        # 7 waiting, and while any wait every replica is busy: 7 + 2 x 2 x 0.5
        pytest.param("backlog", 3.0, 2, 7.0, 9.0, id="backlog: waiting plus in service"),
        pytest.param("backlog", 3.0, 0, 7.0, 7.0, id="backlog, none ready: only waiting"),
    ],
)
def test_metric_readings(
    kind: MetricKind, demand: float, ready: int, queued: float, expected: float
) -> None:
    assert measure(kind, demand, ready, queued, WORK) == pytest.approx(expected)


@pytest.mark.parametrize(
    "kind", ["utilization", "rate", "arrivals", "backlog", "concurrency", "latency"]
)
@pytest.mark.parametrize(("demand", "ready"), [(0.0, 0), (5.0, 0), (0.0, 3), (1e9, 1)])
def test_no_reading_is_nan_or_negative(kind: MetricKind, demand: float, ready: int) -> None:
    # the core takes NaN and negatives for metric failures; the model must never make one
    value = measure(kind, demand, ready, 0.0, WORK)

    assert math.isfinite(value)
    assert value >= 0


@pytest.mark.parametrize(
    ("demand", "capacity", "expected"),
    [
        pytest.param(0.0, 1.0, 0, id="no demand"),
        pytest.param(4.0, 2.0, 2, id="exactly two"),
        pytest.param(4.000001, 2.0, 3, id="a little more than two"),
        pytest.param(0.9, 0.3, 4, id="0.3 x 3 is 0.8999999999999999 < 0.9 in floats"),
    ],
)
def test_need_is_the_fewest_replicas_not_under_provisioned(
    demand: float, capacity: float, expected: int
) -> None:
    replicas = need(demand, capacity)

    assert replicas == expected
    # the same comparison that counts under-provisioned time
    assert not demand > replicas * capacity
    assert replicas == 0 or demand > (replicas - 1) * capacity


def test_queue_grows_by_the_shortfall_and_never_goes_below_zero() -> None:
    # 1 replica of capacity 2 against 5 work/s for 10 s: (5 - 2) x 10 = 30 waiting
    assert queue_after(0.0, 5.0, 1, 2.0, 10.0) == 30.0
    # then idle: it drains 2 per second, 20 in 10 s
    assert queue_after(30.0, 0.0, 1, 2.0, 10.0) == 10.0
    assert queue_after(10.0, 0.0, 1, 2.0, 10.0) == 0.0


def test_replicas_are_ready_startup_ticks_after_they_are_asked_for() -> None:
    pool = ReplicaPool(initial=2, startup_ticks=2)

    pool.scale_to(5, tick=3)
    assert (pool.provisioned, pool.ready) == (5, 2)
    pool.promote(4)
    assert pool.ready == 2
    pool.promote(5)
    assert (pool.provisioned, pool.ready) == (5, 5)


def test_with_no_startup_replicas_are_ready_at_once() -> None:
    pool = ReplicaPool(initial=1, startup_ticks=0)

    pool.scale_to(4, tick=0)

    assert (pool.provisioned, pool.ready) == (4, 4)


def test_scale_in_removes_starting_replicas_first_and_at_once() -> None:
    pool = ReplicaPool(initial=2, startup_ticks=2)
    pool.scale_to(4, tick=0)  # 2 ready, 2 starting (due at tick 2)
    pool.scale_to(5, tick=1)  # 1 more starting (due at tick 3)

    pool.scale_to(3, tick=1)  # the newest two starting go: 2 ready, 1 starting

    assert (pool.provisioned, pool.ready) == (3, 2)
    pool.promote(2)
    assert pool.ready == 3
    pool.scale_to(1, tick=2)
    assert (pool.provisioned, pool.ready) == (1, 1)
