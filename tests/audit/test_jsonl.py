"""The JSON-lines audit file: durable appends, rotation, reading back, following."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from crash import kill_9_after

from scalerd.audit import (
    AuditRecord,
    JsonlAuditLog,
    JsonlSink,
    follow_jsonl,
    last_record,
    read_jsonl,
)

from .build import T0, records


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def line_size(made: list[AuditRecord]) -> int:
    """The size of a line of this chain (all have one; only the first, with no prev, is
    shorter)."""
    return max(len(each.to_json()) + 1 for each in made)


async def emit_all(sink: JsonlSink, made: list[AuditRecord]) -> None:
    for each in made:
        await sink.emit(each)


async def test_records_are_appended_one_line_each_and_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "nested" / "audit.jsonl"  # parent directories are created
    made = records(5)
    sink = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await emit_all(sink, made)
    await sink.aclose()
    assert lines_of(path) == [each.to_json() for each in made]
    assert read_jsonl(path) == made


async def test_records_survive_a_new_sink_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(6)
    first = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await emit_all(first, made[:3])
    await first.aclose()
    second = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await emit_all(second, made[3:])
    await second.aclose()
    assert read_jsonl(path) == made


async def test_rotation_by_size_keeps_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(12)
    line_bytes = line_size(made)
    sink = JsonlSink(path, max_bytes=3 * line_bytes, keep=2)
    await emit_all(sink, made)
    await sink.aclose()

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.jsonl",
        "audit.jsonl.1",
        "audit.jsonl.2",
    ]
    assert all(p.stat().st_size <= 3 * line_bytes for p in tmp_path.iterdir())
    # three files of three records: the newest nine survive, read oldest first
    assert read_jsonl(path) == made[-9:]
    assert [AuditRecord.from_json(line) for line in lines_of(tmp_path / "audit.jsonl.2")] == made[
        -9:-6
    ]


async def test_keep_zero_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(4)
    sink = JsonlSink(path, max_bytes=2 * line_size(made), keep=0)
    await emit_all(sink, made)
    assert [p.name for p in tmp_path.iterdir()] == ["audit.jsonl"]
    assert read_jsonl(path) == made[-2:]


async def test_reader_filters_by_target_since_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    web = records(4, target="web")
    api = records(4, target="api", start=T0 + timedelta(seconds=5))
    interleaved = [each for pair in zip(web, api, strict=True) for each in pair]
    sink = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await emit_all(sink, interleaved)

    assert read_jsonl(path, target="api") == api
    since = web[2].ts
    assert read_jsonl(path, since=since) == [r for r in interleaved if r.ts >= since]
    # limit keeps the newest, still oldest first
    assert read_jsonl(path, target="web", limit=2) == web[-2:]
    assert read_jsonl(path, limit=0) == []
    assert await JsonlAuditLog(path).read(target="web", since=web[1].ts, limit=10) == web[1:]
    assert await last_record(JsonlAuditLog(path), "api") == api[-1]
    assert await last_record(JsonlAuditLog(path), "nobody") is None


async def test_a_record_id_written_twice_is_read_once_the_first_copy(tmp_path: Path) -> None:
    """A record written again under its id (a restart settling a change whose record was
    written) is read once: the copy written first, in its place."""
    path = tmp_path / "audit.jsonl"
    made = records(4)
    again = replace(made[1], notes=("settled at restart",))
    sink = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await emit_all(sink, [*made[:3], again, made[3]])
    assert len(lines_of(path)) == 5
    assert read_jsonl(path) == made
    assert read_jsonl(path, limit=3) == made[1:]  # three distinct records, not two
    assert read_jsonl(path, since=made[1].ts) == made[1:]


async def test_a_rotated_file_older_than_since_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(4)
    sink = JsonlSink(path, max_bytes=2 * line_size(made), keep=1)
    await emit_all(sink, made)
    rotated = tmp_path / "audit.jsonl.1"
    rotated.write_text("this line would not parse\n")
    os.utime(rotated, (0, 0))  # last written in 1970
    assert read_jsonl(path, since=made[0].ts) == made[-2:]


def test_a_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert read_jsonl(tmp_path / "never-written.jsonl") == []


async def test_a_torn_last_line_is_ignored_then_cut_off(tmp_path: Path) -> None:
    """What a kill -9 in the middle of a write leaves: the line without its newline."""
    path = tmp_path / "audit.jsonl"
    first, second = records(2)
    sink = JsonlSink(path, max_bytes=1 << 20, keep=2)
    await sink.emit(first)
    with path.open("a") as file:
        file.write(second.to_json()[:40])
    assert read_jsonl(path) == [first]

    await sink.emit(second)
    assert lines_of(path) == [first.to_json(), second.to_json()]


CHILD = """
import asyncio, sys
from scalerd.audit import JsonlSink
from tests.audit.build import chain

async def main() -> None:
    sink = JsonlSink(sys.argv[1], max_bytes=8192, keep=1000)
    for made in chain():
        await sink.emit(made)
        print(made.id, flush=True)

asyncio.run(main())
"""


def test_kill_9_loses_no_emitted_record(tmp_path: Path) -> None:
    """A child prints each id once ``emit`` returned; after SIGKILL every one is on disk."""
    path = tmp_path / "audit.jsonl"
    before, after = kill_9_after(CHILD, str(path), 40)  # 40 records: enough to rotate
    emitted = before + after

    stored = [each.id for each in read_jsonl(path)]
    assert (tmp_path / "audit.jsonl.1").exists()
    # everything acknowledged is there, in order; at most one more was written unacknowledged
    assert stored[: len(emitted)] == emitted
    assert len(stored) - len(emitted) in (0, 1)


async def next_within(following: AsyncIterator[AuditRecord], seconds: float = 5.0) -> AuditRecord:
    return await asyncio.wait_for(anext(following), seconds)


async def test_follow_sees_records_written_after_it_started_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    made = records(7)
    sink = JsonlSink(path, max_bytes=2 * line_size(made), keep=3)
    await sink.emit(made[0])

    following = JsonlAuditLog(path, poll_interval=0.01).follow()
    try:
        await emit_all(sink, made[1:])  # rotates twice while nobody reads
        assert [await next_within(following) for _ in made[1:]] == made[1:]
    finally:
        await following.aclose()  # type: ignore[attr-defined]


async def test_follow_filters_by_target_and_waits_for_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    following = follow_jsonl(path, target="api", poll_interval=0.01)
    try:
        sink = JsonlSink(path, max_bytes=1 << 20, keep=1)
        web, api = records(1, target="web"), records(1, target="api")
        await emit_all(sink, web + api)
        assert await next_within(following) == api[0]
    finally:
        await following.aclose()  # type: ignore[attr-defined]
