"""The rabbitmq source against a real RabbitMQ node with its management plugin, started
for these tests on free ports in a folder of their own (a second node beside any the
machine runs). Messages are published through the management API, as its docs show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scalerd.clock import ManualClock
from scalerd.errors import SourceError
from scalerd.plugins import BuildContext, Source
from scalerd.sources.rabbitmq import PLUGIN, RabbitMQConfig

pytestmark = pytest.mark.slow  # a node takes ~10 s to boot

# each node's pid file, by its management URL (the overloaded-node test pauses the node)
PID_FILES: dict[str, Path] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[str]:
    """The management API's URL of a private node (skipped, saying why, where none runs)."""
    server = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
    if not os.path.exists(server):
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    # its own folder outside pytest's (whose parents only root may enter)
    home = Path(tempfile.mkdtemp(prefix="scalerd-rabbitmq-"))
    amqp, management, dist = _free_port(), _free_port(), _free_port()
    (home / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (home / "rabbit.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{amqp}\nmanagement.tcp.port = {management}\n"
        "management.tcp.ip = 127.0.0.1\ncollect_statistics_interval = 500\n"
    )
    try:  # the packaged script runs the node as the rabbitmq user: let it write here
        account = pwd.getpwnam("rabbitmq")
        for path in (home, *home.rglob("*")):
            os.chown(path, account.pw_uid, account.pw_gid)
    except (KeyError, PermissionError):
        pass
    node = f"scalerd{amqp}@localhost"
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbit"),
        "RABBITMQ_PID_FILE": str(home / "pid"),
    }
    with (home / "out.log").open("w") as log:  # the node keeps its own copy of the file
        process = subprocess.Popen([server], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{management}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/overview", auth=("guest", "guest"), timeout=2).is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        process.kill()
        pytest.skip(
            f"a RabbitMQ node could not start here: {(home / 'out.log').read_text()[-400:]}"
        )
    PID_FILES[url] = home / "pid"
    yield url
    subprocess.run(["rabbitmqctl", "-n", node, "stop"], env=env, capture_output=True, timeout=60)
    if process.poll() is None:
        process.kill()
    process.wait(30)


def api(url: str, method: str, path: str, body: Any = None) -> httpx.Response:
    response = httpx.request(method, url + path, json=body, auth=("guest", "guest"), timeout=10)
    response.raise_for_status()
    return response


def queue_with(url: str, name: str, messages: int) -> None:
    api(url, "PUT", f"/api/queues/%2F/{name}", {"durable": False, "auto_delete": False})
    for index in range(messages):
        api(url, "POST", "/api/exchanges/%2F/amq.default/publish", {
            "properties": {}, "routing_key": name, "payload": f"job {index}", "payload_encoding": "string",
        })  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def source(http: httpx.AsyncClient, url: str, **keys: Any) -> Source:
    config = RabbitMQConfig.model_validate({"kind": "rabbitmq", "name": "jobs", "url": url, **keys})
    return PLUGIN.build(config, BuildContext(http=http, clock=ManualClock()))


async def settled(reader: Source, expected: float) -> float:
    """The broker counts every half second (collect_statistics_interval): read until it has."""
    deadline = time.monotonic() + 20
    value = -1.0
    while time.monotonic() < deadline:
        try:
            value = (await reader.read())[0].value
        except SourceError:  # a queue declared a moment ago is not counted yet
            value = -1.0
        if value == expected:
            break
        await asyncio.sleep(0.2)
    return value


async def test_queue_length_of_several_queues_summed_or_the_largest(
    rabbitmq: str, http: httpx.AsyncClient
) -> None:
    queue_with(rabbitmq, "orders", 7)
    queue_with(rabbitmq, "refunds", 3)
    assert await settled(source(http, rabbitmq, queues=["orders", "refunds"]), 10.0) == 10.0
    largest = source(http, rabbitmq, queues=["orders", "refunds"], combine="max")
    assert await settled(largest, 7.0) == 7.0
    ready = source(http, rabbitmq, queues=["orders"], measure="ready")
    assert await settled(ready, 7.0) == 7.0


async def test_publish_rate_is_read_and_an_idle_queue_reads_zero(
    rabbitmq: str, http: httpx.AsyncClient
) -> None:
    queue_with(rabbitmq, "idle", 0)
    assert (
        await settled(source(http, rabbitmq, queues=["idle"], measure="publish_rate"), 0.0) == 0.0
    )
    queue_with(rabbitmq, "busy", 0)
    busy = source(http, rabbitmq, queues=["busy"], measure="publish_rate")
    stop = threading.Event()

    def publish() -> None:  # a steady trickle: the broker's rate is of the last seconds
        while not stop.is_set():
            queue_with(rabbitmq, "busy", 1)
            time.sleep(0.05)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        deadline, rate = time.monotonic() + 30, 0.0
        while rate == 0.0 and time.monotonic() < deadline:
            with contextlib.suppress(SourceError):
                rate = (await busy.read())[0].value
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        publisher.join(10)
    assert rate > 0.0


async def test_a_missing_queue_fails_the_read_and_is_never_zero(
    rabbitmq: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(SourceError, match="no queue 'nope' in vhost '/' \\(absent, not empty\\)"):
        await source(http, rabbitmq, queues=["nope"]).read()


async def test_a_wrong_password_fails_without_showing_it(
    rabbitmq: str, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RABBIT_PASSWORD", "not-the-password-4d1f")
    reader = source(http, rabbitmq, queues=["orders"], password_env="RABBIT_PASSWORD")
    with pytest.raises(SourceError) as failure:
        await reader.read()
    assert "wrong password" in str(failure.value) and "4d1f" not in str(failure.value)


async def test_a_node_too_busy_to_answer_fails_the_read_within_its_timeout(
    rabbitmq: str, http: httpx.AsyncClient
) -> None:
    """An overloaded node stops answering rather than throttling: the read fails in words
    after `timeout` (never a zero), and the next read after the node recovers succeeds."""
    queue_with(rabbitmq, "frozen-node", 2)
    reader = source(http, rabbitmq, queues=["frozen-node"], timeout="1s")
    assert await settled(reader, 2.0) == 2.0
    pid = int(PID_FILES[rabbitmq].read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)  # the node's VM, frozen as by a long GC or a starved host
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="rabbitmq management API unreachable: ReadTimeout"):
            await reader.read()
        assert time.monotonic() - started < 10
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await settled(reader, 2.0) == 2.0


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(ValueError, match="do not put credentials in the URL"):
        RabbitMQConfig.model_validate(
            {
                "kind": "rabbitmq",
                "name": "q",
                "url": "http://guest:guest@rabbit:15672",
                "queues": ["a"],
            }
        )
