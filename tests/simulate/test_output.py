"""``timeline.csv`` written by one ``%`` format per row (every cell a number) has the bytes
the csv writer writes for the same rows."""

from __future__ import annotations

import csv
import io
from array import array

import pytest

from scalerd.simulate.output import COLUMNS, _cells_csv, _numbers_csv, timeline_csv
from scalerd.simulate.run import Timeline

# awkward numbers: rounding at the sixth place, huge, tiny, negative zero, whole
FLOATS = (0.0, -0.0, 0.1234565, 2.5e-7, 1e20, 3.0, 123456.7890125, 99.9999995, 7e-300)


def _timeline(interval: float, metrics: tuple[str, ...], ticks: int) -> Timeline:
    def floats(offset: int) -> array[float]:
        return array("d", (FLOATS[(tick + offset) % len(FLOATS)] for tick in range(ticks)))

    def ints(offset: int) -> array[int]:
        return array("q", ((tick * 7 + offset) % 13 - 1 for tick in range(ticks)))

    return Timeline(
        interval=interval,
        capacity=1.0,
        initial=1,
        scale=1.0,
        demand=floats(0),
        readings={name: floats(index + 1) for index, name in enumerate(metrics)},
        recommended=ints(1),
        desired=ints(2),
        provisioned=ints(3),
        ready=ints(4),
        metric_failures=0,
    )


@pytest.mark.parametrize("interval", [15.0, 2.5, 0.001, 86400.0])
@pytest.mark.parametrize("metrics", [("cpu",), ("cpu", 'queue, "orders"', "latency")])
@pytest.mark.parametrize("ticks", [0, 1, 1000])
def test_a_row_per_format_writes_the_csv_writer_s_bytes(
    interval: float, metrics: tuple[str, ...], ticks: int
) -> None:
    timeline = _timeline(interval, metrics, ticks)
    header = (*COLUMNS, *(f"metric:{name}" for name in metrics[1:]))

    written = _numbers_csv(timeline, header)

    assert written == _cells_csv(timeline, header)
    assert timeline_csv(timeline) == written
    rows = list(csv.reader(io.StringIO(written)))
    assert len(rows) == ticks + 1 and rows[0] == list(header)
