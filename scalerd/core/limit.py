"""Rate limits and cooldowns: how fast capacity may move.

The rate policies are the Kubernetes HPA's (``calculateScaleUpLimitWithScalingRules`` and
``calculateScaleDownLimitWithBehaviors``): each policy measures from the capacity at the
start of its period, reconstructed from the scale events inside that period in *both*
directions; ``pods`` adds or removes a count, ``percent`` multiplies (rounding up when
growing, truncating when shrinking); ``select`` picks the policy allowing the larger
change (``max``), the smaller (``min``), or forbids the direction (``disabled``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from .model import NotScaled, Reason, ScaleEvent, Step, TargetState
from .rules import Behavior, Policy, ScalingRules

__all__ = ["cooldown_gate", "period_start", "rate_limit", "scale_down_limit", "scale_up_limit"]


def period_start(
    current: int, events: tuple[ScaleEvent, ...], period: timedelta, now: datetime
) -> int:
    """Capacity at the start of the period: undo every change strictly newer than the cutoff."""
    cutoff = now - period
    added = removed = 0
    for event in events:
        if event.at > cutoff:
            if event.after > event.before:
                added += event.after - event.before
            else:
                removed += event.before - event.after
    return current - added + removed


def scale_up_limit(
    current: int,
    events: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    policies: tuple[Policy, ...],
    now: datetime,
) -> tuple[int, str]:
    if rules.select == "disabled":
        return current, "scale-up is disabled"
    limits: list[int] = []
    notes: list[str] = []
    for policy in policies:
        start = period_start(current, events, policy.period, now)
        if policy.type == "pods":
            proposed = start + policy.value
        else:
            # rounded up, or a small target could never grow
            proposed = math.ceil(start * (1 + policy.value / 100.0))
        limits.append(proposed)
        notes.append(
            f"{policy.type} {policy.value}/{policy.period.total_seconds():g}s from {start} -> {proposed}"
        )
    chosen = min(limits) if rules.select == "min" else max(limits)
    return chosen, f"select {rules.select} of [{'; '.join(notes)}] = {chosen}"


def scale_down_limit(
    current: int,
    events: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    policies: tuple[Policy, ...],
    now: datetime,
) -> tuple[int, str]:
    if rules.select == "disabled":
        return current, "scale-down is disabled"
    limits: list[int] = []
    notes: list[str] = []
    for policy in policies:
        start = period_start(current, events, policy.period, now)
        if policy.type == "pods":
            proposed = start - policy.value
        else:
            proposed = int(start * (1 - policy.value / 100.0))
        limits.append(proposed)
        notes.append(
            f"{policy.type} {policy.value}/{policy.period.total_seconds():g}s from {start} -> {proposed}"
        )
    # for scale-down the larger change is the smaller floor
    chosen = max(limits) if rules.select == "min" else min(limits)
    return chosen, f"select {rules.select} of [{'; '.join(notes)}] = {chosen}"


def rate_limit(
    desired: int, current: int, events: tuple[ScaleEvent, ...], behavior: Behavior, now: datetime
) -> Reason | None:
    """The rate-limit step, or ``None`` when capacity does not move."""
    if desired > current:
        limit, detail = scale_up_limit(
            current, events, behavior.scale_up, behavior.up_policies, now
        )
        limit = max(limit, current)  # never below current: wait for old events to age out
        disabled = behavior.scale_up.select == "disabled"
        after = min(desired, limit)
        code = Step.SCALING_DISABLED if disabled else Step.SCALE_UP_LIMIT
    elif desired < current:
        limit, detail = scale_down_limit(
            current, events, behavior.scale_down, behavior.down_policies, now
        )
        limit = min(limit, current)
        disabled = behavior.scale_down.select == "disabled"
        after = max(desired, limit)
        code = Step.SCALING_DISABLED if disabled else Step.SCALE_DOWN_LIMIT
    else:
        return None
    holds = NotScaled.SCALING_DISABLED if disabled else NotScaled.RATE_LIMITED
    return Reason(code, desired, after, detail, {"limit": limit}, holds)


def cooldown_gate(
    desired: int, current: int, state: TargetState, now: datetime, step_scale_out: bool
) -> Reason | None:
    """Hold a change whose direction is cooling down.

    A scale-out is held during a scale-out cooldown, except that an AWS step policy may
    still go *further* (its proposal already counts the capacity the last one added). A
    scale-in is held during a scale-in cooldown, which every scale-out also restarts: a
    scale-out may cut a scale-in cooldown short, a scale-in never cuts a scale-out's.
    """
    if desired > current:
        until = state.scale_out_cooldown_until
        if until is None or now >= until or step_scale_out:
            return None
        direction = "scale-out"
    elif desired < current:
        until = state.scale_in_cooldown_until
        if until is None or now >= until:
            return None
        direction = "scale-in"
    else:
        return None
    remaining = (until - now).total_seconds()
    return Reason(
        Step.COOLDOWN,
        desired,
        current,
        f"{direction} cooldown for another {remaining:g}s",
        {"until": until.isoformat(), "remaining_s": remaining},
        NotScaled.COOLDOWN,
    )
