"""The final state save fails after a change landed, and kill -9 follows before the next
save: the stored state still holds the change as written ahead, with its record, and that
record is already in the audit log. The restart settles the change without writing the
record a second time, and the chain continues from it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from crash import kill_9_after

from scalerd.audit import chain_breaks, read_jsonl
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

from .build import replay_target, write_config

# One Daemon (the SQLite store, the JSON-lines audit): an evaluation scales 1 -> 3; the
# next, a minute later, scales out again and its final save fails (the write-ahead save
# does not). The child then says so and waits to be killed.
CHILD = """
import asyncio, sys
from datetime import timedelta
import structlog
from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: ids

async def main(config):
    clock = ManualClock()
    async with Daemon(config, clock=clock) as daemon:
        (first,) = await daemon.run_once()
        real_save = daemon.store.save

        async def save(target, stored):
            if stored.pending is None:  # the save after the change: the disk is full now
                raise OSError(28, "No space left on device")
            await real_save(target, stored)

        daemon.store.save = save
        clock.advance(timedelta(minutes=1))
        (second,) = await daemon.run_once()
        print(first.id, first.action, first.desired, flush=True)
        print(second.id, second.action, second.desired, flush=True)
        await asyncio.sleep(120)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_record_written_before_a_failed_save_is_not_written_again_at_restart(
    tmp_path: Path,
) -> None:
    body = replay_target((30, 90, 90), initial=1, maximum=10)
    # the pool's size survives the kill, as a real platform's would
    body = body.replace('kind = "recording"', 'kind = "recording"\npersist_to = "capacity.txt"')
    config = write_config(tmp_path, body)
    (first, second), _ = kill_9_after(CHILD, str(config), 2)
    first_id, first_action, _ = first.split()
    second_id, second_action, desired = second.split()
    assert (first_action, second_action) == ("scaled", "scaled")
    assert (tmp_path / "capacity.txt").read_text().strip() == desired  # it landed
    audit = tmp_path / "audit" / "audit.jsonl"
    assert [r.id for r in read_jsonl(audit)] == [first_id, second_id]

    clock = ManualClock()
    clock.advance(timedelta(minutes=2))
    async with Daemon(config, clock=clock) as daemon:
        runtime = daemon.runtimes["api"]
        assert runtime.stored.pending is None  # settled: the change landed
        assert [event.after for event in runtime.stored.state.events][-1:] == [int(desired)]
        (after,) = await daemon.run_once()
    ids = [json.loads(line)["id"] for line in audit.read_text().splitlines()]
    assert ids == [first_id, second_id, after.id]  # not written again
    records = read_jsonl(audit)
    assert after.prev == second_id and chain_breaks(records) == set()
    assert after.action != "scaled" or (after.current or {})["provisioned"] == int(desired)
