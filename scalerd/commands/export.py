"""``scalerd export TARGET [--since 7d] [--out trace.csv] [--metric M] [--raw]``: a target's
recorded history as a demand trace that ``scalerd simulate`` replays (how demand is
estimated, and its limits: ``scalerd.audit.export``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import add_config_argument, load_or_report, report_unknown_target

if TYPE_CHECKING:
    from ..audit import AuditRecord

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export", help="a target's recorded history as a demand trace for `scalerd simulate`"
    )
    export.add_argument("target", metavar="TARGET")
    add_config_argument(export)
    export.add_argument("--since", default="7d", help="how far back, e.g. 24h or 7d (default 7d)")
    export.add_argument("--out", default="trace.csv", help="the CSV to write (default trace.csv)")
    export.add_argument("--metric", help="the metric to export (default: the first one read)")
    export.add_argument(
        "--raw", action="store_true", help="the metric as read, not the demand estimated from it"
    )
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from ..audit.export import estimate_for, trace_rows
    from ..core.durations import parse_duration
    from ..daemon.app import open_audit_log

    config = load_or_report(args.config)
    if config is None or report_unknown_target(config, args.target):
        return 1
    rule = config.target(args.target).spec.rule
    metric = args.metric or next(iter(rule.metric_uses()), None)
    if metric is None or metric not in rule.metric_uses():
        known = ", ".join(rule.metric_uses()) or "none"
        print(
            f"target {args.target!r} reads no metric {metric!r} (it reads: {known})",
            file=sys.stderr,
        )
        return 1
    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as error:
        print(f"scalerd export: --since: {error}", file=sys.stderr)
        return 2
    estimate = "raw" if args.raw else estimate_for(rule, metric)

    async def main() -> list[AuditRecord]:
        async with open_audit_log(config) as log:
            return await log.read(target=args.target, since=since)

    rows = trace_rows(asyncio.run(main()), metric, estimate)
    if not rows:
        print(
            f"{args.target}: no reading of {metric!r} recorded since {since:%Y-%m-%d %H:%M}Z",
            file=sys.stderr,
        )
        return 1
    text = "t_seconds,value\n" + "".join(f"{row.t_seconds:g},{row.value}\n" for row in rows)
    Path(args.out).write_text(text, encoding="utf-8")
    unit = (
        "replicas' worth of work (simulate with --capacity 1)"
        if estimate == "utilization"
        else "the metric's unit"
    )
    print(
        f"{len(rows)} rows of {metric!r} ({estimate}) in {args.out}: demand in {unit}",
        file=sys.stderr,
    )
    return 0
