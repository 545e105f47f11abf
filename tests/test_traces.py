"""Demand traces: a step function that holds each value until the next row."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.traces import Trace, TraceError, load_trace


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        pytest.param(0, 5.0, id="first row"),
        pytest.param(59.9, 5.0, id="held until the next row"),
        pytest.param(60, 7.0, id="next row from its time on"),
        pytest.param(150, 7.0, id="irregular gap: still held"),
        pytest.param(180, 2.0, id="last row"),
        pytest.param(10_000, 2.0, id="past the end the last value holds"),
    ],
)
def test_value_at_holds_each_value_until_the_next_row(
    tmp_path: Path, t: float, expected: float
) -> None:
    trace = load_trace(write(tmp_path, "t_seconds,value\n0,5\n60,7\n180,2\n"))

    assert trace.value_at(t) == expected


def test_irregular_trace_steps_at_its_finest_resolution(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, "t_seconds,value\n0,5\n60,7\n180,2\n"))

    assert trace.step == 60
    assert trace.duration == 240  # 0..180, and the last row holds for one step


def test_trace_need_not_start_at_zero(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, "t_seconds,value\n100,1\n110,2\n"))

    assert (trace.start, trace.duration) == (100, 20)
    with pytest.raises(ValueError, match="before the trace's start"):
        trace.value_at(99)


def test_inline_values_make_a_fixed_step_trace() -> None:
    trace = Trace.from_values([1, 2, 3], step=30)

    assert list(trace.times) == [0, 30, 60]
    assert (trace.value_at(45), trace.duration, len(trace)) == (2, 90, 3)


def test_spreadsheet_byte_order_mark_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(b"\xef\xbb\xbft_seconds,value\r\n0,1\r\n\r\n1,2\r\n")

    assert list(load_trace(path).values) == [1, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("time,value\n0,1\n", r"trace\.csv:1: expected the header", id="header"),
        pytest.param("", r"trace\.csv:1: expected the header", id="empty file"),
        pytest.param("t_seconds,value\n0,1\n60,x\n", r"trace\.csv:3: value 'x'", id="text"),
        pytest.param("t_seconds,value\n0,1\n60\n", r"trace\.csv:3: expected 2 columns", id="short"),
        pytest.param(
            "t_seconds,value\n0,1\n60,1\n60,2\n", r"trace\.csv:4: t_seconds 60 must be", id="repeat"
        ),
        pytest.param(
            "t_seconds,value\n60,1\n0,1\n", r"trace\.csv:3: t_seconds 0 must be", id="backwards"
        ),
        pytest.param(
            "t_seconds,value\n0,1\n60,-1\n", r"trace\.csv:3: value must be", id="negative"
        ),
        pytest.param("t_seconds,value\n0,nan\n60,1\n", r"trace\.csv:2: value must be", id="nan"),
        pytest.param("t_seconds,value\n0,1\n", r"at least two rows", id="one row"),
    ],
)
def test_bad_csv_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, text))


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"missing\.csv: cannot read trace"):
        load_trace(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("values", "step", "message"),
    [
        pytest.param([], 60, "at least one value", id="empty"),
        pytest.param([1, -2], 60, r"values\[1\]", id="negative"),
        pytest.param([1], 0, "step must be positive", id="zero step"),
    ],
)
def test_bad_inline_values_are_rejected(values: list[float], step: float, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        Trace.from_values(values, step)


def test_the_bundled_trace_loads() -> None:
    """The embedded default replays it: a day at 60 s steps, starting at 0."""
    path = Path(__file__).parents[1] / "scalerd" / "data" / "alibaba2018_cluster_cpu_day.csv"
    trace = load_trace(path)
    assert (trace.start, trace.step, len(trace.values)) == (0, 60, 1440)
    assert min(trace.values) > 0
