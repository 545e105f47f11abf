"""The decision pipeline end to end: failures and fallback, scale to and from zero,
schedules, ladders and maintenance windows, operator controls, operations in flight,
window aggregation, and the reason given when nothing changes."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from scalerd.core import (
    Capacity,
    Controls,
    Ladder,
    NotScaled,
    Observation,
    Sample,
    Step,
    Tier,
    decide,
)
from scalerd.core.aggregate import aggregate, read_metric
from scalerd.core.rules import CronWindow
from scalerd.schedules import CronCalendar

from .build import T0, Run, at, rule, target

CPU_70 = [{"metric": "cpu", "type": "utilization", "target": 70}]


def _cpu_target(**fields: object) -> Run:
    current = int(fields.pop("current", 4))  # type: ignore[call-overload]
    max_age = str(fields.pop("max_age", "1h"))
    return Run(target(rule(**({"max": 20, "track": CPU_70} | fields)), max_age=max_age), current)


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observation", "error"),
    [
        pytest.param(
            Observation.failed("cpu", "timed out after 10s"), "timed out", id="read failed"
        ),
        pytest.param(Observation.value("cpu", T0, math.nan), "invalid value nan", id="NaN"),
        pytest.param(Observation.value("cpu", T0, -3), "negative value -3", id="negative"),
        pytest.param(Observation.value("cpu", T0 - timedelta(minutes=5), 10), "stale", id="stale"),
        pytest.param(Observation("cpu", ()), "no data", id="no points"),
    ],
)
def test_a_bad_reading_is_a_failure_never_a_zero(observation: Observation, error: str) -> None:
    run = _cpu_target(current=8, max_age="2m")
    decision, state = decide(run.spec, run.state, run.capacity, [observation], T0)
    assert decision.desired == 8  # a zero reading would have asked for ceil(8 x 0/70) = 0 -> min
    assert decision.not_scaled_reason is NotScaled.METRIC_FAILURE
    assert error in (decision.inputs[0].error or "")
    assert state.consecutive_failures == 1


def test_fallback_starts_once_failures_exceed_the_threshold() -> None:
    """KEDA: fallback applies when failures *exceed* failureThreshold (3 -> the 4th)."""
    run = _cpu_target(current=2, fallback={"failure_threshold": 3, "replicas": 6})
    desired = [run.tick(15 * i, cpu=None).desired for i in range(5)]
    assert desired == [2, 2, 2, 6, 6]
    assert run.state.consecutive_failures == 5
    assert run.tick(75, cpu=70).desired == 6  # recovered: within tolerance, counter reset
    assert run.state.consecutive_failures == 0


def test_fallback_never_lowers_capacity() -> None:
    run = _cpu_target(current=9, fallback={"failure_threshold": 0, "replicas": 6})
    assert run.tick(0, cpu=None).desired == 9


# --- scale to and from zero (KEDA) -------------------------------------------------------


def _queue_worker() -> Run:
    return Run(
        target(
            rule(
                min=0,
                max=10,
                track=[{"metric": "queue", "type": "total", "target": 5, "activation": 2}],
                idle_before_zero="5m",
            )
        ),
        0,
    )


def test_scale_from_zero_on_activation_then_hpa_takes_over() -> None:
    run = _queue_worker()
    idle = run.tick(0, queue=2)  # activation is strictly greater than 2
    assert (idle.desired, idle.not_scaled_reason) == (0, NotScaled.INACTIVE)
    woken = run.tick(15, queue=40)
    assert woken.desired == 1  # KEDA wakes to 1 (or min) and hands over
    assert [step.code for step in woken.steps if step.code is Step.ACTIVATION]
    assert run.tick(30, queue=40).desired == 5  # then HPA rules: ceil(40/5) = 8, limited to 1 + 4


def test_scale_to_zero_after_idle_period() -> None:
    run = _queue_worker()
    run.tick(0, queue=40)
    run.tick(15, queue=40)
    run.tick(30, queue=40)
    # idle from t=45; KEDA: lastActiveTime (30) + cooldownPeriod (300) < now
    desired = {t: run.tick(t, queue=0).desired for t in range(45, 360, 15)}
    assert min(v for t, v in desired.items() if t <= 330) >= 1
    assert desired[345] == 0


# --- schedules ---------------------------------------------------------------------------


def test_schedule_raises_min_ramped_over_its_window() -> None:
    office = {
        "name": "office",
        "cron": "0 9 * * 1-5",  # 09:00 Monday to Friday, Berlin (08:00 UTC in January)
        "duration": "9h",
        "timezone": "Europe/Berlin",
        "min": 10,
        "ramp": "10m",
    }
    spec = target(rule(min=2, max=20, track=CPU_70, schedule=[office]), calendar=CronCalendar())
    run = Run(spec, 2)
    before = run.tick(-60, cpu=70)
    assert before.desired == 2 and not [s for s in before.steps if s.code is Step.SCHEDULE]
    assert run.tick(0, cpu=70).desired == 2  # opens at T0 (Monday 08:00 UTC): ramp at 0 %
    assert run.tick(300, cpu=70).desired == 6  # halfway: 2 + (10 - 2) x 0.5
    ramped = run.tick(600, cpu=70)
    assert ramped.desired == 10
    assert ramped.not_scaled_reason is None
    closed = run.tick(9 * 3600 + 15, cpu=70)  # after 18:00 Berlin the profile closes
    assert not [s for s in closed.steps if s.code is Step.SCHEDULE]


def test_a_target_with_schedules_and_no_rule_moves_only_with_its_bounds() -> None:
    """Scheduled scaling alone (Azure profiles without rules, KEDA's cron trigger)."""
    office = {
        "name": "office",
        "cron": "0 9 * * 1-5",
        "duration": "9h",
        "timezone": "Europe/Berlin",
        "min": 6,
    }
    spec = target(rule(min=2, max=20, schedule=[office]), calendar=CronCalendar())
    run = Run(spec, 2)
    assert run.tick(-60).desired == 2
    assert run.tick(0).desired == 6  # the profile opens: its min lifts capacity
    closed = run.tick(9 * 3600 + 15)  # closed: back to the base min, as KEDA's cron does
    assert closed.desired == 2
    assert "no metric rule: the bounds in force set 2" in [s.detail for s in closed.steps]
    with pytest.raises(ValueError, match=r"at least one rule .* or a \[\[schedule\]\]"):
        rule(min=2, max=20)


def test_saturday_is_not_a_weekday() -> None:
    window = CronWindow(cron="0 9 * * 1-5", duration="9h", timezone="Europe/Berlin")
    calendar = CronCalendar()
    assert calendar.opened_at(window, at(3600)) is not None  # Monday
    assert calendar.opened_at(window, at(5 * 86400 + 3600)) is None  # Saturday


# --- ladders, maintenance windows, operations in flight -----------------------------------

REDIS = Ladder(
    tiers=(
        Tier("Basic C1", 1),
        Tier("Standard C1", 1),
        Tier("Standard C2", 2),
        Tier("Premium P1", 6, restarts=True),
        Tier("Premium P2", 13, restarts=True),
    ),
    # Basic -> Standard (same size); Standard up and down; Standard -> Premium; Premium up
    # and down; never Premium -> Standard or Standard -> Basic; never Basic -> Premium
    allowed=frozenset({(1, 2), (2, 3), (3, 2), (2, 4), (3, 4), (3, 5), (4, 5), (5, 4)}),
)


def _cache(current: int, **fields: object) -> Run:
    spec = target(
        rule(
            min=1,
            max=5,
            track=[{"metric": "memory", "type": "utilization", "target": 70}],
            **fields,
        ),
        ladder=REDIS,
    )
    return Run(spec, current)


def test_tracking_on_a_ladder_sizes_the_need_in_units() -> None:
    # Standard C2 (2 units) at 280 %: needs 2 x 280 / 70 = 8 units -> Premium P2 (13)
    decision = _cache(3).tick(0, memory=280)
    assert (decision.desired, decision.tier, decision.restarts) == (5, "Premium P2", True)


def test_a_forbidden_move_goes_to_the_nearest_allowed_tier() -> None:
    # Basic C1 needs 4 units (Premium P1): Basic -> Premium is not one move; Standard C1 is
    decision = _cache(1).tick(0, memory=280)
    assert (decision.desired, decision.tier) == (2, "Standard C1")
    assert [s for s in decision.steps if s.code is Step.TRANSITION]


def test_premium_never_steps_down_to_standard() -> None:
    run = _cache(4, behavior={"scale_down": {"stabilization_window": "0s"}})
    decision = run.tick(0, memory=5)
    assert (decision.desired, decision.not_scaled_reason) == (4, NotScaled.TRANSITION)


def test_maintenance_window_holds_tier_changes_outside_it() -> None:
    sunday_night = CronWindow(cron="0 2 * * 0", duration="3h", timezone="UTC")
    spec = target(
        rule(min=1, max=5, track=[{"metric": "memory", "type": "utilization", "target": 70}]),
        ladder=REDIS,
        maintenance=(sunday_night,),
        calendar=CronCalendar(),
    )
    monday = Run(spec, 3).tick(0, memory=280)
    assert (monday.desired, monday.not_scaled_reason) == (3, NotScaled.MAINTENANCE_WINDOW)
    sunday = T0 + timedelta(days=6, hours=-5)  # Sunday 03:00 UTC
    decision, _ = decide(
        spec,
        Run(spec, 3).state,
        Capacity.steady(3),
        [Observation.value("memory", sunday, 280)],
        sunday,
    )
    assert decision.desired == 5


def test_operation_in_flight_holds_and_names_it() -> None:
    run = _cpu_target(current=4)
    decision = run.tick(0, capacity=Capacity(4, 4, operation="op-7f3a"), cpu=140)
    assert (decision.desired, decision.not_scaled_reason) == (4, NotScaled.IN_FLIGHT)
    assert decision.steps[-1].data["operation"] == "op-7f3a"
    assert decision.recommended == 8  # what it would have done is still on record


# --- operator controls -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pause", "cpu", "expected"),
    [
        pytest.param("all", 140, 4, id="all: no scale out"),
        pytest.param("all", 10, 4, id="all: no scale in"),
        pytest.param("scale_in", 140, 8, id="scale_in: scale out allowed"),
        pytest.param("scale_in", 10, 4, id="scale_in: held"),
        pytest.param("scale_out", 140, 4, id="scale_out: held"),
    ],
)
def test_pause(pause: str, cpu: float, expected: int) -> None:
    run = _cpu_target(
        current=4, pause=pause, behavior={"scale_down": {"stabilization_window": "0s"}}
    )
    decision = run.tick(0, cpu=cpu)
    assert decision.desired == expected
    if expected == 4:
        assert decision.not_scaled_reason is NotScaled.PAUSED


