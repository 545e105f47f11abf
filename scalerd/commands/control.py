"""``scalerd pause | resume | override``: operator controls of a running daemon, through
its HTTP API (``POST /api/targets/{name}/controls``).

The daemon's address is the config's ``[daemon] listen`` (``0.0.0.0`` is asked on
127.0.0.1), or ``--url``. The bearer token is read from the environment variable the
config's ``control_token_env`` names, the same one the daemon reads.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._common import add_config_argument, load_or_report, report_unknown_target

if TYPE_CHECKING:
    import httpx

    from ..config import Config

__all__ = ["daemon_url", "register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pause = commands.add_parser(
        "pause", help="pause scaling of TARGET (both directions, or one) on a running daemon"
    )
    _common(pause)
    direction = pause.add_mutually_exclusive_group()
    direction.add_argument(
        "--scale-in",
        dest="mode",
        action="store_const",
        const="scale_in",
        help="pause scale-in only",
    )
    direction.add_argument(
        "--scale-out",
        dest="mode",
        action="store_const",
        const="scale_out",
        help="pause scale-out only",
    )
    pause.add_argument(
        "--for", dest="duration", metavar="DURATION", help="e.g. 30m; default: until resumed"
    )
    pause.set_defaults(handler=_pause, mode="all")

    resume = commands.add_parser("resume", help="lift the pause of TARGET on a running daemon")
    _common(resume)
    resume.set_defaults(handler=_resume)

    override = commands.add_parser(
        "override", help="hold TARGET at N replicas (or tiers) on a running daemon"
    )
    _common(override)
    override.add_argument("capacity", metavar="N", type=int, help="the capacity to hold")
    override.add_argument(
        "--for", dest="duration", metavar="DURATION", help="e.g. 1h; default: until cleared"
    )
    override.add_argument(
        "--clear", action="store_true", help="end the override now (N is then ignored)"
    )
    override.set_defaults(handler=_override)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET")
    add_config_argument(parser)
    parser.add_argument("--url", help="the daemon's address (default: from [daemon] listen)")


def daemon_url(config: Config) -> str:
    host, _, port = config.daemon.listen.rpartition(":")
    if host in ("0.0.0.0", "::", "[::]", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _pause(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"pause": args.mode}
    if args.duration:
        body["pause_for"] = args.duration
    return _send(args, body)


def _resume(args: argparse.Namespace) -> int:
    return _send(args, {"pause": None})


def _override(args: argparse.Namespace) -> int:
    if args.clear:
        return _send(args, {"override": None})
    body: dict[str, Any] = {"override": args.capacity}
    if args.duration:
        body["override_for"] = args.duration
    return _send(args, body)


def _send(args: argparse.Namespace, body: dict[str, Any]) -> int:
    import httpx

    config = load_or_report(args.config)
    if config is None:
        return 1
    if report_unknown_target(config, args.target):
        return 1
    base = (args.url or daemon_url(config)).rstrip("/")
    headers = {}
    token_env = config.daemon.control_token_env
    if token_env and os.environ.get(token_env):
        headers["Authorization"] = f"Bearer {os.environ[token_env]}"
    try:
        response = httpx.post(
            f"{base}/api/targets/{args.target}/controls", json=body, headers=headers, timeout=10
        )
    except httpx.HTTPError as problem:
        print(
            f"no scalerd answers at {base} ({type(problem).__name__}); is it running? "
            "--url gives its address",
            file=sys.stderr,
        )
        return 1
    if response.status_code in (401, 403):
        hint = (
            f"set ${token_env} to the daemon's token"
            if token_env
            else "the config names no control_token_env"
        )
        print(f"{base} refused: {_error(response)} ({hint})", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{base} answered {response.status_code}: {_error(response)}", file=sys.stderr)
        return 1
    print(_in_words(args.target, response.json()["controls"]))
    return 0


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _in_words(target: str, controls: dict[str, Any]) -> str:
    def until(key: str) -> str:
        value = controls.get(key)
        return f" until {value}" if value else ""

    parts = []
    pause = controls.get("pause")
    if pause:
        what = {"all": "paused", "scale_in": "scale-in paused", "scale_out": "scale-out paused"}
        parts.append(what.get(pause, f"paused ({pause})") + until("pause_until"))
    if controls.get("override") is not None:
        parts.append(f"held at {controls['override']}{until('override_until')}")
    return f"{target}: {'; '.join(parts) if parts else 'scaling by its rules'}"
