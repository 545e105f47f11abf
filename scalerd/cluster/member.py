"""One replica's membership and shard leases: heartbeat, claim, renew, hand back.

Every ``renew_every`` the member (1) heartbeats into the members set and reads who is
live, (2) computes the shards it should hold by rendezvous hashing over the live members,
(3) hands back the shards it holds that another live member should now hold (after the
daemon has stopped their targets' evaluations) and (4) claims or renews the rest — steps
(1) and (4) one Lua script each. While it wants a shard someone else still holds (a
hand-over under way, a dead member's lease not yet expired) it retries every
``FAST_RETRY_S``, so a freed shard is taken within a fraction of a second.

A lease is valid locally until ``lease_ttl`` after the renewal was *sent* (monotonic
clock), which is never later than Redis expires it; so a replica paused past its lease
(GC, SIGSTOP, a partition) knows it lost the lease before anyone else can take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio
import redis.exceptions
import structlog

from ..plugins import Fence
from ..settings import ClusterSettings
from .scripts import HEARTBEAT, SYNC_LEASES
from .shards import shard_of, shards_of

__all__ = ["ClusterMember", "Lease", "LeaseView", "default_instance"]

log = structlog.get_logger("scalerd.cluster")

# while a wanted shard is held by someone else, look again this often
FAST_RETRY_S = 0.1

ShardsCallback = Callable[[frozenset[int]], Awaitable[None]]


def default_instance(prefix: str | None = None) -> str:
    """``{host}-{pid}-{random}``: unique per process life, readable in an audit record."""
    return f"{prefix or socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A shard lease this replica holds: its token and until when it is valid here."""

    shard: int
    token: int
    valid_until: float  # time.monotonic()

    def remaining(self) -> float:
        return self.valid_until - time.monotonic()


@dataclass(frozen=True, slots=True)
class LeaseView:
    """A shard's lease as last read from Redis (any holder)."""

    shard: int
    holder: str | None
    token: int | None
    ttl_ms: int | None


async def _noop(shards: frozenset[int]) -> None:
    return None


