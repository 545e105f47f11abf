"""``kind = "recording"``: a capacity kept in memory, with every change recorded.

Dry runs, demos and tests need an actuator that behaves like a real one without scaling
anything. Replicas asked for become ready ``startup`` after the request (by the injected
clock), so ``current()`` reports provisioned and ready apart, as a real platform does,
and the core's handling of replicas still starting is exercised too.

With ``persist_to`` the capacity lives in a file that every replica of a cluster reads
(``current()`` re-reads it) and writes under a file lock. The file also keeps the largest
fencing token any write carried, and a write with a smaller one is refused
(``StaleFence``): the conditional write a real resource offers with an ETag. ``log_to``
appends one JSON line per write attempt (time, decision time, target, capacity, token,
instance, refused),
for tests and demos that check who wrote what under which lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..clock import Clock
from ..core.durations import Duration
from ..core.model import Capacity, Decision
from ..core.rules import MAX_CAPACITY
from ..errors import StaleFence
from ..files import replace_atomically
from ..plugins import CURRENT_FENCE, Actuator, ActuatorConfig, Applied, BuildContext, Plugin

__all__ = ["PLUGIN", "RecordedCall", "RecordingActuator", "RecordingConfig"]


class RecordingConfig(ActuatorConfig):
    kind: Literal["recording"]
    # replicas at start, all ready
    initial: int = Field(0, ge=0, le=MAX_CAPACITY)
    # how long a replica asked for takes to become ready
    startup: Duration = timedelta(0)
    # keep the capacity in this file (relative to the config file's folder), so that a
    # restarted scalerd finds its pretend infrastructure as it left it
    persist_to: str | None = None
    # append every write attempt to this JSON-lines file (relative like persist_to)
    log_to: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One ``apply()``: when it came and the capacity it asked for."""

    at: datetime
    desired: int


class RecordingActuator:
    """Replicas are the times they become ready, oldest first; scaling in drops the newest."""

    def __init__(
        self,
        config: RecordingConfig,
        clock: Clock,
        persist_to: Path | None = None,
        log_to: Path | None = None,
    ) -> None:
        self._name = config.name
        self._startup = config.startup
        self._clock = clock
        self._persist_to = persist_to
        self._log_to = log_to
        initial = _read_persisted(persist_to)[0] if persist_to is not None else None
        self._ready_at: list[datetime] = [clock.now()] * (
            config.initial if initial is None else initial
        )
        self.calls: list[RecordedCall] = []

    async def current(self) -> Capacity:
        now = self._clock.now()
        if self._persist_to is not None:  # another replica may have changed it
            # a write under way (its lock held) lands first, as at a resource: a reader
            # never sees the old capacity of a write that is already being made
            async with _shared(self._persist_to):
                persisted = _read_persisted(self._persist_to)[0]
            if persisted is not None:
                self._resize(persisted, now)
        ready = sum(1 for ready_at in self._ready_at if ready_at <= now)
        return Capacity(provisioned=len(self._ready_at), ready=ready)

    async def apply(self, decision: Decision) -> Applied:
        now = self._clock.now()
        if self._persist_to is None:
            self._write(decision.desired, now)
            return Applied()
        fence = CURRENT_FENCE.get()
        token = fence.token if fence is not None else None
        with _locked(self._persist_to):
            _, seen = _read_persisted(self._persist_to)
            refused = token is not None and seen is not None and token < seen
            self._log(now, decision, token, fence.holder if fence else None, refused)
            if refused:
                raise StaleFence(
                    f"{self._name}: fencing token {token} is older than {seen}, "
                    "which a newer owner has written under"
                )
            self._write(decision.desired, now)
            kept = max(token or 0, seen or 0) or None
            content = f"{decision.desired}" + (f" {kept}" if kept is not None else "")
            replace_atomically(self._persist_to, content.encode())
        return Applied()

    def _write(self, desired: int, now: datetime) -> None:
        self.calls.append(RecordedCall(now, desired))
        self._resize(desired, now)

    def _resize(self, desired: int, now: datetime) -> None:
        # one of these two is a no-op: growing adds replicas, shrinking drops the newest
        self._ready_at.extend([now + self._startup] * (desired - len(self._ready_at)))
        del self._ready_at[desired:]

    def _log(
        self,
        now: datetime,
        decision: Decision,
        token: int | None,
        holder: str | None,
        refused: bool,
    ) -> None:
        if self._log_to is None:
            return
        line = {
            "at": now.isoformat(),
            # cooldowns run from the decision, which may be a moment before the write
            "decided_at": decision.at.isoformat(),
            "actuator": self._name,
            "desired": decision.desired,
            "fence": token,
            "instance": holder,
            "refused": refused,
        }
        with self._log_to.open("a") as log:
            log.write(json.dumps(line) + "\n")

    async def aclose(self) -> None:
        """Nothing to release: everything is in memory."""


def _read_persisted(path: Path) -> tuple[int | None, int | None]:
    """The capacity in ``path`` and the largest fencing token written under (or None)."""
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None, None
    if not words:
        return None, None
    return int(words[0]), int(words[1]) if len(words) > 1 else None


class _locked:
    """An exclusive lock on ``{path}.lock``, shared by every process."""

    def __init__(self, path: Path) -> None:
        self._path = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._path.open("a")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


@contextlib.asynccontextmanager
async def _shared(path: Path) -> AsyncIterator[None]:
    """A shared lock on ``{path}.lock``, waited for without blocking the event loop (the
    writer holding it may be a paused process)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as file:
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def build(config: RecordingConfig, ctx: BuildContext) -> Actuator:
    persist_to = ctx.base_dir / config.persist_to if config.persist_to else None
    log_to = ctx.base_dir / config.log_to if config.log_to else None
    return RecordingActuator(config, ctx.clock, persist_to, log_to)


PLUGIN = Plugin(
    kind="recording",
    config=RecordingConfig,
    build=build,
    summary="keeps a capacity in memory and records every change; for dry runs, demos and tests",
)
