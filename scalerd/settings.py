"""The daemon-wide sections of ``config.toml``: ``[daemon]``, ``[redis]``, ``[audit]``,
``[state]``, ``[cluster]``, ``[azure]`` and ``[simulate]``.

Small frozen models with documented defaults (the kopf habit); the composition root fills
in what is left. No secret is ever written here: a Redis password or a Service Bus
connection string comes from an environment variable named by ``*_env``.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .core.durations import Duration, format_duration
from .core.rules import MAX_CAPACITY, located

__all__ = [
    "AuditSettings",
    "AzureSettings",
    "ClusterSettings",
    "DaemonSettings",
    "Dependency",
    "DependencyFailure",
    "MetricKind",
    "RedisSettings",
    "SimulateSettings",
    "StateSettings",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DaemonSettings(Section):
    # which scalerd replica wrote an audit record (default: the host name)
    instance: str = Field(default_factory=socket.gethostname, min_length=1)
    # where /healthz, /readyz, /metrics and /api listen; localhost unless asked otherwise
    listen: str = "127.0.0.1:8080"
    # "json" (one event per line), "console" (for people), "auto": console on a terminal, else json
    log_format: Literal["auto", "json", "console"] = "auto"
    # the lowest level logged
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # how long in-flight ticks may take to finish on SIGTERM
    shutdown_grace: Duration = timedelta(seconds=10)
    # evaluation start is spread by up to this fraction of the interval
    jitter: float = Field(0.1, ge=0, le=0.5)
    # evaluations under way at once; more wait their turn. What a pass over many targets
    # holds in memory at a time (a state, a decision, a record each); an evaluation
    # waiting on a slow API holds its place
    max_concurrent_evaluations: int = Field(1000, ge=1, le=100_000)
    # re-read config.toml when the file changes (SIGHUP always reloads)
    watch_config: bool = True
    # the environment variable holding the bearer token for the control endpoints
    # (pause, override, evaluate); without it they answer only on localhost
    control_token_env: str | None = None
    # beyond localhost, `/` and `/api/*` need the control token too (decisions name the
    # resources scaled); /healthz, /readyz and /metrics stay open for probes and Prometheus
    protect_reads: bool = True

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, e.g. '127.0.0.1:8080', got {value!r}")
        return value


class RedisSettings(Section):
    """Where the shared Redis is. The URL may carry no password: use ``password_env``."""

    # the Redis server; `url_env` names an environment variable that replaces it when set
    # (a container's secret, a CI job's private server)
    url: str = "redis://127.0.0.1:6379/0"
    # the environment variable whose value, when set, replaces url
    url_env: str | None = None
    # the environment variable holding the Redis password
    password_env: str | None = None
    # the prefix of the keys of the state and of the cluster leases
    key_prefix: str = "scalerd:"
    # how long one Redis command may take
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

    @model_validator(mode="before")
    @classmethod
    def _url_from_environment(cls, data: Any) -> Any:
        name = data.get("url_env") if isinstance(data, dict) else None
        if isinstance(name, str) and os.environ.get(name):
            return {**data, "url": os.environ[name]}
        return data

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class AuditSettings(Section):
    # "jsonl": a local file; "redis": a Redis stream
    sink: Literal["jsonl", "redis"] = "jsonl"
    # jsonl: the file, rotated when it grows past max_bytes (keep rotated copies)
    path: str = "audit/audit.jsonl"
    # jsonl: rotate the file past this size
    max_bytes: int = Field(50 * 1024 * 1024, ge=4096, le=2**40)
    # jsonl: how many rotated files to keep
    keep: int = Field(5, ge=0, le=1000)
    # redis: one stream, trimmed approximately to maxlen; records spool to a local file
    # while Redis is unreachable and are flushed in order when it is back ("{instance}"
    # in the path is replaced by the replica's id, for replicas that share a folder)
    stream: str = "scalerd:audit"
    # redis: the stream is trimmed to about this many records
    maxlen: int = Field(100_000, ge=100, le=100_000_000)
    # redis: where records wait while Redis is unreachable
    spool: str = "state/audit-spool.jsonl"


class StateSettings(Section):
    """Where the history the core needs survives restarts."""

    # sqlite: one database, a row per target (the embedded default); file: one JSON
    # document (the store before SQLite); redis: a key per target on the shared Redis
    store: Literal["sqlite", "file", "redis"] = "sqlite"
    # the database (sqlite) or the document (file); unset: state/state.db or state/state.json
    path: str | None = None
    # sqlite: a file store's document imported on first start, then left as a backup
    import_file: str = "state/state.json"
    # sqlite: FULL fsyncs every commit (survives a power cut); NORMAL only a kill -9
    synchronous: Literal["FULL", "NORMAL"] = "FULL"

    def location(self) -> str:
        """Where this store keeps its data (``path`` or the store's default)."""
        if self.path is not None:
            return self.path
        return "state/state.json" if self.store == "file" else "state/state.db"


class ClusterSettings(Section):
    """Replicas sharing the Redis of ``[redis]`` (``scalerd.cluster``). On whenever the
    state is in Redis; a lone replica then simply holds every shard."""

    # replicas with the same name share the targets; another name is another cluster
    name: str = Field("scalerd", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # a replica silent for this long is dead, and its leases are free
    lease_ttl: Duration = timedelta(seconds=15)
    # heartbeat and lease renewal period (default: a third of lease_ttl)
    renew_every: Duration | None = None
    # targets hash into this many shards; changing it moves targets between replicas
    shards: int = Field(64, ge=1, le=4096)
    # this replica's id (default: host name, process id and a random suffix)
    instance: str | None = Field(None, min_length=1, pattern=r"^[^\s]+$")

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> ClusterSettings:
        if self.lease_ttl < timedelta(milliseconds=300):
            raise ValueError("lease_ttl must be at least 300ms")
        if not timedelta(0) < self.renew_period < self.lease_ttl:
            raise ValueError("renew_every must be longer than 0s and shorter than lease_ttl")
        return self

    @property
    def renew_period(self) -> timedelta:
        return self.renew_every if self.renew_every is not None else self.lease_ttl / 3


class AzureSettings(Section):
    """Azure endpoints (sovereign clouds, emulators), identity, and how hard scalerd may
    lean on Azure (``scalerd.azure.throttle`` explains each limit). No secrets here: a
    Service Bus connection string comes from the environment variable a source names."""

    # Azure Resource Manager; tokens are requested for "<arm_endpoint>/.default"
    arm_endpoint: str = "https://management.azure.com"
    # regional batch metrics endpoint; {region} is the resources' region
    metrics_endpoint: str = "https://{region}.metrics.monitor.azure.com"
    # the token audience of the metrics endpoint (e.g. https://metrics.monitor.azure.us)
    metrics_audience: str = "https://metrics.monitor.azure.com"
    # the Log Analytics query endpoint
    logs_endpoint: str = "https://api.loganalytics.io"
    # appended to a Service Bus namespace given by its short name
    servicebus_suffix: str = "servicebus.windows.net"
    # appended to a storage account given by its short name, for its queue endpoint
    storage_queue_suffix: str = "queue.core.windows.net"
    # appended to a storage account given by its short name, for its blob endpoint
    storage_blob_suffix: str = "blob.core.windows.net"
    # a user-assigned managed identity's client id; unset = DefaultAzureCredential's choice
    managed_identity_client_id: str | None = None
    # a CA bundle to trust (private endpoints behind TLS inspection; local fakes)
    ca_bundle: str | None = None
    # for local emulators only: send the bearer token held by this environment variable
    # instead of asking DefaultAzureCredential (real Azure would reject such a token)
    token_env: str | None = None
    # retries the SDK makes on its own, for transient faults of reads only
    retry_total: int = Field(1, ge=0, le=3)
    # how long one HTTP request may wait for Azure's answer
    read_timeout: Duration = timedelta(seconds=30)
    # between status polls of a long-running operation, unless Azure says Retry-After
    polling_interval: Duration = timedelta(seconds=15)
    # the longest one read, current() or apply() waits in all for Retry-After; beyond it
    # the call is skipped for this tick
    throttle_budget: Duration = timedelta(seconds=10)
    # writes per subscription: bursts of write_burst, refilled at writes_per_hour
    write_burst: int = Field(20, ge=1, le=10_000)
    # the refill rate of that write budget
    writes_per_hour: int = Field(600, ge=1, le=1_000_000)
    # a plugin's circuit opens after this many failures in a row, for breaker_reset
    breaker_failures: int = Field(5, ge=1, le=1000)
    # how long an open circuit stays open before the next call tries
    breaker_reset: Duration = timedelta(seconds=60)

    @field_validator("arm_endpoint", "metrics_endpoint", "metrics_audience", "logs_endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(
                "must start with https:// (the Azure SDK sends no token over plain http); "
                "for a local emulator, serve TLS and set ca_bundle"
            )
        # a trailing slash makes LogsQueryClient request "//v1/..."
        return value.rstrip("/")


MetricKind = Literal["utilization", "rate", "arrivals", "backlog", "concurrency", "latency"]


class DependencyFailure(Section):
    """One failure of a simulated dependency, placed on the trace's timeline."""

    # when it starts, counted from the trace's first row
    start: Duration
    # how long it lasts
    duration: Duration

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class Dependency(Section):
    """What a ``[[breaker]]``'s metric reads in a replay: ``healthy`` except during its
    ``failures``, when it reads ``failing``. A dependency's health does not follow the
    demand trace, so it is described here rather than derived from it."""

    # what the metric reads while the dependency is well
    healthy: float = Field(ge=0, allow_inf_nan=False)
    # what it reads while the dependency fails
    failing: float = Field(ge=0, allow_inf_nan=False)
    # when it fails: [{ start = "2h", duration = "30m" }, ...]
    failures: tuple[DependencyFailure, ...] = ()

    def value_at(self, offset: timedelta) -> float:
        """The reading ``offset`` after the trace's first row."""
        for failure in self.failures:
            if failure.start <= offset < failure.start + failure.duration:
                return self.failing
        return self.healthy


class SimulateSettings(Section):
    """The capacity model ``scalerd simulate`` replays demand against (README: Simulation).

    Demand is work per second; each ready replica serves ``capacity`` of it. The metric
    kinds (``scalerd.simulate.model`` has the formulas) are what the rules' metrics are
    derived from, so the same rule reads the same number in a replay as in production.
    """

    # work per second one ready replica serves
    capacity: float = Field(1.0, gt=0, allow_inf_nan=False)
    # seconds from asking for a replica to its serving (scale-in is immediate)
    startup: Duration = timedelta(seconds=30)
    # how late the metric reaches the rules (Azure Monitor: minutes; a queue read: none)
    metric_delay: Duration = timedelta(0)
    # multiply the trace by this, or scale it so its highest row needs `peak_replicas`
    scale: float | None = Field(None, gt=0, allow_inf_nan=False)
    # scale the trace so its highest row needs this many replicas
    peak_replicas: int | None = Field(None, ge=1, le=MAX_CAPACITY)
    # replicas at the start (default: the target's min)
    initial: int | None = Field(None, ge=0, le=MAX_CAPACITY)
    # seconds one unit of work spends in service (default: 1 / capacity, one at a time);
    # concurrency and latency are derived from it, and the work a queue has in service
    service_time: Duration | None = None
    # the longest response time the latency metric reads: the request timeout
    latency_cap: Duration = timedelta(seconds=30)
    # the wall-clock time of the trace's first row, for schedules and cron windows
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    # what each metric name the rules read is, derived from demand and ready replicas;
    # a metric left out is inferred from the rule that reads it
    metrics: dict[str, MetricKind] = {}
    # what each [[breaker]]'s metric reads: a dependency's health, with its failures
    dependencies: dict[str, Dependency] = {}
    # on a ladder of tiers: from asking for a tier change to the new tier serving (the
    # old tier serves meanwhile)
    change_time: Duration = timedelta(minutes=5)
    # on a ladder: how long, at the end of a change to or from a tier that restarts the
    # resource, it serves nothing
    restart_downtime: Duration = timedelta(minutes=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2024-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_scaling(self) -> SimulateSettings:
        if self.scale is not None and self.peak_replicas is not None:
            raise ValueError("give scale or peak_replicas, not both")
        if self.restart_downtime > self.change_time:
            raise located(
                "restart_downtime",
                f"longer than change_time ({format_duration(self.change_time)}): the "
                "restart happens at the end of the change",
            )
        return self

    @property
    def service_time_s(self) -> float:
        if self.service_time is None:
            return 1.0 / self.capacity
        return self.service_time.total_seconds()
