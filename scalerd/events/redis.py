"""``kind = "redis"``: load events an application publishes itself, from a Redis pub/sub
channel or a stream read through a consumer group (acknowledged once the evaluation is
triggered, so an event is not lost if scalerd stops before it).

A message is a JSON object: a CloudEvent (structured) or any object whose fields the match
rules, ``target_property`` and ``value_field`` read. A stream entry carries it in its
``event`` field, or is read as that object itself (field → value).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

import redis.asyncio
import structlog
from pydantic import Field, model_validator

from ..plugins import BuildContext, Plugin
from .base import EventConfig, EventRejected, InboundEvent, ValueField, number_at
from .cloudevents import from_attributes, with_value
from .hub import Deliver, StreamReceiver

__all__ = ["PLUGIN", "RedisEventsConfig", "RedisReceiver", "parse_message"]

log = structlog.get_logger("scalerd")

RETRY_S = 1.0


class RedisEventsConfig(EventConfig):
    kind: Literal["redis"]
    # one of the two: a pub/sub channel, or a stream read through a consumer group
    channel: str | None = Field(None, min_length=1)
    stream: str | None = Field(None, min_length=1)
    group: str = Field("scalerd", min_length=1)
    consumer: str = Field(default_factory=socket.gethostname, min_length=1)
    # where a message's number is, e.g. "queue_depth" or "data.depth" (offered to `metric`)
    value_field: ValueField = None

    @model_validator(mode="after")
    def _one_feed(self) -> RedisEventsConfig:
        if (self.channel is None) == (self.stream is None):
            raise ValueError("give channel (pub/sub) or stream (consumer group), one of them")
        if self.secret_env is not None:
            raise ValueError(
                "@secret_env: a Redis feed has no HTTP endpoint; Redis's own auth applies"
            )
        return self


def parse_message(payload: Any, config: RedisEventsConfig, fallback_id: str) -> InboundEvent:
    """One published message as an event; EventRejected if it is not one."""
    if not isinstance(payload, dict):
        raise EventRejected("a message must be a JSON object")
    feed = config.channel or config.stream or ""
    if "specversion" in payload:
        event = replace(from_attributes(payload, "the message"), kind="redis")
    else:
        kind = payload.get("type", "message")
        event = InboundEvent(
            kind="redis",
            id=str(payload.get("id", fallback_id)),
            source=str(payload.get("source", f"redis:{feed}")),
            type=str(kind),
            subject=str(payload["subject"]) if "subject" in payload else None,
            properties={
                str(key): str(value)
                for key, value in payload.items()
                if isinstance(value, str | int | float) and not isinstance(value, bool)
            },
            summary=f"message {kind!r} on {feed!r}",
        )
    if config.value_field is None:
        return event
    return with_value(event, number_at(payload, config.value_field))


class RedisReceiver:
    def __init__(self, config: RedisEventsConfig, client: redis.asyncio.Redis) -> None:
        self._config = config
        self._redis = client
        self.rejected = 0

    async def run(self, deliver: Deliver) -> None:
        while True:
            try:
                if self._config.channel is not None:
                    await self._subscribe(deliver)
                else:
                    await self._consume(deliver)
            except asyncio.CancelledError:
                raise
            except Exception as problem:  # Redis away: try again, never give up the feed
                log.warning(
                    "redis event feed interrupted; retrying",
                    endpoint=self._config.name,
                    error=type(problem).__name__,
                )
                await asyncio.sleep(RETRY_S)

    async def _subscribe(self, deliver: Deliver) -> None:
        channel = self._config.channel
        assert channel is not None
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                await self._handle(message["data"], deliver, "pubsub")

    async def _consume(self, deliver: Deliver) -> None:
        stream, group = self._config.stream, self._config.group
        assert stream is not None
        try:
            await self._redis.xgroup_create(stream, group, id="$", mkstream=True)
        except redis.ResponseError as problem:
            if "BUSYGROUP" not in str(problem):
                raise
        start = "0"  # first what was delivered to this consumer and never acknowledged
        while True:
            answer: Any = await self._redis.xreadgroup(
                group, self._config.consumer, {stream: start}, count=100, block=1000
            )
            entries = answer[0][1] if answer else []
            if start == "0" and not entries:
                start = ">"
                continue
            for entry_id, fields in entries:
                await self._handle(_entry(fields), deliver, _text(entry_id))
                await self._redis.xack(stream, group, entry_id)

    async def _handle(self, raw: Any, deliver: Deliver, fallback_id: str) -> None:
        try:
            payload = json.loads(raw) if isinstance(raw, bytes | str) else raw
            event = parse_message(payload, self._config, fallback_id)
        except (ValueError, RecursionError) as problem:
            self.rejected += 1
            log.warning(
                "redis event dropped", endpoint=self._config.name, reason=str(problem)[:200]
            )
            return
        await deliver((event,))

    async def aclose(self) -> None:
        """The client is closed by whoever made it."""


def _entry(fields: Mapping[Any, Any]) -> Any:
    decoded = {_text(key): _text(value) for key, value in fields.items()}
    return decoded.get("event", decoded)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def build(config: RedisEventsConfig, ctx: BuildContext) -> StreamReceiver:
    if ctx.redis is None:
        raise ValueError(f"events {config.name!r}: a redis feed needs a [redis] section")
    return RedisReceiver(config, ctx.redis)


PLUGIN = Plugin(
    kind="redis",
    config=RedisEventsConfig,
    build=build,
    summary="load events published to a Redis pub/sub channel or stream (consumer group)",
)
