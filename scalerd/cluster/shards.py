"""Which shard a target is in, and which live replica should hold a shard.

Both are pure and stable across processes and restarts (a keyed hash, never Python's
randomised ``hash``). Rendezvous (highest-random-weight) hashing gives each shard to the
member with the highest weight for it, so a member joining or leaving moves only the
shards it wins or held: about 1/n of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

__all__ = ["rendezvous_owner", "shard_of", "shards_of"]


def _weight(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


def shard_of(target: str, shards: int) -> int:
    """The shard ``target`` belongs to, in ``range(shards)``."""
    return _weight(f"target\0{target}") % shards


def rendezvous_owner(shard: int, members: Iterable[str]) -> str | None:
    """The member that should hold ``shard``; ``None`` when there are no members."""
    # ties cannot happen in practice (64-bit weights); the name breaks them anyway
    return max(members, key=lambda member: (_weight(f"{member}\0{shard}"), member), default=None)


def shards_of(member: str, members: Iterable[str], shards: int) -> frozenset[int]:
    """The shards ``member`` should hold when ``members`` are the live ones."""
    live = sorted(set(members) | {member})
    return frozenset(shard for shard in range(shards) if rendezvous_owner(shard, live) == member)
