"""One evaluation of one target (``scalerd.daemon.tick``), with a manual clock, real local
plugins, the file state store and an in-memory audit sink."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from scalerd.actuators import ACTUATORS
from scalerd.actuators.recording import RecordingActuator
from scalerd.audit import ACTIONS, MemorySink
from scalerd.clock import ManualClock
from scalerd.config import load_config
from scalerd.core import Capacity, Decision, Sample
from scalerd.daemon.metrics import DaemonMetrics
from scalerd.daemon.outage import Outage
from scalerd.daemon.state import FileStateStore, Pending, StoredTarget
from scalerd.daemon.tick import TargetRuntime, TickContext, evaluate, recover_pending
from scalerd.errors import ActuatorError, Throttled
from scalerd.plugins import Applied, BuildContext
from scalerd.sources import SOURCES

from .build import write_config

RULE = """
[[sources]]
name = "queue"
kind = "replay"
values = [40, 40, 40, 40]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"
initial = 2

[[targets]]
name = "workers"
actuator = "pool"
max = 20
[[targets.track]]
metric = "queue"
type = "total"
target = 5
[[targets.threshold]]
when = "queue > 1000 avg 1m"
action = "+5"
cooldown = "10m"
"""


class Unreachable:
    async def read(self) -> Sequence[Sample]:
        raise ConnectionError("connection refused by 10.0.0.7: password=hunter2")

    async def aclose(self) -> None:
        pass


class Failing(RecordingActuator):
    def __init__(self, problem: Exception, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.problem = problem

    async def apply(self, decision: Decision) -> Applied:
        raise self.problem


def _runtime(
    tmp_path: Path, clock: ManualClock, body: str = RULE
) -> tuple[TargetRuntime, TickContext, MemorySink]:
    config = load_config(write_config(tmp_path, body))
    target = config.targets[0]
    build = BuildContext(base_dir=tmp_path, clock=clock)
    sources = {
        metric: SOURCES.get(source.kind).build(source, build)
        for metric, source in target.sources.items()
    }
    runtime = TargetRuntime(
        target=target,
        sources=sources,
        source_names={metric: source.name for metric, source in target.sources.items()},
        source_timeouts={metric: 1.0 for metric in target.sources},
        actuator=ACTUATORS.get(target.actuator.kind).build(target.actuator, build),
    )
    sink = MemorySink()
    context = TickContext(
        clock=clock,
        audit=sink,
        store=FileStateStore(tmp_path / "state.json"),
        metrics=DaemonMetrics(),
        instance="test-1",
        config_version=config.version,
        dry_run=False,
        state_outage=Outage("state store", clock),
    )
    return runtime, context, sink


async def test_a_tick_scales_saves_and_audits(tmp_path: Path, manual_clock: ManualClock) -> None:
    runtime, context, sink = _runtime(tmp_path, manual_clock)
    record = await evaluate(runtime, context)
    # total 40 at 5 per replica: ceil(40 / 5) = 8; the default limit from 2 is max(2 + 4, 2 x 2) = 6
    assert (record.action, record.recommended, record.desired) == ("scaled", 8, 6)
    assert sink.records == [record]
    assert record.config_version == context.config_version and record.instance == "test-1"
    assert record.inputs[0]["value"] == 40 and record.inputs[0]["source"] == "queue"
    assert [step["code"] for step in record.steps] == [
        "recommended",
        "scale_up_stabilized",
        "scale_up_limit",
    ]
    assert isinstance(runtime.actuator, RecordingActuator)
    assert [call.desired for call in runtime.actuator.calls] == [6]
    stored = (await context.store.load_all())["workers"]
    assert stored.state.events[-1].after == 6  # the scale event, for the next rate limit
    assert stored.last_record_id == record.id and stored.pending is None


async def test_records_of_a_target_form_a_chain(tmp_path: Path, manual_clock: ManualClock) -> None:
    runtime, context, _sink = _runtime(tmp_path, manual_clock)
    first = await evaluate(runtime, context)
    manual_clock.advance(15)
    second = await evaluate(runtime, context)
    assert (first.prev, second.prev) == (None, first.id)


async def test_a_failed_source_is_a_failed_observation(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, _ = _runtime(tmp_path, manual_clock)
    runtime.sources = {"queue": Unreachable()}
    record = await evaluate(runtime, context)
    assert (record.action, record.desired, record.not_scaled_reason) == ("held", 2, "MetricFailure")
    error = record.inputs[0]["error"]
    assert "connection refused" in error and "hunter2" not in error
    # redacted where it entered (the read), so no part of the record carries it: the
    # rule that could not be evaluated quotes the error too
    assert "hunter2" not in record.to_json() and "password=***" in record.rules[0]["detail"]
    assert context.metrics.source_errors.labels("queue")._value.get() == 1


async def test_an_actuator_that_cannot_report_leaves_a_failed_record(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, sink = _runtime(tmp_path, manual_clock)

    async def broken() -> Capacity:
        raise ActuatorError("the cache is gone", code="ResourceNotFound")

    runtime.actuator.current = broken  # type: ignore[method-assign]
    record = await evaluate(runtime, context)
    assert (record.action, record.desired) == ("failed", None)
    assert record.error == "reading current capacity: ResourceNotFound: the cache is gone"
    assert sink.records == [record]


@pytest.mark.parametrize(
    ("problem", "action", "error"),
    [
        pytest.param(
            ActuatorError("image pull failed", code="ContainerAppOperationError"),
            "failed",
            "ContainerAppOperationError: image pull failed",
            id="failed with the platform's code",
        ),
        pytest.param(
            Throttled("subscription writes throttled", retry_after=30),
            "skipped",
            "throttled: retry after 30s",
            id="throttled is skipped",
        ),
    ],
)
async def test_a_failed_apply_is_audited_and_not_recorded_as_a_scale(
    tmp_path: Path, manual_clock: ManualClock, problem: Exception, action: str, error: str
) -> None:
    runtime, context, _ = _runtime(tmp_path, manual_clock)
    runtime.actuator = Failing(problem, runtime.target.actuator, manual_clock)
    record = await evaluate(runtime, context)
    assert record.action == action
    assert record.error is not None and error in record.error
    stored = (await context.store.load_all())["workers"]
    assert stored.state.events == ()  # no scale happened: no rate limit or cooldown starts
    assert stored.pending is None


async def test_dry_run_decides_and_audits_but_never_applies(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, _ = _runtime(tmp_path, manual_clock)
    dry = TickContext(**{**context.__dict__, "dry_run": True})
    record = await evaluate(runtime, dry)
    assert (record.action, record.dry_run, record.desired) == ("dry-run", True, 6)
    assert isinstance(runtime.actuator, RecordingActuator)
    assert runtime.actuator.calls == []


async def test_every_action_is_one_of_the_documented(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, sink = _runtime(tmp_path, manual_clock)
    for _ in range(3):
        await evaluate(runtime, context)
        manual_clock.advance(5)
    assert {record.action for record in sink.records} <= set(ACTIONS)


@pytest.mark.parametrize(
    ("actuator_at", "operation", "outcome", "events"),
    [
        pytest.param(6, None, "landed", 1, id="at the new capacity"),
        pytest.param(2, None, "lost", 0, id="at the old capacity"),
        # the platform is still carrying the change out, somewhere between the two
        pytest.param(4, "op-7", "landed", 1, id="operation in flight between the two"),
    ],
)
async def test_a_change_in_flight_at_a_crash_is_settled_on_start(
    tmp_path: Path,
    manual_clock: ManualClock,
    actuator_at: int,
    operation: str | None,
    outcome: str,
    events: int,
) -> None:
    """The process died after writing the change ahead and before saving its outcome: if
    the actuator reports the new capacity or an operation in flight, the change is
    recorded (cooldowns continue); if not, it never happened and the next evaluation
    decides afresh."""
    runtime, context, sink = _runtime(tmp_path, manual_clock)
    recording = RecordingActuator(
        runtime.target.actuator.model_copy(update={"initial": actuator_at}),  # type: ignore[arg-type]
        manual_clock,
    )

    async def current() -> Capacity:
        return Capacity(actuator_at, actuator_at, operation=operation)

    recording.current = current  # type: ignore[method-assign]
    runtime.actuator = recording
    pending = Pending(at=manual_clock.now(), before=2, after=6, cooldown_s=600.0)
    runtime.stored = StoredTarget(pending=pending)
    assert await recover_pending(runtime, context.store, sink) == outcome
    assert runtime.stored.pending is None
    assert len(runtime.stored.state.events) == events
    if outcome == "landed":
        assert runtime.stored.state.scale_in_cooldown_until == pending.at + timedelta(minutes=10)
    assert (await context.store.load_all())["workers"] == runtime.stored
    assert sink.records == []  # written ahead by an older scalerd: no record to settle


class Crashing(RecordingActuator):
    """Applies the change, then the process "dies" before the tick saves the outcome."""

    async def apply(self, decision: Decision) -> Applied:
        await super().apply(decision)
        raise asyncio.CancelledError


@pytest.mark.parametrize(("lands", "action"), [(True, "scaled"), (False, "failed")])
async def test_recovery_writes_the_record_of_the_interrupted_evaluation(
    tmp_path: Path, manual_clock: ManualClock, lands: bool, action: str
) -> None:
    """The record the evaluation would have written is written at restart, with its time,
    its decision and a note, and the next record's ``prev`` is its id: no gap."""
    runtime, context, sink = _runtime(tmp_path, manual_clock)
    first = await evaluate(runtime, context)  # 2 -> 6
    manual_clock.advance(timedelta(minutes=1))
    at_six = runtime.target.actuator.model_copy(update={"initial": 6})
    runtime.actuator = Crashing(at_six, manual_clock)  # type: ignore[arg-type]
    if not lands:
        runtime.actuator.apply = _never_arrives  # type: ignore[method-assign]
    interrupted_at = manual_clock.now()
    with pytest.raises(asyncio.CancelledError):
        await evaluate(runtime, context)  # 6 -> 8, interrupted
    assert sink.records == [first]

    manual_clock.advance(timedelta(minutes=5))  # the restart
    restarted, context, sink = _runtime(tmp_path, manual_clock)
    restarted.stored = (await context.store.load_all())["workers"]
    restarted.actuator = runtime.actuator
    assert restarted.stored.pending is not None
    assert await recover_pending(restarted, context.store, sink) == ("landed" if lands else "lost")
    (settled,) = sink.records
    assert (settled.action, settled.ts, settled.prev) == (action, interrupted_at, first.id)
    assert (settled.current or {})["provisioned"] == 6 and settled.desired == 8
    assert any("settled at restart" in note for note in settled.notes)
    assert settled.id == restarted.stored.last_record_id
    manual_clock.advance(15)
    now_at = runtime.target.actuator.model_copy(update={"initial": 8 if lands else 6})
    restarted.actuator = RecordingActuator(now_at, manual_clock)  # type: ignore[arg-type]
    after = await evaluate(restarted, context)
    assert after.prev == settled.id


