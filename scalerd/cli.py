"""``scalerd run | check | simulate | audit | explain``.

Parses arguments and hands over to the module that does the work; nothing here decides
anything. Exit codes: 0 success, 1 invalid configuration or failed run, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ConfigError

__all__ = ["main"]

DEFAULT_CONFIG = "config.toml"


def _check(args: argparse.Namespace) -> int:
    from .config import load_config, load_rule_file
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalerd", description="Event-driven autoscaling daemon.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate the configuration and summarise each target")
    check.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)")
    check.add_argument("--rule-file", action="store_true", help="the file is a rule file (rules/*.toml)")
    check.set_defaults(handler=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
