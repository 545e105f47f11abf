"""``scalerd import``: the arguments and the work live in ``scalerd.importers.command``.

The importers are loaded only when this command runs (or its help is asked for): the
parser registers ``import`` with its arguments unparsed, so ``scalerd --version``,
``help`` and ``completion`` do not pay for loading every importer.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]

HELP = "turn a KEDA, HPA, Azure autoscale, Container Apps or AWS definition into config.toml"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imported = commands.add_parser("import", help=HELP, add_help=False)
    imported.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="KIND FILE [options]; see --help"
    )
    imported.set_defaults(handler=_import, full_parser=full_parser)


def full_parser() -> argparse.ArgumentParser:
    """The command's real parser (loads the importers)."""
    from ..importers.command import add_arguments

    parser = argparse.ArgumentParser(prog="scalerd import", description=HELP)
    add_arguments(parser)
    return parser


def _import(args: argparse.Namespace) -> int:
    from ..importers.command import run

    return run(full_parser().parse_args(args.arguments))
