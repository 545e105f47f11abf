"""examples/redis.toml does what its header says, on a private redis-server: orders pushed
to the list are consumed by the demo workers (BLPOP), the pool scales out from zero, and
once the list is empty it goes back to zero by itself.

The example's timings are made shorter (interval 5s → 1s, scale-down window 30s → 3s,
idle_before_zero 2m → 5s) so the whole run takes well under a minute; nothing else in the
file changes, and its Redis URL comes from SCALERD_REDIS_URL, as the header says."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from scalerd.audit import read_stream

from .build import running

ROOT = Path(__file__).resolve().parents[2]
FASTER = {
    'interval = "5s"': 'interval = "1s"',
    'stabilization_window = "30s"': 'stabilization_window = "3s"',
    'idle_before_zero = "2m"': 'idle_before_zero = "5s"',
}
ORDERS = 120  # 10 per worker: the pool asks for 12


def _until(condition: Any, timeout: float, what: Any = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what()}")


@pytest.mark.slow
def test_redis_example_drains_the_list_and_scales_out_and_back_to_zero(
    tmp_path: Path, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "examples" / "redis.toml").read_text()
    for old, new in FASTER.items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "examples").mkdir()
    config = tmp_path / "examples" / "redis.toml"
    config.write_text(text)
    prefix = f"example-{os.getpid()}-{time.monotonic_ns()}:"
    # a key prefix and stream of this test's own, on the shared private server
    config.write_text(
        text.replace('stream = "scalerd:audit"', f'stream = "{prefix}audit"').replace(
            'url_env = "SCALERD_REDIS_URL"',
            f'url_env = "SCALERD_REDIS_URL"\nkey_prefix = "{prefix}"',
        )
    )
    queue = "queue:orders"
    client = redis.Redis.from_url(redis_server.url)
    client.delete(queue)
    monkeypatch.setenv("SCALERD_REDIS_URL", redis_server.url)
    started = time.monotonic()
    with running(config, "--listen", "127.0.0.1:0") as daemon:
        client.rpush(queue, *range(ORDERS))
        most = 0

        def drained() -> bool:
            nonlocal most
            most = max(most, _workers(daemon.process.pid))
            return client.llen(queue) == 0

        _until(drained, timeout=50, what=lambda: f"the list still holds {client.llen(queue)}")
        assert most > 1  # several worker processes were running at once
        stream = f"{prefix}audit"
        _until(
            lambda: (
                _workers(daemon.process.pid) == 0 and _at_zero(_records(redis_server.url, stream))
            ),
            timeout=50,
            what=lambda: f"{_workers(daemon.process.pid)} workers left",
        )
        records = _records(redis_server.url, stream)
        scaled = [r for r in records if r.action == "scaled"]
        peak = max(r.desired or 0 for r in scaled)
        assert peak > 1, [(r.current, r.desired) for r in scaled]
        assert scaled[0].current is not None and scaled[0].current["provisioned"] == 0
        assert scaled[-1].desired == 0
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    client.close()
    assert time.monotonic() - started < 90


def _at_zero(records: list[Any]) -> bool:
    return bool(records) and records[-1].desired == 0


def _records(url: str, stream: str) -> list[Any]:
    async def read() -> list[Any]:
        client = redis.asyncio.Redis.from_url(url)
        try:
            return await read_stream(client, stream)
        finally:
            await client.aclose()

    return asyncio.run(read())


def _workers(pid: int) -> int:
    """Live demo workers under the daemon."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"scalerd.demo_worker" in cmdline:
                count += 1
    return count
