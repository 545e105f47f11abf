"""Decision quality: every preset in ``rules/`` replayed on every trace in
``../shared/traces/``, each trace scaled so that its peak needs the same number of
replicas (40 unless told otherwise), through the same simulator ``scalerd simulate`` uses.

Prints one table: cost as a ratio to the clairvoyant limit and to ``hpa-default``'s cost
on the same trace (the baseline, run here too), the share of time under-provisioned, the
work left unserved, scale actions and reversals; then the wall time. Presets keep their
own ``[simulate]`` model (what their metrics are, how late they arrive); only the trace's
scale is imposed, so every preset faces the same demand.

    python bench/decision_quality.py [--peak-replicas 40] [--jobs N] [--preset NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# measure the working tree's code, whether or not scalerd is installed
sys.path.insert(0, str(ROOT))

from scalerd.simulate.report import SCORE_HEADERS, format_table, score_cells  # noqa: E402
from scalerd.simulate.run import simulate  # noqa: E402
from scalerd.simulate.scenario import load_scenario  # noqa: E402
from scalerd.simulate.scores import Scores, score  # noqa: E402
from scalerd.traces import load_trace  # noqa: E402

RULES = ROOT / "rules"
TRACES = ROOT.parent / "shared" / "traces"
BASELINE = "hpa-default"


def replay(job: tuple[Path, Path, int]) -> tuple[Scores, float]:
    """One preset on one trace: its scores and the seconds the replay took."""
    preset, trace_path, peak = job
    started = time.perf_counter()
    scenario = load_scenario(preset, overrides={"peak_replicas": peak})
    timeline = simulate(scenario, load_trace(trace_path))
    return score(timeline), time.perf_counter() - started


def short_name(trace: Path) -> str:
    """``nasa_http_1995-07-01_14d_60s.csv`` → ``nasa_http``."""
    return "_".join(trace.stem.split("_")[:2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peak-replicas", type=int, default=40)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="replays run in parallel"
    )
    parser.add_argument(
        "--preset",
        action="append",
        default=[],
        help=f"replay only this preset of rules/ (repeatable; {BASELINE} is always replayed)",
    )
    args = parser.parse_args()

    presets = sorted(RULES.glob("*.toml"))
    if args.preset:
        unknown = set(args.preset) - {preset.stem for preset in presets}
        if unknown:
            parser.error(f"no such preset in rules/: {', '.join(sorted(unknown))}")
        presets = [p for p in presets if p.stem in {*args.preset, BASELINE}]
    traces = sorted(TRACES.glob("*.csv"))
    jobs = [(preset, trace, args.peak_replicas) for trace in traces for preset in presets]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(
            zip(((job[0].stem, job[1]) for job in jobs), pool.map(replay, jobs), strict=True)
        )
    wall = time.perf_counter() - started

    rows: list[list[str]] = []
    for trace in traces:
        baseline = results[(BASELINE, trace)][0].cost_replica_seconds
        for preset in presets:
            scores, _ = results[(preset.stem, trace)]
            versus = f"{scores.cost_replica_seconds / baseline:.3f}"
            cells = score_cells(scores)
            rows.append([short_name(trace), preset.stem, *cells[:2], versus, *cells[2:]])
    headers = ("trace", "preset", *SCORE_HEADERS[:2], f"cost/{BASELINE}", *SCORE_HEADERS[2:])
    print(f"every trace scaled so that its peak needs {args.peak_replicas} replicas\n")
    print(format_table(headers, rows, text_columns=2))
    slowest_key, (_, slowest) = max(results.items(), key=lambda item: item[1][1])
    print(
        f"\n{len(jobs)} replays in {wall:.1f} s wall time on {args.jobs} processes; the slowest, "
        f"{slowest_key[0]} on {short_name(slowest_key[1])}, took {slowest:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
