"""Actuators, one module per ``kind``.

The registry lists every plugin explicitly, sorted by kind: adding an actuator is one
import and one entry here, and nothing registers itself as a side effect of being imported.
"""

from __future__ import annotations

from ..plugins import Actuator, Registry
from . import (
    azure_app_service,
    azure_container_apps,
    azure_postgres,
    azure_redis,
    azure_sql,
    kubernetes,
    process_pool,
    recording,
)

__all__ = ["ACTUATORS"]

ACTUATORS: Registry[Actuator] = Registry(
    "actuator",
    [
        azure_app_service.PLUGIN,
        azure_container_apps.PLUGIN,
        azure_postgres.PLUGIN,
        azure_redis.PLUGIN,
        azure_sql.PLUGIN,
        kubernetes.PLUGIN,
        process_pool.PLUGIN,
        recording.PLUGIN,
    ],
)
