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

from .model import NotScaled, Reason, ScaleEvent, Step, TargetState, build_reason
from .rules import Behavior, Policy, ScalingRules

__all__ = ["cooldown_gate", "period_start", "policy_limit", "rate_limit"]


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


def _proposal(policy: Policy, start: int, growing: bool) -> int:
    if policy.type == "pods":
        return start + policy.value if growing else start - policy.value
    if growing:
        # rounded up, or a small target could never grow
        return math.ceil(start * (1 + policy.value / 100.0))
    return int(start * (1 - policy.value / 100.0))


def policy_limit(
    current: int,
    events: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    policies: tuple[Policy, ...],
    now: datetime,
    growing: bool,
) -> tuple[int, str]:
    """The furthest capacity the policies allow in one direction, and the arithmetic:
    ``calculateScaleUpLimitWithScalingRules`` / ``calculateScaleDownLimitWithBehaviors``."""
    if rules.select == "disabled":
        return current, f"scale-{'up' if growing else 'down'} is disabled"
    limits: list[int] = []
    notes: list[str] = []
    for policy in policies:
        start = period_start(current, events, policy.period, now)
        proposed = _proposal(policy, start, growing)
        limits.append(proposed)
        period = policy.period.total_seconds()
        notes.append(f"{policy.type} {policy.value}/{period:g}s from {start} -> {proposed}")
    # select max picks the policy allowing the larger change: the highest ceiling when
    # growing, the lowest floor when shrinking (and min the other way round)
    larger_change = max if growing else min
    smaller_change = min if growing else max
    chosen = (smaller_change if rules.select == "min" else larger_change)(limits)
    return chosen, f"select {rules.select} of [{'; '.join(notes)}] = {chosen}"


def rate_limit(
    desired: int, current: int, events: tuple[ScaleEvent, ...], behavior: Behavior, now: datetime
) -> Reason | None:
    """The rate-limit step, or ``None`` when capacity does not move."""
    if desired == current:
        return None
    growing = desired > current
    rules = behavior.scale_up if growing else behavior.scale_down
    policies = behavior.up_policies if growing else behavior.down_policies
    limit, detail = policy_limit(current, events, rules, policies, now, growing)
    # never beyond current the wrong way: wait for old events to age out instead
    limit = max(limit, current) if growing else min(limit, current)
    after = min(desired, limit) if growing else max(desired, limit)
    if rules.select == "disabled":
        code, holds = Step.SCALING_DISABLED, NotScaled.SCALING_DISABLED
    else:
        code, holds = (
            (Step.SCALE_UP_LIMIT if growing else Step.SCALE_DOWN_LIMIT),
            NotScaled.RATE_LIMITED,
        )
    return build_reason(code, desired, after, detail, {"limit": limit}, holds)


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
    return build_reason(
        Step.COOLDOWN,
        desired,
        current,
        f"{direction} cooldown for another {remaining:g}s",
        {"until": until.isoformat(), "remaining_s": remaining},
        NotScaled.COOLDOWN,
    )
