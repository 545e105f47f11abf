"""Fixtures every test shares: no network beyond loopback, a private Redis, a manual
clock, and HTTP clients answered by a function.

Nothing in the test suite may reach beyond this machine (DESIGN.md §7). The autouse
``_loopback_only`` guard makes any connection or name lookup for another host fail, and
fails the test even if the code under test caught that error.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio

from scalerd.clock import ManualClock

# "" is the wildcard a server binds to, not a host to reach
_LOCAL_NAMES = frozenset({"", "localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkBlocked(RuntimeError):
    """A test tried to reach beyond loopback.

    Deliberately not an ``OSError``: code that handles network failures must not be able
    to mistake it for one and carry on.
    """


def _is_local_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _is_local_address(address: Any) -> bool:
    """Unix socket paths and loopback (host, port, ...) tuples are local."""
    if isinstance(address, str | bytes):
        return True
    return isinstance(address, tuple) and bool(address) and _is_local_host(address[0])


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    blocked: list[str] = []

    def refuse(what: str) -> NetworkBlocked:
        blocked.append(what)
        return NetworkBlocked(f"tests may not reach beyond loopback: {what}")

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_local_address(address):
            raise refuse(f"connect to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local_address(address):
            raise refuse(f"connect_ex to {address!r}")
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not _is_local_address(address):
            raise refuse(f"create_connection to {address!r}")
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # a lookup of another host would wait on DNS before the connect guard could fail it
        if host is not None and not _is_local_host(host):
            raise refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    if blocked:
        pytest.fail(f"the test tried to reach beyond loopback: {'; '.join(blocked)}")


class RedisServer:
    """A private ``redis-server`` on a free loopback port, stoppable for outage tests."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start the server (again, on the same port) and return once it answers PING."""
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not installed; the Redis tests need a real one")
        self._process = subprocess.Popen(
            [
                executable,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                *("--dir", str(self._workdir), "--logfile", "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        self._wait_for_ping()

    def stop(self) -> None:
        """Stop the server and reap it; clients then see connection errors."""
        if self._process is None:
            return
        self._process.terminate()
        self._process.wait(timeout=10)
        self._process = None

    def _wait_for_ping(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise
                    time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of the private server, with an empty database.

    A test that stopped the server and failed before starting it again must not break the
    tests after it, so a stopped server is started first.
    """
    if not redis_server.running:
        redis_server.start()
    client = redis.asyncio.Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


HttpHandler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
async def mock_http() -> AsyncIterator[Callable[[HttpHandler], httpx.AsyncClient]]:
    """Real ``httpx.AsyncClient``s whose transport is a handler: no socket, no server.

    ``client = mock_http(handler)``; every client made is closed after the test.
    """
    clients: list[httpx.AsyncClient] = []

    def client_for(handler: HttpHandler) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        await client.aclose()
