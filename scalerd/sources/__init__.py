"""Metric sources, one module per ``kind``.

The registry lists every plugin explicitly, sorted by kind: adding a source is one import
and one entry here, and nothing registers itself as a side effect of being imported.
"""

from __future__ import annotations

from ..plugins import Registry, Source
from . import http_json, prometheus, redis, replay

__all__ = ["SOURCES"]

SOURCES: Registry[Source] = Registry(
    "source",
    [
        http_json.PLUGIN,
        prometheus.PLUGIN,
        redis.PLUGIN,
        replay.PLUGIN,
    ],
)
