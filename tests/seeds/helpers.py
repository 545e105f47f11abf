"""What every seed test shares: load a seed's files the way ``scalerd check`` does, replay
them on the shared trace with ``scalerd simulate``'s own loop, read what the replay did,
and run a seed's config through the daemon on a manual clock with its notifications
delivered to a webhook receiver on loopback.

The shared trace is the one the repository vendors (``scalerd/data``), so the tests do
not depend on ``../shared``: a day of Alibaba's cluster CPU, one row a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import tomlkit
from aiohttp import web

from scalerd.audit import AuditRecord
from scalerd.cli import main
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon
from scalerd.simulate.run import Timeline, simulate
from scalerd.simulate.scenario import Scenario, load_scenario
from scalerd.traces import Trace, load_trace

__all__ = [
    "RULES",
    "SEEDS",
    "SHARED_TRACE",
    "Action",
    "Receiver",
    "Replay",
    "actions",
    "check",
    "daemon_config",
    "drive",
    "replay",
    "shared_trace",
]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SEEDS = ROOT / "examples" / "seeds"
SHARED_TRACE = ROOT / "scalerd" / "data" / "alibaba2018_cluster_cpu_day.csv"


@cache
def shared_trace() -> Trace:
    return load_trace(SHARED_TRACE)


def check(path: Path, *, rule_file: bool = False) -> str:
    """``scalerd check`` on ``path`` (a config, or a rule file); fails the test unless it
    exits 0, and returns what it printed."""
    out, err = io.StringIO(), io.StringIO()
    args = ["check", "--config", str(path), *(["--rule-file"] if rule_file else [])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 0, f"scalerd check {path}: exit {code}\n{err.getvalue()}{out.getvalue()}"
    return out.getvalue()


@dataclass(frozen=True)
class Replay:
    scenario: Scenario
    timeline: Timeline

    @property
    def rule(self) -> Any:
        return self.scenario.spec.rule

    def at(self, tick: int) -> datetime:
        """The wall-clock time of ``tick`` (``[simulate] start`` is the trace's first row)."""
        return self.scenario.settings.start + tick * self.scenario.interval

    def within_bounds(self) -> bool:
        """Every tick's capacity inside the bounds in force at that tick."""
        low, high = self.timeline.minimum, self.timeline.maximum
        assert low is not None and high is not None
        return all(
            low[i] <= self.timeline.provisioned[i] <= high[i] for i in range(len(self.timeline))
        )


def replay(
    path: Path, *, target: str | None = None, trace: Trace | None = None, **overrides: Any
) -> Replay:
    """``path`` (a rule file or a config) replayed on ``trace`` (default: the shared one),
    with ``overrides`` of its ``[simulate]`` settings, as ``scalerd simulate`` does."""
    scenario = load_scenario(path, target=target, overrides=overrides)
    return Replay(scenario, simulate(scenario, trace or shared_trace()))


@dataclass(frozen=True)
class Action:
    """A change of provisioned capacity (on a ladder: of the tier position asked for)."""

    tick: int
    seconds: float
    before: int
    after: int


def actions(timeline: Timeline) -> list[Action]:
    changes = []
    before = timeline.initial
    for tick, after in enumerate(timeline.provisioned):
        if after != before:
            changes.append(Action(tick, timeline.time(tick), before, after))
        before = after
    return changes


# --- the daemon on a manual clock, notifications to loopback ------------------------------


class Receiver:
    """A webhook receiver on a free loopback port: keeps every CloudEvent POSTed to it."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.events.append(json.loads(await request.read()))
        self._arrived.set()
        return web.Response(status=200)

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == f"io.scalerd.{kind}"]


def daemon_config(
    shipped: Path,
    directory: Path,
    traces: Mapping[str, Sequence[float] | Path],
    *,
    step: str = "60s",
    initial: Mapping[str, int] | None = None,
) -> Path:
    """The shipped config ``shipped`` made runnable on this machine: its ``[[targets]]``
    (with the rule files they include) and its ``[[notify]]`` entries as shipped; each
    source replaced by a replay of ``traces[name]`` (values one every ``step``, or a CSV)
    and each actuator by a recording one of the same name, starting at ``initial[name]``
    (default: its target's min). The audit, state and outbox go to ``directory``."""
    document = tomlkit.parse(shipped.read_text())
    sources = tomlkit.aot()
    for entry in document.get("sources", []):
        name = str(entry["name"])
        replayed = tomlkit.table()
        replayed.update({"name": name, "kind": "replay", "loop": False})
        trace = traces[name]
        if isinstance(trace, Path):
            replayed["path"] = str(trace)
        else:
            replayed.update({"values": [float(v) for v in trace], "step": step})
        sources.append(replayed)
    document["sources"] = sources
    starts = {str(t["actuator"]): int(t.get("min", 1)) for t in document.get("targets", [])}
    actuators = tomlkit.aot()
    for entry in document.get("actuators", []):
        name = str(entry["name"])
        recording = tomlkit.table()
        recording.update(
            {"name": name, "kind": "recording", "initial": (initial or {}).get(name, starts[name])}
        )
        actuators.append(recording)
    document["actuators"] = actuators
    for target in document.get("targets", []):
        if "rules" in target:
            target["rules"] = str((shipped.parent / str(target["rules"])).resolve())
    document["daemon"] = {"listen": "127.0.0.1:0", "watch_config": False, "jitter": 0}
    document["audit"] = {"sink": "jsonl", "path": str(directory / "audit" / "audit.jsonl")}
    document["state"] = {"store": "sqlite", "path": str(directory / "state" / "state.db")}
    for key in ("redis", "cluster", "azure"):
        document.pop(key, None)
    path = directory / "config.toml"
    path.write_text(tomlkit.dumps(document))
    return path


@dataclass
class Driven:
    records: list[AuditRecord] = field(default_factory=list)

    def of(self, target: str) -> list[AuditRecord]:
        return [record for record in self.records if record.target == target]


async def drive(
    config: Path, ticks: int, step: timedelta, *, start: datetime | None = None
) -> Driven:
    """Run the daemon on ``config`` for ``ticks`` evaluations of every target, ``step``
    apart on a manual clock (``scalerd run --once`` each time); its notifier delivers in
    the background, as ``scalerd run`` does. The records of every evaluation, in order."""
    clock = ManualClock(start) if start is not None else ManualClock()
    driven = Driven()
    async with Daemon(config, clock=clock) as daemon:
        assert daemon.notifier is not None, "the config has no [[notify]] entry"
        daemon.notifier.start()
        for _ in range(ticks):
            driven.records.extend(await daemon.run_once())
            clock.advance(step)
        # every notice the records gave rise to delivered before the daemon closes
        async with asyncio.timeout(20):
            while daemon.notifier.backlog():
                await asyncio.sleep(0.05)
    return driven


def targets_of(events: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, subject) of each event, in arrival order."""
    return [(event["type"].removeprefix("io.scalerd."), event["subject"]) for event in events]


@contextlib.asynccontextmanager
async def receiving(monkeypatch: Any, url_env: str, secret_env: str) -> AsyncIterator[Receiver]:
    """A receiver, with ``url_env`` pointing at it and ``secret_env`` holding a test key."""
    async with Receiver() as receiver:
        monkeypatch.setenv(url_env, receiver.url)
        monkeypatch.setenv(secret_env, "seed-test-signing-key")
        yield receiver
