"""``scalerd COMMAND``: builds the parser from the command modules and dispatches.

Each command lives in its own module under ``scalerd.commands`` (its arguments and its
work); nothing here decides anything. Exit codes: 0 success, 1 invalid configuration or
failed run, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

from .commands import (
    audit,
    check,
    cluster,
    completion,
    control,
    explain,
    export,
    help,
    imports,
    run,
    shadow,
    simulate,
)

__all__ = ["build_parser", "main"]

# in the order `scalerd help` lists them
COMMANDS = (
    run,
    check,
    simulate,
    imports,
    audit,
    explain,
    export,
    shadow,
    control,
    cluster,
    completion,
    help,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalerd",
        description="Event-driven autoscaling daemon.",
        epilog="`scalerd help COMMAND` (or `scalerd COMMAND --help`) for one command.",
    )
    parser.add_argument("--version", action="version", version=f"scalerd {version('scalerd')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    parser.set_defaults(parser=parser)  # for `scalerd help` and `scalerd completion`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if getattr(args, "full_parser", None) is None:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        # a command that parses its own arguments gets them all, leading options included
        args.arguments = [*unknown, *args.arguments]
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
