"""The cheap audit record: orjson writes the bytes json.dumps wrote, the JSON-lines file
writes a pass's records in one batch (one fsync) and keeps them one per evaluation, in
order; secrets in config strings are refused once, at load."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from daemon.build import write_config

from scalerd.audit import AuditRecord, JsonlSink, read_jsonl, secret_looking
from scalerd.config import load_config
from scalerd.core import Capacity, Observation, TargetState, decide
from scalerd.daemon.app import Daemon, refuse_secret_looking_strings
from scalerd.errors import ConfigError

from .build import T0, held_by_cooldown, record, records, scaled_with_rate_limit, target_spec


def _as_json_dumps_wrote_it(made: AuditRecord) -> str:
    return json.dumps(made.as_dict(), separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(record(), id="held"),
        pytest.param(record(held_by_cooldown(target="wéb-ü")), id="not-ascii"),
        pytest.param(
            record(scaled_with_rate_limit(), operation="op-1", notes=("restarts",)), id="scaled"
        ),
        pytest.param(
            record(
                decide(
                    target_spec(
                        max=10, track=[{"metric": "cpu", "type": "utilization", "target": 50}]
                    ),
                    TargetState(),
                    Capacity.steady(3),
                    [Observation.value("cpu", T0, 0.1 + 0.2)],
                    T0,
                )[0]
            ),
            id="real-decision",
        ),
    ],
)
def test_the_json_is_byte_for_byte_what_json_dumps_wrote(made: AuditRecord) -> None:
    assert made.to_json() == _as_json_dumps_wrote_it(made)


async def test_a_pass_is_one_batch_one_record_per_evaluation_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, max_bytes=50 * 1024 * 1024, keep=1)
    made = records(300)
    # the records of a pass arrive together; each emit waits for its batch's fsync
    await asyncio.gather(*(sink.emit(each) for each in made))
    assert sink.commits <= 2  # the first record's write, then everything that queued behind
    assert [each.id for each in read_jsonl(path)] == [each.id for each in made]
    await sink.aclose()


async def test_a_batch_rotates_where_a_record_would_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(40)
    size = max(len(each.to_json()) + 1 for each in made)
    sink = JsonlSink(path, max_bytes=10 * size, keep=9)
    await asyncio.gather(*(sink.emit(each) for each in made))
    await sink.aclose()
    rotated = sorted(tmp_path.glob("audit.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    files = [*rotated, path]
    assert all(file.stat().st_size <= 10 * size for file in files)
    ids = [json.loads(line)["id"] for file in files for line in file.read_text().splitlines()]
    assert ids == [each.id for each in made]


async def test_run_once_leaves_one_record_per_target_in_the_file(tmp_path: Path) -> None:
    body = "".join(
        f"""
[[actuators]]
name = "pool-{n}"
kind = "recording"
initial = 2

[[targets]]
name = "t{n}"
actuator = "pool-{n}"
max = 10
[[targets.track]]
metric = "demand"
type = "total"
target = 5
"""
        for n in range(30)
    )
    config = write_config(
        tmp_path,
        '[[sources]]\nname = "demand"\nkind = "replay"\nvalues = [20]\nstep = "60s"\n' + body,
    )
    async with Daemon(config, listen="127.0.0.1:0") as daemon:
        first = await daemon.run_once()
        second = await daemon.run_once()
        assert isinstance(daemon.audit, JsonlSink) and daemon.audit.commits <= 6
    written = read_jsonl(tmp_path / "audit" / "audit.jsonl")
    assert [asdict(each) for each in written] == [asdict(each) for each in [*first, *second]]
    assert sorted(each.target for each in written[:30]) == sorted(f"t{n}" for n in range(30))
    assert all(later.prev == earlier.id for earlier, later in zip(first, second, strict=True))


def test_a_config_string_that_looks_like_a_secret_is_refused_once_at_load(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        """
[[sources]]
name = "demand"
kind = "replay"
values = [20]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"

[[targets]]
name = "api"
actuator = "pool"
max = 10
[[targets.track]]
name = "password=hunter2"
metric = "demand"
type = "total"
target = 5
""",
    )
    with pytest.raises(ConfigError, match=r"targets\.api\.track\[0\]: looks like a secret"):
        refuse_secret_looking_strings(load_config(config))
    assert secret_looking([("a", "cpu utilization target 50"), ("b", "sig=abc")]) == ["b"]
