"""``kind = "redis"``: queue depth and server load read from Redis.

Modes, by what a worker fleet usually scales on:

- ``list_length``: ``LLEN`` of work lists (a missing list is an empty one: Redis deletes
  a list when its last element is popped);
- ``stream_length``: ``XLEN`` of streams (a missing stream is a misconfiguration, since
  streams are not deleted when empty, so it fails);
- ``pending``: entries delivered to the consumer ``group`` but not acknowledged yet
  (the ``XPENDING`` summary count, as KEDA's ``pendingEntriesCount``);
- ``lag``: entries not delivered to the ``group`` yet (``XINFO GROUPS``, Redis 7 or later);
- ``info``: a numeric ``INFO`` field (``connected_clients``, ``used_memory``…), or the
  derived ``used_memory_percent`` = 100 * used_memory / maxmemory.

The counts of several ``keys`` are summed. The client is the daemon's, or the one it built
for this source's own ``url``; the source never opens a connection itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..clock import Clock
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig

__all__ = ["PLUGIN", "RedisMode", "RedisSource", "RedisSourceConfig"]

USED_MEMORY_PERCENT = "used_memory_percent"


class RedisMode(StrEnum):
    LIST_LENGTH = "list_length"
    STREAM_LENGTH = "stream_length"
    PENDING = "pending"
    LAG = "lag"
    INFO = "info"


_KEYED = frozenset(set(RedisMode) - {RedisMode.INFO})
_GROUPED = frozenset({RedisMode.PENDING, RedisMode.LAG})


class RedisSourceConfig(SourceConfig):
    kind: Literal["redis"]
    # "list_length", "stream_length", "pending" or "lag" of a consumer group, or an "info" field
    mode: RedisMode
    # the lists or streams to measure, summed (every mode but info)
    keys: tuple[str, ...] = ()
    # the consumer group (pending and lag)
    group: str | None = Field(None, min_length=1)
    # the INFO field (info), e.g. "connected_clients", or "used_memory_percent"
    field: str | None = Field(None, min_length=1)
    # a Redis other than the daemon's [redis] one; the daemon builds the client for it.
    # Never a password here: the daemon takes it from the environment.
    url: str | None = None

    @model_validator(mode="after")
    def _keys_group_and_field_fit_the_mode(self) -> Self:
        mode = self.mode
        if mode in _KEYED and not self.keys:
            raise ValueError(f"mode '{mode}' needs keys = [...], the lists or streams to measure")
        if mode not in _KEYED and self.keys:
            raise ValueError(f"mode '{mode}' reads the server, not keys: remove keys")
        if (mode in _GROUPED) != (self.group is not None):
            raise ValueError("group is required by modes 'pending' and 'lag', and only by them")
        if (mode is RedisMode.INFO) != (self.field is not None):
            raise ValueError("field is required by mode 'info', and only by it")
        return self

    @field_validator("url")
    @classmethod
    def _redis_url_without_password(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        credentials, _, _ = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")
        if ":" in credentials:
            raise ValueError("do not put a password in config.toml; the daemon reads it from env")
        return url


class RedisSource:
    """Measures ``config.mode`` over ``config.keys`` with an injected client."""

    def __init__(self, config: RedisSourceConfig, client: Redis, clock: Clock) -> None:
        self._config = config
        self._client = client
        self._clock = clock

    async def read(self) -> Sequence[Sample]:
        try:
            value = await self._measure()
        except RedisError as error:
            raise SourceError(f"redis {self._config.mode} of {self._subject()}: {error}") from error
        return (Sample(self._clock.now(), value),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    def _subject(self) -> str:
        if self._config.mode is RedisMode.INFO:
            return f"INFO field {self._config.field!r}"
        group = f" group {self._config.group!r}" if self._config.group else ""
        return f"{', '.join(self._config.keys)}{group}"

    async def _measure(self) -> float:
        match self._config.mode:
            case RedisMode.LIST_LENGTH:
                return await self._list_length()
            case RedisMode.STREAM_LENGTH:
                return await self._stream_length()
            case RedisMode.PENDING:
                return await self._pending()
            case RedisMode.LAG:
                return await self._lag()
            case RedisMode.INFO:
                return await self._info()

    async def _each_key(self, command: str, *args: Any) -> list[Any]:
        """Run ``command key *args`` for every key in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for key in self._config.keys:
                pipe.execute_command(command, key, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        # Redis's own error (it names the key) reads better than the pipeline's wrapper
        for reply in replies:
            if isinstance(reply, RedisError):
                raise reply
        return replies

    async def _list_length(self) -> int:
        lengths: list[int] = await self._each_key("LLEN")
        return sum(lengths)

    async def _stream_length(self) -> int:
        types = await self._each_key("TYPE")
        for key, kind in zip(self._config.keys, types, strict=True):
            if _text(kind) != "stream":
                raise SourceError(f"redis key {key!r} is not a stream (type {_text(kind)})")
        lengths: list[int] = await self._each_key("XLEN")
        return sum(lengths)

    async def _pending(self) -> int:
        summaries: list[dict[str, Any]] = await self._each_key("XPENDING", self._config.group)
        return sum(int(summary["pending"]) for summary in summaries)

    async def _lag(self) -> int:
        per_key = await self._each_key("XINFO GROUPS")
        return sum(
            _group_lag(key, groups, self._config.group or "")
            for key, groups in zip(self._config.keys, per_key, strict=True)
        )

    async def _info(self) -> float:
        field = self._config.field or ""
        if field == USED_MEMORY_PERCENT:
            memory = await self._client.info("memory")
            used, limit = _number(memory, "used_memory"), _number(memory, "maxmemory")
            if limit == 0:
                raise SourceError(
                    "used_memory_percent needs a memory limit, but maxmemory is 0 (unlimited); "
                    "set maxmemory on the server or read field = 'used_memory'"
                )
            return used / limit * 100
        return _number(await self._client.info(), field)


def build(config: RedisSourceConfig, ctx: BuildContext) -> Source:
    return RedisSource(config, _client(config, ctx), ctx.clock)


def _client(config: RedisSourceConfig, ctx: BuildContext) -> Redis:
    """The daemon's client, or the one it built for ``config.url``.

    A source with its own ``url`` never falls back to the daemon's Redis: reading the
    wrong server would yield plausible numbers about the wrong queue.
    """
    if config.url is not None:
        clients: dict[str, Redis] = ctx.extras.get("redis_clients", {})
        if config.url not in clients:
            raise ValueError(f"redis source {config.name!r}: no client was built for its url")
        return clients[config.url]
    if ctx.redis is None:
        raise ValueError(
            f"redis source {config.name!r} needs the daemon's Redis: configure [redis] "
            "or give the source its own url"
        )
    return ctx.redis


def _group_lag(key: str, groups: list[dict[str, Any]], group: str) -> int:
    for info in groups:
        if _text(info["name"]) != group:
            continue
        if "lag" not in info:
            raise SourceError("mode 'lag' needs Redis 7 or later; use mode 'pending' instead")
        if info["lag"] is None:
            # Redis only knows the lag while no entry after the group's position was deleted
            # and the group started at the stream's first entry or its end.
            raise SourceError(
                f"Redis cannot count the lag of group {group!r} on stream {key!r}: entries "
                "were deleted after its last delivered entry or it started at an arbitrary "
                "ID; use mode 'pending' or 'stream_length'"
            )
        lag: int = info["lag"]
        return lag
    raise SourceError(f"stream {key!r} has no consumer group {group!r}")


def _number(info: dict[str, Any], field: str) -> float:
    if field not in info:
        raise SourceError(f"redis INFO has no field {field!r}")
    value = info[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceError(f"redis INFO field {field!r} is not a number: {value!r}")
    return float(value)


def _text(value: bytes | str) -> str:
    """Decode a reply whether or not the client was built with ``decode_responses``."""
    return value.decode() if isinstance(value, bytes) else value


PLUGIN = Plugin(
    kind="redis",
    config=RedisSourceConfig,
    build=build,
    summary="list length, stream length, consumer-group pending or lag, or an INFO field",
)
