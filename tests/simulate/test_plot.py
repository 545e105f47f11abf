"""Simulate's plots on long traces: the under-provisioning strip adds up to the scored
fraction (whole replay and zoomed), ``--window`` zooms, ``--compare`` overlays, and the
bounds in force are in the timeline the plots draw."""

from __future__ import annotations

import csv
from itertools import pairwise
from pathlib import Path

import pytest

from scalerd.cli import main
from scalerd.simulate.plot import shortfall_slices
from scalerd.simulate.run import Timeline, simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.simulate.scores import score
from scalerd.traces import load_trace

from .test_cli import AZURE, HPA, PNG_SIGNATURE, unseen_trace

KEDA = HPA.parent / "keda-default.toml"


def _replay(tmp_path: Path, config: Path = KEDA) -> Timeline:
    scenario = load_scenario(config, target=None, overrides={"peak_replicas": 20})
    return simulate(scenario, load_trace(unseen_trace(tmp_path)))


@pytest.mark.parametrize("slices", [1, 7, 400, 100_000])
def test_the_strip_adds_up_to_the_scored_fraction(tmp_path: Path, slices: int) -> None:
    timeline = _replay(tmp_path)
    scored = score(timeline).underprovisioned_fraction
    assert 0.01 < scored < 0.99  # KEDA's defaults leave a sawtooth of shortfalls to draw
    drawn = shortfall_slices(timeline, slices=slices)
    assert len(drawn) <= slices and drawn[0].first == 0 and drawn[-1].end == len(timeline)
    assert all(a.end == b.first for a, b in pairwise(drawn))  # no gap
    weighted = sum(s.fraction * (s.end - s.first) for s in drawn) / len(timeline)
    assert weighted == pytest.approx(scored, abs=1e-6)


def test_a_zoomed_strip_adds_up_to_the_window_s_share(tmp_path: Path) -> None:
    timeline = _replay(tmp_path)
    first, end = 300, 900
    short = sum(
        timeline.demand[t] > timeline.ready[t] * timeline.capacity for t in range(first, end)
    )
    drawn = shortfall_slices(timeline, first, end)
    weighted = sum(s.fraction * (s.end - s.first) for s in drawn) / (end - first)
    assert weighted == pytest.approx(short / (end - first), abs=1e-9)


def test_bounds_in_force_are_in_the_timeline(tmp_path: Path) -> None:
    timeline = _replay(tmp_path, HPA)
    assert timeline.minimum is not None and timeline.maximum is not None
    assert set(timeline.minimum) == {1} and set(timeline.maximum) == {100}


def test_window_zooms_and_compare_overlays(tmp_path: Path) -> None:
    trace = unseen_trace(tmp_path)
    out = tmp_path / "runs"
    args = ["simulate", "--config", str(HPA), "--trace", str(trace), "--out", str(out)]
    assert main([*args, "--compare", str(AZURE), str(KEDA), "--window", "2h:3h"]) == 0
    assert (out / "compare.png").read_bytes().startswith(PNG_SIGNATURE)
    # the window changes the picture, never the files
    whole = tmp_path / "whole"
    assert main([*args[:-1], str(whole), "--compare", str(AZURE), str(KEDA)]) == 0
    assert (out / "compare.png").read_bytes() != (whole / "compare.png").read_bytes()
    with (
        (out / "hpa-default" / "timeline.csv").open() as zoomed,
        (whole / "hpa-default" / "timeline.csv").open() as full,
    ):
        assert list(csv.reader(zoomed)) == list(csv.reader(full))
    assert main([*args, "--window", "9h:10h"]) == 1  # past the trace's end
    with pytest.raises(SystemExit) as bad:
        main([*args, "--window", "3h:2h"])
    assert bad.value.code == 2


def test_a_step_line_keeps_only_the_ticks_where_its_value_changes() -> None:
    import matplotlib.pyplot as plt

    from scalerd.simulate.plot import steps

    values = [3, 3, 3, 5, 5, 2, 2, 2, 2, 7, float("nan"), float("nan"), 7, 7]
    edges = [15.0 * tick for tick in range(len(values) + 1)]
    figure, axes = plt.subplots()
    try:
        steps(axes, edges, values)
        xs, ys = axes.get_lines()[-1].get_data()
    finally:
        plt.close(figure)
    # each change, and the last tick held to the last edge
    assert list(xs) == [0.0, 45.0, 75.0, 135.0, 150.0, 165.0, 180.0, 210.0]
    assert [y if y == y else "nan" for y in ys] == [3, 5, 2, 7, "nan", "nan", 7, 7]
    # the line holds every tick's value over that tick
    for tick, value in enumerate(values):
        held = ys[max(i for i, x in enumerate(xs) if x <= edges[tick])]
        assert held == value or (held != held and value != value), tick
