"""Flapping protection (Azure Monitor autoscale): before a scale-in, project each scale-out
condition at the smaller capacity — the same load spread over fewer instances — and if one
would fire there, shrink the step to the largest safe one, or hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .model import NotScaled, Reason, Step, build_reason
from .recommend import OutTrigger

__all__ = ["protect"]


def protect(
    candidate: int,
    current: int,
    triggers: Sequence[OutTrigger],
    size: Callable[[int], float],
) -> Reason | None:
    """The flapping step for a scale-in from ``current`` to ``candidate``, or ``None``.

    ``size`` maps a capacity to the amount of serving capacity it represents (replicas, or
    a ladder tier's units), so a per-instance metric projects as ``value * size(current) /
    size(capacity)``.
    """
    if candidate >= current or not triggers:
        return None

    def first_firing(capacity: int) -> tuple[OutTrigger, float] | None:
        if size(capacity) <= 0:
            return (triggers[0], float("inf"))
        for trigger in triggers:
            projected = (
                trigger.value * size(current) / size(capacity)
                if trigger.per_instance
                else trigger.value
            )
            if trigger.fires(projected):
                return trigger, projected
        return None

    blocking = first_firing(candidate)
    if blocking is None:
        return None
    trigger, projected = blocking
    # projections only fall as capacity grows, so the first safe one is the largest safe step
    for capacity in range(candidate + 1, current):
        if first_firing(capacity) is None:
            return build_reason(
                Step.FLAPPING,
                candidate,
                capacity,
                f"at {candidate} '{trigger.rule}' would read {projected:.4g} and fire; "
                f"{capacity} is the smallest safe capacity",
                {"projected": projected, "rule": trigger.rule},
                NotScaled.FLAPPING,
            )
    return build_reason(
        Step.FLAPPING,
        candidate,
        current,
        f"at {candidate} '{trigger.rule}' would read {projected:.4g} and fire; no smaller "
        "capacity is safe: hold",
        {"projected": projected, "rule": trigger.rule},
        NotScaled.FLAPPING,
    )