async def _never_arrives(decision: Decision) -> Applied:
    raise asyncio.CancelledError


class InspectingActuator(RecordingActuator):
    """Reads the state store from inside ``apply``: what a crash at that moment leaves."""

    store: FileStateStore

    async def apply(self, decision: Decision) -> Applied:
        self.seen = (await FileStateStore(self.store.path).load_all())["workers"]
        return await super().apply(decision)


async def test_the_change_is_durable_in_the_store_while_the_actuator_runs(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, _ = _runtime(tmp_path, manual_clock)
    actuator = InspectingActuator(runtime.target.actuator, manual_clock)  # type: ignore[arg-type]
    assert isinstance(context.store, FileStateStore)
    actuator.store = context.store
    runtime.actuator = actuator
    record = await evaluate(runtime, context)
    pending = actuator.seen.pending
    assert pending is not None and (pending.before, pending.after) == (2, 6)
    assert pending.record is not None and pending.record["id"] == record.id
    assert actuator.seen.last_record_id is None  # the record is not written yet: no prev
    assert (await context.store.load_all())["workers"].pending is None  # settled after


class UnreachableStore(FileStateStore):
    down = True

    async def save(self, target: str, stored: StoredTarget) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await super().save(target, stored)


async def test_a_change_that_cannot_be_written_ahead_is_not_made(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, sink = _runtime(tmp_path, manual_clock)
    store = UnreachableStore(tmp_path / "state.json")
    context = replace(context, store=store)
    with capture_logs() as logs:
        records = []
        for _ in range(3):
            records.append(await evaluate(runtime, context))
            manual_clock.advance(15)
        store.down = False
        recovered = await evaluate(runtime, context)
    assert [r.action for r in records] == ["skipped"] * 3
    assert {r.not_scaled_reason for r in records} == {"StateUnavailable"}
    assert (
        records[0].error == "state store unavailable (connection refused): the change was not made"
    )
    assert [r.prev for r in records[1:]] == [r.id for r in records[:-1]]  # still one chain
    assert isinstance(runtime.actuator, RecordingActuator)
    assert [call.desired for call in runtime.actuator.calls] == [6]  # only once it answered
    assert recovered.action == "scaled" and recovered.prev == records[-1].id
    assert sink.records == [*records, recovered]
    outage = [e for e in logs if "state store" in e["event"]]
    assert [(e["log_level"], e["event"]) for e in outage] == [
        ("warning", "state store unavailable"),
        ("info", "state store available again"),
    ]
    assert not any("exc_info" in e or "exception" in e for e in logs)
