"""Rate policies and bounds: every case of the Kubernetes HPA controller's
``TestScalingWithRules`` (pkg/controller/podautoscaler/horizontal_test.go), plus the limit
tests and the scaling-policies example of the HPA documentation.

Policies are written as in the Go test: ``(pods, pods_period, percent, percent_period)``,
select Max, a Pods policy when pods != 0 and a Percent policy when percent != 0; ``None``
means the Kubernetes defaults. Events ``{1, 5, 9}/120`` are spread as the Go test's
``generateEventsUniformDistribution``: ages 100 s, 60 s and 20 s.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from scalerd.core import Capacity, Reason, ScaleEvent, Step, TargetState
from scalerd.core.bounds import Bounds, clamp
from scalerd.core.limit import rate_limit

from .build import T0, Run, behavior, rule, target

NOW = T0 + timedelta(hours=1)

Rules = tuple[int, int, int, int] | None


def _scaling_rules(rules: Rules) -> dict[str, Any]:
    if rules is None:
        return {}
    pods, pods_period, percent, percent_period = rules
    policies = []
    if pods:
        policies.append({"type": "pods", "value": pods, "period": f"{pods_period}s"})
    if percent:
        policies.append({"type": "percent", "value": percent, "period": f"{percent_period}s"})
    return {"select": "max", "policies": policies}


def _events(changes: tuple[int, ...], period: int, up: bool) -> tuple[ScaleEvent, ...]:
    segment = period / len(changes) if changes else 0
    events = []
    for index, change in enumerate(changes):
        when = NOW - timedelta(seconds=period - segment * (index + 1) + segment / 2)
        events.append(
            ScaleEvent(when, 100, 100 + change) if up else ScaleEvent(when, 100 + change, 100)
        )
    return tuple(events)


@dataclass(frozen=True)
class Case:
    up_events: tuple[int, ...]
    down_events: tuple[int, ...]
    minimum: int
    maximum: int
    up: Rules
    down: Rules
    current: int
    desired: int
    expected: int
    condition: str


E = ()
CASES = [
    pytest.param(Case(E, E, 3, 8, None, None, 5, 7, 7, "DesiredWithinRange"), id="within range"),
    pytest.param(Case(E, E, 2, 8, None, None, 3, 1, 2, "TooFewReplicas"), id="below minReplicas"),
    pytest.param(
        Case(E, E, 0, 10, None, None, 1, 0, 0, "DesiredWithinRange"),
        id="within range when minReplicas is 0",
    ),
    # default up: max(20 + 4, 20 x 2) = 40 is above max 10
    pytest.param(
        Case(E, E, 1, 10, None, None, 20, 1000, 10, "TooManyReplicas"),
        id="maxReplicas below scaleUpLimit",
    ),
    pytest.param(
        Case(E, E, 100, 150, None, None, 100, 1000, 150, "TooManyReplicas"),
        id="desired above maxReplicas",
    ),
    # ceil(3 x 1.01) = 4
    pytest.param(
        Case(E, E, 1, 2000, (0, 0, 1, 60), None, 3, 1000, 4, "ScaleUpLimit"),
        id="scaleUpLimit below maxReplicas",
    ),
    # max(10 + 4, ceil(10 x 2)) = 20
    pytest.param(
        Case(E, E, 1, 1000, None, None, 10, 50, 20, "ScaleUpLimit"),
        id="scaleUp with default behavior",
    ),
    # max(10 + 100, 20) = 110
    pytest.param(
        Case(E, E, 1, 1000, (100, 60, 100, 60), None, 10, 500, 110, "ScaleUpLimit"),
        id="pods policy larger than percent",
    ),
    # max(10 + 2, 20) = 20
    pytest.param(
        Case(E, E, 1, 1000, (2, 60, 100, 60), None, 10, 500, 20, "ScaleUpLimit"),
        id="percent policy larger than pods",
    ),
    pytest.param(
        Case(E, E, 1, 1000, (100, 60, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
        id="large pods policy",
    ),
    pytest.param(
        Case(E, E, 1, 1000, (10000, 60, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
        id="very large pods policy",
    ),
    pytest.param(
        Case(E, E, 1, 1000, (30, 60, 0, 0), None, 10, 50, 40, "ScaleUpLimit"),
        id="pod policy limitation",
    ),
    pytest.param(
        Case(E, E, 1, 1000, (0, 0, 200, 60), None, 10, 50, 30, "ScaleUpLimit"),
        id="percent policy limitation",
    ),
    # down, select max = the larger change: min(100 - 20, int(100 x 0.99)) = 80
    pytest.param(
        Case(E, E, 1, 1000, None, (20, 60, 1, 60), 100, 2, 80, "ScaleDownLimit"),
        id="scaleDown percent larger than pods",
    ),
    pytest.param(
        Case(E, E, 1, 1000, None, (2, 60, 1, 60), 100, 2, 98, "ScaleDownLimit"),
        id="scaleDown pods larger than percent",
    ),
    pytest.param(
        Case(E, E, 1, 1000, None, (100, 60, 0, 0), 10, 0, 1, "TooFewReplicas"),
        id="scaleDown MinReplicas with large pods",
    ),
    pytest.param(
        Case(E, E, 5, 1000, None, (0, 0, 100, 60), 10, 2, 5, "TooFewReplicas"),
        id="scaleDown MinReplicas with large percent",
    ),
    pytest.param(
        Case(E, E, 1, 1000, None, (5, 60, 0, 0), 10, 2, 5, "ScaleDownLimit"),
        id="scaleDown pod policy limitation",
    ),
    pytest.param(
        Case(E, E, 1, 1000, None, (0, 0, 50, 60), 10, 5, 5, "DesiredWithinRange"),
        id="scaleDown percent limitation",
    ),
    # 200 < 100 - 15 + 300 (only the 20-s-old event is inside 60 s: from 91, +300)
    pytest.param(
        Case((1, 5, 9), E, 1, 200, (300, 60, 0, 0), None, 100, 500, 200, "TooManyReplicas"),
        id="max with large pods policy and events",
    ),
    pytest.param(
        Case((1, 5, 9), E, 1, 200, (0, 0, 10000, 60), None, 100, 500, 200, "TooManyReplicas"),
        id="max with large percent policy and events",
    ),
    # 120 s ago we had 100 - 15 = 85; 85 + 5 = 90 < 100, so the limit is raised to current
    pytest.param(
        Case((1, 5, 9), E, 1, 1000, (5, 120, 0, 0), None, 100, 500, 100, "ScaleUpLimit"),
        id="many recent scale ups",
    ),
    # 100 - 15 + 150
    pytest.param(
        Case((1, 5, 9), E, 1, 1000, (150, 120, 0, 0), None, 100, 500, 235, "ScaleUpLimit"),
        id="pod policy and previous scale ups",
    ),
    # (100 - 15) x 3
    pytest.param(
        Case((1, 5, 9), E, 1, 1000, (0, 0, 200, 120), None, 100, 500, 255, "ScaleUpLimit"),
        id="percent policy and previous scale ups",
    ),
    # period start 6 - 4 + 2 = 4; ceil(4 x 4) = 16
    pytest.param(
        Case((4,), (2,), 1, 1000, (0, 0, 300, 300), None, 6, 24, 16, "ScaleUpLimit"),
        id="percent policy and previous up and down",
    ),
    pytest.param(
        Case(E, (1, 5, 9), 1, 1000, None, None, 10, 5, 5, "DesiredWithinRange"),
        id="scaleDown default policy and previous events",
    ),
    # 100 + 15 - 115 = 0, raised to min 1
    pytest.param(
        Case(E, (1, 5, 9), 1, 1000, None, (115, 120, 0, 0), 100, 0, 1, "TooFewReplicas"),
        id="scaleDown min 1 with large pods and events",
    ),
    pytest.param(
        Case(E, (1, 5, 9), 5, 1000, None, (130, 120, 0, 0), 100, 0, 5, "TooFewReplicas"),
        id="scaleDown min 5 with large pods and events",
    ),
    # 100% removal is always to 0: limited by min
    pytest.param(
        Case(E, (1, 5, 9), 5, 1000, None, (0, 0, 100, 120), 100, 2, 5, "TooFewReplicas"),
        id="scaleDown min with large percent and events",
    ),
    # 100 + 15 - 5 = 110 > current: keep 100
    pytest.param(
        Case(E, (1, 5, 9), 1, 1000, None, (5, 120, 0, 0), 100, 2, 100, "ScaleDownLimit"),
        id="scaleDown pod limitation and events",
    ),
    # int((100 + 12) x 0.5) = 56
    pytest.param(
        Case(E, (2, 4, 6), 1, 1000, None, (0, 0, 50, 120), 100, 0, 56, "ScaleDownLimit"),
        id="scaleDown percent limitation and events",
    ),
    # period start 10 - 2 + 4 = 12; int(12 x 0.5) = 6
    pytest.param(
        Case((2,), (4,), 1, 1000, None, (0, 0, 50, 180), 10, 1, 6, "ScaleDownLimit"),
        id="scaleDown percent and previous up and down",
    ),
    # int((100 + 30) x 0.9) = 117 > current: keep 100
    pytest.param(
        Case(E, (10, 10, 10), 1, 1000, None, (0, 0, 10, 120), 100, 0, 100, "ScaleDownLimit"),
        id="previous events prevent scale down",
    ),
    # int((10 + 30) x -9) = -360 < desired 5
    pytest.param(
        Case(E, (10, 10, 10), 1, 1000, None, (0, 0, 1000, 120), 10, 5, 5, "DesiredWithinRange"),
        id="previous events still allow scale down",
    ),
    pytest.param(
        Case(
            (8, 12, 9, 11), E, 1, 1000, (1000, 60, 0, 0), None, 100, 200, 200, "DesiredWithinRange"
        ),
        id="outdated events, one policy, up",
    ),
    pytest.param(
        Case(
            (8, 12, 9, 11),
            E,
            1,
            1000,
            (1000, 120, 100, 60),
            None,
            100,
            200,
            200,
            "DesiredWithinRange",
        ),
        id="events not outdated, two policies, up",
    ),
    pytest.param(
        Case(
            (8, 12, 9, 11),
            E,
            1,
            1000,
            (1000, 30, 100, 60),
            None,
            100,
            200,
            200,
            "DesiredWithinRange",
        ),
        id="events outdated, two policies, up",
    ),
    pytest.param(
        Case(E, (8, 12, 9, 11), 1, 1000, None, (1000, 60, 0, 0), 100, 5, 5, "DesiredWithinRange"),
        id="outdated events, one policy, down",
    ),
    pytest.param(
        Case(
            E, (8, 12, 9, 11), 1, 1000, None, (1000, 120, 100, 60), 100, 5, 5, "DesiredWithinRange"
        ),
        id="events not outdated, two policies, down",
    ),
    pytest.param(
        Case(
            E, (8, 12, 9, 11), 1, 1000, None, (1000, 30, 100, 60), 100, 5, 5, "DesiredWithinRange"
        ),
        id="events outdated, two policies, down",
    ),
]

_CONDITIONS = {
    Step.SCALE_UP_LIMIT: "ScaleUpLimit",
    Step.SCALE_DOWN_LIMIT: "ScaleDownLimit",
    Step.TOO_MANY: "TooManyReplicas",
    Step.TOO_FEW: "TooFewReplicas",
}


def _limit_and_bound(case: Case) -> tuple[int, str]:
    rules = behavior(scale_up=_scaling_rules(case.up), scale_down=_scaling_rules(case.down))
    events = _events(case.up_events, 120, up=True) + _events(case.down_events, 120, up=False)
    steps: list[Reason] = []
    value = case.desired
    limited = rate_limit(value, case.current, events, rules, NOW)
    if limited is not None:
        steps.append(limited)
        value = limited.after
    bounded = clamp(value, Bounds(case.minimum, case.maximum, None), floor=0)
    if bounded is not None:
        steps.append(bounded)
        value = bounded.after
    moved = [step for step in steps if step.before != step.after]
    return value, _CONDITIONS[moved[-1].code] if moved else "DesiredWithinRange"


@pytest.mark.parametrize("case", CASES)
def test_kubernetes_scaling_with_rules_table(case: Case) -> None:
    assert _limit_and_bound(case) == (case.expected, case.condition)


@pytest.mark.parametrize(
    ("current", "desired", "expected"),
    [
        # select Min, Pods 2/60 s and Percent 50/60 s: up from 1 = min(1 + 2, ceil(1.5)) = 2
        pytest.param(1, 100, 2, id="calculateScaleUpLimit, select min"),
        # down from 5 = max(5 - 2, int(2.5)) = 3 (the smaller change)
        pytest.param(5, 0, 3, id="calculateScaleDownLimit, select min"),
    ],
)
def test_kubernetes_select_min_limits(current: int, desired: int, expected: int) -> None:
    rules_ = {
        "select": "min",
        "stabilization_window": "300s",
        "policies": [
            {"type": "pods", "value": 2, "period": "60s"},
            {"type": "percent", "value": 50, "period": "60s"},
        ],
    }
    limited = rate_limit(desired, current, (), behavior(scale_up=rules_, scale_down=rules_), NOW)
    assert limited is not None and limited.after == expected


def test_percent_growth_rounds_up_in_floating_point_like_kubernetes() -> None:
    # ceil(100 x 1.1) is 111 in IEEE-754 doubles (110.00000000000001), as in the Go controller
    rules_ = behavior(scale_up={"policies": [{"type": "percent", "value": 10, "period": "60s"}]})
    limited = rate_limit(1000, 100, (), rules_, NOW)
    assert limited is not None and limited.after == 111


def test_disabled_direction_holds() -> None:
    limited = rate_limit(2, 10, (), behavior(scale_down={"select": "disabled"}), NOW)
    assert limited is not None
    assert (limited.code, limited.after) == (Step.SCALING_DISABLED, 10)


def test_documentation_example_80_to_10() -> None:
    """HPA docs, "Scaling policies": Pods 4/60 s and Percent 10/60 s for scale-down. From 80
    the first step removes 8 (10 %), 72 -> 64 removes 8 again ("7.2 rounded up to 8": the
    kept count is truncated), and below 40 replicas the Pods policy removes 4 at a time.
    The period memory means one step per 60 s, not per sync."""
    spec = target(
        rule(
            min=1,
            max=100,
            track=[{"metric": "load", "type": "total", "target": 1}],
            behavior={
                "scale_down": {
                    "stabilization_window": "0s",
                    "policies": [
                        {"type": "pods", "value": 4, "period": "60s"},
                        {"type": "percent", "value": 10, "period": "60s"},
                    ],
                }
            },
        )
    )
    run = Run(spec, 80)
    history = [run.tick(t, load=10).desired for t in range(0, 61 * 9, 15)]
    # one step per 60 s (an event exactly 60 s old no longer counts), so the value changes
    # at t = 0, 60, 120, ...
    changes = [history[0]] + [b for a, b in itertools.pairwise(history) if b != a]
    assert changes == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24][: len(changes)]
    assert len(changes) >= 8
    # within one period the limit holds: 15 s after the first step, still 72
    assert history[1] == 72


def test_percent_removes_more_than_pods_only_above_40() -> None:
    down = behavior(
        scale_down={
            "policies": [
                {"type": "pods", "value": 4, "period": "60s"},
                {"type": "percent", "value": 10, "period": "60s"},
            ]
        }
    )

    def floor_from(current: int) -> int:
        limited = rate_limit(1, current, (), down, NOW)
        assert limited is not None
        return limited.after

    assert floor_from(40) == 36  # tie: 40 - 4 = int(40 x 0.9)
    assert floor_from(41) == 36  # int(36.9) = 36: percent removes 5
    assert floor_from(30) == 26  # pods: 4


def test_decide_reports_rate_limit_step_with_arithmetic() -> None:
    spec = target(rule(max=100, track=[{"metric": "cpu", "type": "utilization", "target": 50}]))
    run = Run(spec, 10)
    decision = run.tick(0, cpu=200)  # ceil(10 x 200 / 50) = 40, default up limit max(14, 20) = 20
    assert decision.recommended == 40
    assert decision.desired == 20
    limit = next(step for step in decision.steps if step.code is Step.SCALE_UP_LIMIT)
    assert "pods 4/15s from 10 -> 14" in limit.detail
    assert "percent 100/15s from 10 -> 20" in limit.detail
    assert run.state.events[-1].after == 20
    assert isinstance(run.state, TargetState)
    assert run.capacity == Capacity.steady(20)
