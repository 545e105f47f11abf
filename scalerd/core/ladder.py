"""Vertical ladders: moves between tiers that the platform does not allow in one step."""

from __future__ import annotations

from .model import NotScaled, Reason, Step, build_reason
from .rules import Ladder

__all__ = ["constrain"]


def constrain(current: int, desired: int, ladder: Ladder) -> Reason | None:
    """Go as far toward ``desired`` as one allowed move goes, or hold."""
    if ladder.allows(current, desired):
        return None
    toward = 1 if desired > current else -1
    for position in range(desired - toward, current, -toward):
        if ladder.allows(current, position):
            return build_reason(
                Step.TRANSITION,
                desired,
                position,
                f"{ladder.tier(current).name} -> {ladder.tier(desired).name} is not allowed in one "
                f"move; {ladder.tier(position).name} is the nearest allowed tier",
                {"from": ladder.tier(current).name, "to": ladder.tier(position).name},
                NotScaled.TRANSITION,
            )
    return build_reason(
        Step.TRANSITION,
        desired,
        current,
        f"no allowed move from {ladder.tier(current).name} toward {ladder.tier(desired).name}",
        {"from": ladder.tier(current).name, "wanted": ladder.tier(desired).name},
        NotScaled.TRANSITION,
    )
