"""``scalerd run``: the daemon, or one evaluation of every target (``--once``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from ._common import add_config_argument, load_or_report

__all__ = ["register"]

# how long ``run --once`` follows the operations it started: an Azure SQL or Redis scale
# takes minutes, and a CI job should not hang for an hour on one
DEFAULT_WAIT = timedelta(minutes=3)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run the daemon")
    add_config_argument(run)
    run.add_argument(
        "--once", action="store_true", help="evaluate every target once, act, audit, and exit"
    )
    run.add_argument(
        "--wait",
        type=_wait_duration,
        default=DEFAULT_WAIT,
        metavar="DURATION",
        help="with --once: follow the operations it started (and earlier ones) for at most "
        "this long, e.g. 5m; 0 does not wait (default: 3m)",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="decide and audit, but never change anything"
    )
    run.add_argument(
        "--listen", metavar="HOST:PORT", help="override [daemon] listen (port 0: any free port)"
    )
    run.add_argument(
        "--instance",
        metavar="ID",
        help="this replica's id in audit records and the cluster (overrides [cluster] instance)",
    )
    run.set_defaults(handler=_run)


def _wait_duration(text: str) -> timedelta:
    from ..core.durations import parse_duration

    if text.strip() == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..audit import render_table
    from ..core.durations import format_duration
    from ..daemon.app import Daemon, freeze_what_lives_long
    from ..logs import configure_logging

    config = load_or_report(args.config)
    if config is None:
        return 1
    configure_logging(config.daemon.log_format, config.daemon.log_level)

    async def main() -> int:
        async with Daemon(
            args.config,
            config=config,
            dry_run=args.dry_run,
            listen=args.listen,
            instance=args.instance,
        ) as daemon:
            freeze_what_lives_long()
            if not args.once:
                await daemon.serve()
                return 0
            records = await daemon.run_once(wait=args.wait.total_seconds())
            in_flight = {
                name: runtime.stored.operation
                for name, runtime in daemon.runtimes.items()
                if runtime.stored.operation is not None
            }
        Console().print(render_table(records))
        for record in records:
            if record.action == "failed" and record.operation is not None:
                print(f"{record.target}: operation failed: {record.error}", file=sys.stderr)
        for name, operation in in_flight.items():
            print(
                f"{name}: operation {operation.operation} still in flight after "
                f"{format_duration(args.wait)}; the next run follows it",
                file=sys.stderr,
            )
        return 1 if any(record.action == "failed" for record in records) else 0

    from ..errors import StartupError

    try:
        return asyncio.run(main())
    except StartupError as problem:
        print(f"scalerd run: {problem}", file=sys.stderr)
        return 2
