"""The Redis stream audit sink and reader, against a real ``redis-server``.

The outage tests stop the server for real: records must spool, and reach the stream once
each, in order, when it is back, even if scalerd dies in the middle of the copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
import redis.asyncio
from redis.asyncio.client import Pipeline

from scalerd.audit import (
    AuditRecord,
    RedisStreamSink,
    StreamAuditLog,
    follow_stream,
    last_record,
    read_stream,
    readers,
)

from .build import T0, records

if TYPE_CHECKING:
    from tests.conftest import RedisServer

Client = redis.asyncio.Redis
STREAM = "scalerd:audit"


class Crash(Exception):
    """Stands for scalerd being killed at this point."""


def sink_for(client: Client, tmp_path: Path, **options: Any) -> RedisStreamSink:
    spool = tmp_path / "state" / "audit-spool.jsonl"
    return RedisStreamSink(client, STREAM, maxlen=10_000, spool_path=spool, **options)


async def in_stream(client: Client) -> list[str]:
    """The record ids in the stream, in stream order, duplicates included."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(STREAM))
    return [AuditRecord.from_json(fields[b"record"]).id for _, fields in entries]


async def emit_all(sink: RedisStreamSink, made: list[AuditRecord]) -> None:
    for each in made:
        await sink.emit(each)


async def spooled_during_outage(
    server: RedisServer, client: Client, tmp_path: Path, made: list[AuditRecord]
) -> None:
    """``made`` written while Redis was down, by a scalerd that then died."""
    server.stop()
    await emit_all(sink_for(client, tmp_path, retry_interval=3600), made)
    server.start()


async def test_records_go_straight_to_the_stream(audit_redis: Client, tmp_path: Path) -> None:
    made = records(3)
    sink = sink_for(audit_redis, tmp_path)
    await emit_all(sink, made)
    await sink.aclose()
    assert await in_stream(audit_redis) == [each.id for each in made]
    assert sink.backlog() == 0
    assert not sink.spool_path.exists()


async def test_an_outage_spools_and_the_next_emit_copies_in_order_once(
    redis_server: RedisServer, audit_redis: Client, tmp_path: Path
) -> None:
    made = records(6)
    sink = sink_for(audit_redis, tmp_path, retry_interval=0)
    redis_server.stop()
    await emit_all(sink, made[:3])
    assert sink.backlog() == 3
    await sink.flush()  # still down: nothing raised, nothing lost
    assert sink.backlog() == 3
    assert [
        AuditRecord.from_json(line) for line in sink.spool_path.read_text().splitlines()
    ] == made[:3]

    redis_server.start()
    await sink.emit(made[3])  # the spool goes first, this record after it
    assert sink.backlog() == 0
    assert not sink.spool_path.exists()
    await emit_all(sink, made[4:])  # and from now on, straight to the stream
    await sink.aclose()
    assert await in_stream(audit_redis) == [each.id for each in made]


async def test_no_redis_call_while_backing_off(
    redis_server: RedisServer,
    audit_redis: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands: list[str] = []
    execute: Callable[..., Awaitable[Any]] = audit_redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await execute(*args, **options)

    monkeypatch.setattr(audit_redis, "execute_command", counting)
    sink = sink_for(audit_redis, tmp_path, retry_interval=3600)
    redis_server.stop()
    await emit_all(sink, records(5))
    assert commands == ["XADD"]  # the first record found Redis down; the rest did not ask
    assert sink.backlog() == 5


async def test_start_copies_what_an_earlier_run_spooled_and_retries_in_the_background(
    redis_server: RedisServer, audit_redis: Client, tmp_path: Path
) -> None:
    made = records(4)
    await spooled_during_outage(redis_server, audit_redis, tmp_path, made[:2])
    redis_server.stop()
    sink = sink_for(audit_redis, tmp_path, retry_interval=0.01)
    await sink.start()
    await emit_all(sink, made[2:])  # joins the spool: Redis is still down
    assert sink.backlog() == 4

    redis_server.start()
    await until(lambda: sink.backlog() == 0 and not sink.spool_path.exists())
    await sink.aclose()
    assert await in_stream(audit_redis) == [each.id for each in made]


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), seconds)


