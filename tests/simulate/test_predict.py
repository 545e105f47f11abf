"""The predictive floor in a replay: a rise that comes at the same time every day is met
ahead of time once the history holds earlier days, and costs nothing where none is due."""

from __future__ import annotations

from pathlib import Path

from scalerd.simulate.run import Timeline

from .build import replay

RULE = """\
    interval = "60s"
    min = 1
    max = 40
    [tolerance]
    up = 0
    down = 0
    [[track]]
    name = "now"
    metric = "requests per second"
    type = "total"
    target = 100
    [behavior.scale_down]
    stabilization_window = "0s"
    {predict}
    [simulate]
    capacity = 100
    startup = "120s"
    [simulate.metrics]
    "requests per second" = "arrivals"
"""
PREDICT = """
    [predict]
    mode = "{mode}"
    lead = "3m"
    seasons = 2
    level_window = "30m"
"""


def daily_rise(days: int) -> list[float]:
    """A day of 60-s rows: 500/s, and 2,000/s from 09:00 to 10:00 (every day the same)."""
    day = [2000.0 if 540 <= minute < 600 else 500.0 for minute in range(1440)]
    return day * days


def test_the_floor_meets_a_daily_rise_before_it_comes(tmp_path: Path) -> None:
    trace = daily_rise(4)
    reactive = replay(tmp_path, RULE.format(predict=""), trace, step=60.0)
    floored = replay(tmp_path, RULE.format(predict=PREDICT.format(mode="on")), trace, step=60.0)
    shadow = replay(tmp_path, RULE.format(predict=PREDICT.format(mode="shadow")), trace, step=60.0)
    day, rise = 1440, 540

    def short(timeline: Timeline, first: int) -> list[int]:
        """The minutes of the day ``first`` that were under-provisioned, from the rise."""
        ticks = range(first * day + rise - 10, first * day + rise + 60)
        return [t - first * day for t in ticks if timeline.demand[t] > 100 * timeline.ready[t]]

    # a reactive rule is short for a tick plus the startup at each day's rise
    assert [short(reactive, d) for d in range(4)] == [[540, 541, 542, 543]] * 4
    # from the second day the floor has seen the rise and starts it a lead (3 m) ahead
    assert short(floored, 0) == [540, 541, 542, 543]
    assert [short(floored, d) for d in (1, 2, 3)] == [[]] * 3
    assert floored.provisioned[day + rise - 4] == 5 and floored.provisioned[day + rise - 2] == 20
    # the floor never scales in by itself: back to the rule's 5 once the rise is past
    assert floored.provisioned[day + 610] == 5
    # shadow computes the same floor and leaves capacity to the rules
    assert list(shadow.provisioned) == list(reactive.provisioned)
