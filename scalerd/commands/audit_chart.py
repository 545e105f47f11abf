"""``scalerd audit --chart TARGET [--since 6h] [--out PATH]``: a target's timeline as a PNG,
the same chart as its page (``/targets/TARGET``), for pasting into an incident ticket."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import load_or_report, report_unknown_target

if TYPE_CHECKING:
    from ..audit import AuditRecord

__all__ = ["add_arguments", "chart"]

DEFAULT_SINCE = "6h"


def add_arguments(audit: argparse.ArgumentParser) -> None:
    audit.add_argument(
        "--chart",
        metavar="TARGET",
        help=f"draw TARGET's timeline over --since (default {DEFAULT_SINCE}) as a PNG",
    )
    audit.add_argument(
        "--out", type=Path, help="where --chart writes its PNG (default: ./TARGET-timeline.png)"
    )


def chart(args: argparse.Namespace) -> int:
    from ..core.durations import parse_duration
    from ..daemon.app import open_audit_log
    from ..simulate.audit_chart import plot_audit
    from ..web import build_timeline, target_info

    config = load_or_report(args.config)
    if config is None:
        return 1
    if report_unknown_target(config, args.chart):
        return 1
    try:
        span: timedelta = parse_duration(args.since or DEFAULT_SINCE)
    except ValueError as problem:
        print(f"scalerd audit: --since: {problem}", file=sys.stderr)
        return 2
    end = datetime.now(UTC)
    start = end - span
    target = next(t for t in config.targets if t.name == args.chart)

    async def read() -> list[AuditRecord]:
        async with open_audit_log(config) as log:
            return await log.read(target=target.name, since=start)

    try:
        records = asyncio.run(read())
    except (OSError, ConnectionError) as problem:
        print(f"scalerd audit: the audit stream cannot be read: {problem}", file=sys.stderr)
        return 1
    info = target_info(target, last=records[-1] if records else None)
    out: Path = args.out or Path(f"{target.name}-timeline.png")
    plot_audit(build_timeline(records, info, start, end), out)
    scaled = sum(record.action == "scaled" for record in records)
    print(
        f"{out}: {len(records)} decisions of {target.name} since {start:%Y-%m-%d %H:%M} UTC, {scaled} scaled"
    )
    return 0
