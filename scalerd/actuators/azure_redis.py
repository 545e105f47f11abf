"""``kind = "azure-redis"``: the SKU (and Premium shard count) of an Azure Cache for Redis,
moved along a ladder with the transitions Azure allows.

``skus`` lists SKUs smallest first as the portal names them: ``"Basic C0"`` …
``"Standard C6"``, ``"Premium P1"`` … ``"Premium P5"``; a Premium entry may add a shard
count, ``"Premium P1 x3"`` (clustering). The ladder's units are the memory it offers
(GB times shards). Either every Premium entry names its shards or none does; without them the
shard count is left as it is.

Azure allows (learn.microsoft.com, "Scale an Azure Cache for Redis instance"), and the
ladder encodes as its transition graph, so the core steps around the rest:

- any size within a tier, except down to C0 from a larger size;
- Basic → Standard of the *same* size only (resize in a second step);
- Standard → Premium; never Basic → Premium in one step;
- never to a lower tier (Premium → Standard/Basic, Standard → Basic);
- within Premium, a shard count change or a size change, not both at once.

A Basic cache is offline and loses its data while it is resized: Basic tiers are marked as
restarting. The PATCH is a plain dict with only what changes: ``properties.sku`` (name,
family and capacity together) and/or ``properties.shardCount``. The SDK's update model is
not used: it adds defaults (``enableNonSslPort``, ``publicNetworkAccess``…) that would
silently change other settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from azure.core.polling import AsyncLROPoller
from azure.mgmt.redis.aio import RedisManagementClient
from azure.mgmt.redis.models import RedisResource
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..azure.arm import ArmActuator, Change, Json, json_body, wire_text
from ..azure.clients import azure_clients
from ..azure.ids import ResourceId, resource_id_of
from ..azure.vertical import VerticalActuatorConfig, check_ladder, position_on
from ..core.model import Decision
from ..core.rules import Ladder, Tier
from ..plugins import Actuator, BuildContext, Plugin

__all__ = ["PLUGIN", "CacheSkuScale", "RedisConfig", "RedisSku"]

_SKU = re.compile(
    r"^\s*(?P<name>Basic|Standard|Premium)\s+(?P<family>[CP])(?P<capacity>\d)"
    r"(?:\s*x\s*(?P<shards>\d+))?\s*$",
    re.IGNORECASE,
)
# memory per size in GB (C0 is 250 MB)
_SIZES_GB: dict[str, dict[int, float]] = {
    "C": {0: 0.25, 1: 1, 2: 2.5, 3: 6, 4: 13, 5: 26, 6: 53},
    "P": {1: 6, 2: 13, 3: 26, 4: 53, 5: 120},
}
_RANK = {"Basic": 0, "Standard": 1, "Premium": 2}
_SETTLED = frozenset({"succeeded", "failed", "disabled"})


class RedisSku(BaseModel):
    """One SKU of the ladder: ``"Standard C2"``, ``"Premium P1 x3"``, or a table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["Basic", "Standard", "Premium"]
    family: Literal["C", "P"]
    capacity: int = Field(ge=0)
    # Premium clustering; unset: leave the cache's shard count as it is
    shards: int | None = Field(None, ge=1, le=30)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _SKU.match(value)
        if match is None:
            raise ValueError(
                f"cannot read SKU {value!r}: write e.g. 'Standard C2' or 'Premium P1 x3'"
            )
        return {
            "name": match["name"].capitalize(),
            "family": match["family"].upper(),
            "capacity": int(match["capacity"]),
            "shards": int(match["shards"]) if match["shards"] else None,
        }

    @model_validator(mode="after")
    def _exists(self) -> Self:
        if self.family != ("P" if self.name == "Premium" else "C"):
            raise ValueError(
                f"{self.name} caches are family {'P' if self.name == 'Premium' else 'C'}"
            )
        if self.capacity not in _SIZES_GB[self.family]:
            raise ValueError(f"{self.name} has no size {self.family}{self.capacity}")
        if self.shards is not None and self.name != "Premium":
            raise ValueError("only Premium caches have shards")
        return self

    @property
    def label(self) -> str:
        shards = f" x{self.shards}" if self.shards is not None else ""
        return f"{self.name} {self.family}{self.capacity}{shards}"

    @property
    def size(self) -> float:
        return _SIZES_GB[self.family][self.capacity] * (self.shards or 1)

    def allows_move_to(self, other: RedisSku) -> bool:
        """Whether Azure scales this SKU to ``other`` in one operation."""
        if _RANK[other.name] < _RANK[self.name]:
            return False
        if self.name == "Basic" and other.name != "Basic":
            return other.name == "Standard" and other.capacity == self.capacity
        if other.capacity == 0 and self.capacity > 0:
            return False
        if self.name == other.name == "Premium":
            return self.capacity == other.capacity or self.shards == other.shards
        return True


