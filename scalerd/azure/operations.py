"""Following the long-running operations an actuator starts, in the background.

``apply`` returns as soon as Azure has accepted a change; a scale of a database takes
minutes, and a tick must not wait for it. :class:`OperationFollower` then drives the SDK's
poller to the end in a task. While it runs, :attr:`~OperationFollower.running` names the
operation, so ``current()`` reports it and the core holds (``OperationInFlight``).

How it ends is what :meth:`~OperationFollower.outcome` waits for and tells (None when it
succeeded, else Azure's error as a :class:`Fault`). The daemon stores the operation with
its continuation token, so ``outcome`` also picks up an operation this process did not
start (after a restart, in another replica, in the next ``run --once``): it rebuilds the
poller from the token and follows it from there. Nothing is retried here: the next
``apply`` starts from a fresh read.

A poll that Azure throttles, or that fails in transit, says nothing about the operation.
The follower waits (Retry-After, else exponential back-off) and resumes from the poller's
continuation token; after ``_MAX_INTERRUPTIONS`` it gives up and reports the outcome as
unknown (``OperationStatusUnknown``), so on-call is told rather than left guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import AzureError
from azure.core.polling import AsyncLROPoller

from .faults import Fault
from .throttle import Sleep

__all__ = ["OperationFollower", "Resume"]

Resume = Callable[[str], Awaitable[AsyncLROPoller[Any]]]

_MAX_INTERRUPTIONS = 8
_FIRST_BACKOFF_S = 2.0
_MAX_BACKOFF_S = 60.0


class OperationFollower:
    """The one long-running operation of one actuator, followed to its end."""

    def __init__(self, sleep: Sleep) -> None:
        self._sleep = sleep
        self._task: asyncio.Task[Fault | None] | None = None
        self._following: str | None = None

    @property
    def running(self) -> str | None:
        """The id of the operation still under way, if any."""
        task = self._task
        return self._following if task is not None and not task.done() else None

    def follow(
        self, operation: str, poller: AsyncLROPoller[Any], resume: Resume
    ) -> asyncio.Task[Fault | None]:
        """Drive ``poller`` to the end in the background; ``resume`` rebuilds a poller from
        a continuation token after an interrupted poll."""
        self._following = operation
        self._task = asyncio.create_task(
            self._follow(poller, resume), name=f"follow operation {operation}"
        )
        return self._task

    async def outcome(self, operation: str, token: str, resume: Resume) -> Fault | None:
        """Wait for ``operation`` to end: None if it succeeded, else why not. One this
        follower is not following is picked up from its continuation ``token``."""
        task = self._task
        if self._following != operation or task is None:
            try:
                poller = await resume(token)
            except (AzureError, ValueError) as error:  # a token the SDK cannot read back
                return Fault(type(error).__name__, f"cannot follow the operation: {error}")
            task = self.follow(operation, poller, resume)
        # shielded: a caller that stops waiting (``run --once`` at its bound) leaves the
        # operation followed for as long as this actuator lives
        return await asyncio.shield(task)

    async def settled(self) -> None:
        """Return once the followed operation has ended (at once if there is none)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        """Stop following. The operation itself goes on in Azure: the stored state (and the
        resource's own) tells the next run of scalerd that it is still in flight."""
        task, self._task, self._following = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, poller: AsyncLROPoller[Any], resume: Resume) -> Fault | None:
        try:
            return await self._outcome(poller, resume)
        except Exception as error:  # a background task must not end unseen: report it
            return Fault(type(error).__name__, f"following the operation failed: {error!r}")

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
