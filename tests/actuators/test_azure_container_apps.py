"""The azure-container-apps actuator through the real ``ContainerAppsAPIClient`` against
``FakeAzure``: what it reads, the exact PATCH it sends, and how it follows the operation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import ArmError, LroStyle
from pydantic import ValidationError

from scalerd.actuators.azure_container_apps import PLUGIN, ContainerAppsConfig
from scalerd.azure.arm import ArmActuator
from scalerd.core.model import Capacity
from scalerd.errors import ActuatorError

CACHE_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Cache/redis/cache"
IMAGE_PULL_FAILED = ArmError("ContainerAppOperationError", "image pull failed")


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(app_id: str, **keys: Any) -> ContainerAppsConfig:
    return ContainerAppsConfig(kind="azure-container-apps", name="web", resource_id=app_id, **keys)


def actuator(azure: AzureEnv, app_id: str, **keys: Any) -> ArmActuator[Any]:
    built = PLUGIN.build(config(app_id, **keys), azure.ctx)
    assert isinstance(built, ArmActuator)
    return built


def scale(azure: AzureEnv, app_id: str) -> tuple[int, int]:
    bounds = azure.fake.resource(app_id)["properties"]["template"]["scale"]
    return bounds["minReplicas"], bounds["maxReplicas"]


def patches(azure: AzureEnv) -> list[Any]:
    return [call.body for call in azure.fake.calls("arm", "PATCH")]


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param(
            {"resource_id": "/subscriptions/s/web"}, "not an Azure resource id", id="bad id"
        ),
        pytest.param(
            {"resource_id": CACHE_ID},
            "must be the id of a Microsoft.App/containerApps, not of a Microsoft.Cache/redis",
            id="another type",
        ),
        pytest.param({"mode": "min"}, "'pin' or 'floor'", id="mode"),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    app_id = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/web"
    with pytest.raises(ValidationError, match=message):
        ContainerAppsConfig.model_validate(
            {"kind": "azure-container-apps", "name": "web", "resource_id": app_id, **keys}
        )


def test_the_resource_id_is_kept_in_its_canonical_spelling() -> None:
    spelled = f"/SUBSCRIPTIONS/{SUB}/resourcegroups/rg/providers/Microsoft.App/containerApps/web/"

    assert config(spelled).resource_id == (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/web"
    )


# ---------------------------------------------------------------------- current()


async def test_capacity_sums_the_active_revisions(azure: AzureEnv) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=10)
    azure.fake.set_replicas(app_id, ready=2, not_ready=1)
    azure.fake.add_revision(app_id, "web--canary", active=True, traffic_weight=20, replicas=2)
    azure.fake.add_revision(app_id, "web--retired", active=False)

    assert await actuator(azure, app_id).current() == Capacity(provisioned=5, ready=4)


async def test_capacity_counts_the_minimum_asked_for_before_its_replicas_exist(
    azure: AzureEnv,
) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=3, ready_replicas=1)

    assert await actuator(azure, app_id).current() == Capacity(provisioned=3, ready=1)


# ---------------------------------------------------------------------- apply()


@pytest.mark.parametrize(
    ("mode", "bounds", "desired", "body", "note"),
    [
        pytest.param(
            "pin",
            (1, 5),
            3,
            {"minReplicas": 3, "maxReplicas": 3},
            "minReplicas 1 -> 3, maxReplicas 5 -> 3 (pin)",
            id="pin both",
        ),
        pytest.param(
            "pin",
            (1, 3),
            3,
            {"minReplicas": 3},
            "minReplicas 1 -> 3 (pin)",
            id="pin: max already there",
        ),
        pytest.param(
            "pin",
            (4, 4),
            2,
            {"minReplicas": 2, "maxReplicas": 2},
            "minReplicas 4 -> 2, maxReplicas 4 -> 2 (pin)",
            id="pin down",
        ),
        pytest.param(
            "pin",
            (2, 2),
            0,
            {"minReplicas": 0},
            "minReplicas 2 -> 0 (pin)",
            id="pin to zero keeps max",
        ),
        pytest.param(
            "floor", (1, 5), 3, {"minReplicas": 3}, "minReplicas 1 -> 3 (floor)", id="floor"
        ),
        pytest.param(
            "floor",
            (1, 5),
            8,
            {"minReplicas": 8, "maxReplicas": 8},
            "minReplicas 1 -> 8, maxReplicas 5 -> 8 (floor)",
            id="floor past max",
        ),
    ],
)
async def test_one_patch_with_only_the_bounds_that_change(
    azure: AzureEnv,
    mode: str,
    bounds: tuple[int, int],
    desired: int,
    body: dict[str, int],
    note: str,
) -> None:
    low, high = bounds
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=low, max_replicas=high)
    web = actuator(azure, app_id, mode=mode)

    applied = await web.apply(azure.decision(desired))
    await web.settled()

    assert patches(azure) == [{"properties": {"template": {"scale": body}}}]
    assert scale(azure, app_id) == (body["minReplicas"], body.get("maxReplicas", high))
    assert applied.notes[:2] == (note, "a template change creates a new revision")


@pytest.mark.parametrize(("mode", "bounds"), [("pin", (3, 3)), ("floor", (3, 8))])
async def test_no_patch_when_the_app_is_already_there(
    azure: AzureEnv, mode: str, bounds: tuple[int, int]
) -> None:
    app_id = azure.fake.add_container_app(
        SUB, "rg", "web", min_replicas=bounds[0], max_replicas=bounds[1]
    )

    applied = await actuator(azure, app_id, mode=mode).apply(azure.decision(3))

    assert patches(azure) == []
    assert applied.operation is None
    assert "nothing written" in applied.notes[0]


@pytest.mark.parametrize("style", ["azure-async-operation", "location", "provisioning-state"])
async def test_apply_returns_the_operation_and_follows_it_to_the_end(
    azure: AzureEnv, style: LroStyle
) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.set_lro(style, polls=2)
    web = actuator(azure, app_id)

    applied = await web.apply(azure.decision(3))
    await web.settled()

    assert applied.operation
    if style != "provisioning-state":  # its id is the PATCH's request id
        polled = azure.fake.calls("arm", "GET", r"/operation(Statuses|Results)/")
        assert polled and all(call.path.endswith(applied.operation) for call in polled)
    assert scale(azure, app_id) == (3, 3)
    assert (await web.current()).operation is None


async def test_a_synchronous_update_has_nothing_to_follow(azure: AzureEnv) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.set_lro("sync")

    applied = await actuator(azure, app_id).apply(azure.decision(3))

    assert applied.operation is None
    assert scale(azure, app_id) == (3, 3)


async def test_the_target_holds_while_the_operation_runs(azure: AzureEnv) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.inject(service="arm", method="GET", path="/operationStatuses/", delay=0.3)
    web = actuator(azure, app_id)

    applied = await web.apply(azure.decision(3))
    in_flight = await web.current()
    with pytest.raises(ActuatorError, match="still in flight; not writing") as refused:
        await web.apply(azure.decision(4))
    await web.settled()

    assert in_flight.operation == applied.operation
    assert refused.value.code == "OperationInFlight"
    assert len(patches(azure)) == 1
    assert (await web.current()) == Capacity(3, 3)


async def test_a_change_started_before_a_restart_holds_the_next_run(azure: AzureEnv) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.inject(service="arm", method="GET", path="/operationStatuses/", delay=0.3)
    before = actuator(azure, app_id)
    await before.apply(azure.decision(3))

    after = actuator(azure, app_id)  # a new daemon knows nothing of the operation
    capacity = await after.current()
    with pytest.raises(
        ActuatorError, match=r"a change is in progress \(provisioningState=InProgress\)"
    ):
        await after.apply(azure.decision(4))
    await before.settled()

    assert capacity.operation == "provisioningState=InProgress"
    assert len(patches(azure)) == 1


@pytest.mark.parametrize(
    ("style", "code", "message"),
    [
        ("azure-async-operation", "ContainerAppOperationError", "image pull failed"),
        ("location", "ContainerAppOperationError", "image pull failed"),
        ("provisioning-state", "OperationFailed", "container app 'web': operation"),
    ],
)
async def test_a_failed_operation_is_told_with_azures_code_after_a_fresh_read(
    azure: AzureEnv, style: LroStyle, code: str, message: str
) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.set_lro(style, fail=IMAGE_PULL_FAILED)
    web = actuator(azure, app_id)
    applied = await web.apply(azure.decision(3))
    assert applied.operation is not None and applied.resume is not None

    outcome = await web.outcome(applied.operation, applied.resume)

    assert not outcome.succeeded
    assert outcome.code == code
    assert message in outcome.message and applied.operation in outcome.message
    assert outcome.message.endswith("it is at minReplicas=1, maxReplicas=5 now")
    last = azure.fake.requests[-1]
    assert (last.method, last.path.rsplit("/", 2)[-2]) == ("GET", "containerApps")  # read afresh
    assert await web.outcome(applied.operation, applied.resume) == outcome  # asked again: same
    assert (await web.current()).operation is None

    azure.fake.set_lro("sync")
    await web.apply(azure.decision(3))
    trace = [(r.method, r.path.rsplit("/", 2)[-2]) for r in azure.fake.calls("arm")]
    assert trace[-2:] == [("GET", "containerApps"), ("PATCH", "containerApps")]  # read, then write
    assert scale(azure, app_id) == (3, 3)


async def test_a_rejected_patch_fails_with_azures_code(azure: AzureEnv) -> None:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    azure.fake.set_lro(
        "sync", fail=ArmError("ContainerAppInvalidScale", "maxReplicas is above 300")
    )

    with pytest.raises(ActuatorError, match="maxReplicas is above 300") as rejected:
        await actuator(azure, app_id).apply(azure.decision(3))

    assert rejected.value.code == "ContainerAppInvalidScale"
    assert scale(azure, app_id) == (1, 5)
