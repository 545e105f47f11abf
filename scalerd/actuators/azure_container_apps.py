"""``kind = "azure-container-apps"``: replicas of an Azure Container App.

Capacity is read from the app's *active* revisions (``active``, or receiving traffic):
provisioned is the sum of their replicas, but never less than the scale template's
``minReplicas`` (what is asked for counts before its replicas exist); ready is the
replicas whose state is ``Running``.

A decision is written as the smallest JSON merge patch of ``properties.template.scale``:

- ``mode = "pin"``: ``minReplicas = maxReplicas = desired`` — scalerd alone sets the count;
- ``mode = "floor"``: ``minReplicas = desired`` — the app's own scale rules (HTTP
  concurrency, KEDA scalers) may go higher; ``maxReplicas`` is raised only when the floor
  would pass it.

Only bounds that differ are sent. Container Apps has no ``maxReplicas = 0``: a desired 0
sets ``minReplicas = 0``, and the app's rules scale it to zero when it idles.

Revisions: ``template.scale`` is revision-scoped, so each change creates a new revision.
In single-revision mode it replaces the old one, which is what scalerd expects. In
multiple-revision mode the new revision gets traffic only as the ingress traffic rules say
(``latestRevision: true``); older active revisions keep their own scale, and their
replicas still count in ``current()``.
"""

from __future__ import annotations

from typing import Any, Literal

from azure.core.polling import AsyncLROPoller
from azure.mgmt.appcontainers.aio import ContainerAppsAPIClient
from azure.mgmt.appcontainers.models import ContainerApp
from pydantic import field_validator

from ..azure.arm import ArmActuator, Change, Json, json_body, wire_text
from ..azure.clients import azure_clients
from ..azure.ids import ResourceId, resource_id_of
from ..core.model import Decision
from ..plugins import Actuator, ActuatorConfig, BuildContext, Plugin

__all__ = ["PLUGIN", "ContainerAppScale", "ContainerAppsConfig"]

# what Container Apps assumes when the template leaves a bound out
_DEFAULT_MIN_REPLICAS = 0
_DEFAULT_MAX_REPLICAS = 10
_SETTLED = frozenset({"succeeded", "failed", "canceled"})


class ContainerAppsConfig(ActuatorConfig):
    kind: Literal["azure-container-apps"]
    # the app's id: /subscriptions/…/resourceGroups/…/providers/Microsoft.App/containerApps/<name>
    resource_id: str
    # "pin": min = max = desired; "floor": min = desired, the app's own rules may go higher
    mode: Literal["pin", "floor"] = "pin"

    _resource_id = field_validator("resource_id")(resource_id_of("Microsoft.App/containerApps"))

    def describe(self) -> str:
        app = ResourceId.parse(self.resource_id)
        where = f"{app.name} in resource group {app.resource_group}"
        return f"{self.kind} '{self.name}' ({where}, {self.mode})"


class ContainerAppScale:
    """The scale template and replicas of one container app, read and patched through the SDK."""

    def __init__(self, config: ContainerAppsConfig, client: ContainerAppsAPIClient) -> None:
        resource = ResourceId.parse(config.resource_id)
        self._mode = config.mode
        self._client = client
        self._group, self._name = resource.resource_group, resource.name
        self.label = f"container app {self._name!r}"

    async def read(self) -> ContainerApp:
        return await self._client.container_apps.get(self._group, self._name)

    async def capacity(self, app: ContainerApp) -> tuple[int, int]:
        revisions = self._client.container_apps_revisions.list_revisions(self._group, self._name)
        provisioned = ready = 0
        async for revision in revisions:
            if not (revision.active or (revision.traffic_weight or 0) > 0):
                continue
            provisioned += revision.replicas or 0
            ready += await self._running_replicas(revision.name or "")
        floor = _bounds(app)[0]
        return max(provisioned, floor), min(ready, max(provisioned, floor))

    def in_progress(self, app: ContainerApp) -> str | None:
        state = wire_text(app.provisioning_state)
        return None if state.lower() in _SETTLED else f"provisioningState={state or 'unknown'}"

    def describe(self, app: ContainerApp) -> str:
        low, high = _bounds(app)
        return f"minReplicas={low}, maxReplicas={high}"

    def change(self, app: ContainerApp, decision: Decision) -> Change | None:
        low, high = _bounds(app)
        desired = decision.desired
        wanted = {"minReplicas": desired}
        if desired > 0 and (self._mode == "pin" or desired > high):
            wanted["maxReplicas"] = desired
        current = {"minReplicas": low, "maxReplicas": high}
        changed = {key: value for key, value in wanted.items() if current[key] != value}
        if not changed:
            return None
        notes = [
            ", ".join(f"{key} {current[key]} -> {value}" for key, value in changed.items())
            + f" ({self._mode})",
            "a template change creates a new revision",
        ]
        if desired == 0:
            notes.append(
                "no maxReplicas of 0 exists: the app's own rules scale it to zero when idle"
            )
        return Change({"properties": {"template": {"scale": changed}}}, tuple(notes))

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        return await self._client.container_apps.begin_update(
            self._group, self._name, json_body(body), content_type="application/json", **options
        )

    async def _running_replicas(self, revision: str) -> int:
        replicas = await self._client.container_apps_revision_replicas.list_replicas(
            self._group, self._name, revision
        )
        return sum(wire_text(replica.running_state) == "Running" for replica in replicas.value)


def build(config: ContainerAppsConfig, ctx: BuildContext) -> Actuator:
    azure = azure_clients(ctx, config.name)
    resource_id = ResourceId.parse(config.resource_id)
    scale = ContainerAppScale(config, azure.container_apps(resource_id.subscription))
    return ArmActuator(scale, resource_id, azure)


def _bounds(app: ContainerApp) -> tuple[int, int]:
    scale = app.template.scale if app.template is not None else None
    if scale is None:
        return _DEFAULT_MIN_REPLICAS, _DEFAULT_MAX_REPLICAS
    low = scale.min_replicas if scale.min_replicas is not None else _DEFAULT_MIN_REPLICAS
    high = scale.max_replicas if scale.max_replicas is not None else _DEFAULT_MAX_REPLICAS
    return low, high


PLUGIN = Plugin(
    kind="azure-container-apps",
    config=ContainerAppsConfig,
    build=build,
    summary="replicas of an Azure Container App, pinned or floored through its scale template",
)
