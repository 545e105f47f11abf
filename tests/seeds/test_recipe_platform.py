"""The recipe platform: its API adds 2 instances when CPU is above 70 % or an instance
serves more than 1,000 requests/s, then cools down for 5 minutes
(``rules/recipe-platform-api.toml``), and on-call hears when the database's replication lag
exceeds 1 s (the rule file's ``[[alert]]``, wired by
``examples/seeds/recipe-platform/config.toml``). Replayed on the shared trace, and run
through the daemon with its notifications going to a webhook receiver on loopback."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest

from seeds.helpers import RULES, SEEDS, actions, check, daemon_config, drive, receiving, replay

RULE = RULES / "recipe-platform-api.toml"
CONFIG = SEEDS / "recipe-platform" / "config.toml"


def test_the_rule_file_and_the_config_load() -> None:
    assert "alert: when replication lag > 1 max 5m" in check(RULE, rule_file=True)
    out = check(CONFIG)
    assert "metric 'replication lag' <- azure-monitor 'db-replication-lag'" in out


def test_it_adds_two_instances_whenever_a_rule_holds_and_the_cooldown_is_over() -> None:
    # the trace's peak needs 30 instances
    run = replay(RULE, peak_replicas=30)
    timeline = run.timeline
    outs = actions(timeline)

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert len(outs) >= 5
    assert all(change.after - change.before == 2 for change in outs)  # never in, always +2
    assert all(b.seconds - a.seconds >= 300 for a, b in pairwise(outs))
    # a tick scales out exactly when either 5-minute average is past its threshold and the
    # last scale-out is 5 minutes old. The readings arrive 3 minutes late, so a 5-minute
    # window holds the two newest (each tick's reading is stamped when it was measured).
    cpu, rate = timeline.readings["cpu"], timeline.readings["requests per instance"]
    held = 5 - run.scenario.delay_ticks
    assert held == 2
    last = None
    for tick in range(len(timeline)):
        window = slice(max(0, tick - held + 1), tick + 1)
        fires = fmean(cpu[window]) > 70 or fmean(rate[window]) > 1000
        cooled = last is None or tick - last >= 5
        scaled = timeline.provisioned[tick] != (timeline.provisioned[tick - 1] if tick else 1)
        assert scaled == (fires and cooled), tick
        last = tick if scaled else last


async def _run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lag: list[float],
    cpu: float = 50.0,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The notifications and the API's records of one evaluation a minute, reading
    ``lag`` (one value a minute) and a steady ``cpu``."""
    async with receiving(monkeypatch, "SCALERD_ONCALL_URL", "SCALERD_ONCALL_KEY") as hook:
        minutes = len(lag)
        config = daemon_config(
            CONFIG,
            tmp_path,
            {
                "api-cpu": [cpu] * minutes,
                "api-requests": [500.0] * minutes,
                "db-replication-lag": lag,
            },
        )
        driven = await drive(config, minutes, timedelta(minutes=1))
        return list(hook.events), driven.of("api")


async def test_lag_above_1_s_is_told_once_each_time_it_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # above 1 s for 3 minutes, back under it for 10, above again for 2
    lag = [0.2] * 5 + [1.5] * 3 + [0.3] * 10 + [2.0] * 2 + [0.4] * 10
    events, records = await _run(tmp_path, monkeypatch, lag)

    alerts = [event for event in events if event["type"] == "io.scalerd.alert"]
    assert len(alerts) == 2
    assert all(event["subject"] == "api" for event in alerts)
    assert [event["data"]["alert"] for event in alerts] == ["replication lag above 1 s"] * 2
    assert alerts[0]["data"]["text"] == "replication lag=1.5: holds"
    assert alerts[1]["data"]["text"] == "replication lag=2: holds"
    # the minutes they came from: the first reading above 1 s of each episode
    at = {record.id: index for index, record in enumerate(records)}
    assert [at[event["data"]["record"]] for event in alerts] == [5, 18]
    # it scaled nothing
    assert {record.desired for record in records} == {1}
    assert not [event for event in events if event["type"] == "io.scalerd.scaled"]


@pytest.mark.parametrize("lag", [0.8, 1.0], ids=["0.8 s", "exactly 1 s"])
async def test_lag_of_1_s_or_less_is_not_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lag: float
) -> None:
    events, records = await _run(tmp_path, monkeypatch, [lag] * 15)

    assert len(records) == 15
    assert all(
        report["kind"] != "alert" or not report["fired"]
        for record in records
        for report in record.rules
    )
    assert events == []


async def test_busy_cpu_adds_two_instances_every_5_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, records = await _run(tmp_path, monkeypatch, [0.1] * 21, cpu=90.0)

    scaled = [record for record in records if record.action == "scaled"]
    assert [record.desired for record in scaled] == [3, 5, 7, 9, 11]
    assert all(b.ts - a.ts == timedelta(minutes=5) for a, b in pairwise(scaled))
    told = [event["data"]["after"] for event in events if event["type"] == "io.scalerd.scaled"]
    assert told == [3, 5, 7, 9, 11]
