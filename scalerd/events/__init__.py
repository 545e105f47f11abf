"""Pushed events: Azure Monitor alerts, Event Grid, CloudEvents and Redis feeds, each a kind
that maps an event to the targets it concerns and triggers their evaluation at once.

The registry lists every kind explicitly, sorted: adding one is one import and one entry.
"""

from __future__ import annotations

from typing import Any

from ..plugins import Registry
from . import azure_monitor_alert, cloudevents, event_grid, redis
from .base import EventConfig

__all__ = ["EVENTS", "EventConfig"]

EVENTS: Registry[Any] = Registry(
    "event",
    [azure_monitor_alert.PLUGIN, cloudevents.PLUGIN, event_grid.PLUGIN, redis.PLUGIN],
)
