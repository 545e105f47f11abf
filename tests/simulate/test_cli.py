"""``scalerd simulate`` end to end: the files it writes, what they agree on, and that the
same inputs give the same bytes."""

from __future__ import annotations

import csv
import json
import math
import random
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from scalerd.cli import main

ROOT = Path(__file__).resolve().parents[2]
HPA = ROOT / "rules" / "hpa-default.toml"
AZURE = ROOT / "rules" / "azure-autoscale.toml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unseen_trace(tmp_path: Path) -> Path:
    """Eight hours of demand no test or preset was tuned on: a seeded random walk with
    bursts and idle minutes, one row a minute."""
    rng = random.Random(20261122)
    level, rows = 5.0, []
    for minute in range(8 * 60):
        level = max(0.0, level + rng.gauss(0, 0.6))
        burst = rng.choice((0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0))
        idle = rng.random() < 0.03
        rows.append(f"{minute * 60},{0.0 if idle else round(level + burst, 3)}\n")
    path = tmp_path / "unseen.csv"
    path.write_text("t_seconds,value\n" + "".join(rows))
    return path


def simulate(tmp_path: Path, out: str, *args: str, config: Path = HPA) -> Path:
    trace = unseen_trace(tmp_path)
    code = main(
        [
            "simulate",
            "--config",
            str(config),
            "--trace",
            str(trace),
            "--out",
            str(tmp_path / out),
            *args,
        ]
    )
    assert code == 0
    return tmp_path / out


def read_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "timeline.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def recompute(rows: list[dict[str, str]], summary: dict[str, Any]) -> dict[str, Any]:
    """The scores of DESIGN.md §6, from the CSV's columns and nothing else."""
    interval = summary["interval_seconds"]
    capacity = summary["parameters"]["capacity"]
    demand = [float(row["demand"]) for row in rows]
    provisioned = [int(row["provisioned"]) for row in rows]
    ready = [int(row["ready"]) for row in rows]
    short = [d - r * capacity for d, r in zip(demand, ready, strict=True) if d > r * capacity]
    before = [summary["parameters"]["initial"], *provisioned[:-1]]
    actions = [
        (index * interval, now > was)
        for index, (was, now) in enumerate(zip(before, provisioned, strict=True))
        if now != was
    ]
    reversals = sum(
        1 for (t0, up0), (t1, up1) in pairwise(actions) if up0 != up1 and t1 - t0 <= 600
    )
    # the oracle: at each tick, the largest demand of that tick and the startup + 1 after it
    ahead = round(summary["parameters"]["startup_effective_seconds"] / interval) + 1
    oracle = [math.ceil(max(demand[i : i + ahead + 1]) / capacity) for i in range(len(demand))]
    return {
        "oracle_replica_seconds": sum(oracle) * interval,
        "cost_replica_seconds": sum(provisioned) * interval,
        "limit_replica_seconds": sum(math.ceil(d / capacity) for d in demand) * interval,
        "underprovisioned_seconds": len(short) * interval,
        "unserved_work": pytest.approx(sum(short) * interval, abs=1e-5),
        "scale_actions": len(actions),
        "reversals": reversals,
        "max_provisioned": max(provisioned),
    }


def test_summary_agrees_with_the_timeline_on_a_trace_it_has_never_seen(tmp_path: Path) -> None:
    out = simulate(tmp_path, "run", "--peak-replicas", "20")
    summary = json.loads((out / "summary.json").read_text())

    expected = recompute(read_rows(out), summary)

    assert {key: summary[key] for key in expected} == expected
    assert summary["cost_ratio_to_limit"] == pytest.approx(
        expected["cost_replica_seconds"] / expected["limit_replica_seconds"], abs=1e-6
    )
    assert summary["cost_ratio_to_oracle"] == pytest.approx(
        expected["cost_replica_seconds"] / expected["oracle_replica_seconds"], abs=1e-6
    )
    # the oracle pays for the startup it looks ahead: between the per-tick need and the cost
    assert (
        expected["limit_replica_seconds"]
        < expected["oracle_replica_seconds"]
        < expected["cost_replica_seconds"]
    )
    assert summary["scale_actions"] > 0  # the trace exercises the rules


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = simulate(tmp_path, "first", "--peak-replicas", "20")
    second = simulate(tmp_path, "second", "--peak-replicas", "20")

    for name in ("timeline.csv", "summary.json", "timeline.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_it_writes_the_timeline_the_summary_the_plot_and_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = simulate(tmp_path, "run", "--peak-replicas", "20", "--startup", "45s")

    assert read_rows(out)[0].keys() == {
        "t_seconds",
        "demand",
        "metric",
        "recommended",
        "desired",
        "provisioned",
        "ready",
    }
    assert (out / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["startup_seconds"] == 45
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert header.split()[:2] == ["config", "cost/limit"]
    assert row.split()[0] == "hpa-default"


def test_compare_runs_every_config_on_the_same_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = simulate(tmp_path, "runs", "--peak-replicas", "20", "--compare", str(AZURE))

    rows = capsys.readouterr().out.splitlines()[2:4]
    assert [row.split()[0] for row in rows] == ["hpa-default", "azure-autoscale"]
    for label in ("hpa-default", "azure-autoscale"):
        summary = json.loads((out / label / "summary.json").read_text())
        assert (summary["target"], summary["trace"]) == (label, "unseen.csv")
        assert (out / label / "timeline.png").is_file()


def test_a_config_compared_with_itself_gets_a_second_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = simulate(tmp_path, "runs", "--compare", str(HPA))

    rows = capsys.readouterr().out.splitlines()[2:4]
    assert [row.split()[0] for row in rows] == ["hpa-default", "hpa-default-2"]
    assert (out / "hpa-default-2" / "summary.json").is_file()


def test_a_further_metric_gets_its_own_column(tmp_path: Path) -> None:
    rule = tmp_path / "two.toml"
    rule.write_text(
        'max = 5\n[[track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n'
        '[[track]]\nmetric = "rps"\ntype = "average"\ntarget = 1\n'
    )

    out = simulate(tmp_path, "run", config=rule)

    assert list(read_rows(out)[0])[-1] == "metric:rps"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--metric", "cpu"], "write NAME=KIND", id="a --metric without a kind"),
        pytest.param(
            ["--capacity", "0"],
            "command line: capacity: Input should be greater than 0",
            id="a bad override",
        ),
    ],
)
def test_a_problem_is_reported_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    trace = unseen_trace(tmp_path)

    code = main(
        ["simulate", "--config", str(HPA), "--trace", str(trace), "--out", str(tmp_path), *args]
    )

    assert code == 1
    assert message in capsys.readouterr().err


def test_a_bad_trace_row_is_reported_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("t_seconds,value\n0,1\n60,-2\n")

    code = main(["simulate", "--config", str(HPA), "--trace", str(trace), "--out", str(tmp_path)])

    assert code == 1
    assert f"{trace}:3: value must be a finite number >= 0" in capsys.readouterr().err
