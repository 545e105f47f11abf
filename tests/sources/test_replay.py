"""The replay source: a trace played back on the injected clock, time-compressed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scalerd.clock import ManualClock
from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import BuildContext, Source
from scalerd.sources.replay import PLUGIN, ReplayConfig
from scalerd.traces import TraceError


def replay(clock: ManualClock, base_dir: Path = Path("."), **keys: Any) -> Source:
    config = ReplayConfig(kind="replay", name="demand", **keys)
    return PLUGIN.build(config, BuildContext(base_dir=base_dir, clock=clock))


async def test_reads_the_value_in_force_at_the_clock(manual_clock: ManualClock) -> None:
    source = replay(manual_clock, values=[10, 20, 30], step="60s")

    assert await source.read() == (Sample(manual_clock.now(), 10),)
    manual_clock.advance(60)
    assert await source.read() == (Sample(manual_clock.now(), 20),)


@pytest.mark.parametrize(
    ("keys", "elapsed", "expected"),
    [
        # speed 60: 2 wall seconds are 120 trace seconds, the third value
        pytest.param({"speed": 60}, 2, 30, id="time-compressed"),
        # offset 60s starts on the second value; 60 more seconds reach the third
        pytest.param({"offset": "60s"}, 60, 30, id="offset"),
        # 180 s is past the 3 x 60 s trace: it starts over, 200 s plays 20 s in
        pytest.param({}, 200, 10, id="loops by default"),
        # 250 s loops to 250 % 180 = 70 s, the second value: 20 x 0.5
        pytest.param({"scale": 0.5}, 250, 10, id="scaled"),
    ],
)
async def test_position_in_the_trace(
    manual_clock: ManualClock, keys: dict[str, Any], elapsed: float, expected: float
) -> None:
    source = replay(manual_clock, values=[10, 20, 30], step="60s", **keys)
    manual_clock.advance(elapsed)

    (sample,) = await source.read()

    assert sample == Sample(manual_clock.now(), expected)


async def test_without_loop_reading_past_the_end_fails(manual_clock: ManualClock) -> None:
    source = replay(manual_clock, values=[10, 20], step="60s", loop=False)
    manual_clock.advance(119)
    assert [s.value for s in await source.read()] == [20]

    manual_clock.advance(1)
    with pytest.raises(SourceError, match=r"reached the end of <inline> after 120 trace seconds"):
        await source.read()


async def test_plays_a_csv_relative_to_the_config_folder(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "day.csv").write_text("t_seconds,value\n0,4\n10,8\n")
    source = replay(manual_clock, tmp_path, path="traces/day.csv", speed=10)

    manual_clock.advance(1)

    assert [s.value for s in await source.read()] == [8]


def test_a_bad_csv_fails_the_build_naming_the_line(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    (tmp_path / "day.csv").write_text("t_seconds,value\n0,4\n10,oops\n")

    with pytest.raises(TraceError, match=r"day\.csv:3: value 'oops' is not a number"):
        replay(manual_clock, tmp_path, path="day.csv")


def test_an_offset_past_the_end_fails_the_build(manual_clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="offset 3m is past the end of <inline>"):
        replay(manual_clock, values=[1, 2], step="60s", offset="3m")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({}, "either path", id="no trace"),
        pytest.param({"path": "a.csv", "values": [1], "step": "1s"}, "not both", id="both"),
        pytest.param({"values": [1, 2]}, "positive step", id="values without step"),
        pytest.param({"path": "a.csv", "step": "1s"}, "inline values only", id="step with path"),
        pytest.param(
            {"values": [1, -1], "step": "1s"}, "greater than or equal to 0", id="negative"
        ),
        pytest.param({"values": [], "step": "1s"}, "at least 1 item", id="empty"),
        pytest.param({"values": [1], "step": "1s", "speed": 0}, "greater than 0", id="speed"),
        pytest.param({"values": [1], "step": 60}, "needs a unit", id="bare number step"),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReplayConfig(kind="replay", name="demand", **keys)
