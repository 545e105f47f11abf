"""Shared source reads: one read per source fanned out to every target that reads it, with
per-target timeouts and failure semantics kept (one source failing fails nobody else)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scalerd.audit import MemorySink
from scalerd.clock import ManualClock
from scalerd.config import load_config
from scalerd.core import Sample
from scalerd.daemon.app import Daemon
from scalerd.daemon.metrics import DaemonMetrics
from scalerd.daemon.outage import Outage
from scalerd.daemon.reads import SharedReads
from scalerd.daemon.sqlite_state import SqliteStateStore
from scalerd.daemon.tick import TargetRuntime, TickContext, evaluate
from scalerd.plugins import BuildContext

from .build import write_config

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FRESH = timedelta(seconds=7.5)


class Counting:
    """A source that counts its reads; ``fail`` or ``hang`` make each read do so."""

    def __init__(self, clock: ManualClock, value: float = 40.0) -> None:
        self.clock = clock
        self.value = value
        self.reads = 0
        self.fail: str | None = None
        self.hang = False

    async def read(self) -> Sequence[Sample]:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(0)  # a real read yields: the other targets join it meanwhile
        if self.fail:
            raise ConnectionError(self.fail)
        return (Sample(self.clock.now(), self.value),)

    async def aclose(self) -> None:
        pass


async def _observe(
    reads: SharedReads, sources: dict[str, Counting], now: datetime, timeout: float = 1.0
) -> list[object]:
    return list(
        await reads.observe(
            sources, {m: m for m in sources}, {m: timeout for m in sources}, now, FRESH
        )
    )


async def test_targets_that_read_a_source_together_share_one_read() -> None:
    clock = ManualClock(T0)
    queue = Counting(clock)
    reads = SharedReads(DaemonMetrics())
    seen = await asyncio.gather(*(_observe(reads, {"queue": queue}, T0) for _ in range(200)))
    assert queue.reads == 1 and reads.reads == 1
    assert all(observations == seen[0] for observations in seen)
    assert seen[0][0].samples == (Sample(T0, 40.0),)  # type: ignore[attr-defined]


async def test_a_finished_read_gives_its_readers_one_observation_per_metric_and_name() -> None:
    clock = ManualClock(T0)
    queue = Counting(clock)
    queue.fail = "refused"
    reads = SharedReads(DaemonMetrics())
    await reads.prefetch([(queue, "queue", 1.0, FRESH)], T0)

    async def observe(metric: str, name: str) -> object:
        (observation,) = await reads.observe(
            {metric: queue}, {metric: name}, {metric: 1.0}, T0, FRESH
        )
        return observation

    first, again = await observe("depth", "queue"), await observe("depth", "queue")
    assert first is again  # built once, shared: an observation is immutable
    other_metric, other_name = await observe("backlog", "queue"), await observe("depth", "orders")
    assert (other_metric.metric, other_metric.error) == ("backlog", "queue: refused")  # type: ignore[attr-defined]
    assert (other_name.metric, other_name.error) == ("depth", "orders: refused")  # type: ignore[attr-defined]
    assert queue.reads == 1


async def test_a_read_is_shared_within_half_an_interval_and_repeated_after() -> None:
    clock = ManualClock(T0)
    queue = Counting(clock)
    reads = SharedReads(DaemonMetrics())
    await _observe(reads, {"queue": queue}, T0)
    await _observe(reads, {"queue": queue}, T0 + timedelta(seconds=7))  # a jittered target
    assert queue.reads == 1
    await _observe(reads, {"queue": queue}, T0 + FRESH)  # the next interval reads again
    assert queue.reads == 2


async def test_one_slow_read_times_out_for_each_target_and_stops_nobody_else() -> None:
    clock = ManualClock(T0)
    slow, fine = Counting(clock), Counting(clock, 7.0)
    slow.hang = True
    reads = SharedReads(DaemonMetrics())
    both, only_fine = await asyncio.gather(
        _observe(reads, {"slow": slow, "fine": fine}, T0, timeout=0.05),
        _observe(reads, {"fine": fine}, T0, timeout=0.05),
    )
    assert both[0].error == "slow: timed out after 0.05s"  # type: ignore[attr-defined]
    assert both[1].samples == only_fine[0].samples == (Sample(T0, 7.0),)  # type: ignore[attr-defined]
    assert (slow.reads, fine.reads) == (1, 1)


# --- through the real tick -------------------------------------------------------------

RULES = """
[[sources]]
name = "{a}"
kind = "replay"
values = [40]
step = "60s"

