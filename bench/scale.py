"""10,000 targets in one process (issue #9): config load, one full evaluation pass, peak
memory, and the idle cost of a real daemon.

The config is the one ``bench/config_load.py`` generates: per target a utilisation track, a
p95-over-5m total track and an avg-5m threshold, over three shared replay sources, with a
recording actuator per target. Each size runs in its own process (so its peak RSS is its
own) and measures:

* ``load``: ``load_config`` of the generated file;
* ``start``: the daemon's start with that config (the state store opened and read, the
  runtimes built), as ``scalerd run`` starts;
* ``pass``: one evaluation of every target through the daemon's real tick code
  (``Daemon.run_once``: sources → decide → apply → save → audit, with the configured
  SQLite state store and JSON-lines audit file) on a manual clock, windows warm (20 passes
  of 15 s filled them first);
* ``core``: the same pass calling only ``core.decide`` with the same observations and
  states (the baseline, measured in the same process): ``pass / core`` is what the shell
  adds;
* ``peak RSS`` of that process.

Then the idle CPU of a real ``scalerd run`` with 100 targets at 15 s (``--idle-seconds``,
60 by default; 0 skips it). ``--sizes ""`` measures the idle daemon only.

    python bench/scale.py [--sizes 100,1000,10000] [--idle-seconds 60] [--profile N]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the working tree, installed or not
sys.path.insert(0, str(ROOT / "bench"))

from config_load import generate  # noqa: E402

from scalerd.clock import ManualClock  # noqa: E402
from scalerd.config import load_config  # noqa: E402
from scalerd.core import Capacity, Observation, decide  # noqa: E402
from scalerd.daemon.app import Daemon, freeze_what_lives_long  # noqa: E402
from scalerd.logs import configure_logging  # noqa: E402

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=15)
WARM_PASSES = 20  # 5 minutes of 15-s ticks: the p95 and avg windows are full
REPEAT = 3  # passes timed; the best is reported


def measure_size(
    size: int, folder: Path, synchronous: str, profile: int, concurrency: int
) -> dict[str, Any]:
    """Everything for one size, in this process."""
    path = generate(folder, size)
    if concurrency:
        text = path.read_text().replace(
            "[daemon]\n", f"[daemon]\nmax_concurrent_evaluations = {concurrency}\n", 1
        )
        path.write_text(text)
    if synchronous != "FULL":
        with path.open("a") as file:
            file.write(f'\n[state]\nsynchronous = "{synchronous}"\n')
    started = time.perf_counter()
    config = load_config(path)
    load_s = time.perf_counter() - started
    return asyncio.run(_passes(path, config, load_s, profile)) | {"targets": size}


async def _passes(path: Path, config: Any, load_s: float, profile: int) -> dict[str, Any]:
    clock = ManualClock(T0)
    started = time.perf_counter()
    async with Daemon(path, clock=clock, config=config, listen="127.0.0.1:0") as daemon:
        start_s = time.perf_counter() - started
        freeze_what_lives_long()  # as `scalerd run` does
        runtimes = list(daemon.runtimes.values())
        capacities = {runtime.name: await runtime.actuator.current() for runtime in runtimes}
        # warm the windows through the core alone (the full pass is what is slow today)
        for _ in range(WARM_PASSES):
            clock.advance(INTERVAL)
            await _core_pass(runtimes, capacities, clock.now(), keep=True)
        clock.advance(INTERVAL)
        observations = await _observations(runtimes)
        # best of three: a pass is short enough for one collection of the GC to count
        core_s, core_cpu_s = min(
            _timed_core_pass(runtimes, capacities, clock.now(), observations) for _ in range(REPEAT)
        )
        profiler = cProfile.Profile() if profile else None
        passes = []
        for _ in range(REPEAT):  # each a tick later: windows move on, as in the daemon
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            records = await daemon.run_once()
            if profiler is not None:
                profiler.disable()
            passes.append((time.perf_counter() - started, time.process_time() - cpu_started))
            clock.advance(INTERVAL)
        pass_s, pass_cpu_s = min(passes)
        commits = {
            "state": getattr(daemon.store, "commits", None),
            "audit": getattr(daemon.audit, "commits", None),
        }
        assert len(records) == len(runtimes)
        actions: dict[str, int] = {}
        for record in records:
            actions[record.action] = actions.get(record.action, 0) + 1
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(
            os.environ.get("SORT", "cumulative")
        ).print_stats(profile)
    return {
        "load_s": load_s,
        "start_s": start_s,
        "pass_s": pass_s,
        "pass_cpu_s": pass_cpu_s,
        "commits": commits,
        "core_s": core_s,
        "core_cpu_s": core_cpu_s,
        "actions": actions,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def _observations(runtimes: list[Any]) -> dict[str, list[Observation]]:
    """What each target's sources read now (the sources are shared: read each once)."""
    read: dict[int, Observation] = {}
    by_target = {}
    for runtime in runtimes:
        observations = []
        for metric, source in runtime.sources.items():
            key = id(source)
            if key not in read:
                read[key] = Observation(metric, tuple(await source.read()))
            observations.append(Observation(metric, read[key].samples))
        by_target[runtime.name] = observations
    return by_target


