"""Per-target scheduling: one asyncio task per target, so a slow target never delays the
others; evaluations of one target never overlap; a pushed event wakes the loop at once.

A plain loop rather than a job scheduler: "evaluate, then sleep what is left of the
interval (or until woken)" is all there is to it, and stopping after the current
evaluation — what reload and shutdown need — is one flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import structlog

__all__ = ["TargetLoop"]

log = structlog.get_logger("scalerd")


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
        delay = self._first_delay
        loop = asyncio.get_running_loop()
        while True:
            await self._sleep(delay)
            if self._stopping:
                return
            started = loop.time()
            try:
                await self._evaluate()
            except Exception:  # the loop outlives any failure of one evaluation
                log.exception("evaluation failed", target=self.name)
            delay = max(0.0, self._interval - (loop.time() - started))

    async def _sleep(self, seconds: float) -> None:
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
