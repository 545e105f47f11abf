"""Target tracking arithmetic: cases of the Kubernetes HPA replica calculator
(pkg/controller/podautoscaler/replica_calculator_test.go) in scalerd's terms.

scalerd sees capacity as two numbers, provisioned and ready; replicas that are not ready
report no metric — the calculator's *missing* pods: 0 % of target when scaling up, 100 %
(``max(100, target)`` for utilization) when scaling down. Metric values are the average
over the ready replicas (``utilization``, ``average``) or a total (``total``).
"""

from __future__ import annotations

import pytest

from scalerd.core import Capacity
from scalerd.core.recommend import track_replicas
from scalerd.core.rules import Tolerance, Track

from .build import Run, rule, target


def _track(kind: str, value: float) -> Track:
    return Track(metric="m", type=kind, target=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "target_value", "value", "provisioned", "ready", "tolerance", "expected"),
    [
        # --- resource utilization (GetResourceReplicas) ---------------------------------
        # "scale up": 3 pods at 30/50/70 % -> 50 % vs 30: ceil(3 x 50/30) = 5
        pytest.param("utilization", 30, 50, 3, 3, 0.1, 5, id="resource: scale up"),
        # "scale down": 5 pods average 28 % vs 50: ceil(5 x 0.56) = 3
        pytest.param("utilization", 50, 28, 5, 5, 0.1, 3, id="resource: scale down"),
        # "some pods missing metrics scales down": 2 of 4 report 24.75 % vs 100; missing as
        # 100 %: (24.75 x 2 + 100 x 2) / (100 x 4) = 0.624 -> ceil(0.624 x 4) = 3
        pytest.param(
            "utilization", 100, 24.75, 4, 2, 0.1, 3, id="resource: missing metrics scale down"
        ),
        # "no change: metric equal to target": ratio 1
        pytest.param(
            "utilization", 100, 100, 2, 1, 0.1, 2, id="resource: missing, equal to target"
        ),
        # "no change: metric above target": 190 % -> missing as 0: 190/200 = 0.95, tolerance
        pytest.param("utilization", 100, 190, 2, 1, 0.1, 2, id="resource: missing, above target"),
        # "no change: metric below target": 60 % -> missing as 100: 0.8 -> ceil(1.6) = 2
        pytest.param("utilization", 100, 60, 2, 1, 0.1, 2, id="resource: missing, below target"),
        # "scale up: unready pod metric missing": one ready at 200 % vs 50: 200/(50 x 3) =
        # 1.333 -> ceil(4.0) = 4
        pytest.param("utilization", 50, 200, 3, 1, 0.1, 4, id="resource: scale up with missing"),
        # "within default tolerance": 102 % vs 100
        pytest.param(
            "utilization", 100, 102, 3, 3, 0.1, 3, id="resource: within default tolerance"
        ),
        # "outside 0% tolerance": 101 % -> ceil(3.03) = 4
        pytest.param("utilization", 100, 101, 3, 3, 0.0, 4, id="resource: outside 0% tolerance"),
        # --- pods metric (GetMetricReplicas): per-replica average ----------------------
        # "scale up": (20 + 10 + 30)/3 = 20 vs 15 -> ceil(3 x 1.333) = 4
        pytest.param("average", 15000, 20000, 3, 3, 0.1, 4, id="pods: scale up"),
        # "scale down": 12 vs 20 -> ceil(5 x 0.6) = 3
        pytest.param("average", 20000, 12000, 5, 5, 0.1, 3, id="pods: scale down"),
        # "within default tolerance": 20.667 vs 20 = 1.033
        pytest.param("average", 20000, 62000 / 3, 3, 3, 0.1, 3, id="pods: within tolerance"),
        # "no change: missing metrics": 3 of 5 report exactly the target
        pytest.param("average", 20000, 20000, 5, 3, 0.1, 5, id="pods: missing metrics, at target"),
        # --- external per-pod (GetExternalPerPodMetricReplicas): a total ----------------
        # 8600 / (2150 x 3) = 1.333 -> ceil(8600 / 2150) = 4
        pytest.param("total", 2150, 8600, 3, 3, 0.1, 4, id="external: scale up"),
        # 8600 / (2867 x 5) = 0.5999 -> ceil(2.9996) = 3
        pytest.param("total", 2867, 8600, 5, 5, 0.1, 3, id="external: scale down"),
        # 8600 / (2900 x 3) = 0.9885: within tolerance
        pytest.param("total", 2900, 8600, 3, 3, 0.1, 3, id="external: within tolerance"),
        # the tolerance ratio uses provisioned replicas, not ready ones (statusReplicas)
        pytest.param(
            "total", 2900, 8600, 3, 1, 0.1, 3, id="external: tolerance against provisioned"
        ),
        # statusReplicas 0: ceil(20000 / 5000) = 4, and 0 stays 0
        pytest.param("total", 5000, 20000, 0, 0, 0.1, 4, id="external: from zero"),
        pytest.param("total", 5000, 0, 0, 0, 0.1, 0, id="external: zero stays zero"),
    ],
)
def test_replica_calculator_cases(
    kind: str,
    target_value: float,
    value: float,
    provisioned: int,
    ready: int,
    tolerance: float,
    expected: int,
) -> None:
    replicas, _, detail = track_replicas(
        _track(kind, target_value),
        value,
        Capacity(provisioned, ready),
        Tolerance(up=tolerance, down=tolerance),
    )
    assert replicas == expected, detail


