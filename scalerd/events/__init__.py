"""Pushed events: Azure Monitor alerts, Event Grid, CloudEvents and Redis feeds, each a kind
that maps an event to the targets it concerns and triggers their evaluation at once.

The registry lists every kind explicitly, sorted: adding one is one entry (kind → module,
which holds ``PLUGIN``). A module is imported only when its kind is used.
"""

from __future__ import annotations

from typing import Any

from ..plugins import Registry
from .base import EventConfig

__all__ = ["EVENTS", "EventConfig"]

EVENTS: Registry[Any] = Registry.of_modules(
    "event",
    __name__,
    {
        "azure-monitor-alert": "azure_monitor_alert",
        "cloudevents": "cloudevents",
        "event-grid": "event_grid",
        "redis": "redis",
    },
)
