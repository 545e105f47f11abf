"""A daemon with three targets and one endpoint per event kind, served on loopback, whose
audit records are collected as they are written."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scalerd.audit import AuditRecord
from scalerd.daemon.app import Daemon

WIRE = Path(__file__).parent / "wire"  # copied from shared/wire_events (INDEX.md: sources)
SECRET = "s3cret-value-for-tests"
SECRETS = {"SCALERD_TEST_ALERTS": SECRET, "SCALERD_TEST_GRID": SECRET, "SCALERD_TEST_APPS": SECRET}

TARGETS = """
[[sources]]
name = "cpu"
kind = "replay"
values = [50.0]
step = "60s"

[[sources]]
name = "depth"
kind = "replay"
values = [10.0]
step = "60s"

[[actuators]]
name = "web-pool"
kind = "recording"
initial = 2

[[actuators]]
name = "worker-pool"
kind = "recording"
initial = 1

[[actuators]]
name = "ingest-pool"
kind = "recording"
initial = 1

[[targets]]
name = "web"
actuator = "web-pool"
interval = "1h"
max = 50
[[targets.track]]
metric = "cpu"
type = "utilization"
target = 50

[[targets]]
name = "workers"
actuator = "worker-pool"
interval = "1h"
max = 50
{gap}
[[targets.track]]
metric = "depth"
type = "total"
target = 10

[[targets]]
name = "ingest"
actuator = "ingest-pool"
interval = "1h"
max = 50
[[targets.track]]
metric = "depth"
type = "total"
target = 10
"""

ENDPOINTS = """
[[events]]
name = "alerts"
kind = "azure-monitor-alert"
secret_env = "SCALERD_TEST_ALERTS"
targets = ["web", "workers"]
metric = "cpu"
[[events.match]]
target = "web"
type = "Metric"
[[events.match]]
target = "web"
rule = "test-activityLogAlertRule"
[[events.match]]
target = "workers"
type = "Log"

[[events]]
name = "grid"
kind = "event-grid"
secret_env = "SCALERD_TEST_GRID"
targets = ["workers", "ingest"]
allowed_rate = 100
[[events.match]]
target = "workers"
type = "Microsoft.ServiceBus.*"
[[events.match]]
target = "ingest"
type = "Microsoft.Storage.BlobCreated"
[[events.match]]
target = "ingest"
type = "Microsoft.Resources.ResourceWriteSuccess"

[[events]]
name = "apps"
kind = "cloudevents"
secret_env = "SCALERD_TEST_APPS"
targets = ["workers"]
metric = "depth"
value_field = "data.appinfoB"
allowed_rate = 100
"""


def config_text(*, gap: str | None = None, extra: str = "", header: str = "") -> str:
    daemon = textwrap.dedent(
        """\
        [daemon]
        listen = "127.0.0.1:0"
        shutdown_grace = "3s"
        watch_config = false
        jitter = 0
        """
    )
    state = '\n[audit]\npath = "audit/audit.jsonl"\n\n[state]\npath = "state/state.json"\n'
    targets = TARGETS.replace("{gap}", f'min_event_gap = "{gap}"' if gap else "")
    return daemon + header + state + targets + ENDPOINTS + extra


@dataclass
class Served:
    daemon: Daemon
    url: str
    http: httpx.AsyncClient
    records: list[AuditRecord] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def event_records(self, target: str | None = None) -> list[AuditRecord]:
        return [
            r
            for r in self.records
            if r.trigger and r.trigger["type"] == "event" and target in (None, r.target)
        ]

    async def wait_for(
        self, predicate: Callable[[list[AuditRecord]], bool], timeout: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.records):
                self._changed.clear()
                await self._changed.wait()

    async def settled(self) -> None:
        """Until no evaluation is queued or running (every target's interval is an hour,
        so nothing else starts one)."""
        async with asyncio.timeout(10):
            while any(c.queued is not None for c in self.daemon._coalescers.values()) or any(
                runtime.lock.locked() for runtime in self.daemon.runtimes.values()
            ):
                await asyncio.sleep(0.005)

    def post(self, endpoint: str, body: bytes, **headers: str) -> Any:
        return self.http.post(
            f"/events/{endpoint}",
            content=body,
            headers={"X-Scalerd-Secret": SECRET, **headers},
        )


@asynccontextmanager
async def served(directory: Path, text: str) -> AsyncIterator[Served]:
    path = directory / "config.toml"
    path.write_text(text)
    async with Daemon(path) as daemon:
        records: list[AuditRecord] = []
        changed = asyncio.Event()
        emit = daemon.audit.emit

        async def recording_emit(record: AuditRecord) -> None:
            await emit(record)
            records.append(record)
            changed.set()

        daemon.audit.emit = recording_emit  # type: ignore[method-assign]
        emit_many = getattr(daemon.audit, "emit_many", None)

        async def recording_emit_many(batch: list[AuditRecord]) -> None:  # polls due together
            assert emit_many is not None
            await emit_many(batch)
            records.extend(batch)
            changed.set()

        if emit_many is not None:
            daemon.audit.emit_many = recording_emit_many  # type: ignore[attr-defined]
        task = asyncio.create_task(daemon.serve())
        while daemon.listening_on is None:
            await asyncio.sleep(0.01)
        host, port = daemon.listening_on
        url = f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            result = Served(daemon, url, http, records, changed)
            # the first (poll) evaluation of every target, before any event
            await result.wait_for(lambda records: len(records) >= len(daemon.runtimes))
            try:
                yield result
            finally:
                daemon.stop()
                await asyncio.wait_for(task, 10)
