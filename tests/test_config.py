"""config.toml and rule files: every invalid input is an error naming file, line and key;
includes merge; the loader hands the core a complete TargetSpec."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest

from scalerd.config import load_config, load_rule_file
from scalerd.core import Ladder, Tier
from scalerd.core.rules import CronWindow
from scalerd.errors import ConfigError
from scalerd.plugins import ActuatorConfig, Plugin, Registry, SourceConfig


class _Gauge(SourceConfig):
    kind: Literal["gauge"]


class _Pool(ActuatorConfig):
    kind: Literal["pool"]


class _Tiers(ActuatorConfig):
    kind: Literal["tiers"]
    tiers: tuple[str, ...]
    maintenance: tuple[CronWindow, ...] = ()

    def ladder(self) -> Ladder:
        return Ladder(tuple(Tier(name, float(i + 1)) for i, name in enumerate(self.tiers)))

    def maintenance_windows(self) -> tuple[CronWindow, ...]:
        return self.maintenance


SOURCES = Registry("source", [Plugin("gauge", _Gauge, lambda c, x: None, "a number")])
ACTUATORS = Registry(
    "actuator",
    [
        Plugin("pool", _Pool, lambda c, x: None, "replicas"),
        Plugin("tiers", _Tiers, lambda c, x: None, "a ladder"),
    ],
)

VALID = """\
[daemon]
listen = "127.0.0.1:9090"

[[sources]]
name = "cpu"
kind = "gauge"
max_age = "2m"

[[sources]]
name = "orders-queue"
kind = "gauge"

[[actuators]]
name = "web"
kind = "pool"

[[actuators]]
name = "workers"
kind = "pool"

[[targets]]
name = "web-api"
actuator = "web"
max = 20

[[targets.track]]
metric = "cpu"
type = "utilization"
target = 70

[[targets]]
name = "jobs"
actuator = "workers"
min = 0
max = 10
metrics = { queue = "orders-queue" }

