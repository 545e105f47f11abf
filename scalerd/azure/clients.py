"""The Azure SDK clients scalerd uses, created once by the composition root.

:class:`AzureClients` is what ``BuildContext.azure`` holds. Plugins ask it for a client
and never build one: it creates each lazily, one per (service, subscription), per metrics
region, per Service Bus namespace, and closes them all in :meth:`AzureClients.aclose`.
Every client is configured the same way:

* identity: ``DefaultAzureCredential`` (managed identity, workload identity, Azure CLI),
  with ``[azure].managed_identity_client_id`` for a user-assigned identity, or the
  credential the caller injects (tests);
* endpoints and token audiences from ``[azure]``, so sovereign clouds and emulators need
  only configuration; ``ca_bundle`` is trusted for TLS (``connection_verify``);
* retries: azure-core retries transient faults of *reads* only (``retry_total``, small).
  Throttling (429/503/529) is left to scalerd's gates and time budget
  (``throttle.py``) so a Retry-After never blocks a tick inside the SDK, and a write is
  never retried by the SDK: after a write that failed without an answer, the actuator
  reads the resource before it writes again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.eventhub import TransportType
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.identity.aio import DefaultAzureCredential
from azure.mgmt.appcontainers.aio import ContainerAppsAPIClient
from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient
from azure.mgmt.redis.aio import RedisManagementClient
from azure.mgmt.sql.aio import SqlManagementClient
from azure.mgmt.web.aio import WebSiteManagementClient
from azure.monitor.query.aio import LogsQueryClient
from azure.monitor.querymetrics.aio import MetricsClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.storage.queue.aio import QueueClient

from ..clock import Clock, SystemClock
from ..settings import AzureSettings
from .faults import THROTTLE_STATUSES, Family
from .metrics import MetricsBatcher
from .throttle import Caller, CircuitBreaker, RetryAfterGates, Sleep, WriteBudget

if TYPE_CHECKING:
    from ..plugins import BuildContext

__all__ = ["AzureClients", "arm_scope", "azure_clients"]


class _AsyncClosable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_AsyncClosable)


def azure_clients(ctx: BuildContext, plugin: str) -> AzureClients:
    """The daemon's Azure clients, which every Azure plugin's ``build`` needs."""
    if ctx.azure is None:
        raise ValueError(f"{plugin!r} needs Azure clients: the daemon creates them from [azure]")
    return ctx.azure


def arm_scope(subscription: str) -> str:
    """The throttling scope (and write budget) of Azure Resource Manager calls."""
    return f"arm/{subscription.lower()}"


class _ReadRetryPolicy(AsyncRetryPolicy[HttpRequest, AsyncHttpResponse]):
    """azure-core's retry policy minus what scalerd owns: throttling and writes.

    A throttled request is handed back at once (scalerd's gate honours Retry-After within
    the tick's budget). A PATCH is never repeated: one that failed or timed out may have
    been applied, so the next attempt must start from a fresh read.
    """

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if response.http_response.status_code in THROTTLE_STATUSES:
            return False
        if response.http_request.method.upper() == "PATCH":
            return False
        return bool(super().is_retry(settings, response))


class StaticToken:
    """The credential of ``[azure] token_env``: one fixed bearer token, for emulators."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> StaticToken:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _credential_for(settings: AzureSettings) -> AsyncTokenCredential:
    if settings.token_env is None:
        return DefaultAzureCredential(
            managed_identity_client_id=settings.managed_identity_client_id
        )
    token = os.environ.get(settings.token_env)
    if not token:
        raise ValueError(f"[azure] token_env: environment variable {settings.token_env} is not set")
    return StaticToken(token)


class AzureClients:
    """Lazily built, cached Azure SDK clients plus the throttling state they share."""

    def __init__(
        self,
        settings: AzureSettings,
        *,
        credential: AsyncTokenCredential | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._owns_credential = credential is None
        self._credential: AsyncTokenCredential = credential or _credential_for(settings)
        # how scalerd waits out a Retry-After (tests pass one that moves a ManualClock)
        self.sleep = sleep
        self._gates = RetryAfterGates(self.clock)
        self._writes = WriteBudget(
            self.clock, burst=settings.write_burst, per_hour=settings.writes_per_hour
        )
        self._clients: dict[tuple[str, str], _AsyncClosable] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.metrics = MetricsBatcher(self.metrics_client, self.clock)

    async def __aenter__(self) -> AzureClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- what plugins ask for ---------------------------------------------------------

    def caller(self, family: Family, *, patience: timedelta | None = None) -> Caller:
        """A new plugin's way to Azure: its own circuit breaker, the shared gates/budget."""
        settings = self.settings
        return Caller(
            family=family,
            breaker=CircuitBreaker(
                self.clock, failures=settings.breaker_failures, reset=settings.breaker_reset
            ),
            gates=self._gates,
            writes=self._writes,
            clock=self.clock,
            sleep=self.sleep,
            patience=min(patience, settings.throttle_budget)
            if patience
            else settings.throttle_budget,
        )

    def lock(self, resource_id: str) -> asyncio.Lock:
        """Serializes read-then-write on one resource (two actuators may share a server)."""
        return self._locks.setdefault(resource_id.lower(), asyncio.Lock())

    def container_apps(self, subscription: str) -> ContainerAppsAPIClient:
        return self._cached(
            ("container-apps", subscription),
            lambda: ContainerAppsAPIClient(self._credential, subscription, **self._arm_options()),
        )

    def postgres(self, subscription: str) -> PostgreSQLManagementClient:
        return self._cached(
            ("postgres", subscription),
            lambda: PostgreSQLManagementClient(
                self._credential, subscription, **self._arm_options()
            ),
        )

    def sql(self, subscription: str) -> SqlManagementClient:
        return self._cached(
            ("sql", subscription),
            lambda: SqlManagementClient(self._credential, subscription, **self._arm_options()),
        )

    def redis(self, subscription: str) -> RedisManagementClient:
        return self._cached(
            ("redis", subscription),
            lambda: RedisManagementClient(self._credential, subscription, **self._arm_options()),
        )

    def web(self, subscription: str) -> WebSiteManagementClient:
        """App Service (``Microsoft.Web``): its plans, for the azure-app-service actuator."""
        return self._cached(
            ("web", subscription),
            lambda: WebSiteManagementClient(self._credential, subscription, **self._arm_options()),
        )

    def metrics_client(self, region: str) -> MetricsClient:
        """The batch metrics client of ``region`` (all resources of one call share it)."""
        endpoint = self.settings.metrics_endpoint.replace("{region}", region.lower())
        return self._cached(
            ("metrics", endpoint),
            lambda: MetricsClient(
                endpoint,
                self._credential,
                audience=self.settings.metrics_audience,
                **self._transport_options(),
            ),
        )

    def logs(self) -> LogsQueryClient:
        return self._cached(
            ("logs", self.settings.logs_endpoint),
            lambda: LogsQueryClient(
                self._credential, endpoint=self.settings.logs_endpoint, **self._transport_options()
            ),
        )

    def servicebus(self, namespace: str) -> ServiceBusAdministrationClient:
        """The administration client of a namespace, by short or fully qualified name."""
        host = self.servicebus_host(namespace)
        return self._cached(
            ("servicebus", host),
            lambda: ServiceBusAdministrationClient(
                host, self._credential, **self._transport_options()
            ),
        )

    def servicebus_with_key(self, connection_string: str) -> ServiceBusAdministrationClient:
        """An administration client authorized by a shared access key instead of Entra ID."""
        return self._cached(
            ("servicebus-key", connection_string),
            lambda: ServiceBusAdministrationClient.from_connection_string(
                connection_string, **self._transport_options()
            ),
        )

    def servicebus_host(self, namespace: str) -> str:
        """``orders`` → ``orders.servicebus.windows.net``; a name with a dot or port is kept."""
        if "." in namespace or ":" in namespace:
            return namespace
        return f"{namespace}.{self.settings.servicebus_suffix}"

    def event_hub(
        self, namespace: str, event_hub: str, consumer_group: str
    ) -> EventHubConsumerClient:
        """A consumer client of one hub and consumer group, authorized by Entra ID.

        It only reads partition properties (``$management`` over AMQP); it never receives.
        """
        host = self.servicebus_host(namespace)
        return self._cached(
            ("event-hub", f"{host}/{event_hub}/{consumer_group}"),
            lambda: EventHubConsumerClient(
                host.rsplit(":", 1)[0] if ":" in host else host,
                event_hub,
                consumer_group,
                self._credential,
                **self._amqp_options(host),
            ),
        )

    def event_hub_with_key(
        self, connection_string: str, host: str, event_hub: str, consumer_group: str
    ) -> EventHubConsumerClient:
        """The same client authorized by the shared access key of ``connection_string``
        (whose endpoint is ``host``)."""
        return self._cached(
            ("event-hub-key", f"{connection_string}/{event_hub}/{consumer_group}"),
            lambda: EventHubConsumerClient.from_connection_string(
                connection_string,
                consumer_group,
                eventhub_name=event_hub,
                **self._amqp_options(host),
            ),
        )

    def checkpoint_store(self, account: str, container: str) -> BlobCheckpointStore:
        """The Event Hubs checkpoints of a blob container, by the account's short name or host."""
        host = self.storage_blob_host(account)
        return self._cached(
            ("checkpoint-store", f"{host}/{container}"),
            lambda: BlobCheckpointStore(
                f"https://{host}", container, credential=self._credential, **self._blob_options()
            ),
        )

    def checkpoint_store_with_key(
        self, connection_string: str, container: str
    ) -> BlobCheckpointStore:
        """The same store, authorized by a storage account's connection string."""
        return self._cached(
            ("checkpoint-store-key", f"{connection_string}/{container}"),
            lambda: BlobCheckpointStore.from_connection_string(
                connection_string, container, **self._blob_options()
            ),
        )

    def storage_blob_host(self, account: str) -> str:
        """``orders`` → ``orders.blob.core.windows.net``; a name with a dot or port is kept."""
        if "." in account or ":" in account:
            return account
        return f"{account}.{self.settings.storage_blob_suffix}"

    def storage_queue(self, account: str, queue: str) -> QueueClient:
        """One queue of a storage account, by the account's short name or its host."""
        host = self.storage_queue_host(account)
        settings = self.settings
        options: dict[str, Any] = {
            # the storage SDK has its own retry policy, which retries a 503 (Storage's
            # throttling) too, and would wait out its Retry-After inside the call: none,
            # so throttling stays scalerd's (a transient failure is the next read's)
            "retry_total": 0,
            "read_timeout": settings.read_timeout.total_seconds(),
        }
        if settings.ca_bundle is not None:
            options["connection_verify"] = settings.ca_bundle
        return self._cached(
            ("storage-queue", f"{host}/{queue}"),
            lambda: QueueClient(f"https://{host}", queue, credential=self._credential, **options),
        )

    def storage_queue_host(self, account: str) -> str:
        """``orders`` → ``orders.queue.core.windows.net``; a name with a dot or port is kept."""
        if "." in account or ":" in account:
            return account
        return f"{account}.{self.settings.storage_queue_suffix}"

    async def aclose(self) -> None:
        """Close every client built, then the credential if it is ours."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.close() for client in clients))
        if self._owns_credential:
            await self._credential.close()

    # --- construction -----------------------------------------------------------------

    def _cached(self, key: tuple[str, str], build: Callable[[], C]) -> C:
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = build()
        return cast(C, client)

    def _transport_options(self) -> dict[str, Any]:
        settings = self.settings
        options: dict[str, Any] = {
            "retry_policy": _ReadRetryPolicy(retry_total=settings.retry_total),
            "read_timeout": settings.read_timeout.total_seconds(),
        }
        if settings.ca_bundle is not None:
            options["connection_verify"] = settings.ca_bundle
        return options

    def _blob_options(self) -> dict[str, Any]:
        settings = self.settings
        options: dict[str, Any] = {
            # as for queues: the storage SDK's own retries would wait out a 503's
            # Retry-After inside the call; throttling stays scalerd's
            "retry_total": 0,
            "read_timeout": settings.read_timeout.total_seconds(),
        }
        if settings.ca_bundle is not None:
            options["connection_verify"] = settings.ca_bundle
        return options

    def _amqp_options(self, host: str) -> dict[str, Any]:
        """The Event Hubs client's options: AMQP over TLS (port 5671), or the port of
        ``host`` when it names one (a private endpoint's forward, an emulator, the tests'
        fake); the SDK retries a failed ``$management`` request ``retry_total`` times."""
        settings = self.settings
        options: dict[str, Any] = {
            "retry_total": settings.retry_total,
            "transport_type": TransportType.Amqp,
        }
        if ":" in host:
            options["custom_endpoint_address"] = f"sb://{host}"
        if settings.ca_bundle is not None:
            options["connection_verify"] = settings.ca_bundle
        return options

    def _arm_options(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.arm_endpoint,
            # the SDK takes the scope from its cloud setting, not from base_url: say it
            "credential_scopes": [f"{self.settings.arm_endpoint}/.default"],
            "polling_interval": self.settings.polling_interval.total_seconds(),
            **self._transport_options(),
        }
