"""What the vertical Azure actuators (databases, caches) share in their config.

A vertical actuator moves a resource along a ladder of SKUs; its config hands the ladder
and its maintenance windows to the core (``scalerd.plugins.VerticalConfig``), which then
holds changes outside the windows, for the directions named in
``maintenance_applies_to``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

from pydantic import Field, field_validator

from ..core.rules import CronWindow
from ..errors import ActuatorError
from ..plugins import ActuatorConfig
from .ids import ResourceId

__all__ = ["LadderEntry", "VerticalActuatorConfig", "check_ladder", "position_on"]


class VerticalActuatorConfig(ActuatorConfig):
    # the resource's id, as the portal's JSON view shows it
    resource_id: str
    # when changes may start, e.g. [{cron = "0 2 * * *", duration = "2h", timezone = "UTC"}];
    # none: at any time
    maintenance: tuple[CronWindow, ...] = ()
    # which directions wait for a window ("up" and "down"; e.g. ["down"] lets growth in)
    maintenance_applies_to: tuple[Literal["up", "down"], ...] = Field(("up", "down"), min_length=1)

    def maintenance_windows(self) -> tuple[CronWindow, ...]:
        return self.maintenance

    def describe(self) -> str:
        """The resource by name (``scalerd check`` prints the ladder and windows itself)."""
        resource = ResourceId.parse(self.resource_id)
        where = f"{resource.name} in resource group {resource.resource_group}"
        return f"{self.kind} '{self.name}' ({where})"

    @field_validator("maintenance_applies_to")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("name each direction once")
        return value


class LadderEntry(Protocol):
    """One rung as an actuator config describes it."""

    @property
    def label(self) -> str: ...

    @property
    def size(self) -> float: ...


def check_ladder(entries: Sequence[LadderEntry]) -> None:
    """A ladder lists distinct rungs, smallest first: the core picks the smallest tier that
    offers enough units, and reads its moves as up or down by position."""
    labels = [entry.label for entry in entries]
    for index, label in enumerate(labels):
        if label in labels[:index]:
            raise ValueError(f"{label} is on the ladder twice")
    for index, (lower, upper) in enumerate(itertools.pairwise(entries), start=1):
        if upper.size < lower.size:
            raise ValueError(
                f"the ladder must grow: {upper.label} ({upper.size:g} units) comes after "
                f"{lower.label} ({lower.size:g}); list the smallest first (entry {index + 1})"
            )


E = TypeVar("E", bound=LadderEntry)


def position_on(
    ladder: Sequence[E], is_current: Callable[[E], bool], label: str, running: str, code: str
) -> int:
    """The 1-based position of the rung ``is_current`` picks; a resource running something
    that is not on the ladder (changed by hand, say) is an error naming both."""
    for position, entry in enumerate(ladder, start=1):
        if is_current(entry):
            return position
    rungs = ", ".join(entry.label for entry in ladder)
    raise ActuatorError(f"{label} runs {running}, which is not on the ladder ({rungs})", code)
