"""A long-running operation in flight is stored state: its codec, and what reads it back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from scalerd.audit import AuditRecord, MemorySink, render_table
from scalerd.cli import build_parser
from scalerd.clock import ManualClock
from scalerd.core import Capacity, Decision, ScaleEvent
from scalerd.daemon.operations import OperationWatch, follow_operation, settle_operation
from scalerd.daemon.state import (
    InFlight,
    StoredTarget,
    decode_stored,
    encode_stored,
)
from scalerd.daemon.tick import TargetRuntime, TickContext, evaluate
from scalerd.plugins import Applied, OperationOutcome

from .test_tick import _runtime as tick_runtime

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)

IN_FLIGHT = InFlight(
    operation="6f1c0a52-0d1e-4c55-9a8e-0c7b2b1f3e11",
    resume="eyJ2ZXJzaW9uIjoxLCJkYXRhIjp7fX0=",
    started_at=T0,
    before=1,
    after=2,
    cooldown_s=900.0,
    tier="GP_Gen5_4",
    notes=("GP_Gen5_2 -> GP_Gen5_4",),
)

# a target exactly as scalerd stored it before operations were part of the state
EARLIER_VERSION = {
    "state": {
        "samples": {},
        "recommendations": [],
        "events": [],
        "scale_out_cooldown_until": None,
        "scale_in_cooldown_until": None,
        "scale_out_base": None,
        "consecutive_failures": 0,
        "last_active_at": None,
        "controls": {"pause": None, "pause_until": None, "override": None, "override_until": None},
    },
    "pending": None,
    "last_record_id": "01a202b2c57b-7373528799d15ea0",
}


def test_an_operation_in_flight_round_trips_exactly_through_json_text() -> None:
    kept = StoredTarget(operation=IN_FLIGHT, last_record_id="01a202b2c57b-7373528799d15ea0")
    assert decode_stored(json.loads(json.dumps(encode_stored(kept)))) == kept


def test_a_document_of_the_earlier_version_reads_as_no_operation_in_flight() -> None:
    decoded = decode_stored(EARLIER_VERSION)
    assert decoded.operation is None
    assert decoded.last_record_id == "01a202b2c57b-7373528799d15ea0"
    # and what this version writes reads back in the earlier one: the same keys, one more
    assert set(encode_stored(decoded)) == set(EARLIER_VERSION) | {"operation"}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"operation": "x"}, id="incomplete"),
        pytest.param(
            {**encode_stored(StoredTarget(operation=IN_FLIGHT))["operation"], "resume": 7},
            id="token-not-text",
        ),
        pytest.param("x", id="not-an-object"),
    ],
)
def test_a_damaged_operation_is_refused(operation: object) -> None:
    with pytest.raises(ValueError, match="not a stored target"):
        decode_stored({**EARLIER_VERSION, "operation": operation})


# --- the daemon's side: hold while stored, count only what happened ----------------------

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
[targets.cooldown]
up = "10m"
[[targets.track]]
metric = "queue"
type = "total"
target = 5
"""


