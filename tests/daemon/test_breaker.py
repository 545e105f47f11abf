"""A circuit breaker through the daemon: the dependency's connection use read from an HTTP
endpoint on loopback (the ``http-json`` source), the demand from a replay; the held
scale-out in the audit record, the breaker's state in the state store across a restart,
and the step in ``scalerd explain`` and on the page's state badge."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from scalerd.actuators.recording import RecordingActuator
from scalerd.cli import main
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

from .build import write_config


class Dependency:
    """The database's metrics endpoint: ``{"connections": {"use": x}}``, x settable."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.use = 0.5
        self._runner: web.AppRunner | None = None

    async def _answer(self, _request: web.Request) -> web.Response:
        return web.json_response({"connections": {"use": self.use}})

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Dependency]:
        app = web.Application()
        app.router.add_get("/metrics", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await self._runner.cleanup()


def body(port: int) -> str:
    return f"""
[[sources]]
name = "demand"
kind = "replay"
values = [70, 70, 70, 70, 70, 70, 70, 70]
step = "15s"

[[sources]]
name = "orders-db"
kind = "http-json"
url = "http://127.0.0.1:{port}/metrics"
path = "connections.use"

[[actuators]]
name = "pool"
kind = "recording"
initial = 4

[[targets]]
name = "api"
actuator = "pool"
max = 20
metrics = {{ "connection use" = "orders-db" }}
[[targets.track]]
metric = "demand"
type = "total"
target = 10
[[targets.breaker]]
name = "orders-db"
metric = "connection use"
open_when = {{ above = 0.95 }}
close_when = {{ below = 0.8, for = "30s" }}
"""


def actuator_of(daemon: Daemon) -> RecordingActuator:
    actuator = daemon.runtimes["api"].actuator  # type: ignore[attr-defined]
    assert isinstance(actuator, RecordingActuator)
    return actuator


async def test_an_open_breaker_holds_scale_out_through_the_daemon(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    dependency = Dependency()
    config = write_config(tmp_path, body(dependency.port))
    async with dependency.serving():
        dependency.use = 0.97
        async with Daemon(config, clock=manual_clock) as daemon:
            [held] = await daemon.run_once()
            manual_clock.advance(15)
            [still] = await daemon.run_once()

        # a restart keeps the breaker open: its state is in the state store
        dependency.use = 0.5
        async with Daemon(config, clock=manual_clock) as daemon:
            manual_clock.advance(15)
            [healthy] = await daemon.run_once()  # healthy: the 30 s hold starts
            manual_clock.advance(30)
            [closed] = await daemon.run_once()

    assert (held.action, held.recommended, held.desired) == ("held", 7, 4)
    assert held.not_scaled_reason == "BreakerOpen"
    step = next(step for step in held.steps if step["code"] == "breaker")
    assert step["before"] == 7 and step["after"] == 4 and step["holds_as"] == "BreakerOpen"
    assert step["detail"] == (
        "breaker orders-db opened: connection use 0.97 > 0.95; scale-out 4→7 held at 4"
    )
    assert step["data"]["open"] is True and step["data"]["value"] == 0.97
    reading = next(report for report in held.inputs if report["metric"] == "connection use")
    assert (reading["source"], reading["value"]) == ("orders-db", 0.97)
    assert still.action == "held" and "since" in still.steps[-1]["detail"]

    assert healthy.action == "held" and "0.5 < 0.8 for 0s of 30s" in healthy.steps[-1]["detail"]
    assert (closed.action, closed.desired) == ("scaled", 7)
    assert "breaker orders-db closed" in closed.steps[-1]["detail"]

    # scalerd explain on the audit file: the held step, in words and numbers
    # (in a thread: the command runs its own event loop)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await asyncio.to_thread(main, ["explain", "api", "--config", str(config)]) == 0
    words = " ".join(out.getvalue().split())
    assert "breaker orders-db closed: connection use 0.5 < 0.8 for 30s" in words


async def test_the_page_shows_an_open_breaker(tmp_path: Path, manual_clock: ManualClock) -> None:
    from scalerd.audit import AuditRecord
    from scalerd.web.describe import target_info
    from scalerd.web.model import state_of

    dependency = Dependency()
    config = write_config(tmp_path, body(dependency.port))
    async with dependency.serving():
        dependency.use = 0.99
        async with Daemon(config, clock=manual_clock) as daemon:
            [record] = await daemon.run_once()
            target = daemon.config.target("api")
            assert actuator_of(daemon).calls == []  # nothing applied while held

    assert isinstance(record, AuditRecord)
    info = target_info(target, last=record)
    state = state_of(info, None, manual_clock.now())
    assert (state.name, state.detail) == ("breaker open", "orders-db")
    # the breaker's threshold is one of the lines the page draws under its metric
    assert any(line.metric == "connection use" and line.value == 0.95 for line in info.thresholds)
