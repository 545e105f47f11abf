"""``kind = "azure-sql"``: the service objective of an Azure SQL database, moved along a
ladder.

``objectives`` lists service objectives smallest first, as the portal names them:
vCore ones (``"GP_Gen5_2"``, ``"BC_Gen5_8"``, ``"HS_Gen5_4"``, serverless ``"GP_S_Gen5_2"``)
are read as SKU name, tier and capacity (their vCores, the ladder's units); DTU ones
(``"S3"``, ``"P2"``, ``"Basic"``) take their tier and DTUs from Azure's table. A table
``{name, tier, capacity, units}`` spells out anything else.

A change PATCHes the database's ``sku`` (name, tier and capacity together: they are one
objective) and nothing else. Azure keeps the database online while it scales and switches
to the new objective at the end, dropping open connections once; the audit notes say so.
A change is in progress while ``status`` is ``Scaling`` or the requested objective differs
from the current one. Hyperscale is a one-way door (Azure allows leaving it only in narrow
cases), so the ladder allows no move out of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from azure.core.polling import AsyncLROPoller
from azure.mgmt.sql.aio import SqlManagementClient
from azure.mgmt.sql.models import Database
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..azure.arm import ArmActuator, Change, Json, json_body, wire_text
from ..azure.clients import azure_clients
from ..azure.ids import ResourceId, resource_id_of
from ..azure.vertical import VerticalActuatorConfig, check_ladder, position_on
from ..core.model import Decision
from ..core.rules import Ladder, Tier
from ..plugins import Actuator, BuildContext, Plugin

__all__ = ["PLUGIN", "DatabaseObjectiveScale", "SqlConfig", "SqlObjective"]

_VCORE = re.compile(
    r"^(?P<name>(?P<edition>GP|BC|HS)(?:_S)?_[A-Za-z0-9]+)_(?P<capacity>\d+)$", re.IGNORECASE
)
_EDITIONS = {"GP": "GeneralPurpose", "BC": "BusinessCritical", "HS": "Hyperscale"}
# DTU service objectives: tier and DTUs (learn.microsoft.com, "DTU-based purchasing model")
_DTU = {
    "basic": ("Basic", 5),
    **{
        f"s{n}": ("Standard", dtu)
        for n, dtu in (
            (0, 10),
            (1, 20),
            (2, 50),
            (3, 100),
            (4, 200),
            (6, 400),
            (7, 800),
            (9, 1600),
            (12, 3000),
        )
    },
    **{
        f"p{n}": ("Premium", dtu)
        for n, dtu in ((1, 125), (2, 250), (4, 500), (6, 1000), (11, 1750), (15, 4000))
    },
}
_HYPERSCALE = "Hyperscale"


class SqlObjective(BaseModel):
    """One service objective of the ladder: ``"GP_Gen5_4"``, ``"S3"``, or a table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the SKU name Azure takes: "GP_Gen5", "S3"
    name: str = Field(min_length=1)
    tier: str = Field(min_length=1)
    # vCores (vCore objectives); unset for DTU objectives, whose name says it all
    capacity: int | None = Field(None, ge=1)
    # its size in comparable units (default: vCores or DTUs)
    units: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_objective(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if vcore := _VCORE.match(value):
            capacity = int(vcore["capacity"])
            tier = _EDITIONS[vcore["edition"].upper()]
            return {"name": vcore["name"], "tier": tier, "capacity": capacity, "units": capacity}
        if value.lower() in _DTU:
            tier, dtus = _DTU[value.lower()]
            return {"name": value, "tier": tier, "units": dtus}
        raise ValueError(
            f"unknown service objective {value!r}: write e.g. 'GP_Gen5_4' or 'S3', or a table "
            "{name, tier, capacity, units}"
        )

    @property
    def label(self) -> str:
        """The service objective name Azure reports (``GP_Gen5_4``, ``S3``)."""
        return f"{self.name}_{self.capacity}" if self.capacity is not None else self.name

    @property
    def size(self) -> float:
        return self.units


class SqlConfig(VerticalActuatorConfig):
    kind: Literal["azure-sql"]
    # service objectives, smallest first
    objectives: tuple[SqlObjective, ...] = Field(min_length=1)

    _resource_id = field_validator("resource_id")(resource_id_of("Microsoft.Sql/servers/databases"))

    @model_validator(mode="after")
    def _a_ladder(self) -> Self:
        check_ladder(self.objectives)
        return self

    def ladder(self) -> Ladder:
        objectives = self.objectives
        tiers = tuple(Tier(objective.label, objective.units) for objective in objectives)
        allowed = frozenset(
            (start, end)
            for start, low in enumerate(objectives, start=1)
            for end, high in enumerate(objectives, start=1)
            if low.tier != _HYPERSCALE or high.tier == _HYPERSCALE
        )
        return Ladder(tiers, allowed)


class DatabaseObjectiveScale:
    """Capacity is the position of the database's current service objective on the ladder."""

    def __init__(
        self,
        client: SqlManagementClient,
        resource_id: ResourceId,
        objectives: Sequence[SqlObjective],
    ) -> None:
        self._client = client
        self._group, (self._server, self._database) = resource_id.resource_group, resource_id.names
        self._objectives = tuple(objectives)
        self.label = f"SQL database {self._database!r}"

    async def read(self) -> Database:
        return await self._client.databases.get(self._group, self._server, self._database)

    async def capacity(self, database: Database) -> tuple[int, int]:
        position = self._position(database)
        return position, position

    def in_progress(self, database: Database) -> str | None:
        properties = database.properties
        if properties is None:
            return None
        status = wire_text(properties.status)
        if status == "Scaling":
            return f"status={status}"
        requested = properties.requested_service_objective_name
        if (
            requested
            and requested.lower() != (properties.current_service_objective_name or "").lower()
        ):
            return f"requestedServiceObjectiveName={requested}"
        return None

    def describe(self, database: Database) -> str:
        return _objective(database) or "no service objective"

    def change(self, database: Database, decision: Decision) -> Change | None:
        target = self._objectives[decision.desired - 1]
        if _objective(database).lower() == target.label.lower():
            return None
        sku: Json = {"name": target.name, "tier": target.tier}
        if target.capacity is not None:
            sku["capacity"] = target.capacity
        notes = (
            f"{self.describe(database)} -> {target.label}",
            "the database stays online; open connections drop once at the switch-over",
        )
        return Change({"sku": sku}, notes)

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        return await self._client.databases.begin_update(
            self._group,
            self._server,
            self._database,
            json_body(body),
            content_type="application/json",
            **options,
        )

    def _position(self, database: Database) -> int:
        current = _objective(database).lower()
        return position_on(
            self._objectives,
            lambda objective: objective.label.lower() == current,
            self.label,
            self.describe(database),
            "ObjectiveNotOnLadder",
        )


def build(config: SqlConfig, ctx: BuildContext) -> Actuator:
    azure = azure_clients(ctx, config.name)
    resource_id = ResourceId.parse(config.resource_id)
    scale = DatabaseObjectiveScale(
        azure.sql(resource_id.subscription), resource_id, config.objectives
    )
    return ArmActuator(scale, resource_id, azure)


def _objective(database: Database) -> str:
    properties = database.properties
    return (properties.current_service_objective_name or "") if properties else ""


PLUGIN = Plugin(
    kind="azure-sql",
    config=SqlConfig,
    build=build,
    summary="service objective ladder of an Azure SQL database",
)
