"""Durable target memory: an exact JSON codec, an atomic file store, a Redis store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio
from crash import kill_9_after

from scalerd.core.model import (
    BreakerState,
    Capacity,
    Controls,
    Decision,
    DemandHistory,
    Recommendation,
    Sample,
    ScaleEvent,
    TargetState,
)
from scalerd.daemon.sqlite_state import SqliteStateStore
from scalerd.daemon.state import (
    FileStateStore,
    Pending,
    RedisStateStore,
    StateError,
    StateStore,
    StoredTarget,
    decode_stored,
    encode_stored,
)
from scalerd.daemon.state_codec import FORMAT, decode_state, encode_state

if TYPE_CHECKING:
    from tests.conftest import RedisServer

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def rich_state(failures: int = 2) -> TargetState:
    """Every field set, none to its default; times with microseconds."""
    return TargetState(
        samples={
            "cpu": (Sample(T0, 71.5), Sample(T0 + timedelta(seconds=15), 0.1 + 0.2)),
            "queue depth": (Sample(T0 - timedelta(minutes=1), 1e-9),),
        },
        recommendations=(Recommendation(T0, 6), Recommendation(T0 + timedelta(seconds=15), 4)),
        events=(ScaleEvent(T0 - timedelta(minutes=5), 2, 4), ScaleEvent(T0, 4, 6)),
        scale_out_cooldown_until=T0 + timedelta(minutes=3),
        scale_in_cooldown_until=T0 + timedelta(minutes=5, microseconds=7),
        scale_out_base=4,
        consecutive_failures=failures,
        last_active_at=T0 - timedelta(seconds=30),
        controls=Controls(
            pause="scale_in",
            pause_until=T0 + timedelta(hours=1),
            override=8,
            override_until=T0 + timedelta(hours=2),
        ),
        ready_history=((T0 - timedelta(minutes=2), 3), (T0, 4)),
        demand_history=DemandHistory(5_905_000, (12.5, None, 0.1 + 0.2)),
        breakers={
            "orders-db": BreakerState(True, T0 - timedelta(minutes=4), T0, 0.1 + 0.87),
            "llm-api": BreakerState(False, T0 - timedelta(hours=1)),
        },
    )


def stored(failures: int = 2) -> StoredTarget:
    """A target with a change in flight, as the tick writes it before calling the actuator."""
    pending = Pending(T0, before=4, after=6, cooldown_s=300.0)
    return StoredTarget(
        rich_state(failures), pending, last_record_id="01a202b2c57b-7373528799d15ea0"
    )


# --- the codec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(TargetState(), id="empty"),
        pytest.param(rich_state(), id="every-field"),
    ],
)
def test_codec_round_trips_exactly_through_json_text(state: TargetState) -> None:
    text = json.dumps(encode_state(state))
    assert decode_state(json.loads(text)) == state


def test_codec_has_a_key_for_every_target_state_field() -> None:
    """Fails when TargetState grows a field the codec does not store yet."""
    assert set(encode_state(TargetState())) == {field.name for field in fields(TargetState)}


@pytest.mark.parametrize(
    "kept",
    [
        pytest.param(StoredTarget(), id="fresh"),
        pytest.param(stored(), id="change-in-flight"),
    ],
)
def test_stored_target_round_trips_exactly_through_json_text(kept: StoredTarget) -> None:
    assert decode_stored(json.loads(json.dumps(encode_stored(kept)))) == kept


def test_pending_is_the_change_a_decision_asks_for() -> None:
    decision = Decision(
        target="web",
        at=T0,
        current=Capacity(provisioned=4, ready=3),
        recommended=8,
        desired=6,
        steps=(),
        inputs=(),
        rules=(),
        not_scaled_reason=None,
        cooldown=timedelta(minutes=5),
    )
    assert Pending.of(decision, T0) == Pending(T0, before=4, after=6, cooldown_s=300.0)


def test_times_come_back_as_the_same_instant_in_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    decoded = decode_state(encode_state(TargetState(last_active_at=local)))
    assert decoded.last_active_at == T0
    assert decoded.last_active_at is not None and decoded.last_active_at.tzinfo == UTC


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        encode_state(TargetState(last_active_at=datetime(2026, 1, 1)))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param(
            encode_state(TargetState()) | {"events": [{"at": "2026-01-01T00:00:00"}]}, id="naive"
        ),
        pytest.param(
            encode_state(TargetState()) | {"controls": {"pause": "sometimes"}}, id="pause"
        ),
    ],
)
def test_codec_refuses_what_it_did_not_write(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        decode_state(data)


# --- both stores -------------------------------------------------------------------------


@pytest.fixture(params=["file", "sqlite", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[StateStore, StateStore]]:
    """Two stores over the same storage: one that writes, one that a restart would open."""
    if request.param == "file":
        path = tmp_path / "state" / "state.json"
        yield FileStateStore(path), FileStateStore(path)
        return
    if request.param == "sqlite":
        path = tmp_path / "state" / "state.db"
        yield SqliteStateStore(path), SqliteStateStore(path)
        return
    if not redis_server.running:  # stopped by a failed outage test
        redis_server.start()
    client = redis.asyncio.Redis.from_url(redis_server.url)
    await client.flushdb()
    yield RedisStateStore(client), RedisStateStore(client)
    await client.aclose()


async def test_every_target_survives_a_restart(stores: tuple[StateStore, StateStore]) -> None:
    before, after = stores
    assert await before.load_all() == {}
    await before.save("web", stored())
    await before.save("orders-db", StoredTarget(TargetState(consecutive_failures=1)))
    await before.save("web", stored(failures=3))  # the latest save wins
    await before.aclose()
    assert await after.load_all() == {
        "web": stored(failures=3),
        "orders-db": StoredTarget(TargetState(consecutive_failures=1)),
    }
    await after.aclose()


# --- the file store ----------------------------------------------------------------------


async def test_file_is_one_versioned_document(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    await FileStateStore(path).save("web", stored())
    document = json.loads(path.read_text())
    assert document == {"format": FORMAT, "targets": {"web": encode_stored(stored())}}


async def test_a_save_before_load_all_keeps_the_other_targets(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    await FileStateStore(path).save("web", stored())
    await FileStateStore(path).save("api", StoredTarget())
    assert set(await FileStateStore(path).load_all()) == {"web", "api"}


async def test_a_temporary_file_left_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    await FileStateStore(path).save("web", stored())
    leftover = tmp_path / ".state.json.tmp"
    leftover.write_text('{"format": 1, "targets": {"web": {"sta')  # killed mid-write

    store = FileStateStore(path)
    assert await store.load_all() == {"web": stored()}
    await store.save("web", stored(failures=5))
    assert not leftover.exists()  # the next save wrote it whole and renamed it
    assert await FileStateStore(path).load_all() == {"web": stored(failures=5)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{not json", "not a state document", id="not-json"),
        pytest.param('{"format": 99, "targets": {}}', "state format 99", id="newer-format"),
        pytest.param('{"format": 1, "targets": {"web": {}}}', "web: not a stored", id="bad-target"),
    ],
)
async def test_an_unreadable_file_is_an_error_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateError, match=message) as raised:
        await FileStateStore(path).load_all()
    assert str(path) in str(raised.value)


CHILD = """
import asyncio, sys
from scalerd.daemon.state import FileStateStore
from tests.daemon.test_state import stored