[[targets.track]]
metric = "queue"
type = "total"
target = 5
activation = 1
"""


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _load(path: Path):  # type: ignore[no-untyped-def]
    return load_config(path, sources=SOURCES, actuators=ACTUATORS)


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(path)
    return [str(issue) for issue in caught.value.issues]


def test_valid_config(tmp_path: Path) -> None:
    config = _load(_write(tmp_path, VALID))
    web, jobs = config.targets
    assert web.spec.metrics["cpu"].max_age == timedelta(minutes=2)
    assert jobs.spec.metrics["queue"].source == "orders-queue"
    # no max_age on the source: three intervals, at least a minute
    assert jobs.spec.metrics["queue"].max_age == timedelta(minutes=1)
    assert config.daemon.listen == "127.0.0.1:9090"
    assert len(config.version) == 12
    assert web.identity == "web-api|pool|web"


def test_version_changes_with_the_config(tmp_path: Path) -> None:
    first = _load(_write(tmp_path, VALID)).version
    second = _load(_write(tmp_path, VALID.replace("target = 70", "target = 65"))).version
    assert first != second


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    text = VALID.replace("max = 20\n", "max = 20\nmaxx = 30\n")
    line = text.splitlines().index("maxx = 30") + 1
    assert _problems(_write(tmp_path, text)) == [
        f"{tmp_path}/config.toml:{line}: targets[0].maxx: unknown key; did you mean 'max'? (allowed: "
        "actuator, alert, behavior, breaker, cooldown, default, drain, fallback, flapping_protection, "
        "idle_before_zero, interval, max, metrics, min, min_event_gap, name, override, pause, "
        "predict, rules, schedule, shadow, step, threshold, tolerance, track)"
    ]


def test_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = VALID.replace('name = "web-api"', 'name = "web-api')
    line = next(
        i for i, row in enumerate(text.splitlines(), 1) if row.startswith('name = "web-api')
    )
    (problem,) = _problems(_write(tmp_path, text))
    assert problem.startswith(f"{tmp_path}/config.toml:{line}: TOML syntax error")


def test_undefined_source_names_the_target(tmp_path: Path) -> None:
    text = VALID.replace('metric = "cpu"', 'metric = "cpu-typo"')
    line = text.splitlines().index('metric = "cpu-typo"') + 1
    assert _problems(_write(tmp_path, text)) == [
        f"{tmp_path}/config.toml:{line}: targets[0].track[0].metric: target 'web-api' reads metric "
        "'cpu-typo' from source 'cpu-typo', which is not defined (sources: cpu, orders-queue)"
    ]


def test_an_alert_reads_its_own_source(tmp_path: Path) -> None:
    # the alert belongs to the last target (jobs): bind it there
    text = VALID + '\n[[targets.alert]]\nwhen = "lag > 1 max 5m"\n'
    text = text.replace(
        'metrics = { queue = "orders-queue" }', 'metrics = { queue = "orders-queue", lag = "cpu" }'
    )
    jobs = _load(_write(tmp_path, text)).targets[1]
    assert jobs.spec.metrics["lag"].source == "cpu"
    assert jobs.sources["lag"].name == "cpu"
    assert jobs.spec.rule.metric_names() == ("queue",)  # no scaling rule reads it


def test_an_alert_with_no_source_or_a_bad_condition_names_its_key(tmp_path: Path) -> None:
    text = VALID + '\n[[targets.alert]]\nwhen = "lag > 1 max 5m"\n'
    line = len(text.splitlines())
    assert _problems(_write(tmp_path, text)) == [
        f"{tmp_path}/config.toml:{line}: targets[1].alert[0].when: target 'jobs' reads metric "
        "'lag' from source 'lag', which is not defined (sources: cpu, orders-queue)"
    ]
    text = VALID + '\n[[targets.alert]]\nwhen = "lag > one"\n'
    (problem,) = _problems(_write(tmp_path, text))
    assert problem.startswith(
        f"{tmp_path}/config.toml:{line}: targets[1].alert[0].when: cannot read"
    )


def test_deep_key_path_and_value(tmp_path: Path) -> None:
    text = VALID + textwrap.dedent(
        """
        [targets.behavior.scale_down]
        policies = [
          { type = "pods", value = 2, period = "60s" },
          { type = "percent", value = 0, period = "60s" },
        ]
        """
    )
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"percent", value = 0' in row)
    assert _problems(_write(tmp_path, text)) == [
        f"{tmp_path}/config.toml:{line}: targets[1].behavior.scale_down.policies[1].value: "
        "must be greater than 0 (got 0)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            ("max = 20", "min = 30\nmax = 20"),
            "targets[0].min: min (30) is greater than max (20)",
            id="min > max",
        ),
        pytest.param(
            ('actuator = "web"', 'actuator = "webb"'),
            "target 'web-api' uses actuator 'webb', which is not defined",
            id="undefined actuator",
        ),
        pytest.param(
            ('actuator = "workers"', 'actuator = "web"'),
            "actuator 'web' is already scaled by target 'web-api'",
            id="two targets on one actuator",
        ),
        pytest.param(
            ('kind = "pool"', 'kind = "pol"'),
            "unknown actuator kind 'pol'; did you mean 'pool'?",
            id="unknown kind",
        ),
        pytest.param(
            ('max_age = "2m"', "max_age = 120"),
            "a duration needs a unit",
            id="bare number duration",
        ),
        pytest.param(
            ('type = "total"', 'type = "queue"'),
            "targets[1].track[0].type: must be 'utilization', 'average' or 'total'",
            id="bad enum",
        ),
        pytest.param(
            ('queue = "orders-queue"', 'queue = "orders-queue", extra = "cpu"'),
            "no rule of target 'jobs' reads metric 'extra'",
            id="unused binding",
        ),
        pytest.param(
            ("[daemon]", "[deamon]"),
            "deamon: unknown key; did you mean 'daemon'?",
            id="unknown section",
        ),
    ],
)
def test_invalid_inputs(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    problems = _problems(_write(tmp_path, VALID.replace(*change, 1)))
    assert any(expected in problem for problem in problems), problems


def test_select_policy_and_cron_and_time_zone(tmp_path: Path) -> None:
    text = VALID + textwrap.dedent(
        """
        [targets.behavior.scale_up]
        select = "maximum"

        [[targets.schedule]]
        name = "office"
        cron = "0 25 * * 1-5"
        duration = "9h"
        min = 2

        [[targets.schedule]]
        name = "night"
        cron = "0 22 * * *"
        duration = "8h"
        timezone = "Mars/Olympus"
        min = 1
        """
    )
    problems = "\n".join(_problems(_write(tmp_path, text)))
    assert (
        "targets[1].behavior.scale_up.select: select must be 'max', 'min' or 'disabled', got 'maximum'"
        in problems
    )
    assert "targets[1].schedule[1].timezone: unknown IANA time zone 'Mars/Olympus'" in problems
    # cron is checked once the model is valid; fix the others and it is reported with its line
    text = text.replace('"maximum"', '"max"').replace("Mars/Olympus", "Europe/Berlin")
    (problem,) = _problems(_write(tmp_path, text))
    line = text.splitlines().index('cron = "0 25 * * 1-5"') + 1
    assert problem.startswith(
        f"{tmp_path}/config.toml:{line}: targets[1].schedule[0].cron: invalid cron expression"
    )


def test_overlapping_steps(tmp_path: Path) -> None:
    text = VALID + textwrap.dedent(
        """
        [[targets.step]]
        metric = "queue"
        threshold = 50
        steps = [{ lower = 0, upper = 20, adjust = 1 }, { lower = 10, adjust = 2 }]
        """
    )
    (problem,) = _problems(_write(tmp_path, text))
    assert "targets[1].step[0].steps[1].lower: overlaps the step ending at 20" in problem


def test_rule_file_include_and_override(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """\
        min = 2
        max = 8
        [[track]]
        metric = "cpu"
        type = "utilization"
        target = 60
        [behavior.scale_down]
        stabilization_window = "10m"
        [simulate]
        capacity = 25
        """,
        "rules/web.toml",
    )
    text = VALID.replace(
        'max = 20\n\n[[targets.track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n',
        'rules = "rules/web.toml"\nmax = 12\n[targets.behavior.scale_down]\nselect = "min"\n',
    )
    web = _load(_write(tmp_path, text)).targets[0]
    rule = web.spec.rule
    assert (rule.minimum, rule.maximum) == (2, 12)  # max overridden, min from the file
    assert rule.track[0].target == 60
    assert rule.behavior is not None
    assert rule.behavior.scale_down.select == "min"  # tables merge key by key
    assert rule.behavior.down_window == timedelta(minutes=10)
    assert web.simulate.capacity == 25
    assert web.rule_file == tmp_path / "rules" / "web.toml"


def test_error_in_a_rule_file_names_that_file(tmp_path: Path) -> None:
    _write(
        tmp_path,
        'max = 8\n[[track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = -5\n',
        "rules/web.toml",
    )
    text = VALID.replace(
        'max = 20\n\n[[targets.track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n',
        'rules = "rules/web.toml"\n',
    )
    assert _problems(_write(tmp_path, text)) == [
        f"{tmp_path}/rules/web.toml:5: track[0].target: must be greater than 0 (got -5) (rule file of target 'web-api')"
    ]


def test_missing_rule_file(tmp_path: Path) -> None:
    text = VALID.replace('actuator = "web"', 'actuator = "web"\nrules = "rules/none.toml"')
    (problem,) = _problems(_write(tmp_path, text))
    assert "targets[0].rules: rule file 'rules/none.toml' not found" in problem


def test_ladder_targets(tmp_path: Path) -> None:
    text = VALID + textwrap.dedent(
        """
        [[actuators]]
        name = "db"
        kind = "tiers"
        tiers = ["S", "M", "L"]
        maintenance = [{ cron = "0 2 * * 0", duration = "2h" }]

        [[targets]]
        name = "db"
        actuator = "db"
        max = 5
        [[targets.threshold]]
        when = "cpu > 75 avg 5m"
        action = "+50%"
        """
    )
    problems = "\n".join(_problems(_write(tmp_path, text)))
    assert "targets[2].max: the actuator's ladder has 3 tiers" in problems
    assert (
        "targets[2].threshold[0].action: a percentage of a tier position means nothing" in problems
    )
    fixed = _load(_write(tmp_path, text.replace("max = 5", "max = 3").replace('"+50%"', '"+1"')))
    db = fixed.targets[2]
    assert db.spec.ladder is not None and db.spec.maintenance[0].cron == "0 2 * * 0"
    # tier changes take long and may restart: long cooldowns unless the target sets its own
    assert (db.spec.rule.cooldown.up, db.spec.rule.cooldown.down) == (
        timedelta(minutes=15),
        timedelta(hours=1),
    )
    assert fixed.targets[0].spec.rule.cooldown.up == timedelta(0)


def test_rule_file_alone(tmp_path: Path) -> None:
    good = _write(
        tmp_path, 'max = 4\n[[track]]\nmetric = "q"\ntype = "total"\ntarget = 5\n', "r.toml"
    )
    assert load_rule_file(good).maximum == 4
    bad = _write(
        tmp_path,
        'name = "x"\nmax = 4\n[[track]]\nmetric = "q"\ntype = "total"\ntarget = 5\n',
        "bad.toml",
    )
    with pytest.raises(ConfigError, match="'name' belongs in the \\[\\[targets\\]\\] entry"):
        load_rule_file(bad)