class LongRunning:
    """An actuator whose changes are operations that end when, and how, the test says; its
    resource stays where the test puts it (``capacity``)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.asked: list[int] = []
        self.ended = asyncio.Event()
        self.code: str | None = None

    async def current(self) -> Capacity:
        return Capacity.steady(self.capacity)

    async def apply(self, decision: Decision) -> Applied:
        self.asked.append(decision.desired)
        number = len(self.asked)
        return Applied(
            f"op-{number}",
            (f"{decision.current.provisioned} -> {decision.desired}",),
            f"token-{number}",
        )

    async def outcome(self, operation: str, resume: str) -> OperationOutcome:
        await self.ended.wait()
        return OperationOutcome(operation, self.code, "" if self.code is None else "it broke")

    async def aclose(self) -> None:
        pass


def target_runtime(
    tmp_path: Path, clock: ManualClock
) -> tuple[TargetRuntime, TickContext, MemorySink, LongRunning]:
    runtime, context, sink = tick_runtime(tmp_path, clock, RULE)
    runtime.actuator = actuator = LongRunning(2)
    return runtime, context, sink, actuator


async def settle(runtime: TargetRuntime, context: TickContext) -> AuditRecord | None:
    followed = await follow_operation(runtime)
    assert followed is not None
    return await settle_operation(runtime, context, *followed)


async def test_a_stored_operation_holds_the_target_and_is_not_counted_yet(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, _, actuator = target_runtime(tmp_path, manual_clock)

    started = await evaluate(runtime, context)
    manual_clock.advance(60)
    held = await evaluate(runtime, context)  # the resource shows nothing in flight

    assert (started.action, started.operation, actuator.asked) == ("scaled", "op-1", [6])
    in_flight = (await context.store.load_all())["workers"].operation
    assert in_flight == InFlight("op-1", "token-1", started.ts, 2, 6, 600.0, None, ("2 -> 6",))
    assert runtime.stored.state.events == ()  # not counted before it is seen to succeed
    assert runtime.stored.state.scale_out_cooldown_until is None
    assert (held.not_scaled_reason, held.operation) == ("OperationInFlight", "op-1")
    assert actuator.asked == [6]


@pytest.mark.parametrize(
    ("code", "resource_at", "action", "counted"),
    [
        pytest.param(None, 6, "scaled", True, id="confirmed"),
        pytest.param("SkuNotAvailable", 2, "failed", False, id="failed"),
        pytest.param("OperationStatusUnknown", 6, "scaled", True, id="unknown-but-landed"),
        pytest.param("OperationStatusUnknown", 2, "failed", False, id="unknown-not-landed"),
    ],
)
async def test_only_a_change_that_happened_counts_toward_cooldowns(
    tmp_path: Path,
    manual_clock: ManualClock,
    code: str | None,
    resource_at: int,
    action: str,
    counted: bool,
) -> None:
    runtime, context, sink, actuator = target_runtime(tmp_path, manual_clock)
    started = await evaluate(runtime, context)
    manual_clock.advance(90)
    actuator.capacity, actuator.code = resource_at, code
    actuator.ended.set()

    ended = await settle(runtime, context)
    manual_clock.advance(30)
    after = await evaluate(runtime, context)

    assert ended is not None and sink.records == [started, ended, after]
    assert (ended.action, ended.prev, ended.operation) == (action, started.id, "op-1")
    assert ended.duration_ms == 90_000.0  # from the start of the operation to its end
    console = Console(width=200, record=True)
    console.print(render_table([ended]))
    assert (ended.error or ended.notes[0]) in console.export_text()  # what on-call reads
    state = (await context.store.load_all())["workers"]
    assert state.last_record_id == after.id
    if counted:
        # as of the start of the change: the cooldown ends when it would have anyway
        assert state.state.events == (ScaleEvent(started.ts, 2, 6),)
        assert state.state.scale_out_cooldown_until == started.ts + timedelta(minutes=10)
        assert after.not_scaled_reason == "CooldownActive"
        assert state.operation is None
    else:
        assert ended.error == f"{code}: it broke"
        assert state.state.events == () and state.state.scale_out_cooldown_until is None
        assert (after.action, actuator.asked) == ("scaled", [6, 6])  # free to try again
        assert state.operation is not None and state.operation.operation == "op-2"


async def test_an_operation_is_settled_once(tmp_path: Path, manual_clock: ManualClock) -> None:
    runtime, context, sink, actuator = target_runtime(tmp_path, manual_clock)
    await evaluate(runtime, context)
    actuator.capacity = 6
    actuator.ended.set()
    followed = await follow_operation(runtime)
    assert followed is not None

    first = await settle_operation(runtime, context, *followed)
    again = await settle_operation(runtime, context, *followed)

    assert first is not None and again is None
    assert [record.action for record in sink.records] == ["scaled", "scaled"]
    assert runtime.stored.state.events == (ScaleEvent(sink.records[0].ts, 2, 6),)


async def test_the_watch_settles_in_the_background_and_stops_waiting_at_its_bound(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    runtime, context, _, actuator = target_runtime(tmp_path, manual_clock)
    watch = OperationWatch({runtime.name: runtime}.get)
    await evaluate(runtime, context)
    watch.follow(runtime, context)
    watch.follow(runtime, context)  # idempotent: one follower per target

    assert await watch.wait(0.01) == []  # not ended yet: still stored
    assert runtime.stored.operation is not None
    actuator.capacity = 6
    actuator.ended.set()
    (ended,) = await watch.wait(5)

    assert (ended.action, ended.operation) == ("scaled", "op-1")
    assert runtime.stored.operation is None
    await watch.aclose()


@pytest.mark.parametrize(
    ("given", "wait"),
    [
        pytest.param([], timedelta(minutes=3), id="default"),
        pytest.param(["--wait", "0"], timedelta(0), id="no-wait"),
        pytest.param(["--wait", "5m"], timedelta(minutes=5), id="five-minutes"),
    ],
)
def test_run_once_waits_a_few_minutes_unless_told(given: list[str], wait: timedelta) -> None:
    assert build_parser().parse_args(["run", "--once", *given]).wait == wait


def test_a_wait_that_is_no_duration_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--once", "--wait", "soon"])
    assert exited.value.code == 2
    assert "--wait: invalid duration 'soon'" in capsys.readouterr().err


async def test_an_operation_its_actuator_cannot_follow_is_settled_by_the_resource(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    """A stored operation whose target now has an actuator that does not follow operations
    (the config changed) must not hold the target for ever."""
    runtime, context, _ = tick_runtime(tmp_path, manual_clock, RULE)  # a recording pool at 2
    runtime.stored = StoredTarget(operation=IN_FLIGHT)  # 1 -> 2, from an Azure actuator

    ended = await settle(runtime, context)

    assert ended is not None and ended.action == "scaled"  # the pool is at 2: it happened
    assert ended.notes[0].startswith(f"operation {IN_FLIGHT.operation} not confirmed")
    assert runtime.stored.operation is None
    assert runtime.stored.state.events == (ScaleEvent(IN_FLIGHT.started_at, 1, 2),)
