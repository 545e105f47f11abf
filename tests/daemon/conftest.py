"""Fixtures of the daemon tests: a Redis server that wants a password."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

REDIS_PASSWORD = "right-password-0123"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server that wants the password ``REDIS_PASSWORD``; its port."""
    executable = shutil.which("redis-server")
    assert executable is not None, "the Redis tests need a real redis-server"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis-auth")
    server = subprocess.Popen(
        [
            *(executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--requirepass", REDIS_PASSWORD, "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        with redis.Redis(port=port, password=REDIS_PASSWORD, socket_timeout=1) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(10)
