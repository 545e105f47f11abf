"""ALwrity: its backend at 3..5 replicas on CPU 70 %, with scale-out held while the LLM
provider it calls is failing (``rules/alwrity-backend.toml``'s ``[[breaker]]``), and its
frontend fixed at 2 (``rules/alwrity-frontend.toml``), wired to Kubernetes by
``examples/seeds/alwrity/config.toml``. Replayed on the shared trace, and the backend's
breaker driven through the daemon."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon
from seeds.helpers import RULES, SEEDS, check, daemon_config, replay

BACKEND = RULES / "alwrity-backend.toml"
FRONTEND = RULES / "alwrity-frontend.toml"
CONFIG = SEEDS / "alwrity" / "config.toml"
COMPOSE = SEEDS / "alwrity" / "compose.toml"
# the shared trace scaled so that its peak needs 4 replicas at full CPU: 6 at 70 %, so
# the backend meets its max of 5 at the peak and its min of 3 at night
PEAK = 4


def test_the_rule_files_and_the_config_load() -> None:
    assert "capacity 3..5" in check(BACKEND, rule_file=True)
    assert "capacity 2..2" in check(FRONTEND, rule_file=True)
    out = check(CONFIG)
    assert "backend: scales kubernetes 'backend' (Deployment alwrity/alwrity-backend" in out
    assert "frontend: scales kubernetes 'frontend' (Deployment alwrity/alwrity-frontend" in out
    assert (
        "breaker llm-provider: holds scale-out while llm error rate avg 1m > 0.25, "
        "until < 0.05 for 3m (missing reading: keep)"
    ) in out


def test_both_configs_replay_the_backend_as_its_rule_file() -> None:
    out = check(COMPOSE)
    assert "backend: scales process-pool 'backend'" in out
    alone = replay(BACKEND, peak_replicas=PEAK).timeline
    for config in (CONFIG, COMPOSE):
        wired = replay(config, target="backend", peak_replicas=PEAK).timeline
        assert list(wired.provisioned) == list(alone.provisioned), config.name
        assert wired.breakers_open == alone.breakers_open


def test_the_backend_stays_within_3_to_5() -> None:
    run = replay(BACKEND, peak_replicas=PEAK)
    timeline = run.timeline

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert set(timeline.minimum or ()) == {3} and set(timeline.maximum or ()) == {5}
    assert min(timeline.provisioned) == 3 and max(timeline.provisioned) == 5


def test_scale_out_is_held_while_the_llm_provider_fails() -> None:
    run = replay(BACKEND, peak_replicas=PEAK)
    timeline = run.timeline
    interval = run.scenario.interval.total_seconds()
    opened = [tick for tick, names in enumerate(timeline.breakers_open or ()) if names]

    # the seed's provider fails from 5 h for 45 min: the breaker is open from then until
    # its 1-minute average has stayed below 5 % for 3 minutes after the failure ends
    assert opened == list(range(opened[0], opened[-1] + 1))  # one spell
    assert 5 * 3600 <= opened[0] * interval <= 5 * 3600 + 60
    assert 5.75 * 3600 + 180 <= opened[-1] * interval <= 5.75 * 3600 + 180 + 90
    assert {timeline.breakers_open[tick] for tick in opened} == {"llm-provider"}  # type: ignore[index]
    # never a scale-out while it is open, though the rules asked for one
    provisioned = timeline.provisioned
    assert all(provisioned[tick] <= provisioned[tick - 1] for tick in opened)
    wanted = [tick for tick in opened if timeline.recommended[tick] > provisioned[tick]]
    assert len(wanted) >= 10
    # the same day with a healthy provider scales out in that spell
    well = {"llm error rate": {"healthy": 0.01, "failing": 0.6, "failures": []}}
    healthy = replay(BACKEND, peak_replicas=PEAK, dependencies=well).timeline
    assert not any(healthy.breakers_open or ())
    assert max(healthy.provisioned[tick] for tick in opened) > max(
        provisioned[tick] for tick in opened
    )


def test_the_frontend_stays_at_2_and_is_put_back_when_it_drifts() -> None:
    for initial in (2, 1, 4):
        run = replay(FRONTEND, peak_replicas=6, initial=initial)
        assert run.timeline.metric_failures == 0
        assert set(run.timeline.provisioned) == {2}, initial


async def test_the_daemon_holds_the_backend_while_the_provider_fails(tmp_path: Path) -> None:
    # a minute a row: busy CPU throughout; the provider fails from minute 2 to minute 6
    cpu = [95.0] * 12
    errors = [0.01, 0.01, 0.6, 0.6, 0.6, 0.6, 0.6, 0.01, 0.01, 0.01, 0.01, 0.01]
    config = daemon_config(
        CONFIG,
        tmp_path,
        {"backend-cpu": cpu, "frontend-cpu": [10.0] * 12, "llm-errors": errors},
        initial={"backend": 3, "frontend": 3},
    )
    clock = ManualClock()
    records = []
    async with Daemon(config, clock=clock) as daemon:
        for _ in range(12 * 4):  # every 15 s for 12 minutes
            records.extend(await daemon.run_once())
            clock.advance(timedelta(seconds=15))
    backend = [record for record in records if record.target == "backend"]
    frontend = [record for record in records if record.target == "frontend"]

    assert {record.desired for record in frontend} == {2}  # put back from 3 at once
    held = [record for record in backend if record.not_scaled_reason == "BreakerOpen"]
    assert held, "the breaker never held a scale-out"
    step = next(step for step in held[0].steps if step["code"] == "breaker")
    assert step["detail"].startswith("breaker llm-provider open")
    assert "llm error rate" in step["detail"] and "held at" in step["detail"]
    assert max(record.desired for record in backend) == 5
    assert all(record.desired <= 5 for record in backend)
