"""``kind = "azure-storage-queue"``: the approximate message count of Azure Storage queues.

Each queue's metadata is read (``GET ?comp=metadata``, through ``azure-storage-queue``);
its ``x-ms-approximate-messages-count`` header is the depth. Azure calls it approximate:
it may count messages that were just dequeued or deleted, and it includes messages that
are invisible for now (being processed, or delayed). Several queues are combined by
``combine`` (``sum``: the fleet drains them all; ``max``: the deepest one decides).

A queue that does not exist fails the read (Azure's ``QueueNotFound``), never a zero.
Identity is the daemon's (Entra ID); the role it needs on the account is *Storage Queue
Data Reader*.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from azure.storage.queue.aio import QueueClient
from pydantic import Field

from ..azure.clients import azure_clients
from ..azure.throttle import Caller
from ..clock import Clock
from ..core.model import Sample
from ..plugins import BuildContext, Plugin, Source, SourceConfig

__all__ = ["PLUGIN", "StorageQueueConfig", "StorageQueueSource"]


class StorageQueueConfig(SourceConfig):
    kind: Literal["azure-storage-queue"]
    # the storage account: "shopjobs" (gets [azure].storage_queue_suffix) or its queue host
    account: str = Field(min_length=1)
    # the queues whose approximate message counts are read
    queues: tuple[str, ...] = Field(min_length=1)
    # how several queues make one value
    combine: Literal["sum", "max"] = "sum"


class StorageQueueSource:
    """Reads every queue's properties concurrently and combines their message counts."""

    def __init__(
        self,
        config: StorageQueueConfig,
        clients: dict[str, QueueClient],
        host: str,
        caller: Caller,
        clock: Clock,
    ) -> None:
        self._combine = config.combine
        self._clients = clients
        self._host = host
        self._caller = caller
        self._clock = clock
        self._scope = f"storage-queue/{host}"

    async def read(self) -> Sequence[Sample]:
        session = self._caller.session()
        reads = [
            session.read(
                self._scope, client.get_queue_properties, f"read queue {queue!r} of {self._host}"
            )
            for queue, client in self._clients.items()
        ]
        counts = [
            properties.approximate_message_count or 0 for properties in await asyncio.gather(*reads)
        ]
        value = sum(counts) if self._combine == "sum" else max(counts)
        return (Sample(self._clock.now(), value),)

    async def aclose(self) -> None:
        """Nothing to release: the clients belong to the daemon."""


def build(config: StorageQueueConfig, ctx: BuildContext) -> Source:
    azure = azure_clients(ctx, config.name)
    clients = {queue: azure.storage_queue(config.account, queue) for queue in config.queues}
    caller = azure.caller("source", patience=config.timeout / 2)
    host = azure.storage_queue_host(config.account)
    return StorageQueueSource(config, clients, host, caller, ctx.clock)


PLUGIN = Plugin(
    kind="azure-storage-queue",
    config=StorageQueueConfig,
    build=build,
    summary="the approximate message count of Azure Storage queues, summed or the max",
)
