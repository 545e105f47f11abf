"""``scalerd run | check | simulate | audit | explain``.

Parses arguments and hands over to the module that does the work; nothing here decides
anything. Exit codes: 0 success, 1 invalid configuration or failed run, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from .audit import AuditRecord, last_record, render_explanation, render_table
from .config import Config, load_config
from .core import format_duration, parse_duration
from .errors import ConfigError
from .importers.command import add_arguments as add_import_arguments
from .simulate.command import add_arguments as add_simulate_arguments

__all__ = ["main"]

DEFAULT_CONFIG = "config.toml"
# how long ``run --once`` follows the operations it started: an Azure SQL or Redis scale
# takes minutes, and a CI job should not hang for an hour on one
DEFAULT_WAIT = timedelta(minutes=3)


def _check(args: argparse.Namespace) -> int:
    from .config import load_rule_file
    from .summary import summary_lines

    path = Path(args.config)
    try:
        if args.rule_file:
            load_rule_file(path)
            print(f"{path}: valid rule file")
            return 0
        config = load_config(path)
    except ConfigError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        count = len(error.issues)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(config)))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .simulate.command import run

    return run(args)


def _load(path: str) -> Config | None:
    """The config, or ``None`` after printing every problem (file:line: key: message)."""
    try:
        return load_config(path)
    except ConfigError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        return None


def _wait_duration(text: str) -> timedelta:
    if text.strip() == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(args: argparse.Namespace) -> int:
    from .daemon.app import Daemon
    from .logs import configure_logging

    config = _load(args.config)
    if config is None:
        return 1
    configure_logging(config.daemon.log_format, config.daemon.log_level)

    async def main() -> int:
        async with Daemon(
            args.config, config=config, dry_run=args.dry_run, listen=args.listen
        ) as daemon:
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

    return asyncio.run(main())


def _audit(args: argparse.Namespace) -> int:
    from .daemon.app import open_audit_log

    config = _load(args.config)
    if config is None:
        return 1
    if args.target is not None and args.target not in {t.name for t in config.targets}:
        print(f"no target named {args.target!r} in {args.config}", file=sys.stderr)
        return 1
    since = datetime.now(UTC) - parse_duration(args.since) if args.since else None
    console = Console()

    async def main() -> None:
        async with open_audit_log(config) as log:
            if args.follow:
                async for record in log.follow(target=args.target):
                    if since is None or record.ts >= since:
                        _show(console, [record], args.json)
                return
            _show(
                console,
                await log.read(target=args.target, since=since, limit=args.limit),
                args.json,
            )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def _show(console: Console, records: Sequence[AuditRecord], as_json: bool) -> None:
    if as_json:
        for record in records:
            print(record.to_json(), flush=True)
    elif records:
        console.print(render_table(records))


def _explain(args: argparse.Namespace) -> int:
    from .daemon.app import open_audit_log

    config = _load(args.config)
    if config is None:
        return 1
    if args.target not in {t.name for t in config.targets}:
        known = ", ".join(t.name for t in config.targets)
        print(
            f"no target named {args.target!r} in {args.config} (targets: {known})", file=sys.stderr
        )
        return 1

    async def main() -> AuditRecord | None:
        async with open_audit_log(config) as log:
            return await last_record(log, args.target)

    record = asyncio.run(main())
    if record is None:
        print(f"{args.target}: no decision recorded yet", file=sys.stderr)
        return 1
    Console().print(render_explanation(record))
    return 0


def _import(args: argparse.Namespace) -> int:
    from .importers.command import run

    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalerd", description="Event-driven autoscaling daemon.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="validate the configuration and summarise each target"
    )
    check.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)"
    )
    check.add_argument(
        "--rule-file", action="store_true", help="the file is a rule file (rules/*.toml)"
    )
    check.set_defaults(handler=_check)

    simulate = commands.add_parser(
        "simulate", help="replay a demand trace through the rules and score the result"
    )
    add_simulate_arguments(simulate)
    simulate.set_defaults(handler=_simulate)

    imported = commands.add_parser(
        "import",
        help="turn a KEDA, HPA, Azure autoscale, Container Apps or AWS definition into config.toml",
    )
    add_import_arguments(imported)
    imported.set_defaults(handler=_import)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)"
    )
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
    run.set_defaults(handler=_run)

    audit = commands.add_parser("audit", help="show recorded decisions")
    audit.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)"
    )
    audit.add_argument("--target", help="only this target")
    audit.add_argument("--since", help="only this recent, e.g. 30m or 2h")
    audit.add_argument(
        "--limit", type=int, default=50, help="at most this many (newest; default 50)"
    )
    audit.add_argument("--follow", action="store_true", help="keep printing new decisions")
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
    audit.set_defaults(handler=_audit)

    explain = commands.add_parser("explain", help="the last decision for TARGET, step by step")
    explain.add_argument("target", metavar="TARGET")
    explain.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)"
    )
    explain.set_defaults(handler=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
