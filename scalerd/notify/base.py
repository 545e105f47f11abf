"""What every sink shares: the ``[[notify]]`` entry, the notice, and the message it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args

from pydantic import Field

from ..core.durations import Duration
from ..plugins import PluginConfig

__all__ = ["WHAT", "Message", "Notice", "NotifyConfig", "Sink", "What"]

What = Literal[
    "scaled",
    "failed",
    "at_max",
    "rapid_scaling",
    "metric_failure",
    "fallback",
    "restart_started",
    "restart_finished",
    "alert",
]
WHAT: tuple[What, ...] = get_args(What)


class NotifyConfig(PluginConfig):
    """Every ``[[notify]]`` entry: where to (a URL kept in the environment) and what."""

    # the environment variable holding the URL: a webhook URL is a secret
    url_env: str = Field(min_length=1)
    # what is sent, for every target (or those in `targets`)
    on: tuple[What, ...] = WHAT
    targets: tuple[str, ...] = ()
    # per target, a different selection: web = ["failed", "at_max"]
    per_target: dict[str, tuple[What, ...]] = Field(default_factory=dict)
    # rapid scaling: more than `rapid_actions` scale actions within `rapid_window`
    rapid_actions: int = Field(4, ge=1)
    rapid_window: Duration = timedelta(minutes=10)
    # a metric failing for more than this many evaluations in a row
    metric_failures: int = Field(3, ge=1)
    # how long a notice is retried before it is given up (and counted as undelivered), and
    # the longest wait between two tries (the waits double from 1 s, with jitter)
    retry_for: Duration = timedelta(hours=1)
    retry_max_wait: Duration = timedelta(minutes=1)

    def wants(self, target: str, what: What) -> bool:
        if target in self.per_target:
            return what in self.per_target[target]
        return (not self.targets or target in self.targets) and what in self.on

    def target_names(self) -> set[str]:
        return {*self.targets, *self.per_target}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing worth telling people, once: ``key`` is its dedupe key."""

    what: What
    target: str
    at: datetime
    key: str
    title: str
    text: str
    record: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """An HTTP POST body and its headers, as the sink's receiver expects them."""

    body: bytes
    headers: Mapping[str, str]


class Sink(Protocol):
    """Renders a notice in its receiver's format."""

    def render(self, notice: Notice) -> Message: ...
