"""Pravis: its API behind a Kubernetes HPA (CPU 70 %, 2..10; ``rules/pravis-api.toml``) or
on Azure App Service (CPU 70 % with a business-hours profile;
``examples/seeds/pravis/app-service.toml``), each loaded as ``scalerd check`` loads it and
replayed on the shared trace."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from seeds.helpers import RULES, SEEDS, actions, check, replay

HPA = RULES / "pravis-api.toml"
KUBERNETES = SEEDS / "pravis" / "config.toml"
APP_SERVICE = SEEDS / "pravis" / "app-service.toml"
APP_SERVICE_CONFIG = SEEDS / "pravis" / "config-app-service.toml"
BERLIN = ZoneInfo("Europe/Berlin")


def test_the_hpa_keeps_cpu_at_70_percent_within_2_to_10() -> None:
    assert "capacity 2..10" in check(HPA, rule_file=True)
    # the trace's peak needs 12 replicas at full CPU: more than max allows
    run = replay(HPA, peak_replicas=12)
    timeline = run.timeline

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert set(timeline.minimum or ()) == {2} and set(timeline.maximum or ()) == {10}
    assert max(timeline.provisioned) == 10
    # a trace whose peak one replica serves: never below min
    assert set(replay(HPA, peak_replicas=1).timeline.provisioned) == {2}
    # the HPA's arithmetic on every tick that starts from a settled pool (all replicas
    # ready, as they were a tick earlier): outside the 0.1 tolerance it asks for
    # ceil(ready x cpu / 70), inside it keeps what it has
    checked = 0
    for tick in range(1, len(timeline)):
        ready = timeline.ready[tick - 1]
        if timeline.provisioned[tick - 1] != ready or timeline.ready[tick - 2] != ready:
            continue
        cpu = timeline.readings["cpu"][tick]
        expected = ready if abs(cpu / 70 - 1) <= 0.1 else math.ceil(ready * cpu / 70)
        assert timeline.recommended[tick] == expected, tick
        checked += 1
    assert checked > len(timeline) // 2


def test_the_kubernetes_config_replays_as_its_rule_file() -> None:
    out = check(KUBERNETES)
    assert "api: scales kubernetes 'api' (Deployment pravis/pravis-api, in-cluster)" in out
    wired = replay(KUBERNETES, target="api", peak_replicas=12).timeline
    alone = replay(HPA, peak_replicas=12).timeline

    assert list(wired.provisioned) == list(alone.provisioned)
    assert max(wired.provisioned) == 10


def _business_hours(at: datetime) -> bool:
    local = at.astimezone(BERLIN)
    return local.weekday() < 5 and 8 <= local.hour < 18


@pytest.mark.parametrize(
    ("start", "opens_utc", "closes_utc"),
    [
        pytest.param("2024-01-01T00:00:00Z", 7, 17, id="winter, Berlin on UTC+1"),
        pytest.param("2024-07-01T00:00:00Z", 6, 16, id="summer, Berlin on UTC+2"),
    ],
)
def test_the_business_hours_profile_moves_the_bounds_at_08_and_18_berlin_time(
    start: str, opens_utc: int, closes_utc: int
) -> None:
    assert "(Europe/Berlin): min 4, max 10" in check(APP_SERVICE, rule_file=True)
    # a Monday; the trace's peak needs 12 instances, more than either profile allows
    run = replay(APP_SERVICE, start=datetime.fromisoformat(start), peak_replicas=12)
    timeline = run.timeline
    assert timeline.minimum is not None and timeline.maximum is not None

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    for tick in range(len(timeline)):
        inside = _business_hours(run.at(tick))
        bounds = (timeline.minimum[tick], timeline.maximum[tick])
        assert bounds == ((4, 10) if inside else (2, 6)), run.at(tick)
    # the boundaries, in UTC, move with Berlin's clock change
    per_hour = 3600 // int(timeline.interval)
    opens, closes = opens_utc * per_hour, closes_utc * per_hour
    assert (timeline.minimum[opens - 1], timeline.minimum[opens]) == (2, 4)
    assert (timeline.maximum[closes - 1], timeline.maximum[closes]) == (10, 6)
    # the profile's bounds apply from the tick it opens or closes, as Azure's do
    assert timeline.provisioned[opens] >= 4
    assert timeline.provisioned[closes] <= 6
    # the business day uses the room above the night's max of 6
    assert max(timeline.provisioned[opens:closes]) > 6


def test_the_app_service_config_replays_as_its_rule_file() -> None:
    out = check(APP_SERVICE_CONFIG)
    assert "api: scales azure-app-service 'plan' (plan pravis-plan" in out
    wired = replay(APP_SERVICE_CONFIG, target="api", peak_replicas=12).timeline
    alone = replay(APP_SERVICE, peak_replicas=12).timeline

    assert list(wired.provisioned) == list(alone.provisioned)
    assert list(wired.maximum or ()) == list(alone.maximum or ())
    assert set(wired.maximum or ()) == {6, 10}


def test_the_profile_stays_closed_at_the_weekend() -> None:
    saturday = datetime(2024, 1, 6, tzinfo=UTC)
    run = replay(APP_SERVICE, start=saturday, peak_replicas=12)

    assert set(run.timeline.minimum or ()) == {2} and set(run.timeline.maximum or ()) == {6}
    assert run.within_bounds()
    assert max(run.timeline.provisioned) == 6


def test_app_service_scales_out_one_instance_at_a_time_five_minutes_apart() -> None:
    run = replay(APP_SERVICE, peak_replicas=12)
    timeline = run.timeline
    assert timeline.minimum is not None
    # a scale-out the rules made (not the profile's min rising under the plan)
    outs = [
        action
        for action in actions(timeline)
        if action.after > action.before
        and timeline.minimum[action.tick] == timeline.minimum[action.tick - 1]
    ]

    assert len(outs) >= 3
    assert all(action.after - action.before == 1 for action in outs)
    gaps = [b.seconds - a.seconds for a, b in pairwise(outs)]
    assert min(gaps) >= timedelta(minutes=5).total_seconds()