class RedisConfig(VerticalActuatorConfig):
    kind: Literal["azure-redis"]
    # SKUs, smallest first
    skus: tuple[RedisSku, ...] = Field(min_length=1)

    _resource_id = field_validator("resource_id")(resource_id_of("Microsoft.Cache/redis"))

    @model_validator(mode="after")
    def _a_ladder(self) -> Self:
        check_ladder(self.skus)
        premium = [sku for sku in self.skus if sku.name == "Premium"]
        if len({sku.shards is None for sku in premium}) > 1:
            raise ValueError("name the shards of every Premium SKU ('Premium P1 x2') or of none")
        return self

    def ladder(self) -> Ladder:
        skus = self.skus
        # a Basic cache is offline (and loses its data) while it is resized
        tiers = tuple(Tier(sku.label, sku.size, restarts=sku.name == "Basic") for sku in skus)
        allowed = frozenset(
            (start, end)
            for start, low in enumerate(skus, start=1)
            for end, high in enumerate(skus, start=1)
            if low.allows_move_to(high)
        )
        return Ladder(tiers, allowed)


class CacheSkuScale:
    """Capacity is the position of the cache's SKU (and shard count) on the ladder."""

    def __init__(
        self, client: RedisManagementClient, resource_id: ResourceId, skus: Sequence[RedisSku]
    ) -> None:
        self._client = client
        self._group, self._name = resource_id.resource_group, resource_id.name
        self._skus = tuple(skus)
        self.label = f"Redis cache {self._name!r}"

    async def read(self) -> RedisResource:
        return await self._client.redis.get(self._group, self._name)

    async def capacity(self, cache: RedisResource) -> tuple[int, int]:
        position = self._position(cache)
        return position, position

    def in_progress(self, cache: RedisResource) -> str | None:
        state = wire_text(cache.provisioning_state)
        return None if state.lower() in _SETTLED else f"provisioningState={state or 'unknown'}"

    def describe(self, cache: RedisResource) -> str:
        shards = f" x{cache.shard_count}" if cache.shard_count else ""
        return _sku_label(*_sku_of(cache)) + shards

    def change(self, cache: RedisResource, decision: Decision) -> Change | None:
        target = self._skus[decision.desired - 1]
        current = _sku_of(cache)
        properties: Json = {}
        notes = []
        if current != (target.name, target.family, target.capacity):
            properties["sku"] = {
                "name": target.name,
                "family": target.family,
                "capacity": target.capacity,
            }
            wanted = _sku_label(target.name, target.family, target.capacity)
            notes.append(f"{_sku_label(*current)} -> {wanted}")
        if target.shards is not None and cache.shard_count != target.shards:
            properties["shardCount"] = target.shards
            notes.append(f"shards {cache.shard_count or 0} -> {target.shards}")
        if not properties:
            return None
        if "Basic" in (target.name, current[0]):
            notes.append("a Basic cache is offline and loses its data while it is resized")
        return Change({"properties": properties}, tuple(notes))

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        return await self._client.redis.begin_update(
            self._group, self._name, json_body(body), content_type="application/json", **options
        )

    def _position(self, cache: RedisResource) -> int:
        current = _sku_of(cache)

        def is_current(entry: RedisSku) -> bool:
            same_shards = entry.shards is None or entry.shards == cache.shard_count
            return (entry.name, entry.family, entry.capacity) == current and same_shards

        return position_on(
            self._skus, is_current, self.label, self.describe(cache), "SkuNotOnLadder"
        )


def build(config: RedisConfig, ctx: BuildContext) -> Actuator:
    azure = azure_clients(ctx, config.name)
    resource_id = ResourceId.parse(config.resource_id)
    scale = CacheSkuScale(azure.redis(resource_id.subscription), resource_id, config.skus)
    return ArmActuator(scale, resource_id, azure)


def _sku_of(cache: RedisResource) -> tuple[str, str, int]:
    sku = cache.sku
    return wire_text(sku.name), wire_text(sku.family), sku.capacity


def _sku_label(name: str, family: str, capacity: int) -> str:
    return f"{name} {family}{capacity}"


PLUGIN = Plugin(
    kind="azure-redis",
    config=RedisConfig,
    build=build,
    summary="SKU and shard ladder of an Azure Cache for Redis, with Azure's allowed transitions",
)
