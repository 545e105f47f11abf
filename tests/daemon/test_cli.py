"""``scalerd check``, ``run --once``, ``audit`` and ``explain`` as commands, over the
JSON-lines file and over a Redis stream; the shipped configs load and run."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from .build import SCALERD, audit_records, write_config

ROOT = Path(__file__).resolve().parents[2]

# DESIGN.md §5: the fields every audit record carries
DESIGN_FIELDS = {
    "ts",
    "id",
    "target",
    "kind",
    "config_version",
    "instance",
    "inputs",
    "rules",
    "current",
    "recommended",
    "desired",
    "steps",
    "action",
    "not_scaled_reason",
    "error",
    "duration_ms",
    "dry_run",
    "prev",
}

BODY = """
[[sources]]
name = "demand"
kind = "replay"
values = [45, 45]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"
initial = 3

[[targets]]
name = "api"
actuator = "pool"
max = 12
[[targets.track]]
metric = "demand"
type = "total"
target = 10

[[targets]]
name = "jobs"
actuator = "jobs"
max = 4
[[targets.threshold]]
when = "demand > 100 avg 1m"
action = "+1"

[[actuators]]
name = "jobs"
kind = "recording"
initial = 2
"""


def scalerd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCALERD, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_check_the_shipped_config() -> None:
    done = scalerd("check", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "config.toml: valid" in done.stdout
    assert "workers: scales process-pool 'workers'" in done.stdout
    assert "track demand at 15 (total)" in done.stdout


def test_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        BODY.replace("max = 12", "max = 12\nmaxx = 3").replace(
            'kind = "replay"', 'kind = "replya"'
        ),
    )
    done = scalerd("check", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(
        ": sources[0].kind: unknown source kind 'replya'; did you mean 'replay'?" in line
        for line in lines
    )
    assert lines[-1] == "2 problems found"


@pytest.mark.parametrize("store", ["jsonl", "redis"])
def test_one_record_per_evaluation_and_audit_explain_read_it(
    tmp_path: Path, store: str, redis_server: Any
) -> None:
    header = ""
    if store == "redis":
        if not redis_server.running:
            redis_server.start()
        redis.Redis.from_url(redis_server.url).delete("t:audit")
        header = f'\n[redis]\nurl = "{redis_server.url}"\n\n[audit]\nsink = "redis"\nstream = "t:audit"\nspool = "spool.jsonl"\n'
    config = write_config(tmp_path, BODY, header=header)
    for _ in range(2):
        assert scalerd("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0

    listed = scalerd("audit", "--config", str(config), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(records) == 4  # two targets, evaluated twice: one record each time
    for record in records:
        assert set(record) >= DESIGN_FIELDS, DESIGN_FIELDS - set(record)
    if store == "redis":
        entries = redis.Redis.from_url(redis_server.url).xrange("t:audit")
        assert len(entries) == 4 and {json.loads(e[1][b"record"])["id"] for e in entries} == {
            r["id"] for r in records
        }
    else:
        assert [r["id"] for r in audit_records(tmp_path)] == [r["id"] for r in records]
    api = [r for r in records if r["target"] == "api"]
    assert api[0]["action"] == "scaled" and api[0]["desired"] == 5  # 45 / 10 -> 5, from 3
    assert api[1]["prev"] == api[0]["id"]  # a chain across runs

    table = scalerd("audit", "--config", str(config), "--target", "api", cwd=tmp_path)
    assert table.returncode == 0 and "api" in table.stdout and "jobs" not in table.stdout

    explained = scalerd("explain", "api", "--config", str(config), cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "It scaled 3 → 5" in explained.stdout  # the pretend pool starts at 3 on each run
    assert "ceil(45 / 10) = 5" in explained.stdout  # the arithmetic, as on-call needs it
    jobs = scalerd("explain", "jobs", "--config", str(config), cwd=tmp_path)
    assert "demand > 100 avg 1m" in jobs.stdout
    assert "NoChangeRecommended" in jobs.stdout
    assert "\x1b[" not in jobs.stdout  # plain text when not a terminal
    unknown = scalerd("explain", "nope", "--config", str(config), cwd=tmp_path)
    assert unknown.returncode == 1 and "no target named 'nope'" in unknown.stderr


def test_the_redis_example_runs(tmp_path: Path, redis_server: Any) -> None:
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.rpush("queue:orders", *range(35))
    (tmp_path / "examples").mkdir()
    text = (
        (ROOT / "examples" / "redis.toml")
        .read_text()
        .replace("redis://127.0.0.1:6379/0", redis_server.url)
    )
    config = tmp_path / "examples" / "redis.toml"
    config.write_text(
        text.replace(
            'command = ["{python}", "-m", "scalerd.demo_worker", "--queue", "queue:orders"]',
            'command = ["{python}", "-c", "pass"]',
        )
    )
    assert scalerd("check", "--config", str(config), cwd=tmp_path).returncode == 0
    done = scalerd("run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (entry,) = client.xrange("scalerd:audit")
    record = json.loads(entry[1][b"record"])
    assert (record["target"], record["action"], record["desired"]) == (
        "order-workers",
        "scaled",
        1,
    )  # woken from 0
    assert client.keys("scalerd:state:*") == [b"scalerd:state:order-workers"]
    client.close()
    shutil.rmtree(tmp_path / "examples")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("UPDATE meta SET value = '99' WHERE key = 'format'", "state.db: state format 99"),
        ("UPDATE targets SET document = '{\"state\": {}}' WHERE name = 'api'", "state.db: api: "),
    ],
    ids=["newer-format", "damaged-row"],
)
def test_run_with_a_state_database_it_cannot_read_says_which_and_exits_2(
    tmp_path: Path, damage: str, problem: str
) -> None:
    """A state database of a newer scalerd, or a damaged row, stops the start with the
    file and the problem, not a traceback, and the database is left as it was."""
    config = write_config(tmp_path, BODY)
    assert scalerd("run", "--once", "--config", str(config), cwd=tmp_path).returncode == 0
    database = tmp_path / "state" / "state.db"
    with sqlite3.connect(database) as db:
        db.execute(damage)
        before = db.execute("SELECT * FROM targets ORDER BY name").fetchall()
    db.close()
    done = scalerd("run", "--once", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "scalerd run: " in done.stderr and problem in done.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT * FROM targets ORDER BY name").fetchall() == before
    db.close()
