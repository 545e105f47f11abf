"""[[drain]]: size a queue's consumers for the arrivals plus draining the backlog in time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scalerd.core import Capacity, TargetState, decide

from .build import T0, observe, rule, target

DRAIN = {"backlog": "queue", "arrivals": "incoming", "rate": 50, "within": "2m"}
NO_PACING = {"scale_down": {"stabilization_window": "0s"}}


def decided(current: int, drain: dict[str, object] | None = None, **values: float | None) -> int:
    spec = target(rule(max=1000, drain=[drain or DRAIN], behavior=NO_PACING, tolerance=0))
    decision, _ = decide(spec, TargetState(), Capacity.steady(current), observe(T0, **values), T0)
    return decision.recommended


def test_arrivals_plus_the_backlog_over_the_drain_time() -> None:
    # 300/s arriving and 12,000 waiting, drained in 120 s: (300 + 100) / 50 = 8 replicas
    assert decided(3, queue=12_000, incoming=300) == 8
    # a hair more work needs one more replica
    assert decided(3, queue=12_001, incoming=300) == 9


def test_an_empty_queue_is_sized_for_its_arrivals() -> None:
    assert decided(10, queue=0, incoming=120) == 3


def test_without_arrivals_the_backlog_alone() -> None:
    backlog_only = {"backlog": "queue", "rate": 50, "within": "2m"}
    assert decided(1, backlog_only, queue=12_000) == 2


def test_the_rule_holds_within_tolerance_and_says_its_arithmetic() -> None:
    spec = target(rule(max=100, drain=[DRAIN], tolerance=0.1, behavior=NO_PACING))
    decision, _ = decide(
        spec, TargetState(), Capacity.steady(8), observe(T0, queue=12_000, incoming=330), T0
    )
    [report] = decision.rules
    assert (report.kind, report.proposed, decision.desired) == ("drain", 8, 8)
    assert "(330/s + 12000 / 120s) / 50/s per replica = 8.600" in report.detail


def test_a_failed_metric_abstains_and_forbids_scale_in() -> None:
    spec = target(rule(max=100, drain=[DRAIN], behavior=NO_PACING))
    decision, _ = decide(
        spec, TargetState(), Capacity.steady(8), observe(T0, queue=0, incoming=None), T0
    )
    assert decision.desired == 8
    assert decision.rules[0].proposed is None


def test_config_refuses_a_zero_drain_time() -> None:
    with pytest.raises(ValidationError, match="longer than 0s"):
        rule(max=5, drain=[DRAIN | {"within": "0s"}])


@settings(max_examples=80, deadline=None)
@given(
    backlog=st.floats(0, 1e6),
    arrivals=st.floats(0, 1e4),
    rate=st.floats(0.5, 500),
    within=st.integers(1, 3600),
)
def test_the_proposal_is_the_fewest_replicas_that_drain_in_time(
    backlog: float, arrivals: float, rate: float, within: int
) -> None:
    drain = {"backlog": "queue", "arrivals": "incoming", "rate": rate, "within": f"{within}s"}
    n = decided(1, drain, queue=backlog, incoming=arrivals)
    n = max(n, 1)  # min 1
    # n replicas drain it in time (up to float rounding); n - 1 would not
    assert (
        n * rate * within + 1e-6 * (1 + backlog + arrivals * within) >= arrivals * within + backlog
    )
    if n > 1:
        assert (n - 1) * rate * within < arrivals * within + backlog
    assert n == max(1, math.ceil((arrivals + backlog / within) / rate - 1e-9))