async def test_a_crash_after_the_copy_before_the_spool_is_deleted_adds_nothing_twice(
    redis_server: RedisServer,
    audit_redis: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = records(5)
    await spooled_during_outage(redis_server, audit_redis, tmp_path, made)

    def crash(path: Path) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr("scalerd.audit._jsonl.remove", crash)
        with pytest.raises(Crash):
            await sink_for(audit_redis, tmp_path).flush()
    assert await in_stream(audit_redis) == [each.id for each in made]

    restarted = sink_for(audit_redis, tmp_path)
    await restarted.flush()
    await restarted.aclose()
    assert await in_stream(audit_redis) == [each.id for each in made]
    assert not restarted.spool_path.exists()
    assert await audit_redis.keys(f"{STREAM}:spool:*") == []


@pytest.mark.parametrize(
    "applied",
    [
        pytest.param(True, id="killed-after-redis-applied-the-second-batch"),
        pytest.param(False, id="killed-before-the-second-batch"),
    ],
)
async def test_a_crash_between_batches_is_resumed_without_duplicates(
    applied: bool,
    redis_server: RedisServer,
    audit_redis: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = records(5)
    await spooled_during_outage(redis_server, audit_redis, tmp_path, made)
    real_execute = Pipeline.execute
    batches = 0

    async def dies_at_the_second_batch(pipe: Pipeline, raise_on_error: bool = True) -> Any:
        nonlocal batches
        batches += 1
        if batches < 2:
            return await real_execute(pipe, raise_on_error)
        if applied:
            await real_execute(pipe, raise_on_error)
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(Pipeline, "execute", dies_at_the_second_batch)
        with pytest.raises(Crash):
            await sink_for(audit_redis, tmp_path, batch=2).flush()
    copied = 4 if applied else 2
    assert await in_stream(audit_redis) == [each.id for each in made[:copied]]

    restarted = sink_for(audit_redis, tmp_path, batch=2)
    await restarted.flush()
    await restarted.aclose()
    assert await in_stream(audit_redis) == [each.id for each in made]


async def test_the_stream_is_trimmed_approximately(audit_redis: Client, tmp_path: Path) -> None:
    """``MAXLEN ~`` lets Redis drop only whole stream nodes, so the length stays between
    ``maxlen`` and ``maxlen`` plus one node; an exact trim would hold it at ``maxlen``."""
    config = await audit_redis.config_get("stream-node-max-entries")
    node = int(cast(bytes, config["stream-node-max-entries"]))
    maxlen = node
    made = records(3 * node + node // 2)
    sink = RedisStreamSink(audit_redis, STREAM, maxlen=maxlen, spool_path=tmp_path / "spool.jsonl")
    await emit_all(sink, made)
    await sink.aclose()
    length = await audit_redis.xlen(STREAM)
    assert maxlen < length < maxlen + node
    assert (await in_stream(audit_redis))[-1] == made[-1].id


async def test_reader_filters_pages_and_drops_duplicates(
    audit_redis: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "_PAGE", 3)  # several pages from a few records
    web = records(5, target="web")
    api = records(5, target="api", start=T0 + timedelta(seconds=5))
    interleaved = [each for pair in zip(web, api, strict=True) for each in pair]
    sink = sink_for(audit_redis, tmp_path)
    await emit_all(sink, interleaved)
    await audit_redis.xadd(STREAM, {"record": web[4].to_json()})  # a retried XADD
    await audit_redis.xadd(STREAM, {"other": "not a record"})

    assert await read_stream(audit_redis, STREAM) == interleaved
    assert await read_stream(audit_redis, STREAM, target="web") == web
    assert await read_stream(audit_redis, STREAM, target="api", limit=2) == api[-2:]
    assert await read_stream(audit_redis, STREAM, since=web[3].ts, target="web") == web[3:]
    assert await last_record(StreamAuditLog(audit_redis, STREAM), "web") == web[-1]


async def test_a_record_id_written_twice_is_read_once_the_first_copy(
    audit_redis: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same id in the stream twice with different contents (written again at a
    restart): the copy written first is kept, across pages."""
    monkeypatch.setattr(readers, "_PAGE", 2)
    made = records(4)
    again = replace(made[1], notes=("settled at restart",))
    await emit_all(sink_for(audit_redis, tmp_path), [*made[:3], again, made[3]])
    assert len(await in_stream(audit_redis)) == 5
    assert await read_stream(audit_redis, STREAM) == made
    assert await read_stream(audit_redis, STREAM, limit=3) == made[1:]
    assert await read_stream(audit_redis, STREAM, since=made[1].ts) == made[1:]


async def test_records_copied_late_from_a_spool_take_their_place_in_time(
    audit_redis: Client, tmp_path: Path
) -> None:
    """Another replica's spool reaches the stream after newer records of other targets."""
    web = records(2, target="web")
    late = records(1, target="api", start=T0 + timedelta(seconds=1))
    await emit_all(sink_for(audit_redis, tmp_path), web + late)
    assert await read_stream(audit_redis, STREAM) == [web[0], late[0], web[1]]


async def test_reader_works_with_a_decoding_client(
    redis_server: RedisServer, audit_redis: Client, tmp_path: Path
) -> None:
    made = records(3)
    await emit_all(sink_for(audit_redis, tmp_path), made)
    decoding = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert await StreamAuditLog(decoding, STREAM).read() == made
    finally:
        await decoding.aclose()


async def blocked_in_xread(client: Client) -> bool:
    return any(entry.get("cmd") == "xread" for entry in await client.client_list())


async def next_when_blocked(
    following: AsyncIterator[AuditRecord], client: Client, then: Callable[[], Awaitable[None]]
) -> AuditRecord:
    """Start waiting for the next record, and once the reader waits in XREAD, run ``then``."""
    waiting = asyncio.ensure_future(anext(following))
    while not await blocked_in_xread(client):
        await asyncio.sleep(0.01)
    await then()
    return await asyncio.wait_for(waiting, 10)


async def test_follow_yields_new_records_of_the_target(audit_redis: Client, tmp_path: Path) -> None:
    before = records(1, target="web")
    web, api = records(1, target="web", start=T0), records(1, target="api", start=T0)
    sink = sink_for(audit_redis, tmp_path)
    await emit_all(sink, before)
    following = follow_stream(audit_redis, STREAM, target="web", block=0.2)
    try:
        record = await next_when_blocked(following, audit_redis, lambda: emit_all(sink, api + web))
    finally:
        await following.aclose()  # type: ignore[attr-defined]
    assert record == web[0]
