"""Every preset in rules/ and the shipped config.toml is valid for the daemon and replays
without a metric failure (STYLE.md: every shipped example is exercised)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.cli import main
from scalerd.simulate.run import simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import Trace

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "rules").glob("*.toml"))

# three hours, one row a minute: a quiet start, a climb to a peak and back down
DAY = Trace.from_values([2 + 10 * min(minute, 180 - minute) / 90 for minute in range(180)], 60.0)


def test_the_presets_are_there() -> None:
    names = {path.stem for path in PRESETS}
    anchors = {"hpa-default", "keda-default", "azure-autoscale", "aws-step", "recommended"}
    assert anchors <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: path.stem)
def test_the_daemon_accepts_the_preset(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(path), "--rule-file"]) == 0
    first, *described = capsys.readouterr().out.splitlines()
    assert first == f"{path}: valid rule file"
    assert described[0].startswith("  every ")  # then the rule in words, as a target's


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: path.stem)
def test_the_preset_replays(path: Path) -> None:
    scenario = load_scenario(path, overrides={"peak_replicas": 8})

    timeline = simulate(scenario, DAY)

    assert len(timeline) == 180 * 60 / scenario.interval.total_seconds()
    assert timeline.metric_failures == 0
    rule = scenario.spec.rule
    if rule.minimum < rule.maximum:  # min = max is a fixed count (alwrity-frontend)
        assert max(timeline.provisioned) > rule.minimum  # it follows the climb
    else:
        assert set(timeline.provisioned) == {rule.minimum}
    assert all(replicas <= rule.maximum for replicas in timeline.provisioned)


def test_the_shipped_config_replays() -> None:
    # config.toml's replay source multiplies its trace by 2 for workers of 20 items/s
    scenario = load_scenario(ROOT / "config.toml", overrides={"capacity": 20, "scale": 2})

    timeline = simulate(scenario, DAY)

    assert timeline.metric_failures == 0
    assert max(timeline.provisioned) > scenario.spec.rule.minimum
