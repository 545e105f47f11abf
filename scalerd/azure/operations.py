"""Following the long-running operations an actuator starts, in the background.

``apply`` returns as soon as Azure has accepted a change; a scale of a database takes
minutes, and a tick must not wait for it. :class:`OperationFollower` then drives the SDK's
poller to the end in a task. While it runs, :attr:`~OperationFollower.running` names the
operation, so ``current()`` reports it and the core holds (``OperationInFlight``).

How it ends is kept until the actuator asks: a failure is handed out once by
:meth:`~OperationFollower.take_failure`, which ``current()`` turns into an
``ActuatorError`` carrying Azure's error code — the daemon audits that tick as
``failed``. Nothing is retried here: the next ``apply`` starts from a fresh read.

A poll that Azure throttles, or that fails in transit, says nothing about the operation.
The follower waits (Retry-After, else exponential back-off) and resumes from the poller's
continuation token; after ``_MAX_INTERRUPTIONS`` it gives up and reports the outcome as
unknown (``OperationStatusUnknown``), so on-call is told rather than left guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.core.polling import AsyncLROPoller

from .faults import Fault
from .throttle import Sleep

__all__ = ["OperationFailure", "OperationFollower", "Resume"]

Resume = Callable[[str], Awaitable[AsyncLROPoller[Any]]]

_MAX_INTERRUPTIONS = 8
_FIRST_BACKOFF_S = 2.0
_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class OperationFailure:
    """An operation that ended in failure, with Azure's error."""

    operation: str
    fault: Fault


class OperationFollower:
    """The one long-running operation of one actuator, followed to its end."""

    def __init__(self, sleep: Sleep) -> None:
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._running: str | None = None
        self._failure: OperationFailure | None = None

    @property
    def running(self) -> str | None:
        """The id of the operation still under way, if any."""
        return self._running

    def follow(self, operation: str, poller: AsyncLROPoller[Any], resume: Resume) -> None:
        """Drive ``poller`` to the end in the background; ``resume`` rebuilds a poller from
        a continuation token after an interrupted poll."""
        self._running = operation
        self._task = asyncio.create_task(
            self._follow(operation, poller, resume), name=f"follow operation {operation}"
        )

    async def settled(self) -> None:
        """Return once the followed operation has ended (at once if there is none)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def take_failure(self) -> OperationFailure | None:
        """The failure of the last operation, once; None if it succeeded or is running."""
        failure, self._failure = self._failure, None
        return failure

    async def aclose(self) -> None:
        """Stop following. The operation itself goes on in Azure: the resource's own state
        tells the next run of scalerd that it is still in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, operation: str, poller: AsyncLROPoller[Any], resume: Resume) -> None:
        try:
            fault = await self._outcome(poller, resume)
        except Exception as error:  # a background task must not end unseen: report it
            fault = Fault(type(error).__name__, f"following the operation failed: {error!r}")
        finally:
            self._running = None
        if fault is not None:
            self._failure = OperationFailure(operation, fault)

    async def _outcome(self, poller: AsyncLROPoller[Any], resume: Resume) -> Fault | None:
        """None once the operation succeeded; else why it failed, or why its end is unknown."""
        interruptions = 0
        while True:
            try:
                await poller.wait()
                return None
            except AzureError as error:
                fault, token = Fault.of(error), error.continuation_token
            if not (fault.throttled or fault.unhealthy):
                return fault
            interruptions += 1
            if interruptions > _MAX_INTERRUPTIONS or not token:
                return _lost(interruptions, fault)
            backoff = min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (interruptions - 1))
            await self._sleep(fault.retry_after or backoff)
            poller = await resume(token)


def _lost(polls: int, last: Fault) -> Fault:
    return Fault(
        "OperationStatusUnknown",
        f"stopped following after {polls} failed status polls (last: {last}); the "
        "resource's own state decides when the next change may start",
    )