@pytest.mark.parametrize(
    ("up", "down", "value", "expected"),
    [
        # ratios against a target of 100 with 3 replicas; the band [1 - down, 1 + up] is inclusive
        pytest.param(2.0, 0.1, 190, 3, id="within 200% scale-up tolerance"),
        pytest.param(0.08, 2.0, 109, 4, id="outside 8% scale-up tolerance"),  # ceil(3 x 1.09) = 4
        pytest.param(0.1, 0.36, 65, 3, id="within 36% scale-down tolerance"),  # 0.65 >= 0.64
        pytest.param(0.1, 0.34, 65, 2, id="outside 34% scale-down tolerance"),  # ceil(1.95) = 2
        pytest.param(0.1, 0.1, 110, 3, id="exactly at 1 + tolerance: no change"),
        pytest.param(0.1, 0.1, 90, 3, id="exactly at 1 - tolerance: no change"),
    ],
)
def test_per_direction_tolerance(up: float, down: float, value: float, expected: int) -> None:
    replicas, _, _ = track_replicas(
        _track("utilization", 100), value, Capacity.steady(3), Tolerance(up=up, down=down)
    )
    assert replicas == expected


def test_outside_configurable_one_percent_tolerance() -> None:
    # pods metric 20.667 vs 20 = 1.033: within 0.1, outside 0.01 -> ceil(3 x 1.033) = 4
    replicas, _, _ = track_replicas(
        _track("average", 20000), 62000 / 3, Capacity.steady(3), Tolerance(up=0.01, down=0.1)
    )
    assert replicas == 4


def test_starting_replicas_are_not_asked_for_twice() -> None:
    """A 10 -> 30 step. Counting starting replicas in the per-ready average would ask for
    ceil(30 x 3) = 90 at the next tick (and keep doubling to the maximum); counting them as
    0 % gives (3 x 10 + 0 x 20) / 30 = 1.0: the scale-up under way is enough."""
    spec = target(
        rule(
            max=200,
            track=[{"metric": "cpu", "type": "utilization", "target": 30}],
            behavior={
                "scale_up": {"policies": [{"type": "percent", "value": 900, "period": "15s"}]}
            },
        )
    )
    run = Run(spec, 10)
    assert run.tick(0, cpu=90).desired == 30  # ceil(10 x 90 / 30)
    # 30 provisioned, the same 10 ready still at 90 %
    held = run.tick(15, capacity=_starting(30, 10), cpu=90)
    assert held.desired == 30
    assert "20 starting counted as 0" in held.rules[0].detail
    # half the new ones ready, load spread over 20: 45 %; (45 x 20 + 0 x 10) / (30 x 30) = 1.0
    assert run.tick(30, capacity=_starting(30, 20), cpu=45).desired == 30


def _starting(provisioned: int, ready: int) -> Capacity:
    return Capacity(provisioned, ready)


def test_several_metrics_take_the_largest() -> None:
    spec = target(
        rule(
            max=50,
            track=[
                {"metric": "cpu", "type": "utilization", "target": 50},
                {"metric": "queue", "type": "total", "target": 10},
            ],
        )
    )
    decision = Run(spec, 4).tick(0, cpu=75, queue=130)  # cpu: ceil(4 x 1.5) = 6; queue: 13
    assert decision.recommended == 13
    assert [r.proposed for r in decision.rules] == [6, 13]


def test_failed_metric_forbids_scale_in_but_not_scale_out() -> None:
    spec = target(
        rule(
            max=50,
            track=[
                {"metric": "cpu", "type": "utilization", "target": 50},
                {"metric": "queue", "type": "total", "target": 10},
            ],
        )
    )
    run = Run(spec, 10)
    down = run.tick(0, cpu=10, queue=None)  # cpu alone says 2: not while queue is unknown
    assert (down.desired, str(down.not_scaled_reason)) == (10, "MetricFailure")
    up = run.tick(15, cpu=100, queue=None)  # cpu says 20: scale-out on a healthy metric is fine
    assert up.desired == 20
