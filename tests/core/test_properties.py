"""Invariants of ``decide`` over random rules and random metric histories (hypothesis).

The rate-limit property is checked against the history of applied changes, not by calling
the core's own limit functions: at every decision, capacity may not exceed the capacity
``period`` ago plus the policy's allowance (or the current capacity, whichever is larger).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scalerd.core import Capacity, Observation, Rule, TargetState, decide, record_applied

from .build import T0, target

TICK = 15


@dataclass(frozen=True)
class Scenario:
    minimum: int
    maximum: int
    start: int
    pods: int
    percent: int
    period: int
    values: tuple[float | None, ...]
    ready_lag: tuple[int, ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    minimum = draw(st.integers(1, 10))
    maximum = draw(st.integers(minimum, 60))
    length = draw(st.integers(1, 40))
    return Scenario(
        minimum=minimum,
        maximum=maximum,
        start=draw(st.integers(0, 80)),
        pods=draw(st.integers(1, 10)),
        percent=draw(st.integers(1, 300)),
        period=draw(st.sampled_from([15, 30, 60, 120])),
        values=tuple(
            draw(
                st.lists(
                    st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
                    min_size=length,
                    max_size=length,
                )
            )
        ),
        ready_lag=tuple(draw(st.lists(st.integers(0, 5), min_size=length, max_size=length))),
    )


def _rule(s: Scenario) -> Rule:
    policies = [
        {"type": "pods", "value": s.pods, "period": f"{s.period}s"},
        {"type": "percent", "value": s.percent, "period": f"{s.period}s"},
    ]
    return Rule.model_validate(
        {
            "min": s.minimum,
            "max": s.maximum,
            "track": [{"metric": "cpu", "type": "utilization", "target": 60}],
            "behavior": {
                "scale_up": {"policies": policies, "stabilization_window": "0s"},
                "scale_down": {"policies": policies, "stabilization_window": "30s"},
            },
        }
    )


def _replay(s: Scenario) -> list[tuple[datetime, int, int, float | None]]:
    """(time, capacity before, desired, metric) for every decision of the scenario."""
    spec = target(_rule(s), max_age="1m")
    state = TargetState()
    current = s.start
    out = []
    for index, (value, lag) in enumerate(zip(s.values, s.ready_lag, strict=True)):
        now = T0 + timedelta(seconds=TICK * index)
        observations = [
            Observation.failed("cpu", "down")
            if value is None
            else Observation.value("cpu", now, value)
        ]
        capacity = Capacity(current, max(0, current - lag))
        decision, state = decide(spec, state, capacity, observations, now)
        out.append((now, current, decision.desired, value))
        if decision.changes:
            state = record_applied(spec, state, decision, now)
            current = decision.desired
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_result_is_within_bounds(s: Scenario) -> None:
    for _, _, desired, _ in _replay(s):
        assert s.minimum <= desired <= s.maximum


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_scale_in_on_a_failed_metric(s: Scenario) -> None:
    for _, before, desired, value in _replay(s):
        if value is None:
            assert desired >= min(before, s.maximum)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_step_exceeds_the_rate_policy(s: Scenario) -> None:
    history = _replay(s)
    period = timedelta(seconds=s.period)

    def capacity_at(moment: datetime) -> int:
        # capacity after every change applied at or before `moment`
        capacity = s.start
        for when, _, desired, _ in history:
            if when <= moment:
                capacity = desired
        return capacity

    for when, before, desired, _ in history:
        start = capacity_at(when - period)
        up_allowance = max(start + s.pods, math.ceil(start * (1 + s.percent / 100)))
        down_allowance = min(start - s.pods, int(start * (1 - s.percent / 100)))
        if desired > before:
            assert desired <= max(before, up_allowance, s.minimum)
        if desired < before:
            assert desired >= min(before, max(down_allowance, 0), s.maximum)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_same_inputs_same_decision(s: Scenario) -> None:
    spec = target(_rule(s), max_age="1m")
    now = T0
    observations = [Observation.value("cpu", now, s.values[0] or 0.0)]
    first, state_a = decide(spec, TargetState(), Capacity.steady(s.start), observations, now)
    second, state_b = decide(spec, TargetState(), Capacity.steady(s.start), observations, now)
    assert first == second
    assert state_a == state_b
