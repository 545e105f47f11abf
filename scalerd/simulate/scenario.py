"""What a replay runs: one target's rules as the daemon would load them, its capacity
model, and what each metric the rules read is made of.

``--config`` may name a full ``config.toml`` (one of its targets is replayed; its sources
and actuator are ignored, since the metrics are synthesised) or a rule file such as
``rules/hpa-default.toml``. The file says which: a config has ``[[targets]]``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..config import load_config, load_rule_file
from ..core.durations import format_duration
from ..core.rules import MetricSpec, Rule, TargetSpec
from ..errors import ConfigError, ConfigIssue
from ..schedules import CronCalendar
from ..settings import MetricKind, SimulateSettings
from .model import UnknownMetric, infer_kind

__all__ = ["MetricBinding", "Scenario", "load_scenario"]


@dataclass(frozen=True, slots=True)
class MetricBinding:
    """A metric the rules read, what the model derives it from, and who said so."""

    name: str
    # "dependency": a [[breaker]]'s metric, read from [simulate.dependencies]
    kind: MetricKind | Literal["dependency"]
    # "[simulate.metrics]", or why the kind was inferred
    origin: str


@dataclass(frozen=True)
class Scenario:
    """A target ready to replay: ``spec`` is the daemon's, with the simulated metrics'
    max ages raised so that ``metric_delay`` alone never makes a reading stale."""

    label: str
    path: Path
    spec: TargetSpec
    settings: SimulateSettings
    metrics: tuple[MetricBinding, ...]

    @property
    def interval(self) -> timedelta:
        return self.spec.rule.interval

    @property
    def initial(self) -> int:
        initial = self.settings.initial
        return self.spec.rule.minimum if initial is None else initial

    @property
    def startup_ticks(self) -> int:
        """Readiness is seen at ticks: startup counts in whole intervals, rounded up."""
        return whole_ticks(self.settings.startup, self.interval)

    @property
    def change_ticks(self) -> int:
        """On a ladder, a tier change completes at a tick: in whole intervals, rounded up."""
        return whole_ticks(self.settings.change_time, self.interval)

    @property
    def downtime_ticks(self) -> int:
        """A restart's downtime, in whole intervals, rounded up, and within the change."""
        return min(whole_ticks(self.settings.restart_downtime, self.interval), self.change_ticks)

    @property
    def delay_ticks(self) -> int:
        """Metrics are measured at ticks: the rules get the latest measurement taken at or
        before ``now - metric_delay``, so the delay counts in whole intervals, rounded up."""
        return whole_ticks(self.settings.metric_delay, self.interval)


