"""Reading audit records back: ``scalerd audit``, ``scalerd explain`` and the HTTP API.

Two stores, one shape. :class:`JsonlAuditLog` and :class:`StreamAuditLog` both satisfy
:class:`AuditLog` (``read`` and ``follow``), so a caller builds one from the settings and
stops caring where records live. The functions they delegate to are public too, for
scripts and tests.

Results are always oldest first; ``limit`` keeps the *newest* matching records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import _jsonl
from .record import AuditRecord
from .sinks import STREAM_FIELD, _text

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "AuditLog",
    "JsonlAuditLog",
    "StreamAuditLog",
    "chain_breaks",
    "follow_jsonl",
    "follow_stream",
    "last_record",
    "read_jsonl",
    "read_stream",
]

# A stream entry id is Redis's clock when the record was added, its ``ts`` the writer's
# clock when the evaluation started; ``since`` bounds entry ids this much earlier so that
# clock skew and slow ticks do not hide a record.
_CLOCK_SLACK = timedelta(minutes=5)
_PAGE = 500


class AuditLog(Protocol):
    """Where the audit records of a deployment can be read back."""

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]: ...

    def follow(self, *, target: str | None = None) -> AsyncIterator[AuditRecord]: ...


@dataclass(frozen=True, slots=True)
class JsonlAuditLog:
    """The audit file written by :class:`~scalerd.audit.sinks.JsonlSink`."""

    path: Path
    poll_interval: float = 0.5

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return await asyncio.to_thread(
            read_jsonl, self.path, target=target, since=since, limit=limit
        )

    def follow(self, *, target: str | None = None) -> AsyncIterator[AuditRecord]:
        return follow_jsonl(self.path, target=target, poll_interval=self.poll_interval)


@dataclass(frozen=True, slots=True)
class StreamAuditLog:
    """The audit stream written by :class:`~scalerd.audit.sinks.RedisStreamSink`.

    ``block`` (seconds) must stay below the client's socket timeout.
    """

    redis: redis.asyncio.Redis
    stream: str
    block: float = 1.0

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return await read_stream(self.redis, self.stream, target=target, since=since, limit=limit)

    def follow(self, *, target: str | None = None) -> AsyncIterator[AuditRecord]:
        return follow_stream(self.redis, self.stream, target=target, block=self.block)


async def last_record(log: AuditLog, target: str) -> AuditRecord | None:
    """The latest record of ``target``: what ``scalerd explain`` shows, and the ``prev`` a
    restarted daemon continues the chain from."""
    records = await log.read(target=target, limit=1)
    return records[-1] if records else None


def chain_breaks(records: Iterable[AuditRecord]) -> set[str]:
    """Ids of records whose ``prev`` is not the record before them of the same target.

    Something is missing between the two: a lost record, or one from another replica that
    is still in that replica's spool. The first record of each target is not judged.
    """
    latest: dict[str, str] = {}
    breaks: set[str] = set()
    for record in records:
        if record.target in latest and record.prev != latest[record.target]:
            breaks.add(record.id)
        latest[record.target] = record.id
    return breaks


# --- the JSON-lines file -----------------------------------------------------------------


def read_jsonl(
    path: Path | str,
    *,
    target: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Records from ``path`` and its rotated copies (blocking; async callers use a thread).

    Files are read newest first and reading stops as soon as ``limit`` records match, or
    at a rotated file last written before ``since``. A record id written twice is kept
    once, the copy written first.
    """
    records = _newest_first(Path(path), since)
    distinct = _Distinct(limit)
    for record in records:
        if _matches(record, target, since) and not distinct.add(record):
            break
    return distinct.newest()[::-1]


def _newest_first(path: Path, since: datetime | None) -> Iterator[AuditRecord]:
    for file in reversed(_jsonl.rotated(path)):
        status = _stat(file)
        if status is None:
            continue  # renamed by a rotation since the listing; rare, and only for a CLI read
        if since is not None and status.st_mtime < since.timestamp():
            return  # written to for the last time before `since`: so is every older file
        for line in reversed(_jsonl.complete_lines(file)):
            record = _parse(line)
            if record is not None:
                yield record


def follow_jsonl(
    path: Path | str, *, target: str | None = None, poll_interval: float = 0.5
) -> AsyncIterator[AuditRecord]:
    """Records appended to ``path`` after this call, across rotations (``tail -F``)."""
    return _follow(_Tail(Path(path)), target, poll_interval)


async def _follow(
    tail: _Tail, target: str | None, poll_interval: float
) -> AsyncGenerator[AuditRecord, None]:
    while True:
        for line in await asyncio.to_thread(tail.new_lines):
            record = _parse(line)
            if record is not None and _matches(record, target, None):
                yield record
        await asyncio.sleep(poll_interval)


