"""Plugin contracts: sources read samples, actuators read and change capacity.

A plugin is a kind name, a typed config model and a ``build`` function that receives the
validated config and a :class:`BuildContext` holding every network client it may use.
Plugins never create clients themselves; the composition root does, and tests pass fakes.
Optional capabilities are separate Protocols checked with ``isinstance``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .clock import Clock, SystemClock
from .core.durations import Duration
from .core.model import Capacity, Decision, Sample
from .core.rules import CronWindow, Ladder

if TYPE_CHECKING:
    import httpx
    import redis.asyncio

    from .azure.clients import AzureClients

__all__ = [
    "CURRENT_FENCE",
    "Actuator",
    "ActuatorConfig",
    "Applied",
    "BuildContext",
    "Fence",
    "FollowsOperations",
    "OperationOutcome",
    "Plugin",
    "PluginConfig",
    "Registry",
    "Source",
    "SourceConfig",
    "VerticalConfig",
    "secret_from_env",
]


class PluginConfig(BaseModel):
    """Every ``[[sources]]`` / ``[[actuators]]`` entry: ``kind`` picks the plugin, ``name``
    is how targets refer to it; the plugin's own keys follow."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

    def describe(self) -> str:
        """One line for ``scalerd check``: kind, name and the settings that differ from
        the defaults. Plugins may override it with something more telling."""
        settings = self.model_dump(mode="json", exclude_defaults=True, exclude={"kind", "name"})
        shown = ", ".join(f"{key}={_short(value)}" for key, value in settings.items())
        return f"{self.kind} '{self.name}'" + (f" ({shown})" if shown else "")


class SourceConfig(PluginConfig):
    # how old the newest point may be before the metric counts as failed (default: 3
    # evaluation intervals of the target, at least 1 minute)
    max_age: Duration | None = None
    # how long one read may take before it counts as failed
    timeout: Duration = timedelta(seconds=10)


class ActuatorConfig(PluginConfig):
    pass


@runtime_checkable
class VerticalConfig(Protocol):
    """An actuator config that scales along a ladder of tiers (databases, caches)."""

    def ladder(self) -> Ladder: ...

    def maintenance_windows(self) -> tuple[CronWindow, ...]: ...


class Source(Protocol):
    """Reads one metric. Raises ``SourceError`` (or anything) on failure: the tick turns an
    exception into a failed observation, never into a zero."""

    async def read(self) -> Sequence[Sample]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Applied:
    """What an actuator did: the operation it started (if still running) and notes for the
    audit record (e.g. that the change restarts the resource)."""

    operation: str | None = None
    notes: tuple[str, ...] = ()
    # how any process can follow ``operation`` to its end (an Azure continuation token);
    # with it the daemon stores the operation and counts the change only once it succeeded
    resume: str | None = None


class Actuator(Protocol):
    """Reads and changes the capacity of one scaled thing."""

    async def current(self) -> Capacity: ...

    async def apply(self, decision: Decision) -> Applied: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Fence:
    """The shard lease a write is made under (``scalerd.cluster``): a later owner of the
    shard always holds a larger ``token``."""

    token: int
    holder: str  # the instance holding the lease
    lease_key: str

    @property
    def lease_value(self) -> str:
        """The lease key's value while ``holder`` holds it under ``token``."""
        return f"{self.token}:{self.holder}"


# the fence of the evaluation under way in this task (None outside a cluster): the state
# store saves only under it, and an actuator that can hand it to the resource does
CURRENT_FENCE: ContextVar[Fence | None] = ContextVar("scalerd_current_fence", default=None)


@dataclass(frozen=True, slots=True)
class OperationOutcome:
    """How a long-running operation ended: ``code`` (the platform's) is None on success."""

    operation: str
    code: str | None = None
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.code is None


@runtime_checkable
class FollowsOperations(Protocol):
    """An actuator whose changes run on as long-running operations after ``apply``."""

    async def outcome(self, operation: str, resume: str) -> OperationOutcome:
        """Wait for ``operation`` to end and say how; ``resume`` (``Applied.resume``) picks
        it up in a process that did not start it. Never raises for a failed operation."""


@dataclass
class BuildContext:
    """What the composition root hands every plugin's ``build``: clients and settings.

    ``base_dir`` resolves relative paths in plugin configs (the config file's folder).
    ``azure`` holds the Azure SDK clients and the throttling state they share
    (``scalerd.azure.AzureClients``), present when an Azure plugin is configured.
    """

    base_dir: Path = field(default_factory=Path.cwd)
    clock: Clock = field(default_factory=SystemClock)
    http: httpx.AsyncClient | None = None
    redis: redis.asyncio.Redis | None = None
    azure: AzureClients | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def secret_from_env(config: PluginConfig, variable: str | None, key: str) -> str | None:
    """A token or connection string named by a config key such as ``token_env``: secrets
    live in the environment, never in config.toml. Missing when named is a build error."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ValueError(
            f"{config.kind} {config.name!r}: environment variable {variable} ({key}) is not set"
        )
    return value


def _short(value: Any, limit: int = 48) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


C = TypeVar("C", bound=PluginConfig)
T = TypeVar("T")


@dataclass(frozen=True)
class Plugin(Generic[T]):
    kind: str
    config: type[PluginConfig]
    build: Callable[[Any, BuildContext], T]
    summary: str


class Registry(Generic[T]):
    """The plugins of one family, keyed by ``kind``, in sorted order.

    An entry is a :class:`Plugin`, or the name of the module whose ``PLUGIN`` it is
    (:meth:`of_modules`): that module, and the SDK it brings, is imported the first time
    its kind is asked for, so a daemon pays only for the kinds its config uses.
    """

    def __init__(self, family: str, plugins: Sequence[Plugin[T]] | Mapping[str, str]) -> None:
        entries: dict[str, Plugin[T] | str] = (
            dict(plugins)
            if isinstance(plugins, Mapping)
            else {plugin.kind: plugin for plugin in plugins}
        )
        kinds = list(entries) if isinstance(plugins, Mapping) else [p.kind for p in plugins]
        if kinds != sorted(set(kinds)):
            raise ValueError(f"{family} registry must list unique kinds in sorted order: {kinds}")
        self.family = family
        self._plugins = entries

    @classmethod
    def of_modules(cls, family: str, package: str, modules: Mapping[str, str]) -> Registry[T]:
        """``modules`` maps each kind to its module in ``package`` (which holds ``PLUGIN``)."""
        return cls(family, {kind: f"{package}.{module}" for kind, module in modules.items()})

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._plugins)

    def __contains__(self, kind: object) -> bool:
        return kind in self._plugins

    def __iter__(self) -> Iterator[Plugin[T]]:
        """Every plugin (which imports every module: for the reference and the tests)."""
        return iter([self.get(kind) for kind in self._plugins])

    def get(self, kind: str) -> Plugin[T]:
        entry = self._entry(kind)
        if isinstance(entry, str):
            plugin: Plugin[T] = importlib.import_module(entry).PLUGIN
            if plugin.kind != kind:
                raise ValueError(f"{entry}.PLUGIN is kind {plugin.kind!r}, registered as {kind!r}")
            self._plugins[kind] = entry = plugin
        return entry

    def _entry(self, kind: str) -> Plugin[T] | str:
        try:
            return self._plugins[kind]
        except KeyError:
            raise KeyError(
                f"unknown {self.family} kind {kind!r}; known kinds: {', '.join(self.kinds)}"
            ) from None
