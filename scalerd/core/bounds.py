"""Capacity bounds: min/max/default, moved by scheduled profiles and ramped in."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime

from .model import NotScaled, Reason, Step, build_reason
from .rules import Calendar, Rule

__all__ = ["Bounds", "clamp", "effective_bounds"]


@dataclass(frozen=True, slots=True)
class Bounds:
    minimum: int
    maximum: int
    default: int | None
    profile: str | None = None


@functools.lru_cache(maxsize=1024)
def _rule_bounds(minimum: int, maximum: int, default: int | None) -> Bounds:
    """A rule's own bounds, built once per distinct (min, max, default): every evaluation
    of every target asks for them."""
    return Bounds(minimum, maximum, default)


def _ramped(base: int, target: int | None, progress: float) -> int:
    if target is None:
        return base
    value = base + (target - base) * progress
    # round toward the profile's value so a ramp reaches it on time
    return math.ceil(value - 1e-9) if target > base else math.floor(value + 1e-9)


def effective_bounds(
    rule: Rule, calendar: Calendar | None, now: datetime
) -> tuple[Bounds, Reason | None]:
    """The bounds in force at ``now``: the first open schedule wins (list order)."""
    base = _rule_bounds(rule.minimum, rule.maximum, rule.default)
    if calendar is None:
        return base, None
    for schedule in rule.schedule:
        opened = calendar.opened_at(schedule, now)
        if opened is None:
            continue
        ramp = schedule.ramp.total_seconds()
        progress = 1.0 if ramp <= 0 else min(1.0, (now - opened).total_seconds() / ramp)
        minimum = _ramped(rule.minimum, schedule.minimum, progress)
        maximum = _ramped(rule.maximum, schedule.maximum, progress)
        default_base = rule.default if rule.default is not None else rule.minimum
        default = (
            _ramped(default_base, schedule.default, progress)
            if schedule.default is not None
            else rule.default
        )
        bounds = Bounds(minimum, max(maximum, minimum), default, schedule.name)
        ramp_note = f", ramp {progress:.0%}" if progress < 1.0 else ""
        reason = build_reason(
            Step.SCHEDULE,
            0,
            0,
            f"profile '{schedule.name}' open since {opened.isoformat()}{ramp_note}: "
            f"min {bounds.minimum}, max {bounds.maximum}, default {bounds.default}",
            {
                "profile": schedule.name,
                "opened": opened.isoformat(),
                "ramp_progress": progress,
                "min": bounds.minimum,
                "max": bounds.maximum,
            },
        )
        return bounds, reason
    return base, None


def clamp(desired: int, bounds: Bounds, floor: int) -> Reason | None:
    """Clamp to ``max(floor, min)..max``; ``floor`` is 0 only when scaling to zero."""
    minimum = max(bounds.minimum, floor)
    profile = f" (profile '{bounds.profile}')" if bounds.profile else ""
    if desired > bounds.maximum:
        return build_reason(
            Step.TOO_MANY,
            desired,
            bounds.maximum,
            f"max is {bounds.maximum}{profile}",
            {"max": bounds.maximum},
            NotScaled.AT_MAX,
        )
    if desired < minimum:
        return build_reason(
            Step.TOO_FEW,
            desired,
            minimum,
            f"min is {minimum}{profile}",
            {"min": minimum},
            NotScaled.AT_MIN,
        )
    return None
