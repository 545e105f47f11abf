"""The daemon-wide sections of ``config.toml``: ``[daemon]``, ``[redis]``, ``[audit]``,
``[state]``, ``[azure]`` and ``[simulate]``.

Small frozen models with documented defaults (the kopf habit); the composition root fills
in what is left. No secret is ever written here: a Redis password or a Service Bus
connection string comes from an environment variable named by ``*_env``.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .core.durations import Duration

__all__ = [
    "AuditSettings",
    "AzureSettings",
    "DaemonSettings",
    "RedisSettings",
    "SimulateSettings",
    "StateSettings",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonSettings(Section):
    # which scalerd replica wrote an audit record (default: the host name)
    instance: str = Field(default_factory=socket.gethostname, min_length=1)
    # where /healthz, /readyz, /metrics and /api listen; localhost unless asked otherwise
    listen: str = "127.0.0.1:8080"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # how long in-flight ticks may take to finish on SIGTERM
    shutdown_grace: Duration = timedelta(seconds=10)
    # evaluation start is spread by up to this fraction of the interval
    jitter: float = Field(0.1, ge=0, le=0.5)
    # re-read config.toml when the file changes (SIGHUP always reloads)
    watch_config: bool = True

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, e.g. '127.0.0.1:8080', got {value!r}")
        return value


class RedisSettings(Section):
    """Where the shared Redis is. The URL may carry no password: use ``password_env``."""

    url: str = "redis://127.0.0.1:6379/0"
    password_env: str | None = None
    key_prefix: str = "scalerd:"
    socket_timeout: Duration = timedelta(seconds=2)

    @field_validator("url")
    @classmethod
    def _no_inline_secret(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        netloc = value.split("://", 1)[1].split("/", 1)[0]
        if "@" in netloc and ":" in netloc.split("@", 1)[0]:
            raise ValueError(
                "do not put a password in config.toml: set password_env to the name of an "
                "environment variable that holds it"
            )
        return value

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class AuditSettings(Section):
    sink: Literal["jsonl", "redis"] = "jsonl"
    # jsonl: the file, rotated when it grows past max_bytes (keep rotated copies)
    path: str = "audit/audit.jsonl"
    max_bytes: int = Field(50 * 1024 * 1024, ge=4096)
    keep: int = Field(5, ge=0)
    # redis: one stream, trimmed approximately to maxlen; records spool to a local file
    # while Redis is unreachable and are flushed in order when it is back
    stream: str = "scalerd:audit"
    maxlen: int = Field(100_000, ge=100)
    spool: str = "state/audit-spool.jsonl"


class StateSettings(Section):
    """Where the history the core needs survives restarts."""

    store: Literal["file", "redis"] = "file"
    path: str = "state/state.json"


class AzureSettings(Section):
    """Azure endpoints (sovereign clouds, emulators) and identity. No secrets here."""

    arm_endpoint: str = "https://management.azure.com"
    # regional batch metrics endpoint template; {region} is the resources' region
    metrics_endpoint: str = "https://{region}.metrics.monitor.azure.com"
    logs_endpoint: str = "https://api.loganalytics.io"
    # a user-assigned managed identity's client id; unset = DefaultAzureCredential's choice
    managed_identity_client_id: str | None = None
    # a CA bundle to trust (private endpoints behind TLS inspection; local fakes)
    ca_bundle: str | None = None


class SimulateSettings(Section):
    """The capacity model ``scalerd simulate`` replays demand against (DESIGN.md §6)."""

    # work per second one ready replica serves
    capacity: float = Field(1.0, gt=0)
    # seconds from asking for a replica to its serving
    startup: Duration = timedelta(seconds=30)
    # how late the metric reaches the rules
    metric_delay: Duration = timedelta(0)
    # multiply the trace by this, or scale it so its peak needs `peak_replicas`
    scale: float | None = Field(None, gt=0)
    peak_replicas: int | None = Field(None, ge=1)
    # replicas at the start (default: the target's min)
    initial: int | None = Field(None, ge=0)
    # what each metric name the rules read is, derived from demand and ready replicas
    metrics: dict[str, Literal["utilization", "rate", "backlog", "concurrency", "latency"]] = {}
