"""The azure-app-service actuator through the real ``WebSiteManagementClient`` against
``FakeAzure``: the plan's instance count read and patched (``sku.capacity`` only), within
its tier's maximum, with throttling, a rejected write and a 202 followed to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import ArmError, LroStyle
from pydantic import ValidationError

from scalerd.actuators.azure_app_service import PLUGIN, AppServiceConfig
from scalerd.azure.arm import ArmActuator
from scalerd.core.model import Capacity
from scalerd.errors import ActuatorError, Throttled

PLAN = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/serverfarms/web-plan"


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def actuator(azure: AzureEnv) -> ArmActuator[Any]:
    config = AppServiceConfig(kind="azure-app-service", name="web", resource_id=PLAN)
    built = PLUGIN.build(config, azure.ctx)
    assert isinstance(built, ArmActuator)
    return built


def plan(azure: AzureEnv, **keys: Any) -> str:
    return azure.fake.add_app_service_plan(SUB, "rg", "web-plan", **keys)


def capacity(azure: AzureEnv) -> int:
    return int(azure.fake.resource(PLAN)["sku"]["capacity"])


def patches(azure: AzureEnv) -> list[Any]:
    return [call.body for call in azure.fake.calls("arm", "PATCH")]


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("resource_id", "message"),
    [
        pytest.param("/subscriptions/s/plan", "not an Azure resource id", id="bad id"),
        pytest.param(
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/web",
            "must be the id of a Microsoft.Web/serverfarms, not of a Microsoft.Web/sites",
            id="an app, not its plan",
        ),
    ],
)
def test_invalid_config_is_refused(resource_id: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AppServiceConfig.model_validate(
            {"kind": "azure-app-service", "name": "web", "resource_id": resource_id}
        )


# ---------------------------------------------------------------------- current()


async def test_capacity_is_the_plans_instance_count(azure: AzureEnv) -> None:
    plan(azure, capacity=3)

    assert await actuator(azure).current() == Capacity(3, 3)
    (read,) = azure.fake.calls("arm", "GET")
    # the api-version the SDK speaks, on the plan's own path
    assert read.path == PLAN and read.query["api-version"] == "2025-05-01"


async def test_ready_is_the_workers_assigned(azure: AzureEnv) -> None:
    plan(azure, capacity=4)
    azure.fake._resource(PLAN).body["properties"]["numberOfWorkers"] = 2  # still starting

    assert await actuator(azure).current() == Capacity(4, 2)


async def test_a_throttled_read_is_waited_out_and_retried(azure: AzureEnv) -> None:
    plan(azure, capacity=2)
    azure.fake.inject(service="arm", method="GET", status=429, retry_after=4, times=2)

    assert await actuator(azure).current() == Capacity(2, 2)
    assert azure.slept == [4.0, 4.0]
    assert [call.status for call in azure.fake.calls("arm", "GET")] == [429, 429, 200]


# ---------------------------------------------------------------------- apply()


async def test_a_scale_patches_sku_capacity_only(azure: AzureEnv) -> None:
    plan(azure, sku_name="S1", tier="Standard", capacity=2)
    web = actuator(azure)

    applied = await web.apply(azure.decision(5, current=2))

    assert patches(azure) == [{"sku": {"capacity": 5}}]  # no tier, size or settings
    assert applied.operation is None  # App Service answered 200: scaled at once
    assert applied.notes == ("sku.capacity 2 -> 5 (Standard S1)",)
    assert capacity(azure) == 5
    assert await web.current() == Capacity(5, 5)
    # read before the write
    trace = [call.method for call in azure.fake.calls("arm")]
    assert trace[:2] == ["GET", "PATCH"]


async def test_an_unchanged_capacity_is_not_written(azure: AzureEnv) -> None:
    plan(azure, capacity=3)

    applied = await actuator(azure).apply(azure.decision(3))

    assert patches(azure) == []
    assert applied.notes == (
        "App Service plan 'web-plan' is already at Standard S1 x3: nothing written",
    )


@pytest.mark.parametrize(
    ("tier", "sku", "maximum"),
    [
        ("Free", "F1", 1),
        ("Basic", "B1", 3),
        ("Standard", "S1", 10),
        ("PremiumV3", "P1v3", 30),
        ("IsolatedV2", "I1v2", 100),
    ],
)
async def test_a_desired_count_above_the_tiers_maximum_is_clamped_and_said(
    azure: AzureEnv, tier: str, sku: str, maximum: int
) -> None:
    plan(azure, sku_name=sku, tier=tier, capacity=1, maximum_workers=1000)  # the tier decides
    desired = maximum + 5

    applied = await actuator(azure).apply(azure.decision(desired))

    if maximum == 1:  # already at the most it allows
        assert patches(azure) == []
        assert applied.notes == (
            f"App Service plan 'web-plan' is already at {tier} {sku} x1 "
            f"(the most it allows: 1 on the {tier} tier): nothing written",
        )
        return
    assert patches(azure) == [{"sku": {"capacity": maximum}}]
    assert applied.notes[1] == (
        f"desired {desired} is above the most instances this plan allows "
        f"({maximum} on the {tier} tier): {maximum} written"
    )
    assert capacity(azure) == maximum


async def test_azures_own_maximum_applies_when_it_is_lower(azure: AzureEnv) -> None:
    plan(azure, tier="Standard", capacity=2, maximum_workers=6)

    applied = await actuator(azure).apply(azure.decision(9))

    assert patches(azure) == [{"sku": {"capacity": 6}}]
    assert "(6, the plan's maximumNumberOfWorkers): 6 written" in applied.notes[1]


async def test_at_the_tiers_maximum_nothing_more_is_asked(azure: AzureEnv) -> None:
    plan(azure, sku_name="B2", tier="Basic", capacity=3)

    applied = await actuator(azure).apply(azure.decision(7))

    assert patches(azure) == []
    assert "(the most it allows: 3 on the Basic tier): nothing written" in applied.notes[0]


async def test_zero_writes_one_instance(azure: AzureEnv) -> None:
    plan(azure, capacity=3)

    applied = await actuator(azure).apply(azure.decision(0, current=3))

    assert patches(azure) == [{"sku": {"capacity": 1}}]
    assert applied.notes[1] == "an App Service plan runs at least 1 instance: 1 written"


@pytest.mark.parametrize("tier", ["ElasticPremium", "Dynamic"])
async def test_a_plan_that_scales_itself_is_never_written(azure: AzureEnv, tier: str) -> None:
    plan(azure, sku_name="EP1" if tier == "ElasticPremium" else "Y1", tier=tier)

    with pytest.raises(ActuatorError, match="which scales itself") as refused:
        await actuator(azure).apply(azure.decision(4))

    assert refused.value.code == "PlanScalesItself"
    assert patches(azure) == []


async def test_a_throttled_write_is_waited_out_and_sent_again(azure: AzureEnv) -> None:
    plan(azure, capacity=2)
    azure.fake.inject(service="arm", method="PATCH", status=429, retry_after=2, times=1)

    await actuator(azure).apply(azure.decision(4))

    assert [call.status for call in azure.fake.calls("arm", "PATCH")] == [429, 200]
    assert azure.slept == [2.0]
    assert capacity(azure) == 4


async def test_a_write_throttled_beyond_the_budget_is_skipped(azure: AzureEnv) -> None:
    plan(azure, capacity=2)
    azure.fake.inject(service="arm", method="PATCH", status=429, retry_after=60, times=None)

    with pytest.raises(Throttled) as skipped:
        await actuator(azure).apply(azure.decision(4))

    assert skipped.value.code == "SubscriptionRequestsThrottled"
    assert skipped.value.retry_after == 60
    assert capacity(azure) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(
            400,
            ArmError("BadRequest", "The parameter sku.capacity has an invalid value."),
            id="400",
        ),
        pytest.param(
            409,
            ArmError(
                "Conflict", "Cannot modify this plan because another operation is in progress."
            ),
            id="409",
        ),
    ],
)
async def test_a_rejected_write_fails_with_azures_code(
    azure: AzureEnv, status: int, error: ArmError
) -> None:
    plan(azure, capacity=2)
    azure.fake.inject(service="arm", method="PATCH", status=status, error=error)

    with pytest.raises(ActuatorError, match=error.message) as rejected:
        await actuator(azure).apply(azure.decision(4))

    assert rejected.value.code == error.code
    assert capacity(azure) == 2
    assert [call.status for call in azure.fake.calls("arm", "PATCH")] == [status]  # not repeated


@pytest.mark.parametrize("style", ["azure-async-operation", "location", "provisioning-state"])
async def test_a_202_is_followed_to_its_end(azure: AzureEnv, style: LroStyle) -> None:
    plan(azure, capacity=2)
    azure.fake.set_lro(style, polls=2)
    web = actuator(azure)

    applied = await web.apply(azure.decision(6))
    held = await web.current()
    await web.settled()

    assert applied.operation is not None and applied.resume is not None
    assert held.operation == applied.operation  # the core holds meanwhile
    if style != "provisioning-state":  # App Service's operation URL is under the plan
        polled = azure.fake.calls("arm", "GET", r"/serverfarms/web-plan/operationresults/")
        assert polled and all(call.path.endswith(applied.operation) for call in polled)
    assert capacity(azure) == 6
    assert await web.current() == Capacity(6, 6)


async def test_a_failed_operation_is_told_with_azures_code(azure: AzureEnv) -> None:
    plan(azure, capacity=2)
    azure.fake.set_lro(
        "azure-async-operation",
        fail=ArmError("InsufficientCapacity", "Not enough workers are available in the region."),
    )
    web = actuator(azure)
    applied = await web.apply(azure.decision(6))
    assert applied.operation is not None and applied.resume is not None

    outcome = await web.outcome(applied.operation, applied.resume)

    assert outcome.code == "InsufficientCapacity"
    assert "Not enough workers" in outcome.message
    assert outcome.message.endswith("it is at Standard S1 x2 now")
    assert capacity(azure) == 2


async def test_another_process_follows_the_operation_from_its_token(azure: AzureEnv) -> None:
    plan(azure, capacity=2)
    azure.fake.set_lro("location", polls=3)
    first = actuator(azure)
    applied = await first.apply(azure.decision(5))
    await first.aclose()  # the process that started it is gone
    assert applied.operation is not None and applied.resume is not None

    outcome = await actuator(azure).outcome(applied.operation, applied.resume)

    assert outcome.succeeded
    assert capacity(azure) == 5
