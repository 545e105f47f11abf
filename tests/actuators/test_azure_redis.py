"""The azure-redis actuator through the real ``RedisManagementClient`` against ``FakeAzure``:
Azure's allowed transitions, and a PATCH that carries nothing but the change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from pydantic import ValidationError

from scalerd.actuators.azure_redis import PLUGIN, RedisConfig, RedisSku
from scalerd.azure.arm import ArmActuator
from scalerd.core.model import Capacity
from scalerd.core.rules import Tier

CACHE = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Cache/redis/cache"


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(skus: list[Any], **keys: Any) -> RedisConfig:
    defaults = {"kind": "azure-redis", "name": "cache", "resource_id": CACHE}
    return RedisConfig.model_validate({**defaults, "skus": skus, **keys})


def actuator(azure: AzureEnv, skus: list[Any]) -> ArmActuator[Any]:
    built = PLUGIN.build(config(skus), azure.ctx)
    assert isinstance(built, ArmActuator)
    return built


def sku(text: str) -> RedisSku:
    return RedisSku.model_validate(text)


# ---------------------------------------------------------------------- the ladder


def test_skus_read_as_the_portal_names_them() -> None:
    ladder = config(["Basic C1", "Standard C1", "standard c2", "Premium P1", "Premium P2"]).ladder()

    assert ladder.tiers == (
        Tier("Basic C1", 1, restarts=True),  # a Basic cache is offline while resized
        Tier("Standard C1", 1),
        Tier("Standard C2", 2.5),
        Tier("Premium P1", 6),
        Tier("Premium P2", 13),
    )


@pytest.mark.parametrize(
    ("start", "end", "allowed"),
    [
        # within a tier, any size, but never down to C0
        ("Standard C1", "Standard C3", True),
        ("Standard C3", "Standard C1", True),
        ("Standard C1", "Standard C0", False),
        ("Basic C2", "Basic C0", False),
        # Basic -> Standard of the same size only; never Basic -> Premium
        ("Basic C1", "Standard C1", True),
        ("Basic C1", "Standard C2", False),
        ("Basic C3", "Premium P1", False),
        # up to Premium; never down a tier
        ("Standard C3", "Premium P2", True),
        ("Premium P1", "Standard C6", False),
        ("Standard C1", "Basic C1", False),
        # within Premium: size or shards, not both at once
        ("Premium P1 x2", "Premium P1 x3", True),
        ("Premium P1 x2", "Premium P2 x2", True),
        ("Premium P1 x2", "Premium P2 x3", False),
        ("Premium P2 x3", "Premium P1 x3", True),
    ],
)
def test_azures_allowed_transitions(start: str, end: str, allowed: bool) -> None:
    assert sku(start).allows_move_to(sku(end)) is allowed


def test_the_ladder_steps_around_a_forbidden_move() -> None:
    ladder = config(["Basic C1", "Standard C1", "Standard C2", "Premium P1"]).ladder()

    assert not ladder.allows(1, 4)  # Basic C1 -> Premium P1
    assert ladder.allows(1, 2) and ladder.allows(2, 4)
    assert not ladder.allows(4, 2)


def test_shards_multiply_the_memory() -> None:
    assert sku("Premium P2 x3").size == 39
    assert sku("Premium P2 x3").label == "Premium P2 x3"


@pytest.mark.parametrize(
    ("skus", "message"),
    [
        pytest.param(["Standard C7"], "Standard has no size C7", id="no C7"),
        pytest.param(["Standard D1"], "cannot read SKU 'Standard D1'", id="not a SKU"),
        pytest.param(["Premium P6"], "Premium has no size P6", id="no P6"),
        pytest.param(["Standard P1"], "Standard caches are family C", id="family"),
        pytest.param(
            [{"name": "Standard", "family": "C", "capacity": 1, "shards": 2}],
            "only Premium",
            id="shards",
        ),
        pytest.param(["Premium P1 x2", "Premium P2"], "of every Premium SKU", id="mixed shards"),
        pytest.param(["Standard C2", "Standard C1"], "the ladder must grow", id="shrinks"),
    ],
)
def test_invalid_ladders_are_refused(skus: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(skus)


# ---------------------------------------------------------------------- against the fake


async def test_capacity_is_the_position_of_sku_and_shards(azure: AzureEnv) -> None:
    azure.fake.add_redis_cache(
        SUB, "rg", "cache", sku_name="Premium", family="P", capacity=1, shard_count=2
    )

    capacity = await actuator(azure, ["Premium P1 x1", "Premium P1 x2", "Premium P1 x3"]).current()

    assert capacity == Capacity(2, 2)


@pytest.mark.parametrize(
    ("skus", "desired", "body"),
    [
        pytest.param(
            ["Standard C1", "Standard C2"],
            2,
            {"properties": {"sku": {"name": "Standard", "family": "C", "capacity": 2}}},
            id="a size",
        ),
        pytest.param(
            ["Standard C1", "Premium P1"],
            2,
            {"properties": {"sku": {"name": "Premium", "family": "P", "capacity": 1}}},
            id="a tier",
        ),
    ],
)
async def test_the_patch_carries_only_the_sku(
    azure: AzureEnv, skus: list[str], desired: int, body: dict[str, Any]
) -> None:
    azure.fake.add_redis_cache(SUB, "rg", "cache", sku_name="Standard", family="C", capacity=1)
    cache = actuator(azure, skus)

    await cache.apply(azure.decision(desired))
    await cache.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == body  # no enableNonSslPort, publicNetworkAccess… from the SDK model
    assert "/Microsoft.Cache/redis/cache" in patch.path


async def test_a_shard_change_patches_the_shard_count_only(azure: AzureEnv) -> None:
    azure.fake.add_redis_cache(
        SUB, "rg", "cache", sku_name="Premium", family="P", capacity=1, shard_count=1
    )
    cache = actuator(azure, ["Premium P1 x1", "Premium P1 x2"])

    applied = await cache.apply(azure.decision(2))
    held = await cache.current()
    await cache.settled()

    (patch,) = azure.fake.calls("arm", "PATCH")
    assert patch.body == {"properties": {"shardCount": 2}}
    assert applied.notes == ("shards 1 -> 2",)
    assert held.operation == applied.operation  # Redis answers with a Location to poll
    assert await cache.current() == Capacity(2, 2)


async def test_no_patch_at_the_desired_sku(azure: AzureEnv) -> None:
    azure.fake.add_redis_cache(SUB, "rg", "cache", sku_name="Standard", family="C", capacity=2)

    await actuator(azure, ["Standard C1", "Standard C2"]).apply(azure.decision(2))

    assert azure.fake.calls("arm", "PATCH") == []


async def test_a_basic_resize_warns_of_downtime(azure: AzureEnv) -> None:
    azure.fake.add_redis_cache(SUB, "rg", "cache", sku_name="Basic", family="C", capacity=1)

    cache = actuator(azure, ["Basic C1", "Basic C2"])

    applied = await cache.apply(azure.decision(2))
    await cache.settled()

    assert applied.notes[-1] == "a Basic cache is offline and loses its data while it is resized"
