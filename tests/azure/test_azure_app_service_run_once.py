"""An App Service plan scaled by the daemon (``run --once``) through the real SDK clients and
the fake: CPU over 70 % adds 2 instances; the audit record tells a rejected write with
Azure's code, and a desired count clamped to the tier's maximum."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fakes.azure_env import SUB
from fakes.azure_fake import ArmError, FakeAzure, FakeCredential

from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

MINUTE = timedelta(minutes=1)
PLAN = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/serverfarms/api-plan"

CONFIG = """
[azure]
arm_endpoint = "{arm}"
metrics_endpoint = "{metrics}"
ca_bundle = "{ca}"
polling_interval = "0s"

[[sources]]
name = "plan-cpu"
kind = "azure-monitor"
resource_id = "{plan}"
region = "eastus"
metric = "CpuPercentage"

[[actuators]]
name = "api"
kind = "azure-app-service"
resource_id = "{plan}"

[[targets]]
name = "api"
actuator = "api"
min = 1
max = {maximum}
[[targets.threshold]]
when = "plan-cpu > 70 avg 5m"
action = "{action}"
"""


async def run_once(
    fake: FakeAzure, tmp_path: Path, *, maximum: int = 10, action: str = "+2"
) -> Any:
    clock = ManualClock()
    fake.set_metric(PLAN, "CpuPercentage", [(clock.now() - k * MINUTE, 85.0) for k in range(5)])
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            arm=fake.arm_url,
            metrics=fake.metrics_url,
            ca=fake.ca_path,
            plan=PLAN,
            maximum=maximum,
            action=action,
        )
    )
    async with Daemon(config, clock=clock, azure_credential=FakeCredential()) as daemon:
        records = await daemon.run_once(wait=60)
    return records[0] if len(records) == 1 else records


async def test_busy_cpu_adds_two_instances(tmp_path: Path) -> None:
    async with FakeAzure.running() as fake:
        fake.add_app_service_plan(SUB, "rg", "api-plan", capacity=2)

        record = await run_once(fake, tmp_path)

        assert (record.action, record.current["provisioned"], record.desired) == ("scaled", 2, 4)
        assert [call.body for call in fake.calls("arm", "PATCH")] == [{"sku": {"capacity": 4}}]
        assert fake.resource(PLAN)["sku"]["capacity"] == 4


async def test_a_202_is_followed_and_its_end_audited(tmp_path: Path) -> None:
    async with FakeAzure.running() as fake:
        fake.add_app_service_plan(SUB, "rg", "api-plan", capacity=2)
        fake.set_lro("azure-async-operation", polls=2)

        started, confirmed = await run_once(fake, tmp_path)

        assert (started.action, started.desired) == ("scaled", 4)
        assert started.operation is not None
        assert (confirmed.action, confirmed.operation, confirmed.prev) == (
            "scaled",
            started.operation,
            started.id,
        )
        assert confirmed.notes[0] == f"operation {started.operation} succeeded: 2 → 4"
        assert fake.resource(PLAN)["sku"]["capacity"] == 4


async def test_a_rejected_write_is_audited_failed_with_azures_code(tmp_path: Path) -> None:
    async with FakeAzure.running() as fake:
        fake.add_app_service_plan(SUB, "rg", "api-plan", capacity=2)
        fake.inject(
            service="arm",
            method="PATCH",
            status=409,
            error=ArmError("Conflict", "The plan is being modified by another operation."),
        )

        record = await run_once(fake, tmp_path)

        assert record.action == "failed"
        assert record.error.startswith("Conflict: update App Service plan 'api-plan': HTTP 409")
        assert "being modified by another operation" in record.error
        assert fake.resource(PLAN)["sku"]["capacity"] == 2


async def test_the_tiers_maximum_is_respected_and_said(tmp_path: Path) -> None:
    async with FakeAzure.running() as fake:
        fake.add_app_service_plan(SUB, "rg", "api-plan", sku_name="B1", tier="Basic", capacity=2)

        record = await run_once(fake, tmp_path, maximum=20, action="+5")

        assert (record.action, record.desired) == ("scaled", 7)
        assert fake.resource(PLAN)["sku"]["capacity"] == 3
        assert record.notes == (
            "sku.capacity 2 -> 3 (Basic B1)",
            "desired 7 is above the most instances this plan allows (3 on the Basic tier): "
            "3 written",
        )
