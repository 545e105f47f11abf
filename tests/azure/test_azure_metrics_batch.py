"""How many ``metrics:getBatch`` calls many azure-monitor sources cost (MetricsBatcher)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fakes.azure_env import SUB, AzureEnv

from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import Source
from scalerd.sources.azure_monitor import PLUGIN, AzureMonitorConfig

MINUTE = timedelta(minutes=1)


def app_id(index: int) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/app{index}"
    )


def cpu_sources(azure: AzureEnv, count: int) -> list[Source]:
    """One source per app, as 120 targets would each name theirs; app i reads i percent."""
    start = azure.clock.now() - 2 * MINUTE
    sources = []
    for index in range(count):
        azure.fake.set_metric(app_id(index), "CpuPercentage", [(start, float(index))])
        config = AzureMonitorConfig(
            kind="azure-monitor",
            name=f"cpu-{index}",
            resource_id=app_id(index),
            region="eastus",
            metric="CpuPercentage",
        )
        sources.append(PLUGIN.build(config, azure.ctx))
    return sources


async def test_120_container_apps_cost_3_calls_per_tick(azure: AzureEnv) -> None:
    sources = cpu_sources(azure, 120)
    start = azure.clock.now() - 2 * MINUTE

    # one tick: every target reads, concurrently, and a few seconds apart
    first = await asyncio.gather(*(source.read() for source in sources[:60]))
    azure.clock.advance(5)
    rest = await asyncio.gather(*(source.read() for source in sources[60:]))

    assert [samples for samples in first + rest] == [(Sample(start, float(i)),) for i in range(120)]
    calls = azure.fake.calls("metrics")
    assert len(calls) == 3
    assert [len(call.body["resourceids"]) for call in calls] == [50, 50, 20]
    assert sorted(i for call in calls for i in call.body["resourceids"]) == sorted(
        map(app_id, range(120))
    )


async def test_the_next_tick_fetches_again_once_the_cache_has_aged(azure: AzureEnv) -> None:
    sources = cpu_sources(azure, 3)
    await asyncio.gather(*(source.read() for source in sources))

    azure.clock.advance(29)  # cache_for defaults to half the 1m grain
    await asyncio.gather(*(source.read() for source in sources))
    assert len(azure.fake.calls("metrics")) == 1
    azure.clock.advance(1)
    await asyncio.gather(*(source.read() for source in sources))
    assert len(azure.fake.calls("metrics")) == 2


async def test_a_closed_source_leaves_the_batch(azure: AzureEnv) -> None:
    first, second = cpu_sources(azure, 2)

    await first.aclose()
    await second.read()

    (call,) = azure.fake.calls("metrics")
    assert call.body == {"resourceids": [app_id(1)]}


async def test_a_failed_chunk_fails_only_its_own_sources(azure: AzureEnv) -> None:
    sources = cpu_sources(azure, 51)  # chunks of 50 and 1
    azure.fake.inject(service="metrics", status=500, times=2)  # the SDK retries a POST once

    with pytest.raises(SourceError, match="HTTP 500 InternalServerError"):
        await sources[0].read()
    served = await sources[50].read()

    assert served == (Sample(azure.clock.now() - 2 * MINUTE, 50.0),)
    assert [len(call.body["resourceids"]) for call in azure.fake.calls("metrics")] == [50, 50, 1]
