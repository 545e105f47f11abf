"""The azure-postgres-flexible actuator through the real ``PostgreSQLManagementClient``
against ``FakeAzure``: its ladders, the exact PATCH, storage that only grows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import ArmError
from pydantic import ValidationError

from scalerd.actuators.azure_postgres import PLUGIN, PostgresFlexibleConfig
from scalerd.azure.arm import ArmActuator
from scalerd.core.model import Capacity
from scalerd.core.rules import CronWindow, Tier
from scalerd.errors import ActuatorError
from scalerd.plugins import VerticalConfig

SERVER = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg"
)
SKUS = ["Standard_B2ms", "Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(**keys: Any) -> PostgresFlexibleConfig:
    defaults = {"kind": "azure-postgres-flexible", "name": "pg", "resource_id": SERVER}
    return PostgresFlexibleConfig.model_validate({**defaults, **keys})


def actuator(azure: AzureEnv, **keys: Any) -> ArmActuator[Any]:
    built = PLUGIN.build(config(**keys), azure.ctx)
    assert isinstance(built, ArmActuator)
    return built


def add_server(
    azure: AzureEnv, sku: str = "Standard_D2ds_v4", tier: str = "GeneralPurpose", gb: int = 128
) -> None:
    azure.fake.add_postgres_server(SUB, "rg", "pg", sku_name=sku, tier=tier, storage_gb=gb)


# ---------------------------------------------------------------------- config


def test_sku_names_give_their_tier_and_vcores() -> None:
    ladder = config(skus=[*SKUS, {"name": "Standard_E16ds_v4", "units": 20}]).ladder()

    assert ladder.tiers == (
        Tier("Standard_B2ms", 2, restarts=True),
        Tier("Standard_D2ds_v4", 2, restarts=True),
        Tier("Standard_D4ds_v4", 4, restarts=True),
        Tier("Standard_D8ds_v4", 8, restarts=True),
        Tier("Standard_E16ds_v4", 20, restarts=True),
    )
    assert [sku.tier for sku in config(skus=SKUS).skus] == ["Burstable"] + ["GeneralPurpose"] * 3
    assert ladder.allowed is None


def test_the_storage_ladder_only_grows_and_marks_the_offline_resize() -> None:
    ladder = config(scale="storage", storage_sizes_gb=[1024, 2048, 4096, 8192, 16384]).ladder()

    assert [tier.restarts for tier in ladder.tiers] == [False, False, False, True, False]
    assert ladder.allows(1, 3) and ladder.allows(3, 4)
    assert not ladder.allows(4, 3)
    assert ladder.tier(2).name == "2048 GiB"


def test_maintenance_windows_reach_the_core() -> None:
    windows = [{"cron": "0 2 * * *", "duration": "2h", "timezone": "Europe/Berlin"}]
    vertical = config(skus=SKUS, maintenance=windows, maintenance_applies_to=["down"])

    assert isinstance(vertical, VerticalConfig)
    assert vertical.maintenance_windows() == (
        CronWindow(cron="0 2 * * *", duration=timedelta(hours=2), timezone="Europe/Berlin"),
    )
    assert vertical.maintenance_applies_to == ("down",)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({}, "scale = 'sku' needs skus", id="no ladder"),
        pytest.param(
            {"skus": ["Standard_D4ds_v4", "Standard_D2ds_v4"]}, "the ladder must grow", id="shrinks"
        ),
        pytest.param({"skus": ["Standard_D2ds_v4"] * 2}, "on the ladder twice", id="twice"),
        pytest.param({"skus": ["Standard_M8ms"]}, "tier", id="unknown family"),
        pytest.param({"scale": "storage", "skus": SKUS}, "remove skus", id="storage with skus"),
        pytest.param(
            {"scale": "storage", "storage_sizes_gb": [64, 32]}, "smallest first", id="sizes"
        ),
        pytest.param(
            {"skus": SKUS, "maintenance": [{"cron": "0 2 * * *"}]},
            "exactly one of duration or end",
            id="window",
        ),
        pytest.param(
            {"skus": SKUS, "maintenance_applies_to": ["down", "down"]}, "once", id="twice down"
        ),
        pytest.param(
            {"skus": SKUS, "resource_id": SERVER.replace("flexibleServers", "servers")},
            "Microsoft.DBforPostgreSQL/flexibleServers",
            id="single server",
        ),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


# ---------------------------------------------------------------------- compute


async def test_capacity_is_the_position_of_the_sku(azure: AzureEnv) -> None:
    add_server(azure, "Standard_D4ds_v4")

    assert await actuator(azure, skus=SKUS).current() == Capacity(3, 3)


async def test_a_sku_off_the_ladder_is_an_error(azure: AzureEnv) -> None:
    add_server(azure, "Standard_E4ds_v4", tier="MemoryOptimized")

    with pytest.raises(
        ActuatorError, match=r"runs Standard_E4ds_v4 \(MemoryOptimized\), which is not"
    ) as caught:
        await actuator(azure, skus=SKUS).current()

    assert caught.value.code == "SkuNotOnLadder"


async def test_a_sku_change_patches_the_sku_and_says_it_restarts(azure: AzureEnv) -> None:
    add_server(azure, "Standard_B2ms", tier="Burstable")
    pg = actuator(azure, skus=SKUS)

    applied = await pg.apply(azure.decision(3))
    held = await pg.current()
    await pg.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == {"sku": {"name": "Standard_D4ds_v4", "tier": "GeneralPurpose"}}
    assert applied.notes == (
        "Standard_B2ms (Burstable) -> Standard_D4ds_v4 (GeneralPurpose)",
        "a compute change restarts the server (with zone-redundant HA: a failover)",
    )
    assert held.operation is not None
    assert await pg.current() == Capacity(3, 3)


async def test_the_server_state_shows_a_change_in_progress(azure: AzureEnv) -> None:
    add_server(azure)
    azure.fake.inject(service="arm", method="GET", path="/operationStatuses/", delay=0.3)
    first = actuator(azure, skus=SKUS)
    await first.apply(azure.decision(3))

    capacity = await actuator(azure, skus=SKUS).current()
    await first.settled()

    assert capacity == Capacity(2, 2, "state=Updating")


async def test_no_patch_when_the_server_runs_the_sku(azure: AzureEnv) -> None:
    add_server(azure, "Standard_D2ds_v4")

    applied = await actuator(azure, skus=SKUS).apply(azure.decision(2))

    assert azure.fake.calls("arm", "PATCH") == []
    assert applied.notes == (
        "PostgreSQL server 'pg' is already at Standard_D2ds_v4 (GeneralPurpose): nothing written",
    )


@pytest.mark.parametrize("style", ["azure-async-operation", "location"])
async def test_a_failed_sku_change_reports_azures_code(azure: AzureEnv, style: Any) -> None:
    add_server(azure)
    error = ArmError("ServerSkuNotAvailable", "Standard_D4ds_v4 is not available in eastus")
    azure.fake.set_lro(style, fail=error)
    pg = actuator(azure, skus=SKUS)

    applied = await pg.apply(azure.decision(3))
    assert applied.operation is not None and applied.resume is not None
    outcome = await pg.outcome(applied.operation, applied.resume)

    assert outcome.code == "ServerSkuNotAvailable"
    assert "is not available in eastus; it is at Standard_D2ds_v4" in outcome.message
    assert azure.fake.resource(SERVER)["sku"]["name"] == "Standard_D2ds_v4"


# ---------------------------------------------------------------------- storage


async def test_storage_capacity_counts_the_sizes_that_fit(azure: AzureEnv) -> None:
    add_server(azure, gb=200)  # between 128 and 256: 32, 64 and 128 fit

    assert await actuator(azure, scale="storage").current() == Capacity(3, 3)


async def test_storage_grows_with_only_the_size_in_the_patch(azure: AzureEnv) -> None:
    add_server(azure, gb=128)
    storage = actuator(azure, scale="storage")

    applied = await storage.apply(azure.decision(4))
    await storage.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == {"properties": {"storage": {"storageSizeGB": 256}}}
    assert applied.notes == ("storage 128 GiB -> 256 GiB (storage only grows)",)
    assert azure.fake.resource(SERVER)["properties"]["storage"]["storageSizeGB"] == 256


async def test_storage_never_shrinks(azure: AzureEnv) -> None:
    add_server(azure, gb=200)

    applied = await actuator(azure, scale="storage").apply(azure.decision(2))

    assert azure.fake.calls("arm", "PATCH") == []
    assert "nothing written" in applied.notes[0]


async def test_growing_across_4_tib_warns_of_downtime(azure: AzureEnv) -> None:
    add_server(azure, gb=4096)

    storage = actuator(azure, scale="storage")

    applied = await storage.apply(azure.decision(9))
    await storage.settled()

    assert (
        applied.notes[-1]
        == "growing across 4 TiB is done offline: the server is unavailable meanwhile"
    )
