"""``scalerd run --once`` against the fake: the daemon reads queue depth and metrics through
the real SDK clients, and sends exactly one PATCH, holding only the changed fields, for
each target that must change — none for the one already where it should be."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.azure_env import SUB
from fakes.azure_fake import ArmError, FakeAzure, FakeCredential

from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

MINUTE = timedelta(minutes=1)
RG = f"/subscriptions/{SUB}/resourceGroups/rg/providers"
IDS = {
    "web": f"{RG}/Microsoft.App/containerApps/web",
    "pg": f"{RG}/Microsoft.DBforPostgreSQL/flexibleServers/pg",
    "sql": f"{RG}/Microsoft.Sql/servers/sqlsrv/databases/orders",
    "redis": f"{RG}/Microsoft.Cache/redis/cache",
}

CONFIG = """
[azure]
arm_endpoint = "{arm}"
metrics_endpoint = "{metrics}"
logs_endpoint = "{logs}"
ca_bundle = "{ca}"
polling_interval = "0s"

[[sources]]
name = "orders-depth"
kind = "servicebus"
namespace = "{servicebus}"
queues = ["orders"]

[[sources]]
name = "pg-cpu"
kind = "azure-monitor"
resource_id = "{pg}"
region = "eastus"
metric = "cpu_percent"

[[sources]]
name = "sql-cpu"
kind = "azure-monitor"
resource_id = "{sql}"
region = "eastus"
metric = "cpu_percent"

[[sources]]
name = "cache-load"
kind = "azure-monitor"
resource_id = "{redis}"
region = "eastus"
metric = "serverLoad"
aggregation = "maximum"

[[actuators]]
name = "web"
kind = "azure-container-apps"
resource_id = "{web}"

[[actuators]]
name = "pg"
kind = "azure-postgres-flexible"
resource_id = "{pg}"
skus = ["Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]

[[actuators]]
name = "orders-db"
kind = "azure-sql"
resource_id = "{sql}"
objectives = ["GP_Gen5_2", "GP_Gen5_4", "GP_Gen5_8"]

[[actuators]]
name = "cache"
kind = "azure-redis"
resource_id = "{redis}"
skus = ["Standard C1", "Standard C2", "Standard C3"]

[[targets]]
name = "web"
actuator = "web"
max = 10
[[targets.track]]
metric = "orders-depth"
type = "total"
target = 10

[[targets]]
name = "pg"
actuator = "pg"
max = 3
[[targets.threshold]]
when = "pg-cpu > 80 avg 5m"
action = "+1"

[[targets]]
name = "orders-db"
actuator = "orders-db"
max = 3
[[targets.threshold]]
when = "sql-cpu > 80 avg 5m"
action = "+1"

[[targets]]
name = "cache"
actuator = "cache"
max = 3
[[targets.threshold]]
when = "cache-load > 75 max 5m"
action = "+1"
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAzure]:
    async with FakeAzure.running() as running:
        yield running


def arrange(fake: FakeAzure, now: Any) -> None:
    """A web app pinned at 2 with 40 orders queued; PostgreSQL calm; SQL and Redis busy."""
    fake.add_container_app(SUB, "rg", "web", min_replicas=2, max_replicas=2, ready_replicas=2)
    fake.add_postgres_server(SUB, "rg", "pg", sku_name="Standard_D2ds_v4")
    fake.add_sql_database(SUB, "rg", "sqlsrv", "orders", sku_name="GP_Gen5", capacity=2)
    fake.add_redis_cache(SUB, "rg", "cache", sku_name="Standard", family="C", capacity=1)
    fake.set_queue("orders", active=40)
    grains = [now - k * MINUTE for k in (4, 3, 2, 1)]
    for resource, metric, value in (
        ("pg", "cpu_percent", 50.0),
        ("sql", "cpu_percent", 90.0),
        ("redis", "serverLoad", 85.0),
    ):
        fake.set_metric(IDS[resource], metric, [(at, value) for at in grains])


def write_config(fake: FakeAzure, folder: Path) -> Path:
    path = folder / "config.toml"
    endpoints = {
        "arm": fake.arm_url,
        "metrics": fake.metrics_url,
        "logs": fake.logs_url,
        "ca": fake.ca_path,
        "servicebus": fake.servicebus_namespace,
    }
    path.write_text(CONFIG.format(**endpoints, **IDS), encoding="utf-8")
    return path


