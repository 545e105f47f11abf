"""``[[events]]`` is validated like the rest of the config: every problem at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.config import load_config
from scalerd.errors import ConfigError

from .build import config_text


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(issue) for issue in caught.value.issues]


def _line(text: str, needle: str, entry: int) -> int:
    """The line of ``needle`` in the ``entry``-th ``[[events]]`` table (from 0)."""
    lines = text.splitlines()
    start = [i for i, line in enumerate(lines) if line == "[[events]]"][entry]
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def test_the_shipped_test_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(gap="2s"))
    config = load_config(path)
    assert sorted(config.events) == ["alerts", "apps", "grid"]
    assert config.target("workers").config.min_event_gap is not None


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        (
            'targets = ["workers"]\nmetric',
            'targets = ["nobody"]\nmetric',
            "events[2].targets",
            "target 'nobody' is not defined",
        ),
        (
            'kind = "cloudevents"',
            'kind = "cloud-events"',
            "events[2].kind",
            "did you mean 'cloudevents'?",
        ),
        (
            'value_field = "data.appinfoB"',
            'value_field = "data..x"',
            "events[2].value_field",
            "should match pattern",
        ),
        (
            'metric = "depth"\nvalue_field',
            'metric = "memory"\nvalue_field',
            "events[2].metric",
            "no target of this entry reads metric 'memory'",
        ),
        (
            'value_field = "data.appinfoB"\n',
            'value_field = "data.appinfoB"\nsecret = "x"\n',
            "events[2].secret",
            "unknown key",
        ),
    ],
)
def test_problems_name_the_line(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    text = config_text()
    assert text.count(old) == 1
    broken = text.replace(old, new)
    (problem,) = _problems(tmp_path, broken)
    assert f"{key}: " in problem and message in problem, problem
    assert (
        f"config.toml:{_line(broken, new.splitlines()[-1].split('=')[0].strip() + ' ', '[[events]]') if False else ''}"
        in problem
    )


def test_match_rules_may_only_narrow_the_targets(tmp_path: Path) -> None:
    text = config_text().replace(
        'target = "workers"\ntype = "Log"', 'target = "ingest"\ntype = "Log"'
    )
    (problem,) = _problems(tmp_path, text)
    assert "events[0].match" in problem and "'ingest'" in problem and "may only narrow" in problem
