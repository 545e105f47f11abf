"""What gets replayed: a config.toml target or a rule file, its [simulate] model with the
command line's overrides, and what each metric is, said or inferred."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scalerd.errors import ConfigError
from scalerd.simulate.scenario import load_scenario

from .build import rule_file

CONFIG = """\
    [simulate]
    capacity = 20

    [[sources]]
    name = "demand"
    kind = "replay"
    values = [1.0]
    step = "60s"

    [[actuators]]
    name = "web"
    kind = "recording"

    [[actuators]]
    name = "jobs"
    kind = "recording"

    [[targets]]
    name = "web"
    actuator = "web"
    max = 10
    [[targets.track]]
    metric = "demand"
    type = "total"
    target = 15

    [[targets]]
    name = "jobs"
    actuator = "jobs"
    max = 4
    [[targets.track]]
    metric = "demand"
    type = "total"
    target = 5
    [targets.simulate]
    capacity = 5
    startup = "2m"
"""


CPU = 'max = 5\n[[track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n'
# a threshold on a metric whose name says nothing about what it measures
WIDGETS = 'max = 5\n[[threshold]]\nwhen = "widgets > 70 avg 5m"\naction = "+1"\n'


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(CONFIG))
    return path


def test_a_config_target_keeps_its_rules_and_its_simulate_section(tmp_path: Path) -> None:
    scenario = load_scenario(config(tmp_path), target="jobs")

    assert scenario.label == "jobs"
    assert scenario.spec.rule.maximum == 4
    # the target's [simulate] over the config's
    assert (scenario.settings.capacity, scenario.settings.startup.total_seconds()) == (5, 120)


def test_a_config_with_several_targets_needs_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="2 targets: pick one with --target \\(web, jobs\\)"):
        load_scenario(config(tmp_path))


def test_an_unknown_target_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no target named 'api'"):
        load_scenario(config(tmp_path), target="api")


@pytest.mark.parametrize(
    ("track", "kind", "origin"),
    [
        pytest.param(
            'metric = "cpu"\ntype = "utilization"\ntarget = 70',
            "utilization",
            "inferred from [[track]] type utilization",
            id="utilization",
        ),
        pytest.param(
            'metric = "queue"\ntype = "total"\ntarget = 5',
            "backlog",
            "inferred from [[track]] type total",
            id="total: a queue",
        ),
        pytest.param(
            'metric = "requests per second"\ntype = "total"\ntarget = 5',
            "arrivals",
            "inferred from [[track]] type total, and the name says it is an arrival rate",
            id="total named as a rate: arrivals",
        ),
        pytest.param(
            'metric = "rps"\ntype = "average"\ntarget = 5',
            "rate",
            "inferred from [[track]] type average",
            id="average: a rate",
        ),
        pytest.param(
            'metric = "concurrent requests"\ntype = "average"\ntarget = 50',
            "concurrency",
            "inferred from [[track]] type average, and the name says concurrency",
            id="average named as concurrency",
        ),
    ],
)
def test_a_tracked_metric_kind_is_inferred_and_reported(
    tmp_path: Path, track: str, kind: str, origin: str
) -> None:
    path = rule_file(tmp_path, f"max = 5\n[[track]]\n{track}\n")

    (binding,) = load_scenario(path).metrics

    assert (binding.kind, binding.origin) == (kind, origin)


def test_a_threshold_metric_kind_comes_from_its_name(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path, 'max = 5\n[[threshold]]\nwhen = "Percentage CPU > 70 avg 5m"\naction = "+1"\n'
    )

    (binding,) = load_scenario(path).metrics

    assert (binding.kind, binding.origin) == ("utilization", "inferred from the metric's name")


def test_a_metric_nothing_says_anything_about_is_an_error(tmp_path: Path) -> None:
    path = rule_file(tmp_path, WIDGETS)

    with pytest.raises(ConfigError, match="cannot tell what metric 'widgets' measures"):
        load_scenario(path)


def test_the_command_line_says_what_a_metric_is(tmp_path: Path) -> None:
    path = rule_file(tmp_path, WIDGETS)

    (binding,) = load_scenario(path, overrides={"metrics": {"widgets": "rate"}}).metrics

    assert (binding.kind, binding.origin) == ("rate", "[simulate.metrics]")


def test_simulate_metrics_naming_an_unread_metric_is_an_error(tmp_path: Path) -> None:
    path = rule_file(tmp_path, CPU)

    with pytest.raises(ConfigError, match="no rule reads metric 'memory'"):
        load_scenario(path, overrides={"metrics": {"memory": "utilization"}})


def test_a_window_no_longer_than_the_metric_delay_is_an_error(tmp_path: Path) -> None:
    # the newest point is 60 s old, and only points newer than now - 60 s count
    path = rule_file(
        tmp_path,
        'interval = "60s"\nmax = 5\n[[threshold]]\nwhen = "cpu > 70 avg 1m"\naction = "+1"\n',
    )

    with pytest.raises(
        ConfigError,
        match=r"threshold\[0\].when: the window \(1m\) is not longer than the metric delay \(1m",
    ):
        load_scenario(path, overrides={"metric_delay": "1m"})


def test_one_way_of_scaling_the_trace_replaces_the_other(tmp_path: Path) -> None:
    path = rule_file(tmp_path, CPU + "[simulate]\nscale = 3\n")

    settings = load_scenario(path, overrides={"peak_replicas": 40}).settings

    assert (settings.scale, settings.peak_replicas) == (None, 40)


def test_an_invalid_override_names_the_key(tmp_path: Path) -> None:
    path = rule_file(tmp_path, CPU)

    with pytest.raises(ConfigError) as raised:
        load_scenario(path, overrides={"capacity": -1})

    (issue,) = raised.value.issues
    assert (issue.file, issue.path) == ("command line", "capacity")
