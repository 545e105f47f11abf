"""A ``[[breaker]]``'s metric in a replay: a dependency described in
``[simulate.dependencies]`` (healthy, failing, when it fails), since its health does not
follow the demand trace; the open breakers in ``timeline.csv``."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.errors import ConfigError
from scalerd.simulate.output import timeline_csv
from scalerd.simulate.run import simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import Trace

RULE = """\
interval = "60s"
min = 1
max = 10

[[track]]
metric = "rps"
type = "total"
target = 10

[[breaker]]
name = "upstream"
metric = "upstream errors"
open_when = { above = 0.5 }
close_when = { below = 0.1, for = "2m" }

[simulate]
capacity = 10
startup = "0s"

[simulate.metrics]
rps = "arrivals"
"""
DEPENDENCY = """
[simulate.dependencies."upstream errors"]
healthy = 0
failing = 0.9
failures = [{ start = "5m", duration = "10m" }]
"""
# demand climbs 10 → 80 over the first 20 minutes, one step a minute
CLIMB = Trace.from_values([10 + 70 * min(minute, 20) / 20 for minute in range(30)], 60.0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rule.toml"
    path.write_text(text)
    return path


def test_scale_out_is_held_while_the_dependency_fails(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, RULE + DEPENDENCY))
    timeline = simulate(scenario, CLIMB)

    assert timeline.metric_failures == 0
    assert list(timeline.readings["upstream errors"][4:7]) == [0, 0.9, 0.9]
    opened = [tick for tick, names in enumerate(timeline.breakers_open or ()) if names]
    # open from the first failing reading (5 min) until 2 min of healthy readings after 15 min
    assert opened == list(range(5, 17))
    provisioned = timeline.provisioned
    assert all(provisioned[tick] == provisioned[4] for tick in opened)
    assert all(timeline.recommended[tick] > provisioned[tick] for tick in opened[1:])
    assert provisioned[17] > provisioned[16]  # closed: it catches up at once

    rows = timeline_csv(timeline).splitlines()
    assert rows[0].endswith(",metric:upstream errors,breakers_open")
    assert rows[1 + 5].endswith(",0.900000,upstream") and rows[1 + 4].endswith(",0.000000,")


def test_without_failures_the_breaker_never_opens(tmp_path: Path) -> None:
    text = RULE + DEPENDENCY.replace('failures = [{ start = "5m", duration = "10m" }]', "")
    timeline = simulate(load_scenario(write(tmp_path, text)), CLIMB)
    assert set(timeline.breakers_open or ()) == {""}
    assert max(timeline.provisioned) == 8


def test_a_breaker_metric_needs_its_dependency_described(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"simulate\.dependencies: breaker\[0\] reads 'upstream errors'"
    ):
        load_scenario(write(tmp_path, RULE))


def test_a_dependency_no_breaker_reads_is_an_error(tmp_path: Path) -> None:
    text = RULE + DEPENDENCY + "\n[simulate.dependencies.other]\nhealthy = 0\nfailing = 1\n"
    with pytest.raises(
        ConfigError, match=r"simulate\.dependencies\.other: no \[\[breaker\]\] reads"
    ):
        load_scenario(write(tmp_path, text))


def test_a_bad_failure_names_its_line(tmp_path: Path) -> None:
    text = RULE + DEPENDENCY.replace('duration = "10m"', 'duration = "0s"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    line = text.splitlines().index('failures = [{ start = "5m", duration = "0s" }]') + 1
    assert [str(issue) for issue in caught.value.issues] == [
        f'{path}:{line}: simulate.dependencies."upstream errors".failures[0].duration: '
        "must be longer than 0s"
    ]
