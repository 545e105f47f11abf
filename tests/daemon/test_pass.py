"""A pass over many targets: at most ``max_concurrent_evaluations`` evaluations are under
way at once (in ``run_once`` and wherever else evaluations start), records come back in
the targets' order, and the shared reads are done before any target is evaluated, with
each target's failure semantics kept. Polls due together are evaluated together
(``evaluate_polls``), and a target that is slow to answer, or already being evaluated,
holds up none of the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scalerd.audit import JsonlSink
from scalerd.clock import ManualClock
from scalerd.core import Capacity, Sample
from scalerd.daemon.app import Daemon
from scalerd.daemon.metrics import DaemonMetrics
from scalerd.daemon.reads import SharedReads
from scalerd.daemon.sqlite_state import SqliteStateStore
from scalerd.daemon.tick import evaluate

from .build import write_config

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TARGETS = 7


def _body(targets: int) -> str:
    body = """
[[sources]]
name = "demand"
kind = "replay"
values = [40]
step = "60s"
"""
    for index in range(targets):
        body += f"""
[[actuators]]
name = "pool-{index}"
kind = "recording"
initial = 2

[[targets]]
name = "t{index}"
actuator = "pool-{index}"
max = 20
[[targets.track]]
metric = "demand"
type = "total"
target = 10
"""
    return body


class UnderWay:
    """Counts the evaluations between asking for the capacity and ending."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def wrap(self, daemon: Daemon) -> None:
        for runtime in daemon.runtimes.values():
            actuator = runtime.actuator
            current, apply = actuator.current, actuator.apply

            async def counted(current=current) -> Capacity:  # type: ignore[no-untyped-def]
                self.now += 1
                self.most = max(self.most, self.now)
                for _ in range(3):  # a real read yields: others would start meanwhile
                    await asyncio.sleep(0)
                return await current()

            async def applied(decision, apply=apply):  # type: ignore[no-untyped-def]
                self.now -= 1  # (every target here scales: 40 at 10 per replica)
                return await apply(decision)

            actuator.current = counted  # type: ignore[method-assign]
            actuator.apply = applied  # type: ignore[method-assign]


async def test_a_pass_evaluates_at_most_the_configured_number_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, _body(TARGETS), header="max_concurrent_evaluations = 2\n")
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        under_way = UnderWay()
        under_way.wrap(daemon)
        records = await daemon.run_once()
    assert under_way.most == 2
    assert [record.target for record in records] == [f"t{i}" for i in range(TARGETS)]
    assert {record.action for record in records} == {"scaled"}
    assert len({record.id for record in records}) == TARGETS


async def test_evaluations_started_anywhere_share_the_bound(tmp_path: Path) -> None:
    """Loops and events call ``evaluate`` directly: the slots are in it, not in the pass."""
    config = write_config(tmp_path, _body(TARGETS), header="max_concurrent_evaluations = 3\n")
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        under_way = UnderWay()
        under_way.wrap(daemon)
        context = daemon._tick_context()
        records = await asyncio.gather(
            *(evaluate(runtime, context) for runtime in daemon.runtimes.values())
        )
    assert under_way.most == 3
    assert len(records) == TARGETS


async def test_without_a_bound_every_evaluation_of_a_gather_is_under_way_at_once(
    tmp_path: Path,
) -> None:
    """(What the bound changes: the counting above can see more than the bound.)"""
    config = write_config(tmp_path, _body(TARGETS), header="max_concurrent_evaluations = 100\n")
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        under_way = UnderWay()
        under_way.wrap(daemon)
        await daemon.run_once()
    assert under_way.most == TARGETS


class Slow:
    """A source that hangs (or fails) and counts its reads."""

    def __init__(self, clock: ManualClock, *, hang: bool = False, fail: str = "") -> None:
        self.clock, self.hang, self.fail, self.reads = clock, hang, fail, 0

    async def read(self) -> Sequence[Sample]:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError(self.fail)
        return (Sample(self.clock.now(), 3.0),)


async def test_reads_done_first_keep_each_targets_timeout_and_failure() -> None:
    clock = ManualClock(T0)
    hanging, failing, fine = Slow(clock, hang=True), Slow(clock, fail="refused"), Slow(clock)
    reads = SharedReads(DaemonMetrics())
    fresh = timedelta(seconds=7.5)
    planned = [
        (hanging, "hanging", 0.05, fresh),
        (failing, "failing", 1.0, fresh),
        (fine, "fine", 1.0, fresh),
        (fine, "fine", 1.0, fresh),  # a second target reading it
    ]
    await reads.prefetch(planned, T0)
    assert (hanging.reads, failing.reads, fine.reads) == (1, 1, 1)
    # every target now finds its reads ended, with the outcome it would have waited for
    sources = {"h": hanging, "f": failing, "ok": fine}
    names = {"h": "hanging", "f": "failing", "ok": "fine"}
    timeouts = {"h": 0.05, "f": 1.0, "ok": 1.0}
    task = asyncio.ensure_future(reads.observe(sources, names, timeouts, T0, fresh))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert task.done()  # nothing left to wait for
    observed = {observation.metric: observation for observation in task.result()}
    assert observed["h"].error == "hanging: timed out after 0.05s"
    assert observed["f"].error == "failing: refused"
    assert observed["ok"].samples == (Sample(T0, 3.0),)
    assert reads.reads == 3


