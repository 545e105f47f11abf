"""Audit history as the daemon writes it, made fast: a target's rules decided by the real
core over a made-up day of demand, one record per evaluation, chained. For the page's
tests, its screenshots and ``bench/page.py``."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from scalerd.audit import AuditRecord
from scalerd.core import Capacity, Observation, TargetState, decide, record_applied
from scalerd.core.rules import TargetSpec


def diurnal(peak: float) -> Callable[[datetime], float]:
    """Demand with a daily swing, an afternoon bump and minute-level wobble."""

    def demand(at: datetime) -> float:
        hours = at.hour + at.minute / 60
        day = 0.55 - 0.45 * math.cos((hours - 3) / 24 * 2 * math.pi)
        bump = 0.25 * math.exp(-(((hours - 15) / 0.8) ** 2))
        wobble = 0.06 * math.sin(at.timestamp() / 97) + 0.04 * math.sin(at.timestamp() / 23)
        return round(peak * max(0.02, day + bump + wobble), 3)

    return demand


def make_history(
    spec: TargetSpec,
    metric: str,
    demand: Callable[[datetime], float],
    *,
    end: datetime,
    count: int,
    interval: timedelta,
    kind: str = "recording",
    prev: str | None = None,
) -> list[AuditRecord]:
    """``count`` records of ``spec`` ending at ``end``; new replicas are ready one tick later."""
    state = TargetState()
    provisioned = ready = max(spec.rule.minimum, 1)
    records: list[AuditRecord] = []
    for tick in range(count):
        at = end - interval * (count - 1 - tick)
        observation = Observation.value(metric, at, demand(at))
        decision, state = decide(spec, state, Capacity(provisioned, ready), [observation], at)
        record = AuditRecord.from_decision(
            decision,
            action="scaled" if decision.changes else "held",
            kind=kind,
            config_version="history",
            instance="history",
            prev=prev,
            duration_ms=0.4,
            dry_run=False,
        )
        if decision.changes:
            state = record_applied(spec, state, decision, at)
        ready = min(provisioned, decision.desired)
        provisioned = decision.desired
        prev = record.id
        records.append(record)
    return records
