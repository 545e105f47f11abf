"""``kind = "process-pool"``: N local worker processes of one command.

This is what makes scalerd useful with no cloud account: point it at a queue and a worker
command, and it runs as many workers as the rules decide.

- Scaling out starts processes at once; scaling in stops the newest first (those least
  likely to be warm) with SIGTERM, then SIGKILL after ``stop_grace``. Stopping runs in the
  background, so ``apply`` never waits out a grace period, and a stopping worker no longer
  counts: the capacity it gave is going away.
- A worker that exits on its own is restarted after ``restart_backoff`` (and counted in
  :attr:`ProcessPool.restarts`). While it waits it stays *provisioned* but not *ready*,
  as a crash-looping pod stays a replica: the pool is already restoring that capacity, so
  the core must not order it again.
- A worker is *ready* once it has been running for ``ready_after``.
- Each worker gets ``SCALERD_WORKER_SLOT`` in its environment: the lowest number from 0
  that no running, restarting or still-stopping worker holds, kept across its restarts,
  so N workers of a server can each listen on a port of their own (``8000 + slot``)
  without two ever binding the same one.
- The pool owns only what it started: it adopts no processes when it starts, and
  ``aclose`` stops and reaps every worker it has.

Each worker runs in a session of its own, and signals go to its whole process group, so
a worker started through a shell script stops with its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from asyncio.subprocess import DEVNULL, Process
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..clock import Clock
from ..core.durations import Duration
from ..core.model import Capacity, Decision
from ..errors import ActuatorError
from ..plugins import Actuator, ActuatorConfig, Applied, BuildContext, Plugin

__all__ = ["PLUGIN", "ProcessPool", "ProcessPoolConfig"]


class ProcessPoolConfig(ActuatorConfig):
    kind: Literal["process-pool"]
    # the worker's argv, e.g. ["{python}", "-m", "scalerd.demo_worker"]; "{python}" is
    # the interpreter running scalerd, so a worker in the same virtualenv needs no PATH
    command: tuple[str, ...] = Field(min_length=1)
    # environment variables for the workers, on top of the daemon's own
    env: dict[str, str] = Field(default_factory=dict)
    # the workers' working directory, relative to the config file's folder
    cwd: str = "."
    # how long a worker may take to exit after SIGTERM before it gets SIGKILL
    stop_grace: Duration = timedelta(seconds=10)
    # how long a worker must have run before it counts as ready
    ready_after: Duration = timedelta(0)
    # how long to wait before restarting a worker that exited on its own
    restart_backoff: Duration = timedelta(seconds=1)


@dataclass(eq=False)
class _Worker:
    """One wanted worker: its process (``None`` while waiting to restart) and supervisor."""

    process: Process | None
    started_at: datetime
    # when it was spawned relative to the others: the highest is the newest
    generation: int
    # its SCALERD_WORKER_SLOT, unique among the workers alive
    slot: int
    # set right after the worker is made, since the task needs the worker
    supervisor: asyncio.Task[None] = field(init=False)

    def is_ready(self, now: datetime, ready_after: timedelta) -> bool:
        alive = self.process is not None and self.process.returncode is None
        return alive and now - self.started_at >= ready_after

    def age_order(self) -> tuple[bool, int]:
        """Sorts oldest first; a worker waiting to restart counts as the newest of all."""
        return (self.process is None, self.generation)


class ProcessPool:
    """Keeps ``len(workers)`` processes of ``config.command`` running."""

    def __init__(self, config: ProcessPoolConfig, cwd: Path, clock: Clock) -> None:
        self._config = config
        self._cwd = cwd
        self._env = {**os.environ, **config.env}
        self._clock = clock
        self._workers: list[_Worker] = []
        self._stopping: set[asyncio.Task[None]] = set()
        # the slots of workers still stopping: not handed out until they are gone
        self._stopping_slots: set[int] = set()
        self._generations = itertools.count()
        self._changing = asyncio.Lock()
        self._closed = False
        self.restarts = 0

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the running workers (stopping ones excluded), oldest first."""
        return tuple(
            worker.process.pid
            for worker in sorted(self._workers, key=_Worker.age_order)
            if worker.process is not None
        )

    async def current(self) -> Capacity:
        now = self._clock.now()
        ready = sum(worker.is_ready(now, self._config.ready_after) for worker in self._workers)
        return Capacity(provisioned=len(self._workers), ready=ready)

    async def apply(self, decision: Decision) -> Applied:
        async with self._changing:
            if self._closed:
                raise ActuatorError(f"process pool {self._config.name!r} is closed")
            surplus = len(self._workers) - decision.desired
            if surplus > 0:
                self._stop_newest(surplus)
            for _ in range(-surplus):
                self._workers.append(await self._start())
        return Applied()

    async def aclose(self) -> None:
        """Stop every worker (SIGTERM, grace, SIGKILL) and return once all are reaped."""
        async with self._changing:
            self._closed = True
            self._stop_newest(len(self._workers))
        await asyncio.gather(*self._stopping)

    def _free_slot(self) -> int:
        taken = {worker.slot for worker in self._workers} | self._stopping_slots
        return next(slot for slot in itertools.count() if slot not in taken)

    async def _start(self) -> _Worker:
        slot = self._free_slot()
        try:
            process = await self._spawn(slot)
        except OSError as error:
            raise ActuatorError(
                f"process pool {self._config.name!r} cannot start "
                f"{self._config.command[0]!r}: {error.strerror or error}"
            ) from error
        worker = _Worker(process, self._clock.now(), next(self._generations), slot)
        worker.supervisor = asyncio.create_task(
            self._keep_running(worker, process), name=f"{self._config.name} worker supervisor"
        )
        return worker

    async def _spawn(self, slot: int) -> Process:
        return await asyncio.create_subprocess_exec(
            *(sys.executable if part == "{python}" else part for part in self._config.command),
            stdin=DEVNULL,
            cwd=self._cwd,
            env={**self._env, "SCALERD_WORKER_SLOT": str(slot)},
            start_new_session=True,
        )

    async def _keep_running(self, worker: _Worker, process: Process) -> None:
        """Restart ``worker`` each time its process exits, until the task is cancelled.

        Cancelled while starting a process, asyncio kills and reaps that half-started
        one itself; any other process is left in ``worker.process`` for :meth:`_stop`.
        """
        while True:
            await process.wait()
            worker.process = None
            process = await self._restart(worker)

    async def _restart(self, worker: _Worker) -> Process:
        """A replacement after the backoff, retrying while the command cannot start."""
        while True:
            await asyncio.sleep(self._config.restart_backoff.total_seconds())
            try:
                process = await self._spawn(worker.slot)
            except OSError:
                continue
            self.restarts += 1
            worker.process = process
            worker.started_at = self._clock.now()
            worker.generation = next(self._generations)
            return process

    def _stop_newest(self, count: int) -> None:
        """Stop the ``count`` newest workers in the background; they count as gone now."""
        oldest_first = sorted(self._workers, key=_Worker.age_order)
        for worker in oldest_first[len(oldest_first) - count :]:
            self._workers.remove(worker)
            self._stopping_slots.add(worker.slot)
            task = asyncio.create_task(self._stop(worker), name=f"{self._config.name} worker stop")
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _stop(self, worker: _Worker) -> None:
        # Cancel the supervisor first so it cannot restart the worker being stopped. It may
        # not have started running yet, which is why stopping is not left to the task.
        try:
            worker.supervisor.cancel()
            await asyncio.wait({worker.supervisor})
            if worker.process is not None:
                await _terminate(worker.process, self._config.stop_grace.total_seconds())
        finally:
            self._stopping_slots.discard(worker.slot)  # gone: its slot may be handed out


def build(config: ProcessPoolConfig, ctx: BuildContext) -> Actuator:
    cwd = ctx.base_dir / config.cwd
    if not cwd.is_dir():
        raise ValueError(f"process pool {config.name!r}: cwd {str(cwd)!r} is not a directory")
    return ProcessPool(config, cwd, ctx.clock)


async def _terminate(process: Process, grace: float) -> None:
    """SIGTERM the worker's process group, SIGKILL it after ``grace``, and reap it."""
    _signal_group(process, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        _signal_group(process, signal.SIGKILL)
        await process.wait()


def _signal_group(process: Process, signum: signal.Signals) -> None:
    # Only while the process is unreaped: its pid, and so its group id, is still ours.
    # ProcessLookupError: it exited just now, and wait() reaps it.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


PLUGIN = Plugin(
    kind="process-pool",
    config=ProcessPoolConfig,
    build=build,
    summary="keeps N local worker processes of a command running, restarting crashed ones",
)
