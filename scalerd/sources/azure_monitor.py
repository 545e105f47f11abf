"""``kind = "azure-monitor"``: a platform or custom metric of one Azure resource.

Container Apps (``CpuPercentage``, ``MemoryPercentage``, ``Requests``, ``Replicas``),
PostgreSQL (``cpu_percent``, ``memory_percent``, ``storage_percent``,
``active_connections``), Redis (``serverLoad``, ``usedmemorypercentage``,
``connectedclients``), Application Insights (``requests/duration``…) — any metric the batch
metrics API serves for the resource's type (it serves no guest-OS namespace; where it
refuses a custom namespace, read the metric with a ``log-analytics`` query instead).

Reads go through the daemon's :class:`~scalerd.azure.metrics.MetricsBatcher`: sources
that share subscription, region, resource type and query are read together, up to 50
resources per ``metrics:getBatch`` call, and a fetch serves every source of its chunk for
``cache_for``.

The newest time grain is often empty (no aggregate yet) or still filling; neither is read
as a number. A sample is a *complete* grain — it has a value and ended before the query
did — stamped with the grain's start; a read with no complete grain in ``window`` fails
(never a zero). Several time series (a ``filter`` selecting several dimension values) are
combined per grain by ``combine``. Platform metrics arrive one to three minutes late, so
``max_age`` defaults to ten minutes here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from ..azure.clients import azure_clients
from ..azure.ids import ResourceId
from ..azure.metrics import MetricQuery, MetricsHandle, MetricsReading
from ..azure.throttle import Caller
from ..core.durations import Duration, format_duration
from ..core.model import Sample
from ..core.rules import located
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig

__all__ = ["PLUGIN", "AzureMonitorConfig", "AzureMonitorSource"]

# the time grains Azure Monitor aggregates platform metrics in
TIME_GRAINS = tuple(
    timedelta(minutes=minutes) for minutes in (1, 5, 15, 30, 60, 6 * 60, 12 * 60, 24 * 60)
)


class AzureMonitorConfig(SourceConfig):
    kind: Literal["azure-monitor"]
    # the resource's id (portal: JSON view)
    resource_id: str
    # its region, e.g. "eastus": the batch metrics endpoint is regional
    region: str = Field(min_length=1)
    # the metric's name as Azure Monitor lists it, e.g. "CpuPercentage"
    metric: str = Field(min_length=1)
    # the metric namespace (default: the resource's type, i.e. its platform metrics)
    namespace: str | None = Field(None, min_length=1)
    # Azure's aggregation of each time grain
    aggregation: Literal["average", "minimum", "maximum", "total", "count"] = "average"
    # the time grain: 1m, 5m, 15m, 30m, 1h, 6h, 12h or 1d
    interval: Duration = timedelta(minutes=1)
    # how far back each read looks
    window: Duration = timedelta(minutes=5)
    # a dimension filter, e.g. "EntityName eq 'orders'"
    filter: str | None = Field(None, min_length=1)
    # how several time series (dimension values) make one value per grain
    combine: Literal["sum", "max"] = "sum"
    # how long a fetched batch serves further reads (default: half the time grain)
    cache_for: Duration | None = None
    # platform metrics arrive minutes late: older than this, the read fails
    max_age: Duration | None = timedelta(minutes=10)

    @field_validator("resource_id")
    @classmethod
    def _resource_id(cls, value: str) -> str:
        return str(ResourceId.parse(value))

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        # "East US" and "eastus" are the same region; the endpoint wants the latter
        return value.replace(" ", "").lower()

    @field_validator("aggregation", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("interval")
    @classmethod
    def _grain(cls, value: timedelta) -> timedelta:
        if value not in TIME_GRAINS:
            grains = ", ".join(format_duration(grain) for grain in TIME_GRAINS)
            raise ValueError(f"Azure Monitor aggregates in time grains of {grains}")
        return value

    @model_validator(mode="after")
    def _grain_fits(self) -> Self:
        grain = format_duration(self.interval)
        if self.window < self.interval:
            window = format_duration(self.window)
            raise ValueError(f"window ({window}) must hold at least one time grain ({grain})")
        if self.max_age is not None and self.max_age <= self.interval:
            raise located(
                "max_age",
                f"must be longer than the time grain ({grain}): a complete grain is stamped "
                f"with its start, so it is at least one grain old",
            )
        return self

    def describe(self) -> str:
        resource = ResourceId.parse(self.resource_id).name
        grain, window = format_duration(self.interval), format_duration(self.window)
        what = f"{self.aggregation} {self.metric} of {resource}"
        return f"{self.kind} '{self.name}' ({what}, {grain} grains over {window})"

    def query(self) -> MetricQuery:
        resource = ResourceId.parse(self.resource_id)
        return MetricQuery(
            subscription=resource.subscription.lower(),
            region=self.region,
            resource_type=resource.type.lower(),
            namespace=self.namespace or resource.type,
            metric=self.metric,
            aggregation=self.aggregation,
            interval=self.interval,
            window=self.window,
            filter=self.filter,
        )


class AzureMonitorSource:
    """Reads one resource's metric from the shared batcher and keeps its complete grains."""

    def __init__(self, config: AzureMonitorConfig, handle: MetricsHandle, caller: Caller) -> None:
        self._config = config
        self._handle = handle
        self._caller = caller
        self._scope = f"metrics/{config.region}"
        self._what = f"read {config.metric} of {ResourceId.parse(config.resource_id).name!r}"

    async def read(self) -> Sequence[Sample]:
        reading = await self._caller.session().read(self._scope, self._handle.read, self._what)
        return self._complete_grains(reading)

    async def aclose(self) -> None:
        """Leave the batch; the metrics client belongs to the daemon."""
        self._handle.close()

    def _complete_grains(self, reading: MetricsReading) -> tuple[Sample, ...]:
        config = self._config
        if reading.metric is None or not reading.metric.timeseries:
            where = f"filter {config.filter!r} matches no series, or " if config.filter else ""
            raise SourceError(
                f"{self._what}: Azure returned no data ({where}the metric, namespace or region "
                f"{config.region!r} does not fit the resource)"
            )
        grains: dict[datetime, list[float]] = defaultdict(list)
        for series in reading.metric.timeseries:
            for point in series.data:
                value = getattr(point, config.aggregation)
                start = _aware(point.timestamp)
                if value is not None and start + config.interval <= reading.end:
                    grains[start].append(float(value))
        if not grains:
            raise SourceError(
                f"{self._what}: no complete {format_duration(config.interval)} grain in the last "
                f"{format_duration(config.window)} (the newest is still filling, or empty)"
            )
        combine = sum if config.combine == "sum" else max
        return tuple(Sample(start, combine(values)) for start, values in sorted(grains.items()))


def build(config: AzureMonitorConfig, ctx: BuildContext) -> Source:
    azure = azure_clients(ctx, config.name)
    cache_for = config.cache_for if config.cache_for is not None else config.interval / 2
    handle = azure.metrics.register(config.query(), config.resource_id, cache_for)
    # waits for Retry-After stop halfway through the read's timeout, leaving time to read
    caller = azure.caller("source", patience=config.timeout / 2)
    return AzureMonitorSource(config, handle, caller)


def _aware(timestamp: datetime) -> datetime:
    return timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)


PLUGIN = Plugin(
    kind="azure-monitor",
    config=AzureMonitorConfig,
    build=build,
    summary="an Azure Monitor metric of one resource, read in batches of up to 50 resources",
)
