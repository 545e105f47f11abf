"""A digest of every decision, state and output of a set of replays, to compare two trees.

A change meant to make the core or the replay faster must leave every decision exactly
as it was: this replays every preset in ``rules/`` on every trace in ``../shared/traces/``
(and a few variants the presets do not cover: a predictive floor, a drain rule, ladders of
tiers, a schedule), and prints one line per replay with the SHA-256 of

* every ``Decision.as_dict()`` and the audit record built from it (``AuditRecord.to_json``),
* every state ``decide`` and ``record_applied`` returned (``encode_state``),
* the timeline's columns and its scores,

then the bytes ``scalerd simulate`` writes (``timeline.csv``, ``summary.json``,
``timeline.png``) for a few of them. Run it on both trees and diff the outputs:

    python bench/digest.py [--quick] [--jobs N] > after.txt
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import sys
import tempfile
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the working tree, installed or not

import orjson  # noqa: E402

from scalerd.audit.record import AuditRecord  # noqa: E402
from scalerd.daemon.state_codec import encode_state  # noqa: E402
from scalerd.simulate import run as run_module  # noqa: E402
from scalerd.simulate.run import simulate  # noqa: E402
from scalerd.simulate.scenario import load_scenario  # noqa: E402
from scalerd.simulate.scores import score  # noqa: E402
from scalerd.traces import load_trace  # noqa: E402

TRACES = ROOT.parent / "shared" / "traces"

PREDICT = """
[predict]
mode = "{mode}"
track = "surge"
lead = "60s"
"""

DRAIN = """\
interval = "15s"
min = 1
max = 100
tolerance = 0
[[drain]]
backlog = "queue length"
arrivals = "incoming messages"
rate = 10
within = "5m"
[behavior.scale_down]
stabilization_window = "5m"
[simulate]
capacity = 10
startup = "30s"
[simulate.metrics]
"queue length" = "backlog"
"incoming messages" = "arrivals"
"""

SCHEDULE = """\
interval = "15s"
min = 1
max = 60
[[track]]
metric = "cpu"
type = "utilization"
target = 70
[[schedule]]
name = "office"
cron = "0 8 * * 1-5"
timezone = "Europe/Berlin"
duration = "10h"
min = 10
max = 60
ramp = "30m"
[behavior.scale_down]
stabilization_window = "5m"
[simulate]
capacity = 1
[simulate.metrics]
cpu = "utilization"
"""

RESOURCES = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shop/providers"


def ladder(metric: str, actuator: str, rules: str, timing: str) -> str:
    return f"""\
[[sources]]
name = "{metric}"
kind = "replay"
values = [50]
step = "60s"

[[actuators]]
name = "ladder"
{actuator}

[[targets]]
name = "{metric}-ladder"
actuator = "ladder"
interval = "1m"
min = 1
max = 3
cooldown = {{ up = "1m", down = "1m" }}
{rules}
[targets.simulate]
capacity = 1
{timing}
"""


CPU_THRESHOLDS = """\
[[targets.threshold]]
when = "cpu > 80 avg 3m"
action = "+1"
[[targets.threshold]]
when = "cpu < 20 avg 3m"
action = "-1"
"""

POSTGRES = ladder(
    "cpu",
    f"""\
kind = "azure-postgres-flexible"
resource_id = "{RESOURCES}/Microsoft.DBforPostgreSQL/flexibleServers/shop-db"
skus = ["Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]""",
    CPU_THRESHOLDS,
    'change_time = "5m"\nrestart_downtime = "2m"',
)

REDIS = ladder(
    "memory",
    f"""\
kind = "azure-redis"
resource_id = "{RESOURCES}/Microsoft.Cache/redis/sessions"
skus = ["Basic C1", "Standard C1", "Standard C3"]""",
    """\
[[targets.track]]
metric = "memory"
type = "utilization"
target = 70""",
    'change_time = "3m"\nrestart_downtime = "1m"',
)


