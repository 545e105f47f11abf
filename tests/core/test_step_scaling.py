"""AWS step scaling (Application Auto Scaling), from its documentation: the worked example
(threshold 50, capacity 10 -> 11 -> 14 -> 13 -> 10), the rounding of percentage changes,
the minimum adjustment magnitude, bound inclusivity, cooldowns, and the rules for steps."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scalerd.core import Capacity
from scalerd.core.rules import StepPolicy

from .build import Run, rule, target

# AWS docs: scale-out 0..10: 0, 10..20: +10 %, 20..: +30 %; scale-in -10..0: 0,
# -20..-10: -10 %, ..-20: -30 %
EXAMPLE_STEPS = [
    {"lower": 0, "upper": 10, "adjust": 0},
    {"lower": 10, "upper": 20, "adjust": 10},
    {"lower": 20, "adjust": 30},
    {"lower": -10, "upper": 0, "adjust": 0},
    {"lower": -20, "upper": -10, "adjust": -10},
    {"upper": -20, "adjust": -30},
]


def _policy(**fields: Any) -> StepPolicy:
    base: dict[str, Any] = {
        "metric": "cpu",
        "threshold": 50,
        "adjustment_type": "percent",
        "steps": EXAMPLE_STEPS,
    }
    return StepPolicy.model_validate(base | fields)


def _example(cooldown: str = "0s") -> Run:
    spec = target(
        rule(
            min=1,
            max=100,
            step=[
                {
                    "metric": "cpu",
                    "threshold": 50,
                    "adjustment_type": "percent",
                    "window": "1m",
                    "cooldown": cooldown,
                    "steps": EXAMPLE_STEPS,
                }
            ],
            flapping_protection=False,
        )
    )
    return Run(spec, 10)


def test_aws_worked_example() -> None:
    run = _example()
    # 60: breach +10, step [10, 20): +10 % of 10 = 1.0 -> +1
    assert run.tick(0, cpu=60).desired == 11
    # 70: breach +20, step [20, inf): +30 % of 11 = 3.3 -> +3
    assert run.tick(120, cpu=70).desired == 14
    # 40: breach -10, step (-20, -10]: -10 % of 14 = -1.4 -> -1
    assert run.tick(240, cpu=40).desired == 13
    # 30: breach -20, step (-inf, -20]: -30 % of 13 = -3.9 -> -3
    assert run.tick(360, cpu=30).desired == 10
    # 45: breach -5, step (-10, 0]: adjust 0, capacity maintained
    held = run.tick(480, cpu=45)
    assert held.desired == 10
    assert held.rules[0].fired and held.rules[0].proposed == 10


@pytest.mark.parametrize(
    ("base", "percent", "expected_change"),
    [
        pytest.param(127, 10, 12, id="12.7 -> 12"),
        pytest.param(667, -1, -6, id="-6.67 -> -6"),
        pytest.param(67, 1, 1, id="0.67 -> +1"),
        pytest.param(58, -1, -1, id="-0.58 -> -1"),
        pytest.param(10, 10, 1, id="1.0 -> +1"),
        pytest.param(11, 30, 3, id="3.3 -> +3"),
    ],
)
def test_aws_percent_rounding(base: int, percent: float, expected_change: int) -> None:
    policy = _policy(
        steps=[{"lower": 0, "adjust": percent}]
        if percent > 0
        else [{"upper": 0, "adjust": percent}]
    )
    after, _ = policy.adjusted(base, policy.steps[0])
    assert after - base == expected_change


def test_minimum_adjustment_magnitude() -> None:
    # +25 % of 4 is 1; with a minimum magnitude of 2, AWS adds 2
    policy = _policy(steps=[{"lower": 0, "adjust": 25}], min_adjustment_magnitude=2)
    after, note = policy.adjusted(4, policy.steps[0])
    assert after == 6
    assert "minimum magnitude 2" in note


@pytest.mark.parametrize(
    ("metric", "adjust"),
    [
        # above the threshold: lower inclusive, upper exclusive
        pytest.param(60, 10, id="60 is in [10, 20)"),
        pytest.param(59.99, 0, id="59.99 is in [0, 10)"),
        pytest.param(70, 30, id="70 is in [20, inf)"),
        # below: lower exclusive, upper inclusive
        pytest.param(40, -10, id="40 is in (-20, -10]"),
        pytest.param(40.01, 0, id="40.01 is in (-10, 0]"),
        pytest.param(30, -30, id="30 is in (-inf, -20]"),
        pytest.param(50, 0, id="at the threshold: the step above"),
    ],
)
def test_bound_inclusivity(metric: float, adjust: float) -> None:
    step = _policy().step_for(metric)
    assert step is not None and step.adjust == adjust


def test_change_and_exact_adjustments() -> None:
    change = _policy(adjustment_type="change", steps=[{"lower": 0, "adjust": 5}])
    exact = _policy(adjustment_type="exact", steps=[{"lower": 0, "adjust": 5}])
    assert change.adjusted(3, change.steps[0])[0] == 8  # "current 3, adjustment 5: total 8"
    assert exact.adjusted(3, exact.steps[0])[0] == 5  # "changes the capacity to 5"


def test_scale_out_cooldown_counts_the_capacity_just_added() -> None:
    """AWS: "+2, then the alarm triggers again during the cooldown at +3: the previous
    increase of 2 is considered part of the current capacity, so only 1 is added"."""
    steps = [{"lower": 0, "upper": 10, "adjust": 2}, {"lower": 10, "adjust": 3}]
    spec = target(
        rule(
            max=100,
            step=[
                {"metric": "cpu", "threshold": 50, "cooldown": "5m", "window": "1m", "steps": steps}
            ],
        )
    )
    run = Run(spec, 10)
    assert run.tick(0, cpu=55).desired == 12
    assert run.tick(60, cpu=55).desired == 12  # same step inside the cooldown: nothing more
    assert run.tick(120, cpu=65).desired == 13  # larger step: 10 + 3, so +1
    assert run.tick(420, cpu=65).desired == 16  # cooldown over: 13 + 3


