"""``scalerd help [COMMAND]``: the overview, or one command's full help."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("help", help="show this overview, or the help of COMMAND")
    parser.add_argument("topic", nargs="?", metavar="COMMAND")
    parser.set_defaults(handler=_help, commands=commands)


def _help(args: argparse.Namespace) -> int:
    root: argparse.ArgumentParser = args.parser  # the top-level parser (scalerd.cli)
    if args.topic is None:
        root.print_help()
        return 0
    choices: dict[str, argparse.ArgumentParser] = args.commands.choices
    if args.topic not in choices:
        known = ", ".join(sorted(choices))
        print(f"scalerd help: no command {args.topic!r} (commands: {known})", file=sys.stderr)
        return 2
    parser = choices[args.topic]
    full_parser = parser.get_default("full_parser")  # a command that parses its own arguments
    (full_parser() if full_parser is not None else parser).print_help()
    return 0
