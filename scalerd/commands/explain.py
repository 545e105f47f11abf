"""``scalerd explain TARGET [--at TIME | --id ID]``: one decision, step by step.

Without ``--at`` or ``--id`` it is the latest. ``--at`` finds the decision that was in
force at a moment (the last one made at or before it): on-call asking about 02:14 gets the
evaluation of 02:13:58.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from ._common import (
    add_config_argument,
    audit_stream_errors,
    load_or_report,
    report_unknown_target,
)

if TYPE_CHECKING:
    from ..audit import AuditRecord

__all__ = ["parse_moment", "register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = commands.add_parser(
        "explain",
        help="one decision for TARGET, step by step (the latest, or --at TIME, or --id ID)",
        description=(
            "TIME is UTC: 2026-03-01T02:14:00Z, '2026-03-01 02:14', 02:14 (the latest such "
            "time, today or yesterday), or a duration ago (45m, 2h)."
        ),
    )
    explain.add_argument("target", metavar="TARGET")
    add_config_argument(explain)
    which = explain.add_mutually_exclusive_group()
    which.add_argument("--at", metavar="TIME", help="the decision in force at TIME (UTC)")
    which.add_argument("--id", metavar="ID", help="the record with this id")
    explain.set_defaults(handler=_explain)


def parse_moment(text: str, now: datetime) -> datetime:
    """A moment in UTC, from the forms on-call types (see the module docstring)."""
    from ..core.durations import parse_duration

    text = text.strip()
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    if clock:
        hour, minute, second = (int(part or 0) for part in clock.groups())
        at = datetime.combine(now.date(), time(hour, minute, second), UTC)
        return at if at <= now else at - timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return now - parse_duration(text)
        except ValueError:
            raise ValueError(
                f"not a time: {text!r} (examples: 02:14, 2026-03-01T02:14:00Z, 45m)"
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _explain(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..audit import last_record, render_explanation
    from ..daemon.app import open_audit_log

    config = load_or_report(args.config)
    if config is None:
        return 1
    if report_unknown_target(config, args.target):
        return 1
    at = None
    if args.at is not None:
        try:
            at = parse_moment(args.at, datetime.now(UTC))
        except ValueError as problem:
            print(f"scalerd explain: --at: {problem}", file=sys.stderr)
            return 2

    async def main() -> AuditRecord | None:
        async with open_audit_log(config) as log:
            if at is None and args.id is None:
                return await last_record(log, args.target)
            records = await log.read(target=args.target)
        if at is None:
            return next((record for record in records if record.id == args.id), None)
        earlier = [record for record in records if record.ts <= at]
        return earlier[-1] if earlier else None

    with audit_stream_errors(config) as failed:
        record = asyncio.run(main())
    if failed:
        return 1
    if record is None:
        if args.id is not None:
            print(f"{args.target}: no record with id {args.id!r}", file=sys.stderr)
        elif at is not None:
            print(
                f"{args.target}: no decision recorded at or before {at:%Y-%m-%d %H:%M:%S}Z",
                file=sys.stderr,
            )
        else:
            print(f"{args.target}: no decision recorded yet", file=sys.stderr)
        return 1
    console = Console()
    if at is not None:
        before = (at - record.ts).total_seconds()
        console.print(
            f"In force at {at:%Y-%m-%d %H:%M:%S}Z: the decision made {before:.0f}s before.\n",
            style="dim",
            highlight=False,
        )
    console.print(render_explanation(record))
    return 0
