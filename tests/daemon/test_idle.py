"""What an idle daemon costs: it loads only the SDKs of the kinds its config uses, and
its target loops share their wake-ups."""

from __future__ import annotations

import asyncio
import json
import random
import selectors
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scalerd.daemon.app import Daemon
from scalerd.daemon.loop import TargetLoop, slack_of

from .build import replay_target, write_config

# what a daemon that reads a replay and scales a recording pool has no use for
HEAVY = (
    "azure.eventhub",
    "azure.identity",
    "azure.mgmt",
    "azure.monitor",
    "azure.servicebus",
    "azure.storage",
    "kubernetes_asyncio",
)

# runs the CLI in this process, then says which modules it had loaded
PROBE = """
import json, sys
from scalerd.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(tmp_path: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    modules: list[str] = result["modules"]
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.startswith(HEAVY)]


def test_a_run_with_replay_and_recording_loads_no_cloud_sdk(tmp_path: Path) -> None:
    path = write_config(tmp_path, replay_target((4, 8)))

    modules = _loaded(tmp_path, "run", "--once", "--config", str(path))

    assert "scalerd.sources.replay" in modules and "scalerd.actuators.recording" in modules
    assert _heavy(modules) == []
    assert not [name for name in modules if name.startswith("scalerd.actuators.azure")]


def test_check_loads_the_sdk_of_a_kind_the_config_uses(tmp_path: Path) -> None:
    kubernetes = """
[[actuators]]
name = "web"
kind = "kubernetes"
namespace = "shop"
workload = "web"
"""
    body = replay_target((4, 8)) + kubernetes
    path = write_config(tmp_path, body.replace('actuator = "pool"', 'actuator = "web"'))

    modules = _loaded(tmp_path, "check", "--config", str(path))

    assert "scalerd.actuators.kubernetes" in modules
    assert [name for name in _heavy(modules) if name.startswith("kubernetes_asyncio")]
    assert not [name for name in _heavy(modules) if name.startswith("azure")]


class CountingSelector(selectors.DefaultSelector):
    """Counts the times the event loop went to sleep: its wake-ups."""

    sleeps = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            self.sleeps += 1
        return super().select(timeout)


def test_target_loops_due_together_wake_the_event_loop_together() -> None:
    targets, rounds, interval, jitter = 100, 4, 0.9, 0.5
    evaluations = dict.fromkeys(range(targets), 0)
    selector = CountingSelector()

    async def main() -> None:
        done = asyncio.Event()  # set by the last evaluation: waiting for it wakes nobody

        def evaluate(target: int) -> Callable[[], Awaitable[None]]:
            async def once() -> None:
                evaluations[target] += 1
                if min(evaluations.values()) >= rounds:
                    done.set()

            return once

        rng = random.Random(7)
        loops = [
            TargetLoop(str(target), evaluate(target), interval, jitter, rng=rng)
            for target in range(targets)
        ]
        for loop in loops:
            loop.start()
        await done.wait()
        for loop in loops:
            await loop.stop(grace=1.0)

    loop = asyncio.SelectorEventLoop(selector)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()

    # the first polls are spread over jitter * interval: that many grid steps per round,
    # each one wake-up for every target due in it (100 without the grid)
    steps = int(jitter * interval / slack_of(interval)) + 2
    assert selector.sleeps <= steps * (rounds + 1), selector.sleeps
    assert min(evaluations.values()) >= rounds


def test_a_switched_off_config_watch_sleeps_until_a_reload_switches_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scalerd.daemon.app

    monkeypatch.setattr(scalerd.daemon.app, "CONFIG_POLL_S", 0.02)
    # one evaluation at start, the next a minute later: nothing else wakes the daemon
    path = write_config(tmp_path, replay_target((4, 8), interval="60s"))
    path.write_text(path.read_text().replace("[daemon]\n", "[daemon]\njitter = 0\n"))
    selector = CountingSelector()

    async def main() -> tuple[int, int]:
        async with Daemon(path) as daemon:
            serving = asyncio.create_task(daemon.serve())
            async with asyncio.timeout(30):
                while daemon.runtimes["api"].last_record is None:
                    await asyncio.sleep(0.01)
            before = selector.sleeps
            await asyncio.sleep(0.5)  # 25 polls, were the watch polling
            asleep = selector.sleeps - before
            # a reload (SIGHUP) that switches the watch on: it then sees the next change
            path.write_text(path.read_text().replace("watch_config = false", "watch_config = true"))
            assert await daemon.reload()
            path.write_text(path.read_text().replace("max = 8", "max = 7"))
            async with asyncio.timeout(30):
                while daemon.config.targets[0].spec.rule.maximum != 7:
                    await asyncio.sleep(0.02)
            reloads = daemon.metrics.reloads.labels("applied")._value.get()
            daemon.stop()
            await serving
            return asleep, int(reloads)

    loop = asyncio.SelectorEventLoop(selector)
    try:
        asleep, reloads = loop.run_until_complete(main())
    finally:
        loop.close()

    assert asleep <= 3, asleep  # the test's own sleep, and what the server may do
    assert reloads == 2  # the one asked for, and the one the watch made
