"""``kind = "replay"``: a recorded demand trace played back, optionally faster than life.

Demos and tests need a metric that moves like production without a production system
behind it. The trace (a ``t_seconds,value`` CSV, or inline ``values`` with a ``step``)
starts playing where ``offset`` says when the source is built, and one wall second moves
``speed`` trace seconds, so a day of traffic fits in a few minutes at ``speed = 300``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from ..clock import Clock
from ..core.durations import Duration, format_duration
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig
from ..traces import Trace, load_trace

__all__ = ["PLUGIN", "ReplayConfig", "ReplaySource"]

TraceValue = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ReplayConfig(SourceConfig):
    kind: Literal["replay"]
    # a t_seconds,value CSV, relative to the config file's folder ...
    path: str | None = None
    # ... or the values inline, one every `step`
    values: tuple[TraceValue, ...] | None = Field(None, min_length=1)
    # the time between inline values (with `values`)
    step: Duration | None = None
    # trace seconds per wall second: 60 plays an hour of trace in a minute
    speed: float = Field(1.0, gt=0, allow_inf_nan=False)
    # where in the trace playback starts, from the trace's first row
    offset: Duration = timedelta(0)
    # start over at the end; without it, reads past the end fail
    loop: bool = True
    # multiply every value (e.g. turn requests/s into the units a rule expects)
    scale: float = Field(1.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_trace(self) -> Self:
        if (self.path is None) == (self.values is None):
            raise ValueError("set either path (a CSV file) or values (inline), not both")
        if self.values is not None and (self.step is None or self.step <= timedelta(0)):
            raise ValueError("inline values need a positive step, e.g. step = '60s'")
        if self.path is not None and self.step is not None:
            raise ValueError("step applies to inline values only; a CSV has its own times")
        return self


class ReplaySource:
    """Plays ``trace`` from ``offset`` on, ``speed`` trace seconds per second of ``clock``."""

    def __init__(self, config: ReplayConfig, trace: Trace, clock: Clock) -> None:
        if config.offset.total_seconds() >= trace.duration:
            raise ValueError(
                f"replay {config.name!r}: offset {format_duration(config.offset)} is past "
                f"the end of {trace.origin} ({trace.duration:g}s long)"
            )
        self._config = config
        self._trace = trace
        self._clock = clock
        self._started_at = clock.now()

    async def read(self) -> Sequence[Sample]:
        now = self._clock.now()
        value = self._trace.value_at(self._trace.start + self._position(now))
        return (Sample(now, value * self._config.scale),)

    async def aclose(self) -> None:
        """Nothing to release: the trace is in memory."""

    def _position(self, now: datetime) -> float:
        """Seconds into the trace that ``now`` plays, wrapped around when looping."""
        elapsed = (now - self._started_at).total_seconds() * self._config.speed
        position = self._config.offset.total_seconds() + elapsed
        if self._config.loop:
            return position % self._trace.duration
        if position >= self._trace.duration:
            raise SourceError(
                f"replay {self._config.name!r} reached the end of {self._trace.origin} "
                f"after {self._trace.duration:g} trace seconds (loop = false)"
            )
        return position


def build(config: ReplayConfig, ctx: BuildContext) -> Source:
    return ReplaySource(config, _trace(config, ctx.base_dir), ctx.clock)


def _trace(config: ReplayConfig, base_dir: Path) -> Trace:
    if config.path is not None:
        return load_trace(base_dir / config.path)
    assert config.values is not None and config.step is not None  # the validator ensures it
    return Trace.from_values(config.values, config.step.total_seconds())


PLUGIN = Plugin(
    kind="replay",
    config=ReplayConfig,
    build=build,
    summary="replays a recorded t_seconds,value trace (CSV or inline), time-compressed by speed",
)
