"""The recording actuator: capacity in memory, replicas ready ``startup`` after asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scalerd.actuators.recording import PLUGIN, RecordedCall, RecordingActuator, RecordingConfig
from scalerd.clock import ManualClock
from scalerd.core.model import Capacity, Decision
from scalerd.plugins import BuildContext


def decision(desired: int, clock: ManualClock) -> Decision:
    return Decision(
        target="demo",
        at=clock.now(),
        current=Capacity.steady(0),
        recommended=desired,
        desired=desired,
        steps=(),
        inputs=(),
        rules=(),
        not_scaled_reason=None,
    )


def recording(clock: ManualClock, **keys: Any) -> RecordingActuator:
    actuator = PLUGIN.build(
        RecordingConfig(kind="recording", name="pool", **keys), BuildContext(clock=clock)
    )
    assert isinstance(actuator, RecordingActuator)
    return actuator


async def test_starts_at_initial_all_ready(manual_clock: ManualClock) -> None:
    actuator = recording(manual_clock, initial=3)

    assert await actuator.current() == Capacity(provisioned=3, ready=3)


async def test_records_every_apply_with_its_time(manual_clock: ManualClock) -> None:
    actuator = recording(manual_clock, initial=1)
    start = manual_clock.now()

    await actuator.apply(decision(4, manual_clock))
    later = manual_clock.advance(15)
    await actuator.apply(decision(4, manual_clock))
    last = manual_clock.advance(15)
    await actuator.apply(decision(2, manual_clock))

    assert actuator.calls == [
        RecordedCall(start, 4),
        RecordedCall(later, 4),
        RecordedCall(last, 2),
    ]
    assert await actuator.current() == Capacity(provisioned=2, ready=2)


async def test_replicas_asked_for_are_ready_after_startup(manual_clock: ManualClock) -> None:
    actuator = recording(manual_clock, initial=2, startup="30s")
    await actuator.apply(decision(5, manual_clock))

    assert await actuator.current() == Capacity(provisioned=5, ready=2)
    manual_clock.advance(29.9)
    assert await actuator.current() == Capacity(provisioned=5, ready=2)
    manual_clock.advance(0.1)
    assert await actuator.current() == Capacity(provisioned=5, ready=5)


async def test_scaling_in_drops_the_newest_replicas_first(manual_clock: ManualClock) -> None:
    actuator = recording(manual_clock, initial=2, startup="30s")
    await actuator.apply(decision(5, manual_clock))

    await actuator.apply(decision(3, manual_clock))

    # the two ready replicas stay; one of the three starting ones is left
    assert await actuator.current() == Capacity(provisioned=3, ready=2)
    await actuator.apply(decision(1, manual_clock))
    assert await actuator.current() == Capacity(provisioned=1, ready=1)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"initial": -1}, "greater than or equal to 0", id="negative initial"),
        pytest.param({"startup": 30}, "needs a unit", id="bare number startup"),
        pytest.param({"replicas": 3}, "Extra inputs are not permitted", id="unknown key"),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RecordingConfig(kind="recording", name="pool", **keys)


async def test_persisted_capacity_survives_a_new_instance(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    config = RecordingConfig(kind="recording", name="pretend", initial=2, persist_to="capacity.txt")
    first = RecordingActuator(config, manual_clock, tmp_path / "capacity.txt")
    assert (await first.current()).provisioned == 2  # nothing stored yet: the initial count
    await first.apply(decision(7, manual_clock))
    second = RecordingActuator(config, manual_clock, tmp_path / "capacity.txt")
    assert (await second.current()).provisioned == 7


async def test_a_shared_capacity_file_refuses_a_stale_fencing_token(
    manual_clock: ManualClock, tmp_path: Path
) -> None:
    import json

    from scalerd.errors import StaleFence
    from scalerd.plugins import CURRENT_FENCE, Fence

    def replica() -> RecordingActuator:
        config = RecordingConfig(
            kind="recording", name="pool", initial=1, persist_to="pool", log_to="writes.jsonl"
        )
        actuator = PLUGIN.build(config, BuildContext(clock=manual_clock, base_dir=tmp_path))
        assert isinstance(actuator, RecordingActuator)
        return actuator

    old_owner, new_owner = replica(), replica()
    for actuator, token, desired in ((old_owner, 3, 2), (new_owner, 4, 5)):
        fenced = CURRENT_FENCE.set(Fence(token, f"r{token}", "lease:0"))
        try:
            await actuator.apply(decision(desired, manual_clock))
        finally:
            CURRENT_FENCE.reset(fenced)
    assert (await old_owner.current()).provisioned == 5  # it reads what the other wrote
    fenced = CURRENT_FENCE.set(Fence(3, "r3", "lease:0"))
    try:  # the old owner's late write, under its older token
        with pytest.raises(StaleFence, match="token 3 is older than 4"):
            await old_owner.apply(decision(1, manual_clock))
    finally:
        CURRENT_FENCE.reset(fenced)
    assert (await new_owner.current()).provisioned == 5
    log = [json.loads(line) for line in (tmp_path / "writes.jsonl").read_text().splitlines()]
    assert [(w["desired"], w["fence"], w["refused"]) for w in log] == [
        (2, 3, False),
        (5, 4, False),
        (1, 3, True),
    ]