# --- polls evaluated together ---------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["", "max_concurrent_evaluations = 2\n"], ids=["one batch", "batches of two"]
)
async def test_an_actuator_slow_to_answer_holds_up_no_other_target(
    tmp_path: Path, header: str
) -> None:
    """Neither the targets of its batch nor those of the batches after it."""
    config = write_config(tmp_path, _body(TARGETS), header=header)
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        slow = daemon.runtimes["t3"]
        released = asyncio.Event()
        answer = slow.actuator.current

        async def asking_an_api() -> Capacity:
            await released.wait()
            return await answer()

        slow.actuator.current = asking_an_api  # type: ignore[method-assign]
        passing = asyncio.create_task(daemon.run_once())
        others = [r for r in daemon.runtimes.values() if r is not slow]
        for _ in range(200):  # every other target decided, acted and recorded meanwhile
            if all(r.last_record is not None for r in others):
                break
            await asyncio.sleep(0.01)
        assert all(r.last_record is not None for r in others)
        assert slow.last_record is None and not passing.done()
        released.set()
        records = await passing
    assert [record.target for record in records] == [f"t{i}" for i in range(TARGETS)]
    assert records[3].action == "scaled" and slow.last_record == records[3]


async def test_a_target_being_evaluated_is_polled_after_that_evaluation(tmp_path: Path) -> None:
    config = write_config(tmp_path, _body(3))
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        busy = daemon.runtimes["t1"]
        await busy.lock.acquire()  # an event's evaluation under way
        passing = asyncio.create_task(daemon.run_once())
        for _ in range(200):
            if daemon.runtimes["t0"].last_record and daemon.runtimes["t2"].last_record:
                break
            await asyncio.sleep(0.01)
        assert busy.last_record is None and not passing.done()
        busy.lock.release()
        records = await passing
    assert [record.target for record in records] == ["t0", "t1", "t2"]
    assert busy.last_record == records[1]


async def test_a_batch_whose_every_target_is_being_evaluated_polls_them_after(
    tmp_path: Path,
) -> None:
    """A poll that comes due while its target is being evaluated (an event, a control
    change) is made once that evaluation ends, and the target's loop goes on polling:
    the batch that had nothing to save or write waits for no commit."""
    config = write_config(tmp_path, _body(2))
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        await daemon.run_once()  # every target held from here on (a commit each batch)
        for runtime in daemon.runtimes.values():
            await runtime.lock.acquire()
        passing = asyncio.create_task(daemon.run_once())
        await asyncio.sleep(0.05)
        for runtime in daemon.runtimes.values():
            runtime.lock.release()
        records = await asyncio.wait_for(passing, 5)
        assert [record.target for record in records] == ["t0", "t1"]
        again = await asyncio.wait_for(daemon.run_once(), 5)
    assert all(record.prev == before.id for record, before in zip(again, records, strict=True))


async def test_loops_due_together_are_evaluated_as_one_batch(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        _body(TARGETS).replace("max = 20", 'max = 20\ninterval = "1s"'),
        header="jitter = 0.0\n",
    )
    async with Daemon(config) as daemon:
        batches: list[list[str]] = []
        poll = daemon._poll

        async def counted(runtimes, context):  # type: ignore[no-untyped-def]
            batches.append([runtime.name for runtime in runtimes])
            return await poll(runtimes, context)

        daemon._polls._run = counted  # type: ignore[assignment]
        serving = asyncio.create_task(daemon.serve())
        for _ in range(300):
            if all(r.last_record is not None for r in daemon.runtimes.values()):
                break
            await asyncio.sleep(0.01)
        daemon.stop()
        await asyncio.wait_for(serving, 10)
    assert sorted(batches[0]) == [f"t{i}" for i in range(TARGETS)]  # every loop, one batch
    assert all(r.last_record is not None for r in daemon.runtimes.values())


class StoreAway(SqliteStateStore):
    """The SQLite store while its disk refuses writes."""

    down = True

    async def save_many(self, saves):  # type: ignore[no-untyped-def]
        if self.down:
            raise OSError(28, "No space left on device")
        await super().save_many(saves)


async def test_held_targets_hand_their_states_over_in_one_commit(tmp_path: Path) -> None:
    config = write_config(tmp_path, _body(TARGETS).replace("values = [40]", "values = [20]"))
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        assert isinstance(daemon.store, SqliteStateStore)
        before = daemon.store.commits
        records = await daemon.run_once()  # 20 at 10 per replica: each holds at 2
        assert {record.action for record in records} == {"held"}
        assert daemon.store.commits == before + 1
        assert isinstance(daemon.audit, JsonlSink) and daemon.audit.commits == 1
    reopened = SqliteStateStore(tmp_path / "state" / "state.db")
    stored = await reopened.load_all()
    await reopened.aclose()
    assert {name: s.last_record_id for name, s in stored.items()} == {
        record.target: record.id for record in records
    }
    lines = (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    written = [json.loads(line) for line in lines]
    assert [line["id"] for line in written] == [record.id for record in records]


async def test_a_store_that_refuses_the_batch_costs_no_record(tmp_path: Path) -> None:
    config = write_config(tmp_path, _body(3).replace("values = [40]", "values = [20]"))
    async with Daemon(config, clock=ManualClock(T0)) as daemon:
        away = StoreAway(tmp_path / "state" / "away.db")
        daemon.store = away
        records = await daemon.run_once()
        assert [record.action for record in records] == ["held"] * 3
        assert all(record.notes[-1].startswith("state not saved (") for record in records)
        away.down = False
        again = await daemon.run_once()
        assert [record.prev for record in again] == [record.id for record in records]
        assert not any(note.startswith("state not saved") for r in again for note in r.notes)
        await away.aclose()
