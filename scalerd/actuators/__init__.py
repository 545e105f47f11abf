"""Actuators, one module per ``kind``.

The registry lists every plugin explicitly, sorted by kind: adding an actuator is one entry
here (kind → module, which holds ``PLUGIN``), and nothing registers itself as a side effect
of being imported. A module is imported only when its kind is used: a daemon that scales
no Kubernetes workload never loads the Kubernetes client.
"""

from __future__ import annotations

from ..plugins import Actuator, Registry

__all__ = ["ACTUATORS"]

ACTUATORS: Registry[Actuator] = Registry.of_modules(
    "actuator",
    __name__,
    {
        "azure-app-service": "azure_app_service",
        "azure-container-apps": "azure_container_apps",
        "azure-postgres-flexible": "azure_postgres",
        "azure-redis": "azure_redis",
        "azure-sql": "azure_sql",
        "kubernetes": "kubernetes",
        "process-pool": "process_pool",
        "recording": "recording",
    },
)
