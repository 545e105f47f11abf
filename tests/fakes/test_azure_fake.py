"""The real async Azure SDK clients against ``FakeAzure``: the fake speaks their protocol.

Clients are built as production builds them, plus ``connection_verify=fake.ca_path``
(the fake serves TLS with a generated certificate) and ``polling_interval=0`` for
long-running operations. Each test runs against a fresh fake (the ``azure_fake`` fixture).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.mgmt.appcontainers.aio import ContainerAppsAPIClient
from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient
from azure.mgmt.redis.aio import RedisManagementClient
from azure.mgmt.sql.aio import SqlManagementClient
from azure.mgmt.web.aio import WebSiteManagementClient
from azure.monitor.query import LogsQueryPartialResult, LogsQueryStatus
from azure.monitor.query.aio import LogsQueryClient
from azure.monitor.querymetrics import MetricsQueryResult
from azure.monitor.querymetrics.aio import MetricsClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from .azure_fake import ArmError, FakeAzure, FakeAzureError, FakeCredential, LroStyle

SUB = "0b5f6a39-3c1e-4f7d-9a53-5d1c2e8f4a10"
RG = "rg-scalerd"
WORKSPACE = "63613592-b6f7-4c3d-a390-22ba13102111"
P95_QUERY = "AppRequests | summarize percentile(DurationMs, 95)"
SCALE_TO_3 = {"properties": {"template": {"scale": {"minReplicas": 3, "maxReplicas": 3}}}}
IMAGE_PULL_FAILED = ArmError("ContainerAppOperationError", "image pull failed")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def mgmt_options(fake: FakeAzure, **overrides: Any) -> dict[str, Any]:
    """Constructor keywords that point a management client at the fake."""
    return {
        "base_url": fake.arm_url,
        "connection_verify": fake.ca_path,
        "polling_interval": 0,
        **overrides,
    }


def container_apps(fake: FakeAzure, **overrides: Any) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(FakeCredential(), SUB, **mgmt_options(fake, **overrides))


def metrics_client(fake: FakeAzure) -> MetricsClient:
    return MetricsClient(fake.metrics_url, FakeCredential(), connection_verify=fake.ca_path)


def logs_client(fake: FakeAzure, **overrides: Any) -> LogsQueryClient:
    return LogsQueryClient(
        FakeCredential(), endpoint=fake.logs_url, connection_verify=fake.ca_path, **overrides
    )


def wire_trace(fake: FakeAzure) -> list[str]:
    """ARM requests as "METHOD <collection>", e.g. "GET operationStatuses"."""
    return [f"{r.method} {r.path.rsplit('/', 2)[-2]}" for r in fake.calls("arm")]


async def query_cpu(
    fake: FakeAzure, resource_ids: list[str], **options: Any
) -> list[MetricsQueryResult]:
    async with metrics_client(fake) as client:
        return await client.query_resources(
            resource_ids=resource_ids,
            metric_namespace="Microsoft.App/containerApps",
            metric_names=["CpuPercentage"],
            timespan=(NOW - 5 * MINUTE, NOW),
            granularity=MINUTE,
            aggregations=["Average"],
            **options,
        )


# ---------------------------------------------------------------------- Container Apps


async def test_get_container_app(azure_fake: FakeAzure) -> None:
    azure_fake.add_container_app(SUB, RG, "web", min_replicas=1, max_replicas=5)

    async with container_apps(azure_fake) as client:
        app = await client.container_apps.get(RG, "web")

    assert (app.template.scale.min_replicas, app.template.scale.max_replicas) == (1, 5)
    assert app.latest_ready_revision_name == "web--0000001"
    assert app.provisioning_state == "Succeeded"
    (request,) = azure_fake.calls("arm")
    assert request.query["api-version"]
    assert "authorization" not in {name.lower() for name in request.headers}


async def test_list_revisions_follows_next_link(azure_fake: FakeAzure) -> None:
    app_id = azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.add_revision(app_id, "web--old0001")
    azure_fake.add_revision(app_id, "web--old0002")

    async with container_apps(azure_fake) as client:
        revisions = [r async for r in client.container_apps_revisions.list_revisions(RG, "web")]

    assert [(r.name, r.active) for r in revisions] == [
        ("web--old0001", False),
        ("web--old0002", False),
        ("web--0000001", True),
    ]
    pages = azure_fake.calls("arm", "GET", r"/revisions$")
    assert [page.query.get("$skiptoken") for page in pages] == [None, "2"]


async def test_list_replicas_reports_running_state(azure_fake: FakeAzure) -> None:
    app_id = azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.set_replicas(app_id, ready=2, not_ready=1)

    async with container_apps(azure_fake) as client:
        replicas = await client.container_apps_revision_replicas.list_replicas(
            RG, "web", "web--0000001"
        )

    assert [r.running_state for r in replicas.value] == ["Running", "Running", "NotRunning"]
    assert [r.containers[0].ready for r in replicas.value] == [True, True, False]


@pytest.mark.parametrize(
    ("style", "trace"),
    [
        (
            "azure-async-operation",
            [
                "PATCH containerApps",
                "GET operationStatuses",
                "GET operationStatuses",
                "GET containerApps",
            ],
        ),
        ("location", ["PATCH containerApps", "GET operationResults", "GET operationResults"]),
        ("provisioning-state", ["PATCH containerApps", "GET containerApps", "GET containerApps"]),
        ("sync", ["PATCH containerApps"]),
    ],
)
async def test_update_container_app_in_each_lro_style(
    azure_fake: FakeAzure, style: LroStyle, trace: list[str]
) -> None:
    app_id = azure_fake.add_container_app(SUB, RG, "web", min_replicas=1, max_replicas=5)
    azure_fake.set_lro(style, polls=1)

    async with container_apps(azure_fake) as client:
        poller = await client.container_apps.begin_update(RG, "web", SCALE_TO_3)
        state_in_flight = azure_fake.resource(app_id)["properties"]["provisioningState"]
        app = await poller.result()

    assert state_in_flight == ("Succeeded" if style == "sync" else "InProgress")
    assert (app.template.scale.min_replicas, app.template.scale.max_replicas) == (3, 3)
    assert app.provisioning_state == "Succeeded"
    (patch,) = azure_fake.calls("arm", "PATCH")
    assert patch.body == SCALE_TO_3
    assert wire_trace(azure_fake) == trace


@pytest.mark.parametrize(
    ("style", "error_code", "final_state"),
    [
        ("azure-async-operation", "ContainerAppOperationError", "Failed"),
        ("location", "ContainerAppOperationError", "Failed"),
        ("provisioning-state", None, "Failed"),  # a Failed resource body carries no error
        ("sync", "ContainerAppOperationError", "Succeeded"),  # rejected up front: 400
    ],
)
async def test_failed_update_raises_and_keeps_old_values(
    azure_fake: FakeAzure, style: LroStyle, error_code: str | None, final_state: str
) -> None:
    app_id = azure_fake.add_container_app(SUB, RG, "web", min_replicas=1, max_replicas=5)
    azure_fake.set_lro(style, polls=1, fail=IMAGE_PULL_FAILED)

    async with container_apps(azure_fake) as client:
        with pytest.raises(HttpResponseError) as caught:
            poller = await client.container_apps.begin_update(RG, "web", SCALE_TO_3)
            await poller.result()

    assert (caught.value.error.code if caught.value.error else None) == error_code
    properties = azure_fake.resource(app_id)["properties"]
    assert properties["template"]["scale"]["minReplicas"] == 1
    assert properties["template"]["scale"]["maxReplicas"] == 5
    assert properties["provisioningState"] == final_state


async def test_patch_during_an_operation_conflicts(azure_fake: FakeAzure) -> None:
    azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.set_lro("azure-async-operation", polls=5)

    async with container_apps(azure_fake) as client:
        await client.container_apps.begin_update(RG, "web", SCALE_TO_3)
        with pytest.raises(ResourceExistsError) as caught:
            await client.container_apps.begin_update(RG, "web", SCALE_TO_3)

    assert caught.value.error is not None
    assert caught.value.error.code == "AnotherOperationInProgress"


async def test_scale_change_starts_a_new_revision(azure_fake: FakeAzure) -> None:
    azure_fake.add_container_app(SUB, RG, "web", ready_replicas=2)

    async with container_apps(azure_fake) as client:
        app = await (await client.container_apps.begin_update(RG, "web", SCALE_TO_3)).result()
        revisions = [r async for r in client.container_apps_revisions.list_revisions(RG, "web")]
        replicas = await client.container_apps_revision_replicas.list_replicas(
            RG, "web", app.latest_ready_revision_name
        )

    assert app.latest_ready_revision_name == "web--0000002"
    assert [(r.name, r.active) for r in revisions] == [
        ("web--0000001", False),
        ("web--0000002", True),
    ]
    assert len(replicas.value) == 3  # the 2 ready replicas, raised to the new minimum


# ---------------------------------------------------------------------- databases and cache


async def test_postgres_get_and_update(azure_fake: FakeAzure) -> None:
    azure_fake.add_postgres_server(SUB, RG, "pg", sku_name="Standard_D2ds_v4", storage_gb=128)
    body = {
        "sku": {"name": "Standard_D4ds_v4", "tier": "GeneralPurpose"},
        "properties": {"storage": {"storageSizeGB": 256}},
    }

    async with PostgreSQLManagementClient(
        FakeCredential(), SUB, **mgmt_options(azure_fake)
    ) as client:
        server = await client.servers.get(RG, "pg")
        updated = await (await client.servers.begin_update(RG, "pg", body)).result()

    assert (server.sku.name, server.properties.storage.storage_size_gb) == ("Standard_D2ds_v4", 128)
    assert (updated.sku.name, updated.properties.storage.storage_size_gb) == (
        "Standard_D4ds_v4",
        256,
    )
    assert updated.properties.state == "Ready"
    assert [r.body for r in azure_fake.calls("arm", "PATCH")] == [body]


async def test_sql_database_get_and_update(azure_fake: FakeAzure) -> None:
    azure_fake.add_sql_database(SUB, RG, "sqlsrv", "orders", sku_name="GP_Gen5", capacity=2)
    body = {"sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 4}}

    async with SqlManagementClient(FakeCredential(), SUB, **mgmt_options(azure_fake)) as client:
        database = await client.databases.get(RG, "sqlsrv", "orders")
        updated = await (await client.databases.begin_update(RG, "sqlsrv", "orders", body)).result()

    assert database.properties.current_service_objective_name == "GP_Gen5_2"
    assert updated.properties.current_service_objective_name == "GP_Gen5_4"
    assert updated.properties.current_sku.capacity == 4
    assert [r.body for r in azure_fake.calls("arm", "PATCH")] == [body]


async def test_redis_get_and_update(azure_fake: FakeAzure) -> None:
    azure_fake.add_redis_cache(
        SUB, RG, "cache", sku_name="Premium", family="P", capacity=1, shard_count=1
    )
    body = {
        "properties": {"sku": {"name": "Premium", "family": "P", "capacity": 2}, "shardCount": 2}
    }

    async with RedisManagementClient(FakeCredential(), SUB, **mgmt_options(azure_fake)) as client:
        cache = await client.redis.get(RG, "cache")
        updated = await (await client.redis.begin_update(RG, "cache", body)).result()

    assert (cache.sku.capacity, cache.shard_count) == (1, 1)
    assert (updated.sku.capacity, updated.shard_count) == (2, 2)
    assert updated.provisioning_state == "Succeeded"
    (patch,) = azure_fake.calls("arm", "PATCH")
    assert patch.body == body
    assert "/Microsoft.Cache/redis/" in patch.path  # the SDK's casing; ids say "Redis"
    assert wire_trace(azure_fake)[1:] == [
        "PATCH redis",
        "GET operationResults",
        "GET operationResults",
    ]


async def test_app_service_plan_get_patch_and_put(azure_fake: FakeAzure) -> None:
    plan_id = azure_fake.add_app_service_plan(SUB, RG, "plan", sku_name="P1v3", tier="PremiumV3")

    async with WebSiteManagementClient(FakeCredential(), SUB, **mgmt_options(azure_fake)) as client:
        plan = await client.app_service_plans.get(RG, "plan")
        patched = await client.app_service_plans.update(RG, "plan", {"sku": {"capacity": 4}})
        body = {"location": "eastus", "sku": {"name": "P2v3", "tier": "PremiumV3", "capacity": 2}}
        put = await (
            await client.app_service_plans.begin_create_or_update(RG, "plan", body)
        ).result()

    assert plan.id == plan_id and plan.type == "Microsoft.Web/serverfarms"
    assert (plan.sku.capacity, plan.properties.maximum_number_of_workers) == (1, 30)
    assert (patched.sku.capacity, patched.properties.number_of_workers) == (4, 4)
    assert (put.sku.name, put.sku.capacity, put.properties.number_of_workers) == ("P2v3", 2, 2)
    assert put.properties.maximum_number_of_workers == 30  # read-only: a PUT keeps it
    assert [call.query["api-version"] for call in azure_fake.calls("arm")] == ["2025-05-01"] * 3


async def test_app_service_plan_202_carries_the_plan_changed_only_at_the_end(
    azure_fake: FakeAzure,
) -> None:
    plan_id = azure_fake.add_app_service_plan(SUB, RG, "plan")
    azure_fake.set_lro("azure-async-operation", polls=1)

    async with WebSiteManagementClient(FakeCredential(), SUB, **mgmt_options(azure_fake)) as client:
        accepted = await client.app_service_plans.update(RG, "plan", {"sku": {"capacity": 3}})
        assert accepted.properties.provisioning_state == "InProgress"
        (patch,) = azure_fake.calls("arm", "PATCH")
        assert patch.status == 202
        status = await client.app_service_plans.get(RG, "plan")
        assert status.sku.capacity == 1  # applied only when the operation ends

    assert azure_fake.resource(plan_id)["properties"]["provisioningState"] == "InProgress"


# ---------------------------------------------------------------------- metrics batch


async def test_metrics_batch_returns_each_resource_in_one_call(azure_fake: FakeAzure) -> None:
    app_ids = [azure_fake.add_container_app(SUB, RG, f"app{i}") for i in range(3)]
    for i, app_id in enumerate(app_ids):
        outside_window = (NOW - 30 * MINUTE, 99.0)
        points = [outside_window] + [(NOW - k * MINUTE, 10.0 * k + i) for k in (3, 2, 1)]
        azure_fake.set_metric(app_id, "CpuPercentage", points, unit="Percent", null_newest=True)

    results = await query_cpu(azure_fake, app_ids)

    averages = {}
    for result in results:
        metric = result.metrics["CpuPercentage"]
        owner = next(a for a in app_ids if metric.id.lower().startswith(f"{a.lower()}/providers/"))
        averages[owner] = [point.average for point in metric.timeseries[0].data]
    assert averages == {app_id: [30.0 + i, 20.0 + i, None] for i, app_id in enumerate(app_ids)}
    (call,) = azure_fake.calls("metrics")
    assert call.body == {"resourceids": app_ids}


async def test_metrics_filter_selects_a_dimension(azure_fake: FakeAzure) -> None:
    namespace_id = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ServiceBus/namespaces/bus"
    )
    azure_fake.set_metric(
        namespace_id, "ActiveMessages", [(NOW - MINUTE, 5.0)], dimension=("EntityName", "orders")
    )
    azure_fake.set_metric(
        namespace_id, "ActiveMessages", [(NOW - MINUTE, 9.0)], dimension=("EntityName", "billing")
    )

    async with metrics_client(azure_fake) as client:
        (result,) = await client.query_resources(
            resource_ids=[namespace_id],
            metric_namespace="Microsoft.ServiceBus/namespaces",
            metric_names=["ActiveMessages"],
            timespan=(NOW - 5 * MINUTE, NOW),
            filter="EntityName eq 'orders'",
        )

    series = result.metrics["ActiveMessages"].timeseries
    assert [(s.metadata_values, [p.average for p in s.data]) for s in series] == [
        ({"entityname": "orders"}, [5.0])
    ]
    assert azure_fake.calls("metrics")[0].query["filter"] == "EntityName eq 'orders'"


@pytest.mark.parametrize(
    ("resource_ids", "options"),
    [
        pytest.param(
            [f"/subscriptions/{SUB}/resourceGroups/{RG}/x/{i}" for i in range(51)], {}, id="51-ids"
        ),
        pytest.param(
            [f"/subscriptions/{SUB}/a", "/subscriptions/other/b"], {}, id="two-subscriptions"
        ),
        pytest.param(
            [f"/subscriptions/{SUB}/a"], {"filter": "A eq 'x' and B eq 'y'"}, id="two-dimensions"
        ),
    ],
)
async def test_metrics_batch_rejects_what_azure_rejects(
    azure_fake: FakeAzure, resource_ids: list[str], options: dict[str, str]
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await query_cpu(azure_fake, resource_ids, **options)

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadRequest"


async def test_metrics_529_is_not_retried(azure_fake: FakeAzure) -> None:
    app_id = azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.inject(service="metrics", status=529)

    with pytest.raises(HttpResponseError) as caught:
        await query_cpu(azure_fake, [app_id])

    assert caught.value.status_code == 529
    assert len(azure_fake.calls("metrics")) == 1


# ---------------------------------------------------------------------- Log Analytics


async def test_logs_query_returns_the_number(azure_fake: FakeAzure) -> None:
    azure_fake.set_log_result(WORKSPACE, P95_QUERY, columns=[("p95", "real")], rows=[[123.4]])

    async with logs_client(azure_fake) as client:
        result = await client.query_workspace(
            WORKSPACE, P95_QUERY, timespan=dt.timedelta(minutes=5)
        )

    assert result.status == LogsQueryStatus.SUCCESS
    assert result.tables[0].rows[0][0] == 123.4
    (call,) = azure_fake.calls("logs")
    assert call.body == {"query": P95_QUERY, "timespan": "PT300.0S", "workspaces": None}


async def test_logs_partial_error(azure_fake: FakeAzure) -> None:
    azure_fake.set_log_result(
        WORKSPACE,
        P95_QUERY,
        columns=[("p95", "real")],
        rows=[["123.4"]],
        partial_error=ArmError("EngineError", "Query result set exceeded the limit."),
    )

    async with logs_client(azure_fake) as client:
        result = await client.query_workspace(
            WORKSPACE, P95_QUERY, timespan=dt.timedelta(minutes=5)
        )

    assert isinstance(result, LogsQueryPartialResult)
    assert result.partial_data[0].rows[0][0] == "123.4"
    assert result.partial_error.code == "PartialError"


async def test_logs_server_timeout_is_retried_as_a_post_504(azure_fake: FakeAzure) -> None:
    azure_fake.set_log_timeout(WORKSPACE, P95_QUERY)

    async with logs_client(azure_fake, retry_total=1) as client:
        with pytest.raises(HttpResponseError) as caught:
            await client.query_workspace(WORKSPACE, P95_QUERY, timespan=dt.timedelta(minutes=5))

    assert caught.value.status_code == 504
    assert len(azure_fake.calls("logs")) == 2  # azure-core retries POST on 500/503/504


# ---------------------------------------------------------------------- Service Bus


async def test_servicebus_runtime_properties(azure_fake: FakeAzure) -> None:
    azure_fake.set_queue("orders", active=3, dead_letter=1, scheduled=2)
    azure_fake.set_subscription("events", "scaler", active=7, dead_letter=4)

    async with ServiceBusAdministrationClient(
        azure_fake.servicebus_namespace, FakeCredential(), connection_verify=azure_fake.ca_path
    ) as client:
        queue = await client.get_queue_runtime_properties("orders")
        subscription = await client.get_subscription_runtime_properties("events", "scaler")

    assert (
        queue.active_message_count,
        queue.dead_letter_message_count,
        queue.scheduled_message_count,
        queue.total_message_count,
    ) == (3, 1, 2, 6)
    assert (subscription.active_message_count, subscription.dead_letter_message_count) == (7, 4)
    assert [(r.path, r.query["enrich"]) for r in azure_fake.calls("servicebus")] == [
        ("/orders", "false"),
        ("/events/subscriptions/scaler", "false"),
    ]


async def test_servicebus_missing_entity_is_not_found(azure_fake: FakeAzure) -> None:
    async with ServiceBusAdministrationClient(
        azure_fake.servicebus_namespace, FakeCredential(), connection_verify=azure_fake.ca_path
    ) as client:
        with pytest.raises(ResourceNotFoundError):
            await client.get_queue_runtime_properties("missing")

    assert [r.status for r in azure_fake.calls("servicebus")] == [200]  # an empty feed, not 404


# ---------------------------------------------------------------------- faults


def read_app(client: ContainerAppsAPIClient) -> Awaitable[Any]:
    return client.container_apps.get(RG, "web")


def patch_app(client: ContainerAppsAPIClient) -> Awaitable[Any]:
    return client.container_apps.begin_update(RG, "web", SCALE_TO_3)


@pytest.mark.parametrize(
    ("call", "retry_after", "retry_after_ms", "attempts"),
    [
        pytest.param(read_app, 0.05, None, 2, id="GET-Retry-After"),
        pytest.param(read_app, None, 50, 2, id="GET-retry-after-ms"),
        pytest.param(patch_app, 0.05, None, 2, id="PATCH-Retry-After"),
        # Only Retry-After makes a PATCH retryable; retry-after-ms alone is not looked at.
        pytest.param(patch_app, None, 50, 1, id="PATCH-retry-after-ms"),
    ],
)
async def test_throttled_call_retries_as_azure_core_decides(
    azure_fake: FakeAzure,
    call: Callable[[ContainerAppsAPIClient], Awaitable[Any]],
    retry_after: float | None,
    retry_after_ms: int | None,
    attempts: int,
) -> None:
    azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.inject(
        service="arm",
        status=429,
        retry_after=retry_after,
        retry_after_ms=retry_after_ms,
        times=None,
    )

    started = time.monotonic()
    async with container_apps(azure_fake, retry_total=1) as client:
        with pytest.raises(HttpResponseError) as caught:
            await call(client)

    assert caught.value.status_code == 429
    assert caught.value.error is not None
    assert caught.value.error.code == "SubscriptionRequestsThrottled"
    method = azure_fake.requests[0].method
    remaining = "reads" if method == "GET" else "writes"
    assert (
        caught.value.response.headers[f"x-ms-ratelimit-remaining-subscription-{remaining}"] == "0"
    )
    assert len(azure_fake.calls("arm")) == attempts
    assert time.monotonic() - started >= 0.05 * (attempts - 1)  # slept as the header said


async def test_throttle_storm_until_cleared(azure_fake: FakeAzure) -> None:
    azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.throttle_storm("arm", retry_after=0.01)

    async with container_apps(azure_fake, retry_total=2) as client:
        with pytest.raises(HttpResponseError):
            await read_app(client)
        azure_fake.clear_faults()
        app = await read_app(client)

    assert app.name == "web"
    assert [r.status for r in azure_fake.calls("arm")] == [429, 429, 429, 200]


async def test_delay_trips_the_client_read_timeout(azure_fake: FakeAzure) -> None:
    azure_fake.add_container_app(SUB, RG, "web")
    azure_fake.inject(service="arm", method="GET", delay=5)

    async with container_apps(azure_fake, read_timeout=0.2, retry_total=0) as client:
        with pytest.raises(ServiceResponseError):
            await read_app(client)


# ---------------------------------------------------------------------- misuse fails loudly


async def test_unsupported_lro_style_is_refused(azure_fake: FakeAzure) -> None:
    server_id = azure_fake.add_postgres_server(SUB, RG, "pg")

    with pytest.raises(FakeAzureError, match="PATCH cannot complete in style 'sync'"):
        azure_fake.set_lro("sync", resource_id=server_id)


async def test_error_inside_the_fake_fails_the_test() -> None:
    with pytest.raises(FakeAzureError, match="cannot complete in style 'sync'"):
        async with FakeAzure.running() as fake:
            fake.add_postgres_server(SUB, RG, "pg")
            fake.set_lro("sync")  # global: only checked when the PATCH arrives
            async with PostgreSQLManagementClient(
                FakeCredential(), SUB, **mgmt_options(fake, retry_total=0)
            ) as client:
                with pytest.raises(HttpResponseError) as caught:
                    await client.servers.begin_update(RG, "pg", {"properties": {}})
            assert caught.value.status_code == 500
