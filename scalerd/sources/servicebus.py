"""``kind = "servicebus"``: message counts of Service Bus queues and topic subscriptions.

Each entity's runtime properties are read through the administration client (an Atom
read on the namespace's own endpoint, not Azure Resource Manager: it costs no ARM quota,
but 10 of a Standard namespace's 1,000 credits per second). ``counts`` picks what counts
as depth — ``active`` (waiting for a consumer), ``dead_letter``, ``scheduled`` (queues
only: a subscription holds none) — summed per entity; several entities are combined by
``combine`` (``sum``: the fleet drains them all; ``max``: the deepest one decides).

An entity that does not exist fails the read. (Service Bus says so with an HTTP 200 and an
empty feed, which the SDK turns into ``ResourceNotFoundError``.)

Identity is the daemon's (Entra ID; ``deploy/README.md`` lists the role it needs), or a
shared access key with the *Manage* right, which runtime properties require:
``connection_string_env`` names the environment variable holding the connection string,
which never appears in ``config.toml``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Literal, Self

from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.management import QueueRuntimeProperties, SubscriptionRuntimeProperties
from pydantic import Field, field_validator, model_validator

from ..azure.clients import AzureClients, azure_clients
from ..azure.throttle import Caller
from ..clock import Clock
from ..core.model import Sample
from ..plugins import BuildContext, Plugin, Source, SourceConfig, secret_from_env

__all__ = ["PLUGIN", "ServiceBusConfig", "ServiceBusSource"]

Count = Literal["active", "dead_letter", "scheduled"]
RuntimeProperties = QueueRuntimeProperties | SubscriptionRuntimeProperties

_ENDPOINT = re.compile(r"(?:^|;)\s*Endpoint\s*=\s*sb://(?P<host>[^/;]+)", re.IGNORECASE)


class ServiceBusConfig(SourceConfig):
    kind: Literal["servicebus"]
    # the namespace: "orders-bus" (gets [azure].servicebus_suffix) or its full host name
    namespace: str | None = Field(None, min_length=1)
    # instead of namespace: the environment variable holding a connection string
    connection_string_env: str | None = Field(None, min_length=1)
    # queue names whose counts are read
    queues: tuple[str, ...] = ()
    # topic subscriptions as "topic/subscription"
    subscriptions: tuple[str, ...] = ()
    # which message counts make an entity's depth (summed)
    counts: tuple[Count, ...] = Field(("active",), min_length=1)
    # how several entities make one value
    combine: Literal["sum", "max"] = "sum"

    @field_validator("subscriptions")
    @classmethod
    def _topic_slash_subscription(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            topic, _, subscription = entry.partition("/")
            if not topic or not subscription or "/" in subscription:
                raise ValueError(f"write a subscription as 'topic/subscription', not {entry!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.namespace is None) == (self.connection_string_env is None):
            raise ValueError(
                "give namespace (the daemon's identity) or connection_string_env, not both"
            )
        if not (self.queues or self.subscriptions):
            raise ValueError(
                "name at least one entity: queues = [...] or subscriptions = ['topic/subscription']"
            )
        if len(set(self.counts)) != len(self.counts):
            raise ValueError("@counts: name each count once")
        if "scheduled" in self.counts and self.subscriptions:
            raise ValueError(
                "@counts: only queues hold scheduled messages; drop 'scheduled' or subscriptions"
            )
        return self


class ServiceBusSource:
    """Reads every entity's runtime properties concurrently and combines their depth."""

    def __init__(
        self,
        config: ServiceBusConfig,
        client: ServiceBusAdministrationClient,
        host: str,
        caller: Caller,
        clock: Clock,
    ) -> None:
        self._config = config
        self._client = client
        self._host = host
        self._caller = caller
        self._clock = clock
        self._scope = f"servicebus/{host}"
        self._reads = _entity_reads(config, client)

    async def read(self) -> Sequence[Sample]:
        session = self._caller.session()
        reads = [
            session.read(self._scope, request, f"read {what} of {self._host}")
            for what, request in self._reads
        ]
        depths = [self._depth(properties) for properties in await asyncio.gather(*reads)]
        value = sum(depths) if self._config.combine == "sum" else max(depths)
        return (Sample(self._clock.now(), value),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    def _depth(self, properties: RuntimeProperties) -> int:
        counts = {
            "active": properties.active_message_count,
            "dead_letter": properties.dead_letter_message_count,
            "scheduled": getattr(properties, "scheduled_message_count", 0),
        }
        return sum(counts[count] or 0 for count in self._config.counts)


def build(config: ServiceBusConfig, ctx: BuildContext) -> Source:
    azure = azure_clients(ctx, config.name)
    client, host = _client(config, azure)
    caller = azure.caller("source", patience=config.timeout / 2)
    return ServiceBusSource(config, client, host, caller, ctx.clock)


def _entity_reads(
    config: ServiceBusConfig, client: ServiceBusAdministrationClient
) -> list[tuple[str, Callable[[], Awaitable[RuntimeProperties]]]]:
    """What one read asks for: (the entity, for errors; the call) per entity."""
    reads: list[tuple[str, Callable[[], Awaitable[RuntimeProperties]]]] = [
        (f"queue {queue!r}", partial(client.get_queue_runtime_properties, queue))
        for queue in config.queues
    ]
    for entry in config.subscriptions:
        topic, _, subscription = entry.partition("/")
        call = partial(client.get_subscription_runtime_properties, topic, subscription)
        reads.append((f"subscription {entry!r}", call))
    return reads


def _client(
    config: ServiceBusConfig, azure: AzureClients
) -> tuple[ServiceBusAdministrationClient, str]:
    """The administration client and the namespace host it reads."""
    if config.namespace is not None:
        return azure.servicebus(config.namespace), azure.servicebus_host(config.namespace)
    variable = config.connection_string_env
    connection_string = secret_from_env(config, variable, "connection_string_env") or ""
    endpoint = _ENDPOINT.search(connection_string)
    if endpoint is None:
        raise ValueError(
            f"servicebus source {config.name!r}: the connection string in {variable} has no "
            "'Endpoint=sb://<namespace>/'"
        )
    return azure.servicebus_with_key(connection_string), endpoint["host"]


PLUGIN = Plugin(
    kind="servicebus",
    config=ServiceBusConfig,
    build=build,
    summary="active, dead-letter or scheduled messages in Service Bus queues and subscriptions",
)
