"""An imported definition decides as the hand-written rule of the same system does: the
same replay, tick by tick. And the command itself: warnings, --strict, --simulate."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from scalerd.cli import main
from scalerd.simulate.run import simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.traces import load_trace

from .build import EXAMPLES, imported, write
from .test_azure_aws import seed_setting

ROOT = Path(__file__).resolve().parents[2]


def day_trace(tmp_path: Path) -> Path:
    """A day at one row a minute: a daily wave with a lunchtime burst (no preset was tuned
    on it)."""
    rows = []
    for minute in range(24 * 60):
        wave = 5 + 4 * math.sin(2 * math.pi * minute / 1440)
        burst = 6 if 720 <= minute < 760 else 0
        rows.append(f"{minute * 60},{wave + burst:.3f}\n")
    return write(tmp_path, "day.csv", "t_seconds,value\n" + "".join(rows))


def desired(path: Path, trace: Path, target: str | None = None) -> list[int]:
    scenario = load_scenario(path, target=target, overrides={"peak_replicas": 10})
    return list(simulate(scenario, load_trace(trace)).desired)


def test_an_imported_hpa_decides_as_the_hand_written_one(tmp_path: Path) -> None:
    hpa = write(
        tmp_path,
        "hpa.yaml",
        textwrap.dedent(
            """\
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: api}
            spec:
              scaleTargetRef: {kind: Deployment, name: api}
              minReplicas: 2
              maxReplicas: 10
              metrics:
              - type: Resource
                resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
            """
        ),
    )
    imported(tmp_path, "hpa", hpa)
    # rules/hpa-default.toml with the HPA's numbers: behavior left to scalerd's defaults
    hand = write(
        tmp_path,
        "hand.toml",
        (ROOT / "rules" / "hpa-default.toml")
        .read_text()
        .replace("min = 1\nmax = 100", "min = 2\nmax = 10")
        .replace("target = 80", "target = 70"),
    )
    trace = day_trace(tmp_path)
    ours = desired(tmp_path / "config.toml", trace, "api")
    assert ours == desired(hand, trace)
    assert len(set(ours)) > 3  # it really scaled


def test_an_imported_azure_setting_decides_as_the_hand_written_rules(tmp_path: Path) -> None:
    imported(tmp_path, "azure-autoscale", seed_setting(tmp_path))
    hand = write(
        tmp_path,
        "hand.toml",
        textwrap.dedent(
            """\
            interval = "60s"
            min = 2
            max = 10
            default = 2
            flapping_protection = true

            [[threshold]]
            when = "Percentage CPU > 75 avg 5m"
            action = "+2"
            cooldown = "5m"

            [[threshold]]
            when = "Percentage CPU < 30 avg 10m"
            action = "-1"
            cooldown = "5m"

            [simulate]
            metric_delay = "3m"

            [simulate.metrics]
            "Percentage CPU" = "utilization"
            """
        ),
    )
    trace = day_trace(tmp_path)
    ours = desired(tmp_path / "config.toml", trace, "setting")
    assert ours == desired(hand, trace)
    assert len(set(ours)) > 2


def test_the_command_counts_warnings_and_strict_fails_on_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported.toml"
    source = EXAMPLES / "keda_scaledobject_azure_servicebus_workload_identity.yaml"
    assert main(["import", "keda", str(source), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: not imported: trigger azure-servicebus: queueName and topicName" in err
    assert "imported 1 target(s) into" in err and "1 construct(s) kept as comments" in err
    assert out.read_text().startswith("# Imported by `scalerd import keda")
    assert main(["import", "keda", str(source), "--out", str(out), "--strict"]) == 1


def test_a_file_that_cannot_be_imported_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = EXAMPLES / "keda_scaledobject_scalingmodifiers_average_fragment.yaml"
    assert main(["import", "keda", str(source)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and ":8: not valid YAML" in captured.err


def test_import_simulate_replays_beside_the_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    trace = day_trace(tmp_path)
    args = [
        "import", "hpa", str(EXAMPLES / "k8s_hpa_v2_php_apache.yaml"),
        "--simulate", str(trace), "--simulate-out", str(tmp_path / "sim"), "--peak-replicas", "8",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line[:1].isalpha()]
    assert "php-apache" in rows and "hpa-default" in rows
    assert (tmp_path / "sim" / "php-apache" / "summary.json").is_file()
    assert (tmp_path / "sim" / "hpa-default" / "timeline.csv").is_file()
