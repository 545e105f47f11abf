"""``kind = "recording"``: a capacity kept in memory, with every change recorded.

Dry runs, demos and tests need an actuator that behaves like a real one without scaling
anything. Replicas asked for become ready ``startup`` after the request (by the injected
clock), so ``current()`` reports provisioned and ready apart, as a real platform does,
and the core's handling of replicas still starting is exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..clock import Clock
from ..core.durations import Duration
from ..core.model import Capacity, Decision
from ..core.rules import MAX_CAPACITY
from ..files import replace_atomically
from ..plugins import Actuator, ActuatorConfig, Applied, BuildContext, Plugin

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


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One ``apply()``: when it came and the capacity it asked for."""

    at: datetime
    desired: int


class RecordingActuator:
    """Replicas are the times they become ready, oldest first; scaling in drops the newest."""

    def __init__(
        self, config: RecordingConfig, clock: Clock, persist_to: Path | None = None
    ) -> None:
        self._startup = config.startup
        self._clock = clock
        self._persist_to = persist_to
        initial = (
            int(persist_to.read_text())
            if persist_to is not None and persist_to.exists()
            else config.initial
        )
        self._ready_at: list[datetime] = [clock.now()] * initial
        self.calls: list[RecordedCall] = []

    async def current(self) -> Capacity:
        now = self._clock.now()
        ready = sum(1 for ready_at in self._ready_at if ready_at <= now)
        return Capacity(provisioned=len(self._ready_at), ready=ready)

    async def apply(self, decision: Decision) -> Applied:
        now = self._clock.now()
        self.calls.append(RecordedCall(now, decision.desired))
        # one of these two is a no-op: growing adds replicas, shrinking drops the newest
        self._ready_at.extend([now + self._startup] * (decision.desired - len(self._ready_at)))
        del self._ready_at[decision.desired :]
        if self._persist_to is not None:
            replace_atomically(self._persist_to, str(decision.desired).encode())
        return Applied()

    async def aclose(self) -> None:
        """Nothing to release: everything is in memory."""


def build(config: RecordingConfig, ctx: BuildContext) -> Actuator:
    persist_to = ctx.base_dir / config.persist_to if config.persist_to else None
    return RecordingActuator(config, ctx.clock, persist_to)


PLUGIN = Plugin(
    kind="recording",
    config=RecordingConfig,
    build=build,
    summary="keeps a capacity in memory and records every change; for dry runs, demos and tests",
)
