"""Speed and memory of a replay: 14 days of a 60 s trace at a 15 s evaluation interval
(80 640 evaluations), the figure DESIGN.md §6 and the simulate issue ask for.

The baseline, measured in the same run, is the same loop over the same trace through the
same capacity model with no decisions at all: the ratios show what the decision core adds.
Peak memory is traced (tracemalloc) in a separate pass, so it does not slow the timing.

The last rows time the whole command, ``python -m scalerd simulate ... --out DIR`` in a
subprocess of this tree (the interpreter's start, the imports, the replay, the files and
the plot), each beside the in-process replay of the same preset measured above: the
issue's goal is the end to end, not the replay alone.

    python bench/speed.py [--trace PATH] [--repeat 3] [--no-e2e]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the working tree, installed or not

from scalerd.simulate.model import Workload, measure, queue_after  # noqa: E402
from scalerd.simulate.run import simulate, tick_demand, trace_scale  # noqa: E402
from scalerd.simulate.scenario import Scenario, load_scenario  # noqa: E402
from scalerd.traces import Trace, load_trace  # noqa: E402

TRACE = ROOT.parent / "shared" / "traces" / "nasa_http_1995-07-01_14d_60s.csv"
PRESETS = ("hpa-default", "recommended", "azure-autoscale")
# the presets timed end to end (the two)
E2E_PRESETS = ("hpa-default", "recommended")


def model_only(scenario: Scenario, trace: Trace) -> int:
    """The replay loop without the core: demand, readings and the queue at a fixed size."""
    settings = scenario.settings
    step = scenario.interval.total_seconds()
    demand = tick_demand(trace, step, trace_scale(settings, trace))
    workload = Workload.of(settings)
    replicas, queued = scenario.initial or 1, 0.0
    for load in demand:
        for binding in scenario.metrics:
            measure(binding.kind, load, replicas, queued, workload)
        queued = queue_after(queued, load, replicas, workload.capacity, step)
    return len(demand)


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def end_to_end(preset: str, trace: Path, out: Path) -> None:
    """``scalerd simulate`` as a user runs it, from this tree (not an installed one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scalerd",
            "simulate",
            "--config",
            str(ROOT / "rules" / f"{preset}.toml"),
            "--trace",
            str(trace),
            "--peak-replicas",
            "40",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-e2e", action="store_true", help="the in-process replays only")
    args = parser.parse_args()

    trace = load_trace(args.trace)
    overrides = {"peak_replicas": 40}
    baseline_scenario = load_scenario(ROOT / "rules" / "hpa-default.toml", overrides=overrides)
    ticks = model_only(baseline_scenario, trace)
    baseline = best_of(args.repeat, lambda: model_only(baseline_scenario, trace))
    baseline_mib = peak_mib(lambda: model_only(baseline_scenario, trace))

    print(f"{args.trace.name}, 14 days; best of {args.repeat}\n")
    # the ratio is per evaluation: presets evaluate at their own interval
    header = f"{'replay':<28}{'evaluations':>12}{'seconds':>9}{'us/tick':>10}{'x baseline':>12}{'peak MiB':>10}"
    print(header)
    print("-" * len(header))
    per_tick = baseline / ticks
    print(
        f"{'baseline: model, no core':<28}{ticks:>12}{baseline:>9.2f}{per_tick * 1e6:>10.1f}"
        f"{1:>12.2f}{baseline_mib:>10.1f}"
    )
    replays: dict[str, float] = {}
    for preset in PRESETS:
        scenario = load_scenario(ROOT / "rules" / f"{preset}.toml", overrides=overrides)
        seconds = best_of(args.repeat, lambda s=scenario: simulate(s, trace))
        replays[preset] = seconds
        evaluations = len(simulate(scenario, trace))
        mib = peak_mib(lambda s=scenario: simulate(s, trace))
        print(
            f"{preset:<28}{evaluations:>12}{seconds:>9.2f}{seconds / evaluations * 1e6:>10.1f}"
            f"{seconds / evaluations / per_tick:>12.1f}{mib:>10.1f}"
        )
    if args.no_e2e:
        return 0
    # the same preset's replay above is the baseline: what the command adds around it
    header = f"{'scalerd simulate --out':<28}{'seconds':>9}{'replay s':>10}{'x replay':>10}"
    print(f"\n{header}\n{'-' * len(header)}")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in E2E_PRESETS:
            out = Path(tmp) / preset
            seconds = best_of(args.repeat, lambda p=preset, o=out: end_to_end(p, args.trace, o))
            replay = replays[preset]
            print(f"{preset:<28}{seconds:>9.2f}{replay:>10.2f}{seconds / replay:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
