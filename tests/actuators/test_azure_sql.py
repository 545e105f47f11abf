"""The azure-sql actuator through the real ``SqlManagementClient`` against ``FakeAzure``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from pydantic import ValidationError

from scalerd.actuators.azure_sql import PLUGIN, SqlConfig
from scalerd.azure.arm import ArmActuator
from scalerd.core.model import Capacity
from scalerd.core.rules import Tier
from scalerd.errors import ActuatorError

SERVER = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/sqlsrv"
DATABASE = f"{SERVER}/databases/orders"
OBJECTIVES = ["GP_Gen5_2", "GP_Gen5_4", "GP_Gen5_8"]


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(**keys: Any) -> SqlConfig:
    defaults = {
        "kind": "azure-sql",
        "name": "orders",
        "resource_id": DATABASE,
        "objectives": OBJECTIVES,
    }
    return SqlConfig.model_validate({**defaults, **keys})


def actuator(azure: AzureEnv, **keys: Any) -> ArmActuator[Any]:
    built = PLUGIN.build(config(**keys), azure.ctx)
    assert isinstance(built, ArmActuator)
    return built


def add_database(
    azure: AzureEnv, name: str = "GP_Gen5", tier: str = "GeneralPurpose", capacity: int = 2
) -> None:
    azure.fake.add_sql_database(
        SUB, "rg", "sqlsrv", "orders", sku_name=name, tier=tier, capacity=capacity
    )


def test_objectives_read_as_the_portal_names_them() -> None:
    vcores = config(objectives=["GP_S_Gen5_2", "BC_Gen5_4", "HS_Gen5_8"])
    dtus = config(objectives=["S2", "S3", "P2"])

    assert vcores.ladder().tiers == (
        Tier("GP_S_Gen5_2", 2),
        Tier("BC_Gen5_4", 4),
        Tier("HS_Gen5_8", 8),
    )
    assert [(o.name, o.tier, o.capacity) for o in vcores.objectives] == [
        ("GP_S_Gen5", "GeneralPurpose", 2),
        ("BC_Gen5", "BusinessCritical", 4),
        ("HS_Gen5", "Hyperscale", 8),
    ]
    assert dtus.ladder().tiers == (Tier("S2", 50), Tier("S3", 100), Tier("P2", 250))
    assert [(o.tier, o.capacity) for o in dtus.objectives] == [("Standard", None)] * 2 + [
        ("Premium", None)
    ]


def test_there_is_no_way_back_from_hyperscale() -> None:
    ladder = config(objectives=["GP_Gen5_2", "HS_Gen5_4", "HS_Gen5_8"]).ladder()

    assert ladder.allows(1, 2) and ladder.allows(3, 2)
    assert not ladder.allows(2, 1)


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        pytest.param([], "at least 1 item", id="empty"),
        pytest.param(["GP_Gen5_4", "GP_Gen5_2"], "the ladder must grow", id="shrinks"),
        pytest.param(["X9"], "unknown service objective 'X9'", id="unknown"),
        pytest.param(
            [{"name": "DW100c", "tier": "DataWarehouse"}], "units", id="table without units"
        ),
    ],
)
def test_invalid_ladders_are_refused(objectives: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(objectives=objectives)


async def test_capacity_is_the_position_of_the_current_objective(azure: AzureEnv) -> None:
    add_database(azure, capacity=4)

    assert await actuator(azure).current() == Capacity(2, 2)


async def test_an_objective_change_patches_the_sku_only(azure: AzureEnv) -> None:
    add_database(azure)
    orders = actuator(azure)

    applied = await orders.apply(azure.decision(3))
    held = await orders.current()
    await orders.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == {"sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 8}}
    assert applied.notes[0] == "GP_Gen5_2 -> GP_Gen5_8"
    assert held.operation is not None
    assert await orders.current() == Capacity(3, 3)


async def test_a_dtu_objective_is_sent_without_capacity(azure: AzureEnv) -> None:
    add_database(azure, name="S2", tier="Standard", capacity=50)
    dtu = actuator(azure, objectives=["S2", "S3"])

    await dtu.apply(azure.decision(2))
    await dtu.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == {"sku": {"name": "S3", "tier": "Standard"}}


async def test_scaling_status_holds_the_target(azure: AzureEnv) -> None:
    add_database(azure)
    azure.fake.inject(service="arm", method="GET", path="/operationStatuses/", delay=0.3)
    first = actuator(azure)
    await first.apply(azure.decision(2))

    capacity = await actuator(azure).current()
    await first.settled()

    assert capacity == Capacity(1, 1, "status=Scaling")


async def test_no_patch_at_the_desired_objective(azure: AzureEnv) -> None:
    add_database(azure, capacity=4)

    await actuator(azure).apply(azure.decision(2))

    assert azure.fake.calls("arm", "PATCH") == []


async def test_an_objective_off_the_ladder_is_an_error(azure: AzureEnv) -> None:
    add_database(azure, capacity=16)

    with pytest.raises(
        ActuatorError, match="runs GP_Gen5_16, which is not on the ladder"
    ) as caught:
        await actuator(azure).current()

    assert caught.value.code == "ObjectiveNotOnLadder"
