"""What every subcommand shares (importing nothing heavy: ``scalerd --version``, ``help``
and ``completion`` stay instant): the ``--config`` flag, loading a config with every
problem reported as ``file:line: key: message``, and naming a target that exists."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "DEFAULT_CONFIG",
    "add_config_argument",
    "audit_stream_errors",
    "load_or_report",
    "report_unknown_target",
]

DEFAULT_CONFIG = "config.toml"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.toml)"
    )


def load_or_report(path: str) -> Config | None:
    """The config, or ``None`` after printing every problem (file:line: key: message)."""
    from ..config import load_config
    from ..errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        return None


def report_unknown_target(config: Config, target: str | None) -> bool:
    """True (after saying so) when ``target`` is given and names no target of ``config``."""
    names = [t.name for t in config.targets]
    if target is None or target in names:
        return False
    print(
        f"no target named {target!r} in {config.path} (targets: {', '.join(names) or 'none'})",
        file=sys.stderr,
    )
    return True


@contextlib.contextmanager
def audit_stream_errors(config: Config) -> Iterator[list[str]]:
    """Turn an unreachable audit stream into one line on stderr (never a traceback, never
    the password); the yielded list is non-empty once that happened."""
    from redis.exceptions import RedisError

    from ..daemon.outage import describe_unavailable

    failed: list[str] = []
    try:
        yield failed
    except (RedisError, OSError) as problem:
        where = _public_url(config.redis.url if config.redis else "redis://")
        failed.append(where)
        print(
            f"cannot read the audit stream at {where}: {describe_unavailable(problem)}",
            file=sys.stderr,
        )


def _public_url(url: str) -> str:
    """``scheme://host:port`` of ``url``: no user, password, path or query."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme or 'redis'}://{parts.hostname or 'localhost'}:{port or 6379}"
