"""``scalerd run`` as a real process: the embedded default from a fresh copy, kill -9 and
restart, reload on SIGHUP, shutdown on SIGTERM, a Redis outage under the audit stream."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from scalerd.audit import chain_breaks, read_stream

from .build import SCALERD, audit_records, replay_target, running, write_config

ROOT = Path(__file__).resolve().parents[2]


def _until(condition: Any, timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s")


def test_embedded_default_shows_decisions_within_a_minute(tmp_path: Path) -> None:
    """README: install, then `scalerd run` in the checkout. The shipped config.toml and its
    bundled demand are used as they are; only the port is chosen freely."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "scalerd" / "data", tmp_path / "scalerd" / "data")
    started = time.monotonic()
    with running(tmp_path / "config.toml", "--listen", "127.0.0.1:0") as daemon:
        url = daemon.url
        scaled = _until(
            lambda: [r for r in audit_records(tmp_path) if r["action"] == "scaled"], timeout=60
        )
        assert scaled[0]["target"] == "workers" and scaled[0]["kind"] == "process-pool"
        decisions = httpx.get(
            f"{url}/api/decisions", params={"target": "workers"}, timeout=5
        ).json()["decisions"]
        assert any(record["action"] == "scaled" for record in decisions)
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        assert time.monotonic() - started < 60
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    # the state is in the SQLite database the README names, one row per target
    with sqlite3.connect(tmp_path / "state" / "state.db") as database:
        rows = database.execute("SELECT name FROM targets").fetchall()
    assert rows == [("workers",)]
    assert not (tmp_path / "state" / "state.json").exists()


