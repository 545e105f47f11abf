"""``kind = "azure-postgres-flexible"``: compute or storage of an Azure Database for
PostgreSQL flexible server, moved along a ladder.

``scale = "sku"`` (the default) climbs a ladder of compute SKUs, e.g.
``skus = ["Standard_B2ms", "Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]``.
An entry is a SKU name — its tier (B: Burstable, D: GeneralPurpose, E: MemoryOptimized)
and size (its vCores) are read from the name — or a table ``{name, tier, units}``. A
compute change restarts the server (with zone-redundant high availability, a failover):
every tier says so, and the audit record carries it.

``scale = "storage"`` grows the disk along ``storage_sizes_gb`` (Azure's Premium SSD sizes
by default) and never shrinks it: only upward moves are on the ladder, and a decision below
the current size writes nothing. It is a target of its own, with its own rule on the
server's ``storage_percent`` metric (an ``azure-monitor`` source), e.g. ``[[threshold]]
when = "storage_percent > 85 max 5m", action = "+1"``; its audit records then say why the
disk grew. Azure grows storage online, except across 4 TiB, which it does offline: that
tier is marked as restarting. (Azure's own storage auto-grow is the alternative; do not
use both.)

Both modes write only what changes — the SKU (name and tier together, as Azure requires)
or ``properties.storage.storageSizeGB`` — and honour the maintenance windows configured
here (``maintenance``). The server's ``state`` tells a change in progress (``Updating``…):
PostgreSQL has no ``provisioningState`` on the wire.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from azure.core.polling import AsyncLROPoller
from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient
from azure.mgmt.postgresqlflexibleservers.models import Server
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..azure.arm import ArmActuator, Change, Json, json_body, wire_text
from ..azure.clients import azure_clients
from ..azure.ids import ResourceId, resource_id_of
from ..azure.vertical import VerticalActuatorConfig, check_ladder, position_on
from ..core.model import Decision
from ..core.rules import Ladder, Tier
from ..plugins import Actuator, BuildContext, Plugin

__all__ = [
    "PLUGIN",
    "PostgresFlexibleConfig",
    "PostgresSku",
    "ServerSkuScale",
    "ServerStorageScale",
]

# Premium SSD sizes a flexible server offers, in GiB
STORAGE_SIZES_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767)
# Azure resizes a disk across this size offline
_OFFLINE_BOUNDARY_GB = 4096
_SKU_NAME = re.compile(r"^Standard_(?P<family>[A-Z]+?)(?P<vcores>\d+)", re.IGNORECASE)
_TIER_OF_FAMILY = {"B": "Burstable", "D": "GeneralPurpose", "E": "MemoryOptimized"}
_BUSY_STATES = frozenset(
    {"updating", "starting", "stopping", "restarting", "provisioning", "dropping"}
)


class PostgresSku(BaseModel):
    """One compute SKU of the ladder: ``"Standard_D4ds_v4"`` or ``{name, tier, units}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"]
    # its size in comparable units (default: its vCores)
    units: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        entry = {"name": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return entry
        parsed = _SKU_NAME.match(entry["name"])
        if parsed is None:
            return entry
        inferred = {
            "tier": _TIER_OF_FAMILY.get(parsed["family"].upper()),
            "units": float(parsed["vcores"]),
        }
        return {**{key: item for key, item in inferred.items() if item is not None}, **entry}

    @property
    def label(self) -> str:
        return self.name

    @property
    def size(self) -> float:
        return self.units


class PostgresFlexibleConfig(VerticalActuatorConfig):
    kind: Literal["azure-postgres-flexible"]
    # "sku": climb the compute ladder `skus`; "storage": grow the disk along storage_sizes_gb
    scale: Literal["sku", "storage"] = "sku"
    # compute SKUs, smallest first (scale = "sku")
    skus: tuple[PostgresSku, ...] = ()
    # disk sizes in GiB, smallest first (scale = "storage")
    storage_sizes_gb: tuple[int, ...] = STORAGE_SIZES_GB

    _resource_id = field_validator("resource_id")(
        resource_id_of("Microsoft.DBforPostgreSQL/flexibleServers")
    )

    @field_validator("storage_sizes_gb")
    @classmethod
    def _growing(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if not sizes or any(size <= 0 for size in sizes) or list(sizes) != sorted(set(sizes)):
            raise ValueError("list distinct sizes in GiB, smallest first")
        return sizes

    @model_validator(mode="after")
    def _ladder_for_the_mode(self) -> Self:
        if self.scale == "sku":
            if not self.skus:
                raise ValueError(
                    "scale = 'sku' needs skus, e.g. ['Standard_D2ds_v4', 'Standard_D4ds_v4']"
                )
            check_ladder(self.skus)
        elif self.skus:
            raise ValueError("scale = 'storage' grows the disk along storage_sizes_gb: remove skus")
        return self

    def ladder(self) -> Ladder:
        if self.scale == "sku":
            # any compute change restarts the server
            return Ladder(tuple(Tier(sku.name, sku.units, restarts=True) for sku in self.skus))
        sizes = self.storage_sizes_gb
        tiers = tuple(
            Tier(f"{size} GiB", size, restarts=_crosses_offline_boundary(previous, size))
            for previous, size in zip((0, *sizes), sizes, strict=False)
        )
        upward = frozenset(
            (low, high)
            for low in range(1, len(sizes) + 1)
            for high in range(low + 1, len(sizes) + 1)
        )
        return Ladder(tiers, allowed=upward)


class _ServerScale:
    """Reading, in-progress state and PATCH of one flexible server, shared by both modes."""

    def __init__(self, client: PostgreSQLManagementClient, resource_id: ResourceId) -> None:
        self._client = client
        self._group, self._name = resource_id.resource_group, resource_id.name
        self.label = f"PostgreSQL server {self._name!r}"

    async def read(self) -> Server:
        return await self._client.servers.get(self._group, self._name)

    def in_progress(self, server: Server) -> str | None:
        state = wire_text(server.properties.state if server.properties else None)
        return f"state={state}" if state.lower() in _BUSY_STATES else None

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        return await self._client.servers.begin_update(
            self._group, self._name, json_body(body), content_type="application/json", **options
        )


class ServerSkuScale(_ServerScale):
    """Capacity is the position of the server's compute SKU on the ladder."""

    def __init__(
        self,
        client: PostgreSQLManagementClient,
        resource_id: ResourceId,
        skus: Sequence[PostgresSku],
    ) -> None:
        super().__init__(client, resource_id)
        self._skus = tuple(skus)

    async def capacity(self, server: Server) -> tuple[int, int]:
        position = self._position(server)
        return position, position

    def describe(self, server: Server) -> str:
        sku = server.sku
        return f"{sku.name} ({wire_text(sku.tier)})" if sku else "no SKU"

    def change(self, server: Server, decision: Decision) -> Change | None:
        target = self._skus[decision.desired - 1]
        current = server.sku
        if current is not None and (current.name.lower(), wire_text(current.tier)) == (
            target.name.lower(),
            target.tier,
        ):
            return None
        notes = (
            f"{self.describe(server)} -> {target.name} ({target.tier})",
            "a compute change restarts the server (with zone-redundant HA: a failover)",
        )
        return Change({"sku": {"name": target.name, "tier": target.tier}}, notes)

    def _position(self, server: Server) -> int:
        name = server.sku.name.lower() if server.sku else ""
        return position_on(
            self._skus,
            lambda sku: sku.name.lower() == name,
            self.label,
            self.describe(server),
            "SkuNotOnLadder",
        )


class ServerStorageScale(_ServerScale):
    """Capacity is how many ladder sizes fit in the server's disk; the disk only grows."""

    def __init__(
        self, client: PostgreSQLManagementClient, resource_id: ResourceId, sizes: Sequence[int]
    ) -> None:
        super().__init__(client, resource_id)
        self._sizes = tuple(sizes)

    async def capacity(self, server: Server) -> tuple[int, int]:
        position = max(1, sum(size <= _storage_gb(server) for size in self._sizes))
        return position, position

    def describe(self, server: Server) -> str:
        return f"{_storage_gb(server)} GiB of storage"

    def change(self, server: Server, decision: Decision) -> Change | None:
        current, target = _storage_gb(server), self._sizes[decision.desired - 1]
        if target <= current:  # storage never shrinks
            return None
        notes = [f"storage {current} GiB -> {target} GiB (storage only grows)"]
        if _crosses_offline_boundary(current, target):
            notes.append(
                "growing across 4 TiB is done offline: the server is unavailable meanwhile"
            )
        return Change({"properties": {"storage": {"storageSizeGB": target}}}, tuple(notes))


def build(config: PostgresFlexibleConfig, ctx: BuildContext) -> Actuator:
    azure = azure_clients(ctx, config.name)
    resource_id = ResourceId.parse(config.resource_id)
    client = azure.postgres(resource_id.subscription)
    if config.scale == "sku":
        return ArmActuator(ServerSkuScale(client, resource_id, config.skus), resource_id, azure)
    return ArmActuator(
        ServerStorageScale(client, resource_id, config.storage_sizes_gb), resource_id, azure
    )


def _storage_gb(server: Server) -> int:
    storage = server.properties.storage if server.properties else None
    return (storage.storage_size_gb or 0) if storage else 0


def _crosses_offline_boundary(before_gb: int, after_gb: int) -> bool:
    return before_gb <= _OFFLINE_BOUNDARY_GB < after_gb


PLUGIN = Plugin(
    kind="azure-postgres-flexible",
    config=PostgresFlexibleConfig,
    build=build,
    summary="compute SKU ladder or growing storage of an Azure PostgreSQL flexible server",
)