def variants(folder: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """(label, config, overrides) of every replay: the presets, then the variants."""
    peak = {"peak_replicas": 40}
    out = [(path.stem, path, peak) for path in sorted((ROOT / "rules").glob("*.toml"))]
    recommended = (ROOT / "rules" / "recommended.toml").read_text()
    head, _, tail = recommended.partition("[simulate]")
    for mode in ("shadow", "on"):
        path = folder / f"predict-{mode}.toml"
        path.write_text(head + PREDICT.format(mode=mode) + "\n[simulate]" + tail)
        out.append((path.stem, path, peak))
    for name, text, overrides in (
        ("drain", DRAIN, peak),
        ("schedule", SCHEDULE, peak),
        ("postgres-ladder", POSTGRES, {"peak_replicas": 6}),
        ("redis-ladder", REDIS, {"peak_replicas": 6}),
    ):
        path = folder / f"{name}.toml"
        path.write_text(textwrap.dedent(text))
        out.append((name, path, overrides))
    return out


def replay(job: tuple[str, Path, dict[str, Any], Path]) -> str:
    label, config, overrides, trace_path = job
    scenario = load_scenario(config, overrides=overrides)
    trace = load_trace(trace_path)
    decisions, records, states = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    decide, record_applied = run_module.decide, run_module.record_applied

    # a predictive floor's history holds a week of buckets: its digest is taken once per
    # distinct object (it is immutable), and the state's bytes carry the digest instead
    seen_history: list[Any] = [None, b""]

    def state_bytes(state: Any) -> bytes:
        history = state.demand_history
        if history is not seen_history[0]:
            encoded = orjson.dumps([history.first, list(history.peaks)])
            seen_history[:] = [history, hashlib.sha256(encoded).digest()]
        encoded = encode_state(state)
        del encoded["demand_history"]
        return orjson.dumps(encoded) + seen_history[1]

    def hashed_decide(*args: Any) -> Any:
        decision, state = decide(*args)
        decisions.update(orjson.dumps(decision.as_dict()))
        record = AuditRecord.from_decision(
            decision,
            action="scaled" if decision.changes else "held",
            kind="replay",
            config_version="v",
            instance="i",
            prev=None,
            duration_ms=0.0,
            dry_run=False,
            record_id="id",
        )
        records.update(record.to_json().encode())
        states.update(state_bytes(state))
        return decision, state

    def hashed_record_applied(*args: Any) -> Any:
        state = record_applied(*args)
        states.update(b"applied" + state_bytes(state))
        return state

    run_module.decide, run_module.record_applied = hashed_decide, hashed_record_applied
    try:
        timeline = simulate(scenario, trace)
    finally:
        run_module.decide, run_module.record_applied = decide, record_applied
    columns = hashlib.sha256()
    for name in (
        "demand",
        "recommended",
        "desired",
        "provisioned",
        "ready",
        "minimum",
        "maximum",
        "units",
        "serving",
    ):
        column = getattr(timeline, name)
        columns.update(name.encode() + (column.tobytes() if column is not None else b"-"))
    for name in ("in_flight", "not_scaled", "breakers_open"):
        columns.update(name.encode() + repr(getattr(timeline, name)).encode())
    for name, column in timeline.readings.items():
        columns.update(name.encode() + column.tobytes())
    columns.update(repr(timeline.metric_failures).encode())
    scores = orjson.dumps(score(timeline).as_dict(), option=orjson.OPT_SORT_KEYS)
    return (
        f"{label:<22} {trace_path.stem[:24]:<24} {len(timeline):>6} "
        f"decisions {decisions.hexdigest()[:16]} records {records.hexdigest()[:16]} "
        f"states {states.hexdigest()[:16]} timeline {columns.hexdigest()[:16]} "
        f"scores {hashlib.sha256(scores).hexdigest()[:16]}"
    )


def outputs(label: str, config: Path, trace: Path, flags: list[str], folder: Path) -> str:
    """The SHA-256 of each file ``scalerd simulate`` writes."""
    from scalerd.cli import main

    out = folder / f"out-{label}-{trace.stem}"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["simulate", "--config", str(config), "--trace", str(trace), "--out", str(out), *flags]
        )
    files = " ".join(
        f"{name} {hashlib.sha256((out / name).read_bytes()).hexdigest()[:16]}"
        if (out / name).exists()
        else f"{name} -"
        for name in ("timeline.csv", "summary.json", "timeline.png")
    )
    return f"simulate {label:<18} {trace.stem[:24]:<24} exit {code} {files}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--quick", action="store_true", help="the two shortest traces only, and no files"
    )
    parser.add_argument(
        "--trace", action="append", default=[], help="only traces whose name holds this"
    )
    parser.add_argument("--only", action="append", default=[], help="only this replay (label)")
    parser.add_argument("--no-files", action="store_true", help="skip scalerd simulate's files")
    args = parser.parse_args()
    traces = sorted(TRACES.glob("*.csv"))
    if args.trace:
        traces = [path for path in traces if any(part in path.name for part in args.trace)]
    if args.quick:
        traces = sorted(traces, key=lambda path: path.stat().st_size)[:2]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = [
            (label, config, overrides, trace)
            for label, config, overrides in variants(folder)
            if not args.only or label in args.only
            for trace in traces
        ]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for line in pool.map(replay, jobs):
                print(line, flush=True)
        if not (args.quick or args.no_files):
            nasa = TRACES / "nasa_http_1995-07-01_14d_60s.csv"
            for label, config, flags in (
                ("hpa-default", ROOT / "rules" / "hpa-default.toml", ["--peak-replicas", "40"]),
                ("recommended", ROOT / "rules" / "recommended.toml", ["--peak-replicas", "40"]),
                ("alwrity-backend", ROOT / "rules" / "alwrity-backend.toml", []),
                ("redis-ladder", folder / "redis-ladder.toml", ["--peak-replicas", "6"]),
            ):
                print(outputs(label, config, nasa, flags, folder), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
