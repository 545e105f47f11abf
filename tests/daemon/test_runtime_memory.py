"""What the daemon builds per target stays small (issue #9): targets reading the same
sources share their (read-only) bindings, and targets never evaluated share one empty
memory. Each target's memory is its own once it is evaluated, and a shared empty one
never carries one target's evaluation over to another."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scalerd.clock import ManualClock
from scalerd.daemon.app import Daemon

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from config_load import generate


async def test_runtimes_share_their_bindings_and_keep_their_own_memory(tmp_path: Path) -> None:
    path = generate(tmp_path, 6)
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with Daemon(path, clock=clock, listen="127.0.0.1:0") as daemon:
        runtimes = list(daemon.runtimes.values())
        first = runtimes[0]
        for runtime in runtimes[1:]:
            assert runtime.sources is first.sources
            assert runtime.source_names is first.source_names
            assert runtime.source_timeouts is first.source_timeouts
            assert runtime.stored is first.stored  # none evaluated yet: the same empty memory
        assert set(first.sources) == {"cpu", "requests", "latency"}
        assert first.source_names == {"cpu": "cpu", "requests": "requests", "latency": "latency"}
        assert first.source_timeouts == dict.fromkeys(first.sources, 10.0)
        assert first.stored.state.samples == {} and first.stored.last_record_id is None

        one = await daemon.run_once()  # every target once
        clock.advance(timedelta(seconds=15))
        (record,) = [r for r in await daemon.run_once() if r.target == first.name]
        stored = [runtime.stored for runtime in runtimes]
        assert len({id(each) for each in stored}) == len(runtimes)  # each its own now
        assert record.prev == one[0].id  # its own chain, not another target's
        assert {runtime.stored.last_record_id for runtime in runtimes} == {
            runtime.last_record.id for runtime in runtimes if runtime.last_record is not None
        }
        for runtime in runtimes:
            assert set(runtime.stored.state.samples) == {"cpu", "requests", "latency"}
