"""Replaying a target on a ladder of tiers (a database, a cache): tier changes that take
time and hold the core while in flight, restarts that serve nothing, forbidden moves
stepped around, and scores in units that recompute from ``timeline.csv``."""

from __future__ import annotations

import csv
import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from scalerd.cli import main
from scalerd.errors import ConfigError
from scalerd.simulate.scenario import load_scenario

RESOURCES = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shop/providers"


def ladder_config(metric: str, actuator: str, rules: str, simulate: str) -> str:
    """A config with one target on the ladder ``actuator`` describes, reading ``metric``
    (its source is never read: simulate models it). The cooldowns are shorter than a
    change, so only the operation in flight keeps the core from moving again."""
    return f"""\
[[sources]]
name = "{metric}"
kind = "replay"
values = [50]
step = "60s"

[[actuators]]
name = "ladder"
{actuator}

[[targets]]
name = "{metric}-ladder"
actuator = "ladder"
interval = "1m"
min = 1
max = 3
cooldown = {{ up = "1m", down = "1m" }}
{rules}
[targets.simulate]
capacity = 1
{simulate}
"""


POSTGRES_SERVER = f"""\
kind = "azure-postgres-flexible"
resource_id = "{RESOURCES}/Microsoft.DBforPostgreSQL/flexibleServers/shop-db"
skus = ["Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]"""

CPU_THRESHOLDS = """\
[[targets.threshold]]
when = "cpu > 80 avg 3m"
action = "+1"
[[targets.threshold]]
when = "cpu < 20 avg 3m"
action = "-1"
"""


def postgres(change_time: str, server: str = POSTGRES_SERVER) -> str:
    timing = f'change_time = "{change_time}"\nrestart_downtime = "2m"'
    return ladder_config("cpu", server, CPU_THRESHOLDS, timing)


REDIS = ladder_config(
    "memory",
    f"""\
kind = "azure-redis"
resource_id = "{RESOURCES}/Microsoft.Cache/redis/sessions"
skus = ["Basic C1", "Standard C1", "Standard C3"]""",
    """\
[[targets.track]]
metric = "memory"
type = "utilization"
target = 70""",
    'change_time = "3m"\nrestart_downtime = "1m"',
)

# Azure SQL: the database stays online while it scales, and Hyperscale is a one-way door
SQL = ladder_config(
    "cpu",
    f"""\
kind = "azure-sql"
resource_id = "{RESOURCES}/Microsoft.Sql/servers/shop/databases/orders"
objectives = ["GP_Gen5_2", "GP_Gen5_4", "HS_Gen5_8"]""",
    CPU_THRESHOLDS,
    'change_time = "10m"',
)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def generated_trace(tmp_path: Path) -> Path:
    """Work per second, one row a minute: a quiet hour, a busy two hours that need the
    largest tier, then quiet again, with a ripple so that no two minutes are alike."""
    rows = []
    for minute in range(5 * 60):
        level = 6.0 if 60 <= minute < 180 else 1.0
        rows.append(f"{minute * 60},{level + 0.2 * math.sin(minute / 7):.4f}\n")
    path = tmp_path / "trace.csv"
    path.write_text("t_seconds,value\n" + "".join(rows))
    return path


