"""``scalerd cluster [--json]``: the replicas sharing the Redis, the shards each holds and
how long ago each renewed its leases, read from Redis (this command joins nothing)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ._common import add_config_argument, load_or_report

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = commands.add_parser(
        "cluster", help="the replicas sharing the Redis: members, shards held, lease ages"
    )
    add_config_argument(cluster)
    cluster.add_argument("--json", action="store_true", help="as one JSON object")
    cluster.set_defaults(handler=_cluster)


def _cluster(args: argparse.Namespace) -> int:
    import redis.asyncio
    import redis.exceptions
    from rich.console import Console
    from rich.table import Table

    from ..cluster import ClusterMember

    config = load_or_report(args.config)
    if config is None:
        return 1
    settings = config.redis
    if settings is None or config.state.store != "redis":
        print(f"{args.config}: no cluster: the state is not kept in Redis", file=sys.stderr)
        return 1

    async def main() -> dict[str, Any]:
        client = redis.asyncio.Redis.from_url(
            settings.url, password=settings.password(), socket_timeout=5, socket_connect_timeout=5
        )
        try:
            observer = ClusterMember(
                client, config.cluster, key_prefix=settings.key_prefix, instance="scalerd-cli"
            )
            return await observer.read()
        finally:
            await client.aclose()

    try:
        described = asyncio.run(main())
    except (redis.exceptions.RedisError, OSError) as problem:
        print(f"cannot read the cluster from {settings.url}: {problem}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({key: value for key, value in described.items() if key != "held"}))
        return 0
    table = Table(title=f"cluster {described['name']!r}: {described['shards']} shards")
    for column in ("instance", "live", "heartbeat age", "shards", "oldest lease age"):
        table.add_column(column)
    for member in described["members"]:
        table.add_row(
            member["instance"],
            "yes" if member["live"] else "no",
            _seconds(member["heartbeat_age_s"]),
            str(len(member["shards"])),
            _seconds(member["oldest_lease_age_s"]),
        )
    console = Console()
    console.print(table)
    free = described["free_shards"]
    console.print(f"free shards: {len(free)}" + (f" ({', '.join(map(str, free))})" if free else ""))
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