class ClusterMember:
    """One replica in the cluster ``settings.name`` on ``client``.

    The daemon passes three callbacks, each given a set of shards: ``on_gained`` after a
    lease was acquired (restore the targets' state, start their loops); ``on_handing_off``
    before a lease is released to the member that should now hold it, and ``on_lost`` when
    Redis shows another holder (both: stop the loops, letting an evaluation finish).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        settings: ClusterSettings,
        *,
        key_prefix: str = "scalerd:",
        instance: str | None = None,
        on_gained: ShardsCallback = _noop,
        on_handing_off: ShardsCallback = _noop,
        on_lost: ShardsCallback = _noop,
        on_renew_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self._redis = client
        self.settings = settings
        self.instance = instance or settings.instance or default_instance()
        self.shards = settings.shards
        self.ttl_ms = int(settings.lease_ttl.total_seconds() * 1000)
        self.renew_s = settings.renew_period.total_seconds()
        self.prefix = f"{key_prefix}cluster:{settings.name}:"
        self._on_gained, self._on_handing_off, self._on_lost = on_gained, on_handing_off, on_lost
        self._on_renew_failed = on_renew_failed
        self._heartbeat = client.register_script(HEARTBEAT)
        self._sync = client.register_script(SYNC_LEASES)
        self.held: dict[int, Lease] = {}
        self.members: dict[str, int] = {}  # live instance -> heartbeat expiry (Redis ms)
        self.views: dict[int, LeaseView] = {}
        self._last_holder: dict[int, str] = {}  # the last holder seen of each shard
        self.takeovers = 0  # leases acquired that another instance was last seen holding
        self.renew_failures = 0
        self.last_sync: float | None = None  # time.monotonic() of the last good cycle
        self._stopping = asyncio.Event()
        self._redis_now_ms, self._redis_now_read_at = 0, time.monotonic()

    # --- the API the rest of scalerd uses -------------------------------------------------

    def lease_key(self, shard: int) -> str:
        return f"{self.prefix}lease:{shard}"

    def shard_of(self, target: str) -> int:
        return shard_of(target, self.shards)

    def fence(self, target: str) -> Fence | None:
        """The fence to act on ``target`` under, if this replica holds a valid lease."""
        lease = self.lease(target)
        if lease is None:
            return None
        return Fence(lease.token, self.instance, self.lease_key(lease.shard))

    def lease(self, target: str) -> Lease | None:
        """The lease of ``target``'s shard, if held and not expired here."""
        lease = self.held.get(self.shard_of(target))
        return lease if lease is not None and lease.remaining() > 0 else None

    def holds(self, target: str) -> bool:
        """Whether this replica considers itself the owner (even if the lease has run out
        while Redis is unreachable: its loops keep auditing ``skipped``)."""
        return self.shard_of(target) in self.held

    def owner_of(self, target: str) -> str | None:
        """The instance holding ``target``'s shard as last seen (None: free or unknown)."""
        shard = self.shard_of(target)
        if shard in self.held:
            return self.instance
        view = self.views.get(shard)
        return view.holder if view is not None else None

    def channel_of(self, instance: str) -> str:
        """The pub/sub channel ``instance`` listens on for work forwarded to it."""
        return f"{self.prefix}events:{instance}"

    @property
    def channel(self) -> str:
        return self.channel_of(self.instance)

    # --- running --------------------------------------------------------------------------

    async def join(self) -> None:
        """Heartbeat and claim what this replica should hold, once; raises if Redis is
        unreachable."""
        await self._cycle()

    async def run(self) -> None:
        """Cycle until :meth:`leave`; a failed cycle is counted and retried."""
        while not self._stopping.is_set():
            delay = self.renew_s
            try:
                if await self._cycle():
                    delay = min(delay, FAST_RETRY_S)
            except (redis.exceptions.RedisError, OSError) as problem:
                self.renew_failures += 1
                self._on_renew_failed()
                log.warning(
                    "lease renewal failed",
                    instance=self.instance,
                    error=f"{type(problem).__name__}: {problem}",
                    held=len(self.held),
                    expired=sum(1 for lease in self.held.values() if lease.remaining() <= 0),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def stop(self) -> None:
        """Stop cycling (``run`` returns after the cycle under way)."""
        self._stopping.set()

    async def leave(self) -> None:
        """Stop cycling, release every lease and leave the members set, so the others take
        over at once (the daemon has stopped the loops first)."""
        self.stop()
        held, self.held = self.held, {}
        try:
            if held:
                await self._call_sync({shard: "r" for shard in held}, held)
            await self._heartbeat(
                keys=[f"{self.prefix}members"], args=[self.instance, self.ttl_ms, "leave"]
            )
        except (redis.exceptions.RedisError, OSError) as problem:
            log.warning("could not release leases; they expire", error=str(problem))

    async def read(self) -> dict[str, Any]:
        """The cluster as Redis has it now, read only (``scalerd cluster``)."""
        _, self.members = await self._read_members(join=False)
        await self._call_sync({}, {})
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The cluster as last read: members, who holds which shard, lease ages (JSON)."""
        now_ms = self._redis_now_ms + (time.monotonic() - self._redis_now_read_at) * 1000
        ttl_s = self.ttl_ms / 1000
        by_holder: dict[str, list[LeaseView]] = {}
        for view in self.views.values():
            if view.holder is not None:
                by_holder.setdefault(view.holder, []).append(view)
        members = []
        for instance in sorted(set(self.members) | set(by_holder)):
            leases = by_holder.get(instance, [])
            # a lease's age: the time since its last renewal, as Redis counts it
            ages = [ttl_s - view.ttl_ms / 1000 for view in leases if view.ttl_ms is not None]
            expiry = self.members.get(instance)
            members.append(
                {
                    "instance": instance,
                    "live": expiry is not None and expiry > now_ms,
                    "heartbeat_age_s": None
                    if expiry is None
                    else round(max(0.0, ttl_s - (expiry - now_ms) / 1000), 3),
                    "shards": sorted(view.shard for view in leases),
                    "oldest_lease_age_s": round(max(ages), 3) if ages else None,
                }
            )
        return {
            "name": self.settings.name,
            "instance": self.instance,
            "shards": self.shards,
            "lease_ttl_s": ttl_s,
            "renew_every_s": self.renew_s,
            "members": members,
            "free_shards": sorted(s for s, view in self.views.items() if view.holder is None),
            "held": [
                {
                    "shard": lease.shard,
                    "token": lease.token,
                    "remaining_s": round(lease.remaining(), 3),
                }
                for lease in sorted(self.held.values(), key=lambda lease: lease.shard)
            ],
        }

    # --- one cycle ------------------------------------------------------------------------

    async def _cycle(self) -> bool:
        """One heartbeat and lease step; True if a wanted shard is held by someone else."""
        _, self.members = await self._read_members(join=True)
        wanted = shards_of(self.instance, self.members, self.shards)
        handing_off = frozenset(set(self.held) - wanted)
        if handing_off:
            await self._on_handing_off(handing_off)
        ops = {shard: "c" for shard in wanted} | {shard: "r" for shard in handing_off}
        before = dict(self.held)
        results = await self._call_sync(ops, before)
        gained = frozenset(
            shard
            for shard, lease in results.items()
            if shard not in before or before[shard].token != lease.token
        )
        lost = frozenset(set(before) - set(results) - handing_off)
        for shard in handing_off:
            self.held.pop(shard, None)
        for shard in lost:
            self.held.pop(shard, None)
        self.held.update(results)
        if lost:
            log.warning(
                "leases lost to another replica", instance=self.instance, shards=sorted(lost)
            )
            await self._on_lost(lost)
        if gained:
            log.info("leases acquired", instance=self.instance, shards=sorted(gained))
            await self._on_gained(gained)
        return any(shard not in self.held for shard in wanted)

    async def _read_members(self, *, join: bool) -> tuple[int, dict[str, int]]:
        raw = await self._heartbeat(
            keys=[f"{self.prefix}members"],
            args=[self.instance, self.ttl_ms, "join" if join else "read"],
        )
        now = int(raw[0])
        self._redis_now_ms, self._redis_now_read_at = now, time.monotonic()
        members = {_text(raw[i]): int(float(raw[i + 1])) for i in range(1, len(raw), 2)}
        return now, members

    async def _call_sync(self, ops: dict[int, str], believed: dict[int, Lease]) -> dict[int, Lease]:
        """Run the lease script over every shard; the leases this replica now holds."""
        sent = time.monotonic()
        shards = range(self.shards)
        raw = await self._sync(
            keys=[self.lease_key(s) for s in shards] + [f"{self.prefix}token:{s}" for s in shards],
            args=[
                self.instance,
                self.ttl_ms,
                "".join(ops.get(s, "-") for s in shards),
                *(f"{believed[s].token}:{self.instance}" if s in believed else "" for s in shards),
            ],
        )
        valid_until = sent + self.ttl_ms / 1000
        held: dict[int, Lease] = {}
        for shard in shards:
            value, ttl = _text(raw[2 * shard]), int(raw[2 * shard + 1])
            holder, token = _parse(value)
            self.views[shard] = LeaseView(shard, holder, token, ttl if ttl >= 0 else None)
            if holder == self.instance and token is not None and ops.get(shard) in ("c", "k"):
                held[shard] = Lease(shard, token, valid_until)
                if (
                    shard not in believed
                    and self._last_holder.get(shard, self.instance) != self.instance
                ):
                    self.takeovers += 1
            if holder is not None:
                self._last_holder[shard] = holder
        self.last_sync = time.monotonic()
        return held


def _parse(value: str) -> tuple[str | None, int | None]:
    if not value:
        return None, None
    token, _, holder = value.partition(":")
    return holder, int(token)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
