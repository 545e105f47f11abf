"""``kind = "azure-event-hubs"``: the consumer-group lag of an Event Hub.

Lag is the number of events the consumer group has not processed yet, counted as KEDA's
``azure-eventhub`` scaler counts it (``pkg/scalers/azure_eventhub_scaler.go``), so a
ScaledObject moved to scalerd sees the same number:

* each partition's properties are read through ``azure-eventhub``'s consumer client (a
  ``READ`` of ``com.microsoft:partition`` on the namespace's ``$management`` node, over
  AMQP): its beginning and last enqueued sequence numbers;
* the consumer group's checkpoints are read from the Blob container its processors write
  them to, through ``azure-eventhub-checkpointstoreblob-aio`` (``list_checkpoints``: the
  blobs ``{namespace}/{hub}/{group}/checkpoint/{partition}`` with the ``sequencenumber``
  metadata; the layout of every Event Hubs SDK's ``BlobCheckpointStore``, KEDA's
  ``blobMetadata`` strategy);
* a partition that holds no event has a lag of 0;
* with a checkpoint: last enqueued - checkpointed sequence number. Sequence numbers are
  64-bit and may wrap: a checkpoint ahead of the last enqueued number counts as
  ``(2**63 - 1 - checkpoint) + last``, and a lag within ``stale_partition_threshold`` of
  2**63 is read as stale partition information (checkpointed after the properties were
  read) and counts 0;
* without a checkpoint (nothing processed yet, or the container does not exist): the whole
  retained partition, last - beginning + 1 (KEDA's rule: a partition whose beginning and
  last numbers are equal and not 0 counts 0);
* partitions are summed (``combine = "sum"``, KEDA's total, capped at 2**63 - 1) or the
  most-behind one decides (``"max"``).

KEDA also caps the total at partitions x its threshold, because consumers beyond the
partition count receive nothing: give the target a ``max`` no larger than the hub's
partition count for the same effect.

Identity is the daemon's (Entra ID): *Azure Event Hubs Data Receiver* on the hub and
*Storage Blob Data Reader* on the container. Or keys, as KEDA's trigger takes them: a
shared access key with the *Listen* right (``connection_string_env``) and the storage
account's connection string (``checkpoint_connection_string_env``), each named by the
environment variable holding it; neither appears in ``config.toml``, a log line or an
error. The SDK retries a
failed ``$management`` request ``[azure].retry_total`` times (Event Hubs' ``server-busy``
included); the checkpoint read is throttled like the other storage reads.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from azure.core.exceptions import ResourceNotFoundError
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.exceptions import EventHubError
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from pydantic import Field, model_validator

from ..azure.clients import AzureClients, azure_clients
from ..azure.throttle import Caller
from ..clock import Clock
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig, secret_from_env
from ..redact import redact

__all__ = ["PLUGIN", "EventHubsConfig", "EventHubsSource", "partition_lag"]

_MAX_SEQUENCE = 2**63 - 1
_ENDPOINT = re.compile(r"(?:^|;)\s*Endpoint\s*=\s*sb://(?P<host>[^/;]+)", re.IGNORECASE)


class EventHubsConfig(SourceConfig):
    kind: Literal["azure-event-hubs"]
    # the namespace: "shop-events" (gets [azure].servicebus_suffix) or its full host name
    namespace: str | None = Field(None, min_length=1)
    # instead of namespace: the environment variable holding a connection string
    connection_string_env: str | None = Field(None, min_length=1)
    # the Event Hub whose lag is read
    event_hub: str = Field(min_length=1)
    # the consumer group whose checkpoints count
    consumer_group: str = Field("$Default", min_length=1)
    # the storage account holding the checkpoints: "shopckpt" (gets
    # [azure].storage_blob_suffix) or its blob host
    checkpoint_account: str | None = Field(None, min_length=1)
    # instead of checkpoint_account: the environment variable holding the storage
    # account's connection string (KEDA's storageConnectionFromEnv)
    checkpoint_connection_string_env: str | None = Field(None, min_length=1)
    # the blob container the consumer group's processors checkpoint to
    checkpoint_container: str = Field(min_length=1)
    # how the partitions' lags make one value
    combine: Literal["sum", "max"] = "sum"
    # a wrapped lag this close to 2**63 is stale partition information, read as 0
    # (KEDA's stalePartitionInfoThreshold)
    stale_partition_threshold: int = Field(10_000, ge=0)

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        if (self.namespace is None) == (self.connection_string_env is None):
            raise ValueError(
                "give namespace (the daemon's identity) or connection_string_env, not both"
            )
        if (self.checkpoint_account is None) == (self.checkpoint_connection_string_env is None):
            raise ValueError(
                "give checkpoint_account (the daemon's identity) or "
                "checkpoint_connection_string_env, not both"
            )
        return self


def partition_lag(
    properties: dict[str, Any], checkpoint: int | None, stale_threshold: int = 10_000
) -> int:
    """The unprocessed events of one partition (KEDA's rules, see the module docstring)."""
    last = int(properties["last_enqueued_sequence_number"])
    if properties.get("is_empty") or last == -1:
        return 0
    if checkpoint is None:
        begin = int(properties["beginning_sequence_number"])
        if (begin == 0 and last == 0) or begin != last:
            return last - begin + 1
        return 0
    lag = last - checkpoint if last >= checkpoint else (_MAX_SEQUENCE - checkpoint) + last
    return 0 if lag > _MAX_SEQUENCE - stale_threshold else lag


class EventHubsSource:
    """Reads every partition's properties and the group's checkpoints, then the lag."""

    def __init__(
        self,
        config: EventHubsConfig,
        client: EventHubConsumerClient,
        namespace: str,
        store: BlobCheckpointStore,
        store_host: str,
        caller: Caller,
        clock: Clock,
    ) -> None:
        self._config = config
        self._client = client
        # the namespace as the group's processors name it in their checkpoint blobs (the
        # host their client connects to)
        self._namespace = namespace
        self._store = store
        self._caller = caller
        self._clock = clock
        self._scope = f"storage-blob/{store_host}"
        self._what = f"event hub {config.event_hub!r} of {namespace}"

    async def read(self) -> Sequence[Sample]:
        partitions, checkpoints = await asyncio.gather(self._partitions(), self._checkpoints())
        lags = [
            partition_lag(
                properties,
                checkpoints.get(properties["id"]),
                self._config.stale_partition_threshold,
            )
            for properties in partitions
        ]
        if self._config.combine == "sum":
            value = min(sum(lags), _MAX_SEQUENCE)
        else:
            value = max(lags, default=0)
        return (Sample(self._clock.now(), value),)

    async def aclose(self) -> None:
        """Nothing to release: the clients belong to the daemon."""

    async def _partitions(self) -> list[dict[str, Any]]:
        client = self._client
        try:
            ids = await client.get_partition_ids()
            return list(await asyncio.gather(*(client.get_partition_properties(i) for i in ids)))
        except EventHubError as error:
            # the SDK's message says what failed (the connection, the token, the node's
            # answer); it names no key, and redact() removes any that an SDK might echo
            message = " ".join(str(error).split())
            raise SourceError(
                redact(f"read the partitions of {self._what}: {type(error).__name__}: {message}")
            ) from error

    async def _checkpoints(self) -> dict[str, int]:
        """Checkpointed sequence numbers by partition; none when the container is missing."""
        config = self._config
        namespace = self._namespace

        async def listed() -> list[dict[str, Any]]:
            try:
                found = await self._store.list_checkpoints(
                    namespace, config.event_hub, config.consumer_group
                )
            except ResourceNotFoundError as error:
                if getattr(error, "error_code", None) == "ContainerNotFound":
                    return []  # KEDA's rule: nothing checkpointed yet
                raise
            return list(found)

        what = (
            f"read the checkpoints of consumer group {config.consumer_group!r} "
            f"in container {config.checkpoint_container!r}"
        )
        found = await self._caller.session().read(self._scope, listed, what)
        return {
            checkpoint["partition_id"]: int(checkpoint["sequence_number"]) for checkpoint in found
        }


def build(config: EventHubsConfig, ctx: BuildContext) -> Source:
    azure = azure_clients(ctx, config.name)
    client, namespace = _client(config, azure)
    store, store_host = _store(config, azure)
    caller = azure.caller("source", patience=config.timeout / 2)
    return EventHubsSource(config, client, namespace, store, store_host, caller, ctx.clock)


def _client(config: EventHubsConfig, azure: AzureClients) -> tuple[EventHubConsumerClient, str]:
    """The consumer client and the namespace host its checkpoints are filed under."""
    if config.namespace is not None:
        host = azure.servicebus_host(config.namespace)
        client = azure.event_hub(config.namespace, config.event_hub, config.consumer_group)
        return client, host.rsplit(":", 1)[0] if ":" in host else host
    variable = config.connection_string_env
    connection_string = secret_from_env(config, variable, "connection_string_env") or ""
    endpoint = _ENDPOINT.search(connection_string)
    if endpoint is None:
        raise ValueError(
            f"azure-event-hubs source {config.name!r}: the connection string in {variable} "
            "has no 'Endpoint=sb://<namespace>/'"
        )
    client = azure.event_hub_with_key(
        connection_string, endpoint["host"], config.event_hub, config.consumer_group
    )
    return client, endpoint["host"]


def _store(config: EventHubsConfig, azure: AzureClients) -> tuple[BlobCheckpointStore, str]:
    """The checkpoint store and its blob host (the throttling scope of its reads)."""
    container = config.checkpoint_container
    if config.checkpoint_account is not None:
        account = config.checkpoint_account
        return azure.checkpoint_store(account, container), azure.storage_blob_host(account)
    variable = config.checkpoint_connection_string_env
    connection_string = secret_from_env(config, variable, "checkpoint_connection_string_env") or ""
    settings = dict(
        part.split("=", 1) for part in connection_string.split(";") if "=" in part.strip()
    )
    settings = {key.strip().lower(): value.strip() for key, value in settings.items()}
    if "blobendpoint" in settings:
        host = re.sub(r"^https?://", "", settings["blobendpoint"]).split("/", 1)[0]
    elif "accountname" in settings:
        suffix = settings.get("endpointsuffix", "core.windows.net")
        host = f"{settings['accountname']}.blob.{suffix}"
    else:
        raise ValueError(
            f"azure-event-hubs source {config.name!r}: the connection string in {variable} "
            "has neither AccountName nor BlobEndpoint"
        )
    return azure.checkpoint_store_with_key(connection_string, container), host


PLUGIN = Plugin(
    kind="azure-event-hubs",
    config=EventHubsConfig,
    build=build,
    summary="the consumer-group lag of an Event Hub: last enqueued minus checkpointed sequence numbers, summed or the max partition",
)