def replay(tmp_path: Path, config: Path, out: str = "out") -> tuple[list[dict[str, str]], Any]:
    folder = tmp_path / out
    code = main(
        [
            "simulate",
            "--config",
            str(config),
            "--trace",
            str(generated_trace(tmp_path)),
            "--out",
            str(folder),
        ]
    )
    assert code == 0
    with (folder / "timeline.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((folder / "summary.json").read_text())


def in_effect(rows: list[dict[str, str]], tiers: list[dict[str, Any]]) -> list[int]:
    """The position of the tier in effect at each row, from its units (distinct here)."""
    position = {tier["units"]: index for index, tier in enumerate(tiers, start=1)}
    return [position[float(row["units"])] for row in rows]


def test_a_postgres_ladder_changes_tier_and_holds_while_each_change_is_in_flight(
    tmp_path: Path,
) -> None:
    rows, summary = replay(tmp_path, write(tmp_path, postgres("5m")))
    tiers = summary["parameters"]["tiers"]
    units = [tier["units"] for tier in tiers]
    assert units == [2.0, 4.0, 8.0]
    effect = in_effect(rows, tiers)
    asked = [int(row["provisioned"]) for row in rows]
    # up to the largest tier for the busy hours, and back down after them
    assert max(asked) == 3 and asked[0] == 1 and asked[-1] < 3
    changes = [tick for tick, (a, b) in enumerate(pairwise([1, *asked])) if a != b]
    assert len(changes) >= 3
    for start in changes:
        flight = range(start + 1, start + 5)  # a 5-minute change at a 1-minute interval
        # the old tier serves (and is billed) until the change completes, 5 ticks later
        assert all(effect[tick] == effect[start] for tick in (start, *flight))
        assert effect[start + 5] == asked[start]
        # every tick of the change, the core saw it in flight and held on the old tier
        for tick in flight:
            assert rows[tick]["in_flight"].startswith("tier change to ")
            assert int(rows[tick]["desired"]) == effect[tick]
        assert rows[start + 5]["in_flight"] == ""
        # a compute change restarts the server: nothing serves its last 2 minutes
        serving = [float(rows[tick]["serving_units"]) for tick in range(start, start + 6)]
        before, after = units[effect[start] - 1], units[asked[start] - 1]
        assert serving == [before] * 3 + [0.0, 0.0] + [after]
    # a reading describes the tick before: after a minute of restart, CPU reads 100
    after_restart = [now for before, now in pairwise(rows) if before["serving_units"] == "0.0"]
    assert after_restart and all(float(row["metric"]) == 100.0 for row in after_restart)
    held = [row for row in rows if row["not_scaled"] == "OperationInFlight"]
    # the rules wanted another step while the first was in flight (CPU stays high on the
    # old tier), and the hold, not the 1-minute cooldown, is what kept the tier
    assert held and all(int(row["recommended"]) != int(row["desired"]) for row in held)


def recomputed(rows: list[dict[str, str]], summary: dict[str, Any]) -> dict[str, Any]:
    """The scores from the CSV alone and the tiers in summary.json, written anew."""
    interval = summary["interval_seconds"]
    parameters = summary["parameters"]
    capacity, units = parameters["capacity"], [tier["units"] for tier in parameters["tiers"]]
    ahead = round(parameters["change_time_effective_seconds"] / interval) + 1
    demand = [float(row["demand"]) for row in rows]

    def smallest_tier(work: float) -> float:
        enough = [size for size in units if size * capacity >= work]
        return min(enough) if enough else max(units)

    short = [
        (work, float(row["serving_units"]))
        for work, row in zip(demand, rows, strict=True)
        if work > float(row["serving_units"]) * capacity
    ]
    oracle = [smallest_tier(max(demand[tick : tick + ahead + 1])) for tick in range(len(rows))]
    return {
        "cost_replica_seconds": sum(float(row["units"]) for row in rows) * interval,
        "limit_replica_seconds": sum(smallest_tier(work) for work in demand) * interval,
        "oracle_replica_seconds": sum(oracle) * interval,
        "underprovisioned_seconds": len(short) * interval,
        "unserved_work": sum((work - serving * capacity) * interval for work, serving in short),
        "max_provisioned": max(int(row["provisioned"]) for row in rows),
    }


def test_the_ladder_summary_recomputes_from_the_timeline(tmp_path: Path) -> None:
    rows, summary = replay(tmp_path, write(tmp_path, postgres("5m")))
    again = recomputed(rows, summary)
    for key, value in again.items():
        assert summary[key] == pytest.approx(value, abs=1e-6), key
    assert summary["cost_ratio_to_oracle"] == pytest.approx(
        again["cost_replica_seconds"] / again["oracle_replica_seconds"], abs=1e-6
    )
    # restarts at the ends of changes leave the database serving nothing for a while
    assert summary["underprovisioned_seconds"] > 0
    assert summary["metric_failures"] == 0
    assert not (tmp_path / "out" / "timeline.png").exists()


def test_a_longer_change_costs_more_time_under_provisioned(tmp_path: Path) -> None:
    _, quick = replay(tmp_path, write(tmp_path, postgres("2m")), "quick")
    _, slow = replay(tmp_path, write(tmp_path, postgres("15m"), "slow.toml"), "slow")
    assert slow["unserved_work"] > quick["unserved_work"]
    assert slow["parameters"]["change_time_effective_seconds"] == 900


def test_a_redis_ladder_steps_around_the_forbidden_transitions(tmp_path: Path) -> None:
    rows, summary = replay(tmp_path, write(tmp_path, REDIS))
    tiers = summary["parameters"]["tiers"]
    assert [(tier["name"], tier["restarts"]) for tier in tiers] == [
        ("Basic C1", True),
        ("Standard C1", False),
        ("Standard C3", False),
    ]
    asked = [int(row["provisioned"]) for row in rows]
    moves = [(a, b) for a, b in pairwise([1, *asked]) if a != b]
    # the rules want the 6 GB cache at once, but Basic C1 -> Standard C3 is not an Azure
    # move: the core goes through Standard C1 (the same size) first
    assert int(rows[0]["recommended"]) == 3
    assert moves[:2] == [(1, 2), (2, 3)]
    assert (1, 3) not in moves and all(b > 1 for _, b in moves)  # never back to Basic
    # leaving Basic restarts the cache (its last minute serves nothing); Standard does not
    first, second = (asked.index(2), asked.index(3))
    assert [float(rows[t]["serving_units"]) for t in range(first, first + 4)] == [1, 1, 0, 1]
    assert all(float(rows[t]["serving_units"]) == 1 for t in range(second, second + 3))
    assert float(rows[second + 3]["serving_units"]) == 6
    again = recomputed(rows, summary)
    assert summary["cost_replica_seconds"] == pytest.approx(again["cost_replica_seconds"])


def test_an_sql_ladder_never_leaves_hyperscale_and_never_goes_offline(tmp_path: Path) -> None:
    rows, summary = replay(tmp_path, write(tmp_path, SQL))
    assert [tier["restarts"] for tier in summary["parameters"]["tiers"]] == [False] * 3
    asked = [int(row["provisioned"]) for row in rows]
    reached = asked.index(3)
    # the quiet hours after the busy ones would take it down, but no move leaves Hyperscale
    assert asked[reached:] == [3] * (len(rows) - reached)
    assert any(row["not_scaled"] == "TransitionNotAllowed" for row in rows[reached:])
    # online while it scales: the old objective serves until the switch, 10 ticks later
    assert all(float(row["serving_units"]) > 0 for row in rows)
    assert float(rows[reached + 9]["serving_units"]) == 4.0
    assert float(rows[reached + 10]["serving_units"]) == 8.0


def test_a_ladder_target_keeps_the_ladder_default_cooldowns(tmp_path: Path) -> None:
    # without a cooldown of its own, a ladder target waits 15m after a scale-out
    config = REDIS.replace('cooldown = { up = "1m", down = "1m" }\n', "")
    rows, _ = replay(tmp_path, write(tmp_path, config))
    asked = [int(row["provisioned"]) for row in rows]
    assert asked.index(2) == 0 and asked.index(3) == 15
    assert {row["not_scaled"] for row in rows[3:15]} == {"CooldownActive"}


def test_a_compare_of_ladders_writes_no_plot(tmp_path: Path) -> None:
    first, second = write(tmp_path, postgres("5m")), write(tmp_path, postgres("15m"), "slow.toml")
    args = ["--config", str(first), "--compare", str(second), "--out", str(tmp_path / "out")]
    trace = ["--trace", str(generated_trace(tmp_path))]
    assert main(["simulate", *args, *trace]) == 0
    assert (tmp_path / "out" / "cpu-ladder-2" / "summary.json").exists()
    assert not list((tmp_path / "out").rglob("*.png"))


def test_the_maintenance_window_still_decides_when_a_change_may_start(tmp_path: Path) -> None:
    # scale-in waits for a half-hour window at 04:00 (the trace starts at midnight and is
    # quiet again from 03:00); scale-out may start at any time
    windowed = postgres(
        "5m",
        POSTGRES_SERVER + '\nmaintenance = [{ cron = "0 4 * * *", duration = "30m" }]'
        '\nmaintenance_applies_to = ["down"]',
    )
    rows, _ = replay(tmp_path, write(tmp_path, windowed))
    asked = [int(row["provisioned"]) for row in rows]
    downs = [tick for tick, (a, b) in enumerate(pairwise([1, *asked])) if b < a]
    ups = [tick for tick, (a, b) in enumerate(pairwise([1, *asked])) if b > a]
    assert ups and min(ups) < 120  # within the busy hours, outside the window
    assert downs and all(240 <= tick < 270 for tick in downs)
    waited = [row for row in rows[180:240] if row["not_scaled"] == "OutsideMaintenanceWindow"]
    assert waited


def test_peak_replicas_scales_a_ladder_trace_to_that_many_units(tmp_path: Path) -> None:
    config = write(tmp_path, postgres("5m"))
    code = main(
        [
            "simulate",
            "--config",
            str(config),
            "--trace",
            str(generated_trace(tmp_path)),
            "--out",
            str(tmp_path / "out"),
            "--peak-replicas",
            "4",
        ]
    )
    assert code == 0
    with (tmp_path / "out" / "timeline.csv").open(newline="") as handle:
        peak = max(float(row["demand"]) for row in csv.DictReader(handle))
    assert peak == pytest.approx(4.0, abs=0.05)  # a tick's average is below the peak row


def test_a_ladder_initial_must_be_a_tier_position(tmp_path: Path) -> None:
    config = write(tmp_path, REDIS)
    with pytest.raises(ConfigError) as error:
        load_scenario(config, overrides={"initial": 4})
    assert "initial is a tier position, 1..3" in str(error.value)


def test_a_restart_longer_than_the_change_is_an_error(tmp_path: Path) -> None:
    config = write(tmp_path, postgres("1m"))
    with pytest.raises(ConfigError) as error:
        load_scenario(config)
    assert "restart_downtime" in str(error.value) and "change_time (1m)" in str(error.value)
