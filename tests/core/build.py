"""Small builders for the core's table tests: a fixed ``T0``, rules from plain dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scalerd.core import (
    Capacity,
    Decision,
    MetricSpec,
    Observation,
    Rule,
    TargetSpec,
    TargetState,
    decide,
    record_applied,
)
from scalerd.core.rules import Behavior, Calendar, CronWindow, Ladder

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(**fields: Any) -> Rule:
    return Rule.model_validate(fields)


def behavior(**fields: Any) -> Behavior:
    return Behavior.model_validate(fields)


def target(
    rule_: Rule,
    *,
    metrics: Iterable[str] | None = None,
    max_age: str | timedelta = "1h",
    ladder: Ladder | None = None,
    maintenance: tuple[CronWindow, ...] = (),
    calendar: Calendar | None = None,
) -> TargetSpec:
    age = max_age if isinstance(max_age, timedelta) else timedelta(seconds=_seconds(max_age))
    names = metrics if metrics is not None else rule_.metric_names()
    return TargetSpec(
        name="t",
        rule=rule_,
        metrics={name: MetricSpec(f"{name}-source", age) for name in names},
        ladder=ladder,
        maintenance=maintenance,
        calendar=calendar,
    )


def _seconds(text: str) -> float:
    from scalerd.core.durations import parse_duration

    return parse_duration(text).total_seconds()


def observe(now: datetime, **values: float | None) -> list[Observation]:
    """One observation per metric; ``None`` is a failed read."""
    return [
        Observation.failed(name, "source unreachable")
        if value is None
        else Observation.value(name, now, value)
        for name, value in values.items()
    ]


class Run:
    """Drive one target through decisions, applying each change at once (as simulate does)."""

    def __init__(self, spec: TargetSpec, replicas: int, state: TargetState | None = None) -> None:
        self.spec = spec
        self.capacity = Capacity.steady(replicas)
        self.state = state or TargetState()
        self.decisions: list[Decision] = []

    def tick(
        self, seconds: float, capacity: Capacity | None = None, **values: float | None
    ) -> Decision:
        now = at(seconds)
        if capacity is not None:
            self.capacity = capacity
        decision, self.state = decide(
            self.spec, self.state, self.capacity, observe(now, **values), now
        )
        if decision.changes:
            self.state = record_applied(self.spec, self.state, decision, now)
            self.capacity = Capacity.steady(decision.desired)
        self.decisions.append(decision)
        return decision


def steps_of(decision: Decision) -> Mapping[str, tuple[int, int]]:
    return {str(step.code): (step.before, step.after) for step in decision.steps}
