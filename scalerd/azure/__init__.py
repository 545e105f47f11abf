"""Azure plumbing shared by the Azure sources and actuators, below the plugin layer.

- ``clients``: :class:`AzureClients`, the SDK clients the composition root creates once;
- ``throttle`` and ``faults``: Retry-After gates, write budget, circuit breakers, and
  Azure's errors as scalerd reports them;
- ``metrics``: batched Azure Monitor reads; ``arm`` and ``operations``: the read → diff →
  write → follow cycle of the actuators; ``ids`` and ``vertical``: shared config pieces.
"""

from __future__ import annotations

from .clients import AzureClients

__all__ = ["AzureClients"]
