"""Decisions and records for the audit tests, shaped like the ones the core produces."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from scalerd.audit import AuditRecord
from scalerd.core import MetricSpec, Rule, TargetSpec
from scalerd.core.model import (
    Capacity,
    Decision,
    InputReport,
    NotScaled,
    Reason,
    RuleReport,
    Step,
)

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)

CPU = InputReport("cpu", "azmon", 95.0, "avg", 300.0, 10, 12.5)
CPU_RULE = RuleReport(
    "cpu utilization target 50", "track", True, 8, "cpu=95: ceil(4 x 95 / 50) = 8"
)


def held_by_cooldown(target: str = "web", at: datetime = T0) -> Decision:
    """The rules want 4 → 8; a scale-out cooldown keeps 4."""
    return Decision(
        target=target,
        at=at,
        current=Capacity(provisioned=4, ready=3),
        recommended=8,
        desired=4,
        steps=(
            Reason(
                Step.RECOMMENDED,
                4,
                8,
                "'cpu utilization target 50' proposes 8",
                {"proposals": 1},
                NotScaled.NO_CHANGE_RECOMMENDED,
            ),
            Reason(
                Step.SCALE_UP_STABILIZED,
                8,
                8,
                "no earlier recommendation in the last 0s overrides 8",
                {"window_s": 0.0, "limits": (8, 8)},
                NotScaled.STABILIZATION,
            ),
            Reason(
                Step.COOLDOWN,
                8,
                4,
                "scale-out cooldown for another 120s",
                {"until": (at + timedelta(seconds=120)).isoformat(), "remaining_s": 120.0},
                NotScaled.COOLDOWN,
            ),
        ),
        inputs=(CPU,),
        rules=(CPU_RULE,),
        not_scaled_reason=NotScaled.COOLDOWN,
    )


def scaled_with_rate_limit(target: str = "web", at: datetime = T0) -> Decision:
    """The rules want 4 → 8; the scale-up policy allows 4 → 6, with a 5-minute cooldown."""
    return Decision(
        target=target,
        at=at,
        current=Capacity.steady(4),
        recommended=8,
        desired=6,
        steps=(
            Reason(
                Step.RECOMMENDED, 4, 8, "'cpu utilization target 50' proposes 8", {"proposals": 1}
            ),
            Reason(
                Step.SCALE_UP_LIMIT,
                8,
                6,
                "select max of [pods 2/60s from 4 -> 6] = 6",
                {"limit": 6},
                NotScaled.RATE_LIMITED,
            ),
        ),
        inputs=(CPU,),
        rules=(CPU_RULE,),
        not_scaled_reason=None,
        cooldown=timedelta(minutes=5),
    )


def target_spec(**rule: Any) -> TargetSpec:
    """A target named "web" whose metrics all come from the source "azmon"."""
    parsed = Rule.model_validate(rule)
    metrics = {name: MetricSpec("azmon", timedelta(minutes=5)) for name in parsed.metric_names()}
    return TargetSpec(name="web", rule=parsed, metrics=metrics)


def record(
    decision: Decision | None = None, *, prev: str | None = None, **overrides: Any
) -> AuditRecord:
    """The record the daemon writes for ``decision`` (held by cooldown unless given)."""
    decision = decision or held_by_cooldown()
    fields: dict[str, Any] = {
        "action": "held" if decision.not_scaled_reason else "scaled",
        "kind": "azure-container-apps",
        "config_version": "c0ffee",
        "instance": "scalerd-0",
        "prev": prev,
        "duration_ms": 12.5,
        "dry_run": False,
    }
    return AuditRecord.from_decision(decision, **(fields | overrides))


def chain(
    target: str = "web", start: datetime = T0, every: timedelta = timedelta(seconds=15)
) -> Iterator[AuditRecord]:
    """Endless records of one target, each naming the one before as ``prev``."""
    prev: str | None = None
    at = start
    while True:
        made = record(held_by_cooldown(target, at), prev=prev)
        yield made
        prev, at = made.id, at + every


def records(count: int, target: str = "web", start: datetime = T0) -> list[AuditRecord]:
    made = chain(target, start)
    return [next(made) for _ in range(count)]
