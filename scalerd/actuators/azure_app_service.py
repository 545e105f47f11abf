"""``kind = "azure-app-service"``: the instance count of an Azure App Service plan.

An App Service plan (``Microsoft.Web/serverfarms``) runs every app in it on each of its
instances; its ``sku.capacity`` is how many there are. Capacity: provisioned is
``sku.capacity``, ready is ``properties.numberOfWorkers`` (the instances assigned to the
plan), never more than provisioned.

A decision is written as the JSON merge patch ``{"sku": {"capacity": N}}`` on the plan:
nothing else, so the tier, size and settings stay as they are (the SDK's patch model is
not used). App Service answers 200 when it scaled at once, or 202 with an operation to
follow (``Azure-AsyncOperation``/``Location``, or ``provisioningState``): the PATCH is
followed with azure-core's ARM polling like every other Azure actuator's write, and its
continuation token lets another process follow it to its end.

**Each tier has a maximum instance count** (Microsoft Learn, "Azure subscription and service
limits", App Service limits, "Maximum instances (scale out)"): Free and Shared 1, Basic 3,
Standard 10, Premium (v1 to v3) 30, Isolated and IsolatedV2 100. Azure also reports the plan's
own limit as ``properties.maximumNumberOfWorkers``; the smaller of the two applies. A
decision above it is clamped to it, and the audit record says so (``desired`` stays what
the rules asked for, the notes say what was written); a plan already at its tier's most
is left as it is. A plan runs at least one instance, so a desired 0 writes 1. Elastic
Premium, Consumption and Flex Consumption plans (Azure Functions) scale themselves: their
``sku.capacity`` is not an instance count, and scalerd refuses to write it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from azure.core.pipeline import PipelineResponse
from azure.core.polling import AsyncLROPoller
from azure.mgmt.core.polling.async_arm_polling import AsyncARMPolling
from azure.mgmt.web.aio import WebSiteManagementClient
from azure.mgmt.web.models import AppServicePlan
from pydantic import field_validator

from ..azure.arm import ArmActuator, Change, Json, json_body, wire_text
from ..azure.clients import azure_clients
from ..azure.ids import ResourceId, resource_id_of
from ..core.model import Decision
from ..errors import ActuatorError
from ..plugins import Actuator, ActuatorConfig, BuildContext, Plugin

__all__ = ["PLUGIN", "TIER_MAXIMUM", "AppServiceConfig", "AppServicePlanScale"]

# "Maximum instances (scale out)" per pricing tier, from Microsoft Learn's App Service
# limits; keyed by sku.tier as ARM spells it, lowercased
TIER_MAXIMUM: dict[str, int] = {
    "free": 1,
    "shared": 1,
    "basic": 3,
    "standard": 10,
    "premium": 30,
    "premiumv2": 30,
    "premiumv3": 30,
    "isolated": 100,
    "isolatedv2": 100,
}
# Functions plans that scale themselves: sku.capacity is no instance count there
_SELF_SCALING = frozenset({"dynamic", "elasticpremium", "flexconsumption"})
_SETTLED = frozenset({"succeeded", "failed", "canceled"})


class AppServiceConfig(ActuatorConfig):
    kind: Literal["azure-app-service"]
    # the plan's id: /subscriptions/…/resourceGroups/…/providers/Microsoft.Web/serverfarms/<name>
    resource_id: str

    _resource_id = field_validator("resource_id")(resource_id_of("Microsoft.Web/serverfarms"))

    def describe(self) -> str:
        plan = ResourceId.parse(self.resource_id)
        return (
            f"{self.kind} '{self.name}' (plan {plan.name} in resource group {plan.resource_group})"
        )


class AppServicePlanScale:
    """The instance count of one App Service plan, read and patched through the SDK."""

    def __init__(self, client: WebSiteManagementClient, resource_id: ResourceId) -> None:
        self._client = client
        self._group, self._name = resource_id.resource_group, resource_id.name
        self.label = f"App Service plan {self._name!r}"

    async def read(self) -> AppServicePlan:
        return await self._client.app_service_plans.get(self._group, self._name)

    async def capacity(self, plan: AppServicePlan) -> tuple[int, int]:
        provisioned = _capacity(plan)
        workers = plan.properties.number_of_workers if plan.properties else None
        return provisioned, provisioned if workers is None else min(workers, provisioned)

    def in_progress(self, plan: AppServicePlan) -> str | None:
        state = wire_text(plan.properties.provisioning_state if plan.properties else None)
        if not state or state.lower() in _SETTLED:
            return None
        return f"provisioningState={state}"

    def describe(self, plan: AppServicePlan) -> str:
        count = _capacity(plan)
        text = f"{_tier(plan)} {_sku_name(plan)} x{count}"
        maximum = _maximum(plan)
        if maximum is not None and count >= maximum:
            text += f" (the most it allows: {_why(plan, maximum)})"
        return text

    def change(self, plan: AppServicePlan, decision: Decision) -> Change | None:
        tier = _tier(plan)
        if tier.lower() in _SELF_SCALING:
            raise ActuatorError(
                f"{self.label} is a {tier} plan, which scales itself: its sku.capacity is not "
                "an instance count, and scalerd does not write it",
                code="PlanScalesItself",
            )
        maximum = _maximum(plan)
        if maximum is None:
            raise ActuatorError(
                f"{self.label}: tier {tier!r} has no known maximum instance count and Azure "
                "reports no maximumNumberOfWorkers; not writing",
                code="TierMaximumUnknown",
            )
        desired, notes = decision.desired, []
        target = min(max(desired, 1), maximum)
        if desired > maximum:
            notes.append(
                f"desired {desired} is above the most instances this plan allows "
                f"({_why(plan, maximum)}): {target} written"
            )
        elif desired < 1:
            notes.append("an App Service plan runs at least 1 instance: 1 written")
        current = _capacity(plan)
        if target == current:
            return None
        notes.insert(0, f"sku.capacity {current} -> {target} ({tier} {_sku_name(plan)})")
        return Change({"sku": {"capacity": target}}, tuple(notes))

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        client = self._client._client  # the pipeline the SDK's own pollers run on
        token = options.pop("continuation_token", None)
        # the SDK's update() returns once Azure answered (200 or 202): the poller follows a
        # 202 as its begin_* methods do, with the client's polling interval
        polling = AsyncARMPolling(
            self._client._config.polling_interval,
            path_format_arguments={"endpoint": self._client._config.base_url},
        )
        if token is not None:
            return AsyncLROPoller.from_continuation_token(
                polling_method=polling,
                continuation_token=token,
                client=client,
                deserialization_callback=_plan_json,
            )
        answer = await self._client.app_service_plans.update(
            self._group,
            self._name,
            json_body(body),
            content_type="application/json",
            # the raw answer: a 202 is followed from its headers, and its body may be empty
            cls=lambda response, _deserialized, _headers: response,
            stream=True,
            **options,
        )
        initial = cast(PipelineResponse[Any, Any], answer)  # what ``cls`` returned
        await initial.http_response.read()
        return AsyncLROPoller(client, initial, _plan_json, polling)


def build(config: AppServiceConfig, ctx: BuildContext) -> Actuator:
    azure = azure_clients(ctx, config.name)
    resource_id = ResourceId.parse(config.resource_id)
    scale = AppServicePlanScale(azure.web(resource_id.subscription), resource_id)
    return ArmActuator(scale, resource_id, azure)


def _plan_json(response: PipelineResponse[Any, Any]) -> Any:
    return response.http_response.json()


def _capacity(plan: AppServicePlan) -> int:
    return (plan.sku.capacity if plan.sku else None) or 0


def _tier(plan: AppServicePlan) -> str:
    return (plan.sku.tier if plan.sku else None) or "unknown tier"


def _sku_name(plan: AppServicePlan) -> str:
    return (plan.sku.name if plan.sku else None) or "?"


def _maximum(plan: AppServicePlan) -> int | None:
    """The most instances: the tier's limit and what Azure reports for the plan, the
    smaller; None when neither is known."""
    known = [
        limit
        for limit in (
            TIER_MAXIMUM.get(_tier(plan).lower()),
            plan.properties.maximum_number_of_workers if plan.properties else None,
        )
        if limit
    ]
    return min(known) if known else None


def _why(plan: AppServicePlan, maximum: int) -> str:
    tier = _tier(plan)
    if TIER_MAXIMUM.get(tier.lower()) == maximum:
        return f"{maximum} on the {tier} tier"
    return f"{maximum}, the plan's maximumNumberOfWorkers"


PLUGIN = Plugin(
    kind="azure-app-service",
    config=AppServiceConfig,
    build=build,
    summary="instance count of an Azure App Service plan (sku.capacity), within its tier's maximum",
)
