"""Plain-words summaries of validated targets (``scalerd check``, ``/api/targets``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from .config import VERTICAL_COOLDOWN, Config, Target
from .core.durations import format_duration
from .core.rules import Cooldown, Policy, Rule, ScalingRules

__all__ = ["can_scale", "describe_rule", "describe_target", "rule_file_lines", "summary_lines"]


def _policies(rules: ScalingRules, policies: tuple[Policy, ...], window_s: float) -> str:
    if rules.select == "disabled":
        return "disabled"
    shown = ", ".join(
        f"{policy.value}{'%' if policy.type == 'percent' else ' pods'}/{format_duration(policy.period)}"
        for policy in policies
    )
    return f"window {window_s:g}s, {rules.select} of [{shown}]"


def describe_target(target: Target) -> Iterator[str]:
    yield f"{target.name}: scales {target.actuator.describe()}"
    rule_lines = describe_rule(target.spec.rule, on_ladder=target.spec.ladder is not None)
    yield next(rule_lines)  # how often, between which bounds
    if target.spec.ladder is not None:
        tiers = " -> ".join(tier.name for tier in target.spec.ladder.tiers)
        yield f"  ladder: {tiers}"
    if target.rule_file is not None:
        yield f"  rules from {target.rule_file}"
    for metric, source in target.sources.items():
        age = format_duration(target.spec.metrics[metric].max_age)
        yield f"  metric {metric!r} <- {source.describe()} (max age {age})"
    for maintenance in target.spec.maintenance:
        length = (
            f"for {format_duration(maintenance.duration)}"
            if maintenance.duration
            else f"until '{maintenance.end}'"
        )
        yield f"  maintenance window: '{maintenance.cron}' {length} ({maintenance.timezone})"
    yield from rule_lines


def describe_rule(rule: Rule, *, on_ladder: bool = False) -> Iterator[str]:
    """A rule in words, ending with what applies when settings meet (cooldowns) and with
    a warning for each direction the rule can never scale in."""
    bounds = f"{rule.minimum}..{rule.maximum}"
    if rule.default is not None:
        bounds += f", default {rule.default}"
    yield f"  every {format_duration(rule.interval)}, capacity {bounds}"
    tolerance = rule.tolerance
    for track in rule.track:
        window = f" {track.aggregation} {format_duration(track.window)}" if track.window else ""
        activation = f", activation > {track.activation:g}" if rule.minimum == 0 else ""
        yield (
            f"  track {track.metric}{window} at {track.target:g} ({track.type}), tolerance "
            f"-{tolerance.down:g}/+{tolerance.up:g}{activation}"
        )
    for threshold in rule.threshold:
        yield f"  threshold: when {threshold.when} then {threshold.action} (cooldown {format_duration(threshold.cooldown)})"
    for alert in rule.alert:
        yield f"  alert: when {alert.when} (notified, never acted on)"
    for policy in rule.step:
        steps = ", ".join(
            f"[{'-inf' if s.lower is None else f'{s.lower:g}'}, {'+inf' if s.upper is None else f'{s.upper:g}'}) {s.adjust:+g}"
            for s in policy.steps
        )
        yield (
            f"  step: {policy.metric} {policy.aggregation} {format_duration(policy.window)} vs "
            f"{policy.threshold:g}, {policy.adjustment_type}: {steps}"
        )
    for drain in rule.drain:
        arrivals = f"{drain.arrivals} + " if drain.arrivals is not None else ""
        yield (
            f"  drain: ({arrivals}{drain.backlog} / {format_duration(drain.within)}) / "
            f"{drain.rate:g} per replica per second"
        )
    for breaker in rule.breaker:
        window = (
            f" {breaker.aggregation} {format_duration(breaker.window)}" if breaker.window else ""
        )
        closing = breaker.closing
        yield (
            f"  breaker {breaker.name}: holds scale-out while {breaker.metric}{window} "
            f"{breaker.open_when}, until {closing} for {format_duration(closing.hold)} "
            f"(missing reading: {breaker.missing})"
        )
    predict = rule.predict
    if predict is not None and predict.mode != "off":
        yield (
            f"  predictive floor ({predict.mode}): {predict.quantile:g} quantile of the last "
            f"{predict.seasons} x {format_duration(predict.season)}, "
            f"{format_duration(predict.lead)} ahead, scaled by the last "
            f"{format_duration(predict.level_window)}"
        )
    behavior = rule.pacing
    if behavior is None:
        yield "  pacing: cooldowns only (no stabilization windows or rate policies)"
    else:
        up, down = behavior.up_window.total_seconds(), behavior.down_window.total_seconds()
        yield f"  scale up: {_policies(behavior.scale_up, behavior.up_policies, up)}"
        yield f"  scale down: {_policies(behavior.scale_down, behavior.down_policies, down)}"
    ladder_default = on_ladder and rule.cooldown == LADDER_COOLDOWN
    if rule.cooldown.up or rule.cooldown.down:
        origin = " (the default on a ladder of tiers)" if ladder_default else ""
        yield f"  cooldown: up {format_duration(rule.cooldown.up)}, down {format_duration(rule.cooldown.down)}{origin}"
    yield from _cooldown_conflicts(rule, ladder_default)
    if rule.fallback is not None:
        yield f"  fallback: {rule.fallback.replicas} after {rule.fallback.failure_threshold} failed evaluations"
    for schedule in rule.schedule:
        length = (
            f"for {format_duration(schedule.duration)}"
            if schedule.duration
            else f"until '{schedule.end}'"
        )
        changes = ", ".join(
            f"{key} {value}"
            for key, value in (
                ("min", schedule.minimum),
                ("max", schedule.maximum),
                ("default", schedule.default),
            )
            if value is not None
        )
        ramp = f", ramp {format_duration(schedule.ramp)}" if schedule.ramp else ""
        yield f"  schedule {schedule.name}: '{schedule.cron}' {length} ({schedule.timezone}): {changes}{ramp}"
    if rule.pause:
        yield f"  paused: {rule.pause}"
    yield from _direction_warnings(rule)


# what a target on a ladder of tiers gets when it sets no cooldown
LADDER_COOLDOWN = Cooldown.model_validate(VERTICAL_COOLDOWN)


def _cooldown_conflicts(rule: Rule, ladder_default: bool) -> Iterator[str]:
    """A scale starts the longer of the target's cooldown for its direction and the
    cooldown of the rule that asked for it (``core.decide``): say which, where they differ."""
    owned: list[tuple[str, bool, timedelta]] = [
        (f"threshold '{t.label}'", t.scales_out, t.cooldown) for t in rule.threshold
    ]
    for policy in rule.step:
        for up in sorted({policy.adjusts_up(step) for step in policy.steps}, reverse=True):
            owned.append((f"step '{policy.label}'", up, policy.cooldown))
    origin = "the ladder's default" if ladder_default else "the target's"
    for label, up, own in owned:
        target = rule.cooldown.up if up else rule.cooldown.down
        if not target or own == target:
            continue
        direction = "scale-out" if up else "scale-in"
        if target > own:
            yield (
                f"  cooldown after a {direction} by {label}: {format_duration(target)} "
                f"({origin} {direction} cooldown; the rule's own {format_duration(own)} is shorter)"
            )
        else:
            yield (
                f"  cooldown after a {direction} by {label}: {format_duration(own)} "
                f"(the rule's own; {origin} {direction} cooldown is {format_duration(target)})"
            )


def can_scale(rule: Rule) -> dict[str, bool]:
    """Whether any rule can ever move the capacity out, and in."""
    pacing = rule.pacing
    room = rule.minimum < rule.maximum or any(
        s.minimum is not None or s.maximum is not None for s in rule.schedule
    )
    out = bool(rule.track) or any(t.scales_out for t in rule.threshold)
    out = out or any(policy.scale_out_steps for policy in rule.step)
    inward = bool(rule.track) or any(not t.scales_out for t in rule.threshold)
    inward = inward or any(len(p.scale_out_steps) < len(p.steps) for p in rule.step)
    if pacing is not None:
        out = out and pacing.scale_up.select != "disabled"
        inward = inward and pacing.scale_down.select != "disabled"
    return {
        "out": room and out and rule.pause not in ("all", "scale_out"),
        "in": room and inward and rule.pause not in ("all", "scale_in"),
    }


def _direction_warnings(rule: Rule) -> Iterator[str]:
    possible = can_scale(rule)
    if not possible["in"]:
        yield "  warning: this target can never scale in (no scale-in rule, or scale-in disabled or paused)"
    if not possible["out"]:
        yield "  warning: this target can never scale out (no scale-out rule, or scale-out disabled or paused)"


def rule_file_lines(path: Path, rule: Rule) -> Iterator[str]:
    """``scalerd check --rule-file``: the rule in words, as a target's would be."""
    yield f"{path}: valid rule file"
    yield from describe_rule(rule)


def summary_lines(config: Config) -> Iterator[str]:
    yield f"{config.path}: valid (config version {config.version})"
    yield f"  {len(config.sources)} sources, {len(config.actuators)} actuators, {len(config.targets)} targets"
    for target in config.targets:
        yield ""
        yield from describe_target(target)
