"""Retry-After gates, the write budget and the circuit breaker, on a manual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scalerd.azure.faults import Fault
from scalerd.azure.throttle import CircuitBreaker, RetryAfterGates, WriteBudget
from scalerd.clock import ManualClock

THROTTLED = Fault("SubscriptionRequestsThrottled", "try again later", 429, retry_after=30)
BUSY = Fault("ServerBusy", "metrics backend throttling", 529)
DOWN = Fault("InternalServerError", "oops", 500, unhealthy=True)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# ---------------------------------------------------------------------- gates


def test_a_gate_stays_closed_for_retry_after(clock: ManualClock) -> None:
    gates = RetryAfterGates(clock)
    gates.close("arm/sub", THROTTLED)

    clock.advance(20)
    assert gates.closed_for("arm/sub") == (10.0, THROTTLED)
    assert gates.closed_for("arm/other") is None
    clock.advance(10)
    assert gates.closed_for("arm/sub") is None


def test_without_retry_after_the_backoff_doubles_until_a_success(clock: ManualClock) -> None:
    gates = RetryAfterGates(clock)
    waits = []
    for _ in range(4):
        gates.close("metrics/eastus", BUSY)
        closed = gates.closed_for("metrics/eastus")
        assert closed is not None
        waits.append(closed[0])
        clock.advance(closed[0])

    gates.open("metrics/eastus")
    gates.close("metrics/eastus", BUSY)

    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert gates.closed_for("metrics/eastus") == (1.0, BUSY)


def test_a_shorter_retry_after_never_reopens_a_gate_early(clock: ManualClock) -> None:
    gates = RetryAfterGates(clock)
    gates.close("arm/sub", THROTTLED)
    sooner = Fault("TooManyRequests", "try again in 5s", 429, retry_after=5)
    gates.close("arm/sub", sooner)

    assert gates.closed_for("arm/sub") == (30.0, sooner)


# ---------------------------------------------------------------------- write budget


def test_the_write_budget_allows_a_burst_then_refills_per_hour(clock: ManualClock) -> None:
    budget = WriteBudget(clock, burst=3, per_hour=360)  # one write every 10s

    assert [budget.take("arm/sub") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take("arm/sub") == pytest.approx(10.0)
    assert budget.take("arm/other") == 0.0  # per subscription
    clock.advance(4)
    assert budget.take("arm/sub") == pytest.approx(6.0)  # 0.4 of a token so far
    clock.advance(6)
    assert budget.take("arm/sub") == 0.0
    clock.advance(3600)
    assert [budget.take("arm/sub") for _ in range(4)][-1] > 0  # never more than the burst


# ---------------------------------------------------------------------- circuit breaker


def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(clock, failures=3, reset=timedelta(seconds=60))


def test_the_breaker_opens_after_failures_in_a_row(clock: ManualClock) -> None:
    circuit = breaker(clock)
    circuit.failed(DOWN)
    circuit.failed(DOWN)
    circuit.succeeded()  # the count starts over
    circuit.failed(DOWN)
    circuit.failed(DOWN)
    assert (circuit.state, circuit.admit()) == ("closed", None)

    circuit.failed(DOWN)

    assert circuit.state == "open"
    assert circuit.admit() == (60.0, DOWN)


def test_half_open_after_reset_then_the_trial_decides(clock: ManualClock) -> None:
    circuit = breaker(clock)
    for _ in range(3):
        circuit.failed(DOWN)

    clock.advance(60)
    assert (circuit.state, circuit.admit()) == ("half-open", None)
    circuit.failed(DOWN)  # the trial failed: open for another reset
    assert circuit.admit() == (60.0, DOWN)

    clock.advance(60)
    circuit.succeeded()  # the trial went through
    assert (circuit.state, circuit.admit()) == ("closed", None)
