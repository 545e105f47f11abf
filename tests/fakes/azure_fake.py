"""A local fake of the Azure endpoints scalerd uses, speaking Azure's real wire protocol.

How tests reach it
==================
``FakeAzure.running()`` starts one aiohttp server per service on a free ``127.0.0.1``
port; all share one in-memory state:

* ``arm`` (``fake.arm_url``): Container Apps, PostgreSQL flexible servers, SQL databases,
  Redis caches, App Service plans (``Microsoft.Web/serverfarms``), and their long-running
  operations.
* ``metrics`` (``fake.metrics_url``): ``POST /subscriptions/{sub}/metrics:getBatch``.
* ``logs`` (``fake.logs_url``): ``POST /v1/workspaces/{workspace}/query``.
* ``servicebus`` (``fake.servicebus_namespace``): ``GET /{queue}`` and
  ``GET /{topic}/subscriptions/{sub}``, in Atom XML.
* ``queue`` (``fake.storage_queue_account``): Storage Queue's ``GET /{queue}?comp=metadata``,
  answered with the ``x-ms-approximate-messages-count`` header (``set_storage_queue``).
* ``blob`` (``fake.blob_account``): Blob Storage's List Blobs,
  ``GET /{container}?restype=container&comp=list&prefix=…&include=metadata``, in XML,
  holding the checkpoints an Event Hubs processor writes (``set_checkpoint``).
* ``eventhubs`` (``fake.eventhubs_address``): an Event Hubs namespace over AMQP 1.0 and
  TLS (``eventhubs_fake.FakeEventHubs``, reached as ``fake.eventhubs``): ``$cbs``
  put-token and ``$management`` READ of a hub and its partitions.

The servers speak TLS with a throwaway self-signed certificate for ``IP:127.0.0.1``,
generated at start-up with ``cryptography``; ``fake.ca_path`` is its PEM. The real async
SDK clients are therefore built exactly as in production, except for the endpoint and the
CA bundle. Nothing bypasses the SDK's https check and no transport is replaced::

    ContainerAppsAPIClient(FakeCredential(), sub, base_url=fake.arm_url,
                           connection_verify=fake.ca_path, polling_interval=0)
    MetricsClient(fake.metrics_url, FakeCredential(), connection_verify=fake.ca_path)
    LogsQueryClient(FakeCredential(), endpoint=fake.logs_url, connection_verify=fake.ca_path)
    ServiceBusAdministrationClient(fake.servicebus_namespace, FakeCredential(),
                                   connection_verify=fake.ca_path)

Pass ``polling_interval=0`` to the management clients. The fake sends no ``Retry-After``
on long-running operations, so without it the SDK waits its default 30 s between polls.
(A fractional one is not an option: the management SDKs read a 202's ``Retry-After`` with
``int()``, and ``begin_update`` raises ``ValueError`` on ``0.5``.)

What it models
==============
* ARM resources, keyed case-insensitively by ARM id. ``GET`` returns the stored body and
  ``PATCH`` is a JSON merge patch, applied only when its long-running operation succeeds.
  Until then the resource reports a change in flight: ``provisioningState`` is
  ``InProgress`` (Container Apps) or ``Updating`` (Redis), and Postgres' ``state`` is
  ``Updating``. SQL's ``status`` is ``Scaling``. A second PATCH during that time gets 409
  ``AnotherOperationInProgress``. On failure the resource keeps its old values; Container
  Apps and Redis turn ``provisioningState`` to ``Failed``. Postgres and SQL have no
  ``provisioningState`` on the wire, so they go back to ``Ready``/``Online``.
* App Service plans: a PATCH of ``sku.capacity`` answers 200 with the plan at once by
  default (the service scales a plan synchronously when it can), or, with ``set_lro``,
  202 with the plan and Azure's resource-scoped ``{plan id}/operationresults/{id}`` URL in
  ``Azure-AsyncOperation`` and/or ``Location`` (as the spec's ``PatchAppServicePlan``
  example shows). ``numberOfWorkers`` follows ``sku.capacity`` once a change is applied;
  ``maximumNumberOfWorkers`` is what the tier allows. ``PUT`` (create or update) replaces
  the writable parts of a plan synchronously.
* Long-running PATCHes in the four ARM styles (see ``set_lro``): ``azure-async-operation``,
  ``location``, ``provisioning-state`` and ``sync``. ``polls`` in-progress answers come
  before the terminal one.
* Container Apps revisions (paged with ``nextLink``) and replicas. A successful PATCH of
  ``properties.template`` (scale included) is a revision-scope change. It creates a new
  revision, as Azure does in single-revision mode, and ``latestReadyRevisionName`` moves
  to it.
* Metric series, Log Analytics results and Service Bus message counts, which tests set.
  The metrics batch enforces Azure's rules: at most 50 resource ids, all in the
  subscription of the path. ``filter`` is honoured on one dimension and rejected
  otherwise.
* Faults (``inject``, ``throttle_storm``), and a log of every request (``requests``,
  ``calls``).

Every URL the fake emits (``Azure-AsyncOperation``, ``Location``, ``nextLink``) is absolute
and built from the request's own host, so the SDK never leaves loopback. Requests without
a bearer, SAS or Storage shared-key ``Authorization`` header get 401; ARM requests without
``api-version`` get 400. The fake accepts any api-version value. Response bodies start from the Azure
examples copied into ``azure_wire/`` (see its README).

An exception inside a handler is a bug in the fake or a test asking for something Azure
cannot do. The client gets a 500, and leaving ``running()`` raises ``FakeAzureError``, so
the test fails even if the code under test swallowed the 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import functools
import ipaddress
import json
import re
import ssl
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .eventhubs_fake import FakeEventHubs

__all__ = [
    "ArmError",
    "FakeAzure",
    "FakeAzureError",
    "FakeCredential",
    "Fault",
    "LroStyle",
    "RecordedRequest",
    "Service",
]

Service = Literal["arm", "metrics", "logs", "servicebus", "queue", "blob"]
LroStyle = Literal["azure-async-operation", "location", "provisioning-state", "sync"]
Json = dict[str, Any]
MetricPoint = tuple[dt.datetime, float | None]

_WIRE_DIR = Path(__file__).with_name("azure_wire")
_METRICS_EXAMPLE = "monitor_metrics_getbatch_2024-02-01.json"
_MAX_BATCH_RESOURCES = 50  # metrics:getBatch limit, per Azure Monitor docs
_DEFAULT_METRICS_WINDOW = dt.timedelta(hours=1)
_ARM_REMAINING_READS = 249  # values a fresh ARM token bucket reports
_ARM_REMAINING_WRITES = 199


class FakeCredential:
    """An ``AsyncTokenCredential`` handing out a static token; the fake never checks it."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class FakeAzureError(Exception):
    """The fake was misused, or failed while serving a request."""