def test_override_with_expiry() -> None:
    run = _cpu_target(current=4)
    run.state = run.state.with_controls(Controls(override=12, override_until=at(400)))
    assert run.tick(0, cpu=70).desired == 12
    assert run.tick(200, cpu=70).desired == 12
    # expired: the rules are back. They want ceil(12 x 20 / 70) = 4, and the scale-down
    # window remembers 12 (what the rules said at t=200, on 12 replicas), so it holds
    after = run.tick(400, cpu=20)
    assert run.state.controls.override is None
    assert (after.recommended, after.desired) == (4, 12)
    assert after.not_scaled_reason is NotScaled.STABILIZATION


def test_override_is_clamped_by_bounds() -> None:
    run = _cpu_target(current=4)
    run.state = run.state.with_controls(Controls(override=50))
    assert run.tick(0, cpu=70).desired == 20


# --- why nothing changed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "current", "fields", "reason"),
    [
        pytest.param(75, 4, {}, NotScaled.WITHIN_TOLERANCE, id="within tolerance"),
        pytest.param(140, 20, {}, NotScaled.AT_MAX, id="already at max"),
        pytest.param(
            10,
            2,
            {"min": 2, "behavior": {"scale_down": {"stabilization_window": "0s"}}},
            NotScaled.AT_MIN,
            id="already at min",
        ),
        pytest.param(10, 4, {}, NotScaled.STABILIZATION, id="scale-down window"),
        pytest.param(
            140,
            4,
            {"behavior": {"scale_up": {"select": "disabled"}}},
            NotScaled.SCALING_DISABLED,
            id="disabled",
        ),
    ],
)
def test_not_scaled_reason(
    cpu: float, current: int, fields: dict[str, object], reason: NotScaled
) -> None:
    run = _cpu_target(current=current, **fields)
    run.tick(0, cpu=70)  # a first recommendation of "no change" for the windows to remember
    decision = run.tick(15, cpu=cpu)
    assert decision.desired == current
    assert decision.not_scaled_reason is reason


