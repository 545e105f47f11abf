"""Demand traces: a ``t_seconds,value`` series held in two compact float arrays.

The replay source and ``scalerd simulate`` read the same traces, so a demo, a test and a
simulation see exactly the same numbers. A trace is a step function: each row's value
holds until the next row's time, and the last row holds for one ``step``.

A CSV trace needs the header ``t_seconds,value`` and strictly increasing times; the step
may be fixed or irregular. Every bad row is reported with the file and line it is on,
because ops edit these files by hand.
"""

from __future__ import annotations

import csv
import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

__all__ = ["HEADER", "Trace", "TraceError", "load_trace"]

HEADER = ("t_seconds", "value")


class TraceError(ValueError):
    """A trace that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A step function of time: ``values[i]`` holds from ``times[i]`` until ``times[i+1]``.

    ``origin`` names where the trace came from (a file name, or ``<inline>``) so that
    errors found later still point at it.
    """

    times: array[float]
    values: array[float]
    step: float
    origin: str

    @classmethod
    def from_values(cls, values: Iterable[float], step: float, start: float = 0.0) -> Trace:
        """A fixed-step trace from inline values (``values = [...]`` with ``step`` in config)."""
        if not step > 0:
            raise TraceError(f"<inline>: step must be positive, got {step}")
        data = array("d", values)
        if not data:
            raise TraceError("<inline>: a trace needs at least one value")
        for index, value in enumerate(data):
            _check_value(value, f"<inline>: values[{index}]")
        times = array("d", (start + index * step for index in range(len(data))))
        return cls(times, data, step, "<inline>")

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def duration(self) -> float:
        """Seconds the trace covers, the last row's ``step`` included."""
        return self.times[-1] - self.times[0] + self.step

    def value_at(self, t: float) -> float:
        """The value in force at trace time ``t``: the last row at or before it.

        Past the end the last value holds; callers that loop or stop at the end decide
        that with :attr:`duration`. Before the first row there is no value at all.
        """
        index = bisect_right(self.times, t) - 1
        if index < 0:
            raise ValueError(f"{self.origin}: t={t:g}s is before the trace's start {self.start:g}s")
        return self.values[index]

    def __len__(self) -> int:
        return len(self.times)


def load_trace(path: Path) -> Trace:
    """Read a ``t_seconds,value`` CSV; raise :class:`TraceError` naming the file and line."""
    try:
        # utf-8-sig: a trace saved from a spreadsheet starts with a byte-order mark
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse(handle, str(path))
    except OSError as error:
        raise TraceError(f"{path}: cannot read trace: {error.strerror or error}") from error


def _parse(lines: Iterable[str], origin: str) -> Trace:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise TraceError(f"{origin}:1: expected the header 't_seconds,value', got {header!r}")
    times: array[float] = array("d")
    values: array[float] = array("d")
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{origin}:{reader.line_num}"
        t, value = _parse_row(row, where)
        if times and t <= times[-1]:
            raise TraceError(f"{where}: t_seconds {t:g} must be greater than {times[-1]:g}")
        times.append(t)
        values.append(value)
    if len(times) < 2:
        raise TraceError(f"{origin}: a trace needs at least two rows to know its step")
    return Trace(times, values, _smallest_gap(times), origin)


def _parse_row(row: list[str], where: str) -> tuple[float, float]:
    if len(row) != 2:
        raise TraceError(f"{where}: expected 2 columns (t_seconds,value), got {len(row)}")
    t = _number(row[0], "t_seconds", where)
    value = _number(row[1], "value", where)
    _check_value(value, where)
    return t, value


def _number(cell: str, column: str, where: str) -> float:
    try:
        number = float(cell)
    except ValueError:
        raise TraceError(f"{where}: {column} {cell.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise TraceError(f"{where}: {column} must be finite, got {cell.strip()!r}")
    return number


def _check_value(value: float, where: str) -> None:
    # A negative or NaN reading is a metric failure to the core, never data: reject it here
    # rather than have a replay fail at some point in the middle of a run.
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: value must be a finite number >= 0, got {value:g}")


def _smallest_gap(times: array[float]) -> float:
    """The step of a fixed-step trace; for an irregular one, its finest resolution."""
    return min(later - earlier for earlier, later in pairwise(times))
