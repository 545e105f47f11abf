"""The predictive floor: a seasonal forecast with the recent level, as a capacity floor."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scalerd.core import Capacity, Observation, TargetState, decide
from scalerd.core.model import DemandHistory, Sample, Step
from scalerd.core.predict import bucket_of, forecast, observe, predictive_floor, sized_track
from scalerd.core.rules import Predict

from .build import T0, rule, target

DAY = timedelta(days=1)
FIVE_MINUTES = timedelta(minutes=5)
SPEC = Predict(seasons=3, level_window=timedelta(minutes=30))


def history_of(values_at: list[tuple[timedelta, float]], spec: Predict = SPEC) -> DemandHistory:
    return observe(
        DemandHistory(), [Sample(T0 + offset, value) for offset, value in values_at], spec
    )


def days_of(pattern: dict[int, float], days: int, spec: Predict = SPEC) -> DemandHistory:
    """``days`` whole days before T0, bucket ``b`` of each (``b`` five minutes after T0's
    time of day) holding ``pattern.get(b, 1)``."""
    samples = [
        (-day * DAY + index * FIVE_MINUTES, pattern.get(index, 1.0))
        for day in range(days, 0, -1)
        for index in range(288)
    ]
    return history_of(samples, spec)


def test_each_bucket_keeps_its_peak_and_a_gap_stays_empty() -> None:
    history = history_of(
        [(timedelta(0), 3.0), (timedelta(minutes=2), 7.0), (timedelta(minutes=11), 1.0)]
    )
    assert history.first == bucket_of(T0, SPEC)
    assert history.peaks == (7.0, None, 1.0)


def test_history_keeps_only_what_the_forecast_can_look_back_at() -> None:
    history = days_of({}, 5)  # 5 days, but 3 seasons + 30 min + lead are ever read
    reach = 3 * DAY + timedelta(minutes=30) + SPEC.lead + FIVE_MINUTES
    assert len(history.peaks) == math.ceil(reach / FIVE_MINUTES) + 1


def test_no_history_no_forecast_and_no_floor() -> None:
    assert forecast(DemandHistory(), T0, SPEC) is None
    track = sized_track(
        rule(max=50, track=[{"metric": "rps", "type": "total", "target": 10}], predict={}), SPEC
    )
    step = predictive_floor(SPEC, track, DemandHistory(), T0, 3)
    assert (step.code, step.before, step.after, step.data["forecast"]) == (
        Step.PREDICTIVE_FLOOR,
        3,
        3,
        None,
    )


def test_a_rise_seen_on_earlier_days_is_forecast_before_it_happens() -> None:
    # every day from 08:05 to 08:15 demand jumps from 1 to 100; now is 08:04, and the
    # lead (75 s) reaches into the rise
    history = days_of({1: 100.0, 2: 100.0}, 3)
    ahead = forecast(history, T0 + timedelta(minutes=4), SPEC)
    assert ahead is not None
    assert (ahead.value, ahead.seasonal, ahead.level, ahead.seasons) == (100.0, 100.0, 1.0, 3)
    # a minute earlier the lead does not reach it yet
    before = forecast(history, T0 + timedelta(minutes=3), SPEC)
    assert before is not None and before.value == 1.0


def test_the_recent_level_scales_the_seasonal_value() -> None:
    # the last three days held 10 all day; the last half hour today held 20: level 2
    spec = SPEC
    history = days_of({index: 10.0 for index in range(288)}, 3)
    today = [(-timedelta(minutes=30) + index * FIVE_MINUTES, 20.0) for index in range(6)]
    history = observe(history, [Sample(T0 + offset, value) for offset, value in today], spec)
    ahead = forecast(history, T0, spec)
    assert ahead is not None
    assert (ahead.seasonal, ahead.level, ahead.value, ahead.error) == (10.0, 2.0, 20.0, 0.0)


def test_the_seasonal_value_is_the_quantile_of_the_past_seasons() -> None:
    history = history_of(
        [
            (-day * DAY + offset, value)
            for day, value in ((3, 10.0), (2, 40.0), (1, 20.0))
            for offset in (timedelta(0), FIVE_MINUTES)
        ]
    )
    assert forecast(history, T0, SPEC.model_copy(update={"quantile": 0.5})).seasonal == 20.0  # type: ignore[union-attr]
    assert forecast(history, T0, SPEC.model_copy(update={"quantile": 1.0})).seasonal == 40.0  # type: ignore[union-attr]


def test_shadow_audits_the_floor_without_applying_it() -> None:
    track_rule = rule(max=50, track=[{"metric": "rps", "type": "total", "target": 10}], predict={})
    history = days_of({index: 100.0 for index in range(288)}, 3)
    shadow = SPEC.model_copy(update={"mode": "shadow"})
    step = predictive_floor(shadow, sized_track(track_rule, shadow), history, T0, 2)
    assert (step.after, step.data["floor"]) == (2, 10)
    assert "not applied" in step.detail


def test_config_needs_a_total_track_to_size_the_floor() -> None:
    with pytest.raises(ValidationError, match="type total"):
        rule(max=5, track=[{"metric": "cpu", "type": "utilization", "target": 70}], predict={})
    with pytest.raises(ValidationError, match="named 'nope'"):
        rule(
            max=5, track=[{"metric": "q", "type": "total", "target": 7}], predict={"track": "nope"}
        )
    with pytest.raises(ValidationError, match="whole number of buckets"):
        rule(max=5, track=[{"metric": "q", "type": "total", "target": 7}], predict={"season": "7m"})


# --- properties over decide --------------------------------------------------------------

PEAKS = st.lists(st.one_of(st.none(), st.floats(0, 500)), max_size=3 * 288 + 40)


@settings(max_examples=60, deadline=None)
@given(
    peaks=PEAKS,
    back=st.integers(0, 3 * 288 + 40),
    reading=st.floats(0, 500),
    current=st.integers(1, 40),
    mode=st.sampled_from(["on", "shadow"]),
)
def test_the_floor_never_lowers_capacity_and_its_step_carries_the_forecast(
    peaks: list[float | None], back: int, reading: float, current: int, mode: str
) -> None:
    track = {"metric": "rps", "type": "total", "target": 10}
    base = {"max": 60, "track": [track], "behavior": {"scale_down": {"stabilization_window": "0s"}}}
    predict = {"mode": mode, "seasons": 3, "level_window": "30m"}
    with_floor, without = target(rule(**base, predict=predict)), target(rule(**base))
    history = DemandHistory(bucket_of(T0, SPEC) - back, tuple(peaks))
    state = TargetState(demand_history=history)
    observations = [Observation.value("rps", T0, reading)]
    floored, kept = decide(with_floor, state, Capacity.steady(current), observations, T0)
    plain, _ = decide(without, state, Capacity.steady(current), observations, T0)

    assert floored.desired >= plain.desired
    if mode == "shadow":
        assert floored.desired == plain.desired
    [step] = [step for step in floored.steps if step.code == Step.PREDICTIVE_FLOOR]
    assert step.after >= step.before
    expected = forecast(kept.demand_history, T0, with_floor.rule.predict)  # type: ignore[arg-type]
    if expected is None:
        assert step.data["forecast"] is None and step.after == step.before
    else:
        assert step.data["forecast"] == expected.value
        assert step.data["floor"] == math.ceil(expected.value / 10 - 1e-9)


@settings(max_examples=30, deadline=None)
@given(reading=st.floats(0, 500), current=st.integers(1, 40))
def test_with_no_history_the_floor_is_off(reading: float, current: int) -> None:
    spec = target(
        rule(max=60, track=[{"metric": "rps", "type": "total", "target": 10}], predict={})
    )
    decision, state = decide(
        spec, TargetState(), Capacity.steady(current), [Observation.value("rps", T0, reading)], T0
    )
    [step] = [step for step in decision.steps if step.code == Step.PREDICTIVE_FLOOR]
    assert step.data["forecast"] is None and step.before == step.after
    # the reading itself was kept, so the history starts now
    assert state.demand_history.peaks == (reading,)


def test_off_neither_records_nor_audits() -> None:
    spec = target(
        rule(
            max=6, track=[{"metric": "rps", "type": "total", "target": 10}], predict={"mode": "off"}
        )
    )
    decision, state = decide(
        spec, TargetState(), Capacity.steady(2), [Observation.value("rps", T0, 15.0)], T0
    )
    assert all(step.code != Step.PREDICTIVE_FLOOR for step in decision.steps)
    assert state.demand_history == DemandHistory()


def test_a_failed_read_is_not_demand() -> None:
    spec = target(rule(max=6, track=[{"metric": "rps", "type": "total", "target": 10}], predict={}))
    _, state = decide(
        spec, TargetState(), Capacity.steady(2), [Observation.value("rps", T0, math.nan)], T0
    )
    assert state.demand_history == DemandHistory()
