"""``scalerd export``: a target's recorded history back into a demand trace, and that trace
replayed by ``scalerd simulate`` — on a real run of the embedded default."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scalerd.audit import AuditRecord
from scalerd.audit.export import estimate_for, trace_rows
from scalerd.core.rules import Rule

from .build import SCALERD, audit_records, running

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def record(seconds: float, value: float | None, ready: int) -> AuditRecord:
    inputs = () if value is None else ({"metric": "cpu", "value": value},)
    return AuditRecord(
        ts=T0 + timedelta(seconds=seconds), id=f"r{seconds}", prev=None, target="t", kind="recording",
        instance="i", config_version="v", action="held", dry_run=False, duration_ms=1.0,
        current={"provisioned": ready, "ready": ready}, recommended=ready, desired=ready,
        not_scaled_reason=None, inputs=inputs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("utilization", [2.0, 4.5]), ("average", [200.0, 450.0]), ("total", [50.0, 90.0])],
)
def test_demand_is_estimated_by_what_the_metric_measures(kind: str, expected: list[float]) -> None:
    rule = Rule.model_validate(
        {"max": 10, "track": [{"metric": "cpu", "type": kind, "target": 70}]}
    )
    records = [record(0, 50.0, 4), record(15, None, 4), record(30, 90.0, 5)]
    rows = trace_rows(records, "cpu", estimate_for(rule, "cpu"))
    # 50 % on 4 replicas is 2 replicas' worth of work; a failed read leaves no row
    assert [(row.t_seconds, row.value) for row in rows] == [(0.0, expected[0]), (30.0, expected[1])]


@pytest.mark.slow
def test_export_then_simulate_a_run_of_the_embedded_default(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "scalerd" / "data", tmp_path / "scalerd" / "data")
    with running(tmp_path / "config.toml", "--listen", "127.0.0.1:0") as daemon:
        deadline = time.monotonic() + 90
        while len(audit_records(tmp_path)) < 6 and time.monotonic() < deadline:
            time.sleep(0.5)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    recorded = [r for r in audit_records(tmp_path) if r["target"] == "workers"]
    assert len(recorded) >= 6

    def scalerd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SCALERD, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    exported = scalerd("export", "workers", "--since", "1h", "--out", "trace.csv")
    assert exported.returncode == 0, exported.stderr
    assert "(total)" in exported.stderr  # the rule tracks a total: the demand as read
    with (tmp_path / "trace.csv").open() as file:
        rows = list(csv.DictReader(file))
    readings = [
        next(i["value"] for i in r["inputs"] if i["metric"] == "demand")
        for r in recorded
        if any(i["metric"] == "demand" and i["value"] is not None for i in r["inputs"])
    ]
    assert [float(row["value"]) for row in rows] == pytest.approx(readings)
    assert float(rows[0]["t_seconds"]) == 0.0

    replayed = scalerd(
        "simulate",
        "--config",
        "config.toml",
        "--target",
        "workers",
        "--trace",
        "trace.csv",
        "--out",
        "sim",
    )
    assert replayed.returncode == 0, replayed.stderr
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    assert summary["trace"] == "trace.csv" and summary["ticks"] >= 5
