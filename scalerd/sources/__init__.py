"""Metric sources, one module per ``kind``.

The registry lists every plugin explicitly, sorted by kind: adding a source is one import
and one entry here, and nothing registers itself as a side effect of being imported.
"""

from __future__ import annotations

from ..plugins import Registry, Source
from . import (
    azure_event_hubs,
    azure_monitor,
    azure_storage_queue,
    http_json,
    log_analytics,
    prometheus,
    rabbitmq,
    redis,
    replay,
    servicebus,
)

__all__ = ["SOURCES"]

SOURCES: Registry[Source] = Registry(
    "source",
    [
        azure_event_hubs.PLUGIN,
        azure_monitor.PLUGIN,
        azure_storage_queue.PLUGIN,
        http_json.PLUGIN,
        log_analytics.PLUGIN,
        prometheus.PLUGIN,
        rabbitmq.PLUGIN,
        redis.PLUGIN,
        replay.PLUGIN,
        servicebus.PLUGIN,
    ],
)
