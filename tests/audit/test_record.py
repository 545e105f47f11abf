"""The audit record: DESIGN.md §5 fields, exact round trip, the ``prev`` chain, no secrets."""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from scalerd.audit import AuditRecord, chain_breaks, format_ts, new_record_id, parse_ts
from scalerd.core import Capacity, Decision, Observation, TargetState, decide

from .build import CPU, T0, held_by_cooldown, record, records, scaled_with_rate_limit, target_spec

# DESIGN.md §5, plus what the issue adds (tier, restarts, operation, notes)
REQUIRED = [
    *("ts", "id", "target", "kind", "config_version", "instance", "inputs", "rules"),
    *("current", "recommended", "desired", "steps", "action", "not_scaled_reason"),
    *("error", "duration_ms", "dry_run", "prev"),
    *("tier", "restarts", "operation", "notes"),
]


def test_every_design_field_is_in_the_json() -> None:
    written = json.loads(record().to_json())
    assert set(REQUIRED) <= set(written)


def test_json_keys_follow_the_field_order() -> None:
    written = json.loads(record().to_json())
    assert list(written) == [field.name for field in fields(AuditRecord)]


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(record(), id="held"),
        pytest.param(
            record(scaled_with_rate_limit(), operation="op-1", notes=("restarts",)), id="scaled"
        ),
        pytest.param(
            AuditRecord.without_decision(
                "web",
                T0,
                action="failed",
                kind="azure-postgres-flexible",
                config_version="c0ffee",
                instance="scalerd-0",
                prev=None,
                duration_ms=3000.0,
                dry_run=False,
                error="actuator timed out",
            ),
            id="without-decision",
        ),
    ],
)
def test_round_trip(made: AuditRecord) -> None:
    line = made.to_json()
    assert "\n" not in line
    assert AuditRecord.from_json(line) == made
    assert AuditRecord.from_json(line).to_json() == line


