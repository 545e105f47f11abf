"""Two replicas in one cluster: an event posted to the replica that does not own its
target is answered 202 there and evaluated by the owner (forwarded over Redis pub/sub)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio

from scalerd.daemon.app import Daemon

from .build import SECRET, WIRE

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "replicas"))
from replicas import write_config

SHARDS = 16
ENDPOINT = """
[[events]]
name = "alerts"
kind = "azure-monitor-alert"
secret_env = "SCALERD_TEST_ALERTS"
target_property = "scalerd-target"
"""


async def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.05)


async def test_an_event_at_the_non_owner_is_evaluated_by_the_owner(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.asyncio.Redis,
    redis_server: object,
) -> None:
    monkeypatch.setenv("SCALERD_TEST_ALERTS", SECRET)
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])  # type: ignore[attr-defined]
    path = write_config(
        tmp_path,
        redis_port=port,
        targets=8,
        lease_ttl="1s",
        renew_every="300ms",
        interval="1h",
        shards=SHARDS,
    )
    path.write_text(path.read_text() + ENDPOINT)
    async with (
        Daemon(path, listen="127.0.0.1:0", instance="a") as a,
        Daemon(path, listen="127.0.0.1:0", instance="b") as b,
    ):
        tasks = [asyncio.create_task(a.serve()), asyncio.create_task(b.serve())]
        try:
            assert a.cluster is not None and b.cluster is not None
            await _until(
                lambda: len(a.cluster.held) + len(b.cluster.held) == SHARDS and bool(b.cluster.held)
            )  # type: ignore[union-attr]
            target = next(name for name in b.runtimes if b.cluster.holds(name))
            await _until(lambda: a.cluster.owner_of(target) == "b")  # type: ignore[union-attr]
            records: list[object] = []
            emit = b.audit.emit

            async def recording(record: object) -> None:
                await emit(record)  # type: ignore[arg-type]
                records.append(record)

            b.audit.emit = recording  # type: ignore[method-assign]
            payload = json.loads(
                (WIRE / "azuremonitor_commonschema_metric_static_fired.json").read_text()
            )
            payload["data"]["customProperties"]["scalerd-target"] = target
            assert a.listening_on is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.listening_on[1]}") as http:
                response = await http.post(
                    "/events/alerts",
                    content=json.dumps(payload),
                    headers={"X-Scalerd-Secret": SECRET},
                )
            assert response.status_code == 202 and response.json()["targets"] == [target]
            await _until(lambda: any(getattr(r, "trigger", None) for r in records))
            (record,) = [
                r for r in records if getattr(r, "trigger", None) and r.trigger["type"] == "event"
            ]  # type: ignore[attr-defined]
            assert record.target == target and record.instance == "b"  # type: ignore[attr-defined]
            assert record.trigger["id"] == payload["data"]["essentials"]["alertId"]  # type: ignore[attr-defined]
        finally:
            a.stop()
            b.stop()
            await asyncio.gather(*tasks)
