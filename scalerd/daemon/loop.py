"""Per-target scheduling: one asyncio task per target, so a slow target never delays the
others; evaluations of one target never overlap; a pushed event wakes the loop at once.

A plain loop rather than a job scheduler: "evaluate, then sleep what is left of the
interval (or until woken)" is all there is to it, and stopping after the current
evaluation — what reload and shutdown need — is one flag.

A poll wakes on a grid shared by every loop (:func:`slack_of`, at most 1/30 of the interval
and 0.5 s late), as the kernel's timer slack does: targets due within one step of it wake
together, so 100 targets cost a few wake-ups per interval instead of 100; and their polls
are evaluated together (:class:`PollBatch`, ``tick.evaluate_polls``), their saves and audit
records sharing a commit (``scalerd.batching``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

__all__ = ["PollBatch", "TargetLoop", "slack_of"]

Item = TypeVar("Item")
Context = TypeVar("Context")
Outcome = TypeVar("Outcome")

log = structlog.get_logger("scalerd")

# how late a poll may wake, at most, and as a share of its interval
MAX_SLACK_S = 0.5
SLACK_SHARE = 1 / 30


def slack_of(interval: float) -> float:
    """The step of the grid a loop with ``interval`` wakes on."""
    return min(MAX_SLACK_S, interval * SLACK_SHARE)


class TargetLoop:
    def __init__(
        self,
        name: str,
        evaluate: Callable[[], Awaitable[object]],
        interval: float,
        jitter: float,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._evaluate = evaluate
        self._interval = interval
        self._slack = slack_of(interval)
        self._woke_at = 0.0  # the instant the last sleep was to end
        # the first evaluation is spread over `jitter` of an interval so targets that share
        # an interval do not all hit their sources at the same instant
        self._first_delay = (rng or random.Random()).uniform(0, jitter * interval)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"scalerd-target-{self.name}")

    def trigger(self) -> None:
        """Evaluate now (or right after the evaluation under way)."""
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Stop scheduling; let an evaluation under way finish within ``grace`` seconds."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            log.warning("evaluation cut short at shutdown", target=self.name, grace_s=grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._first_delay
        while True:
            woken = await self._sleep_until(due)
            if self._stopping:
                return
            started = loop.time()
            try:
                await self._evaluate()
            except Exception:  # the loop outlives any failure of one evaluation
                log.exception("evaluation failed", target=self.name)
            # the next poll an interval after the grid step this one woke on, which keeps
            # its phase; an interval after it started when an event woke it, or when the
            # event loop was too busy to wake it on time (never two polls closer than that)
            on_time = not woken and started - self._woke_at < self._slack
            due = (self._woke_at if on_time else started) + self._interval
            due = max(due, loop.time())  # one that ran past its interval goes again at once

    async def _sleep_until(self, due: float) -> bool:
        """Sleep until ``due`` (rounded up to the grid) or a trigger; True if triggered."""
        loop = asyncio.get_running_loop()
        if not self._wake.is_set() and due > loop.time():
            # the same instant for every loop due within one step: one wake-up for them all
            slack = self._slack
            wake_at = math.ceil(due / slack) * slack if slack > 0 else due
            self._woke_at = wake_at
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await self._wake.wait()
        else:  # due already: still let the others run (an evaluation may not await)
            self._woke_at = loop.time()
            await asyncio.sleep(0)
        woken = self._wake.is_set()
        self._wake.clear()
        return woken


class PollBatch(Generic[Item, Context, Outcome]):
    """The polls that come due in one turn of the event loop — loops on the shared grid
    wake together — evaluated together by ``run(items, context)``, which returns one
    outcome per item in order; each loop waits for its own. Items with another context
    (loops started by a reload, with the new config's) are a batch of their own."""

    def __init__(self, run: Callable[[list[Item], Context], Awaitable[list[Outcome]]]) -> None:
        self._run = run
        self._queued: list[tuple[Item, Context, asyncio.Future[Outcome]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def poll(self, item: Item, context: Context) -> Outcome:
        loop = asyncio.get_running_loop()
        if not self._queued:
            loop.call_soon(self._start)  # once every loop woken this turn has asked
        outcome: asyncio.Future[Outcome] = loop.create_future()
        self._queued.append((item, context, outcome))
        return await outcome

    def _start(self) -> None:
        queued, self._queued = self._queued, []
        batches: dict[int, tuple[Context, list[tuple[Item, asyncio.Future[Outcome]]]]] = {}
        for item, context, outcome in queued:
            batches.setdefault(id(context), (context, []))[1].append((item, outcome))
        for context, batch in batches.values():
            task = asyncio.create_task(self._evaluate(batch, context), name="scalerd-polls")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _evaluate(
        self, batch: list[tuple[Item, asyncio.Future[Outcome]]], context: Context
    ) -> None:
        try:
            outcomes = await self._run([item for item, _ in batch], context)
        except BaseException as problem:
            for _, outcome in batch:
                if outcome.done():  # its loop stopped waiting (cancelled at shutdown)
                    continue
                if isinstance(problem, Exception):
                    outcome.set_exception(problem)
                else:
                    outcome.cancel()
            if not isinstance(problem, Exception):
                raise
            return
        for (_, outcome), result in zip(batch, outcomes, strict=True):
            if not outcome.done():
                outcome.set_result(result)