def whole_ticks(span: timedelta, interval: timedelta) -> int:
    """``span`` in intervals, rounded up (exact: timedeltas divide as integers)."""
    return -(-span // interval)


def load_scenario(
    path: Path,
    *,
    target: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Load ``path`` (config or rule file) and apply the command line's ``overrides`` to
    its ``[simulate]`` settings; raise :class:`ConfigError` naming every problem."""
    if _is_config(path):
        spec, settings = _config_target(path, target)
    else:
        spec, settings = _rule_file_target(path)
    settings = _overridden(settings, overrides or {})
    if spec.ladder is not None:
        _check_initial_tier(path, len(spec.ladder.tiers), settings.initial)
    interval = spec.rule.interval
    delay = whole_ticks(settings.metric_delay, interval) * interval
    metrics = _bindings(path, spec.rule, settings)
    _check_windows(path, spec.rule, delay)
    spec = _with_simulated_metrics(spec, metrics, max_age=delay + interval)
    return Scenario(spec.name, path, spec, settings, metrics)


def _is_config(path: Path) -> bool:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False  # the rule-file loader reports it, with the line
    return "targets" in raw


def _config_target(path: Path, name: str | None) -> tuple[TargetSpec, SimulateSettings]:
    config = load_config(path)
    names = [target.name for target in config.targets]
    if name is None and len(names) == 1:
        name = names[0]
    if name is None or name not in names:
        problem = f"no target named {name!r}" if name is not None else f"{len(names)} targets"
        raise _error(
            path,
            "targets",
            f"{problem}: pick one with --target ({', '.join(names) or 'none defined'})",
        )
    chosen = config.target(name)
    return chosen.spec, chosen.simulate


def _rule_file_target(path: Path) -> tuple[TargetSpec, SimulateSettings]:
    rule_file = load_rule_file(path)
    rule = Rule.model_validate(rule_file.model_dump(by_alias=True, exclude={"simulate"}))
    # the daemon's default max age for a source that sets none
    max_age = max(3 * rule.interval, timedelta(minutes=1))
    spec = TargetSpec(
        name=path.stem,
        rule=rule,
        metrics={metric: MetricSpec("simulated", max_age) for metric in rule.metric_names()},
        calendar=CronCalendar() if rule.schedule else None,
    )
    return spec, rule_file.simulate


def _overridden(settings: SimulateSettings, overrides: Mapping[str, Any]) -> SimulateSettings:
    if not overrides:
        return settings
    merged = settings.model_dump()
    if "scale" in overrides or "peak_replicas" in overrides:
        # one way of scaling the trace replaces the other
        merged.update(scale=None, peak_replicas=None)
    merged.update(overrides)
    merged["metrics"] = {**settings.metrics, **overrides.get("metrics", {})}
    try:
        return SimulateSettings.model_validate(merged)
    except ValidationError as error:
        issues = [
            ConfigIssue("command line", None, ".".join(map(str, detail["loc"])), detail["msg"])
            for detail in error.errors(include_url=False)
        ]
        raise ConfigError(issues) from None


def _bindings(path: Path, rule: Rule, settings: SimulateSettings) -> tuple[MetricBinding, ...]:
    bindings: list[MetricBinding] = []
    issues: list[ConfigIssue] = []
    uses = rule.metric_uses()
    read = tuple(uses)
    guarded = {breaker.metric: index for index, breaker in enumerate(rule.breaker)}
    for metric in read:
        if metric in settings.dependencies:
            bindings.append(MetricBinding(metric, "dependency", "[simulate.dependencies]"))
            continue
        if metric in guarded and uses[metric][0] == "breaker":  # no sizing rule reads it
            message = (
                f"breaker[{guarded[metric]}] reads {metric!r}, a dependency's health: say what "
                f'it reads in a replay in [simulate.dependencies."{metric}"] (healthy, '
                "failing, failures)"
            )
            issues.append(ConfigIssue(str(path), None, "simulate.dependencies", message))
            continue
        if metric in settings.metrics:
            bindings.append(MetricBinding(metric, settings.metrics[metric], "[simulate.metrics]"))
            continue
        try:
            kind, why = infer_kind(rule, metric)
        except UnknownMetric as problem:
            issues.append(ConfigIssue(str(path), None, "simulate.metrics", str(problem)))
            continue
        bindings.append(MetricBinding(metric, kind, f"inferred from {why}"))
    for metric in settings.metrics:
        if metric not in read:
            message = f"no rule reads metric {metric!r} (rules read: {', '.join(read)})"
            issues.append(ConfigIssue(str(path), None, f"simulate.metrics.{metric}", message))
    for metric in settings.dependencies:
        if metric not in guarded:
            message = f"no [[breaker]] reads metric {metric!r}"
            if guarded:
                message += f" (breakers read: {', '.join(guarded)})"
            issues.append(ConfigIssue(str(path), None, f"simulate.dependencies.{metric}", message))
    if issues:
        raise ConfigError(issues)
    return tuple(bindings)


def _check_initial_tier(path: Path, tiers: int, initial: int | None) -> None:
    if initial is not None and not 1 <= initial <= tiers:
        raise _error(
            path,
            "simulate.initial",
            f"on a ladder, initial is a tier position, 1..{tiers} (got {initial})",
        )


def _check_windows(path: Path, rule: Rule, delay: timedelta) -> None:
    """Reject a window that can never hold a reading: points are kept for ``(now - window,
    now]``, and the newest one is ``delay`` old. The daemon would fail the same way."""
    windows = [(f"track[{i}].window", track.window) for i, track in enumerate(rule.track)]
    windows += [(f"threshold[{i}].when", t.when.window) for i, t in enumerate(rule.threshold)]
    windows += [(f"step[{i}].window", step.window) for i, step in enumerate(rule.step)]
    windows += [(f"drain[{i}].window", d.window) for i, d in enumerate(rule.drain)]
    windows += [(f"breaker[{i}].window", b.window) for i, b in enumerate(rule.breaker)]
    issues = [
        ConfigIssue(
            str(path),
            None,
            key,
            f"the window ({format_duration(window)}) is not longer than the metric delay "
            f"({format_duration(delay)}, in whole intervals): every read would find no data",
        )
        for key, window in windows
        if timedelta(0) < window <= delay
    ]
    if issues:
        raise ConfigError(issues)


def _with_simulated_metrics(
    spec: TargetSpec, metrics: tuple[MetricBinding, ...], max_age: timedelta
) -> TargetSpec:
    """The spec with each metric read from the model. A reading arrives as old as the
    metric delay (in whole intervals), so its max age is at least that plus an interval;
    a configured max age that is longer still applies."""
    specs = {
        binding.name: MetricSpec(
            f"simulated {binding.kind}", max(spec.metrics[binding.name].max_age, max_age)
        )
        for binding in metrics
    }
    return replace(spec, metrics=specs)


def _error(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(str(path), None, key, message)])