async def _core_pass(
    runtimes: list[Any], capacities: dict[str, Capacity], now: datetime, *, keep: bool
) -> None:
    observations = await _observations(runtimes)
    for runtime in runtimes:
        _, state = decide(
            runtime.target.spec,
            runtime.stored.state,
            capacities[runtime.name],
            observations[runtime.name],
            now,
        )
        if keep:
            runtime.stored = replace(runtime.stored, state=state)


def _timed_core_pass(
    runtimes: list[Any],
    capacities: dict[str, Capacity],
    now: datetime,
    observations: dict[str, list[Observation]],
) -> tuple[float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    for runtime in runtimes:
        decide(
            runtime.target.spec,
            runtime.stored.state,
            capacities[runtime.name],
            observations[runtime.name],
            now,
        )
    return time.perf_counter() - started, time.process_time() - cpu_started


def idle(seconds: float, folder: Path) -> dict[str, float]:
    """CPU and RSS of ``scalerd run`` with 100 targets at 15 s, after its first passes."""
    path = generate(folder, 100)
    process = subprocess.Popen(
        [sys.executable, "-m", "scalerd", "run", "--config", str(path), "--listen", "127.0.0.1:0"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(20)  # start-up and the first evaluations (spread over 1.5 s) are not idle
        cpu_before, wall_before = _cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        cpu = _cpu_seconds(process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        rss = _rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    return {"cpu_percent": 100 * cpu / wall, "rss_mib": rss, "seconds": wall}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--profile", type=int, default=0, help="print the top N of a profile")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="[daemon] max_concurrent_evaluations"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        # the daemon's logging as `scalerd run` sets it up off a terminal: a JSON line per
        # decision, to stderr
        configure_logging("json")
        with tempfile.TemporaryDirectory() as scratch:
            result = measure_size(
                args.child, Path(scratch), args.synchronous, args.profile, args.concurrency
            )
        print(json.dumps(result))
        return 0

    print(
        f"state: SQLite, synchronous={args.synchronous};"
        f" max_concurrent_evaluations={args.concurrency or 'default'};"
        f" windows warmed by {WARM_PASSES} passes;"
        f" best of {REPEAT}; ratio = pass / core (wall, then CPU time of the process)\n"
    )
    header = (
        f"{'targets':>8} {'load':>8} {'start':>8} {'pass':>8} {'core':>8} {'ratio':>6}"
        f" {'pass cpu':>9} {'core cpu':>9} {'ratio':>6} {'per target':>11} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(part) for part in args.sizes.split(",") if part):
        command = [sys.executable, __file__, "--child", str(size)]
        command += ["--synchronous", args.synchronous, "--profile", str(args.profile)]
        command += ["--concurrency", str(args.concurrency)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        if args.profile:  # the profile, after the log lines
            print(done.stderr[done.stderr.find("function calls") - 30 :], file=sys.stderr)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{size:>8} {result['load_s']:>7.2f}s {result['start_s']:>7.2f}s"
            f" {result['pass_s']:>7.3f}s"
            f" {result['core_s']:>7.3f}s {result['pass_s'] / result['core_s']:>5.2f}x"
            f" {result['pass_cpu_s']:>8.3f}s {result['core_cpu_s']:>8.3f}s"
            f" {result['pass_cpu_s'] / result['core_cpu_s']:>5.2f}x"
            f" {result['pass_s'] / size * 1e6:>9.0f}µs {result['peak_rss_mib']:>7.0f}MB"
        )
        print(f"{'':>8}   last pass: {result['actions']}, commits so far: {result['commits']}")
    if args.idle_seconds > 0:
        with tempfile.TemporaryDirectory() as scratch:
            quiet = idle(args.idle_seconds, Path(scratch))
        print(
            f"\nidle `scalerd run`, 100 targets at 15 s, over {quiet['seconds']:.0f} s:"
            f" {quiet['cpu_percent']:.2f} % of one core, {quiet['rss_mib']:.0f} MB RSS"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
