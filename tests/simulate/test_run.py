"""The replay loop on tiny traces, every row worked out by hand.

Reminders for the arithmetic: tick ``i`` covers ``[i x interval, (i + 1) x interval)``; a
reading at tick ``i`` describes the tick that just ended (tick 0 reads the first tick's
own state, as if it had lasted forever), arriving ``metric_delay`` (in whole intervals)
later; provisioned and ready are the capacity after the tick's decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.settings import SimulateSettings
from scalerd.simulate.run import simulate, tick_demand, trace_scale
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import Trace, TraceError

from .build import pinned, replay, rule_file

# Total arrivals tracked at 1 per replica: desired = ceil(demand), no scale-down window.
FOLLOW = """\
    interval = "15s"
    min = 1
    max = 10
    [[track]]
    metric = "requests"
    type = "total"
    target = 1
    [behavior.scale_down]
    stabilization_window = "0s"
    [simulate]
    startup = "{startup}"
    [simulate.metrics]
    requests = "arrivals"
"""


@pytest.mark.parametrize("startup", ["30s", "20s"], ids=["30s", "20s rounds up to 2 ticks"])
def test_new_replicas_serve_startup_after_they_are_asked_for(tmp_path: Path, startup: str) -> None:
    timeline = replay(tmp_path, FOLLOW.format(startup=startup), [1, 1, 4, 4, 4, 4, 4])

    # tick 2: demand jumps to 4; tick 3 reads it and asks for 4; ready 2 ticks later
    assert list(timeline.readings["requests"]) == [1, 1, 1, 4, 4, 4, 4]
    assert list(timeline.desired) == [1, 1, 1, 4, 4, 4, 4]
    assert list(timeline.provisioned) == [1, 1, 1, 4, 4, 4, 4]
    assert list(timeline.ready) == [1, 1, 1, 1, 1, 4, 4]


def test_scale_in_is_immediate(tmp_path: Path) -> None:
    timeline = replay(tmp_path, FOLLOW.format(startup="30s"), [4, 4, 1, 1])

    # tick 0 reads 4 and asks for 4 (ready at tick 2); tick 3 reads 1 and goes back to 1
    assert list(timeline.provisioned) == [4, 4, 4, 1]
    assert list(timeline.ready) == [1, 1, 4, 1]


def test_the_queue_grows_by_the_shortfall_and_drains_to_zero(tmp_path: Path) -> None:
    # one replica serving 1/s, 10 s ticks: after each tick the queue is
    # 0 + (3 - 1) x 10 = 20, 40, then 40 - 10 = 30, 20, 10, 0, and never below 0
    timeline = replay(tmp_path, pinned("backlog", interval="10s"), [3, 3, 0, 0, 0, 0, 0], step=10)

    assert list(timeline.readings["m"]) == [0, 20, 40, 30, 20, 10, 0]


def test_the_queue_reading_counts_the_work_in_service(tmp_path: Path) -> None:
    # 2 s in service: a busy replica holds 1/s x 2 s = 2 more; at the last tick the queue
    # is empty and nothing arrives, so nothing is in service
    rule = pinned("backlog", interval="10s", service_time="2s")
    timeline = replay(tmp_path, rule, [3, 3, 0, 0, 0, 0, 0], step=10)

    assert list(timeline.readings["m"]) == [2, 22, 42, 32, 22, 12, 0]


@pytest.mark.parametrize("delay", ["30s", "20s"], ids=["30s", "20s rounds up to 2 ticks"])
def test_the_rules_get_readings_metric_delay_late(tmp_path: Path, delay: str) -> None:
    values = [1, 2, 3, 4, 5, 6]

    prompt = replay(tmp_path, pinned("arrivals"), values)
    late = replay(tmp_path, pinned("arrivals"), values, metric_delay=delay)

    # measured: the tick before (tick 0: its own) -> 1 1 2 3 4 5; two ticks later -> 1 1 1 1 2 3
    assert list(prompt.readings["m"]) == [1, 1, 2, 3, 4, 5]
    assert list(late.readings["m"]) == [1, 1, 1, 1, 2, 3]
    assert late.metric_failures == 0


def test_a_late_reading_is_never_stale(tmp_path: Path) -> None:
    scenario = load_scenario(
        rule_file(tmp_path, pinned("arrivals")), overrides={"metric_delay": "5m"}
    )

    # 5 minutes late, read every 15 s: at least 5m15s of max age (the daemon's own is 1m)
    assert scenario.spec.metrics["m"].max_age.total_seconds() == 315


def test_utilisation_is_capped_where_a_rate_is_not(tmp_path: Path) -> None:
    rule = """\
        interval = "15s"
        min = 1
        max = 1
        [[track]]
        metric = "cpu"
        type = "utilization"
        target = 50
        [[track]]
        metric = "rps"
        type = "average"
        target = 1
    """
    # one replica of capacity 1 against 3/s: 300 % of capacity
    timeline = replay(tmp_path, rule, [3, 3])

    assert list(timeline.readings["cpu"]) == [100, 100]
    assert list(timeline.readings["rps"]) == [3, 3]


def test_demand_is_the_average_over_each_tick(tmp_path: Path) -> None:
    # a 1 s trace 0, 1, ..., 30: ticks average 0..14 and 15..29; the 1 s left over is dropped
    trace = Trace.from_values(range(31), 1.0)

    assert list(tick_demand(trace, 15.0, 2.0)) == [2 * 7.0, 2 * 22.0]


def test_a_trace_shorter_than_one_interval_is_an_error() -> None:
    with pytest.raises(TraceError, match="shorter than one evaluation interval"):
        tick_demand(Trace.from_values([1, 2], 5.0), 15.0, 1.0)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(SimulateSettings(), 1.0, id="neither: as recorded"),
        pytest.param(SimulateSettings(scale=3), 3.0, id="scale"),
        # the highest row, 8, must need 40 replicas of 2: 40 x 2 / 8
        pytest.param(SimulateSettings(capacity=2, peak_replicas=40), 10.0, id="peak_replicas"),
    ],
)
def test_trace_scale(settings: SimulateSettings, expected: float) -> None:
    assert trace_scale(settings, Trace.from_values([1, 8, 2], 60.0)) == expected


def test_an_all_zero_trace_has_no_peak_to_scale(tmp_path: Path) -> None:
    scenario = load_scenario(
        rule_file(tmp_path, pinned("arrivals")), overrides={"peak_replicas": 5}
    )

    with pytest.raises(TraceError, match="every value is 0"):
        simulate(scenario, Trace.from_values([0, 0], 60.0))


def test_schedules_see_the_wall_time_set_by_start(tmp_path: Path) -> None:
    rule = """\
        interval = "60s"
        min = 1
        max = 5
        [[track]]
        metric = "requests"
        type = "total"
        target = 1
        [[schedule]]
        name = "nine-o-clock"
        cron = "0 9 * * *"
        duration = "30m"
        min = 3
        [behavior.scale_down]
        stabilization_window = "0s"
        [simulate]
        start = 2024-01-01T08:50:00Z
    """
    timeline = replay(tmp_path, rule, [0.5] * 60, step=60)

    # tick 10 is 09:00, when the profile raises min to 3; tick 40, 09:30, it closes
    assert [timeline.provisioned[tick] for tick in (9, 10, 39, 40)] == [1, 3, 3, 1]