async def main() -> None:
    store = FileStateStore(sys.argv[1])
    failures = 0
    while True:
        failures += 1
        await store.save(f"target-{failures % 7}", stored(failures))
        print(failures, flush=True)

asyncio.run(main())
"""


def test_kill_9_leaves_the_old_document_or_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    before, after = kill_9_after(CHILD, str(path), 50)
    saved = max(map(int, before + after))

    targets = asyncio.run(FileStateStore(path).load_all())
    newest = max(kept.state.consecutive_failures for kept in targets.values())
    # every acknowledged save is there; one more may have landed before the kill
    assert newest in (saved, saved + 1)
    assert targets[f"target-{newest % 7}"] == stored(newest)


# --- the Redis store ---------------------------------------------------------------------


async def test_redis_keeps_one_key_per_target_under_the_prefix(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = RedisStateStore(redis_client, "tenant-a:")
    await store.save("web", stored())
    assert await redis_client.keys("tenant-a:*") == [b"tenant-a:state:web"]
    assert store.key("web") == "tenant-a:state:web"


async def test_redis_prefixes_are_matched_literally(redis_client: redis.asyncio.Redis) -> None:
    """A glob character in a prefix must not pull in another deployment's targets."""
    await RedisStateStore(redis_client, "team[ab]*:").save("web", stored())
    await RedisStateStore(redis_client, "teama-x:").save("api", StoredTarget())
    assert set(await RedisStateStore(redis_client, "team[ab]*:").load_all()) == {"web"}
    assert set(await RedisStateStore(redis_client, "teama-x:").load_all()) == {"api"}


async def test_redis_store_works_with_a_decoding_client(redis_server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        await client.flushdb()
        await RedisStateStore(client).save("web", stored())
        assert await RedisStateStore(client).load_all() == {"web": stored()}
    finally:
        await client.aclose()


async def test_an_unreadable_redis_value_is_an_error_naming_the_key(
    redis_client: redis.asyncio.Redis,
) -> None:
    await redis_client.set("scalerd:state:web", json.dumps({"format": 99, "target": {}}))
    with pytest.raises(StateError, match="scalerd:state:web: state format 99"):
        await RedisStateStore(redis_client).load_all()


def test_a_document_from_before_predictive_floors_decodes_with_an_empty_history() -> None:
    data = encode_state(rich_state())
    del data["demand_history"]
    assert decode_state(data) == replace(rich_state(), demand_history=DemandHistory())


def test_a_document_from_before_circuit_breakers_decodes_with_none() -> None:
    data = encode_state(rich_state())
    del data["breakers"]
    assert decode_state(data) == replace(rich_state(), breakers={})


def test_a_breaker_state_that_is_not_one_is_refused() -> None:
    data = encode_state(rich_state())
    data["breakers"]["orders-db"]["open"] = "yes"
    with pytest.raises(ValueError, match="breaker 'open' must be true or false"):
        decode_state(data)
