"""Scores from a timeline's columns, on a timeline built by hand."""

from __future__ import annotations

from array import array

import pytest

from scalerd.simulate.run import Timeline
from scalerd.simulate.scores import score


def timeline(
    demand: list[float], provisioned: list[int], ready: list[int], interval: float = 60.0
) -> Timeline:
    return Timeline(
        interval=interval,
        capacity=2.0,
        initial=1,
        scale=1.0,
        demand=array("d", demand),
        readings={},
        recommended=array("q", provisioned),
        desired=array("q", provisioned),
        provisioned=array("q", provisioned),
        ready=array("q", ready),
        metric_failures=0,
    )


def test_scores_of_a_hand_built_timeline() -> None:
    # capacity 2 per replica, 60 s ticks, 1 replica before the first tick
    scores = score(timeline([1.0, 5.0, 3.0, 0.0], provisioned=[1, 3, 3, 1], ready=[1, 1, 3, 1]))

    assert scores.cost_replica_seconds == (1 + 3 + 3 + 1) * 60
    # the limit needs 1, 3, 2 and 0 replicas
    assert scores.limit_replica_seconds == (1 + 3 + 2 + 0) * 60
    assert scores.cost_ratio_to_limit == pytest.approx(8 / 6, abs=1e-6)
    # tick 1 only: 5 > 1 x 2, short by 3/s for 60 s
    assert scores.underprovisioned_seconds == 60
    assert scores.underprovisioned_fraction == 0.25
    assert scores.unserved_work == 180
    assert scores.unserved_fraction == pytest.approx(180 / (9 * 60), abs=1e-6)
    # up at tick 1, down at tick 3, 120 s later: one reversal
    assert (scores.scale_actions, scores.reversals, scores.max_provisioned) == (2, 1, 3)


@pytest.mark.parametrize(
    ("interval", "reversals"),
    [
        pytest.param(300.0, 1, id="600 s apart: within 10 minutes"),
        pytest.param(301.0, 0, id="602 s apart: not a flap"),
    ],
)
def test_a_reversal_is_a_change_of_direction_within_ten_minutes(
    interval: float, reversals: int
) -> None:
    # up at tick 1, down at tick 3: 2 intervals apart
    scores = score(
        timeline([0.0] * 4, provisioned=[1, 2, 2, 1], ready=[1, 2, 2, 1], interval=interval)
    )

    assert (scores.scale_actions, scores.reversals) == (2, reversals)


def test_two_moves_the_same_way_are_no_reversal() -> None:
    scores = score(timeline([0.0] * 3, provisioned=[2, 3, 4], ready=[2, 3, 4]))

    assert (scores.scale_actions, scores.reversals) == (3, 0)


def test_no_demand_has_no_limit_to_compare_with() -> None:
    scores = score(timeline([0.0, 0.0], provisioned=[1, 1], ready=[1, 1]))

    assert (scores.cost_ratio_to_limit, scores.unserved_fraction) == (None, None)
