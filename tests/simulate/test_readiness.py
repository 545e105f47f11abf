"""A metric sample describes the replicas that were ready when it was measured.

The HPA's example: 15 replicas were ready when the CPU read 94 % (target 80), 18 are ready
now. The 3 new ones are not in that reading; Kubernetes counts them as 0 % on a scale-up
(its CPU-initialisation rule: a sample older than the pod's readiness does not count), so
94 x 15 / (80 x 18) = 0.979 is within tolerance and it holds at 18. Pairing the old reading
with today's 18 instead gives ceil(18 x 94 / 80) = 22.

And a differential test: scalerd's replay against an independent simulation of the HPA
controller (written from replica_calculator.go and horizontal.go, pod counts by readiness),
on the same trace and capacity model, tick by tick.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scalerd.core import Capacity, Observation, TargetState, decide
from scalerd.core import recommend as recommend_module
from scalerd.core.recommend import track_replicas
from scalerd.core.rules import MetricSpec, Rule, TargetSpec, Tolerance, Track
from scalerd.simulate.model import ReplicaPool, Workload, measure
from scalerd.simulate.run import simulate, tick_demand, trace_scale
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import load_trace

CPU_80 = Track(metric="cpu", type="utilization", target=80)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_the_calculator_counts_replicas_ready_since_the_reading_as_0_when_scaling_up() -> None:
    capacity = Capacity(18, 18)
    held, within, detail = track_replicas(CPU_80, 94, capacity, Tolerance(), reported=15)
    assert (held, within) == (18, True)
    assert "3 ready since the reading counted as 0" in detail
    naive, _, _ = track_replicas(CPU_80, 94, capacity, Tolerance())
    assert naive == 22


def test_the_calculator_leaves_them_out_when_scaling_down() -> None:
    # 40 % on the 15 that were measured: ceil(15 x 40 / 80) = 8, as the HPA's ready pods
    assert track_replicas(CPU_80, 40, Capacity(18, 18), Tolerance(), reported=15)[0] == 8


def test_decide_pairs_a_delayed_reading_with_the_replicas_ready_when_it_was_taken() -> None:
    spec = TargetSpec(
        name="api",
        rule=Rule.model_validate({"min": 1, "max": 40, "track": [CPU_80.model_dump()]}),
        metrics={"cpu": MetricSpec("cpu-source", timedelta(minutes=5))},
    )
    state = TargetState()
    # 15 ready until T0 + 60 s, then 18; the reading at T0 + 90 s was measured at T0 + 30 s
    for seconds, ready in ((0, 15), (30, 15), (60, 18)):
        now = T0 + timedelta(seconds=seconds)
        reading = Observation.value("cpu", now, 80.0)
        _, state = decide(spec, state, Capacity(18, ready), [reading], now)
    now = T0 + timedelta(seconds=90)
    late = Observation.value("cpu", T0 + timedelta(seconds=30), 94.0)
    decision, _ = decide(spec, state, Capacity(18, 18), [late], now)
    assert decision.recommended == 18


# --- the differential test ----------------------------------------------------------------

INTERVAL = 15
STARTUP = 60
DELAY = 60
MAX = 100


def burst_trace(tmp_path: Path) -> Path:
    """Six hours of demand rising and falling in steps and bursts (seeded), a row a minute."""
    rng = random.Random(615)
    level, rows = 30.0, []
    for minute in range(6 * 60):
        if minute % 40 == 0:
            level = rng.uniform(10, 90)
        value = max(0.0, level + rng.gauss(0, 3) + (40 if rng.random() < 0.04 else 0))
        rows.append(f"{minute * 60},{value:.3f}\n")
    path = tmp_path / "bursts.csv"
    path.write_text("t_seconds,value\n" + "".join(rows))
    return path


def hpa_rule(tmp_path: Path) -> Path:
    path = tmp_path / "hpa.toml"
    path.write_text(
        f'interval = "{INTERVAL}s"\nmin = 1\nmax = {MAX}\n\n'
        '[[track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 80\n\n'
        f'[simulate]\ncapacity = 1\nstartup = "{STARTUP}s"\nmetric_delay = "{DELAY}s"\n'
        'peak_replicas = 40\n\n[simulate.metrics]\ncpu = "utilization"\n'
    )
    return path


def kubernetes(demand: list[float], workload: Workload, initial: int) -> list[int]:
    """The HPA controller on the simulator's capacity model, from the Go sources.

    Pods are counted by readiness as ``groupPods`` does for CPU: pods that were ready when
    the reading was taken report it; pods ready only since then, and pods still starting
    (Pending), are unready: 0 % on a scale-up, left out otherwise. Then
    ``normalizeDesiredReplicasWithBehaviors`` with the default behavior: scale-up window 0,
    +max(4 pods, 100 %) per 15 s; scale-down window 300 s (the first recommendation is the
    current count), -100 % per 15 s; min 1, max 100. One tick is one 15-s sync period.
    """
    delay, startup = DELAY // INTERVAL, STARTUP // INTERVAL
    pool = ReplicaPool(initial, startup)
    measured: list[tuple[float, int]] = []  # (utilization, pods it covered), per tick
    recommendations: list[tuple[int, int]] = [(0, initial)]  # (tick, replicas)
    out: list[int] = []
    last_demand, last_ready = demand[0], pool.ready
    for tick, load in enumerate(demand):
        pool.promote(tick)
        measured.append(
            (measure("utilization", last_demand, last_ready, 0.0, workload), last_ready)
        )
        utilization, covered = measured[max(tick - delay, 0)]
        current = pool.provisioned
        reporting = min(covered, last_ready)
        unready = current - reporting
        ratio = utilization / 80
        if reporting == 0:
            raw = current
        elif not (unready > 0 and ratio > 1.0):
            raw = current if abs(1.0 - ratio) <= 0.1 else math.ceil(ratio * reporting)
        else:
            new_ratio = utilization * reporting / (80 * (reporting + unready))
            if abs(1.0 - new_ratio) <= 0.1 or (ratio > 1.0 > new_ratio):
                raw = current
            else:
                raw = math.ceil(new_ratio * (reporting + unready))
                raw = max(raw, current)
        recommendations = [(t, r) for t, r in recommendations if (tick - t) * INTERVAL < 300]
        recommendations.append((tick, raw))
        up = raw  # the scale-up window is 0 s: only this recommendation
        down = max(r for _, r in recommendations)
        stabilized = min(max(current, up), down)
        if stabilized > current:
            stabilized = min(stabilized, max(current + 4, 2 * current))
        desired = max(1, min(MAX, stabilized))
        if desired != current:
            pool.scale_to(desired, tick)
        out.append(desired)
        last_demand, last_ready = load, pool.ready
    return out


def agreement(tmp_path: Path) -> tuple[float, int]:
    scenario = load_scenario(hpa_rule(tmp_path))
    trace = load_trace(burst_trace(tmp_path))
    ours = list(simulate(scenario, trace).desired)
    demand = list(tick_demand(trace, INTERVAL, trace_scale(scenario.settings, trace)))
    theirs = kubernetes(demand, Workload.of(scenario.settings), scenario.initial)
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    return same / len(ours), len(set(ours))


def test_a_replay_agrees_with_the_hpa_controller_tick_by_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed, distinct = agreement(tmp_path)
    # the same replay, pairing each reading with the replicas ready now (the old pairing)
    monkeypatch.setattr(recommend_module, "_ready_at", lambda history, at: None)
    paired_now, _ = agreement(tmp_path)
    with capsys.disabled():
        print(
            f"\nHPA agreement: {fixed:.1%} of ticks (pairing readings with today's replicas: {paired_now:.1%})"
        )
    assert distinct > 10  # the trace really moves it
    assert fixed >= 0.95
    assert fixed > paired_now
