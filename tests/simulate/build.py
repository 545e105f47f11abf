"""Builders for the simulator's tests: rule files and traces written to ``tmp_path``."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalerd.simulate.run import Timeline, simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import Trace


def rule_file(tmp_path: Path, text: str, name: str = "rule") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


def trace_file(tmp_path: Path, values: Sequence[float], step: float = 15.0) -> Path:
    path = tmp_path / "trace.csv"
    rows = "".join(f"{index * step:g},{value:g}\n" for index, value in enumerate(values))
    path.write_text("t_seconds,value\n" + rows)
    return path


def replay(
    tmp_path: Path, rule: str, values: Sequence[float], step: float = 15.0, **overrides: Any
) -> Timeline:
    """``values`` (one every ``step`` seconds) through the rule file ``rule``."""
    scenario = load_scenario(rule_file(tmp_path, rule), overrides=overrides)
    return simulate(scenario, Trace.from_values(values, step))


# One replica that never moves: the model's readings, with no scaling in the way.
PINNED = """\
    interval = "{interval}"
    min = 1
    max = 1
    [[track]]
    metric = "{metric}"
    type = "{type}"
    target = 1
    [simulate]
    service_time = "{service_time}"
    [simulate.metrics]
    "{metric}" = "{kind}"
"""


def pinned(
    kind: str, *, interval: str = "15s", service_time: str = "0s", track_type: str = "total"
) -> str:
    return PINNED.format(
        interval=interval, metric="m", type=track_type, kind=kind, service_time=service_time
    )
