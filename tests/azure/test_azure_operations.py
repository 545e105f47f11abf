"""A long-running operation outlives the process that started it: ``scalerd run --once``
waits for it and exits non-zero when it failed, and a restarted daemon follows it from the
continuation token in its stored state. Its outcome is a record of its own; only a
confirmed change counts toward cooldowns."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import ArmError, FakeAzure, FakeCredential, LroStyle

from scalerd.actuators.azure_container_apps import PLUGIN as CONTAINER_APPS
from scalerd.azure.arm import ArmActuator
from scalerd.clock import ManualClock
from scalerd.core import ScaleEvent
from scalerd.daemon.app import Daemon
from scalerd.daemon.sqlite_state import SqliteStateStore
from scalerd.daemon.state import StoredTarget

MINUTE = timedelta(minutes=1)
SERVER = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg"
)
SKU_NOT_AVAILABLE = ArmError(
    "SkuNotAvailable", "The requested SKU Standard_D4ds_v4 is not available in location eastus."
)

CONFIG = """
[azure]
arm_endpoint = "{arm}"
metrics_endpoint = "{metrics}"
ca_bundle = "{ca}"
polling_interval = "0s"
token_env = "TEST_AZURE_TOKEN"

[[sources]]
name = "pg-cpu"
kind = "azure-monitor"
resource_id = "{server}"
region = "eastus"
metric = "cpu_percent"

[[actuators]]
name = "pg"
kind = "azure-postgres-flexible"
resource_id = "{server}"
skus = ["Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]

[[targets]]
name = "pg"
actuator = "pg"
max = 3
[[targets.threshold]]
when = "pg-cpu > 80 avg 5m"
action = "+1"
cooldown = "10m"
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAzure]:
    async with FakeAzure.running() as running:
        yield running


def busy_server(fake: FakeAzure, folder: Path, now: datetime) -> Path:
    """A PostgreSQL server on the first rung at 90 % CPU: the rule asks for the next one."""
    fake.add_postgres_server(SUB, "rg", "pg", sku_name="Standard_D2ds_v4")
    fake.set_metric(SERVER, "cpu_percent", [(now + k * MINUTE, 90.0) for k in range(-5, 30)])
    config = folder / "config.toml"
    config.write_text(
        CONFIG.format(arm=fake.arm_url, metrics=fake.metrics_url, ca=fake.ca_path, server=SERVER)
    )
    return config


