"""``scalerd check``: validate a config (or a rule file) and say each target in words."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import add_config_argument

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="validate the configuration and summarise each target"
    )
    add_config_argument(check)
    check.add_argument(
        "--rule-file", action="store_true", help="the file is a rule file (rules/*.toml)"
    )
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from ..config import load_config, load_rule_file
    from ..errors import ConfigError
    from ..summary import rule_file_lines, summary_lines

    path = Path(args.config)
    try:
        if args.rule_file:
            rule_file = load_rule_file(path)
            print("\n".join(rule_file_lines(path, rule_file)))
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