class ArmError(NamedTuple):
    """An Azure error code and message, as found in ``{"error": {...}}`` bodies."""

    code: str
    message: str


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, and the status it answered with."""

    service: Service
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, the raw text if it was not JSON, None if empty
    headers: dict[str, str]  # without Authorization
    status: int


@dataclass
class Fault:
    """A rule that answers matching requests with an error and/or a delay.

    Tests create these with ``FakeAzure.inject``.
    """

    service: Service
    method: str | None
    path: re.Pattern[str]
    status: int | None
    retry_after: float | None
    retry_after_ms: int | None
    ratelimit_remaining: int | None
    error: ArmError | None
    delay: float
    times_left: int | None  # None: until cleared

    def matches(self, service: Service, method: str, path: str) -> bool:
        return (
            self.service == service
            and (self.method is None or self.method == method)
            and self.path.search(path) is not None
        )


class _LroConfig(NamedTuple):
    style: LroStyle
    polls: int
    fail: ArmError | None


@dataclass(frozen=True)
class _Kind:
    """How one ARM resource type reports a change in flight and which PATCH styles it uses."""

    label: str
    example: str  # file in azure_wire/ whose 200 body is the template
    state_key: str  # key under "properties"
    busy: str
    ready: str
    failed: str
    lro_styles: tuple[LroStyle, ...]  # the first is the default


_ALL_LRO_STYLES: tuple[LroStyle, ...] = get_args(LroStyle)
_CONTAINER_APP = _Kind(
    label="Microsoft.App/containerApps",
    example="containerapps_get_2025-01-01.json",
    state_key="provisioningState",
    busy="InProgress",
    ready="Succeeded",
    failed="Failed",
    lro_styles=_ALL_LRO_STYLES,
)
_POSTGRES = _Kind(
    label="Microsoft.DBforPostgreSQL/flexibleServers",
    example="postgresql_flexibleservers_get_2024-08-01.json",
    state_key="state",  # Postgres has no provisioningState on the wire
    busy="Updating",
    ready="Ready",
    failed="Ready",  # a failed update leaves the server running as it was
    lro_styles=("azure-async-operation", "location"),  # its SDK accepts only 202 from PATCH
)
_SQL_DATABASE = _Kind(
    label="Microsoft.Sql/servers/databases",
    example="sql_databases_get_2023-08-01.json",
    state_key="status",  # SQL has no provisioningState on the wire either
    busy="Scaling",
    ready="Online",
    failed="Online",
    lro_styles=("azure-async-operation", "location", "sync"),
)
_REDIS = _Kind(
    label="Microsoft.Cache/redis",
    example="redis_get_2024-11-01.json",
    state_key="provisioningState",
    busy="Updating",
    ready="Succeeded",
    failed="Failed",
    lro_styles=("location", "azure-async-operation", "provisioning-state", "sync"),
)


@dataclass
class _Operation:
    id: str
    resource: _Resource
    patch: Json
    style: LroStyle
    polls_left: int
    failure: ArmError | None
    started_at: str
    status: Literal["InProgress", "Succeeded", "Failed"] = "InProgress"
    ended_at: str | None = None


@dataclass
class _Resource:
    kind: _Kind
    body: Json
    lro: _LroConfig | None = None
    operation: _Operation | None = None  # the PATCH in flight


@dataclass
class _Revision:
    body: Json
    replicas: list[Json] = field(default_factory=list)


@dataclass(frozen=True)
class _Series:
    metric: str  # the metric name as registered (Azure echoes its canonical casing)
    unit: str
    points: tuple[MetricPoint, ...]
    dimension: tuple[str, str] | None
    null_newest: bool


@dataclass(frozen=True)
class _MessageCounts:
    active: int
    dead_letter: int
    scheduled: int

    @property
    def total(self) -> int:
        return self.active + self.dead_letter + self.scheduled


_SERVERFARM = _Kind(
    label="Microsoft.Web/serverfarms",
    example="web_serverfarms_get_2025-03-01.json",
    state_key="provisioningState",
    busy="InProgress",
    ready="Succeeded",
    failed="Failed",
    lro_styles=("sync", "azure-async-operation", "location", "provisioning-state"),
)
# what Azure reports as a plan's maximumNumberOfWorkers, per tier (App Service limits)
_SERVERFARM_MAX_WORKERS = {
    "free": 1,
    "shared": 1,
    "basic": 3,
    "standard": 10,
    "premium": 30,
    "premiumv2": 30,
    "premiumv3": 30,
    "isolated": 100,
    "isolatedv2": 100,
}
# the plan's read-only properties, which a PUT does not replace
_SERVERFARM_READ_ONLY = frozenset(
    {"geoRegion", "maximumNumberOfWorkers", "numberOfSites", "numberOfWorkers", "status"}
)

_ARM_OPERATION = re.compile(
    r"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+"
    r"/(?P<channel>operationStatuses|operationResults)/(?P<op>[^/]+)$",
    re.IGNORECASE,
)
_CONTAINER_APP_ID = (
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.App/containerApps/[^/]+"
)
_REVISIONS = re.compile(rf"^(?P<app>{_CONTAINER_APP_ID})/revisions$", re.IGNORECASE)
_REPLICAS = re.compile(
    rf"^(?P<app>{_CONTAINER_APP_ID})/revisions/(?P<revision>[^/]+)/replicas$", re.IGNORECASE
)
_SERVERFARM_OPERATION = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Web/serverfarms/[^/]+"
    r"/operationresults/(?P<op>[^/]+)$",
    re.IGNORECASE,
)
_METRICS_BATCH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/metrics:getBatch$", re.IGNORECASE)
_LOGS_QUERY = re.compile(r"^/v1/workspaces/(?P<workspace>[^/]+)/query$", re.IGNORECASE)
_SB_SUBSCRIPTION = re.compile(r"^/(?P<topic>[^/]+)/subscriptions/(?P<sub>[^/]+)$", re.IGNORECASE)
_SB_QUEUE = re.compile(r"^/(?P<queue>[^/$][^/]*)$")
_SUBSCRIPTION_IN_PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.IGNORECASE)
_PROVIDER_IN_ID = re.compile(r"/providers/(?P<namespace>[^/]+)/", re.IGNORECASE)
_FILTER_CLAUSE = re.compile(
    r"^\s*(?P<dimension>[^']+?)\s+eq\s+'(?P<value>[^']*)'\s*$", re.IGNORECASE
)

_DEFAULT_ERROR_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
    529: "ServerBusy",  # metrics:getBatch throttling; Azure publishes no code string for it
}


class FakeAzure:
    """In-memory Azure behind five TLS servers. Start it with ``FakeAzure.running()``::

        async with FakeAzure.running() as fake:
            app_id = fake.add_container_app(sub, "rg", "web", min_replicas=1, max_replicas=5)
            fake.set_lro("azure-async-operation", polls=2)
            fake.inject(service="arm", method="GET", status=429, retry_after=1, times=3)
            ...  # drive the code under test with clients built as in the module docstring
            (patch,) = fake.calls("arm", "PATCH")
            assert patch.body == {"properties": {"template": {"scale": {"minReplicas": 3}}}}

    Tests arrange state with the ``add_*``/``set_*`` methods and ``inject``, and check the
    outcome with ``calls``/``requests`` and ``resource``.
    """

    ca_path: str
    """PEM of the servers' self-signed certificate: pass it as ``connection_verify``."""

    page_size: int = 2
    """Revisions per page of ``list_revisions``; small so that tests exercise ``nextLink``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._resources: dict[str, _Resource] = {}
        self._revisions: dict[str, list[_Revision]] = {}
        self._operations: dict[str, _Operation] = {}
        self._lro: _LroConfig | None = None
        self._metrics: dict[tuple[str, str], dict[tuple[str, str] | None, _Series]] = {}
        self._log_answers: dict[tuple[str, str], tuple[int, Json]] = {}
        self._queues: dict[str, _MessageCounts] = {}
        self._storage_queues: dict[str, int] = {}
        # container → blob name → metadata (containers hold only what set_checkpoint wrote)
        self._blobs: dict[str, dict[str, dict[str, str]]] = {}
        self.eventhubs = FakeEventHubs()
        self._amqp = contextlib.AsyncExitStack()
        self._topic_subscriptions: dict[tuple[str, str], _MessageCounts] = {}
        self._faults: list[Fault] = []
        self._errors: list[Exception] = []
        self._ports: dict[Service, int] = {}
        self._runners: list[web.AppRunner] = []
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[FakeAzure]:
        """Start the servers, yield the fake, stop them.

        Raises ``FakeAzureError`` on exit if any request hit an error inside the fake.
        """
        fake = cls()
        with tempfile.TemporaryDirectory(prefix="azure-fake-") as tmp:
            try:
                await fake._start(Path(tmp))
                yield fake
            finally:
                await fake._stop()
        if errors := fake._errors + fake.eventhubs.errors:
            raise FakeAzureError(f"the fake failed serving requests: {errors!r}") from errors[0]

    async def _start(self, directory: Path) -> None:
        cert_path, key_path = _write_self_signed_cert(directory)
        self.ca_path = str(cert_path)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert_path, key_path)
        handlers: dict[Service, Handler] = {
            "arm": self._arm,
            "metrics": self._metrics_batch,
            "logs": self._logs_query,
            "servicebus": self._servicebus,
            "queue": self._storage_queue,
            "blob": self._blob,
        }
        for service, handler in handlers.items():
            app = web.Application(middlewares=[self._middleware(service)])
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
            self._ports[service] = runner.addresses[0][1]
        await self._amqp.enter_async_context(self.eventhubs.serving(tls))

    async def _stop(self) -> None:
        self._closing.set()  # wakes requests held by a delay fault
        await self._amqp.aclose()
        for runner in self._runners:
            await runner.cleanup()

    @property
    def arm_url(self) -> str:
        """``base_url`` for the management clients."""
        return f"https://127.0.0.1:{self._ports['arm']}"

    @property
    def metrics_url(self) -> str:
        """``endpoint`` for ``MetricsClient``."""
        return f"https://127.0.0.1:{self._ports['metrics']}"

    @property
    def logs_url(self) -> str:
        """``endpoint`` for ``LogsQueryClient``."""
        return f"https://127.0.0.1:{self._ports['logs']}"

    @property
    def servicebus_namespace(self) -> str:
        """``fully_qualified_namespace`` for ``ServiceBusAdministrationClient``."""
        return f"127.0.0.1:{self._ports['servicebus']}"

    @property
    def storage_queue_account(self) -> str:
        """The storage account's host, for ``https://{host}`` as the queue's account URL."""
        return f"127.0.0.1:{self._ports['queue']}"

    @property
    def blob_account(self) -> str:
        """The blob account's host, for ``https://{host}`` as the account URL."""
        return f"127.0.0.1:{self._ports['blob']}"

    @property
    def eventhubs_address(self) -> str:
        """Where the Event Hubs namespace listens (AMQP over TLS): ``127.0.0.1:{port}``."""
        return f"127.0.0.1:{self.eventhubs.port}"

    def add_blob_container(self, container: str) -> None:
        """Create an empty blob container (``set_checkpoint`` creates it too)."""
        self._blobs.setdefault(container, {})

    def set_checkpoint(
        self,
        container: str,
        namespace: str,
        event_hub: str,
        consumer_group: str,
        partition: str,
        sequence_number: int,
    ) -> None:
        """Write a partition's checkpoint blob as ``BlobCheckpointStore.update_checkpoint``
        does: ``{namespace}/{hub}/{group}/checkpoint/{partition}`` (lowercase), its
        position in the metadata ``sequencenumber`` and ``offset``."""
        name = f"{namespace}/{event_hub}/{consumer_group}/checkpoint/{partition}".lower()
        self._blobs.setdefault(container, {})[name] = {
            "sequencenumber": str(sequence_number),
            "offset": str(sequence_number * 512),
        }

    def set_storage_queue(self, queue: str, approximate_messages: int) -> None:
        """Create (or refill) a storage queue holding about ``approximate_messages``."""
        self._storage_queues[queue] = approximate_messages

    # ------------------------------------------------------------------ ARM resources

    def add_container_app(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        min_replicas: int = 1,
        max_replicas: int = 5,
        ready_replicas: int = 1,
        location: str = "eastus",
    ) -> str:
        """Register a Container App with one active revision; return its ARM id."""
        body = _example_body(
            _CONTAINER_APP.example,
            subscriptionId=subscription,
            resourceGroupName=resource_group,
            containerAppName=name,
        )
        body["location"] = location
        body["properties"]["template"]["scale"].update(
            minReplicas=min_replicas, maxReplicas=max_replicas
        )
        body["properties"]["configuration"]["ingress"]["traffic"] = [
            {"weight": 100, "latestRevision": True}
        ]
        app = self._add(_CONTAINER_APP, body)
        self._revisions[_key(body["id"])] = []
        self._start_revision(app, ready_replicas)
        return str(body["id"])

    def add_revision(
        self,
        app_id: str,
        name: str,
        *,
        active: bool = False,
        traffic_weight: int = 0,
        replicas: int = 0,
    ) -> None:
        """Add an older revision to a Container App, listed just before the latest one."""
        app = self._resource(app_id)
        revision = _Revision(
            _revision_body(
                app.body, name, active=active, traffic_weight=traffic_weight, replicas=replicas
            )
        )
        revision.replicas = [_replica_body(revision.body, i, ready=True) for i in range(replicas)]
        revisions = self._revisions[_key(app_id)]
        revisions.insert(len(revisions) - 1, revision)

    def set_replicas(
        self, app_id: str, *, ready: int, not_ready: int = 0, revision: str | None = None
    ) -> None:
        """Set a revision's replicas (default: the latest ready revision).

        Ready replicas are ``Running`` with ready containers; the others are ``NotRunning``
        with containers ``Waiting``.
        """
        app = self._resource(app_id)
        target = self._revision(
            app_id, revision or app.body["properties"]["latestReadyRevisionName"]
        )
        if target is None:
            raise FakeAzureError(f"no revision {revision!r} in {app_id}")
        target.replicas = [
            _replica_body(target.body, i, ready=i < ready) for i in range(ready + not_ready)
        ]
        target.body["properties"]["replicas"] = ready + not_ready

    def add_postgres_server(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        sku_name: str = "Standard_D2ds_v4",
        tier: str = "GeneralPurpose",
        storage_gb: int = 128,
        location: str = "eastus",
    ) -> str:
        """Register a PostgreSQL flexible server; return its ARM id."""
        body = _example_body(
            _POSTGRES.example,
            subscriptionId=subscription,
            resourceGroupName=resource_group,
            serverName=name,
        )
        body.update(location=location, sku={"name": sku_name, "tier": tier})
        body["properties"]["storage"]["storageSizeGB"] = storage_gb
        return str(self._add(_POSTGRES, body).body["id"])

    def add_sql_database(
        self,
        subscription: str,
        resource_group: str,
        server: str,
        database: str,
        *,
        sku_name: str = "GP_Gen5",
        tier: str = "GeneralPurpose",
        capacity: int = 2,
        location: str = "eastus",
    ) -> str:
        """Register an Azure SQL database; return its ARM id."""
        body = _example_body(
            _SQL_DATABASE.example,
            subscriptionId=subscription,
            resourceGroupName=resource_group,
            serverName=server,
            databaseName=database,
        )
        body.update(location=location, sku={"name": sku_name, "tier": tier, "capacity": capacity})
        _settle_sql_sku(body)
        return str(self._add(_SQL_DATABASE, body).body["id"])

    def add_redis_cache(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        sku_name: str = "Standard",
        family: str = "C",
        capacity: int = 1,
        shard_count: int | None = None,
        location: str = "eastus",
    ) -> str:
        """Register an Azure Cache for Redis; return its ARM id."""
        body = _example_body(
            _REDIS.example, subscriptionId=subscription, resourceGroupName=resource_group, name=name
        )
        body["location"] = location
        props = body["properties"]
        props.update(
            sku={"name": sku_name, "family": family, "capacity": capacity}, linkedServers=[]
        )
        if shard_count is not None:
            props["shardCount"] = shard_count
        return str(self._add(_REDIS, body).body["id"])

    def add_app_service_plan(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        sku_name: str = "S1",
        tier: str = "Standard",
        capacity: int = 1,
        maximum_workers: int | None = None,
        location: str = "eastus",
    ) -> str:
        """Register an App Service plan (``Microsoft.Web/serverfarms``); return its ARM id.

        ``maximum_workers`` is the ``maximumNumberOfWorkers`` Azure reports; by default the
        tier's limit (``None`` for a tier without one here leaves the property out).
        """
        body = _example_body(
            _SERVERFARM.example,
            subscriptionId=subscription,
            resourceGroupName=resource_group,
            name=name,
        )
        body["location"] = location
        body["sku"] = {
            "name": sku_name,
            "tier": tier,
            "size": sku_name,
            "family": re.sub(r"\d.*$", "", sku_name) or sku_name,
            "capacity": capacity,
        }
        props = body["properties"]
        props.update(geoRegion=location, numberOfWorkers=capacity, numberOfSites=1)
        maximum = maximum_workers or _SERVERFARM_MAX_WORKERS.get(tier.lower())
        if maximum is None:
            props.pop("maximumNumberOfWorkers", None)
        else:
            props["maximumNumberOfWorkers"] = maximum
        return str(self._add(_SERVERFARM, body).body["id"])

    def resource(self, resource_id: str) -> Json:
        """A copy of a resource's stored body, read without advancing any operation."""
        return copy.deepcopy(self._resource(resource_id).body)

    def set_lro(
        self,
        style: LroStyle,
        *,
        polls: int = 1,
        fail: ArmError | None = None,
        resource_id: str | None = None,
    ) -> None:
        """Choose how PATCHes complete, for one resource or (by default) for all.

        * ``azure-async-operation``: 202 with ``Azure-AsyncOperation`` (and ``Location``)
          headers. The status URL answers ``{"status": "InProgress"}`` ``polls`` times, then
          ``Succeeded``, or ``Failed`` with ``error``. The SDK then GETs the resource.
        * ``location``: 202 with ``Location``. That URL answers 202 ``polls`` times, then
          200 with the resource, or 400 with ``{"error": ...}`` on failure.
        * ``provisioning-state``: 200 with the resource in its busy state. The SDK then
          GETs the resource, and each GET counts as one poll until the state is terminal.
        * ``sync``: 200 with the patched resource at once, or 400 with ``fail`` (the request
          is rejected, so the resource does not turn ``Failed``).

        Without any ``set_lro`` each resource type uses the style Azure uses for it: a
        location header for Redis, azure-async-operation for the others, one poll. Some
        types cannot answer in every style (see ``_Kind.lro_styles``). A per-resource
        choice is checked here, a global one when a PATCH arrives.
        """
        if style not in _ALL_LRO_STYLES:
            raise ValueError(f"unknown LRO style {style!r}")
        if polls < 0:
            raise ValueError("polls must be >= 0")
        config = _LroConfig(style, polls, fail)
        if resource_id is None:
            self._lro = config
            return
        resource = self._resource(resource_id)
        _check_lro_style(resource.kind, style)
        resource.lro = config

    def _add(self, kind: _Kind, body: Json) -> _Resource:
        body["properties"][kind.state_key] = kind.ready
        resource = _Resource(kind, body)
        self._resources[_key(body["id"])] = resource
        return resource

    def _resource(self, resource_id: str) -> _Resource:
        try:
            return self._resources[_key(resource_id)]
        except KeyError:
            raise FakeAzureError(f"unknown resource {resource_id}") from None

    def _revision(self, app_id: str, name: str) -> _Revision | None:
        revisions = self._revisions[_key(app_id)]
        return next((r for r in revisions if r.body["name"].lower() == name.lower()), None)

    def _start_revision(self, app: _Resource, replicas: int) -> None:
        """Create the app's next revision and make it the only active one, with all traffic."""
        revisions = self._revisions[_key(app.body["id"])]
        for old in revisions:
            old.replicas = []
            old.body["properties"].update(
                active=False, trafficWeight=0, replicas=0, runningState="Stopped"
            )
        name = f"{app.body['name']}--{len(revisions) + 1:07d}"
        revision = _Revision(
            _revision_body(app.body, name, active=True, traffic_weight=100, replicas=replicas)
        )
        revision.replicas = [_replica_body(revision.body, i, ready=True) for i in range(replicas)]
        revisions.append(revision)
        app.body["properties"].update(
            latestRevisionName=name,
            latestReadyRevisionName=name,
            latestRevisionFqdn=revision.body["properties"]["fqdn"],
        )

    # ------------------------------------------------------------------ metrics, logs, Service Bus

    def set_metric(
        self,
        resource_id: str,
        metric: str,
        points: Iterable[MetricPoint],
        *,
        unit: str = "Count",
        dimension: tuple[str, str] | None = None,
        null_newest: bool = False,
    ) -> None:
        """Set one metric series of a resource for ``metrics:getBatch``.

        ``points`` are ``(timestamp, value)`` pairs. A ``None`` value is an empty grain: the
        data point has a ``timeStamp`` and no aggregation. Every requested aggregation
        (average, maximum, ...) reports the same value. Only points inside the requested
        ``[starttime, endtime)`` come back. ``null_newest`` empties the newest returned
        point, like Azure's still-filling current grain.

        ``dimension=("EntityName", "orders")`` registers the series of one dimension value.
        It is returned only to requests whose ``filter`` selects it (``EntityName eq
        'orders'``, ``... or ...``, or ``eq '*'``). Requests without a filter get the series
        registered without a dimension.
        """
        key = (resource_id.lower(), metric.lower())
        dimension_key = (dimension[0].lower(), dimension[1].lower()) if dimension else None
        self._metrics.setdefault(key, {})[dimension_key] = _Series(
            metric, unit, tuple(points), dimension, null_newest
        )

    def set_log_result(
        self,
        workspace_id: str,
        query: str,
        *,
        columns: Iterable[tuple[str, str]],
        rows: Iterable[list[Any]],
        partial_error: ArmError | None = None,
    ) -> None:
        """Answer one Log Analytics query (matched exactly, ignoring surrounding blanks).

        ``columns`` are ``(name, type)`` pairs with Kusto type names (``real``, ``long``,
        ``string``, ``datetime``...). Cells go out as given, so send numbers as strings to
        mimic the service. ``partial_error`` adds the top-level ``error`` that makes the SDK
        return ``LogsQueryPartialResult``.
        """
        table = _example_part("loganalytics_query_v1.json", "responses", "200", "body", "tables", 0)
        table["columns"] = [{"name": name, "type": kusto_type} for name, kusto_type in columns]
        table["rows"] = [list(row) for row in rows]
        body: Json = {"tables": [table]}
        if partial_error is not None:
            body["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [partial_error._asdict()],
            }
        self._log_answers[_log_key(workspace_id, query)] = (200, body)

    def set_log_timeout(self, workspace_id: str, query: str) -> None:
        """Make a query time out on the server: 504 ``GatewayTimeout``."""
        error = ArmError(
            "GatewayTimeout",
            "The query was cancelled because it exceeded the allowed execution time "
            "(see the Prefer: wait=N request header).",
        )
        self._log_answers[_log_key(workspace_id, query)] = (504, {"error": error._asdict()})

    def set_queue(
        self, name: str, *, active: int = 0, dead_letter: int = 0, scheduled: int = 0
    ) -> None:
        """Create or update a queue's runtime message counts."""
        self._queues[name.lower()] = _MessageCounts(active, dead_letter, scheduled)

    def set_subscription(
        self, topic: str, subscription: str, *, active: int = 0, dead_letter: int = 0
    ) -> None:
        """Create or update a topic subscription's runtime message counts."""
        self._topic_subscriptions[(topic.lower(), subscription.lower())] = _MessageCounts(
            active, dead_letter, 0
        )

    # ------------------------------------------------------------------ faults and the request log

    def inject(
        self,
        *,
        service: Service,
        status: int | None = None,
        method: str | None = None,
        path: str = "",
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        ratelimit_remaining: int | None = None,
        error: ArmError | None = None,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> Fault:
        """Answer the next ``times`` matching requests (``None``: until cleared) with a fault.

        A request matches on ``service``, ``method`` (any if None) and ``path``, a
        case-insensitive regex searched in the URL path (the default matches every path).
        The fault reads the request, waits ``delay`` seconds, then answers ``status`` with
        the service's error body, or passes the request on if ``status`` is None (so a
        delayed write whose client gave up is still applied, as in Azure). The error body carries
        ``error`` or a default code for the status (ARM 429: ``SubscriptionRequestsThrottled``).
        ``retry_after`` sets ``Retry-After`` in seconds (fractions allowed), and
        ``retry_after_ms`` sets ``retry-after-ms``. On ARM, ``ratelimit_remaining`` (default 0
        for a 429) goes into ``x-ms-ratelimit-remaining-subscription-reads`` for GET or
        ``-writes`` otherwise.
        """
        if status is None and not delay:
            raise ValueError("a fault needs a status, a delay, or both")
        fault = Fault(
            service=service,
            method=method.upper() if method else None,
            path=re.compile(path, re.IGNORECASE),
            status=status,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            ratelimit_remaining=ratelimit_remaining,
            error=error,
            delay=delay,
            times_left=times,
        )
        self._faults.append(fault)
        return fault

    def throttle_storm(
        self, service: Service = "arm", *, retry_after: float = 1, times: int | None = None
    ) -> Fault:
        """A 429 + ``Retry-After`` on every request to ``service``, until cleared by default."""
        return self.inject(service=service, status=429, retry_after=retry_after, times=times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def calls(
        self, service: Service | None = None, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, filtered by service, method and a case-insensitive path regex."""
        pattern = re.compile(path, re.IGNORECASE) if path is not None else None
        return [
            r
            for r in self.requests
            if (service is None or r.service == service)
            and (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
        ]

    # ------------------------------------------------------------------ request pipeline

    def _middleware(self, service: Service) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                response = await self._respond(service, request, handler)
            except Exception as exc:  # a bug in the fake or an impossible request: fail the test
                self._errors.append(exc)
                response = _error_response(service, 500, ArmError("FakeAzureError", repr(exc)))
            if service == "arm":
                _add_arm_headers(request, response)
            self.requests.append(
                RecordedRequest(
                    service=service,
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    body=await _body(request),
                    headers={
                        k: v for k, v in request.headers.items() if k.lower() != "authorization"
                    },
                    status=response.status,
                )
            )
            return response

        return record

    async def _respond(
        self, service: Service, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith(
            ("Bearer ", "SharedAccessSignature ", "SharedKey ")
        ):
            missing = ArmError(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
            return _error_response(service, 401, missing)
        fault = self._take_fault(service, request)
        if fault is None:
            return await handler(request)
        if fault.delay:
            # Azure has the whole request before it is slow to answer, so a write whose
            # client timed out is still applied (aiohttp keeps the body it read)
            await request.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
        if fault.status is None:
            return await handler(request)
        return _fault_response(service, request, fault, fault.status)

    def _take_fault(self, service: Service, request: web.Request) -> Fault | None:
        fault = next(
            (f for f in self._faults if f.matches(service, request.method, request.path)), None
        )
        if fault is not None and fault.times_left is not None:
            fault.times_left -= 1
            if fault.times_left == 0:
                self._faults.remove(fault)
        return fault

    # ------------------------------------------------------------------ ARM handlers

    async def _arm(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            return _arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        path = request.path
        if match := _ARM_OPERATION.match(path):
            return self._operation_status(request, match["channel"].lower(), match["op"])
        if match := _SERVERFARM_OPERATION.match(path):
            return self._serverfarm_operation(request, match["op"])
        if match := _REPLICAS.match(path):
            return self._list_replicas(match["app"], match["revision"])
        if match := _REVISIONS.match(path):
            return self._list_revisions(request, match["app"])
        resource = self._resources.get(_key(path))
        if resource is None:
            return _not_found(path)
        if request.method == "GET":
            return self._get_resource(resource)
        if request.method == "PATCH":
            return self._patch_resource(request, resource, await _body(request))
        if request.method == "PUT" and resource.kind is _SERVERFARM:
            return self._put_serverfarm(resource, await _body(request))
        return _arm_error(
            405, "MethodNotAllowed", f"The fake does not implement {request.method} on {path}."
        )

    def _get_resource(self, resource: _Resource) -> web.Response:
        operation = resource.operation
        if operation is not None and operation.style == "provisioning-state":
            self._advance(operation)
        return web.json_response(resource.body)

    def _patch_resource(
        self, request: web.Request, resource: _Resource, patch: Any
    ) -> web.Response:
        if not isinstance(patch, dict):
            return _arm_error(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            )
        if resource.operation is not None:
            return _arm_error(
                409,
                "AnotherOperationInProgress",
                f"Another operation on '{resource.body['name']}' is in progress.",
            )
        config = self._lro_for(resource)
        if config.style == "sync":
            if config.fail is not None:
                return _arm_error(400, config.fail.code, config.fail.message)
            self._apply(resource, patch)
            return web.json_response(resource.body)
        operation = _Operation(
            id=str(uuid.uuid4()),
            resource=resource,
            patch=patch,
            style=config.style,
            polls_left=config.polls,
            failure=config.fail,
            started_at=_iso(_now()),
        )
        self._operations[operation.id] = operation
        resource.operation = operation
        resource.body["properties"][resource.kind.state_key] = resource.kind.busy
        if config.style == "provisioning-state":
            return web.json_response(resource.body)
        status_url, result_url = _operation_urls(request, resource, operation)
        headers = {"Location": result_url}
        if config.style == "azure-async-operation":
            headers["Azure-AsyncOperation"] = status_url
        if resource.kind is _SERVERFARM:  # App Service answers its 202 with the plan
            return web.json_response(resource.body, status=202, headers=headers)
        return web.Response(status=202, headers=headers)

    def _put_serverfarm(self, resource: _Resource, body: Any) -> web.Response:
        """Create or update: the writable parts of the plan are replaced, synchronously."""
        if not isinstance(body, dict) or not isinstance(body.get("location"), str):
            return _arm_error(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: "
                "'location' is required.",
            )
        if resource.operation is not None:
            return _arm_error(
                409,
                "AnotherOperationInProgress",
                f"Another operation on '{resource.body['name']}' is in progress.",
            )
        old = resource.body
        properties = {
            **{
                k: v
                for k, v in (body.get("properties") or {}).items()
                if k not in _SERVERFARM_READ_ONLY
            },
            **{k: v for k, v in old["properties"].items() if k in _SERVERFARM_READ_ONLY},
        }
        replaced = {
            **{k: copy.deepcopy(v) for k, v in body.items() if k not in ("id", "name", "type")},
            "id": old["id"],
            "name": old["name"],
            "type": old["type"],
            "properties": properties,
        }
        replaced.setdefault("sku", copy.deepcopy(old["sku"]))
        resource.body = replaced
        self._apply(resource, {})
        return web.json_response(resource.body)

    def _serverfarm_operation(self, request: web.Request, operation_id: str) -> web.Response:
        """App Service's resource-scoped operation URL: a status body when it was handed out
        as ``Azure-AsyncOperation``, the Location protocol otherwise."""
        operation = self._operations.get(operation_id)
        if operation is None or request.method != "GET":
            return _arm_error(404, "OperationNotFound", f"Operation {operation_id} was not found.")
        channel = (
            "operationstatuses"
            if operation.style == "azure-async-operation"
            else "operationresults"
        )
        return self._operation_status(request, channel, operation_id)

    def _operation_status(
        self, request: web.Request, channel: str, operation_id: str
    ) -> web.Response:
        operation = self._operations.get(operation_id)
        if operation is None or request.method != "GET":
            return _arm_error(404, "OperationNotFound", f"Operation {operation_id} was not found.")
        self._advance(operation)
        if channel == "operationstatuses":
            return web.json_response(_operation_status_body(request.path, operation))
        if operation.status == "InProgress":
            return web.Response(status=202, headers={"Location": str(request.url)})
        if operation.failure is not None:
            return _arm_error(400, operation.failure.code, operation.failure.message)
        return web.json_response(operation.resource.body)

    def _list_revisions(self, request: web.Request, app_id: str) -> web.Response:
        if _key(app_id) not in self._revisions:
            return _not_found(app_id)
        if "$filter" in request.query:
            return _arm_error(
                400, "BadRequest", "The fake does not implement $filter on revisions."
            )
        try:
            offset = int(request.query.get("$skiptoken", "0"))
        except ValueError:
            return _arm_error(400, "InvalidSkipToken", "The $skiptoken is invalid.")
        revisions = self._revisions[_key(app_id)]
        end = offset + self.page_size
        next_link = None
        if end < len(revisions):
            api_version = request.query["api-version"]
            next_link = (
                f"https://{request.host}{request.path}?api-version={api_version}&$skiptoken={end}"
            )
        page = [r.body for r in revisions[offset:end]]
        return web.json_response({"value": page, "nextLink": next_link})

    def _list_replicas(self, app_id: str, revision_name: str) -> web.Response:
        if _key(app_id) not in self._revisions:
            return _not_found(app_id)
        revision = self._revision(app_id, revision_name)
        if revision is None:
            return _not_found(f"{app_id}/revisions/{revision_name}")
        return web.json_response({"value": revision.replicas})

    # ------------------------------------------------------------------ long-running operations

    def _lro_for(self, resource: _Resource) -> _LroConfig:
        config = resource.lro or self._lro or _LroConfig(resource.kind.lro_styles[0], 1, None)
        _check_lro_style(resource.kind, config.style)
        return config

    def _advance(self, operation: _Operation) -> None:
        """Count one poll of an operation; once its in-progress polls are used up, finish it."""
        if operation.status != "InProgress":
            return
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return
        resource = operation.resource
        resource.operation = None
        operation.ended_at = _iso(_now())
        if operation.failure is None:
            self._apply(resource, operation.patch)
            operation.status = "Succeeded"
        else:
            resource.body["properties"][resource.kind.state_key] = resource.kind.failed
            operation.status = "Failed"

    def _apply(self, resource: _Resource, patch: Json) -> None:
        """Apply a PATCH the way the service settles it."""
        resource.body = _merge_patch(resource.body, patch)
        resource.body["properties"][resource.kind.state_key] = resource.kind.ready
        if resource.kind is _SQL_DATABASE:
            _settle_sql_sku(resource.body)
        if resource.kind is _SERVERFARM:  # the plan's workers follow its capacity
            resource.body["properties"]["numberOfWorkers"] = resource.body["sku"]["capacity"]
        if resource.kind is _CONTAINER_APP and "template" in (patch.get("properties") or {}):
            self._roll_revision(resource)

    def _roll_revision(self, app: _Resource) -> None:
        """Start a revision for a template change, keeping the ready count within the new bounds."""
        previous = self._revision(app.body["id"], app.body["properties"]["latestReadyRevisionName"])
        ready = (
            sum(r["properties"]["runningState"] == "Running" for r in previous.replicas)
            if previous
            else 0
        )
        scale = app.body["properties"]["template"].get("scale", {})
        # Container Apps' defaults when the template omits a bound.
        ready = max(scale.get("minReplicas", 0), min(ready, scale.get("maxReplicas", 10)))
        self._start_revision(app, ready)

    # ------------------------------------------------------------------ metrics:getBatch

    async def _metrics_batch(self, request: web.Request) -> web.StreamResponse:
        match = _METRICS_BATCH.match(request.path)
        if match is None or request.method != "POST":
            return _metrics_error(404, "NotFound", f"No route for {request.method} {request.path}.")
        query = request.query
        for required in ("api-version", "metricnamespace", "metricnames"):
            if not query.get(required):
                return _metrics_error(
                    400, "BadRequest", f"The query parameter '{required}' is required."
                )
        body = await _body(request)
        resource_ids = body.get("resourceids") if isinstance(body, dict) else None
        if not isinstance(resource_ids, list) or not resource_ids:
            return _metrics_error(
                400, "BadRequest", "The request body must carry a non-empty 'resourceids' array."
            )
        if len(resource_ids) > _MAX_BATCH_RESOURCES:
            return _metrics_error(
                400,
                "BadRequest",
                f"The batch contains {len(resource_ids)} resource ids; at most "
                f"{_MAX_BATCH_RESOURCES} are allowed in one request.",
            )
        subscription = match["sub"].lower()
        for resource_id in resource_ids:
            in_path = _SUBSCRIPTION_IN_PATH.match(resource_id)
            if in_path is None or in_path["sub"].lower() != subscription:
                return _metrics_error(
                    400,
                    "BadRequest",
                    f"Resource id '{resource_id}' is not in subscription '{match['sub']}'. All "
                    "resources in a batch must belong to the subscription in the request path.",
                )
        try:
            window = _metrics_window(query.get("starttime"), query.get("endtime"))
            dimension_filter = _parse_filter(query["filter"]) if "filter" in query else None
        except ValueError as exc:
            return _metrics_error(400, "BadRequest", str(exc))
        values = [
            self._metrics_for_resource(resource_id, query, window, dimension_filter)
            for resource_id in resource_ids
        ]
        return web.json_response({"values": values})

    def _metrics_for_resource(
        self,
        resource_id: str,
        query: Mapping[str, str],
        window: tuple[dt.datetime, dt.datetime],
        dimension_filter: tuple[str, set[str] | None] | None,
    ) -> Json:
        start, end = window
        interval = query.get("interval", "PT1M")
        aggregations = [a.strip().lower() for a in query.get("aggregation", "average").split(",")]
        metrics = [
            self._metric(resource_id, name, window, aggregations, dimension_filter)
            for name in query["metricnames"].split(",")
        ]
        resource = self._resources.get(_key(resource_id))
        region = resource.body["location"] if resource else "eastus"
        return {
            "starttime": _iso(start),
            "endtime": _iso(end),
            # "FULL" asks for one grain spanning the window; Azure answers with its length.
            "interval": f"PT{int((end - start).total_seconds())}S"
            if interval.upper() == "FULL"
            else interval,
            "value": metrics,
            "namespace": query["metricnamespace"].lower(),
            "resourceregion": region.replace(" ", "").lower(),
            "resourceid": resource_id,
        }

    def _metric(
        self,
        resource_id: str,
        name: str,
        window: tuple[dt.datetime, dt.datetime],
        aggregations: list[str],
        dimension_filter: tuple[str, set[str] | None] | None,
    ) -> Json:
        registered = self._metrics.get((resource_id.lower(), name.lower()), {})
        selected = [s for key, s in registered.items() if _series_selected(key, dimension_filter)]
        any_series = next(iter(registered.values()), None)
        canonical = any_series.metric if any_series else name
        return {
            **_example_part(_METRICS_EXAMPLE, "responses", "200", "body", "values", 0, "value", 0),
            "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{canonical}",
            "name": {"value": canonical, "localizedValue": canonical},
            "displayDescription": canonical,
            "unit": any_series.unit if any_series else "Unspecified",
            "timeseries": [_timeseries(s, window, aggregations) for s in selected],
            "errorCode": "Success",
        }

    # ------------------------------------------------------------------ Log Analytics

    async def _logs_query(self, request: web.Request) -> web.StreamResponse:
        match = _LOGS_QUERY.match(request.path)
        if match is None or request.method != "POST":
            return _arm_error(
                404, "PathNotFoundError", f"The requested path does not exist: {request.path}"
            )
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _arm_error(
                400,
                "BadArgumentError",
                "The request had some invalid properties: 'query' is required.",
            )
        answer = self._log_answers.get(_log_key(match["workspace"], body["query"]))
        if answer is None:
            return _arm_error(
                400,
                "BadArgumentError",
                f"Nothing registered for workspace {match['workspace']}, query {body['query']!r}.",
            )
        status, payload = answer
        return web.json_response(payload, status=status)

    # ------------------------------------------------------------------ Service Bus administration

    async def _servicebus(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return _servicebus_error(405, f"The fake does not implement {request.method}.")
        api_version = request.query.get("api-version", "")
        if match := _SB_SUBSCRIPTION.match(request.path):
            counts = self._topic_subscriptions.get((match["topic"].lower(), match["sub"].lower()))
            template, title = "servicebus_subscription_entry_2021-05.xml", match["sub"]
        elif match := _SB_QUEUE.match(request.path):
            counts = self._queues.get(match["queue"].lower())
            template, title = "servicebus_queue_entry_2021-05.xml", match["queue"]
        else:
            return _servicebus_error(400, f"The fake does not implement {request.path}.")
        if counts is None:
            return web.Response(
                text=_wire_text("servicebus_entity_not_found_feed.xml"),
                headers={"Content-Type": "application/atom+xml;type=feed;charset=utf-8"},
            )
        entry = _servicebus_entry(
            template, request.host, request.path.lstrip("/"), title, api_version, counts
        )
        return web.Response(
            text=entry, headers={"Content-Type": "application/atom+xml;type=entry;charset=utf-8"}
        )

    # ------------------------------------------------------------------ Storage Queue

    async def _storage_queue(self, request: web.Request) -> web.StreamResponse:
        # an IP-style account URL: the path is /{queue}
        queue = request.path.strip("/")
        if request.method != "GET" or request.query.get("comp") != "metadata":
            return _storage_error(400, "UnsupportedQueryParameter", "The fake reads metadata only.")
        count = self._storage_queues.get(queue)
        if count is None:
            return _storage_error(404, "QueueNotFound", "The specified queue does not exist.")
        return web.Response(
            headers={
                "x-ms-approximate-messages-count": str(count),
                "x-ms-request-id": str(uuid.uuid4()),
                "x-ms-version": request.headers.get("x-ms-version", "2018-03-28"),
                "Content-Length": "0",
            }
        )

    # ------------------------------------------------------------------ Blob Storage

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        # an IP-style account URL: the path is /{container}
        container = request.path.strip("/")
        query = request.query
        if request.method != "GET" or (query.get("restype"), query.get("comp")) != (
            "container",
            "list",
        ):
            return _storage_error(400, "UnsupportedQueryParameter", "The fake lists blobs only.")
        blobs = self._blobs.get(container)
        if blobs is None:
            return _storage_error(
                404, "ContainerNotFound", "The specified container does not exist."
            )
        prefix = query.get("prefix", "")
        with_metadata = "metadata" in query.get("include", "").split(",")
        base = f"https://{request.host}/"
        listed = []
        for name, metadata in sorted(blobs.items()):
            if not name.startswith(prefix):
                continue
            meta = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in metadata.items())
            listed.append(
                f"<Blob><Name>{escape(name)}</Name><Properties>"
                "<Creation-Time>Mon, 05 Jan 2026 09:30:00 GMT</Creation-Time>"
                "<Last-Modified>Mon, 05 Jan 2026 09:30:00 GMT</Last-Modified>"
                "<Etag>0x8DE2C3A4B5C6D7E</Etag><Content-Length>0</Content-Length>"
                "<Content-Type>application/octet-stream</Content-Type>"
                "<BlobType>BlockBlob</BlobType><LeaseStatus>unlocked</LeaseStatus>"
                "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>"
                "</Properties>"
                + (f"<Metadata>{meta}</Metadata>" if with_metadata else "")
                + "</Blob>"
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="{escape(base)}" '
            f'ContainerName="{escape(container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(listed)}</Blobs><NextMarker />"
            "</EnumerationResults>"
        )
        return web.Response(
            text=xml,
            content_type="application/xml",
            headers={
                "x-ms-request-id": str(uuid.uuid4()),
                "x-ms-version": request.headers.get("x-ms-version", "2019-07-07"),
            },
        )


# ---------------------------------------------------------------------- wire examples


@functools.cache
def _wire_text(name: str) -> str:
    return (_WIRE_DIR / name).read_text(encoding="utf-8")


@functools.cache
def _example(name: str) -> Json:
    """A spec example, parsed once; hand out parts through ``_example_part``."""
    example: Json = json.loads(_wire_text(name))
    return example


def _example_part(name: str, *path: str | int) -> Json:
    """A copy of the object found by following ``path`` into a spec example."""
    node: Any = _example(name)
    for step in path:
        node = node[step]
    part: Json = copy.deepcopy(node)
    return part


def _example_body(example_file: str, /, **renames: str) -> Json:
    """The 200 body of a spec example, its sample ids renamed.

    ``renames`` maps an example parameter (``subscriptionId``, ``containerAppName``...) to
    its new value. The resource group is renamed only as an id segment because sample names
    like ``rg`` also occur inside other words.
    """
    example = _example(example_file)
    text = json.dumps(example["responses"]["200"]["body"])
    for parameter, new in renames.items():
        old = re.escape(example["parameters"][parameter])
        pattern = rf"(?<=/resourceGroups/){old}(?=/)" if parameter == "resourceGroupName" else old
        text = re.sub(pattern, lambda _, new=new: new, text, flags=re.IGNORECASE)
    body: Json = json.loads(text)
    return body


def _revision_body(
    app: Json, name: str, *, active: bool, traffic_weight: int, replicas: int
) -> Json:
    body = _example_part(
        "containerapps_revisions_list_2025-01-01.json", "responses", "200", "body", "value", 0
    )
    body.update(id=f"{app['id']}/revisions/{name}", name=name)
    body["properties"].update(
        createdTime=_iso(_now()),
        lastActiveTime=_iso(_now()),
        fqdn=f"{name}.internal.azurecontainerapps.io",
        template=copy.deepcopy(app["properties"]["template"]),
        active=active,
        trafficWeight=traffic_weight,
        replicas=replicas,
        provisioningState="Provisioned",
        runningState="Running" if active else "Stopped",
        healthState="Healthy",
    )
    return body


def _replica_body(revision: Json, index: int, *, ready: bool) -> Json:
    body = _example_part(
        "containerapps_replicas_list_2025-01-01.json", "responses", "200", "body", "value", 0
    )
    name = f"{revision['name']}-5d9774cff-{index:05d}"
    body.update(id=f"{revision['id']}/replicas/{name}", name=name)
    props = body["properties"]
    props.update(createdTime=_iso(_now()), runningState="Running" if ready else "NotRunning")
    props["containers"][0].update(
        name=revision["properties"]["template"]["containers"][0]["name"],
        ready=ready,
        started=ready,
        runningState="Running" if ready else "Waiting",
    )
    return body


def _servicebus_entry(
    template: str, host: str, path: str, title: str, api_version: str, counts: _MessageCounts
) -> str:
    """A recorded Atom entry with this entity's URL, name and message counts."""
    url = f"{escape(host)}/{escape(path)}?enrich=false&amp;api-version={escape(api_version)}"
    xml = re.sub(
        r"(?P<scheme>https|sb)://[^/]+/[^?]*\?enrich=false&amp;api-version=[^<\"]*",
        lambda m: f"{m['scheme']}://{url}",  # the recording says sb:// for subscriptions
        _wire_text(template),
    )
    xml = _set_element(xml, "title", escape(title))
    for element, value in (
        ("MessageCount", counts.total),
        ("ActiveMessageCount", counts.active),
        ("DeadLetterMessageCount", counts.dead_letter),
        ("ScheduledMessageCount", counts.scheduled),
    ):
        xml = _set_element(xml, element, str(value))
    return xml


def _set_element(xml: str, element: str, text: str) -> str:
    """Replace the text of every ``<element>``/``<prefix:element>`` (exact local name)."""
    pattern = rf"(<(?:\w+:)?{element}(?:\s[^>]*)?>)[^<]*(</(?:\w+:)?{element}>)"
    return re.sub(pattern, lambda m: f"{m[1]}{text}{m[2]}", xml)


# ---------------------------------------------------------------------- responses


def _arm_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _not_found(path: str) -> web.Response:
    match = re.search(
        r"/resourceGroups/(?P<rg>[^/]+)/providers/(?P<resource>.+)$", path, re.IGNORECASE
    )
    what = f"'{match['resource']}' under resource group '{match['rg']}'" if match else f"'{path}'"
    return _arm_error(
        404,
        "ResourceNotFound",
        f"The Resource {what} was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _metrics_error(status: int, code: str, message: str) -> web.Response:
    """An error in the batch API's shape (the spec example's ``default`` response)."""
    body = _example_part(_METRICS_EXAMPLE, "responses", "default", "body")
    body["error"].update(code=code, message=message)
    body["error"]["additionalInfo"][0]["info"] = f"TraceId={uuid.uuid4().hex}"
    return web.json_response(body, status=status, headers={"x-ms-error-code": code})


def _servicebus_error(status: int, message: str) -> web.Response:
    tracking = f"TrackingId:{uuid.uuid4()}, Timestamp:{_iso(_now())}"
    xml = f"<Error><Code>{status}</Code><Detail>{escape(message)} {tracking}</Detail></Error>"
    return web.Response(status=status, text=xml, content_type="application/xml")


def _storage_error(status: int, code: str, message: str) -> web.Response:
    request_id = uuid.uuid4()
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}\n"
        f"RequestId:{request_id}\nTime:{_iso(_now())}</Message></Error>"
    )
    return web.Response(
        status=status,
        text=xml,
        content_type="application/xml",
        headers={"x-ms-error-code": code, "x-ms-request-id": str(request_id)},
    )


def _error_response(service: Service, status: int, error: ArmError) -> web.Response:
    if service in ("queue", "blob"):
        return _storage_error(status, error.code, error.message)
    if service == "servicebus":
        return _servicebus_error(status, error.message)
    if service == "metrics":
        return _metrics_error(status, error.code, error.message)
    return _arm_error(status, error.code, error.message)


def _fault_response(
    service: Service, request: web.Request, fault: Fault, status: int
) -> web.Response:
    error = fault.error or _default_fault_error(service, request, fault, status)
    response = _error_response(service, status, error)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        response.headers["retry-after-ms"] = str(fault.retry_after_ms)
    remaining = fault.ratelimit_remaining
    if service == "arm" and (remaining is not None or status == 429):
        response.headers[_ratelimit_header(request.method)] = str(remaining or 0)
    return response


def _default_fault_error(
    service: Service, request: web.Request, fault: Fault, status: int
) -> ArmError:
    if service == "arm" and status == 429:
        subscription = _SUBSCRIPTION_IN_PATH.match(request.path)
        operation = "read" if request.method == "GET" else "write"
        wait = f"{fault.retry_after:g}" if fault.retry_after is not None else "a few"
        return ArmError(
            "SubscriptionRequestsThrottled",
            f"Number of '{operation}' requests for subscription "
            f"'{subscription['sub'] if subscription else ''}' exceeded the limit. "
            f"Please try again after '{wait}' seconds.",
        )
    code = _DEFAULT_ERROR_CODES.get(status, "Error")
    return ArmError(code, f"Injected fault: HTTP {status} ({code}).")


def _add_arm_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every ARM response carries."""
    response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
    response.headers.setdefault("x-ms-correlation-request-id", str(uuid.uuid4()))
    remaining = _ARM_REMAINING_READS if request.method == "GET" else _ARM_REMAINING_WRITES
    response.headers.setdefault(_ratelimit_header(request.method), str(remaining))


def _ratelimit_header(method: str) -> str:
    kind = "reads" if method == "GET" else "writes"
    return f"x-ms-ratelimit-remaining-subscription-{kind}"


def _operation_urls(
    request: web.Request, resource: _Resource, operation: _Operation
) -> tuple[str, str]:
    """Absolute (Azure-AsyncOperation, Location) URLs on this server, ARM-style."""
    resource_id = resource.body["id"]
    query = f"?api-version={request.query['api-version']}"
    if resource.kind is _SERVERFARM:  # one URL under the plan for both headers
        url = f"https://{request.host}{resource_id}/operationresults/{operation.id}{query}"
        return url, url
    subscription = _SUBSCRIPTION_IN_PATH.match(resource_id)
    provider = _PROVIDER_IN_ID.search(resource_id)
    assert subscription is not None and provider is not None
    region = resource.body["location"].replace(" ", "").lower()
    root = (
        f"https://{request.host}/subscriptions/{subscription['sub']}/providers/"
        f"{provider['namespace']}/locations/{region}"
    )
    return (
        f"{root}/operationStatuses/{operation.id}{query}",
        f"{root}/operationResults/{operation.id}{query}",
    )


def _operation_status_body(path: str, operation: _Operation) -> Json:
    body: Json = {
        "id": path,
        "name": operation.id,
        "status": operation.status,
        "startTime": operation.started_at,
    }
    if operation.ended_at is not None:
        body["endTime"] = operation.ended_at
    if operation.status == "Failed" and operation.failure is not None:
        body["error"] = operation.failure._asdict()
    return body


# ---------------------------------------------------------------------- metrics helpers


def _metrics_window(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The requested ``[starttime, endtime)``; the last hour when the client sends none."""
    end_time = _parse_time(end) if end else _now()
    start_time = _parse_time(start) if start else end_time - _DEFAULT_METRICS_WINDOW
    if start_time > end_time:
        raise ValueError("starttime must not be after endtime.")
    return start_time, end_time


def _parse_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid time '{value}'; expected ISO 8601.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parse_filter(expression: str) -> tuple[str, set[str] | None]:
    """Parse ``Dim eq 'a' or Dim eq 'b'`` (or ``Dim eq '*'``) into (dimension, values or None).

    The fake supports one dimension per filter; Azure accepts more, so anything else is
    rejected loudly rather than ignored.
    """
    dimension: str | None = None
    values: set[str] | None = set()
    for clause in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE):
        match = _FILTER_CLAUSE.match(clause)
        if match is None or (dimension is not None and match["dimension"].lower() != dimension):
            raise ValueError(
                f"Unsupported filter '{expression}': the fake handles "
                "\"Dim eq 'v1' or Dim eq 'v2'\" on a single dimension."
            )
        dimension = match["dimension"].lower()
        if values is not None:
            values = None if match["value"] == "*" else values | {match["value"].lower()}
    assert dimension is not None
    return dimension, values


def _series_selected(
    dimension_key: tuple[str, str] | None, dimension_filter: tuple[str, set[str] | None] | None
) -> bool:
    if dimension_filter is None or dimension_key is None:
        return dimension_filter is None and dimension_key is None
    dimension, values = dimension_filter
    return dimension_key[0] == dimension and (values is None or dimension_key[1] in values)


def _timeseries(
    series: _Series, window: tuple[dt.datetime, dt.datetime], aggregations: list[str]
) -> Json:
    start, end = window
    points = sorted(
        ((_as_utc(ts), value) for ts, value in series.points if start <= _as_utc(ts) < end),
        key=lambda point: point[0],
    )
    data = [
        {"timeStamp": _iso(ts), **({a: value for a in aggregations} if value is not None else {})}
        for ts, value in points
    ]
    if series.null_newest and data:
        data[-1] = {"timeStamp": data[-1]["timeStamp"]}
    metadata = []
    if series.dimension is not None:
        name, value = series.dimension
        metadata = [{"name": {"value": name.lower(), "localizedValue": name}, "value": value}]
    return {"metadatavalues": metadata, "data": data}


# ---------------------------------------------------------------------- small helpers


def _key(resource_id: str) -> str:
    return resource_id.rstrip("/").lower()


def _log_key(workspace_id: str, query: str) -> tuple[str, str]:
    return workspace_id.lower(), query.strip()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(timestamp: dt.datetime) -> dt.datetime:
    return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=dt.UTC)


