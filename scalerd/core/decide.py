"""``decide``: one evaluation of one target, as a pure function.

The pipeline, each step recorded as a :class:`Reason`:

1. schedule — the bounds in force (a profile may be ramping in);
2. recommend — every rule proposes, the largest proposal wins;
3. metric failure — hold, or rise to ``default`` (or the fallback after N failures); never
   scale in on missing data;
   predictive floor — with ``[predict]``, at least the forecast's capacity (never lower);
4. activation / deactivation — KEDA's 0 ↔ 1, straight past stabilization and rate limits;
5. override — an operator's capacity, straight past them too;
6. stabilize → cooldown → rate limit → flapping (windows and rate limits only when the
   rule is paced: an HPA ``behavior``, or the HPA defaults for target tracking);
   breakers — an open ``[[breaker]]`` holds a scale-out at the current capacity;
7. bounds — min/max, last of the arithmetic;
8. holds — ladder transitions, pause, an operation in flight, a closed maintenance window.

``decide`` returns the decision and the state to keep; :func:`record_applied` adds the
scale event and cooldowns once the actuator has carried the change out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any, cast

from .aggregate import ingest
from .bounds import clamp, effective_bounds
from .breaker import Judged, hold_scale_out, judge
from .flapping import protect
from .ladder import constrain
from .limit import cooldown_gate, rate_limit
from .model import (
    Capacity,
    Controls,
    Decision,
    DemandHistory,
    NotScaled,
    Observation,
    Reason,
    Step,
    TargetState,
    build_decision,
    build_reason,
    build_recommendation,
    build_scale_event,
    build_state,
    later,
)
from .predict import observe, predictive_floor, sized_track
from .recommend import Evaluation, Proposal, evaluate
from .rules import Predict, Rule, TargetSpec
from .stabilize import stabilize

__all__ = ["decide", "record_applied", "record_scale"]


def decide(
    target: TargetSpec,
    state: TargetState,
    capacity: Capacity,
    observations: Iterable[Observation],
    now: datetime,
) -> tuple[Decision, TargetState]:
    """Evaluate ``target`` at ``now``; return the decision and the state to keep."""
    rule = target.rule
    current = capacity.provisioned
    steps: list[Reason] = []
    controls = state.controls.active(now)

    observations = tuple(observations)
    samples, failures = ingest(state.samples, observations, target.retention, now)
    # the state below is the one given: only ready_history changes before the end
    ready_history = _log_ready(state.ready_history, capacity, target, now)
    bounds, schedule_reason = effective_bounds(rule, target.calendar, now)
    if schedule_reason is not None:
        steps.append(replace(schedule_reason, before=current, after=current))

    evaluation = evaluate(
        rule, target.metrics, samples, failures, capacity, state, target.ladder, now, ready_history
    )
    best = evaluation.best()
    breakers = state.breakers
    judged: tuple[Judged, ...] = ()
    if rule.breaker:
        judged, breakers = judge(rule.breaker, breakers, samples, failures, target.metrics, now)
    elif breakers:
        breakers = {}  # every breaker was removed from the rule
    # scheduled scaling alone: capacity is the floor of the bounds in force, as a KEDA
    # cron trigger reports 0 outside its window and the HPA settles at min
    raw = (best.replicas if best is not None else current) if rule.sizes else bounds.minimum
    steps.append(_recommended(evaluation, best, current, raw))
    value = raw

    consecutive_failures = state.consecutive_failures + 1 if evaluation.failed else 0
    total_failure = bool(evaluation.failed) and all(r.value is None for r in evaluation.inputs)
    if evaluation.failed:
        value, reason = _failure_floor(
            rule, evaluation, value, current, bounds.default, consecutive_failures, total_failure
        )
        steps.append(reason)

    demand_history = state.demand_history
    predict = rule.predict
    if predict is not None and predict.mode != "off":
        track = sized_track(rule, predict)
        if track.metric not in failures:  # NaN, negative or failed readings are not demand
            demand_history = _observe_demand(demand_history, observations, track.metric, predict)
        if not total_failure:
            floored = predictive_floor(predict, track, demand_history, now, value)
            steps.append(floored)
            value = floored.after

    # the windows remember what the rules asked for, even while activation or an override
    # decides, so they are warm when the rules take over again
    pacing = rule.pacing
    recommendations = state.recommendations
    if not recommendations and pacing is not None:
        # Kubernetes: a target seen for the first time records its current capacity as a
        # recommendation, so it does not scale in before its scale-down window has passed
        recommendations = (build_recommendation(now, current),)
    stabilized: Reason | None = None
    if not total_failure and pacing is not None:
        _, recommendations, stabilized = stabilize(value, current, recommendations, pacing, now)

    direct = False  # KEDA activation and operator overrides bypass windows and rate limits
    direct_by: str | None = None  # which of them, for the breaker step
    floor = 1
    last_active_at = state.last_active_at
    if bounds.minimum == 0 and rule.track:
        if evaluation.active or last_active_at is None:
            last_active_at = now
        zero = _zero(rule, evaluation.active, value, current, last_active_at, now)
        if zero is not None:
            steps.append(zero)
            value, direct = zero.after, True
            direct_by = "activation" if zero.code == Step.ACTIVATION else "deactivation"
            floor = 0 if value == 0 else 1

    override = (
        _override(controls, rule, now)
        if controls.override is not None or rule.override is not None
        else None
    )
    if override is not None:
        steps.append(
            build_reason(
                Step.OVERRIDE,
                value,
                override,
                f"manual override to {override}",
                {},
                NotScaled.OVERRIDE,
            )
        )
        value, direct, floor = override, True, 0 if override == 0 else 1
        direct_by = "the manual override"

    if stabilized is not None and not direct:
        steps.append(stabilized)
        value = stabilized.after

    # (cooldowns and rate limits only hold a change: none to hold, no call)
    if not (direct or total_failure) and value != current:
        step_led = best is not None and best.kind == "step" and best.replicas == value
        cooling = cooldown_gate(value, current, state, now, step_led)
        if cooling is not None:
            steps.append(cooling)
            value = cooling.after
        limited = (
            rate_limit(value, current, state.events, pacing, now) if pacing is not None else None
        )
        if limited is not None:
            steps.append(limited)
            value = limited.after
        if rule.flapping_protection and value < current:
            ladder = target.ladder
            size = ladder.units if ladder is not None else float
            flapping = protect(value, current, evaluation.out_triggers, size)
            if flapping is not None:
                steps.append(flapping)
                value = flapping.after

    if judged:
        held = hold_scale_out(judged, state.breakers, value, current, direct_by, now)
        steps.extend(held)
        value = held[-1].after if held else value

    if not bounds.minimum <= value <= bounds.maximum or value < floor:  # else nothing to clamp
        bounded = clamp(value, bounds, floor)
        if bounded is not None:
            steps.append(bounded)
            value = bounded.after

    if value != current or raw != current:  # a hold needs somewhere to go
        value = _holds(target, controls, capacity, value, raw, steps, now)

    ladder = target.ladder
    decision = build_decision(  # Decision's fields, in order
        target.name,
        now,  # at
        capacity,  # current
        raw,  # recommended
        value,  # desired
        tuple(steps),
        evaluation.inputs + tuple(item.report for item in judged) if judged else evaluation.inputs,
        evaluation.rules,
        _not_scaled(steps, current, value),
        _cooldown(rule, best, current, value),
        ladder.tier(value).name if ladder is not None and value > 0 else None,  # tier
        ladder is not None and value != current and ladder.tier(value).restarts,  # restarts
    )
    new_state = _evolve(
        state,
        ready_history=ready_history,
        samples=samples,
        recommendations=recommendations,
        consecutive_failures=consecutive_failures,
        last_active_at=last_active_at,
        controls=controls,
        demand_history=demand_history,
        breakers=breakers,
    )
    return decision, new_state


def record_applied(
    target: TargetSpec, state: TargetState, decision: Decision, at: datetime
) -> TargetState:
    """The state after the actuator carried out ``decision`` at ``at``."""
    return record_scale(
        target, state, decision.current.provisioned, decision.desired, decision.cooldown, at
    )


def record_scale(
    target: TargetSpec,
    state: TargetState,
    before: int,
    after: int,
    cooldown: timedelta,
    at: datetime,
) -> TargetState:
    """The state after capacity moved from ``before`` to ``after`` at ``at``: the scale
    event for the rate-limit periods, and the cooldowns it starts."""
    if before == after:
        return state
    pacing = target.rule.pacing
    # an event older than the longest rate-limit period can no longer limit anything
    oldest = at - (pacing.longest_period if pacing is not None else timedelta(0))
    events = tuple(event for event in state.events if event.at > oldest)
    events += (build_scale_event(at, before, after),)
    until = at + cooldown
    if after > before:
        cooling = state.scale_out_cooldown_until is not None and at < state.scale_out_cooldown_until
        return _evolve(
            state,
            events=events,
            scale_out_cooldown_until=until,
            # a scale-out also (re)starts the scale-in cooldown, cutting a longer one short
            scale_in_cooldown_until=until,
            scale_out_base=state.scale_out_base if cooling else before,
        )
    return _evolve(state, events=events, scale_in_cooldown_until=until)


_STATE_FIELDS = tuple(field.name for field in fields(TargetState))
_KEEP = object()


def _evolver() -> Callable[..., TargetState]:
    """``dataclasses.replace`` for the state at a fraction of its cost (it runs at every
    evaluation and every applied change): the fields given by keyword, the others copied,
    through the state's builder (TargetState has no ``__post_init__`` to skip). Written
    from TargetState's fields, so a field it gains is copied too."""
    params = ", ".join(f"{name}=_KEEP" for name in _STATE_FIELDS)
    body = "".join(
        f"    new.{name} = state.{name} if {name} is _KEEP else {name}\n" for name in _STATE_FIELDS
    )
    source = (
        f"def _evolve(state, *, {params}):\n"
        "    new = _new(_twin)\n" + body + "    new.__class__ = _cls\n    return new\n"
    )
    namespace: dict[str, Any] = {
        "_KEEP": _KEEP,
        "_new": object.__new__,
        "_twin": build_state,
        "_cls": TargetState,
    }
    exec(source, namespace)  # the code is written from TargetState's own field names
    return cast(Callable[..., TargetState], namespace["_evolve"])


