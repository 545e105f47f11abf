"""The redis source against a real, private ``redis-server`` (see ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scalerd.clock import ManualClock
from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import BuildContext, Source
from scalerd.sources.redis import PLUGIN, RedisSourceConfig

if TYPE_CHECKING:
    from tests.conftest import RedisServer

Client = redis.asyncio.Redis


def redis_source(client: Client, clock: ManualClock, **keys: Any) -> Source:
    config = RedisSourceConfig(kind="redis", name="queue", **keys)
    return PLUGIN.build(config, BuildContext(clock=clock, redis=client))


async def read_value(source: Source) -> float:
    (sample,) = await source.read()
    return sample.value


async def fill_stream(client: Client, key: str, entries: int) -> list[bytes | str]:
    return [await client.xadd(key, {"n": n}) for n in range(entries)]


async def test_list_length_sums_the_lists_and_a_missing_list_is_empty(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    await redis_client.rpush("jobs:high", *range(3))
    await redis_client.rpush("jobs:low", *range(4))
    source = redis_source(
        redis_client, manual_clock, mode="list_length", keys=["jobs:high", "jobs:low", "jobs:none"]
    )

    assert await source.read() == (Sample(manual_clock.now(), 7),)


async def test_stream_length_sums_the_streams(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    await fill_stream(redis_client, "events:a", 2)
    await fill_stream(redis_client, "events:b", 3)
    source = redis_source(
        redis_client, manual_clock, mode="stream_length", keys=["events:a", "events:b"]
    )

    assert await read_value(source) == 5


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(None, r"'events' is not a stream \(type none\)", id="missing stream"),
        pytest.param("list", r"'events' is not a stream \(type list\)", id="a list"),
    ],
)
async def test_stream_length_of_something_else_fails(
    redis_client: Client, manual_clock: ManualClock, setup: str | None, message: str
) -> None:
    if setup == "list":
        await redis_client.rpush("events", 1)
    source = redis_source(redis_client, manual_clock, mode="stream_length", keys=["events"])

    with pytest.raises(SourceError, match=message):
        await source.read()


async def test_pending_counts_delivered_but_unacknowledged_entries(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    for key, delivered, acked in (("orders", 4, 1), ("refunds", 2, 0)):
        entry_ids = await fill_stream(redis_client, key, 6)
        await redis_client.xgroup_create(key, "workers", id="0")
        await redis_client.xreadgroup("workers", "w1", {key: ">"}, count=delivered)
        if acked:  # the first entries are the ones delivered
            await redis_client.xack(key, "workers", *entry_ids[:acked])
    source = redis_source(
        redis_client, manual_clock, mode="pending", keys=["orders", "refunds"], group="workers"
    )

    assert await read_value(source) == (4 - 1) + (2 - 0)


async def test_pending_for_an_unknown_group_fails(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    await fill_stream(redis_client, "orders", 1)
    source = redis_source(redis_client, manual_clock, mode="pending", keys=["orders"], group="nope")

    with pytest.raises(SourceError, match=r"redis pending of orders group 'nope': NOGROUP"):
        await source.read()


@pytest.fixture(params=[False, True], ids=["bytes replies", "decoded replies"])
async def any_client(
    request: pytest.FixtureRequest, redis_client: Client, redis_server: RedisServer
) -> AsyncIterator[Client]:
    """The source must not care whether the daemon's client decodes replies."""
    client = Client.from_url(redis_server.url, decode_responses=request.param)
    yield client
    await client.aclose()


async def test_lag_counts_entries_not_delivered_yet(
    any_client: Client, manual_clock: ManualClock
) -> None:
    for key, delivered in (("orders", 2), ("refunds", 0)):
        await fill_stream(any_client, key, 5)
        await any_client.xgroup_create(key, "workers", id="0")
        await any_client.xgroup_create(key, "auditors", id="0")
        if delivered:
            await any_client.xreadgroup("workers", "w1", {key: ">"}, count=delivered)
    source = redis_source(
        any_client, manual_clock, mode="lag", keys=["orders", "refunds"], group="workers"
    )

    assert await read_value(source) == (5 - 2) + (5 - 0)