class _Tail:
    """Reads what was appended to a file since the last look, by inode and offset.

    When the inode at ``path`` changes, the file was rotated: the rest of the file being
    read is found by its inode among the rotated copies (however far it moved), and is read
    first, then each newer copy whole, then the new file from its start.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        status = _stat(path)
        self._inode = status.st_ino if status is not None else None
        self._offset = status.st_size if status is not None else 0

    def new_lines(self) -> list[str]:
        status = _stat(self._path)
        inode = status.st_ino if status is not None else None
        lines: list[str] = []
        if inode != self._inode:
            lines += self._rotated_away()
            self._inode, self._offset = inode, 0
        if status is not None:
            lines += self._read(self._path)
        return lines

    def _rotated_away(self) -> list[str]:
        older = [file for file in _jsonl.rotated(self._path) if file != self._path]
        inodes = [status.st_ino if (status := _stat(file)) else None for file in older]
        if self._inode is None or self._inode not in inodes:
            return []  # gone (keep = 0, or rotated past keep): nothing left to read
        first = inodes.index(self._inode)
        lines = self._read(older[first])
        for file in older[first + 1 :]:
            self._offset = 0
            lines += self._read(file)
        return lines

    def _read(self, path: Path) -> list[str]:
        """Complete lines after the offset; a line still being written waits for later."""
        try:
            with path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:  # rotated away since we looked: found there next time
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return complete.decode().split("\n")[:-1]


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


# --- the Redis stream --------------------------------------------------------------------


async def read_stream(
    redis: redis.asyncio.Redis,
    stream: str,
    *,
    target: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Records from the stream (XREVRANGE, newest first, a page at a time).

    Duplicate ids (a retried ``XADD``) are dropped, the first written kept, and the result is ordered by ``ts``:
    records copied late from a replica's spool take their place in time.
    """
    distinct = _Distinct(limit)
    async with contextlib.aclosing(_stream_newest_first(redis, stream, since)) as records:
        async for record in records:
            if _matches(record, target, since) and not distinct.add(record):
                break
    # ties keep stream order
    return sorted(reversed(distinct.newest()), key=lambda record: record.ts)


async def _stream_newest_first(
    redis: redis.asyncio.Redis, stream: str, since: datetime | None
) -> AsyncGenerator[AuditRecord, None]:
    lowest = "-" if since is None else str(max(0, int((since - _CLOCK_SLACK).timestamp() * 1000)))
    highest = "+"
    while True:
        entries = _entries(await redis.xrevrange(stream, max=highest, min=lowest, count=_PAGE))
        for _, record in entries:
            if record is not None:
                yield record
        if len(entries) < _PAGE:
            return
        highest = f"({entries[-1][0]}"


async def follow_stream(
    redis: redis.asyncio.Redis, stream: str, *, target: str | None = None, block: float = 1.0
) -> AsyncIterator[AuditRecord]:
    """Records added to the stream from now on (XREAD BLOCK, ``block`` seconds per call)."""
    newest = _entries(await redis.xrevrange(stream, count=1))
    last = newest[0][0] if newest else "0-0"
    while True:
        reply = await redis.xread({stream: last}, block=int(block * 1000), count=_PAGE)
        for entry_id, record in _entries(_xread_entries(reply)):
            last = entry_id
            if record is not None and _matches(record, target, None):
                yield record


def _xread_entries(reply: Any) -> list[Any]:
    """The entries of the one stream read: RESP2 answers ``[[name, entries]]``, RESP3
    ``{name: entries}``, and nothing at all when the block timed out."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, Mapping) else [entries for _, entries in reply]
    return [entry for entries in streams for entry in entries]


def _entries(raw: Any) -> list[tuple[str, AuditRecord | None]]:
    """Stream entries as (entry id, record or None if the entry holds no record)."""
    entries: list[tuple[str, AuditRecord | None]] = []
    for entry_id, fields in raw or ():
        value = fields.get(STREAM_FIELD, fields.get(STREAM_FIELD.encode()))
        entries.append((_text(entry_id), _parse(value) if value is not None else None))
    return entries


# --- shared -----------------------------------------------------------------------------


class _Distinct:
    """The ``limit`` newest records, read newest first, each id once.

    A record written twice (a retried write, a record written again at a restart) is kept
    once: the copy written first, in its place. A later copy has the first one's ``ts``,
    so once ``limit`` records are found, reading goes on while records are no older than
    the oldest of them: an earlier copy of one of them is among those.
    """

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._found: dict[str, AuditRecord] = {}  # newest first
        self._floor: datetime | None = None

    def add(self, record: AuditRecord) -> bool:
        """Take ``record``; False when no record further back can change the result."""
        if self._limit is not None and self._limit <= 0:
            return False
        if self._floor is not None and record.ts < self._floor:
            return False
        self._found.pop(record.id, None)  # an earlier copy: it takes the later one's place
        self._found[record.id] = record
        if self._floor is None and self._limit is not None and len(self._found) >= self._limit:
            self._floor = min(each.ts for each in self._found.values())
        return True

    def newest(self) -> list[AuditRecord]:
        """The records kept, newest first."""
        return list(self._found.values())[: self._limit]


def _parse(line: str | bytes) -> AuditRecord | None:
    """A record, or None for a line that is not one (only a damaged disk makes those;
    on-call still wants the records around it)."""
    try:
        return AuditRecord.from_json(line)
    except ValueError:
        return None


def _matches(record: AuditRecord, target: str | None, since: datetime | None) -> bool:
    return (target is None or record.target == target) and (since is None or record.ts >= since)