_evolve = _evolver()


def _observe_demand(
    history: DemandHistory,
    observations: Iterable[Observation],
    metric: str,
    predict: Predict,
) -> DemandHistory:
    """The forecast metric's history with this evaluation's fresh readings folded in."""
    fresh = [sample for obs in observations if obs.metric == metric for sample in obs.samples]
    return observe(history, fresh, predict) if fresh else history


def _log_ready(
    history: tuple[tuple[datetime, int], ...], capacity: Capacity, target: TargetSpec, now: datetime
) -> tuple[tuple[datetime, int], ...]:
    """The ready count's change points, as far back as samples are kept (and the one in
    force at that cutoff)."""
    ready = min(capacity.ready, capacity.provisioned)
    if not history or history[-1][1] != ready:
        history = (*history, (now, ready))
    cutoff = now - target.retention
    start = 0
    while start + 1 < len(history) and history[start + 1][0] <= cutoff:
        start += 1
    return history[start:]


def _recommended(evaluation: Evaluation, best: Proposal | None, current: int, raw: int) -> Reason:
    if best is None and raw != current:
        detail = f"no metric rule: the bounds in force set {raw}"
    elif best is None:
        detail = "no rule proposes a change"
    else:
        detail = later(_proposes, best.rule, best.replicas, evaluation.proposals)
    holds = (
        NotScaled.WITHIN_TOLERANCE
        if evaluation.within_tolerance
        else NotScaled.NO_CHANGE_RECOMMENDED
    )
    return build_reason(
        Step.RECOMMENDED, current, raw, detail, {"proposals": len(evaluation.proposals)}, holds
    )