def test_sigterm_stops_scheduling_flushes_and_stops_workers(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
        [[sources]]
        name = "demand"
        kind = "replay"
        values = [50, 50]
        step = "60s"

        [[actuators]]
        name = "pool"
        kind = "process-pool"
        command = ["{python}", "-c", "import time; time.sleep(600)"]
        stop_grace = "2s"

        [[targets]]
        name = "pool"
        actuator = "pool"
        interval = "300ms"
        max = 3
        [[targets.track]]
        metric = "demand"
        type = "total"
        target = 20
        """,
    )
    with running(config) as daemon:
        _until(lambda: [r for r in audit_records(tmp_path) if r["action"] == "scaled"])
        workers = _until(lambda: _children(daemon.process.pid))
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        assert daemon.wait_for(lambda event: event.get("event") == "stopped")
    assert not [pid for pid in workers if _alive(pid)]
    records = audit_records(tmp_path)
    assert records and all(record["target"] == "pool" for record in records)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split()[2] != "Z"


REDIS_BODY = """
[[sources]]
name = "jobs"
kind = "redis"
mode = "list_length"
keys = ["queue:jobs"]

[[sources]]
name = "orders"
kind = "redis"
mode = "list_length"
keys = ["queue:orders"]

[[actuators]]
name = "jobs-pool"
kind = "recording"
initial = 2
persist_to = "jobs-capacity.txt"

[[actuators]]
name = "orders-pool"
kind = "recording"
initial = 1
persist_to = "orders-capacity.txt"

# Azure-style: +2 when the queue is long, then a one-hour cooldown
[[targets]]
name = "jobs"
actuator = "jobs-pool"
interval = "200ms"
max = 20
[[targets.threshold]]
when = "jobs > 20 avg 1m"
action = "+2"
cooldown = "1h"

# HPA-style: a ten-minute scale-down window
[[targets]]
name = "orders"
actuator = "orders-pool"
interval = "200ms"
max = 10
[[targets.track]]
metric = "orders"
type = "total"
target = 10
[targets.behavior.scale_down]
stabilization_window = "10m"
"""


def test_kill_9_then_restart_keeps_cooldowns_and_windows(tmp_path: Path, redis_server: Any) -> None:
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.rpush("queue:jobs", *range(50))
    client.rpush("queue:orders", *range(50))
    config = write_config(tmp_path, REDIS_BODY, header=f'\n[redis]\nurl = "{redis_server.url}"\n')

    with running(config) as first:
        _until(
            lambda: (
                (tmp_path / "jobs-capacity.txt").exists()
                and (tmp_path / "orders-capacity.txt").exists()
            )
        )
        _until(
            lambda: (tmp_path / "orders-capacity.txt").read_text() == "5"
        )  # 50/10, limited to 1 + 4
        first.process.kill()  # SIGKILL: no shutdown, no flush
        first.wait()
    assert (tmp_path / "jobs-capacity.txt").read_text() == "4"
    before = len(audit_records(tmp_path))

    client.delete("queue:orders")  # demand gone: without its window scalerd would drop to 1
    with running(config) as second:
        _until(lambda: len(audit_records(tmp_path)) >= before + 20)
        second.signal(signal.SIGTERM)
        assert second.wait() == 0
    client.close()

    after = audit_records(tmp_path)[before:]
    jobs = [r for r in after if r["target"] == "jobs"]
    orders = [r for r in after if r["target"] == "orders"]
    assert jobs and all(
        r["action"] == "held" and r["not_scaled_reason"] == "CooldownActive" for r in jobs
    )
    assert orders and all(
        r["action"] == "held" and r["not_scaled_reason"] == "StabilizationWindow" for r in orders
    )
    assert (tmp_path / "jobs-capacity.txt").read_text() == "4"  # not 6: no repeated scale-out
    assert (tmp_path / "orders-capacity.txt").read_text() == "5"  # not 1: the window held
    # the audit chain continues across the restart
    assert jobs[0]["prev"] in {r["id"] for r in audit_records(tmp_path)[:before]}


def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    body = replay_target((30, 30), interval="200ms")
    config = write_config(tmp_path, body)
    with running(config) as daemon:
        url = daemon.url
        _until(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200)
        good = config.read_text()
        config.write_text(good.replace("max = 8", "max = -8"))
        daemon.signal(signal.SIGHUP)
        not_ready = _until(lambda: _readyz(url) if _readyz(url)["ready"] is False else None)
        line = good.splitlines().index("max = 8") + 1
        assert (
            f"config.toml:{line}: targets[0].max: must be greater than or equal to 1 (got -8)"
            in not_ready["reload"]["error"]
        )
        count = len(audit_records(tmp_path))
        _until(
            lambda: len(audit_records(tmp_path)) > count + 3
        )  # still evaluating, on the old config
        assert all(
            r["config_version"] == audit_records(tmp_path)[0]["config_version"]
            for r in audit_records(tmp_path)
        )

        config.write_text(good.replace("max = 8", "max = 9"))
        daemon.signal(signal.SIGHUP)
        _until(lambda: _readyz(url)["reload"] and _readyz(url)["reload"]["ok"])
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0


def _readyz(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/readyz", timeout=5).json())


@pytest.mark.slow
def test_redis_down_for_20s_under_state_and_audit_loses_nothing_and_acts_on_nothing(
    tmp_path: Path, redis_server: Any
) -> None:
    """State and audit in Redis; Redis stops for 20 s while the target is evaluated twice a
    second. Every evaluation leaves exactly one record in the stream afterwards, in order,
    none twice; a change that could not be written ahead was not made; the page, the API,
    `scalerd audit` and `scalerd explain` answered meanwhile, without a 5xx or a traceback."""
    if not redis_server.running:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushdb()
    header = f"""
    [redis]
    url = "{redis_server.url}"
    socket_timeout = "500ms"

    [state]
    store = "redis"

    [audit]
    sink = "redis"
    stream = "test:audit"
    spool = "spool/audit.jsonl"
    """
    body = replay_target((30, 60, 90, 60), step="2s", interval="500ms", maximum=10)
    body = body.replace('kind = "recording"', 'kind = "recording"\npersist_to = "capacity.txt"')
    config = write_config(tmp_path, body, header=header)
    capacity = tmp_path / "capacity.txt"
    answers: list[tuple[str, int, str]] = []
    with running(config) as daemon:
        url = daemon.url
        decisions = lambda: [e for e in daemon.events if e.get("event") == "decision"]  # noqa: E731
        _until(lambda: len(decisions()) >= 4 and capacity.exists())
        redis_server.stop()
        during = len(decisions())
        deadline = time.monotonic() + 20
        capacity_at_stop = capacity.read_text()
        while time.monotonic() < deadline:
            for path in ("/", "/api/decisions", "/api/decisions?target=api&limit=5"):
                response = httpx.get(url + path, timeout=5)
                answers.append((path, response.status_code, response.text))
            for command in (["audit"], ["explain", "api"]):
                done = subprocess.run(
                    [*SCALERD, *command, "--config", str(config)],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                answers.append((" ".join(command), done.returncode, done.stdout + done.stderr))
            time.sleep(1)
        assert capacity.read_text() == capacity_at_stop  # no change made while down
        outage = decisions()[during:]
        redis_server.start()
        _until(lambda: httpx.get(url + "/api/decisions", timeout=5).json()["notice"] is None)
        time.sleep(6)  # the spool is retried every 5 s
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        written = [e["record"] for e in decisions()][during:]
        log = "".join(daemon.raw)
        outage_events = [
            (e["level"], e["event"]) for e in daemon.events if "state store" in e["event"]
        ]

    assert len(outage) >= 30  # twice a second, for 20 s, under load
    assert {e["action"] for e in outage} <= {"held", "skipped"}
    assert any(e["reason"] == "StateUnavailable" for e in outage)
    for what, status, text in answers:
        assert status < 500 and "Traceback" not in text, (what, status, text[-500:])
    pages = [text for what, _, text in answers if what == "/"]
    assert all("The audit stream is unreachable" in page for page in pages)
    api = [json.loads(text) for what, _, text in answers if what.startswith("/api")]
    assert all(a["audit_unreachable_since"] and a["decisions"] for a in api)
    cli = [(status, text) for what, status, text in answers if not what.startswith("/")]
    assert all(
        status == 1 and text.strip().startswith("cannot read the audit stream at redis://")
        for status, text in cli
    )
    assert "Traceback" not in log and '"exception"' not in log
    assert outage_events == [
        ("warning", "state store unavailable"),
        ("info", "state store available again"),
    ]

    async def stream() -> list[Any]:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            return await read_stream(client, "test:audit")
        finally:
            await client.aclose()

    records = asyncio.run(stream())
    ids = [record.id for record in records]
    assert len(ids) == len(set(ids))  # once each
    # the test server keeps nothing on disk, so what it held before the stop is gone with
    # it; every evaluation from the stop on has its record, in the order written
    assert [i for i in ids if i in set(written)] == written
    assert [r.ts for r in records] == sorted(r.ts for r in records)
    assert chain_breaks(records) == set()
    assert (
        not (tmp_path / "spool" / "audit.jsonl").exists()
        or not (tmp_path / "spool" / "audit.jsonl").read_text().strip()
    )


def test_run_once_exit_codes(tmp_path: Path) -> None:
    import subprocess

    body = replay_target((30, 30))
    config = write_config(tmp_path, body)
    done = subprocess.run(
        [*SCALERD, "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (record,) = audit_records(tmp_path)
    assert (record["action"], record["desired"]) == ("scaled", 3)
    broken = subprocess.run(
        [
            *SCALERD,
            "run",
            "--once",
            "--config",
            str(write_config(tmp_path, body.replace("max = 8", "max = 0"), name="bad.toml")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 1 and "targets[0].max" in broken.stderr
    json.loads(json.dumps(record))