async def test_lag_redis_cannot_count_fails_rather_than_guessing(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    entry_ids = await fill_stream(redis_client, "orders", 5)
    await redis_client.xgroup_create("orders", "workers", id="0")
    await redis_client.xreadgroup("workers", "w1", {"orders": ">"}, count=2)
    await redis_client.xdel("orders", entry_ids[3])  # Redis now reports the lag as null
    source = redis_source(redis_client, manual_clock, mode="lag", keys=["orders"], group="workers")

    with pytest.raises(SourceError, match="Redis cannot count the lag of group 'workers'"):
        await source.read()


async def test_lag_of_an_unknown_group_fails(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    await fill_stream(redis_client, "orders", 1)
    await redis_client.xgroup_create("orders", "workers", id="0")
    source = redis_source(redis_client, manual_clock, mode="lag", keys=["orders"], group="nope")

    with pytest.raises(SourceError, match="stream 'orders' has no consumer group 'nope'"):
        await source.read()


async def test_info_reads_a_numeric_field(redis_client: Client, manual_clock: ManualClock) -> None:
    source = redis_source(redis_client, manual_clock, mode="info", field="connected_clients")

    value = await read_value(source)

    assert value >= 1
    assert value == (await redis_client.info("clients"))["connected_clients"]


async def test_used_memory_percent_is_used_over_maxmemory(
    redis_client: Client, manual_clock: ManualClock
) -> None:
    used = (await redis_client.info("memory"))["used_memory"]
    await redis_client.config_set("maxmemory", str(used * 4))  # about a quarter is in use
    try:
        source = redis_source(redis_client, manual_clock, mode="info", field="used_memory_percent")
        assert await read_value(source) == pytest.approx(25, abs=5)
    finally:
        await redis_client.config_set("maxmemory", "0")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        pytest.param("used_memory_percent", "maxmemory is 0 \\(unlimited\\)", id="no maxmemory"),
        pytest.param("used_memory_human", "'used_memory_human' is not a number", id="text"),
        pytest.param("no_such_field", "INFO has no field 'no_such_field'", id="missing"),
    ],
)
async def test_info_fields_that_are_not_a_number_fail(
    redis_client: Client, manual_clock: ManualClock, field: str, message: str
) -> None:
    source = redis_source(redis_client, manual_clock, mode="info", field=field)

    with pytest.raises(SourceError, match=message):
        await source.read()


async def test_an_outage_is_a_source_error_and_reads_recover_after_it(
    redis_server: RedisServer, manual_clock: ManualClock
) -> None:
    client = Client.from_url(redis_server.url, retry=Retry(NoBackoff(), retries=0))
    source = redis_source(client, manual_clock, mode="list_length", keys=["jobs"])
    try:
        redis_server.stop()
        with pytest.raises(SourceError, match="redis list_length of jobs: Error"):
            await source.read()
        redis_server.start()
        assert await read_value(source) == 0
    finally:
        await client.aclose()


async def test_a_source_with_its_own_url_reads_the_client_built_for_it(
    redis_server: RedisServer, redis_client: Client, manual_clock: ManualClock
) -> None:
    url = redis_server.url.replace("/0", "/1")
    own = Client.from_url(url)
    try:
        await own.flushdb()
        await own.rpush("jobs", 1, 2)
        await redis_client.rpush("jobs", 1)
        config = RedisSourceConfig(
            kind="redis", name="queue", mode="list_length", keys=["jobs"], url=url
        )
        ctx = BuildContext(
            clock=manual_clock, redis=redis_client, extras={"redis_clients": {url: own}}
        )

        assert await read_value(PLUGIN.build(config, ctx)) == 2
    finally:
        await own.aclose()


def test_build_without_a_redis_client_fails() -> None:
    config = RedisSourceConfig(kind="redis", name="queue", mode="list_length", keys=["q"])

    with pytest.raises(ValueError, match=r"needs the daemon's Redis: configure \[redis\]"):
        PLUGIN.build(config, BuildContext())


def test_a_source_with_its_own_url_never_falls_back_to_the_daemons_redis(
    redis_client: Client,
) -> None:
    config = RedisSourceConfig(
        kind="redis", name="queue", mode="list_length", keys=["q"], url="redis://other:6379/0"
    )

    with pytest.raises(ValueError, match="no client was built for its url"):
        PLUGIN.build(config, BuildContext(redis=redis_client))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"mode": "list_length"}, "mode 'list_length' needs keys", id="no keys"),
        pytest.param(
            {"mode": "info", "field": "x", "keys": ["q"]},
            "mode 'info' .* remove keys",
            id="info keys",
        ),
        pytest.param({"mode": "lag", "keys": ["s"]}, "group is required", id="lag without group"),
        pytest.param(
            {"mode": "list_length", "keys": ["q"], "group": "g"}, "only by them", id="stray group"
        ),
        pytest.param({"mode": "info"}, "field is required", id="info without field"),
        pytest.param({"mode": "queue_depth", "keys": ["q"]}, "list_length", id="unknown mode"),
        pytest.param(
            {"mode": "list_length", "keys": ["q"], "url": "redis://:hunter2@host:6379/0"},
            "do not put a password in config.toml",
            id="password in url",
        ),
        pytest.param(
            {"mode": "list_length", "keys": ["q"], "url": "http://host"},
            "must start with redis://",
            id="not a redis url",
        ),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedisSourceConfig(kind="redis", name="queue", **keys)