def _proposes(rule: str, replicas: int, proposals: tuple[Proposal, ...]) -> str:
    detail = f"'{rule}' proposes {replicas}"
    if len(proposals) > 1:
        detail += " (largest of " + ", ".join(str(p.replicas) for p in proposals) + ")"
    return detail


def _failure_floor(
    rule: Rule,
    evaluation: Evaluation,
    value: int,
    current: int,
    default: int | None,
    consecutive: int,
    total: bool,
) -> tuple[int, Reason]:
    floor, why = current, "hold (never scale in on missing data)"
    if default is not None and default > floor:
        floor, why = default, f"rise to default {default}"
    fallback = rule.fallback
    # KEDA: the fallback starts once the failures *exceed* failureThreshold
    if (
        fallback is not None
        and consecutive > fallback.failure_threshold
        and fallback.replicas > floor
    ):
        floor, why = (
            fallback.replicas,
            f"{consecutive} failures in a row: fallback {fallback.replicas}",
        )
    after = floor if total else max(value, floor)
    scope = "every metric" if total else ", ".join(evaluation.failed)
    return after, build_reason(
        Step.METRIC_FAILURE,
        value,
        after,
        f"{scope} failed: {why}",
        {"failed": list(evaluation.failed), "consecutive": consecutive},
        NotScaled.METRIC_FAILURE,
    )