def _iso(timestamp: dt.datetime) -> str:
    return timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _body(request: web.Request) -> Any:
    """The body as JSON, as text if it is not JSON, or None if empty. aiohttp caches it."""
    text = await request.text()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = _merge_patch(merged.get(name), value)
    return merged


def _settle_sql_sku(body: Json) -> None:
    """Derive SQL's service-objective fields from ``sku``, as the service does after scaling.

    A vCore objective name such as ``GP_Gen5_4`` may be sent as the sku name; the service
    splits it into name ``GP_Gen5`` and capacity 4.
    """
    sku = body["sku"]
    if objective := re.fullmatch(r"(?P<name>.+_.+)_(?P<capacity>\d+)", sku["name"]):
        sku.update(name=objective["name"], capacity=int(objective["capacity"]))
    vcore = "_" in sku["name"] and sku.get("capacity") is not None
    service_objective = f"{sku['name']}_{sku['capacity']}" if vcore else sku["name"]
    body["properties"].update(
        currentSku=copy.deepcopy(sku),
        currentServiceObjectiveName=service_objective,
        requestedServiceObjectiveName=service_objective,
    )


def _check_lro_style(kind: _Kind, style: LroStyle) -> None:
    if style not in kind.lro_styles:
        raise FakeAzureError(
            f"{kind.label} PATCH cannot complete in style {style!r}; it uses {kind.lro_styles}"
        )


def _write_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for IP 127.0.0.1 and its key; return (cert, key) paths.

    The certificate is its own CA (``connection_verify`` trusts it directly). It carries the
    extensions that strict X.509 verification (Python 3.13+ default) insists on.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-azure-ca.pem", directory / "fake-azure-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
