"""Faults on the way to Azure: circuit breaking, timeouts, 5xx, interrupted operation polls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import ArmError

from scalerd.actuators import azure_postgres, azure_redis, azure_sql
from scalerd.actuators.azure_container_apps import PLUGIN, ContainerAppsConfig
from scalerd.actuators.azure_postgres import PostgresFlexibleConfig
from scalerd.actuators.azure_redis import RedisConfig
from scalerd.actuators.azure_sql import SqlConfig
from scalerd.azure.arm import ArmActuator
from scalerd.azure.faults import Fault, error_for
from scalerd.core.model import Capacity
from scalerd.errors import ActuatorError, SourceError, Throttled
from scalerd.plugins import Actuator

RG = f"/subscriptions/{SUB}/resourceGroups/rg/providers"


def web(azure: AzureEnv) -> ArmActuator[Any]:
    app_id = azure.fake.add_container_app(SUB, "rg", "web", min_replicas=1, max_replicas=5)
    built = PLUGIN.build(
        ContainerAppsConfig(kind="azure-container-apps", name="web", resource_id=app_id), azure.ctx
    )
    assert isinstance(built, ArmActuator)
    return built


def scale_of(azure: AzureEnv) -> tuple[int, int]:
    app_id = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/web"
    scale = azure.fake.resource(app_id)["properties"]["template"]["scale"]
    return scale["minReplicas"], scale["maxReplicas"]


async def recorded(azure: AzureEnv, count: int, method: str, path: str) -> None:
    """Wait until the fake has answered ``count`` such requests: one held by a delay fault
    is answered (and recorded) after its client gave up on it."""
    for _ in range(100):
        if len(azure.fake.calls("arm", method, path)) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the fake answered fewer than {count} {method} {path}")


# ---------------------------------------------------------------------- circuit breaker


async def test_the_circuit_opens_after_failures_and_recovers_half_open() -> None:
    async with AzureEnv.running(retry_total=0, breaker_failures=3, breaker_reset="1m") as azure:
        app = web(azure)
        azure.fake.inject(service="arm", method="GET", status=500, times=None)
        for _ in range(3):
            with pytest.raises(ActuatorError, match="InternalServerError"):
                await app.current()
        sent = len(azure.fake.requests)

        with pytest.raises(ActuatorError, match="not calling Azure for 60s more") as open_circuit:
            await app.current()
        assert open_circuit.value.code == "CircuitOpen"
        assert len(azure.fake.requests) == sent  # an open circuit sends nothing

        azure.clock.advance(60)  # half-open: the next call is the trial
        with pytest.raises(ActuatorError, match="InternalServerError"):
            await app.current()
        with pytest.raises(ActuatorError, match="not calling Azure"):
            await app.current()  # the trial failed: open again

        azure.clock.advance(60)
        azure.fake.clear_faults()
        assert await app.current() == Capacity(1, 1)  # the trial succeeded: closed
        assert await app.current() == Capacity(1, 1)


async def test_an_answer_that_is_no_fault_of_azure_never_opens_the_circuit() -> None:
    async with AzureEnv.running(breaker_failures=2) as azure:
        app = web(azure)
        gone = ArmError(
            "ResourceNotFound", "The Resource 'Microsoft.App/containerApps/web' was not found."
        )
        azure.fake.inject(service="arm", method="GET", status=404, error=gone, times=None)

        codes = []
        for _ in range(4):
            with pytest.raises(ActuatorError) as caught:
                await app.current()
            codes.append(caught.value.code)

        assert codes == ["ResourceNotFound"] * 4
        assert len(azure.fake.calls("arm")) == 4  # every call went out


# ---------------------------------------------------------------------- timeouts and 5xx


async def test_a_read_that_timed_out_is_retried_by_the_sdk() -> None:
    async with AzureEnv.running(read_timeout="100ms") as azure:
        app = web(azure)
        azure.fake.inject(service="arm", method="GET", path="/containerApps/web$", delay=0.3)

        assert await app.current() == Capacity(1, 1)
        await recorded(azure, 2, "GET", "/containerApps/web$")  # the late one, and its retry


async def test_a_write_that_timed_out_is_never_repeated_blindly() -> None:
    async with AzureEnv.running(read_timeout="100ms") as azure:
        app = web(azure)
        azure.fake.inject(service="arm", method="PATCH", delay=0.3)

        with pytest.raises(ActuatorError) as timed_out:
            await app.apply(azure.decision(3))
        assert timed_out.value.code == "ServiceResponseTimeoutError"
        await recorded(azure, 1, "PATCH", "")  # the PATCH reached Azure late

        capacity = await app.current()  # a fresh read finds Azure working on it
        with pytest.raises(ActuatorError) as in_flight:
            await app.apply(azure.decision(3))

        assert capacity.operation == "provisioningState=InProgress"
        assert in_flight.value.code == "OperationInFlight"
        assert len(azure.fake.calls("arm", "PATCH")) == 1


async def test_a_patch_answered_with_a_5xx_is_not_retried(azure: AzureEnv) -> None:
    app = web(azure)
    azure.fake.inject(service="arm", method="PATCH", status=500)

    with pytest.raises(ActuatorError, match="HTTP 500 InternalServerError") as failed:
        await app.apply(azure.decision(3))

    assert failed.value.code == "InternalServerError"
    assert len(azure.fake.calls("arm", "PATCH")) == 1  # azure-core would have sent it twice
    assert scale_of(azure) == (1, 5)


# ---------------------------------------------------------------------- operation polls


def redis_cache(azure: AzureEnv) -> Actuator:
    azure.fake.add_redis_cache(SUB, "rg", "cache", sku_name="Standard", family="C", capacity=1)
    config = RedisConfig(
        kind="azure-redis",
        name="cache",
        resource_id=f"{RG}/Microsoft.Cache/redis/cache",
        skus=["Standard C1", "Standard C2"],
    )
    return azure_redis.PLUGIN.build(config, azure.ctx)


def sql_database(azure: AzureEnv) -> Actuator:
    azure.fake.add_sql_database(SUB, "rg", "sqlsrv", "orders")
    config = SqlConfig(
        kind="azure-sql",
        name="orders",
        resource_id=f"{RG}/Microsoft.Sql/servers/sqlsrv/databases/orders",
        objectives=["GP_Gen5_2", "GP_Gen5_4"],
    )
    return azure_sql.PLUGIN.build(config, azure.ctx)


def postgres_server(azure: AzureEnv) -> Actuator:
    azure.fake.add_postgres_server(SUB, "rg", "pg")
    config = PostgresFlexibleConfig(
        kind="azure-postgres-flexible",
        name="pg",
        resource_id=f"{RG}/Microsoft.DBforPostgreSQL/flexibleServers/pg",
        skus=["Standard_D2ds_v4", "Standard_D4ds_v4"],
    )
    return azure_postgres.PLUGIN.build(config, azure.ctx)


@pytest.mark.parametrize(
    ("build", "polled"),
    [
        pytest.param(web, "/operationStatuses/", id="container app"),
        pytest.param(redis_cache, "/operationResults/", id="redis (Location)"),
        pytest.param(sql_database, "/operationStatuses/", id="sql"),
        pytest.param(postgres_server, "/operationStatuses/", id="postgres"),
    ],
)
async def test_a_throttled_status_poll_is_waited_out_and_resumed(
    azure: AzureEnv, build: Callable[[AzureEnv], Actuator], polled: str
) -> None:
    target = build(azure)
    assert isinstance(target, ArmActuator)
    azure.fake.inject(service="arm", method="GET", path=polled, status=429, retry_after=5)

    applied = await target.apply(azure.decision(2))
    await target.settled()

    assert azure.slept == [5.0]
    statuses = [call.status for call in azure.fake.calls("arm", "GET", polled)]
    assert statuses[:2] == [429, 200 if polled == "/operationStatuses/" else 202]
    assert applied.operation is not None
    assert await target.current() == Capacity(2, 2)  # resumed from its continuation token


async def test_a_status_that_cannot_be_read_ends_as_unknown(azure: AzureEnv) -> None:
    app = web(azure)
    azure.fake.inject(
        service="arm", method="GET", path="/operationStatuses/", status=503, times=None
    )

    applied = await app.apply(azure.decision(3))
    assert applied.operation is not None and applied.resume is not None
    unknown = await app.outcome(applied.operation, applied.resume)

    assert azure.slept == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert "stopped following after 9 failed status polls" in unknown.message
    assert unknown.code == "OperationStatusUnknown"


# ---------------------------------------------------------------------- what plugins raise


@pytest.mark.parametrize(
    ("family", "retry_after", "raised"),
    [
        ("source", None, SourceError),
        ("source", 5.0, SourceError),
        ("actuator", None, ActuatorError),
        ("actuator", 5.0, Throttled),
    ],
)
def test_errors_fit_the_plugin_family_and_carry_no_secret(
    family: Any, retry_after: float | None, raised: type[Exception]
) -> None:
    fault = Fault("Unauthorized", "bad key in Endpoint=sb://x/;SharedAccessKey=c2VjcmV0", 401)

    error = error_for(family, "read queue 'orders'", fault, retry_after=retry_after)

    assert type(error) is raised
    assert (
        str(error) == "read queue 'orders': HTTP 401 Unauthorized: bad key in "
        "Endpoint=sb://x/;SharedAccessKey=***"
    )