def _override(controls: Controls, rule: Rule, now: datetime) -> int | None:
    """An operator's override (runtime controls first, then config), unless expired."""
    if controls.override is not None:
        return controls.override
    configured = rule.override
    if configured is not None and (configured.until is None or now < configured.until):
        return configured.capacity
    return None


def _zero(
    rule: Rule,
    active: bool | None,
    value: int,
    current: int,
    last_active_at: datetime | None,
    now: datetime,
) -> Reason | None:
    if current == 0:
        if active:
            woken = max(1, rule.minimum)
            return build_reason(
                Step.ACTIVATION,
                value,
                woken,
                f"a trigger is active: scale from zero to {woken}",
                {},
            )
        return build_reason(
            Step.DEACTIVATION,
            value,
            0,
            "no trigger is active: stay at zero",
            {},
            NotScaled.INACTIVE,
        )
    if active is False and value <= current and last_active_at is not None:
        idle = now - last_active_at
        if idle > rule.idle_before_zero:  # KEDA: lastActiveTime + cooldownPeriod < now
            return build_reason(
                Step.DEACTIVATION,
                value,
                0,
                f"every trigger inactive for {idle.total_seconds():g}s: scale to zero",
                {"idle_s": idle.total_seconds()},
            )
    return None


_HOLDS = (Step.PAUSED, Step.IN_FLIGHT, Step.MAINTENANCE_WINDOW)
_FAILED = (Step.METRIC_FAILURE, Step.DEACTIVATION)


def _holds(
    target: TargetSpec,
    controls: Controls,
    capacity: Capacity,
    value: int,
    wanted: int,
    steps: list[Reason],
    now: datetime,
) -> int:
    """Ladder moves the platform forbids, then pause, an operation in flight, a closed
    maintenance window. A hold is judged by where the rules wanted to go (``wanted``),
    so it is named even when an earlier step already kept the capacity: on-call should
    read "paused", not "rate limited", while a pause is on."""
    current = capacity.provisioned
    if value != current and target.ladder is not None:
        moved = constrain(current, value, target.ladder)
        if moved is not None:
            steps.append(moved)
            value = moved.after
    heading = value if value != current else wanted
    if heading == current:
        return value
    direction = "up" if heading > current else "down"

    def hold(
        code: Step, detail: str, holds: NotScaled, data: dict[str, object] | None = None
    ) -> int:
        steps.append(build_reason(code, value, current, detail, data or {}, holds))
        return current

    pause = controls.pause or target.rule.pause
    if pause is not None and (
        pause == "all" or (pause, direction) in (("scale_in", "down"), ("scale_out", "up"))
    ):
        what = {"all": "scaling", "scale_in": "scale-in", "scale_out": "scale-out"}[pause]
        return hold(Step.PAUSED, f"{what} is paused", NotScaled.PAUSED)
    if capacity.operation is not None:
        return hold(
            Step.IN_FLIGHT,
            f"operation {capacity.operation} is still in flight",
            NotScaled.IN_FLIGHT,
            {"operation": capacity.operation},
        )
    if target.maintenance and direction in target.maintenance_applies_to:
        calendar = target.calendar
        assert calendar is not None  # TargetSpec guarantees it
        if not any(calendar.opened_at(window, now) is not None for window in target.maintenance):
            return hold(
                Step.MAINTENANCE_WINDOW,
                "outside every maintenance window",
                NotScaled.MAINTENANCE_WINDOW,
            )
    return value


def _not_scaled(steps: list[Reason], current: int, desired: int) -> NotScaled | None:
    if desired != current:
        return None
    # the last hold, else the last step that brought capacity back to current, in one pass
    kept: NotScaled | None = None
    for step in reversed(steps):
        holds = step.holds_as
        if holds is None:
            continue
        if step.code in _HOLDS:
            return holds
        if kept is None and step.after == current and step.before != current:
            kept = holds
    if kept is not None:
        return kept
    recommended = None
    for step in steps:
        if step.holds_as is not None and step.code in _FAILED:
            return step.holds_as
        if recommended is None and step.code == Step.RECOMMENDED:
            recommended = step
    if recommended is None:
        raise ValueError("a decision's steps always hold the recommended one")
    return recommended.holds_as


def _cooldown(rule: Rule, best: Proposal | None, current: int, desired: int) -> timedelta:
    if desired > current:
        own = best.cooldown if best is not None and best.replicas > current else timedelta(0)
        return max(rule.cooldown.up, own)
    if desired < current:
        own = best.cooldown if best is not None and best.replicas < current else timedelta(0)
        return max(rule.cooldown.down, own)
    return timedelta(0)
