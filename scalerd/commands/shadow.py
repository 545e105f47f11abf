"""``scalerd shadow report TARGET [--since 24h] [--json]``: the target's live rules against
its shadow rule, from the audit records (what is compared, and how: scalerd.audit.shadow)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._common import add_config_argument, load_or_report, report_unknown_target

if TYPE_CHECKING:
    from ..audit import AuditRecord

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shadow = commands.add_parser(
        "shadow", help="compare a target's live rules with its shadow rule (`shadow = ...`)"
    )
    verbs = shadow.add_subparsers(dest="verb", required=True, metavar="VERB")
    report = verbs.add_parser("report", help="how often they differ, capacity-hours, shortfall")
    report.add_argument("target", metavar="TARGET")
    add_config_argument(report)
    report.add_argument("--since", default="24h", help="how far back (default 24h)")
    report.add_argument("--json", action="store_true", help="the figures as one JSON object")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from ..audit.export import estimate_for
    from ..audit.shadow import shadow_report
    from ..core.durations import parse_duration
    from ..daemon.app import open_audit_log

    config = load_or_report(args.config)
    if config is None or report_unknown_target(config, args.target):
        return 1
    target = config.target(args.target)
    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as error:
        print(f"scalerd shadow report: --since: {error}", file=sys.stderr)
        return 2
    metric = next(iter(target.spec.rule.metric_uses()), None)
    estimate = estimate_for(target.spec.rule, metric) if metric is not None else "raw"

    async def main() -> list[AuditRecord]:
        async with open_audit_log(config) as log:
            return await log.read(target=args.target, since=since)

    report = shadow_report(
        asyncio.run(main()),
        interval_s=target.spec.rule.interval.total_seconds(),
        metric=metric,
        estimate=estimate,
        capacity=1.0 if estimate == "utilization" else target.simulate.capacity,
    )
    if report is None:
        print(
            f"{args.target}: no shadow decision recorded since {since:%Y-%m-%d %H:%M}Z",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    print(f"{args.target}: live rules against {report.rules}, {report.evaluations} evaluations")
    print(f"  they differ in {report.differing} ({report.differing_fraction:.1%})")
    print(
        f"  capacity-hours: live {report.live_capacity_hours:.2f}, shadow {report.shadow_capacity_hours:.2f}"
    )
    print(
        f"  estimated under-provisioned: live {share(report.live_underprovisioned)}, "
        f"shadow {share(report.shadow_underprovisioned)} (demand from {metric!r}, startup ignored)"
    )
    return 0