async def test_run_once_patches_what_must_change_and_audits_every_target(
    fake: FakeAzure, tmp_path: Path
) -> None:
    clock = ManualClock()
    arrange(fake, clock.now())

    async with Daemon(
        write_config(fake, tmp_path), clock=clock, azure_credential=FakeCredential()
    ) as daemon:
        records = {record.target: record for record in await daemon.run_once()}

    patches = {call.path.rsplit("/", 1)[-1]: call.body for call in fake.calls("arm", "PATCH")}
    assert patches == {
        "web": {"properties": {"template": {"scale": {"minReplicas": 4, "maxReplicas": 4}}}},
        "orders": {"sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 4}},
        "cache": {"properties": {"sku": {"name": "Standard", "family": "C", "capacity": 2}}},
    }
    assert {name: (r.action, r.desired) for name, r in records.items()} == {
        "web": ("scaled", 4),  # 40 messages at 10 per replica
        "pg": ("held", 1),  # Standard_D2ds_v4, the first rung
        "orders-db": ("scaled", 2),
        "cache": ("scaled", 2),
    }
    assert records["pg"].not_scaled_reason == "NoChangeRecommended"
    assert all(records[name].operation for name in ("web", "orders-db", "cache"))
    assert (records["orders-db"].tier, records["cache"].tier) == ("GP_Gen5_4", "Standard C2")
    assert records["cache"].notes == ("Standard C1 -> Standard C2",)
    # read through the SDKs: one batch call per resource type, one Atom read of the queue
    assert len(fake.calls("metrics")) == 3
    assert [call.path for call in fake.calls("servicebus")] == ["/orders"]
    audit = (tmp_path / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(audit) == 4


SQL_ONLY = """
[azure]
arm_endpoint = "{arm}"
metrics_endpoint = "{metrics}"
ca_bundle = "{ca}"
polling_interval = "0s"

[[sources]]
name = "sql-cpu"
kind = "azure-monitor"
resource_id = "{sql}"
region = "eastus"
metric = "cpu_percent"

[[actuators]]
name = "orders-db"
kind = "azure-sql"
resource_id = "{sql}"
objectives = ["GP_Gen5_2", "GP_Gen5_4", "GP_Gen5_8"]

[[targets]]
name = "orders-db"
actuator = "orders-db"
max = 3
[targets.cooldown]
up = "5m"
[[targets.threshold]]
when = "sql-cpu > 80 avg 5m"
action = "+1"
cooldown = "5m"
"""


async def test_a_failed_operation_is_audited_failed_and_the_next_run_tries_again(
    fake: FakeAzure, tmp_path: Path
) -> None:
    clock = ManualClock()
    fake.add_sql_database(SUB, "rg", "sqlsrv", "orders", sku_name="GP_Gen5", capacity=2)
    busy = [(clock.now() + k * MINUTE, 90.0) for k in range(-4, 12)]
    fake.set_metric(IDS["sql"], "cpu_percent", busy)
    fake.set_lro(
        "azure-async-operation", fail=ArmError("DatabaseScaleFailed", "no capacity in eastus")
    )
    config = tmp_path / "config.toml"
    config.write_text(
        SQL_ONLY.format(arm=fake.arm_url, metrics=fake.metrics_url, ca=fake.ca_path, sql=IDS["sql"])
    )

    async with Daemon(config, clock=clock, azure_credential=FakeCredential()) as daemon:
        started, failed = await daemon.run_once(wait=60)
        fake.set_lro("azure-async-operation")
        seen = len(fake.calls("arm"))
        clock.advance(60)  # well within the 5 minutes a scale-out would cool down for
        (again, confirmed) = await daemon.run_once(wait=60)

    assert started.action == "scaled"
    assert started.operation is not None
    assert failed.action == "failed"
    assert failed.prev == started.id
    assert failed.error == (
        "DatabaseScaleFailed: SQL database 'orders': operation "
        f"{started.operation} failed: DatabaseScaleFailed: no capacity in eastus; it is at "
        "GP_Gen5_2 now"
    )
    assert failed.operation == started.operation
    assert again.action == "scaled"  # no cooldown from the change that failed
    assert confirmed.action == "scaled" and confirmed.operation == again.operation
    database = [r.method for r in fake.calls("arm")[seen:] if r.path.endswith("/databases/orders")]
    assert database[:3] == ["GET", "GET", "PATCH"]  # current(), then apply() reads before writing


async def test_the_command_itself_against_the_fake(fake: FakeAzure, tmp_path: Path) -> None:
    """The same, as ops would run it: ``scalerd run --once`` in its own process, with the
    endpoints, the CA bundle and an emulator token from ``[azure]``."""
    import asyncio
    import json
    import os
    import sys
    from datetime import UTC, datetime

    arrange(fake, datetime.now(UTC))
    config = write_config(fake, tmp_path)
    config.write_text(
        config.read_text().replace("[azure]\n", '[azure]\ntoken_env = "TEST_AZURE_TOKEN"\n', 1)
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scalerd",
        "run",
        "--once",
        "--config",
        str(config),
        cwd=tmp_path,
        env={**os.environ, "TEST_AZURE_TOKEN": "emulator-token"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), 120)  # the fake keeps serving meanwhile
    assert child.returncode == 0, err.decode()
    patched = sorted(call.path.rsplit("/", 1)[-1] for call in fake.calls("arm", "PATCH"))
    assert patched == ["cache", "orders", "web"]
    records = [
        json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    # it waited for the three operations: each change is confirmed by a record of its own
    assert sorted((r["target"], r["action"], r["current"] is None) for r in records) == [
        ("cache", "scaled", False),
        ("cache", "scaled", True),
        ("orders-db", "scaled", False),
        ("orders-db", "scaled", True),
        ("pg", "held", False),
        ("web", "scaled", False),
        ("web", "scaled", True),
    ]
    assert "emulator-token" not in out.decode() + err.decode()
