"""``timeline.csv`` and ``summary.json``: byte-identical for the same inputs.

Numbers are written with fixed formats (demand and metrics to six places, capacity as
integers), nothing time- or machine-dependent is written, and file names are written
without their folders, so a rerun anywhere produces the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .run import DEMAND_DECIMALS, Timeline
from .scenario import Scenario
from .scores import Scores

__all__ = ["summary", "timeline_csv", "write_outputs"]

COLUMNS = ("t_seconds", "demand", "metric", "recommended", "desired", "provisioned", "ready")
# after the metrics, on a ladder of tiers: the units of the tier in effect (billed), of the
# one serving (0 during a restart), the change in flight the core saw, and why the
# decision kept the tier (the core's not-scaled reason, e.g. OperationInFlight)
LADDER_COLUMNS = ("units", "serving_units", "in_flight", "not_scaled")


def timeline_csv(timeline: Timeline) -> str:
    """One row per tick. ``metric`` is what the rules got from the first metric they read
    (any further metric gets a ``metric:<name>`` column); ``recommended`` what they proposed
    before stabilization, cooldowns and rate limits; ``desired`` what was decided. A
    ladder's replay adds :data:`LADDER_COLUMNS`, a rule with ``[[breaker]]``s a last
    ``breakers_open`` column (the open breakers' names, joined by "+")."""
    names = list(timeline.readings)
    header = (*COLUMNS, *(f"metric:{name}" for name in names[1:]))
    if timeline.units is None and timeline.breakers_open is None:
        return _numbers_csv(timeline, header)
    return _cells_csv(timeline, header)


def _cells_csv(timeline: Timeline, header: tuple[str, ...]) -> str:
    """:func:`timeline_csv` through the csv writer, for rows that hold text (a ladder's
    operation and reason, the open breakers' names), which it quotes where needed."""
    names = list(timeline.readings)
    ladder = _ladder_cells(timeline)
    columns = [timeline.readings[name] for name in names]
    decimals = DEMAND_DECIMALS
    whole = timeline.interval.is_integer()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = header if ladder is None else (*header, *LADDER_COLUMNS)
    breakers = timeline.breakers_open
    writer.writerow(header if breakers is None else (*header, "breakers_open"))
    for tick, demand in enumerate(timeline.demand):
        t = timeline.time(tick)
        writer.writerow(
            (
                int(t) if whole else f"{t:.3f}",
                f"{demand:.{decimals}f}",
                f"{columns[0][tick]:.{decimals}f}",
                timeline.recommended[tick],
                timeline.desired[tick],
                timeline.provisioned[tick],
                timeline.ready[tick],
                *(f"{column[tick]:.{decimals}f}" for column in columns[1:]),
                *(() if ladder is None else ladder[tick]),
                *(() if breakers is None else (breakers[tick],)),
            )
        )
    return buffer.getvalue()


def _numbers_csv(timeline: Timeline, header: tuple[str, ...]) -> str:
    """:func:`timeline_csv` when every cell is a number: each row one ``%`` format, the
    bytes the csv writer writes (a number never needs quoting; ``%.6f`` spells a float as
    ``f"{x:.6f}"`` does, ``%d`` an integer as ``str`` does). A header cell that needs
    quoting (a metric's name) goes through the csv writer."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(header)
    decimals = DEMAND_DECIMALS
    readings = list(timeline.readings.values())
    interval = timeline.interval
    if interval.is_integer():
        # tick x interval, as the writer's int(t): exact, as every tick time is an integer
        step = int(interval)
        times: Sequence[object] = range(0, len(timeline) * step, step)
        time_format = "%d"
    else:
        times = [timeline.time(tick) for tick in range(len(timeline))]
        time_format = "%.3f"
    number = f"%.{decimals}f"
    row = ",".join(
        (time_format, number, number, "%d", "%d", "%d", "%d", *(number for _ in readings[1:]))
    )
    rows = zip(
        times,
        timeline.demand,
        readings[0],
        timeline.recommended,
        timeline.desired,
        timeline.provisioned,
        timeline.ready,
        *readings[1:],
        strict=True,
    )
    buffer.write("\n".join(map((row).__mod__, rows)))
    if len(timeline):
        buffer.write("\n")
    return buffer.getvalue()


def _ladder_cells(timeline: Timeline) -> list[tuple[str, ...]] | None:
    """A ladder replay's :data:`LADDER_COLUMNS` per tick; units as ``repr``, a float's
    shortest exact spelling, so the scores recompute exactly from the CSV."""
    units, serving = timeline.units, timeline.serving
    in_flight, not_scaled = timeline.in_flight, timeline.not_scaled
    if units is None or serving is None or in_flight is None or not_scaled is None:
        return None
    return [
        (repr(billed), repr(serves), operation, reason)
        for billed, serves, operation, reason in zip(
            units, serving, in_flight, not_scaled, strict=True
        )
    ]


def summary(
    scenario: Scenario, trace_name: str, timeline: Timeline, scores: Scores
) -> dict[str, Any]:
    """The scores, and every parameter that produced them (the inferred ones marked)."""
    settings, interval = scenario.settings, timeline.interval
    return {
        "config": scenario.path.name,
        "target": scenario.label,
        "trace": trace_name,
        "ticks": len(timeline),
        "interval_seconds": interval,
        "duration_seconds": len(timeline) * interval,
        **scores.as_dict(),
        "metric_failures": timeline.metric_failures,
        "parameters": {
            "capacity": settings.capacity,
            "startup_seconds": settings.startup.total_seconds(),
            "startup_effective_seconds": scenario.startup_ticks * interval,
            "metric_delay_seconds": settings.metric_delay.total_seconds(),
            "metric_delay_effective_seconds": scenario.delay_ticks * interval,
            "scale": timeline.scale,
            "peak_replicas": settings.peak_replicas,
            "initial": scenario.initial,
            "service_time_seconds": settings.service_time_s,
            "latency_cap_seconds": settings.latency_cap.total_seconds(),
            "start": settings.start.isoformat(),
            **_ladder_parameters(scenario, interval),
            "metrics": {
                binding.name: {
                    "kind": binding.kind,
                    "from": binding.origin,
                    "max_age_seconds": scenario.spec.metrics[binding.name].max_age.total_seconds(),
                }
                for binding in scenario.metrics
            },
        },
    }


def _ladder_parameters(scenario: Scenario, interval: float) -> dict[str, Any]:
    """A ladder's tiers and change times, in the parameters of its replay only (a replica
    target's summary stays as it was)."""
    ladder, settings = scenario.spec.ladder, scenario.settings
    if ladder is None:
        return {}
    return {
        "cost_unit": "tier units (the *_replica_seconds scores are unit-seconds)",
        "tiers": [
            {"name": tier.name, "units": tier.units, "restarts": tier.restarts}
            for tier in ladder.tiers
        ],
        "change_time_seconds": settings.change_time.total_seconds(),
        "change_time_effective_seconds": scenario.change_ticks * interval,
        "restart_downtime_seconds": settings.restart_downtime.total_seconds(),
        "restart_downtime_effective_seconds": scenario.downtime_ticks * interval,
    }


def write_outputs(out: Path, timeline: Timeline, summary_: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.csv").write_text(timeline_csv(timeline), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary_, indent=2) + "\n", encoding="utf-8")
