"""Daemons in one cluster, in this process: who evaluates what, hand-over, fencing in the
tick, and the HTTP, metrics and CLI faces. (Real processes: ``test_replicas.py``.)"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio

from scalerd.cli import main as cli
from scalerd.cluster import Lease
from scalerd.daemon.app import Daemon

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "replicas"))
from replicas import write_config

SHARDS = 16


def config(tmp_path: Path, redis_url: str, targets: int = 8) -> Path:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    return write_config(
        tmp_path,
        redis_port=port,
        targets=targets,
        lease_ttl="1s",
        renew_every="300ms",
        interval="500ms",
        shards=SHARDS,
    )


async def eventually(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.05)


async def test_two_daemons_split_the_targets_and_a_graceful_stop_hands_back_at_once(
    tmp_path: Path, redis_client: redis.asyncio.Redis, redis_server: object
) -> None:
    path = config(tmp_path, redis_server.url)  # type: ignore[attr-defined]
    async with Daemon(path, listen="127.0.0.1:0", instance="a") as a:
        assert a.cluster is not None and len(a.cluster.held) == SHARDS  # alone: every shard
        task_a = asyncio.create_task(a.serve())
        async with Daemon(path, listen="127.0.0.1:0", instance="b") as b:
            assert b.cluster is not None
            task_b = asyncio.create_task(b.serve())
            await eventually(
                lambda: (
                    len(a.cluster.held) + len(b.cluster.held) == SHARDS  # type: ignore[union-attr]
                    and bool(b.cluster.held)
                )
            )  # type: ignore[union-attr]
            assert not set(a.cluster.held) & set(b.cluster.held)
            await asyncio.sleep(1.2)  # a couple of evaluations each
            for daemon in (a, b):
                assert daemon.cluster is not None
                mine = {n for n in daemon.runtimes if daemon.cluster.holds(n)}
                assert mine and set(daemon._loops) == mine
                for name in mine:  # its targets' latest records are its own, fenced
                    record = daemon.runtimes[name].last_record
                    assert record is not None and record.instance == daemon.instance
                    assert record.fence == daemon.cluster.held[daemon.cluster.shard_of(name)].token
            # the HTTP and metrics faces
            assert a.listening_on is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.listening_on[1]}") as http:
                seen = (await http.get("/api/cluster")).json()
                metrics = (await http.get("/metrics")).text
            assert {m["instance"] for m in seen["members"]} == {"a", "b"}
            assert {t["owner"] for t in seen["targets"].values()} == {"a", "b"}
            assert f"scalerd_shards_owned {float(len(a.cluster.held))}" in metrics
            assert "scalerd_lease_renew_failures_total 0.0" in metrics
            assert "scalerd_lease_takeovers_total" in b.metrics.render().decode()
            assert f"scalerd_lease_takeovers_total {float(len(b.cluster.held))}" in (
                b.metrics.render().decode()
            )
            b.stop()
            await task_b
            stopped_at = time.monotonic()
        # b released its leases: a holds everything within a renew period or two, long
        # before b's leases (1 s) would have expired
        await eventually(lambda: len(a.cluster.held) == SHARDS, timeout=2.0)  # type: ignore[union-attr]
        assert time.monotonic() - stopped_at < 0.9
        a.stop()
        await task_a
    assert await redis_client.zcard("scalerd:cluster:demo:members") == 0  # both left


async def test_the_tick_acts_only_under_a_valid_lease_with_time_to_spare(
    tmp_path: Path,
    redis_client: redis.asyncio.Redis,
    redis_server: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = config(tmp_path, redis_server.url)  # type: ignore[attr-defined]
    async with Daemon(path, instance="a") as daemon:
        cluster = daemon.cluster
        assert cluster is not None
        # t01 and t04 read load-1, which starts at 4: their first evaluation scales 1 -> 4
        steal, short, expire = "t01", "t04", "t07"
        shard_of = cluster.shard_of
        assert len({shard_of(steal), shard_of(short), shard_of(expire)}) == 3
        # a newer owner took t01's lease (as after a pause beyond the TTL)
        await redis_client.set(cluster.lease_key(shard_of(steal)), "99:thief", px=5000)
        # t04's lease has less left than a write may take (one renew period)
        lease = cluster.held[shard_of(short)]
        cluster.held[lease.shard] = Lease(lease.shard, lease.token, time.monotonic() + 0.1)
        # t07's lease ran out here (Redis unreachable, say)
        lease = cluster.held[shard_of(expire)]
        cluster.held[lease.shard] = Lease(lease.shard, lease.token, time.monotonic() - 0.5)
        records = {record.target: record for record in await daemon.run_once()}

    assert records[steal].action == "skipped" and records[steal].fence == 1
    assert records[steal].error is not None
    assert records[steal].error.startswith("LeaseLost: not saved: the lease of t01")
    assert records[short].action == "skipped"
    assert (
        records[short].error is not None
        and "less than the 0.3s a write may take" in records[short].error
    )
    assert records[expire].action == "skipped" and records[expire].desired is None
    assert records[expire].error is not None and "ran out" in records[expire].error
    # nothing was written to the actuators of the three, the others scaled normally
    writes = [json.loads(line) for line in (tmp_path / "writes.jsonl").read_text().splitlines()]
    written = {w["actuator"] for w in writes}
    assert not written & {steal, short, expire}
    assert written == {"t02", "t05"} and all(
        w["fence"] == 1 and w["instance"] == "a" for w in writes
    )
    # the stolen target's state in Redis is untouched by the refused save
    assert await redis_client.get("scalerd:state:t01") is None

    capsys.readouterr()
    assert await asyncio.to_thread(cli, ["cluster", "--config", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    # a left: its leases are free; the thief is no member but still holds its lease
    assert shown["members"] == [
        {
            "instance": "thief",
            "live": False,
            "heartbeat_age_s": None,
            "shards": [shard_of(steal)],
            "oldest_lease_age_s": shown["members"][0]["oldest_lease_age_s"],
        }
    ]
    assert len(shown["free_shards"]) == SHARDS - 1


async def test_a_new_owner_restores_pending_changes_and_operations_in_flight(
    tmp_path: Path, redis_client: redis.asyncio.Redis, redis_server: object
) -> None:
    from datetime import UTC, datetime

    from scalerd.audit import AuditRecord
    from scalerd.daemon.state import InFlight, Pending, RedisStateStore, StoredTarget

    path = config(tmp_path, redis_server.url)  # type: ignore[attr-defined]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    planned = AuditRecord.without_decision(
        "t01",
        at,
        action="failed",
        kind="recording",
        config_version="v",
        instance="gone",
        prev="01a000000000-0000000000000000",
        duration_ms=0.0,
        dry_run=False,
        error="-",
        fence=7,
    )
    in_flight = InFlight("op-1", '{"polling_url": "x"}', at, 1, 3, 60.0)
    # what a replica that died left in Redis
    old = RedisStateStore(redis_client)
    await old.save("t00", StoredTarget(operation=in_flight, last_record_id="r0"))
    await old.save("t01", StoredTarget(pending=Pending(at, 1, 4, 60.0, planned.as_dict())))
    async with Daemon(path, instance="b") as b:
        assert b.runtimes["t00"].stored.operation == in_flight
        assert b.runtimes["t00"].stored.last_record_id == "r0"
        settled = b.runtimes["t01"].last_record
        # the recording actuator shows 1, not 4: the change never landed, and says so
        assert settled is not None and settled.id == planned.id and settled.action == "failed"
        assert "settled at restart" in (settled.error or "")
        assert b.runtimes["t01"].stored.pending is None
        assert (await RedisStateStore(redis_client).load(["t01"]))["t01"].pending is None


async def test_a_replica_paused_after_writing_ahead_does_not_act_when_it_wakes(
    tmp_path: Path, redis_client: redis.asyncio.Redis, redis_server: object
) -> None:
    from scalerd.daemon.state import RedisStateStore, StoredTarget

    path = config(tmp_path, redis_server.url)  # type: ignore[attr-defined]
    async with Daemon(path, instance="a") as daemon:
        cluster, store = daemon.cluster, daemon.store
        assert cluster is not None and isinstance(store, RedisStateStore)
        real_save = store.save_many

        async def save_then_pause(targets: dict[str, StoredTarget]) -> None:
            await real_save(targets)
            if "t01" in targets and targets["t01"].pending is not None:
                # the process stops here, past its lease (SIGSTOP, GC): when it runs again
                # its own clock says the lease is gone
                lease = cluster.held[cluster.shard_of("t01")]
                cluster.held[lease.shard] = Lease(lease.shard, lease.token, time.monotonic() - 1)

        store.save_many = save_then_pause  # type: ignore[method-assign]
        records = {record.target: record for record in await daemon.run_once()}
    assert records["t01"].action == "skipped" and records["t01"].not_scaled_reason == "LeaseLost"
    writes = [json.loads(line) for line in (tmp_path / "writes.jsonl").read_text().splitlines()]
    assert "t01" not in {w["actuator"] for w in writes} and {"t02", "t05"} <= {
        w["actuator"] for w in writes
    }
