"""Batched Azure Monitor metric reads: many ``azure-monitor`` sources, few API calls.

The batch API (``metrics:getBatch``) answers for up to 50 resources per call when they
share subscription, region and resource type and the query is the same (throttling.md
§2). Each source registers its resource at build time under its :class:`MetricQuery`;
the resources of one query are cut into chunks of 50 in registration order. A read
fetches the reader's chunk — one call serving up to 50 sources — unless that chunk was
fetched less than ``cache_for`` ago, or a fetch is under way (the reader then awaits it).
So targets evaluated at slightly different moments share calls: 120 container apps read
on one tick cost 3 calls. A failing chunk fails only its own sources.

Results carry no resource id (sdk_endpoints.md §6); each is matched to its resource by
its metrics' ids, which start with the resource id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.monitor.querymetrics import Metric
from azure.monitor.querymetrics.aio import MetricsClient

from ..clock import Clock

__all__ = ["BATCH_LIMIT", "MetricQuery", "MetricsBatcher", "MetricsHandle", "MetricsReading"]

BATCH_LIMIT = 50  # resource ids per metrics:getBatch call
_METRIC_ID_SUFFIX = "/providers/microsoft.insights/metrics/"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """Everything resources must have in common to be read in one call."""

    subscription: str
    region: str
    resource_type: str
    namespace: str
    metric: str
    aggregation: str
    interval: timedelta
    window: timedelta
    filter: str | None


@dataclass(frozen=True, slots=True)
class MetricsReading:
    """One resource's share of a batch answer: its metric (None if Azure sent none) and
    the end of the queried time span, which tells complete grains from filling ones."""

    metric: Metric | None
    end: datetime


@dataclass(eq=False)
class _Chunk:
    resource_ids: tuple[str, ...]
    readings: dict[str, MetricsReading] = field(default_factory=dict)  # by id, lower case
    fetched_at: datetime | None = None
    fetching: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Group:
    query: MetricQuery
    handles: list[MetricsHandle] = field(default_factory=list)
    chunks: dict[str, _Chunk] = field(default_factory=dict)  # by resource id, lower case

    @property
    def cache_for(self) -> timedelta:
        return min(handle.cache_for for handle in self.handles)

    def lay_out(self) -> None:
        """Cut the group's distinct resources into chunks of ``BATCH_LIMIT``."""
        ids = list(
            {handle.resource_id.lower(): handle.resource_id for handle in self.handles}.values()
        )
        self.chunks = {}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = _Chunk(tuple(ids[start : start + BATCH_LIMIT]))
            self.chunks.update((resource_id.lower(), chunk) for resource_id in chunk.resource_ids)


class MetricsHandle:
    """A source's registration: read its resource's metric, or leave the batch."""

    def __init__(
        self, batcher: MetricsBatcher, query: MetricQuery, resource_id: str, cache_for: timedelta
    ) -> None:
        self.query = query
        self.resource_id = resource_id
        self.cache_for = cache_for
        self._batcher = batcher

    async def read(self) -> MetricsReading:
        return await self._batcher._read(self)

    def close(self) -> None:
        self._batcher._unregister(self)


class MetricsBatcher:
    """Groups registered resources by query and reads each chunk of a group in one call."""

    def __init__(self, client_for_region: Callable[[str], MetricsClient], clock: Clock) -> None:
        self._client_for_region = client_for_region
        self._clock = clock
        self._groups: dict[MetricQuery, _Group] = {}

    def register(self, query: MetricQuery, resource_id: str, cache_for: timedelta) -> MetricsHandle:
        handle = MetricsHandle(self, query, resource_id, cache_for)
        group = self._groups.setdefault(query, _Group(query))
        group.handles.append(handle)
        group.lay_out()
        return handle

    def _unregister(self, handle: MetricsHandle) -> None:
        group = self._groups[handle.query]
        group.handles.remove(handle)
        if group.handles:
            group.lay_out()
        else:
            del self._groups[handle.query]

    async def _read(self, handle: MetricsHandle) -> MetricsReading:
        group = self._groups[handle.query]
        resource = handle.resource_id.lower()
        chunk = group.chunks[resource]
        fetched_at = chunk.fetched_at
        if fetched_at is None or self._clock.now() - fetched_at >= group.cache_for:
            if chunk.fetching is None:
                chunk.fetching = asyncio.create_task(self._fetch(group.query, chunk))
                chunk.fetching.add_done_callback(lambda _: setattr(chunk, "fetching", None))
            # shielded: a reader that gives up (its timeout) does not cancel the others' fetch
            await asyncio.shield(chunk.fetching)
        return chunk.readings[resource]

    async def _fetch(self, query: MetricQuery, chunk: _Chunk) -> None:
        end = self._clock.now()
        results = await self._client_for_region(query.region).query_resources(
            resource_ids=list(chunk.resource_ids),
            metric_namespace=query.namespace,
            metric_names=[query.metric],
            timespan=(end - query.window, end),
            granularity=query.interval,
            aggregations=[query.aggregation],
            filter=query.filter,
        )
        by_resource = {_owner(metric.id): metric for result in results for metric in result.metrics}
        chunk.readings = {
            resource.lower(): MetricsReading(by_resource.get(resource.lower()), end)
            for resource in chunk.resource_ids
        }
        chunk.fetched_at = end


def _owner(metric_id: str) -> str:
    """``{resource id}/providers/Microsoft.Insights/metrics/{name}`` → the resource id."""
    lowered = metric_id.lower()
    cut = lowered.rfind(_METRIC_ID_SUFFIX)
    return lowered[:cut] if cut >= 0 else lowered
