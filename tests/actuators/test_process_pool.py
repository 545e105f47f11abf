"""The process-pool actuator with real processes.

Graces and backoffs are sub-second. ``until`` only bounds a wait so that a broken pool
fails the test instead of hanging it; no test asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scalerd.actuators.process_pool import PLUGIN, ProcessPool, ProcessPoolConfig
from scalerd.clock import Clock, ManualClock, SystemClock
from scalerd.core.model import Capacity, Decision
from scalerd.errors import ActuatorError
from scalerd.plugins import BuildContext

REPO = Path(__file__).resolve().parents[2]
DEMO_WORKER = (sys.executable, "-m", "scalerd.demo_worker", "--duty", "0.05")
# ignores SIGTERM: touches argv[2] when it gets one, after touching argv[1] once it is set up
STUBBORN_WORKER = (
    sys.executable,
    "-c",
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: pathlib.Path(sys.argv[2]).touch())\n"
    "pathlib.Path(sys.argv[1]).touch()\n"
    "while True: time.sleep(1)\n",
)


def decision(desired: int) -> Decision:
    return Decision(
        target="workers",
        at=SystemClock().now(),
        current=Capacity.steady(0),
        recommended=desired,
        desired=desired,
        steps=(),
        inputs=(),
        rules=(),
        not_scaled_reason=None,
    )


def reaped(pid: int) -> bool:
    """Gone for good: exited *and* waited for, so not even a zombie is left."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def catches(pid: int, signum: int) -> bool:
    """Whether the process has installed a handler for ``signum`` (from Linux's /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


PoolFactory = Callable[..., ProcessPool]


@pytest.fixture
async def make_pool(tmp_path: Path) -> AsyncIterator[PoolFactory]:
    """Builds pools through the plugin (base_dir = tmp_path) and closes them after the test."""
    pools: list[ProcessPool] = []

    def make(
        command: tuple[str, ...] = DEMO_WORKER, clock: Clock | None = None, **keys: Any
    ) -> ProcessPool:
        settings = {
            "command": command,
            "env": {"PYTHONPATH": str(REPO)},
            "stop_grace": "500ms",
            "restart_backoff": "50ms",
            **keys,
        }
        config = ProcessPoolConfig(kind="process-pool", name="workers", **settings)
        ctx = BuildContext(base_dir=tmp_path, clock=clock or SystemClock())
        pool = PLUGIN.build(config, ctx)
        assert isinstance(pool, ProcessPool)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()


async def test_scales_out_and_in_stopping_the_newest_first(make_pool: PoolFactory) -> None:
    pool = make_pool()
    assert await pool.current() == Capacity(provisioned=0, ready=0)  # adopts nothing

    await pool.apply(decision(3))
    assert await pool.current() == Capacity(provisioned=3, ready=3)
    oldest, *newer = pool.pids
    assert len(set(pool.pids)) == 3

    await pool.apply(decision(1))
    assert await pool.current() == Capacity(provisioned=1, ready=1)  # stopping ones are gone
    assert pool.pids == (oldest,)
    await until(lambda: all(reaped(pid) for pid in newer))

    await pool.apply(decision(0))
    assert await pool.current() == Capacity(provisioned=0, ready=0)
    await until(lambda: reaped(oldest))


async def test_a_worker_is_ready_after_ready_after(make_pool: PoolFactory) -> None:
    clock = ManualClock()
    pool = make_pool(clock=clock, ready_after="10s")

    await pool.apply(decision(2))

    assert await pool.current() == Capacity(provisioned=2, ready=0)
    clock.advance(10)
    assert await pool.current() == Capacity(provisioned=2, ready=2)


async def test_a_crashed_worker_is_restarted_and_counted(make_pool: PoolFactory) -> None:
    pool = make_pool(restart_backoff="300ms")
    await pool.apply(decision(1))
    (crashed,) = pool.pids

    os.kill(crashed, signal.SIGKILL)
    await until(lambda: pool.pids == ())  # its supervisor saw it exit
    # waiting out its backoff, the worker is still asked for, but not serving
    assert await pool.current() == Capacity(provisioned=1, ready=0)

    await until(lambda: len(pool.pids) == 1)
    assert reaped(crashed)
    assert pool.restarts == 1
    assert await pool.current() == Capacity(provisioned=1, ready=1)


async def test_scale_in_does_not_wait_for_a_worker_that_ignores_sigterm(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    started, got_sigterm = tmp_path / "started", tmp_path / "got-sigterm"
    pool = make_pool((*STUBBORN_WORKER, str(started), str(got_sigterm)))
    await pool.apply(decision(1))
    (pid,) = pool.pids
    await until(started.exists)

    await pool.apply(decision(0))

    assert not reaped(pid)  # apply returned without waiting out the grace
    assert await pool.current() == Capacity(provisioned=0, ready=0)
    await until(got_sigterm.exists)  # SIGTERM first ...
    await until(lambda: reaped(pid))  # ... then SIGKILL, the only way this worker ends


async def test_aclose_stops_and_reaps_every_worker(make_pool: PoolFactory, tmp_path: Path) -> None:
    started, got_sigterm = tmp_path / "started", tmp_path / "got-sigterm"
    polite = make_pool()
    stubborn = make_pool((*STUBBORN_WORKER, str(started), str(got_sigterm)))
    await polite.apply(decision(2))
    await stubborn.apply(decision(1))
    await until(started.exists)
    pids = polite.pids + stubborn.pids

    await polite.aclose()
    await stubborn.aclose()

    assert [pid for pid in pids if not reaped(pid)] == []
    assert got_sigterm.exists()  # the stubborn one was asked before it was killed
    assert await polite.current() == Capacity(provisioned=0, ready=0)
    with pytest.raises(ActuatorError, match="is closed"):
        await polite.apply(decision(1))


async def test_scaling_in_right_after_scaling_out_stops_the_new_workers(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool()
    await pool.apply(decision(2))
    pids = pool.pids

    await pool.apply(decision(0))  # before their supervisors have even run
    await pool.aclose()

    assert [pid for pid in pids if not reaped(pid)] == []


async def test_runs_the_command_in_cwd_with_env(make_pool: PoolFactory, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    script = (
        "import os, pathlib, time\n"
        "pathlib.Path('out').write_text(os.environ['COLOR'])\n"
        "time.sleep(60)\n"
    )
    pool = make_pool((sys.executable, "-c", script), cwd="work", env={"COLOR": "blue"})

    await pool.apply(decision(1))

    await until((tmp_path / "work" / "out").exists)
    await until(lambda: (tmp_path / "work" / "out").read_text() == "blue")


async def test_each_worker_has_a_slot_of_its_own_freed_once_it_is_gone(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    # each worker writes its slot to a file named after its pid
    script = (
        "import os, pathlib, time\n"
        "pathlib.Path(f'slot-{os.getpid()}').write_text(os.environ['SCALERD_WORKER_SLOT'])\n"
        "time.sleep(60)\n"
    )
    pool = make_pool((sys.executable, "-c", script))

    def slots() -> dict[int, str]:
        found = {}
        for pid in pool.pids:
            path = tmp_path / f"slot-{pid}"
            if path.exists() and path.read_text():
                found[pid] = path.read_text()
        return found

    await pool.apply(decision(3))
    await until(lambda: len(slots()) == 3)
    assert sorted(slots().values()) == ["0", "1", "2"]

    stopped = pool.pids[1:]  # the newest two: slots 1 and 2
    await pool.apply(decision(1))
    await pool.apply(decision(2))  # while they are still stopping: 1 and 2 are taken
    await until(lambda: len(slots()) == 2)
    assert sorted(slots().values()) == ["0", "3"]
    await until(lambda: all(reaped(pid) for pid in stopped))

    await pool.apply(decision(3))  # once they are gone, the lowest free slot again
    await until(lambda: len(slots()) == 3)
    assert sorted(slots().values()) == ["0", "1", "3"]


async def test_a_command_that_cannot_start_is_an_actuator_error(make_pool: PoolFactory) -> None:
    pool = make_pool(("/nonexistent/worker",))

    with pytest.raises(ActuatorError, match="cannot start '/nonexistent/worker'"):
        await pool.apply(decision(2))
    assert await pool.current() == Capacity(provisioned=0, ready=0)


def test_build_with_a_missing_cwd_fails(tmp_path: Path) -> None:
    config = ProcessPoolConfig(kind="process-pool", name="w", command=("true",), cwd="nowhere")

    with pytest.raises(ValueError, match="is not a directory"):
        PLUGIN.build(config, BuildContext(base_dir=tmp_path))


async def test_the_demo_worker_exits_cleanly_on_sigterm() -> None:
    worker = await asyncio.create_subprocess_exec(
        *DEMO_WORKER, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    try:
        await until(lambda: catches(worker.pid, signal.SIGTERM))
        worker.terminate()
        assert await worker.wait() == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"command": []}, "at least 1 item", id="empty command"),
        pytest.param({"stop_grace": 5}, "needs a unit", id="bare number grace"),
        pytest.param({"replicas": 2}, "Extra inputs are not permitted", id="unknown key"),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProcessPoolConfig(**{"kind": "process-pool", "name": "w", "command": ["true"], **keys})