def test_ts_is_rfc3339_utc_with_milliseconds() -> None:
    made = record()
    written = json.loads(made.to_json())["ts"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", written)
    # the decision's microseconds are cut to the milliseconds the JSON keeps
    assert made.ts == T0.replace(microsecond=T0.microsecond // 1000 * 1000)
    assert parse_ts(format_ts(made.ts)) == made.ts


def test_ids_are_unique_and_sort_by_time() -> None:
    made = records(50)
    ids = [each.id for each in made]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids


def test_the_decision_is_serialized_as_it_is() -> None:
    decision = held_by_cooldown()
    described = json.loads(json.dumps(decision.as_dict()))  # as JSON gives it back
    made = record(decision)
    assert made.current == described["current"]
    assert (made.recommended, made.desired) == (described["recommended"], described["desired"])
    assert made.not_scaled_reason == described["not_scaled_reason"] == "CooldownActive"
    assert list(made.inputs) == described["inputs"]
    assert list(made.rules) == described["rules"]
    # each step is Reason.as_dict(), with the not-scaled reason it stands for
    assert list(made.steps) == described["steps"]
    assert [step.get("holds_as") for step in made.steps] == [
        str(s.holds_as) if s.holds_as else None for s in decision.steps
    ]


def test_records_of_a_target_form_a_chain() -> None:
    first, second, third = records(3)
    assert (first.prev, second.prev, third.prev) == (None, first.id, second.id)
    assert chain_breaks([first, second, third]) == set()
    # a lost record shows: the next one's prev names a record the reader never saw
    assert chain_breaks([first, third]) == {third.id}


def test_chains_are_per_target() -> None:
    web = records(2, target="web")
    api = records(2, target="api")
    interleaved = [web[0], api[0], web[1], api[1]]
    assert chain_breaks(interleaved) == set()


SECRET = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=c2VjcmV0S2V5PQ=="


def test_a_secret_in_the_error_does_not_reach_the_json() -> None:
    made = record(
        action="failed", error=f"apply failed: {SECRET}", notes=(f"retried with {SECRET}",)
    )
    line = made.to_json()
    assert "c2VjcmV0S2V5PQ" not in line
    assert "SharedAccessKey=***" in (made.error or "")


def test_a_real_decision_round_trips() -> None:
    spec = target_spec(max=10, track=[{"metric": "cpu", "type": "utilization", "target": 50}])
    cpu = [Observation.value("cpu", T0, 95.0)]
    decision, _ = decide(spec, TargetState(), Capacity.steady(4), cpu, T0)
    made = record(decision)
    assert AuditRecord.from_json(made.to_json()) == made
    assert made.desired == decision.desired


def test_ts_defaults_to_the_decision_time_and_can_be_given() -> None:
    later = T0 + timedelta(seconds=2)
    assert record().ts.replace(microsecond=0) == T0.replace(microsecond=0)
    assert record(ts=later).ts == later.replace(microsecond=later.microsecond // 1000 * 1000)


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        replace(record(), action="maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"id": "x"}', id="fields-missing"),
        pytest.param("{not json", id="not-json"),
    ],
)
def test_a_line_that_is_not_a_record_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        AuditRecord.from_json(line)


def test_unknown_keys_from_a_newer_writer_are_ignored() -> None:
    made = record()
    newer = json.loads(made.to_json()) | {"shiny_new_field": 1}
    assert AuditRecord.from_mapping(newer) == made


def _as_decision_describes_it(decision: Decision) -> dict[str, Any]:
    """What a record of ``decision`` holds of it: ``Decision.as_dict()`` as JSON gives it
    back (how records were built before they were built straight from the decision)."""
    described = orjson.loads(orjson.dumps(decision.as_dict(), default=str))
    return {key: described[key] for key in ("current", "inputs", "rules", "steps")} | {
        "not_scaled_reason": described["not_scaled_reason"],
        "cooldown_s": described["cooldown_s"],
    }


def _with_step_data(data: dict[str, Any]) -> Decision:
    decision = scaled_with_rate_limit()
    return replace(decision, steps=(replace(decision.steps[0], data=data), *decision.steps[1:]))


def _failed_read() -> Decision:
    spec = target_spec(max=10, track=[{"metric": "cpu", "type": "utilization", "target": 50}])
    decision, _ = decide(
        spec, TargetState(), Capacity(4, 3, "op-7"), [Observation.failed("cpu", "boom")], T0
    )
    return decision


@pytest.mark.parametrize(
    "decision",
    [
        pytest.param(held_by_cooldown(), id="cooldown"),
        pytest.param(scaled_with_rate_limit(), id="rate-limit"),
        pytest.param(_failed_read(), id="failed-read"),
        pytest.param(
            replace(held_by_cooldown(), inputs=(replace(CPU, value=float("nan")),)), id="nan"
        ),
        pytest.param(
            replace(held_by_cooldown(), inputs=(replace(CPU, age_s=float("-inf")),)), id="inf"
        ),
        pytest.param(_with_step_data({"proposals": 2, "ratio": 0.5, "why": None}), id="flat"),
        pytest.param(_with_step_data({"limits": [8, 8]}), id="list"),
        pytest.param(_with_step_data({"window": {"s": 60}}), id="nested"),
        pytest.param(_with_step_data({"until": T0}), id="datetime"),
        pytest.param(_with_step_data({"ratio": float("inf")}), id="inf-in-data"),
        pytest.param(_with_step_data({"on": True, "count": 2**40}), id="bool-and-int"),
    ],
)
def test_a_record_holds_the_decision_as_its_as_dict_describes_it(decision: Decision) -> None:
    """The record is built from the decision's parts in one orjson call; what it holds,
    and its JSON, stay what ``Decision.as_dict()`` gives (a field added to a report and not
    to its ``as_dict``, or the other way round, fails here)."""
    made = record(decision)
    described = _as_decision_describes_it(decision)
    held = {key: getattr(made, key) for key in ("current", "inputs", "rules", "steps")}
    assert {key: list(v) if key != "current" else v for key, v in held.items()} == {
        key: described[key] for key in held
    }
    assert (made.not_scaled_reason, made.cooldown_s) == (
        described["not_scaled_reason"],
        described["cooldown_s"],
    )
    written = json.loads(made.to_json())
    assert {key: written[key] for key in held} == {key: described[key] for key in held}


def test_a_record_built_from_a_decision_is_the_one_its_fields_build() -> None:
    """``from_decision`` fills the slots itself: the record is the dataclass's own, with
    every field (defaults included) and its checks."""
    for made in (record(), record(scaled_with_rate_limit(), operation="op-1", notes=("n",))):
        assert type(made) is AuditRecord
        values = {field.name: getattr(made, field.name) for field in fields(AuditRecord)}
        assert AuditRecord(**values) == made
        assert repr(AuditRecord(**values)) == repr(made)
        assert AuditRecord(**values).to_json() == made.to_json()
    with pytest.raises(ValueError, match="unknown audit action"):
        record(action="maybe")
    with pytest.raises(ValueError, match="aware"):
        record(ts=T0.replace(tzinfo=None))


@pytest.mark.parametrize(
    "at",
    [
        T0,
        T0.replace(microsecond=999999),
        T0.replace(microsecond=0),
        T0.astimezone(timezone(timedelta(hours=5, minutes=30))),
        T0.astimezone(timezone(timedelta(hours=-8))),
        datetime(999, 12, 31, 23, 59, 59, 1500, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_format_ts_writes_what_strftime_writes(at: datetime) -> None:
    utc = at.astimezone(UTC)
    expected = f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
    assert format_ts(at) == expected
    assert format_ts(at) == expected  # remembered
    assert format_ts(utc) == expected  # the same instant
    other = at + timedelta(milliseconds=1) if at.year < 9999 else at - timedelta(seconds=1)
    assert format_ts(other) != expected


def test_record_ids_keep_their_format() -> None:
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{16}", new_record_id(T0))
    assert new_record_id(T0)[:12] == f"{int(T0.timestamp() * 1000):012x}"
    # 64 random bits: the leading hex digits are not always 0
    assert len({new_record_id(T0)[13] for _ in range(200)}) > 1


def test_record_ids_differ_in_a_forked_child() -> None:
    """The generator is seeded again in a forked child: a parent and its child (a worker,
    a daemonized scalerd) never write the same ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without pytest's teardown
        try:
            os.write(write, ",".join(new_record_id(T0) for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = {new_record_id(T0) for _ in range(3)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert not parent & child
