"""Plain-words summaries of validated targets (``scalerd check``, ``/api/targets``)."""

from __future__ import annotations

from collections.abc import Iterator

from .config import Config, Target
from .core.durations import format_duration
from .core.rules import Policy, ScalingRules

__all__ = ["describe_target", "summary_lines"]


def _policies(rules: ScalingRules, policies: tuple[Policy, ...], window_s: float) -> str:
    if rules.select == "disabled":
        return "disabled"
    shown = ", ".join(
        f"{policy.value}{'%' if policy.type == 'percent' else ' pods'}/{format_duration(policy.period)}"
        for policy in policies
    )
    return f"window {window_s:g}s, {rules.select} of [{shown}]"


def describe_target(target: Target) -> Iterator[str]:
    rule = target.spec.rule
    bounds = f"{rule.minimum}..{rule.maximum}"
    if rule.default is not None:
        bounds += f", default {rule.default}"
    yield f"{target.name}: scales {target.actuator.describe()}"
    yield f"  every {format_duration(rule.interval)}, capacity {bounds}"
    if target.spec.ladder is not None:
        tiers = " -> ".join(tier.name for tier in target.spec.ladder.tiers)
        yield f"  ladder: {tiers}"
    if target.rule_file is not None:
        yield f"  rules from {target.rule_file}"
    for metric, source in target.sources.items():
        age = format_duration(target.spec.metrics[metric].max_age)
        yield f"  metric {metric!r} <- {source.describe()} (max age {age})"
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
    for policy in rule.step:
        steps = ", ".join(
            f"[{'-inf' if s.lower is None else f'{s.lower:g}'}, {'+inf' if s.upper is None else f'{s.upper:g}'}) {s.adjust:+g}"
            for s in policy.steps
        )
        yield (
            f"  step: {policy.metric} {policy.aggregation} {format_duration(policy.window)} vs "
            f"{policy.threshold:g}, {policy.adjustment_type}: {steps}"
        )
    behavior = rule.pacing
    if behavior is None:
        yield "  pacing: cooldowns only (no stabilization windows or rate policies)"
    else:
        up, down = behavior.up_window.total_seconds(), behavior.down_window.total_seconds()
        yield f"  scale up: {_policies(behavior.scale_up, behavior.up_policies, up)}"
        yield f"  scale down: {_policies(behavior.scale_down, behavior.down_policies, down)}"
    if rule.cooldown.up or rule.cooldown.down:
        yield f"  cooldown: up {format_duration(rule.cooldown.up)}, down {format_duration(rule.cooldown.down)}"
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
    for maintenance in target.spec.maintenance:
        length = (
            f"for {format_duration(maintenance.duration)}"
            if maintenance.duration
            else f"until '{maintenance.end}'"
        )
        yield f"  maintenance window: '{maintenance.cron}' {length} ({maintenance.timezone})"
    if rule.pause:
        yield f"  paused: {rule.pause}"


def summary_lines(config: Config) -> Iterator[str]:
    yield f"{config.path}: valid (config version {config.version})"
    yield f"  {len(config.sources)} sources, {len(config.actuators)} actuators, {len(config.targets)} targets"
    for target in config.targets:
        yield ""
        yield from describe_target(target)