def records(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "audit" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


async def stored(folder: Path) -> StoredTarget:
    """The target as the default state store keeps it."""
    store = SqliteStateStore(folder / "state" / "state.db")
    try:
        return (await store.load_all())["pg"]
    finally:
        await store.aclose()


async def run_once(config: Path, *extra: str) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scalerd",
        "run",
        "--once",
        "--config",
        str(config),
        *extra,
        cwd=config.parent,
        env={**os.environ, "TEST_AZURE_TOKEN": "emulator-token"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(child.communicate(), 120)  # the fake serves meanwhile
    assert child.returncode is not None
    return child.returncode, err.decode()


async def test_run_once_waits_for_a_failed_operation_and_the_next_run_tries_again(
    fake: FakeAzure, tmp_path: Path
) -> None:
    config = busy_server(fake, tmp_path, datetime.now(UTC))
    fake.set_lro("azure-async-operation", polls=2, fail=SKU_NOT_AVAILABLE)

    code, err = await run_once(config, "--wait", "1m")

    assert code == 1, err
    started, failed = records(tmp_path)
    assert (started["action"], started["desired"]) == ("scaled", 2)
    assert (failed["action"], failed["operation"], failed["prev"]) == (
        "failed",
        started["operation"],
        started["id"],
    )
    assert failed["error"].startswith("SkuNotAvailable: PostgreSQL server 'pg': operation ")
    assert "not available in location eastus.; it is at Standard_D2ds_v4" in failed["error"]
    assert f"pg: operation failed: {failed['error']}" in err  # says which, on stderr
    after_failure = await stored(tmp_path)
    assert after_failure.operation is None
    assert after_failure.last_record_id == failed["id"]
    # no cooldown, no scale event: the change never happened
    state = after_failure.state
    assert (state.scale_out_cooldown_until, state.scale_in_cooldown_until) == (None, None)
    assert state.events == ()
    assert fake.resource(SERVER)["sku"]["name"] == "Standard_D2ds_v4"

    fake.set_lro("azure-async-operation", polls=2)
    code, err = await run_once(config)

    assert code == 0, err
    again, confirmed = records(tmp_path)[2:]
    assert (again["action"], again["prev"]) == ("scaled", failed["id"])
    assert (confirmed["action"], confirmed["prev"]) == ("scaled", again["id"])
    assert confirmed["error"] is None and confirmed["operation"] == again["operation"]
    assert (
        confirmed["notes"][0]
        == f"operation {again['operation']} succeeded: 1 → 2 (Standard_D4ds_v4)"
    )
    server = [(call.method, call.status) for call in fake.calls("arm") if call.path == SERVER]
    patches = [index for index, (method, _) in enumerate(server) if method == "PATCH"]
    assert len(patches) == 2  # the second run sent it again, after reading the server afresh
    assert server[patches[1] - 1] == ("GET", 200)
    assert fake.resource(SERVER)["sku"]["name"] == "Standard_D4ds_v4"
    cooled = (await stored(tmp_path)).state
    assert cooled.scale_out_cooldown_until is not None  # the confirmed change counts


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
async def test_a_restarted_daemon_follows_the_stored_operation_to_its_end(
    fake: FakeAzure, tmp_path: Path, fails: bool
) -> None:
    clock = ManualClock()
    config = busy_server(fake, tmp_path, clock.now())
    fake.set_lro("azure-async-operation", polls=3, fail=SKU_NOT_AVAILABLE if fails else None)

    async with Daemon(config, clock=clock, azure_credential=FakeCredential()) as first:
        (started,) = await first.run_once()  # as `--wait 0`: leaves it in flight
    in_flight = (await stored(tmp_path)).operation
    assert in_flight is not None and in_flight.operation == started.operation
    assert (in_flight.before, in_flight.after, in_flight.started_at) == (1, 2, started.ts)

    clock.advance(60)
    async with Daemon(config, clock=clock, azure_credential=FakeCredential()) as second:
        (held,) = await second.run_once()  # not waiting: it holds, it does not write
        clock.advance(60)
        settled, evaluated, *retried = await second.run_once(wait=30)

    assert (held.action, held.not_scaled_reason) == ("held", "OperationInFlight")
    assert (held.prev, settled.prev, evaluated.prev) == (started.id, held.id, settled.id)
    assert settled.operation == started.operation
    state = (await stored(tmp_path)).state
    if fails:
        assert settled.action == "failed" and settled.error.startswith("SkuNotAvailable: ")
        assert state.events == ()  # neither the failed change nor its failed retry counts
        assert evaluated.action == "scaled"  # free to try again: no cooldown from the failure
        assert len(fake.calls("arm", "PATCH")) == 2
        assert [(r.action, r.operation) for r in retried] == [("failed", evaluated.operation)]
    else:
        assert (settled.action, settled.error) == ("scaled", None)
        # counted as of its start: the cooldown runs from when the change was asked for
        assert state.events == (ScaleEvent(started.ts, 1, 2),)
        cooldown = timedelta(seconds=started.cooldown_s)
        assert cooldown > timedelta(0)
        assert state.scale_out_cooldown_until == started.ts + cooldown
        assert (evaluated.action, evaluated.not_scaled_reason) == ("held", "CooldownActive")
        assert len(fake.calls("arm", "PATCH")) == 1
        assert retried == []


async def test_the_serving_daemon_follows_its_operation_in_the_background(
    fake: FakeAzure, tmp_path: Path
) -> None:
    config = busy_server(fake, tmp_path, datetime.now(UTC))
    config.write_text(config.read_text() + "\n[daemon]\njitter = 0\nwatch_config = false\n")
    fake.set_lro("azure-async-operation", polls=2)

    async with Daemon(config, listen="127.0.0.1:0", azure_credential=FakeCredential()) as daemon:
        serving = asyncio.create_task(daemon.serve())
        runtime = daemon.runtimes["pg"]
        async with asyncio.timeout(30):
            while runtime.last_record is None or runtime.last_record.current is not None:
                await asyncio.sleep(0.02)  # the first evaluation, then the operation's end
        daemon.stop()
        await serving

    started, confirmed = records(tmp_path)
    assert (started["action"], confirmed["action"]) == ("scaled", "scaled")
    assert (confirmed["operation"], confirmed["prev"]) == (started["operation"], started["id"])
    assert (await stored(tmp_path)).operation is None


@pytest.mark.parametrize("style", ["azure-async-operation", "location", "provisioning-state"])
@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
async def test_another_actuator_follows_an_operation_from_its_resume_token(
    azure: AzureEnv, style: LroStyle, fails: bool
) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    failure = ArmError("ContainerAppOperationError", "image pull failed")
    azure.fake.set_lro(style, polls=2, fail=failure if fails else None)
    config = CONTAINER_APPS.config.model_validate(
        {"kind": "azure-container-apps", "name": "web", "resource_id": app_id}
    )
    first, second = (CONTAINER_APPS.build(config, azure.ctx) for _ in range(2))
    assert isinstance(first, ArmActuator) and isinstance(second, ArmActuator)

    applied = await first.apply(azure.decision(3))
    await first.aclose()  # the process that started it is gone before its first poll
    assert applied.operation is not None and applied.resume is not None
    outcome = await second.outcome(applied.operation, applied.resume)

    scale = azure.fake.resource(app_id)["properties"]["template"]["scale"]
    assert outcome.succeeded is not fails
    assert (scale["minReplicas"], scale["maxReplicas"]) == ((1, 5) if fails else (3, 3))
    if fails:
        assert applied.operation in outcome.message
