"""Metric sources, one module per ``kind``.

The registry lists every plugin explicitly, sorted by kind: adding a source is one entry
here (kind → module, which holds ``PLUGIN``), and nothing registers itself as a side effect
of being imported. A module is imported only when its kind is used: a daemon that reads
no Azure metric never loads the Azure SDKs.
"""

from __future__ import annotations

from ..plugins import Registry, Source

__all__ = ["SOURCES"]

SOURCES: Registry[Source] = Registry.of_modules(
    "source",
    __name__,
    {
        "azure-event-hubs": "azure_event_hubs",
        "azure-monitor": "azure_monitor",
        "azure-storage-queue": "azure_storage_queue",
        "http-json": "http_json",
        "log-analytics": "log_analytics",
        "prometheus": "prometheus",
        "rabbitmq": "rabbitmq",
        "redis": "redis",
        "replay": "replay",
        "servicebus": "servicebus",
    },
)
