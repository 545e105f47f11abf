"""Faults a user meets from the command line, each answered with one clear line and an
exit code, never a traceback: the port taken, a duration without a unit, an audit stream
that is unreachable or refuses the password."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from scalerd.actuators.recording import RecordingActuator
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

from .build import SCALERD, replay_target, write_config


def _scalerd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCALERD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_port_taken_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, replay_target((30, 30)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _scalerd("run", "--config", str(config), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"scalerd run: cannot listen on 127.0.0.1:{port}: address already in use "
        "(set [daemon] listen or --listen)"
    )
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("since", ["2"])
def test_a_bad_since_is_one_line_and_exit_2(tmp_path: Path, since: str) -> None:
    config = write_config(tmp_path, replay_target((30, 30)))
    done = _scalerd("audit", "--config", str(config), "--since", since)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("scalerd audit: --since: ")
    assert "duration" in line


def _redis_audit_config(tmp_path: Path, url: str) -> Path:
    header = f"""
    [redis]
    url = "{url}"
    password_env = "T_REDIS_PASSWORD"
    socket_timeout = "1s"

    [audit]
    sink = "redis"
    stream = "t:audit"
    spool = "spool.jsonl"
    """
    return write_config(tmp_path, replay_target((30, 30)), header=header)


@pytest.mark.parametrize("command", [["audit"], ["explain", "api"]])
def test_an_unreachable_audit_stream_is_one_line_and_exit_1(
    tmp_path: Path, command: list[str]
) -> None:
    port = _free_port()  # nothing listens there
    config = _redis_audit_config(tmp_path, f"redis://127.0.0.1:{port}/0")
    done = _scalerd(*command, "--config", str(config), env={"T_REDIS_PASSWORD": "s3cret-pass"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot read the audit stream at redis://127.0.0.1:{port}: connection refused"
    ]


@pytest.mark.parametrize("command", [["audit"], ["explain", "api"]])
def test_a_wrong_password_is_one_line_that_does_not_show_it(
    tmp_path: Path, command: list[str], redis_with_password: int
) -> None:
    config = _redis_audit_config(tmp_path, f"redis://127.0.0.1:{redis_with_password}/0")
    done = _scalerd(*command, "--config", str(config), env={"T_REDIS_PASSWORD": "s3cret-pass"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot read the audit stream at redis://127.0.0.1:{redis_with_password}: "
        "authentication failed (wrong password?)"
    ]
    assert "s3cret-pass" not in done.stderr + done.stdout


async def test_while_redis_is_down_the_daemon_serves_what_it_knows(
    tmp_path: Path, redis_server: Any
) -> None:
    """State and audit in Redis; Redis stops. The change that cannot be written ahead is
    not made (skipped, StateUnavailable); the page and the API answer from the daemon's
    own records with a notice; /readyz says why it is not ready."""
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
    stream = "t:audit"
    spool = "spool/audit.jsonl"
    """
    body = replay_target((20, 20, 90, 90), initial=1, maximum=10)
    clock = ManualClock()
    async with Daemon(write_config(tmp_path, body, header=header), clock=clock) as daemon:
        (first,) = await daemon.run_once()  # 20/10: 1 -> 2
        actuator = daemon.runtimes["api"].actuator
        assert isinstance(actuator, RecordingActuator)
        redis_server.stop()
        try:
            clock.advance(timedelta(minutes=2))  # demand 90: it would scale to 6
            (second,) = await daemon.run_once()
            assert (second.action, second.not_scaled_reason) == ("skipped", "StateUnavailable")
            assert second.error is not None
            assert second.error.startswith("state store unavailable (")
            assert [call.desired for call in actuator.calls] == [2]  # no call while down
            task, url = await _serve(daemon)
            async with httpx.AsyncClient(base_url=url) as http:
                answer = await http.get("/api/decisions")
                page = await http.get("/")
                ready = await http.get("/readyz")
            daemon.stop()
            await asyncio.wait_for(task, 10)
        finally:
            redis_server.start()
        assert answer.status_code == 200
        shown = answer.json()
        assert [d["id"] for d in shown["decisions"]][-2:] == [first.id, second.id]
        assert shown["audit_unreachable_since"] is not None
        assert shown["notice"].startswith("audit stream unreachable since ")
        assert page.status_code == 200 and "The audit stream is unreachable" in page.text
        assert second.id in page.text  # shown from the daemon's own records
        assert ready.status_code == 503
        assert any("state store unavailable" in reason for reason in ready.json()["reasons"])
        _, notice = await daemon.read_decisions()
        assert notice is None and daemon.audit_read_outage.since is None


async def _serve(daemon: Daemon) -> tuple[asyncio.Task[None], str]:
    task = asyncio.create_task(daemon.serve())
    while daemon.listening_on is None:
        await asyncio.sleep(0.01)
    host, port = daemon.listening_on
    return task, f"http://{host}:{port}"
