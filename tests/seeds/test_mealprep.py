"""MealPrep: the API, the jobs, the database and the Redis cache as
``examples/seeds/mealprep/config.toml`` wires them (the first three include their seed rule
files from ``rules/``, the cache ``examples/seeds/mealprep/redis.toml``), each replayed on
the shared trace; and its alerts at max and on rapid scaling, through the daemon to a
webhook receiver on loopback."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from seeds.helpers import SEEDS, actions, check, daemon_config, drive, receiving, replay

CONFIG = SEEDS / "mealprep" / "config.toml"


def test_the_config_and_its_rule_files_load() -> None:
    out = check(CONFIG)
    assert "8 sources, 4 actuators, 4 targets" in out
    assert "ladder: Standard C1 -> Standard C2 -> Standard C3 -> Premium P2 -> Premium P3" in out
    check(SEEDS / "mealprep" / "redis.toml", rule_file=True)


def test_the_api_follows_its_four_metrics_within_2_to_20() -> None:
    # the trace's peak needs 24 replicas: more than max allows
    run = replay(CONFIG, target="api", peak_replicas=24)
    timeline = run.timeline

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert (min(timeline.provisioned), max(timeline.provisioned)) == (2, 20)
    # scale-up: at most +100 % or +5 per 30 s (the larger); scale-down: at most -50 % or
    # -2 per 60 s. Two 15 s ticks make a period up, four down.
    provisioned = [timeline.initial, *timeline.provisioned]
    for tick in range(2, len(provisioned)):
        start = provisioned[tick - 2]
        assert provisioned[tick] <= max(2 * start, start + 5), tick
    for tick in range(4, len(provisioned)):
        start = provisioned[tick - 4]
        assert provisioned[tick] >= min(start // 2, start - 2), tick


def test_the_jobs_stay_within_1_to_10() -> None:
    run = replay(CONFIG, target="jobs", peak_replicas=12)

    assert run.timeline.metric_failures == 0
    assert run.within_bounds()
    assert max(run.timeline.provisioned) == 10


def test_the_database_adds_two_vcore_steps_and_removes_one() -> None:
    run = replay(CONFIG, target="database", peak_replicas=12)
    timeline = run.timeline
    changes = actions(timeline)

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert max(timeline.provisioned) == 10
    # +2 (or what is left below max) and -1, at least 5 minutes after the last change
    # the same way
    assert all(c.after - c.before in (1, 2, -1) for c in changes)
    assert all(c.after - c.before == 2 for c in changes if c.after > c.before and c.after < 10)
    for direction in (1, -1):
        same = [c for c in changes if (c.after - c.before) * direction > 0]
        assert all(b.seconds - a.seconds >= 300 for a, b in pairwise(same))
    # the tier in effect: GP_Gen5_<2 x position>
    assert timeline.tier_units is not None and timeline.tier_units[:3] == (2.0, 4.0, 6.0)


def test_the_cache_climbs_its_tiers_in_order_and_never_leaves_premium() -> None:
    run = replay(CONFIG, target="redis", scale=0.12)
    timeline = run.timeline
    assert timeline.units is not None and timeline.tier_units is not None
    changes = actions(timeline)

    assert timeline.metric_failures == 0
    # one tier at a time, in the ladder's order: C1, C2, C3, then Premium P2
    assert [(c.before, c.after) for c in changes] == [(1, 2), (2, 3), (3, 4)]
    in_effect = list(dict.fromkeys(timeline.units))
    assert in_effect == list(timeline.tier_units[:4])
    # the next change waits for the last to complete (20 minutes) and its cooldown
    assert all(b.seconds - a.seconds >= 20 * 60 for a, b in pairwise(changes))


def test_a_quiet_cache_on_premium_holds_instead_of_going_back_to_standard() -> None:
    # on Premium P2 (position 4) with almost no memory used: -1 would be Standard C3
    run = replay(CONFIG, target="redis", scale=0.001, initial=4)
    timeline = run.timeline
    assert timeline.not_scaled is not None

    assert set(timeline.provisioned) == {4}
    assert any("transition" in reason.lower() for reason in timeline.not_scaled)


# --- alerts -------------------------------------------------------------------------------

# the other targets' metrics: quiet, inside every rule's dead band
QUIET = {
    "api-memory": [40.0],
    "api-concurrency": [10.0],
    "api-latency": [0.2],
    "jobs-queue": [0.0],
    "jobs-cpu": [30.0],
    "db-cpu": [50.0],
    "redis-memory": [50.0],
}
TICKS = 40  # ten minutes of the API's 15 s evaluations


async def _alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_cpu: float, api_from: int
) -> tuple[list[tuple[str, str]], list[int]]:
    """The alerts the API's evaluations give rise to, at ``api_cpu`` % CPU from
    ``api_from`` replicas, and the API's capacity after each evaluation."""
    async with receiving(monkeypatch, "SCALERD_ONCALL_URL", "SCALERD_ONCALL_KEY") as hook:
        config = daemon_config(
            CONFIG,
            tmp_path,
            {
                **{name: values * TICKS for name, values in QUIET.items()},
                "api-cpu": [api_cpu] * TICKS,
            },
            step="15s",
            initial={"api": api_from},
        )
        driven = await drive(config, TICKS, timedelta(seconds=15))
        sent = [(event["type"], event["subject"]) for event in hook.events]
    return sent, [record.desired or 0 for record in driven.of("api")]


async def test_a_surge_to_max_alerts_once_on_rapid_scaling_and_once_at_max(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent, api = await _alerts(tmp_path, monkeypatch, api_cpu=100.0, api_from=2)

    assert api[-1] == 20
    assert sent == [("io.scalerd.rapid_scaling", "api"), ("io.scalerd.at_max", "api")]


async def test_reaching_max_in_one_step_alerts_at_max_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent, api = await _alerts(tmp_path, monkeypatch, api_cpu=100.0, api_from=19)

    assert api[-1] == 20
    assert sent == [("io.scalerd.at_max", "api")]


async def test_steady_load_alerts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent, api = await _alerts(tmp_path, monkeypatch, api_cpu=70.0, api_from=4)

    assert set(api) == {4}
    assert sent == []
