"""``scalerd shadow report``: the live rules against the shadow rule of the same target,
from the audit records that carry both decisions.

* how often they differ — evaluations whose desired capacities are not equal;
* capacity-hours each would have used — each record's desired capacity held until the
  next record (the last one for one interval);
* estimated under-provisioning of each — the share of evaluations whose demand, estimated
  from the readings as ``scalerd export`` does, exceeds desired x what one replica serves
  (``[simulate] capacity``; one replica's worth for a utilization). Startup is ignored: it
  is what each would have asked for, not what would have been ready.

The shadow's decisions are made on the live capacity, which the live rules set: where the
two disagree for long, the shadow's numbers describe what it would have asked for from
there, not a replay of its own trajectory (``scalerd simulate`` replays that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .export import Estimate, trace_rows
from .record import AuditRecord

__all__ = ["ShadowReport", "shadow_report"]


@dataclass(frozen=True, slots=True)
class ShadowReport:
    rules: str
    evaluations: int
    differing: int
    live_capacity_hours: float
    shadow_capacity_hours: float
    live_underprovisioned: float | None
    shadow_underprovisioned: float | None

    @property
    def differing_fraction(self) -> float:
        return self.differing / self.evaluations if self.evaluations else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"differing_fraction": round(self.differing_fraction, 6)}


def shadow_report(
    records: Sequence[AuditRecord],
    *,
    interval_s: float,
    metric: str | None,
    estimate: Estimate,
    capacity: float,
) -> ShadowReport | None:
    """The comparison over ``records`` (one target's, in time order); ``None`` when none
    carries a shadow decision."""
    paired = [r for r in records if r.shadow is not None and r.desired is not None]
    if not paired:
        return None
    live_hours = shadow_hours = 0.0
    for index, record in enumerate(paired):
        following = paired[index + 1].ts if index + 1 < len(paired) else None
        held = (following - record.ts).total_seconds() if following else interval_s
        assert record.shadow is not None and record.desired is not None
        live_hours += record.desired * held / 3600
        shadow_hours += int(record.shadow["desired"]) * held / 3600
    live_short = shadow_short = None
    if metric is not None:
        demand = {
            row_record.id: row.value
            for row_record, row in _rows_by_record(paired, metric, estimate)
        }
        judged = [r for r in paired if r.id in demand]
        if judged:
            live_short = _short(judged, demand, capacity, lambda r: r.desired)
            shadow_short = _short(judged, demand, capacity, lambda r: r.shadow["desired"])
    rules = str(paired[-1].shadow["rules"]) if paired[-1].shadow else ""
    return ShadowReport(
        rules=rules,
        evaluations=len(paired),
        differing=sum(r.desired != r.shadow["desired"] for r in paired if r.shadow),
        live_capacity_hours=round(live_hours, 6),
        shadow_capacity_hours=round(shadow_hours, 6),
        live_underprovisioned=live_short,
        shadow_underprovisioned=shadow_short,
    )


def _rows_by_record(records: Sequence[AuditRecord], metric: str, estimate: Estimate) -> list[Any]:
    pairs = []
    for record in records:
        rows = trace_rows([record], metric, estimate)
        if rows:
            pairs.append((record, rows[0]))
    return pairs


def _short(
    records: Sequence[AuditRecord], demand: dict[str, float], capacity: float, desired: Any
) -> float:
    short = sum(demand[r.id] > int(desired(r)) * capacity for r in records)
    return round(short / len(records), 6)
