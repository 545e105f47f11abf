"""``scalerd import KIND FILE [--out PATH] [--strict] [--simulate TRACE]``.

Writes a complete config.toml (to ``--out`` or stdout), checks it with the same loader
``scalerd run`` uses, and lists on stderr every construct that had no exact equivalent.
Exit 0 (warnings are counted, not fatal), 1 when the file cannot be imported, or with
``--strict`` when anything did not carry over exactly.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from . import IMPORTERS

    parser.add_argument(
        "kind", choices=sorted(IMPORTERS), metavar="KIND", help=", ".join(sorted(IMPORTERS))
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the definition: YAML or JSON")
    parser.add_argument("--out", type=Path, help="write the config here (default: stdout)")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any construct has no exact equivalent"
    )
    parser.add_argument(
        "--simulate",
        type=Path,
        metavar="TRACE",
        help="replay the imported target on this trace beside the source system's preset",
    )
    parser.add_argument(
        "--anchor",
        type=Path,
        metavar="PATH",
        help="the preset to replay beside it (default: rules/<preset of KIND>.toml)",
    )
    parser.add_argument(
        "--simulate-out",
        type=Path,
        default=Path("simulation-import"),
        metavar="DIR",
        help="where --simulate writes its outputs (default: ./simulation-import/)",
    )
    parser.add_argument(
        "--peak-replicas",
        type=int,
        help="with --simulate: scale the trace so its peak needs this many",
    )


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import ConfigError
    from . import ImportFailure, convert, render

    try:
        draft = convert(args.kind, args.file)
    except ImportFailure as failure:
        print(failure, file=sys.stderr)
        return 1
    command = shlex.join(["scalerd", "import", args.kind, args.file.name])
    text = render(draft, command)
    with tempfile.TemporaryDirectory(prefix="scalerd-import-") as scratch:
        path = args.out or Path(scratch) / "config.toml"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"cannot write {path}: {error.strerror}", file=sys.stderr)
            return 1
        try:
            config = load_config(path)
        except ConfigError as error:
            print(
                f"the imported config does not pass scalerd check (a bug in `{command}`):",
                file=sys.stderr,
            )
            for issue in error.issues:
                print(f"  {issue}", file=sys.stderr)
            return 1
        if args.out is None:
            sys.stdout.write(text)
        notes = draft.all_notes
        for note in notes:
            verb = "not imported" if note.dropped else "no exact equivalent"
            print(f"warning: {verb}: {note.construct}: {note.reason}", file=sys.stderr)
        dropped = sum(note.dropped for note in notes)
        where = f" into {args.out}" if args.out else ""
        print(
            f"imported {len(config.targets)} target(s){where}: {len(notes)} warning(s), "
            f"{dropped} construct(s) kept as comments",
            file=sys.stderr,
        )
        if args.simulate is not None:
            code = _simulate(args, path, draft.anchor, config.targets[0].name)
            if code:
                return code
    return 1 if args.strict and notes else 0


def _simulate(args: argparse.Namespace, config: Path, anchor: str, target: str) -> int:
    from ..simulate.command import add_arguments as simulate_arguments
    from ..simulate.command import run as simulate

    preset = args.anchor or Path("rules") / f"{anchor}.toml"
    if not preset.is_file():
        print(
            f"no preset at {preset}: pass --anchor PATH (e.g. rules/{anchor}.toml)", file=sys.stderr
        )
        return 1
    parser = argparse.ArgumentParser(prog="scalerd simulate")
    simulate_arguments(parser)
    argv = [
        "--config", str(config), "--target", target, "--trace", str(args.simulate),
        "--out", str(args.simulate_out), "--compare", str(preset),
    ]  # fmt: skip
    if args.peak_replicas is not None:
        argv += ["--peak-replicas", str(args.peak_replicas)]
    code: int = simulate(parser.parse_args(argv))
    return code
