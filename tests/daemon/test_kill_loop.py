"""kill -9 between the actuator call and the state save, 30 times over: afterwards every
change the actuator received has exactly one ``scaled`` record and the ``prev`` chain of
the target has no gap (recovery writes the record the killed evaluation would have)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalerd.audit import chain_breaks, read_jsonl

from .build import write_config

REPO = Path(__file__).resolve().parents[2]

CYCLES = 30

# Each cycle forks a process (the imports are paid once) that runs one evaluation in a real
# Daemon on a manual clock, a minute later each cycle. Its actuator carries the change out,
# journals it (fsynced) and says so through a pipe, then hangs: the parent kill -9s it
# there, before the tick can save the outcome. The next cycle's start settles the change.
CHILD = """
import asyncio, json, os, signal, sys
from datetime import timedelta
from pathlib import Path
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

directory = Path(sys.argv[1])
journal = directory / "journal.jsonl"
template = (directory / "rule.template").read_text()
cycles = int((directory / "cycles").read_text())

async def one(cycle, say):
    clock = ManualClock()
    clock.advance(timedelta(minutes=cycle))
    async with Daemon(directory / "config.toml", clock=clock) as daemon:
        if cycle == cycles:
            say("settled")
            return
        actuator = daemon.runtimes["api"].actuator
        carry_out = actuator.apply

        async def apply(decision):
            await carry_out(decision)
            with journal.open("a") as file:
                file.write(json.dumps([decision.current.provisioned, decision.desired]) + "\\n")
                file.flush()
                os.fsync(file.fileno())
            say("applied")
            await asyncio.sleep(120)

        actuator.apply = apply
        await daemon.run_once()
        say("unchanged")

for cycle in range(cycles + 1):
    demand = 10 * (1 + cycle * 7 % 9)  # a different capacity wanted every cycle
    (directory / "config.toml").write_text(template.replace("DEMAND", str(demand)))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        def say(word):
            os.write(write_end, (word + "\\n").encode())
        asyncio.run(one(cycle, say))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        word = pipe.readline().strip()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(word, flush=True)
"""

RULE = """
[[sources]]
name = "demand"
kind = "replay"
values = [DEMAND]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"
initial = 1
persist_to = "capacity.txt"

[[targets]]
name = "api"
actuator = "pool"
max = 10
[[targets.track]]
metric = "demand"
type = "total"
target = 10
[targets.behavior.scale_down]
stabilization_window = "0s"
"""


@pytest.mark.slow
def test_kill_9_between_apply_and_save_leaves_one_scaled_record_per_change(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, RULE)
    (tmp_path / "rule.template").write_text(config.read_text())
    (tmp_path / "cycles").write_text(str(CYCLES))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    words = {"applied", "unchanged", "settled"}  # what the parent prints; the rest is log
    outcomes = [line for line in done.stdout.splitlines() if line in words]
    assert outcomes[-1] == "settled" and len(outcomes) == CYCLES + 1

    journal = (tmp_path / "journal.jsonl").read_text().splitlines()
    changes = [tuple(json.loads(line)) for line in journal]
    assert outcomes.count("applied") == len(changes) >= CYCLES - 3
    records = read_jsonl(tmp_path / "audit" / "audit.jsonl")
    scaled = [r for r in records if r.action == "scaled"]
    assert [((r.current or {})["provisioned"], r.desired) for r in scaled] == changes
    assert all(any("settled at restart" in note for note in r.notes) for r in scaled)
    assert len({r.id for r in records}) == len(records)
    assert chain_breaks(records) == set()
    assert records[0].prev is None and all(r.prev for r in records[1:])
