"""Group commit: durable writes that arrive together share one transaction or one fsync.

A caller's ``submit`` returns only once its item is durable, so nothing is acknowledged
early; what is gained is that the items submitted while a commit is under way (the other
targets of a pass) are all committed by the next one, instead of one fsync each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Runs ``commit(items)`` (blocking: on ``executor``, never on the event loop) for what
    has been submitted, one commit at a time, in submission order."""

    def __init__(self, commit: Callable[[list[T]], None], executor: Executor | None = None) -> None:
        self._commit = commit
        self._executor = executor
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        # how many commits ran: what grouping keeps small
        self.commits = 0

    async def submit(self, item: T) -> None:
        """Return once ``item`` is committed; raise what the commit raised if it failed."""
        await self.submit_many((item,))

    async def submit_many(self, items: Sequence[T]) -> None:
        """``submit`` for several items at once: one wait for all of them."""
        if not items:  # nothing to wait for (a waiter without items would wait forever)
            return
        self._items.extend(items)
        committed = asyncio.get_running_loop().create_future()
        self._waiters.append(committed)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="group-commit")
        # a caller cancelled while waiting still has its item committed (done waiters are
        # skipped), so no shield is needed
        await committed

    def pending(self) -> int:
        """Items submitted and not yet committed."""
        return len(self._items)

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (or failed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._items:
            items, self._items = self._items, []
            waiters, self._waiters = self._waiters, []
            try:
                await loop.run_in_executor(self._executor, self._commit, items)
            except BaseException as problem:
                for waiter in waiters:
                    if waiter.done():
                        continue
                    if isinstance(problem, Exception):
                        waiter.set_exception(problem)
                    else:  # the loop is going away: nobody is told it was committed
                        waiter.cancel()
                if not isinstance(problem, Exception):
                    raise
            else:
                self.commits += 1
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
