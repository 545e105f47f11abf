"""The cycle every Azure actuator shares: read, diff, write only what changes, follow.

An actuator module describes its resource as a :class:`ScaledResource` — how it is read,
its capacity, whether a change is in progress, and the JSON merge patch (a plain dict:
exactly the wire JSON, never an SDK update model, whose defaults would overwrite other
settings) that moves it to a decision. :class:`ArmActuator` runs the same cycle for all,
and is the ``Actuator`` the daemon holds. Its contract:

``current()``
    Reads the resource and returns ``Capacity(provisioned, ready, operation)``.
    ``operation`` is set while a change is in flight: the operation this actuator started
    (the id at the end of its ``Azure-AsyncOperation``/``Location`` URL, else the PATCH's
    ``x-ms-request-id``), or the resource's own state (``provisioningState=Updating``) for
    a change started elsewhere or before a restart. The core holds meanwhile.

``apply(decision)``
    Reads the resource again (never a blind write), and raises
    ``ActuatorError(code="OperationInFlight")`` if a change is in progress. If nothing
    differs it writes nothing and says so in ``Applied.notes``. Otherwise it sends one
    PATCH holding only the fields that change and returns once Azure has accepted it:
    ``Applied(operation=<id>, notes=..., resume=<continuation token>)``; the operation is
    followed in the background (``operations.py``). A rejected PATCH raises
    ``ActuatorError(code=...)``; one skipped to honour Azure's Retry-After or scalerd's
    write budget raises ``Throttled``. The SDK never repeats a PATCH, so a write that timed
    out is settled by the next read.

``outcome(operation, resume)``
    Waits for the operation to end, following it from its continuation token if this
    process did not start it, and returns ``OperationOutcome``: success, or Azure's error
    code and message (with where the resource stands now, read afresh). The daemon stores
    the operation and audits its end as a record of its own (``scalerd.daemon.operations``).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineResponse
from azure.core.polling import AsyncLROPoller

from ..core.model import Capacity, Decision
from ..errors import ActuatorError
from ..plugins import Applied, OperationOutcome
from ..redact import redact
from .clients import AzureClients, arm_scope
from .ids import ResourceId
from .operations import OperationFollower

__all__ = ["ArmActuator", "Change", "Json", "ScaledResource", "json_body", "wire_text"]

Json = dict[str, Any]
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Change:
    """What ``apply`` writes: the PATCH body, and what the audit record should say."""

    body: Json
    notes: tuple[str, ...] = ()


class ScaledResource(Protocol[R]):
    """What one kind of Azure resource contributes to the cycle (plain SDK I/O; throttling
    and circuit breaking are the cycle's)."""

    @property
    def label(self) -> str:
        """How the audit names it, e.g. ``container app 'web'``."""

    async def read(self) -> R: ...

    async def capacity(self, resource: R) -> tuple[int, int]:
        """(provisioned, ready); may read more (a container app's replicas)."""

    def in_progress(self, resource: R) -> str | None:
        """The state that shows a change under way (``provisioningState=Updating``), if any."""

    def describe(self, resource: R) -> str:
        """Where the resource stands, in the units of its decisions (``Standard_D4ds_v4``)."""

    def change(self, resource: R, decision: Decision) -> Change | None:
        """The minimal patch toward ``decision``; None when the resource is already there."""

    async def begin(self, body: Json, **options: Any) -> AsyncLROPoller[Any]:
        """Start the PATCH (or, with ``continuation_token``, resume following it)."""


class ArmActuator(Generic[R]):
    """An ``Actuator`` for any Azure Resource Manager resource (see the module docstring)."""

    def __init__(
        self, resource: ScaledResource[R], resource_id: ResourceId, azure: AzureClients
    ) -> None:
        self._resource = resource
        self._id = str(resource_id)
        self._scope = arm_scope(resource_id.subscription)
        self._azure = azure
        self._caller = azure.caller("actuator")
        self._operations = OperationFollower(azure.sleep)

    async def current(self) -> Capacity:
        resource, label = self._resource, self._resource.label
        session = self._caller.session()
        state = await session.read(self._scope, resource.read, f"read {label}")
        provisioned, ready = await session.read(
            self._scope, lambda: resource.capacity(state), f"read the capacity of {label}"
        )
        operation = self._operations.running or resource.in_progress(state)
        return Capacity(provisioned, ready, operation)

    async def apply(self, decision: Decision) -> Applied:
        resource, label = self._resource, self._resource.label
        running = self._operations.running
        if running is not None:
            raise ActuatorError(
                f"{label}: operation {running} is still in flight; not writing", "OperationInFlight"
            )
        async with self._azure.lock(self._id):
            session = self._caller.session()
            state = await session.read(self._scope, resource.read, f"read {label}")
            busy = resource.in_progress(state)
            if busy is not None:
                raise ActuatorError(
                    f"{label}: a change is in progress ({busy}); not writing", "OperationInFlight"
                )
            change = resource.change(state, decision)
            if change is None:
                return Applied(
                    notes=(f"{label} is already at {resource.describe(state)}: nothing written",)
                )
            accepted = _Acceptance()
            poller = await session.write(
                self._scope,
                lambda: resource.begin(change.body, raw_response_hook=accepted),
                f"update {label}",
            )
        if poller.status().lower() == "succeeded":  # applied at once: nothing to follow
            return Applied(notes=change.notes)
        operation = accepted.operation_id()
        self._operations.follow(operation, poller, self._resume)
        return Applied(operation, change.notes, _continuation_token(poller))

    async def outcome(self, operation: str, resume: str) -> OperationOutcome:
        fault = await self._operations.outcome(operation, resume, self._resume)
        if fault is None:
            return OperationOutcome(operation)
        label = self._resource.label
        message = f"{label}: operation {operation} failed: {fault}"
        try:
            state = await self._caller.session().read(
                self._scope, self._resource.read, f"read {label}"
            )
        except Exception:  # the failure is what matters; where it stands is a courtesy
            pass
        else:
            message += f"; it is at {self._resource.describe(state)} now"
        return OperationOutcome(operation, fault.code, redact(message))

    def _resume(self, token: str) -> Awaitable[AsyncLROPoller[Any]]:
        # with a continuation token the SDK sends nothing: the body is not used
        return self._resource.begin({}, continuation_token=token)

    async def settled(self) -> None:
        """Return once the operation this actuator follows has ended: for a shutdown that
        wants to see a change through, and for tests."""
        await self._operations.settled()

    async def aclose(self) -> None:
        """Stop following an operation; the clients belong to ``AzureClients``."""
        await self._operations.aclose()


def _continuation_token(poller: AsyncLROPoller[Any]) -> str | None:
    """The token that lets another process follow the operation; None if the SDK cannot
    make one (a response it cannot write as JSON): the change is then followed here only."""
    try:
        return poller.continuation_token()
    except (TypeError, ValueError):
        return None


class _Acceptance:
    """A ``raw_response_hook`` that keeps the headers with which Azure accepted the PATCH
    (the hook also sees throttled attempts and every status poll)."""

    def __init__(self) -> None:
        self._headers: Mapping[str, str] | None = None

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        accepted = response.http_response.status_code < 300
        if self._headers is None and accepted and response.http_request.method == "PATCH":
            self._headers = response.http_response.headers

    def operation_id(self) -> str:
        headers = self._headers or {}
        for name in ("Azure-AsyncOperation", "Location"):
            url = headers.get(name)
            if url:
                return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        return headers.get("x-ms-request-id") or f"scalerd-{uuid.uuid4()}"


def wire_text(value: object) -> str:
    """A model field as it was on the wire: the SDKs hand out enum members, whose str()
    is their Python name (``ServerState.READY``), not Azure's value (``Ready``)."""
    if value is None:
        return ""
    return str(value.value) if isinstance(value, Enum) else str(value)


def json_body(body: Json) -> IO[bytes]:
    """``body`` as the bytes of a request: what every management SDK's ``begin_update``
    accepts (with ``content_type="application/json"``) and sends exactly as given."""
    return io.BytesIO(json.dumps(body).encode())
