"""Staying inside Azure's limits, and out of a dependency that is failing.

The SDK clients retry only transient faults of reads (see ``clients.py``); everything
below is scalerd's, driven by the injected :class:`~scalerd.clock.Clock` (tests move a
``ManualClock``, nothing sleeps for real):

* :class:`RetryAfterGates` — one gate per *scope* (an ARM subscription, a metrics region,
  the Log Analytics API, a Service Bus namespace). A 429/503/529 closes it for Azure's
  ``Retry-After`` (exponential back-off when Azure sends none); every plugin using that
  scope then waits, or skips its call, instead of adding to the storm.
* :class:`WriteBudget` — a token bucket of writes per subscription, well below Azure
  Resource Manager's limits (throttling.md §1: 200 writes per bucket refilled at 10/s per
  subscription and principal, and the older 1,200 writes/hour still published). The
  defaults in ``AzureSettings`` — bursts of 20, 600 writes/hour — use a tenth of the
  bucket and half of the hourly figure, leaving the rest to the platform's own deployments.
* :class:`CircuitBreaker` — one per source and per actuator: closed; open after N
  consecutive unhealthy failures (network, timeout, 5xx); half-open after ``reset``, where
  the next call's outcome closes or re-opens it. A 404 or a rejected request is an answer,
  not a failure of Azure.
* :class:`Caller` / :class:`CallSession` — what a plugin holds: its breaker plus the shared
  gates and budget. A session is one ``read()``, ``current()`` or ``apply()``; the waits for
  Retry-After within it are bounded by one time budget, after which the call gives up
  (an actuator raises ``Throttled``, audited as ``skipped``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from azure.core.exceptions import AzureError

from ..clock import Clock
from .faults import Family, Fault, error_for

__all__ = ["CallSession", "Caller", "CircuitBreaker", "RetryAfterGates", "Sleep", "WriteBudget"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# back-off when Azure throttles without Retry-After (529 from metrics:getBatch): 1s, 2s, 4s…
_FIRST_BACKOFF_S = 1.0
_MAX_BACKOFF_S = 120.0


@dataclass(slots=True)
class _Gate:
    not_before: datetime
    streak: int
    fault: Fault


class RetryAfterGates:
    """When each scope may be called again, after Azure last throttled it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._gates: dict[str, _Gate] = {}

    def closed_for(self, scope: str) -> tuple[float, Fault] | None:
        """Seconds until ``scope`` reopens and the fault that closed it; None when open."""
        gate = self._gates.get(scope)
        if gate is None:
            return None
        wait = (gate.not_before - self._clock.now()).total_seconds()
        return (wait, gate.fault) if wait > 0 else None

    def close(self, scope: str, fault: Fault) -> None:
        """Azure throttled ``scope``: keep it closed for Retry-After, or back off exponentially."""
        previous = self._gates.get(scope)
        streak = previous.streak + 1 if previous is not None else 1
        wait = fault.retry_after
        if wait is None:
            wait = min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (streak - 1))
        not_before = self._clock.now() + timedelta(seconds=wait)
        if previous is not None:
            not_before = max(not_before, previous.not_before)
        self._gates[scope] = _Gate(not_before, streak, fault)

    def open(self, scope: str) -> None:
        """A call to ``scope`` succeeded: forget its back-off."""
        self._gates.pop(scope, None)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: datetime


class WriteBudget:
    """A token bucket of ``burst`` writes per subscription, refilled at ``per_hour``."""

    def __init__(self, clock: Clock, *, burst: int, per_hour: int) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._per_second = per_hour / 3600.0
        self._buckets: dict[str, _Bucket] = {}

    def take(self, subscription: str) -> float:
        """Spend one write: 0 if granted, else the seconds until one is available."""
        now = self._clock.now()
        bucket = self._buckets.setdefault(subscription, _Bucket(self._burst, now))
        refill = (now - bucket.at).total_seconds() * self._per_second
        bucket.tokens, bucket.at = min(self._burst, bucket.tokens + refill), now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._per_second


