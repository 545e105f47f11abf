"""[[drain]] in a replay: a batch lands in the queue, and the consumers scaled by the drain
rule empty it within the drain time (plus their startup) when a scale-down window as long
as the drain time holds the capacity the batch needed."""

from __future__ import annotations

from pathlib import Path

from .build import replay

RULE = """\
    interval = "15s"
    min = 1
    max = 100
    tolerance = 0
    [[drain]]
    backlog = "queue length"
    arrivals = "incoming messages"
    rate = 10
    within = "{within}"
    [behavior.scale_down]
    stabilization_window = "{within}"
    [simulate]
    capacity = 10
    startup = "30s"
    [simulate.metrics]
    "queue length" = "backlog"
    "incoming messages" = "arrivals"
"""


def batch() -> list[float]:
    """15-s rows: 25 messages/s, and a batch of 36,000 (2,400/s for 15 s) at 5 minutes."""
    values = [25.0] * 120
    values[20] = 2400.0
    return values


def test_a_batch_is_drained_within_the_drain_time(tmp_path: Path) -> None:
    timeline = replay(tmp_path, RULE.format(within="5m"), batch(), step=15.0)
    queue = timeline.readings["queue length"]
    # the rule sees the batch one tick later: (25/s + 35,475 / 300 s) / 10 = 14.3 -> 15
    assert max(timeline.provisioned) == 15
    # empty again (only what is in service left) within the drain time, the startup (2
    # ticks) and the tick the reading describes
    landed = 21  # the first reading that holds the batch
    drained = next(t for t in range(landed, len(queue)) if queue[t] < 10)
    assert drained - landed <= (300 + 30 + 15) // 15
    # and back to what the arrivals need (25/s at 10/s: 3 replicas) once the window is past
    assert timeline.provisioned[-1] == 3


def test_a_shorter_drain_time_buys_more_replicas_for_less_time(tmp_path: Path) -> None:
    slow = replay(tmp_path, RULE.format(within="5m"), batch(), step=15.0)
    fast = replay(tmp_path, RULE.format(within="1m"), batch(), step=15.0)
    assert max(fast.provisioned) > max(slow.provisioned)
    slow_queue, fast_queue = slow.readings["queue length"], fast.readings["queue length"]
    assert sum(q >= 10 for q in fast_queue) < sum(q >= 10 for q in slow_queue)
