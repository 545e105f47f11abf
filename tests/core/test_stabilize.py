"""Stabilization windows: the table of the Kubernetes HPA controller's
``TestNormalizeDesiredReplicasWithBehavior`` (pkg/controller/podautoscaler/horizontal_test.go),
case for case. History entries are (replicas, age). scalerd's history is append-only and
so always in time order; the Go table lists some out of order, so they are sorted here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from scalerd.core import Recommendation, Step
from scalerd.core.stabilize import stabilize

from .build import T0, behavior

NOW = T0 + timedelta(hours=3)


@dataclass(frozen=True)
class Case:
    history: tuple[tuple[int, int], ...]  # (replicas, age in seconds)
    current: int
    desired: int
    up_window: int
    down_window: int
    expected: int
    kept: tuple[int, ...] | None  # what the windows can still see, then the new one


CASES = [
    pytest.param(Case((), 100, 5, 0, 0, 5, (5,)), id="empty recommendations for scaling down"),
    # up window 0: lowest = 3; down window 180 s holds 4 and 5: highest = max(3, 4, 5) = 5
    pytest.param(
        Case(((4, 120), (5, 60)), 100, 3, 0, 180, 5, (4, 5, 3)),
        id="simple scale down stabilization",
    ),
    # up window 300 s: lowest = min(7, 4, 5) = 4; clamp(current 1, 4..7) = 4
    pytest.param(
        Case(((4, 120), (5, 60)), 1, 7, 300, 0, 4, (4, 5, 7)), id="simple scale up stabilization"
    ),
    pytest.param(
        Case(((1, 120), (2, 60)), 100, 3, 300, 0, 3, (1, 2, 3)), id="no scale down stabilization"
    ),
    pytest.param(
        Case(((4, 120), (5, 60)), 1, 3, 0, 300, 3, (4, 5, 3)), id="no scale up stabilization"
    ),
    # both windows 0: neither old entry counts. (Kubernetes reuses an obsolete slot; we
    # drop obsolete entries — they can never influence a result.)
    pytest.param(
        Case(((10, 600), (9, 540)), 100, 3, 0, 0, 3, (3,)),
        id="no scale down stabilization, reuse element",
    ),
    pytest.param(
        Case(((10, 600), (9, 540)), 1, 100, 0, 0, 100, (100,)),
        id="no scale up stabilization, reuse element",
    ),
    # down window 180 s sees 4 (60 s) and 5 (120 s): highest 5
    pytest.param(
        Case(((10, 600), (4, 60), (5, 120), (9, 540)), 100, 3, 0, 180, 5, (5, 4, 3)),
        id="scale down stabilization, reuse one of obsolete elements",
    ),
    # up window 300 s sees 6, 5, 9 (not the 100-minute-old 10): lowest = min(100, 6, 5, 9) = 5
    pytest.param(
        Case(((10, 6000), (6, 60), (5, 120), (9, 180)), 1, 100, 300, 0, 5, (9, 5, 6, 100)),
        id="scale up stabilization, reuse one of obsolete elements",
    ),
    # lowest min(1, 3) = 1, highest max(1, 3) = 3: clamp(current 2, 1..3) = 2
    pytest.param(
        Case(((2, 6000), (3, 180)), 2, 1, 300, 300, 2, None),
        id="do not scale up when prenormalized rec goes down",
    ),
    # lowest min(3, 1) = 1, highest max(3, 1) = 3: stays 2
    pytest.param(
        Case(((2, 6000), (1, 180)), 2, 3, 300, 300, 2, None),
        id="do not scale down when prenormalized rec goes up",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_kubernetes_stabilization_table(case: Case) -> None:
    oldest_first = sorted(case.history, key=lambda entry: -entry[1])
    history = tuple(
        Recommendation(NOW - timedelta(seconds=age), replicas) for replicas, age in oldest_first
    )
    rules = behavior(
        scale_up={"stabilization_window": f"{case.up_window}s"},
        scale_down={"stabilization_window": f"{case.down_window}s"},
    )
    stabilized, kept, reason = stabilize(case.desired, case.current, history, rules, NOW)
    assert stabilized == case.expected
    assert (reason.before, reason.after) == (case.desired, case.expected)
    if case.kept is not None:
        assert tuple(r.replicas for r in kept) == case.kept
        assert kept[-1] == Recommendation(NOW, case.desired)


def test_window_edge_is_exclusive() -> None:
    """A recommendation exactly ``window`` old no longer counts (Go's ``After(cutoff)``)."""
    rules = behavior(scale_down={"stabilization_window": "300s"})
    at_edge = (Recommendation(NOW - timedelta(seconds=300), 10),)
    just_inside = (Recommendation(NOW - timedelta(seconds=299), 10),)
    assert stabilize(4, 10, at_edge, rules, NOW)[0] == 4
    assert stabilize(4, 10, just_inside, rules, NOW)[0] == 10


def test_reason_names_direction() -> None:
    rules = behavior()
    assert stabilize(7, 5, (), rules, NOW)[2].code is Step.SCALE_UP_STABILIZED
    assert stabilize(3, 5, (), rules, NOW)[2].code is Step.SCALE_DOWN_STABILIZED


def test_a_target_seen_for_the_first_time_waits_out_its_scale_down_window() -> None:
    """Kubernetes records the current replicas as the first recommendation of a new HPA
    (``a.recommendations[key] = [{currentReplicas, now}]``): 5 replicas at 42 % of a 70 %
    target ask for 3, and the HPA holds 5 for its 300 s window before going down."""
    from .build import Run, rule, target

    spec = target(
        rule(min=1, max=10, track=[{"metric": "cpu", "type": "utilization", "target": 70}])
    )
    run = Run(spec, 5)
    first = run.tick(0, cpu=42)
    assert (first.recommended, first.desired) == (3, 5)
    assert first.not_scaled_reason == "StabilizationWindow"
    assert run.tick(285, cpu=42).desired == 5  # the first sight is still in the window
    assert run.tick(300, cpu=42).desired == 3  # strictly older than now - 300 s: it is out
    # scale-up is not held: the scale-up window is 0 s
    assert Run(spec, 5).tick(0, cpu=98).desired == 7
