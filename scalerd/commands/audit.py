"""``scalerd audit``: the recorded decisions, as lines that fit the terminal or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._common import (
    add_config_argument,
    audit_stream_errors,
    load_or_report,
    report_unknown_target,
)
from .audit_chart import add_arguments as add_chart_arguments

if TYPE_CHECKING:
    from ..audit import AuditRecord

__all__ = ["register"]

# listed in the help without importing the audit package (a test keeps them current)
ACTIONS_HELP = "scaled, held, dry-run, failed, skipped"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser(
        "audit",
        help="show recorded decisions",
        description=(
            "Recorded decisions, oldest first, one line each. At the terminal's width the "
            "why is cut with '…'; --wide shows it whole, with the reason code."
        ),
    )
    add_config_argument(audit)
    audit.add_argument("--target", help="only this target")
    audit.add_argument("--since", help="only this recent, e.g. 30m or 2h")
    audit.add_argument(
        "--limit", type=int, default=50, help="at most this many (newest; default 50)"
    )
    audit.add_argument("--action", metavar="A[,A]", help=f"only these actions: {ACTIONS_HELP}")
    audit.add_argument(
        "--reason",
        metavar="R[,R]",
        help="only these not-scaled reasons, e.g. CooldownActive,StabilizationWindow",
    )
    audit.add_argument("--follow", action="store_true", help="keep printing new decisions")
    audit.add_argument(
        "--wide", action="store_true", help="full time, reason code, and the whole why"
    )
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
    add_chart_arguments(audit)
    audit.set_defaults(handler=_audit)


def _chosen(flag: str, text: str | None, allowed: Iterable[str]) -> frozenset[str] | None:
    """The comma-separated values of ``flag``; exits 2 naming an unknown one."""
    if text is None:
        return None
    allowed = tuple(allowed)
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(allowed))
    if unknown or not chosen:
        print(
            f"scalerd audit: {flag}: unknown {', '.join(unknown) or 'empty list'}; "
            f"choose from {', '.join(allowed)}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return chosen


def _audit(args: argparse.Namespace) -> int:
    if args.chart:
        from .audit_chart import chart

        return chart(args)
    from rich.console import Console

    from ..audit import ACTIONS
    from ..audit.columns import AuditColumns
    from ..core.durations import parse_duration
    from ..core.model import NotScaled
    from ..daemon.app import open_audit_log

    actions = _chosen("--action", args.action, ACTIONS)
    reasons = _chosen("--reason", args.reason, (reason.value for reason in NotScaled))
    config = load_or_report(args.config)
    if config is None:
        return 1
    if report_unknown_target(config, args.target):
        return 1
    try:
        since = datetime.now(UTC) - parse_duration(args.since) if args.since else None
    except ValueError as problem:
        print(f"scalerd audit: --since: {problem}", file=sys.stderr)
        return 2
    console = Console(highlight=False)
    columns = AuditColumns(console.width, [t.name for t in config.targets], wide=args.wide)
    filtered = actions is not None or reasons is not None

    def wanted(record: AuditRecord) -> bool:
        return (actions is None or record.action in actions) and (
            reasons is None or record.not_scaled_reason in reasons
        )

    def show(records: list[AuditRecord]) -> None:
        for record in records:
            if args.json:
                print(record.to_json(), flush=True)
            else:
                console.print(columns.row(record), soft_wrap=args.wide, overflow="ignore")

    async def main() -> None:
        async with open_audit_log(config) as log:
            if args.follow:
                if not args.json:
                    console.print(columns.header(), soft_wrap=args.wide)
                async for record in log.follow(target=args.target):
                    if (since is None or record.ts >= since) and wanted(record):
                        show([record])
                return
            # filters apply before the limit: the newest N *matching* records
            records = await log.read(
                target=args.target, since=since, limit=None if filtered else args.limit
            )
            records = [record for record in records if wanted(record)][-args.limit :]
            if records and not args.json:
                console.print(columns.header(), soft_wrap=args.wide)
            show(records)

    with contextlib.suppress(KeyboardInterrupt), audit_stream_errors(config) as failed:
        asyncio.run(main())
    sys.stdout.flush()
    return 1 if failed else 0
