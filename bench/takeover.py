"""Takeover time after SIGKILL, against the lease TTL.

Three real ``scalerd run`` replicas on a private redis-server (``examples/replicas``);
20 times: SIGKILL one replica, and time until every shard it held is held by a live
replica (polling the lease keys every 20 ms); then restart it and wait for the shards to
spread again. A replica cannot do better than the TTL measured from its victim's last
renewal, and is designed to take at most ``lease_ttl + renew_every``; so the figures are
printed as ratios to ``lease_ttl``, which the machine's load does not change.

    .venv/bin/python bench/takeover.py            # --kills 20 --ttl 3 --renew 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "replicas"))
from replicas import Replicas

SHARDS = 64


def holders(client: redis.Redis, cluster: str = "demo") -> list[str | None]:
    values = client.mget([f"scalerd:cluster:{cluster}:lease:{s}" for s in range(SHARDS)])
    return [None if v is None else v.decode().partition(":")[2] for v in values]


def wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the cluster")
        time.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--ttl", type=float, default=3.0)
    parser.add_argument("--renew", type=float, default=1.0)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        cluster = Replicas(
            Path(folder),
            count=3,
            targets=30,
            lease_ttl=f"{args.ttl:g}s",
            renew_every=f"{args.renew:g}s",
            shards=SHARDS,
        )
        everyone = {cluster.instance(i) for i in range(3)}
        with cluster, redis.Redis(port=cluster.redis_port) as client:

            def spread() -> bool:
                counts = Counter(holders(client))
                return set(counts) == everyone and min(counts.values()) >= 10

            wait(spread, 120)
            takeovers: list[float] = []
            for kill in range(args.kills):
                victim = rng.randrange(3)
                name = cluster.instance(victim)
                owned = {s for s, holder in enumerate(holders(client)) if holder == name}
                killed_at = time.monotonic()
                cluster.kill(victim)
                wait(
                    lambda owned=owned, name=name: all(
                        holder not in (None, name)
                        for s, holder in enumerate(holders(client))
                        if s in owned
                    ),
                    10 * args.ttl,
                )
                takeovers.append(time.monotonic() - killed_at)
                print(
                    f"kill {kill + 1:2d}: {name}: {len(owned)} shards taken over "
                    f"in {takeovers[-1]:.2f}s",
                    flush=True,
                )
                cluster.start(victim)
                wait(spread, 120)
    ratios = [t / args.ttl for t in takeovers]
    print()
    print(
        f"takeover after SIGKILL, {len(takeovers)} kills, lease_ttl {args.ttl:g}s, "
        f"renew_every {args.renew:g}s"
    )
    print(f"{'':12}{'seconds':>10}{'x lease_ttl':>14}")
    for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        value = percentile(takeovers, q)
        print(f"{label:12}{value:10.2f}{value / args.ttl:14.2f}")
    print(f"{'mean':12}{statistics.mean(takeovers):10.2f}{statistics.mean(ratios):14.2f}")
    bound = (args.ttl + args.renew) / args.ttl
    print(f"designed bound: lease_ttl + renew_every = {bound:.2f} x lease_ttl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
