"""Strict config types and every problem in one run (issue #8, item 8): no string or bool
taken for a number, finite numbers only, bounds on capacities, durations and counts,
crons that can fire, at least one target; each problem as ``file:line: key: message``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scalerd.config import load_config, load_rule_file
from scalerd.errors import ConfigError

BASE = """\
[daemon]
listen = "127.0.0.1:9090"
watch_config = true
jitter = 0.1

[[sources]]
name = "cpu"
kind = "replay"
values = [50, 60, 70]
step = "60s"

[[actuators]]
name = "web"
kind = "recording"
initial = 2

[[targets]]
name = "web"
actuator = "web"
interval = "15s"
min = 1
max = 20

[[targets.track]]
metric = "cpu"
type = "utilization"
target = 70
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(issue) for issue in caught.value.issues]


def _line(text: str, row: str) -> int:
    return text.splitlines().index(row) + 1


def test_the_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    assert [target.name for target in load_config(path).targets] == ["web"]


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        pytest.param("max = 20", 'max = "20"', "targets[0].max", "must be an integer (got '20')"),
        pytest.param("max = 20", "max = true", "targets[0].max", "must be an integer (got true)"),
        pytest.param("max = 20", "max = 20.0", "targets[0].max", "must be an integer (got 20.0)"),
        pytest.param(
            "target = 70", "target = inf", "targets[0].track[0].target", "must be a finite number"
        ),
        pytest.param(
            "target = 70", "target = -inf", "targets[0].track[0].target", "must be a finite number"
        ),
        pytest.param(
            "target = 70", "target = nan", "targets[0].track[0].target", "must be a finite number"
        ),
        pytest.param(
            "target = 70",
            'target = "inf"',
            "targets[0].track[0].target",
            "must be a number (got 'inf')",
        ),
        pytest.param(
            "target = 70",
            "target = false",
            "targets[0].track[0].target",
            "must be a number (got false)",
        ),
        pytest.param(
            "values = [50, 60, 70]",
            "values = [50, nan, 70]",
            "sources[0].values[1]",
            "must be a finite number",
        ),
        pytest.param(
            "jitter = 0.1", 'jitter = "0.1"', "daemon.jitter", "must be a number (got '0.1')"
        ),
        pytest.param(
            "watch_config = true",
            "watch_config = 1",
            "daemon.watch_config",
            "must be true or false (got 1)",
        ),
        pytest.param(
            'interval = "15s"',
            'interval = "99999999999d"',
            "targets[0].interval",
            "is longer than the maximum of 366d",
        ),
        pytest.param(
            'interval = "15s"',
            f'interval = "{"9" * 30}s"',
            "targets[0].interval",
            "is longer than the maximum of 366d",
        ),
        pytest.param(
            'interval = "15s"',
            'interval = "P99999999D"',
            "targets[0].interval",
            "is longer than the maximum of 366d",
        ),
        pytest.param(
            "initial = 2",
            "initial = 9223372036854775807",
            "actuators[0].initial",
            "must be less than or equal to 100000",
        ),
        pytest.param(
            "max = 20",
            "max = 9223372036854775807",
            "targets[0].max",
            "must be less than or equal to 100000",
        ),
    ],
)
def test_strict_finite_and_bounded(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    text = BASE.replace(old, new, 1)
    problems = _problems(tmp_path, text)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith(f"{tmp_path}/config.toml:{_line(text, new)}: {key}: "), problem
    assert message in problem


def test_a_condition_whose_threshold_overflows_a_float(tmp_path: Path) -> None:
    text = BASE + f'\n[[targets.threshold]]\nwhen = "cpu > {"9" * 400} avg 5m"\naction = "+1"\n'
    (problem,) = _problems(tmp_path, text)
    assert "targets[0].threshold[0].when.threshold: must be a finite number" in problem


@pytest.mark.parametrize(
    "cron", [pytest.param("0 0 30 2 *", id="30 February"), pytest.param("0 9 31 4,6 *")]
)
def test_a_cron_that_never_fires_is_an_error(tmp_path: Path, cron: str) -> None:
    row = f'cron = "{cron}"'
    text = BASE + f'\n[[targets.schedule]]\nname = "x"\n{row}\nduration = "1h"\nmin = 2\n'
    (problem,) = _problems(tmp_path, text)
    assert problem == (
        f"{tmp_path}/config.toml:{_line(text, row)}: targets[0].schedule[0].cron: cron "
        f"expression '{cron}' never fires: no date matches its day of month, month and day of "
        "week (e.g. 30 February)"
    )


def test_a_leap_day_cron_fires(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        BASE + '\n[[targets.schedule]]\nname = "x"\ncron = "0 0 29 2 *"\nduration = "1h"\nmin = 2\n'
    )
    assert load_config(path).targets[0].spec.rule.schedule[0].cron == "0 0 29 2 *"


def test_no_targets_is_an_error(tmp_path: Path) -> None:
    text = BASE[: BASE.index("[[targets]]")]
    assert _problems(tmp_path, text) == [
        f"{tmp_path}/config.toml:1: targets: no [[targets]]: there is nothing to scale"
    ]


def test_a_schedule_min_above_the_max_in_force(tmp_path: Path) -> None:
    # the target's max is 20; the schedule sets no max of its own, so 25 is above it
    text = BASE + '\n[[targets.schedule]]\nname = "peak"\ncron = "0 8 * * *"\nduration = "9h"\n'
    assert load_config(_write(tmp_path, text + "min = 20\n")).targets
    problem = _problems(tmp_path, text + "min = 25\n")
    assert problem == [
        f"{tmp_path}/config.toml:{_line(text + 'min = 25', 'min = 25')}: "
        "targets[0].schedule[0].min: min (25) is above the max in force (20)"
    ]
    # a schedule that raises max too lifts the ceiling
    assert load_config(_write(tmp_path, text + "min = 25\nmax = 30\n")).targets


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_truncated_file_names_its_last_line(tmp_path: Path) -> None:
    text = BASE + "\n[[targets.track]]\nmetric = [\n"
    assert _problems(tmp_path, text) == [
        f"{tmp_path}/config.toml:{len(text.splitlines())}: TOML syntax error: "
        "Invalid value (the file ends here)"
    ]


NAME = 'name = "web"'


def test_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(BASE.encode().replace(b'name = "web"', b'name = "w\xffb"', 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:{_line(BASE, NAME)}: not UTF-8 text: byte 0xff"
    ]


# the base with five mistakes: three keys wrong on their own, min above max, a metric
# read from a source that is not defined
FIVE_MISTAKES = (
    BASE.replace("initial = 2", "initial = 9223372036854775807")
    .replace('interval = "15s"', 'interval = "99999999999d"')
    .replace("min = 1\n", "min = 30\n")
    .replace("target = 70", "target = inf")
) + '\n[[targets.track]]\nmetric = "queue"\ntype = "total"\ntarget = 10\n'


INTERVAL = 'interval = "99999999999d"'
QUEUE = 'metric = "queue"'


def test_every_problem_in_one_run(tmp_path: Path) -> None:
    # today's report: three of these, then min > max and the undefined source only after
    # the first three were fixed
    problems = _problems(tmp_path, FIVE_MISTAKES)
    where = f"{tmp_path}/config.toml"
    line = FIVE_MISTAKES.splitlines().index
    assert sorted(problems) == sorted(
        [
            f"{where}:{line('initial = 9223372036854775807') + 1}: actuators[0].initial: "
            "must be less than or equal to 100000 (got 9223372036854775807)",
            f"{where}:{line(INTERVAL) + 1}: targets[0].interval: "
            "duration '99999999999d' is longer than the maximum of 366d",
            f"{where}:{line('target = inf') + 1}: targets[0].track[0].target: "
            "must be a finite number (got inf)",
            f"{where}:{line('min = 30') + 1}: targets[0].min: min (30) is greater than max (20)",
            f"{where}:{line(QUEUE) + 1}: targets[0].track[1].metric: target 'web' "
            "reads metric 'queue' from source 'queue', which is not defined (sources: cpu)",
        ]
    ), problems


def test_cross_references_of_an_invalid_target_use_its_valid_keys(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        [[sources]]
        name = "cpu"
        kind = "replay"
        values = [1]
        step = "60s"

        [[actuators]]
        name = "web"
        kind = "recording"

        [[targets]]
        name = "web"
        actuator = "webb"
        max = "10"
        metrics = { load = "cpu", spare = "cpu" }

        [[targets.threshold]]
        when = "load > 70 avg 5m"
        action = "+1"
        cooldown = 5
        """
    )
    problems = "\n".join(_problems(tmp_path, text))
    assert "targets[0].max: must be an integer (got '10')" in problems
    assert "targets[0].threshold[0].cooldown: a duration needs a unit" in problems
    assert "target 'web' uses actuator 'webb', which is not defined" in problems
    # the threshold is invalid, yet the metric it names is known: 'load' is read, 'spare' not
    assert "no rule of target 'web' reads metric 'spare'" in problems
    assert "reads metric 'load'" not in problems


def test_scalerd_check_prints_every_problem_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FIVE_MISTAKES)
    done = subprocess.run(
        [sys.executable, "-m", "scalerd", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == "5 problems found"
    assert all(line.startswith(f"{path}:") for line in lines[:-1]), lines
    assert any("targets[0].interval: duration '99999999999d' is longer" in line for line in lines)


@pytest.mark.parametrize(
    "depth", [pytest.param(151, id="for pydantic"), pytest.param(600, id="for tomllib")]
)
def test_nesting_too_deep_names_its_line(tmp_path: Path, depth: int) -> None:
    text = BASE + "\n[simulate]\nmetrics = " + "[" * depth + "]" * depth + "\n"
    assert _problems(tmp_path, text) == [
        f"{tmp_path}/config.toml:{len(text.splitlines())}: TOML syntax error: arrays or "
        "tables nested more than 150 deep"
    ]


def test_a_rule_file_alone_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "rule.toml"
    text = (
        'min = 30\nmax = 20\ninterval = 15\n[[track]]\nmetric = "q"\ntype = "total"\n'
        'target = 5\n[[schedule]]\nname = "feb"\ncron = "0 0 30 2 *"\nduration = "1h"\nmin = 2\n'
    )
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    assert sorted(str(issue) for issue in caught.value.issues) == [
        f"{path}:10: schedule[0].cron: cron expression '0 0 30 2 *' never fires: no date "
        "matches its day of month, month and day of week (e.g. 30 February)",
        f"{path}:1: min: min (30) is greater than max (20)",
        f"{path}:3: interval: a duration needs a unit: write '15s' or '15m', not a bare number",
    ]
