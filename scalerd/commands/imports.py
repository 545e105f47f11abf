"""``scalerd import``: the arguments and the work live in ``scalerd.importers.command``."""

from __future__ import annotations

import argparse

from ..importers.command import add_arguments, run

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imported = commands.add_parser(
        "import",
        help="turn a KEDA, HPA, Azure autoscale, Container Apps or AWS definition into config.toml",
    )
    add_arguments(imported)
    imported.set_defaults(handler=run)
