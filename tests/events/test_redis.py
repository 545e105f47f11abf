"""Load events from a real Redis: a pub/sub channel, and a stream read through a consumer
group whose entries are acknowledged once the evaluation is triggered."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis.asyncio

from scalerd.events.base import EventRejected
from scalerd.events.redis import RedisEventsConfig, parse_message

from .build import SECRETS, config_text, served

FEEDS = """
[[events]]
name = "pubsub"
kind = "redis"
channel = "load-events"
target_property = "target"
value_field = "depth"
metric = "depth"

[[events]]
name = "stream"
kind = "redis"
stream = "load-stream"
group = "scalerd"
targets = ["workers"]
value_field = "depth"
metric = "depth"
"""


def _config(redis_url: str) -> str:
    return config_text(header=f'\n[redis]\nurl = "{redis_url}"\n', extra=FEEDS)


async def test_a_published_message_evaluates_the_target_it_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.asyncio.Redis,
    redis_server: object,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    async with served(tmp_path, _config(redis_server.url)) as running:  # type: ignore[attr-defined]
        before = len(running.records)
        # the subscriber may not be listening yet: publish until someone received it
        for _ in range(200):
            message = json.dumps({"id": "m-1", "target": "ingest", "depth": 42})
            if await redis_client.publish("load-events", message):
                break
            await asyncio.sleep(0.02)
        await running.wait_for(lambda records: len(records) > before)
        await running.settled()
        (record,) = running.records[before:]
        assert record.target == "ingest" and record.trigger is not None
        assert (record.trigger["kind"], record.trigger["id"]) == ("redis", "m-1")
        (depth,) = [i for i in record.inputs if i["metric"] == "depth"]
        assert depth["value"] == 42


async def test_stream_entries_are_acknowledged_after_the_evaluation_is_triggered(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.asyncio.Redis,
    redis_server: object,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # entries written before scalerd starts are read too (the group starts at them)
    await redis_client.xgroup_create("load-stream", "scalerd", id="0", mkstream=True)
    await redis_client.xadd("load-stream", {"id": "s-1", "depth": "31"})
    await redis_client.xadd("load-stream", {"event": json.dumps({"id": "s-2", "depth": 57})})
    await redis_client.xadd("load-stream", {"event": "not json"})
    async with served(tmp_path, _config(redis_server.url)) as running:  # type: ignore[attr-defined]
        await running.wait_for(lambda _: bool(running.event_records("workers")))
        await running.settled()
        for _ in range(100):
            pending = await redis_client.xpending("load-stream", "scalerd")
            if pending["pending"] == 0:
                break
            await asyncio.sleep(0.02)
        assert pending["pending"] == 0  # all acknowledged, the malformed one too (dropped)
        values = [
            i["value"]
            for record in running.event_records("workers")
            for i in record.inputs
            if i["metric"] == "depth"
        ]
        assert values[-1] == 57  # the freshest value won


def test_a_message_must_be_an_object_with_a_number_where_the_value_is() -> None:
    config = RedisEventsConfig(
        kind="redis", name="r", channel="c", targets=("w",), value_field="depth"
    )
    with pytest.raises(EventRejected, match="JSON object"):
        parse_message([1], config, "x")
    with pytest.raises(EventRejected, match="must be a number"):
        parse_message({"depth": "lots"}, config, "x")
    assert parse_message({"depth": "12"}, config, "x").value == 12


def test_a_feed_is_a_channel_or_a_stream() -> None:
    with pytest.raises(ValueError, match="one of them"):
        RedisEventsConfig(kind="redis", name="r", targets=("w",))
