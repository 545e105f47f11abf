"""Shadow mode: ``shadow = "rules/candidate.toml"`` decides beside the live rules on the
same readings every evaluation and never acts; ``scalerd shadow report`` compares them,
and its figures are recomputed here from the records."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from .build import SCALERD, audit_records, replay_target, running, write_config

CANDIDATE = """\
interval = "200ms"
min = 1
max = 8

[[track]]
metric = "demand"
type = "total"
target = 20
"""


def test_the_shadow_rule_decides_on_the_same_readings_and_the_report_adds_up(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "candidate.toml").write_text(CANDIDATE)
    body = replay_target((30, 70, 50, 10), step="1s", interval="200ms")
    body = body.replace(
        'actuator = "pool"\n', 'actuator = "pool"\nshadow = "rules/candidate.toml"\n'
    )
    body += "\n[targets.simulate]\ncapacity = 10\n"
    config = write_config(tmp_path, body)
    with running(config) as daemon:
        deadline = time.monotonic() + 60
        while len(audit_records(tmp_path)) < 25 and time.monotonic() < deadline:
            time.sleep(0.2)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    records = audit_records(tmp_path)
    assert len(records) >= 25
    # the live pool only ever followed the live rules (target 10 per replica)
    for record in records:
        shadow = record["shadow"]
        assert shadow["rules"] == "rules/candidate.toml"
        demand = next(i["value"] for i in record["inputs"] if i["metric"] == "demand")
        assert record["recommended"] == -(-demand // 10)  # ceil(demand / 10)
        assert shadow["recommended"] == -(-demand // 20)  # the same reading, target 20
    assert any(r["desired"] != r["shadow"]["desired"] for r in records)

    done = subprocess.run(
        [*SCALERD, "shadow", "report", "api", "--config", str(config), "--since", "1h", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    times = [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in records]
    held = [(b - a).total_seconds() for a, b in pairwise(times)] + [0.2]
    live = sum(r["desired"] * h for r, h in zip(records, held, strict=True)) / 3600
    candidate = sum(r["shadow"]["desired"] * h for r, h in zip(records, held, strict=True)) / 3600
    demand = [next(i["value"] for i in r["inputs"] if i["metric"] == "demand") for r in records]
    assert report["evaluations"] == len(records)
    assert report["differing"] == sum(r["desired"] != r["shadow"]["desired"] for r in records)
    assert report["live_capacity_hours"] == round(live, 6)
    assert report["shadow_capacity_hours"] == round(candidate, 6)
    short = sum(d > r["shadow"]["desired"] * 10 for d, r in zip(demand, records, strict=True))
    assert report["shadow_underprovisioned"] == round(short / len(records), 6)
    assert report["shadow_capacity_hours"] < report["live_capacity_hours"]  # half the replicas

    words = subprocess.run(
        [*SCALERD, "shadow", "report", "api", "--config", str(config), "--since", "1h"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "live rules against rules/candidate.toml" in words.stdout


def test_a_shadow_rule_reading_another_metric_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "candidate.toml").write_text(CANDIDATE.replace('"demand"', '"latency"'))
    body = replay_target((30,), step="1s").replace(
        'actuator = "pool"\n', 'actuator = "pool"\nshadow = "rules/candidate.toml"\n'
    )
    config = write_config(tmp_path, body)
    done = subprocess.run(
        [*SCALERD, "check", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert (
        "targets[0].shadow: the shadow rule reads 'latency', which target 'api' does not read"
        in done.stderr
    )