def test_every_step_is_recorded_and_serialisable() -> None:
    decision = _cpu_target(current=4).tick(0, cpu=140)
    codes = [str(step.code) for step in decision.steps]
    assert codes == ["recommended", "scale_up_stabilized", "scale_up_limit"]
    record = json.loads(json.dumps(decision.as_dict()))
    assert record["desired"] == 8
    assert record["inputs"][0] == {
        "metric": "cpu",
        "source": "cpu-source",
        "value": 140,
        "aggregation": "last",
        "window_s": 0.0,
        "points": 1,
        "age_s": 0.0,
        "error": None,
    }


# --- window aggregation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("avg", 25.0),
        ("min", 10.0),
        ("max", 40.0),
        ("total", 100.0),
        ("count", 4.0),
        ("last", 40.0),
        ("p95", 38.5),
    ],  # p95 by linear interpolation: 30 + 0.85 x (40 - 30)
)
def test_aggregations(aggregation: str, expected: float) -> None:
    assert aggregate([10.0, 20.0, 30.0, 40.0], aggregation) == pytest.approx(expected)


def test_window_keeps_points_strictly_newer_than_its_start() -> None:
    samples = tuple(Sample(at(t), v) for t, v in ((0, 100.0), (60, 10.0), (120, 20.0)))
    report = read_metric(
        "m", "s", samples, "avg", timedelta(minutes=2), timedelta(minutes=5), None, at(120)
    )
    assert (report.value, report.points) == (15.0, 2)  # the point at exactly now - 2m is out


def test_a_pause_is_named_even_when_the_rate_limit_already_held() -> None:
    run = _cpu_target(current=4)
    run.tick(0, cpu=140)  # 4 -> 8
    run.state = run.state.with_controls(Controls(pause="all"))
    decision = run.tick(5, cpu=280)  # wants 16; the rate limit alone would hold at 8
    assert [s.code for s in decision.steps if s.code is Step.SCALE_UP_LIMIT]
    assert (decision.desired, decision.not_scaled_reason) == (8, NotScaled.PAUSED)
