"""``scalerd simulate``: the arguments and the work live in ``scalerd.simulate.command``."""

from __future__ import annotations

import argparse

from ..simulate.command import add_arguments, run

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser(
        "simulate", help="replay a demand trace through the rules and score the result"
    )
    add_arguments(simulate)
    simulate.set_defaults(handler=run)
