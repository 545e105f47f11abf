"""Notifications out: CloudEvents webhooks, Slack and Teams, through a durable outbox."""

from __future__ import annotations

from typing import Any

from ..plugins import Registry
from . import slack, teams, webhook
from .base import NotifyConfig

__all__ = ["NOTIFY", "NotifyConfig"]

NOTIFY: Registry[Any] = Registry("notify", [slack.PLUGIN, teams.PLUGIN, webhook.PLUGIN])
