"""One evaluation of one target (``scalerd.daemon.tick``), with a manual clock, real local
plugins, the file state store and an in-memory audit sink."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from scalerd.actuators import ACTUATORS
from scalerd.actuators.recording import RecordingActuator
from scalerd.audit import ACTIONS, MemorySink
from scalerd.clock import ManualClock
from scalerd.config import load_config
from scalerd.core import Capacity, Decision, Sample
from scalerd.daemon.metrics import DaemonMetrics
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


@pytest.mark.parametrize(("actuator_at", "outcome", "events"), [(6, "landed", 1), (2, "lost", 0)])
async def test_a_change_in_flight_at_a_crash_is_settled_on_start(
    tmp_path: Path, manual_clock: ManualClock, actuator_at: int, outcome: str, events: int
) -> None:
    """The process died after writing the change ahead and before saving its outcome: if
    the actuator reports the new capacity, the change is recorded (cooldowns continue);
    if not, it never happened and the next evaluation decides afresh."""
    runtime, context, _ = _runtime(tmp_path, manual_clock)
    runtime.actuator = RecordingActuator(
        runtime.target.actuator.model_copy(update={"initial": actuator_at}),
        manual_clock,  # type: ignore[arg-type]
    )
    pending = Pending(at=manual_clock.now(), before=2, after=6, cooldown_s=600.0)
    runtime.stored = StoredTarget(pending=pending)
    assert await recover_pending(runtime, context.store) == outcome
    assert runtime.stored.pending is None
    assert len(runtime.stored.state.events) == events
    if outcome == "landed":
        assert runtime.stored.state.scale_in_cooldown_until == pending.at + timedelta(minutes=10)
    assert (await context.store.load_all())["workers"] == runtime.stored
