"""The azure-monitor source through the real ``MetricsClient`` against ``FakeAzure``.

The batching itself (how many calls many sources cost) is in
``tests/azure/test_azure_metrics_batch.py``; here: config, which grains a read keeps, and
how a read fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv
from pydantic import ValidationError

from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import Source
from scalerd.sources.azure_monitor import PLUGIN, AzureMonitorConfig

MINUTE = timedelta(minutes=1)
APP = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/web"
BUS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus"


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(**keys: Any) -> AzureMonitorConfig:
    defaults = {"kind": "azure-monitor", "name": "cpu", "resource_id": APP, "region": "eastus"}
    return AzureMonitorConfig.model_validate({**defaults, "metric": "CpuPercentage", **keys})


def source(azure: AzureEnv, **keys: Any) -> Source:
    return PLUGIN.build(config(**keys), azure.ctx)


# ---------------------------------------------------------------------- config


def test_defaults_read_platform_metrics_of_the_resource_type() -> None:
    query = config(region="East US").query()

    assert (query.namespace, query.region, query.aggregation) == (
        "Microsoft.App/containerApps",
        "eastus",
        "average",
    )
    assert (query.interval, query.window) == (MINUTE, 5 * MINUTE)
    assert config().max_age == 10 * MINUTE  # grains are stamped at their start and arrive late


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param(
            {"resource_id": "/subscriptions/x/web"}, "not an Azure resource id", id="bad id"
        ),
        pytest.param({"interval": "2m"}, "time grains of 1m, 5m", id="no such grain"),
        pytest.param(
            {"interval": "5m", "window": "3m"}, "at least one time grain", id="short window"
        ),
        pytest.param(
            {"interval": "1h", "window": "2h"}, "longer than the time grain", id="stale by design"
        ),
        pytest.param({"aggregation": "p95"}, "'average', 'minimum'", id="aggregation"),
        pytest.param({"combine": "avg"}, "'sum' or 'max'", id="combine"),
        pytest.param({"resource": APP}, "Extra inputs", id="unknown key"),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


# ---------------------------------------------------------------------- reads


async def test_a_read_keeps_the_complete_grains_only(azure: AzureEnv) -> None:
    now = azure.clock.now()
    filling = (now - timedelta(seconds=20), 99.0)
    points = [(now - k * MINUTE, 10.0 * k) for k in (4, 3, 2, 1)] + [filling]
    azure.fake.set_metric(APP, "CpuPercentage", points)

    samples = await source(azure).read()

    # the grain that began 20s ago is still filling; the one that began 1m ago ended now
    assert samples == tuple(Sample(now - k * MINUTE, 10.0 * k) for k in (4, 3, 2, 1))


async def test_an_empty_newest_grain_is_no_zero(azure: AzureEnv) -> None:
    now = azure.clock.now()
    points = [(now - 3 * MINUTE, 40.0), (now - 2 * MINUTE, 50.0)]
    azure.fake.set_metric(APP, "CpuPercentage", points, null_newest=True)

    assert await source(azure).read() == (Sample(now - 3 * MINUTE, 40.0),)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        pytest.param([], "returned no data", id="no series"),
        pytest.param([(-2, None)], "no complete 1m grain in the last 5m", id="only an empty grain"),
    ],
)
async def test_no_complete_grain_fails_the_read(
    azure: AzureEnv, points: list[tuple[int, float | None]], message: str
) -> None:
    now = azure.clock.now()
    if points:
        azure.fake.set_metric(APP, "CpuPercentage", [(now + k * MINUTE, v) for k, v in points])

    with pytest.raises(SourceError, match=message):
        await source(azure).read()


@pytest.mark.parametrize(("combine", "value"), [("sum", 14.0), ("max", 9.0)])
async def test_several_dimension_values_are_combined(
    azure: AzureEnv, combine: str, value: float
) -> None:
    start = azure.clock.now() - 2 * MINUTE
    for entity, count in (("orders", 5.0), ("billing", 9.0)):
        azure.fake.set_metric(
            BUS, "ActiveMessages", [(start, count)], dimension=("EntityName", entity)
        )
    bus = source(
        azure,
        resource_id=BUS,
        metric="ActiveMessages",
        filter="EntityName eq 'orders' or EntityName eq 'billing'",
        combine=combine,
    )

    assert await bus.read() == (Sample(start, value),)
    (call,) = azure.fake.calls("metrics")
    assert call.query["filter"] == "EntityName eq 'orders' or EntityName eq 'billing'"
    assert call.query["metricnamespace"] == "Microsoft.ServiceBus/namespaces"


async def test_the_query_asks_for_the_configured_grain_window_and_aggregation(
    azure: AzureEnv,
) -> None:
    now = azure.clock.now()
    azure.fake.set_metric(APP, "CpuPercentage", [(now - 10 * MINUTE, 1.0)])

    await source(azure, aggregation="Maximum", interval="5m", window="15m").read()

    (call,) = azure.fake.calls("metrics")
    assert (call.query["aggregation"], call.query["interval"]) == ("maximum", "PT5M")
    assert (call.query["starttime"], call.query["endtime"]) == (
        "2026-01-05T07:45:00.000Z",
        "2026-01-05T08:00:00.000Z",  # the manual clock's now
    )
    assert call.body == {"resourceids": [APP]}


async def test_a_throttled_batch_is_retried_after_backing_off(azure: AzureEnv) -> None:
    start = azure.clock.now() - 2 * MINUTE
    azure.fake.set_metric(APP, "CpuPercentage", [(start, 7.0)])
    azure.fake.inject(service="metrics", status=529)  # no Retry-After: exponential back-off

    assert await source(azure).read() == (Sample(start, 7.0),)
    assert azure.slept == [1.0]
    assert [call.status for call in azure.fake.calls("metrics")] == [529, 200]


async def test_a_throttling_storm_fails_the_read_within_its_budget(azure: AzureEnv) -> None:
    azure.fake.inject(service="metrics", status=529, times=None)

    with pytest.raises(SourceError, match=r"skipped: Azure throttles metrics/eastus"):
        await source(azure, timeout="10s").read()

    assert sum(azure.slept) <= 5.0  # half the read's timeout
    assert azure.slept == [1.0, 2.0]  # a third wait (4s) would have passed the budget
