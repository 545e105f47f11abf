"""Notifications out: CloudEvents webhooks, Slack and Teams, through a durable outbox.

The registry lists every kind explicitly, sorted: adding one is one entry (kind → module,
which holds ``PLUGIN``). A module is imported only when its kind is used.
"""

from __future__ import annotations

from typing import Any

from ..plugins import Registry
from .base import NotifyConfig

__all__ = ["NOTIFY", "NotifyConfig"]

NOTIFY: Registry[Any] = Registry.of_modules(
    "notify", __name__, {"slack": "slack", "teams": "teams", "webhook": "webhook"}
)
