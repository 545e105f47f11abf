"""Azure Monitor autoscale threshold rules, from Azure's documentation: how several rules
combine, the flapping projection and its examples, the default capacity when metrics are
missing, cooldowns, and the condition / action strings ops write."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scalerd.core import NotScaled, Step
from scalerd.core.rules import Action, Condition

from .build import Run, rule, target


def _azure(*rules: dict[str, Any], **fields: Any) -> Run:
    current = fields.pop("current")
    spec = target(rule(min=1, max=fields.pop("max", 100), threshold=list(rules), **fields))
    return Run(spec, current)


def _when(condition: str, action: str, cooldown: str = "0s") -> dict[str, Any]:
    return {"when": condition, "action": action, "cooldown": cooldown}


# --- flapping (autoscale-best-practices / autoscale-flapping) --------------------------


def test_thread_count_example_stays_at_three() -> None:
    """+1 when threads >= 600, -1 when <= 600. Two instances at 625: scale out to 3. Then
    575 on 3: scaling in to 2 would read 575 x 3 / 2 = 862.5, firing the out-rule at once,
    so autoscale does not scale in."""
    run = _azure(
        _when("Threads >= 600 avg 1m", "+1"), _when("Threads <= 600 avg 1m", "-1"), current=2
    )
    assert run.tick(0, Threads=625).desired == 3
    held = run.tick(120, Threads=575)
    assert (held.desired, held.not_scaled_reason) == (3, NotScaled.FLAPPING)
    flapping = next(step for step in held.steps if step.code is Step.FLAPPING)
    assert flapping.data["projected"] == pytest.approx(862.5)


@pytest.mark.parametrize(
    ("cpu", "expected", "projected"),
    [
        pytest.param(60, 3, 90.0, id="60 on 3 would read 90 on 2: skip"),
        pytest.param(50, 2, None, id="50 on 3 reads 75 on 2: scale in"),
    ],
)
def test_cpu_example(cpu: float, expected: int, projected: float | None) -> None:
    """+1 when CPU >= 80, -1 when <= 60: 2 -> 3 at 80 %; at 60 % 60 x 3 / 2 = 90 >= 80 skips
    the scale-in; at 50 %, 75 < 80 lets it happen."""
    run = _azure(_when("CPU >= 80 avg 1m", "+1"), _when("CPU <= 60 avg 1m", "-1"), current=2)
    assert run.tick(0, CPU=80).desired == 3
    decision = run.tick(120, CPU=cpu)
    assert decision.desired == expected
    flapping = [step for step in decision.steps if step.code is Step.FLAPPING]
    assert [step.data["projected"] for step in flapping] == ([projected] if projected else [])


def test_margin_between_thresholds_avoids_flapping() -> None:
    """Flapping doc, margin table: +1 at >= 600, -1 at < 400. 1250 threads on 3 (417 each):
    no in-rule fires. 1180 on 3 (394): in to 2, which reads 590 < 600."""
    run = _azure(
        _when("Threads >= 600 avg 1m", "+1"), _when("Threads < 400 avg 1m", "-1"), current=3
    )
    assert run.tick(0, Threads=1250 / 3).desired == 3
    assert run.tick(120, Threads=1180 / 3).desired == 2


def _requests_and_cpu(cpu: float) -> Run:
    # "Scale out by 20 when requests >= 200 per instance, or CPU > 70 %; scale in by 10 when
    # requests <= 50 per instance"
    return _azure(
        _when("Requests >= 200 avg 1m", "+20"),
        _when("CPU > 70 avg 1m", "+20"),
        _when("Requests <= 50 avg 1m", "-10"),
        current=30,
    )


def test_scale_in_by_less_than_asked_documented_projection() -> None:
    """Flapping doc: 30 instances at 65 % CPU, 50 requests each. Scaling in by 10 to 20 would
    read 65 x 30 / 20 = 97.5 % > 70: flapping. The search upward from 20 finds the first
    count where no out-rule fires: 65 x 30 / 27 = 72.2 % still fires, 65 x 30 / 28 = 69.6 %
    does not, so 28. (The page says "may scale in by 3, to 27"; its own projection gives 28.)"""
    decision = _requests_and_cpu(65).tick(0, Requests=50, CPU=65)
    assert decision.desired == 28
    flapping = next(step for step in decision.steps if step.code is Step.FLAPPING)
    assert (flapping.before, flapping.after) == (20, 28)


def test_scale_in_by_three_of_ten() -> None:
    """The same rules at 63 % CPU: 63 x 30 / 27 = 70.0 % does not exceed 70, 63 x 30 / 26 =
    72.7 % does, so 30 instances asked to drop 10 drop 3."""
    decision = _requests_and_cpu(63).tick(0, Requests=50, CPU=63)
    assert (decision.current.provisioned, decision.desired) == (30, 27)


def test_activity_log_example_intended_one_actual_four() -> None:
    """Flapping doc activity log: 6 instances, +10 when requests per instance >= 3, -5 when
    < 3: "Intended new instance count: 1. Actual new instance count: 4". With 10 requests
    in all (1.67 each): 10/1, 10/2, 10/3 are >= 3 and 10/4 = 2.5 is not."""
    run = _azure(
        _when("Requests >= 3 max 1m", "+10"), _when("Requests < 3 max 1m", "-5"), current=6
    )
    decision = run.tick(0, Requests=10 / 6)
    assert (decision.recommended, decision.desired) == (1, 4)


def test_projection_leaves_totals_alone() -> None:
    """A queue length is the same whatever the instance count: no projection."""
    out_on_total = {"when": "Queue > 100 avg 1m", "action": "+1", "per_instance": False}
    run = _azure(out_on_total, _when("CPU < 30 avg 1m", "-1"), current=4)
    assert run.tick(0, Queue=90, CPU=10).desired == 3


# --- combination (autoscale-understanding-settings) --------------------------------------


def test_largest_scale_out_wins() -> None:
    # "+3 and +5 both triggered: scales out by five"; "+3 and +15 %: the higher count"
    run = _azure(_when("CPU > 50 avg 1m", "+3"), _when("Memory > 50 avg 1m", "+5"), current=10)
    assert run.tick(0, CPU=60, Memory=60).desired == 15
    run = _azure(_when("CPU > 50 avg 1m", "+3"), _when("Memory > 50 avg 1m", "+15%"), current=10)
    assert run.tick(0, CPU=60, Memory=60).desired == 13  # 10 + 3 beats 10 + ceil(1.5)


def test_scale_in_takes_the_smallest_reduction() -> None:
    # "-50 % gives 5 and -3 gives 7 (from 10): autoscale scales in to 7"
    run = _azure(_when("CPU < 30 avg 1m", "-50%"), _when("Memory < 30 avg 1m", "-3"), current=10)
    assert run.tick(0, CPU=10, Memory=10).desired == 7


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        pytest.param(76, 50, 5, id="CPU 76 %, memory 50 %: out"),
        pytest.param(50, 76, 5, id="CPU 50 %, memory 76 %: out"),
        pytest.param(25, 51, 4, id="CPU 25 %, memory 51 %: not every in-rule fires"),
        pytest.param(29, 49, 3, id="CPU 29 %, memory 49 %: in"),
    ],
)
def test_scale_in_only_when_all_in_rules_fire(cpu: float, memory: float, expected: int) -> None:
    run = _azure(
        _when("CPU < 30 avg 1m", "-1"),
        _when("Memory < 50 avg 1m", "-1"),
        _when("CPU > 75 avg 1m", "+1"),
        _when("Memory > 75 avg 1m", "+1"),
        current=4,
        flapping_protection=False,
    )
    assert run.tick(0, CPU=cpu, Memory=memory).desired == expected


# --- failures: the default capacity (autoscale-understanding-settings) ------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param(1, 3, id="below default: rise to it"),
        pytest.param(3, 3, id="at default"),
        pytest.param(5, 5, id="above default: never scale in"),
    ],
)
def test_default_when_metrics_are_unavailable(current: int, expected: int) -> None:
    run = _azure(
        _when("CPU > 75 avg 5m", "+1"), _when("CPU < 25 avg 5m", "-1"), current=current, default=3
    )
    decision = run.tick(0, CPU=None)
    assert decision.desired == expected
    failure = next(step for step in decision.steps if step.code is Step.METRIC_FAILURE)
    assert failure.after == expected


# --- cooldowns ---------------------------------------------------------------------------


def test_rule_cooldown_holds_the_next_scale_out() -> None:
    run = _azure(
        _when("CPU > 75 avg 1m", "+1", "5m"), _when("CPU < 25 avg 1m", "-1", "5m"), current=2
    )
    assert run.tick(0, CPU=90).desired == 3
    held = run.tick(60, CPU=90)
    assert (held.desired, held.not_scaled_reason) == (3, NotScaled.COOLDOWN)
    assert run.tick(300, CPU=90).desired == 4  # cooldown over (0 + 5 min)


def test_scale_out_cooldown_also_holds_scale_in() -> None:
    run = _azure(
        _when("CPU > 75 avg 1m", "+1", "5m"), _when("CPU < 25 avg 1m", "-1", "1m"), current=2
    )
    assert run.tick(0, CPU=90).desired == 3
    held = run.tick(120, CPU=10)
    assert (held.desired, held.not_scaled_reason) == (3, NotScaled.COOLDOWN)


def test_scale_out_cuts_a_scale_in_cooldown_short() -> None:
    run = _azure(
        _when("CPU > 75 avg 1m", "+1", "1m"), _when("CPU < 25 avg 1m", "-1", "40m"), current=3
    )
    assert run.tick(0, CPU=10).desired == 2
    assert run.tick(60, CPU=10).not_scaled_reason is NotScaled.COOLDOWN
    assert run.tick(120, CPU=90).desired == 3  # not deferred to the end of the 40-minute cooldown


# --- the strings ops write ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "aggregation", "window_s"),
    [
        ("Percentage CPU > 75 avg 5m", "Percentage CPU", ">", 75, "avg", 300),
        ("ActiveMessages >= 100 total 10m", "ActiveMessages", ">=", 100, "total", 600),
        ("latency_ms<=250 p95 PT2M", "latency_ms", "<=", 250, "p95", 120),
        ("Requests < 3.5 Maximum 1m", "Requests", "<", 3.5, "max", 60),
    ],
)
def test_condition_strings(
    text: str, metric: str, op: str, threshold: float, aggregation: str, window_s: int
) -> None:
    condition = Condition.model_validate(text)
    assert (condition.metric, condition.op, condition.threshold, condition.aggregation) == (
        metric,
        op,
        threshold,
        aggregation,
    )
    assert condition.window.total_seconds() == window_s


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CPU 75 avg 5m", "cannot read condition"),
        ("CPU > 75", "needs an aggregation and a window"),
        ("CPU > 75 median 5m", "unknown aggregation"),
        ("CPU > 75 avg 5", "invalid duration"),
        ("CPU > 75 avg 0s", "longer than 0s"),
    ],
)
def test_bad_conditions(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Condition.model_validate(text)


@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [
        ("+2", 5, 7),
        ("-1", 5, 4),
        ("=10", 5, 10),
        ("+50%", 3, 5),  # 1.5 rounds away from the current capacity: +2
        ("-20%", 7, 5),  # 1.4: -2
        ("+10%", 4, 5),  # 0.4: at least one instance
    ],
)
def test_actions(text: str, current: int, expected: int) -> None:
    assert Action.model_validate(text).apply(current) == expected


@pytest.mark.parametrize("text", ["2", "+", "+2.5", "=50%", "+0", "x2"])
def test_bad_actions(text: str) -> None:
    with pytest.raises(ValidationError):
        Action.model_validate(text)