def test_scale_in_cooldown_blocks_scale_in_but_not_scale_out() -> None:
    steps = [
        {"lower": 0, "adjust": 2},
        {"upper": 0, "lower": -20, "adjust": -1},
        {"upper": -20, "adjust": -2},
    ]
    spec = target(
        rule(
            max=100,
            step=[
                {"metric": "cpu", "threshold": 50, "cooldown": "5m", "window": "1m", "steps": steps}
            ],
            flapping_protection=False,
        )
    )
    run = Run(spec, 10)
    assert run.tick(0, cpu=40).desired == 9
    held = run.tick(60, cpu=40)
    assert (held.desired, str(held.not_scaled_reason)) == (9, "CooldownActive")
    # a scale-out during the scale-in cooldown goes at once, and ends that cooldown
    assert run.tick(120, cpu=60).desired == 11


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        pytest.param(
            [{"lower": 0, "upper": 10, "adjust": 1}, {"lower": 5, "adjust": 2}],
            "overlaps",
            id="overlap",
        ),
        pytest.param(
            [{"lower": 0, "upper": 10, "adjust": 1}, {"lower": 15, "adjust": 2}], "gap", id="gap"
        ),
        pytest.param([{"adjust": 1}], "straddle", id="both bounds unset"),
        pytest.param(
            [{"lower": -5, "upper": 5, "adjust": 1}], "straddle", id="straddles the threshold"
        ),
        pytest.param(
            [{"lower": 0, "upper": 10, "adjust": 1}], "upper unset", id="positive upper needs +inf"
        ),
        pytest.param(
            [{"lower": -10, "upper": 0, "adjust": -1}],
            "lower unset",
            id="negative lower needs -inf",
        ),
        pytest.param(
            [{"lower": 10, "upper": 5, "adjust": 1}], "greater than lower", id="upper below lower"
        ),
    ],
)
def test_invalid_steps_are_errors(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _policy(steps=steps)


def test_minimum_magnitude_only_for_percent() -> None:
    with pytest.raises(ValidationError, match="applies only to adjustment_type = 'percent'"):
        _policy(adjustment_type="change", min_adjustment_magnitude=2)


def test_capacity_type_is_respected() -> None:
    assert Capacity.steady(3) == Capacity(3, 3)