[[sources]]
name = "{b}"
kind = "replay"
values = [40]
step = "60s"
""" + "".join(
    f"""
[[actuators]]
name = "{name}"
kind = "recording"
initial = 2

[[targets]]
name = "{name}"
actuator = "{name}"
max = 20
[targets.metrics]
{metrics}
[[targets.track]]
metric = "ok"
type = "total"
target = 5
[[targets.threshold]]
when = "broken > 100 avg 1m"
action = "+1"
"""
    for name, metrics in [
        ("reads-ok", 'ok = "a"\nbroken = "a"'),
        ("reads-broken", 'ok = "b"\nbroken = "b"'),
        ("reads-both", 'ok = "a"\nbroken = "b"'),
    ]
)


async def test_a_failing_shared_source_fails_its_metric_only_for_its_readers(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, RULES.format(a="a", b="b")))
    clock = ManualClock(T0)
    working, failing = Counting(clock), Counting(clock)
    failing.fail = "connection refused: password=hunter2"
    instances = {"a": working, "b": failing}
    store = SqliteStateStore(tmp_path / "state.db")
    context = TickContext(
        clock=clock,
        audit=MemorySink(),
        store=store,
        metrics=DaemonMetrics(),
        instance="test",
        config_version=config.version,
        dry_run=False,
        state_outage=Outage("state store", clock),
        reads=SharedReads(DaemonMetrics()),
    )
    build = BuildContext(base_dir=tmp_path, clock=clock)
    from scalerd.actuators import ACTUATORS

    runtimes = [
        TargetRuntime(
            target=target,
            sources={metric: instances[source.name] for metric, source in target.sources.items()},
            source_names={metric: source.name for metric, source in target.sources.items()},
            source_timeouts={metric: 1.0 for metric in target.sources},
            actuator=ACTUATORS.get(target.actuator.kind).build(target.actuator, build),
        )
        for target in config.targets
    ]
    ok, broken, both = await asyncio.gather(*(evaluate(r, context) for r in runtimes))
    await store.aclose()
    # each source was read once for all its readers
    assert (working.reads, failing.reads) == (1, 1)
    assert [i["error"] for i in ok.inputs] == [None, None]
    assert ok.action == "scaled"  # 40 at 5 per replica: up from 2
    assert all(i["error"] == "b: connection refused: password=***" for i in broken.inputs)
    assert broken.action == "held" and broken.not_scaled_reason == "MetricFailure"
    # the target reading both: its healthy metric is read, its broken one failed, and it
    # may still scale out on the healthy one (never in)
    by_metric = {i["metric"]: i for i in both.inputs}
    assert by_metric["ok"]["error"] is None and by_metric["ok"]["value"] == 40
    assert by_metric["broken"]["error"] == "b: connection refused: password=***"
    assert both.action == "scaled" and both.desired == ok.desired


async def test_sources_with_the_same_settings_are_one_source(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        RULES.format(a="replay-1", b="replay-2")
        .replace('"a"', '"replay-1"')
        .replace('"b"', '"replay-2"'),
    )
    async with Daemon(config, clock=ManualClock(T0), listen="127.0.0.1:0") as daemon:
        one = daemon.runtimes["reads-both"].sources
        assert one["ok"] is one["broken"]  # replay-1 and replay-2 read the same
        assert daemon.runtimes["reads-both"].source_names == {
            "ok": "replay-1",
            "broken": "replay-2",
        }
        await daemon.run_once()
        assert daemon._reads.reads == 1
