"""A target's recorded history as a demand trace (``t_seconds,value``), so that
``scalerd simulate`` can replay a real week under a rule change.

The audit records what each rule read and how many replicas were ready. Demand is
estimated from those, by what the metric measures (the rule that reads it says):

* a ``total`` (a queue length, a request rate across replicas, ``arrivals``) *is* the
  demand: it is exported as read;
* a per-replica ``average`` times the replicas ready: the total;
* a ``utilization`` (percent of a replica's capacity) times the replicas ready, over 100:
  the demand in replicas' worth of work — replay it with ``--capacity 1``. A utilization
  is capped at 100 %: during an overload the estimate is a floor, not the demand;
* ``--raw`` exports the metric itself, untouched.

Limits: a reading is paired with the ready count of its own record; evaluations that
failed to read the metric leave a gap (the previous value holds in the trace); the trace
has one row per evaluation, so it is no finer than the target's interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..core.rules import Rule
from .record import AuditRecord

__all__ = ["Estimate", "estimate_for", "trace_rows"]

Estimate = Literal["raw", "total", "average", "utilization"]


@dataclass(frozen=True, slots=True)
class TraceRow:
    t_seconds: float
    value: float


def estimate_for(rule: Rule, metric: str) -> Estimate:
    """How demand follows from ``metric``, as the first rule reading it says."""
    for track in rule.track:
        if track.metric == metric:
            return track.type
    for threshold in rule.threshold:
        if threshold.when.metric == metric:
            return (
                "utilization"
                if "percent" in metric.lower() or "cpu" in metric.lower()
                else ("average" if threshold.per_instance else "total")
            )
    for step in rule.step:
        if step.metric == metric:
            return "average" if step.per_instance else "total"
    if any(metric in (drain.backlog, drain.arrivals) for drain in rule.drain):
        return "total"
    raise KeyError(metric)


def trace_rows(records: Iterable[AuditRecord], metric: str, estimate: Estimate) -> list[TraceRow]:
    """One row per record that read ``metric``, at seconds since the first such record."""
    rows: list[TraceRow] = []
    start = None
    for record in records:
        value = _reading(record, metric)
        if value is None or record.current is None:
            continue
        start = start or record.ts
        ready = int(record.current.get("ready", 0))
        if estimate == "average":
            value *= ready
        elif estimate == "utilization":
            value = value * ready / 100.0
        rows.append(TraceRow(round((record.ts - start).total_seconds(), 3), round(value, 6)))
    return rows


def _reading(record: AuditRecord, metric: str) -> float | None:
    for item in record.inputs:
        if item.get("metric") == metric and item.get("value") is not None:
            return float(item["value"])
    return None
