"""Several scalerd replicas on one Redis: membership, shard leases with fencing tokens.

Targets hash into ``[cluster] shards`` shards (:func:`shard_of`); each live replica holds
the shards rendezvous hashing gives it, under a lease whose fencing token grows on every
acquisition. A replica evaluates only the targets of shards it holds; every state save is
checked against the shard's current lease in Redis (``FENCED_SET``), so a replica that
lost its lease cannot save, and hence cannot act.

For work that arrives at the wrong replica (pushed events, ``scalerd.events``):
``member.owner_of(target)`` is the instance holding the target's shard (``None`` if free
or unknown), and ``member.channel_of(instance)`` the pub/sub channel that instance
subscribes to (``{key_prefix}cluster:{name}:events:{instance}``); ``member.channel`` is
this replica's own.
"""

from .member import ClusterMember, Lease, LeaseView, default_instance
from .scripts import FENCED_SET
from .shards import rendezvous_owner, shard_of, shards_of

__all__ = [
    "FENCED_SET",
    "ClusterMember",
    "Lease",
    "LeaseView",
    "default_instance",
    "rendezvous_owner",
    "shard_of",
    "shards_of",
]