class CircuitBreaker:
    """Closed → open after ``failures`` unhealthy failures in a row → half-open after
    ``reset`` (calls go through; the first outcome closes or re-opens it)."""

    def __init__(self, clock: Clock, *, failures: int, reset: timedelta) -> None:
        self._clock = clock
        self._threshold = failures
        self._reset = reset
        self._failures = 0
        self._opened_at: datetime | None = None
        self._last: Fault | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "open" if self._open_for() > 0 else "half-open"

    def admit(self) -> tuple[float, Fault] | None:
        """None if a call may go ahead, else the seconds it stays open and why it opened."""
        if self._opened_at is None or self._last is None:
            return None
        remaining = self._open_for()
        return (remaining, self._last) if remaining > 0 else None

    def succeeded(self) -> None:
        self._failures, self._opened_at = 0, None

    def failed(self, fault: Fault) -> None:
        self._last = fault
        if self._opened_at is not None:  # the half-open trial failed
            self._opened_at = self._clock.now()
            return
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = self._clock.now()

    def _open_for(self) -> float:
        assert self._opened_at is not None
        return (self._opened_at + self._reset - self._clock.now()).total_seconds()


class Caller:
    """One plugin's way to Azure: its own breaker, the daemon's shared gates and budget."""

    def __init__(
        self,
        *,
        family: Family,
        breaker: CircuitBreaker,
        gates: RetryAfterGates,
        writes: WriteBudget,
        clock: Clock,
        sleep: Sleep,
        patience: timedelta,
    ) -> None:
        self._family = family
        self._breaker = breaker
        self._gates = gates
        self._writes = writes
        self._clock = clock
        self._sleep = sleep
        self._patience = patience

    def session(self) -> CallSession:
        """The calls of one ``read()``/``current()``/``apply()``, sharing one time budget."""
        return CallSession(self, self._clock.now() + self._patience)

    async def call(
        self,
        scope: str,
        request: Callable[[], Awaitable[T]],
        what: str,
        *,
        deadline: datetime,
        write: bool = False,
    ) -> T:
        """``request()``, behind the breaker, the gate of ``scope`` and (for a write) its
        budget; a throttled answer is retried while the gate's wait fits ``deadline``."""
        while True:
            self._admit(what)
            await self._wait_for_gate(scope, what, deadline)
            if write:
                self._spend_write(scope, what)
            try:
                result = await request()
            except AzureError as error:
                fault = Fault.of(error)
                if fault.throttled:
                    self._gates.close(scope, fault)
                    continue  # the gate decides: wait within the budget, or give up
                if fault.unhealthy:
                    self._breaker.failed(fault)
                else:
                    self._breaker.succeeded()  # Azure answered: it is up
                raise error_for(self._family, what, fault) from error
            self._breaker.succeeded()
            self._gates.open(scope)
            return result

    def _admit(self, what: str) -> None:
        refused = self._breaker.admit()
        if refused is not None:
            remaining, last = refused
            fault = Fault(
                "CircuitOpen",
                f"not calling Azure for {remaining:.0f}s more after failures (last: {last})",
            )
            raise error_for(self._family, what, fault)

    async def _wait_for_gate(self, scope: str, what: str, deadline: datetime) -> None:
        closed = self._gates.closed_for(scope)
        if closed is None:
            return
        wait, fault = closed
        left = (deadline - self._clock.now()).total_seconds()
        if wait > left:
            skipped = Fault(
                fault.code,
                f"skipped: Azure throttles {scope} for {wait:.3g}s more, beyond this call's "
                f"budget of {max(left, 0.0):.3g}s (last answer: {fault.message})",
                fault.status,
            )
            raise error_for(self._family, what, skipped, retry_after=wait)
        await self._sleep(wait)

    def _spend_write(self, scope: str, what: str) -> None:
        wait = self._writes.take(scope)
        if wait > 0:
            fault = Fault(
                "WriteBudgetExhausted",
                f"skipped: scalerd's write budget for {scope} is spent; next write in {wait:.0f}s",
            )
            raise error_for(self._family, what, fault, retry_after=wait)


class CallSession:
    """Azure calls made for one plugin operation; Retry-After waits share its deadline."""

    def __init__(self, caller: Caller, deadline: datetime) -> None:
        self._caller = caller
        self._deadline = deadline

    async def read(self, scope: str, request: Callable[[], Awaitable[T]], what: str) -> T:
        return await self._caller.call(scope, request, what, deadline=self._deadline)

    async def write(self, scope: str, request: Callable[[], Awaitable[T]], what: str) -> T:
        """Like :meth:`read`, and each attempt spends one write of ``scope``'s budget."""
        return await self._caller.call(scope, request, what, deadline=self._deadline, write=True)
