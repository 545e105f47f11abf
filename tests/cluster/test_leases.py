"""The cluster's Lua scripts and lease cycle against a real redis-server.

Short leases (1 s) keep the expiry cases fast; everything else is driven cycle by cycle
(``join()``), never by waiting for the background loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio

from scalerd.cluster import ClusterMember, rendezvous_owner, shard_of, shards_of
from scalerd.daemon.state import RedisStateStore, StoredTarget
from scalerd.errors import LeaseLost
from scalerd.plugins import CURRENT_FENCE
from scalerd.settings import ClusterSettings

SHARDS = 16


def settings(ttl_s: float = 1.0, shards: int = SHARDS) -> ClusterSettings:
    return ClusterSettings(name="t", lease_ttl=timedelta(seconds=ttl_s), shards=shards)


def member(client: redis.asyncio.Redis, instance: str, **keys: object) -> ClusterMember:
    return ClusterMember(client, settings(), instance=instance, **keys)  # type: ignore[arg-type]


# --- hashing -------------------------------------------------------------------------------


def test_a_target_always_hashes_to_the_same_shard() -> None:
    # a fixed value: a change of hash function would move every target at an upgrade
    assert shard_of("web", 64) == shard_of("web", 64) == 2
    assert len({shard_of(f"t{i}", 64) for i in range(1000)}) == 64


def test_rendezvous_spreads_shards_and_a_new_member_moves_only_its_own() -> None:
    two = {s: rendezvous_owner(s, ["a", "b"]) for s in range(300)}
    three = {s: rendezvous_owner(s, ["a", "b", "c"]) for s in range(300)}
    counts = Counter(three.values())
    assert all(80 <= counts[m] <= 120 for m in "abc"), counts  # about a third each
    moved = [s for s in range(300) if two[s] != three[s]]
    assert all(three[s] == "c" for s in moved)  # only to the newcomer, none between a and b
    assert shards_of("c", ["a", "b"], 300) == frozenset(moved)


# --- leases --------------------------------------------------------------------------------


async def test_a_lone_member_holds_every_shard(redis_client: redis.asyncio.Redis) -> None:
    a = member(redis_client, "a")
    await a.join()
    assert set(a.held) == set(range(SHARDS))
    assert {lease.token for lease in a.held.values()} == {1}  # the first acquisition of each
    assert a.owner_of("web") == "a" and a.fence("web") is not None
    await a.join()  # a renewal keeps the token
    assert {lease.token for lease in a.held.values()} == {1}


async def test_a_joining_member_gets_its_share_handed_over(
    redis_client: redis.asyncio.Redis,
) -> None:
    handed: list[frozenset[int]] = []
    gained: list[frozenset[int]] = []

    async def hand_off(shards: frozenset[int]) -> None:
        handed.append(shards)

    async def gain(shards: frozenset[int]) -> None:
        gained.append(shards)

    a = member(redis_client, "a", on_handing_off=hand_off)
    b = member(redis_client, "b", on_gained=gain)
    await a.join()
    await b.join()  # b sees both members, wants its share, finds it held by a
    assert b.held == {}
    await a.join()  # a sees b and hands back b's share
    await b.join()
    assert handed == [shards_of("b", ["a", "b"], SHARDS)]
    assert set(b.held) == shards_of("b", ["a", "b"], SHARDS) == gained[0]
    assert set(a.held) | set(b.held) == set(range(SHARDS)) and not set(a.held) & set(b.held)
    # the new owner's tokens are larger than any token the old owner held
    assert all(lease.token == 2 for lease in b.held.values())
    assert b.takeovers == len(b.held)
    await a.join()  # the next cycle shows a who holds what it handed over
    assert a.owner_of(next(t for t in (f"t{i}" for i in range(99)) if b.holds(t))) == "b"


async def test_leave_frees_every_lease_at_once(redis_client: redis.asyncio.Redis) -> None:
    a, b = member(redis_client, "a"), member(redis_client, "b")
    await a.join()
    await b.join()
    await a.leave()
    await b.join()  # no waiting for expiry: a is no longer a member, its leases are free
    assert set(b.held) == set(range(SHARDS))


async def test_a_dead_members_leases_are_taken_only_after_they_expire(
    redis_client: redis.asyncio.Redis,
) -> None:
    lost: list[frozenset[int]] = []

    async def lose(shards: frozenset[int]) -> None:
        lost.append(shards)

    a = member(redis_client, "a", on_lost=lose)
    await a.join()
    b = member(redis_client, "b")
    await b.join()
    assert b.held == {}  # a is live and holds everything
    await asyncio.sleep(1.1)  # a stops heartbeating (paused): its heartbeat and leases expire
    assert a.fence("web") is None and a.holds("web")  # expired here first, still "its" shard
    await b.join()
    assert set(b.held) == set(range(SHARDS))
    assert {lease.token for lease in b.held.values()} == {2}
    await a.join()  # a comes back: it sees b's leases and gives up its claim
    assert set(a.held) == shards_of("a", ["a", "b"], SHARDS) - set(b.held) == set()
    # the shards a still wanted are lost to b; the rest it handed off (also stopping them)
    assert lost == [shards_of("a", ["a", "b"], SHARDS)]


async def test_a_fenced_save_is_refused_once_a_newer_owner_holds_the_lease(
    redis_client: redis.asyncio.Redis,
) -> None:
    store = RedisStateStore(redis_client, fenced=True)
    a = member(redis_client, "a")
    await a.join()
    old_fence = a.fence("web")
    token = CURRENT_FENCE.set(old_fence)
    try:
        await store.save("web", StoredTarget(last_record_id="by-a"))
    finally:
        CURRENT_FENCE.reset(token)
    with pytest.raises(LeaseLost, match="no lease held"):  # a fenced store needs a fence
        await store.save("web", StoredTarget(last_record_id="unfenced"))

    await asyncio.sleep(1.1)  # a is paused past its lease; b takes over
    b = member(redis_client, "b")
    await b.join()
    new_fence = b.fence("web")
    assert old_fence is not None and new_fence is not None
    assert new_fence.token > old_fence.token
    token = CURRENT_FENCE.set(old_fence)
    try:  # a wakes up and tries to save under its old token: refused, nothing written
        with pytest.raises(LeaseLost, match=f"fencing token {old_fence.token}"):
            await store.save_many({"web": StoredTarget(last_record_id="late-by-a")})
    finally:
        CURRENT_FENCE.reset(token)
    assert (await store.load(["web"]))["web"].last_record_id == "by-a"


async def test_an_earlier_life_of_the_same_instance_gets_a_new_token(
    redis_client: redis.asyncio.Redis,
) -> None:
    first = member(redis_client, "fixed-id")
    await first.join()
    second = member(redis_client, "fixed-id")  # restarted with an overridden instance id
    await second.join()
    assert {lease.token for lease in second.held.values()} == {2}
    assert first.held and await _refused(redis_client, first)


async def _refused(client: redis.asyncio.Redis, stale: ClusterMember) -> bool:
    token = CURRENT_FENCE.set(stale.fence("web"))
    try:
        await RedisStateStore(client, fenced=True).save("web", StoredTarget())
    except LeaseLost:
        return True
    finally:
        CURRENT_FENCE.reset(token)
    return False


async def test_read_shows_members_and_lease_ages(redis_client: redis.asyncio.Redis) -> None:
    a = member(redis_client, "a")
    await a.join()
    seen = await member(redis_client, "observer").read()
    assert [m["instance"] for m in seen["members"]] == ["a"]  # an observer does not join
    (a_seen,) = seen["members"]
    assert a_seen["live"] and 0 <= a_seen["heartbeat_age_s"] < 1
    assert a_seen["shards"] == list(range(SHARDS)) and seen["free_shards"] == []
    assert 0 <= a_seen["oldest_lease_age_s"] < 1


async def test_renewal_failures_are_counted_and_the_leases_run_out_here(
    redis_client: redis.asyncio.Redis, redis_server: Any
) -> None:
    failures: list[int] = []
    a = ClusterMember(
        redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=0.2),
        settings(ttl_s=0.6),
        instance="a",
        on_renew_failed=lambda: failures.append(1),
    )
    await a.join()
    assert a.fence("web") is not None
    redis_server.stop()
    try:
        running = asyncio.create_task(a.run())
        await asyncio.sleep(0.8)
        assert a.fence("web") is None and a.holds("web")  # ran out, still its shard
        assert len(failures) >= 2 and a.renew_failures == len(failures)
        a.stop()
        await running
    finally:
        redis_server.start()
