"""Azure's errors as scalerd reports and treats them.

An ``azure.core`` exception becomes a :class:`Fault`: Azure's error code (what on-call
searches for), a one-line redacted message, and two verdicts: *throttled* (Azure asked us
to slow down, so a Retry-After gate closes) and *unhealthy* (the service or the network is
failing, which is what opens a circuit breaker). A 404, a rejected request or a failed
long-running operation is neither: Azure answered, and retrying sooner would not help.

:func:`error_for` turns a fault into the exception a plugin's caller expects: a source
raises :class:`SourceError`, an actuator :class:`ActuatorError` carrying the code, or
:class:`Throttled` when the call was skipped to honour Azure's back-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..errors import ActuatorError, ScalerdError, SourceError, Throttled
from ..redact import redact

__all__ = ["THROTTLE_STATUSES", "Family", "Fault", "error_for"]

# 429: ARM, Log Analytics; 503: Service Bus and ARM resource providers when overloaded;
# 529: metrics:getBatch (throttling.md)
THROTTLE_STATUSES = frozenset({429, 503, 529})

Family = Literal["source", "actuator"]

_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Fault:
    """One failed Azure call: its code, a one-line message, and how scalerd treats it."""

    code: str
    message: str
    status: int | None = None
    retry_after: float | None = None
    # a transport failure or a 5xx: what a circuit breaker counts
    unhealthy: bool = False

    @property
    def throttled(self) -> bool:
        return self.status in THROTTLE_STATUSES

    @classmethod
    def of(cls, error: AzureError) -> Fault:
        if isinstance(error, HttpResponseError):
            status = error.status_code
            body = error.error
            code = (
                (body.code if body is not None else None)
                or _storage_code(error)
                or _code_for(error)
            )
            text = (body.message if body is not None else None) or error.message or error.reason
            # every transport's response has headers; azure-core's common type does not say so
            headers: Mapping[str, str] = getattr(error.response, "headers", None) or {}
            return cls(
                code=code,
                message=_one_line(str(text or code)),
                status=status,
                retry_after=_retry_after(headers),
                unhealthy=status is not None and status >= 500 and status not in THROTTLE_STATUSES,
            )
        # no HTTP answer: the request was not sent (ServiceRequestError) or its answer never
        # came (ServiceResponseError, e.g. a read timeout); azure-core's class name is the code
        unhealthy = isinstance(error, ServiceRequestError | ServiceResponseError)
        return cls(
            type(error).__name__, _one_line(error.message or repr(error)), unhealthy=unhealthy
        )

    def __str__(self) -> str:
        # a failed operation's status arrives with 200: only an HTTP error is worth its number
        status = f"HTTP {self.status} " if self.status is not None and self.status >= 400 else ""
        return f"{status}{self.code}: {self.message}"


def error_for(
    family: Family, what: str, fault: Fault, *, retry_after: float | None = None
) -> ScalerdError:
    """The exception a plugin raises for ``fault`` while doing ``what``.

    ``retry_after`` marks a call scalerd skipped to honour a back-off: an actuator then
    raises :class:`Throttled` (the daemon audits it as ``skipped``). Sources have no such
    distinction: every failed read is a failed observation.
    """
    message = redact(f"{what}: {fault}")
    if family == "source":
        return SourceError(message)
    if retry_after is not None:
        return Throttled(message, retry_after, fault.code)
    return ActuatorError(message, fault.code)


def _storage_code(error: HttpResponseError) -> str | None:
    """The storage SDKs keep the ``x-ms-error-code`` as ``error_code`` (an enum member
    for codes they know, the header's text otherwise), not in an OData body."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code)) if code else None


def _code_for(error: HttpResponseError) -> str:
    """A code for an error without one in its body. A 2xx "error" is a long-running
    operation whose status said Failed without details (``provisioningState``); an error
    the SDK raised itself (Service Bus "not found" is a 200 with an empty feed) is named
    by its class."""
    status = error.status_code
    if status is not None and status < 400:
        return "OperationFailed"
    return f"HTTP{status}" if status is not None else type(error).__name__


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After``.

    Azure sends seconds; an HTTP-date ``Retry-After`` is read as absent, so the caller's
    exponential back-off applies instead.
    """
    for name, unit in (
        ("retry-after-ms", 0.001),
        ("x-ms-retry-after-ms", 0.001),
        ("retry-after", 1.0),
    ):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * unit
        except ValueError:
            continue
        # "Retry-After: 0" says nothing (azure-core reads it so too): back off instead
        return seconds if seconds > 0 else None
    return None


def _one_line(text: str) -> str:
    """Azure messages span lines (``Code: …\\nMessage: …``); keep the first, bounded."""
    first = text.strip().splitlines()[0] if text.strip() else text
    return redact(first if len(first) <= _MESSAGE_LIMIT else first[: _MESSAGE_LIMIT - 1] + "…")
