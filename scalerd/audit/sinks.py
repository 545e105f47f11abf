"""Where audit records go: a JSON-lines file (the embedded default), a Redis stream, memory.

Every sink makes the same promise: once ``emit`` returns, the record survives a ``kill -9``
of scalerd. The file sink fsyncs each batch of records emitted together (group commit); the Redis sink hands it to Redis, or, while
Redis is unreachable, fsyncs it to a local spool that is copied into the stream (in order,
exactly once) when Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog
from redis.exceptions import RedisError

from ..batching import GroupCommit
from ..redact import redact
from . import _jsonl
from .record import AuditRecord

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["AuditSink", "JsonlSink", "MemorySink", "RecentRecords", "RedisStreamSink"]

# the one field of every stream entry, holding the record's JSON (readers.py reads it)
STREAM_FIELD = "record"

log = structlog.get_logger(__name__)


class AuditSink(Protocol):
    """Receives every audit record. ``emit`` returns once the record is durable."""

    async def emit(self, record: AuditRecord) -> None: ...

    async def flush(self) -> None:
        """Write out whatever is waiting (a spool) if the destination allows it now."""

    def backlog(self) -> int:
        """Records accepted but not yet at their final destination (e.g. spooled)."""

    async def aclose(self) -> None: ...


class MemorySink:
    """Keeps records in a list: for tests and ``scalerd simulate``."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def emit(self, record: AuditRecord) -> None:
        self.records.append(record)

    async def flush(self) -> None:
        pass

    def backlog(self) -> int:
        return 0

    async def aclose(self) -> None:
        pass


async def emit_all(sink: AuditSink, records: Sequence[AuditRecord]) -> None:
    """``sink.emit`` of each of ``records``, in order: in one batch if the sink takes one
    (an ``emit_many`` of its own; a wrapper that forwards unknown attributes must define
    its own, or the batch would go past it)."""
    emit_many = getattr(sink, "emit_many", None)
    if emit_many is not None:
        await emit_many(records)
    else:  # started in order: a group commit keeps it
        await asyncio.gather(*map(sink.emit, records))


class RecentRecords:
    """Passes every record on to ``sink`` and keeps the newest ``keep`` in memory: what the
    daemon can still show while its audit stream cannot be read."""

    def __init__(self, sink: AuditSink, keep: int = 1000) -> None:
        self.sink = sink
        self._records: deque[AuditRecord] = deque(maxlen=keep)

    def recent(self) -> list[AuditRecord]:
        """The records kept, oldest first."""
        return list(self._records)

    async def emit(self, record: AuditRecord) -> None:
        await self.sink.emit(record)
        self._records.append(record)

    async def emit_many(self, records: Sequence[AuditRecord]) -> None:
        await emit_all(self.sink, records)
        self._records.extend(records)

    async def flush(self) -> None:
        await self.sink.flush()

    def backlog(self) -> int:
        return self.sink.backlog()

    async def aclose(self) -> None:
        await self.sink.aclose()


class JsonlSink:
    """Appends one JSON line per record to ``path``, rotated by size, with group commit.

    The records that arrive while a write is under way (the other targets of a pass) are
    written together by the next one: one buffered write and one fsync per batch, in emit
    order. ``emit`` returns once its batch is fsynced, so a crash loses nothing that was
    acknowledged: only records whose ``emit`` had not returned, whose evaluations had not
    finished. ``path`` moves to ``path.1`` (… up to ``path.{keep}``) before a record would
    take it past ``max_bytes``. Writes run in a worker thread.
    """

    def __init__(self, path: Path | str, max_bytes: int, keep: int) -> None:
        self.path = Path(path)
        self._max_bytes = max_bytes
        self._keep = keep
        self._writes = GroupCommit(self._write)

    @property
    def commits(self) -> int:
        """Batches written (each one write and one fsync)."""
        return self._writes.commits

    async def emit(self, record: AuditRecord) -> None:
        await self._writes.submit(record.to_json_bytes())

    async def emit_many(self, records: Sequence[AuditRecord]) -> None:
        """``emit`` each of ``records``, in order, with one wait for their batch."""
        await self._writes.submit_many([each.to_json_bytes() for each in records])

    def _write(self, lines: list[bytes]) -> None:
        size = self.path.stat().st_size if self.path.exists() else 0
        batch: list[bytes] = []
        for line in lines:
            length = len(line) + 1
            if size and size + length > self._max_bytes:
                if batch:
                    _jsonl.append_bytes(self.path, _joined(batch))
                    batch = []
                _jsonl.rotate(self.path, self._keep)
                size = 0
            batch.append(line)
            size += length
        _jsonl.append_bytes(self.path, _joined(batch))

    async def flush(self) -> None:
        """Wait for the batch under way: then every emitted record is on disk."""
        await self._writes.drain()

    def backlog(self) -> int:
        return self._writes.pending()

    async def aclose(self) -> None:
        await self._writes.drain()  # let a write in progress finish


def _joined(lines: list[bytes]) -> bytes:
    """JSON lines as a file holds them, each with its newline."""
    return b"\n".join(lines) + b"\n" if lines else b""


# An unreachable, overloaded or misbehaving Redis. Any of them spools the record rather
# than losing it; ``TimeoutError`` (an ``OSError``) covers our own deadline.
_UNAVAILABLE = (RedisError, OSError)

# How long a flush marker outlives a crash in the middle of a flush (see RedisStreamSink).
_MARKER_TTL_S = 30 * 24 * 3600


class RedisStreamSink:
    """``XADD stream MAXLEN ~ maxlen * record <json>``, with a local spool for outages.

    While Redis is unreachable, records are appended (fsynced) to ``spool_path``, and Redis
    is not tried again for ``retry_interval`` seconds. As long as the spool exists, new
    records join it, so order is kept. The spool is copied into the stream on the next
    ``emit``, ``flush`` or background retry (:meth:`start`), then deleted.

    **Exactly once across a crash mid-copy.** Each batch of spooled records is added in a
    MULTI/EXEC transaction together with a marker key naming the last record of the batch:
    the stream and the marker can never disagree. The marker key is named after the first
    record of the spool, which stays the same until the spool is deleted, so a new process
    over the same spool finds it and skips what is already in the stream. The spool is
    deleted before the marker, and the marker expires on its own after 30 days.

    A direct ``XADD`` whose reply is lost (timeout after Redis applied it) cannot be told
    apart from one that failed; that record is spooled and may appear twice. Readers
    drop duplicate ids (see :mod:`scalerd.audit.readers`).

    The Redis client is injected and not closed here; its own retries should be short, as
    every call is also bounded by ``timeout`` seconds.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        stream: str,
        maxlen: int,
        spool_path: Path | str,
        *,
        retry_interval: float = 5.0,
        timeout: float = 5.0,
        batch: int = 100,
    ) -> None:
        self._redis = redis
        self.stream = stream
        self._maxlen = maxlen
        self.spool_path = Path(spool_path)
        self._retry_interval = retry_interval
        self._timeout = timeout
        self._batch = batch
        self._lock = asyncio.Lock()
        # records in the spool and not yet in the stream, as of the last look at the spool
        self._spooled = 0
        # loop time before which Redis is not tried again after a failure (0: try now)
        self._retry_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def backlog(self) -> int:
        """Spooled records not yet in the stream: counted from the spool at each attempt
        to copy it (the first ``emit``, ``flush`` or background retry), kept up to date in
        between."""
        return self._spooled

    async def start(self) -> None:
        """Copy what an earlier run left in the spool, then look again every
        ``retry_interval`` seconds (Redis is only asked while something is spooled)."""
        if self._task is None:
            name = f"audit-spool {self.stream}"
            self._task = asyncio.create_task(self._retry_forever(), name=name)

    async def emit(self, record: AuditRecord) -> None:
        line = record.to_json()
        async with self._lock:
            if not self.spool_path.exists() and self._redis_due() and await self._added(line):
                return
            await asyncio.to_thread(_jsonl.append, self.spool_path, [line])
            self._spooled += 1
            if self._redis_due():
                await self._drain()

    async def _added(self, line: str) -> bool:
        """XADD one record; False (and back off) if Redis is unavailable."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.xadd(
                    self.stream, {STREAM_FIELD: line}, maxlen=self._maxlen, approximate=True
                )
        except _UNAVAILABLE as exc:
            self._unavailable(exc)
            return False
        return True

    async def flush(self) -> None:
        """Copy the spool into the stream now, if Redis answers (never raises for an outage)."""
        async with self._lock:
            if self.spool_path.exists():
                await self._drain()

    async def aclose(self) -> None:
        """Stop retrying and make a last attempt to empty the spool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _retry_forever(self) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(self._retry_interval)

    def _redis_due(self) -> bool:
        return asyncio.get_running_loop().time() >= self._retry_at

    def _unavailable(self, exc: BaseException) -> None:
        if self._retry_at == 0.0:  # Redis was fine until now: say so once, not every retry
            log.warning(
                "audit stream unreachable: spooling records",
                stream=self.stream,
                spool=str(self.spool_path),
                error=redact(f"{type(exc).__name__}: {exc}"),
            )
        self._retry_at = asyncio.get_running_loop().time() + self._retry_interval

    async def _drain(self) -> None:
        try:
            copied = await self._copy_spool()
        except _UNAVAILABLE as exc:
            self._unavailable(exc)
            return
        self._retry_at = 0.0
        if copied:
            log.info("audit spool copied to the stream", stream=self.stream, records=copied)

    async def _copy_spool(self) -> int:
        """Copy the spool into the stream in order, skipping what an interrupted copy
        already added, then delete it. Returns how many records were added."""
        entries = _spooled_entries(await asyncio.to_thread(_jsonl.complete_lines, self.spool_path))
        self._spooled = len(entries)
        if not entries:
            await asyncio.to_thread(_jsonl.remove, self.spool_path)
            return 0
        marker = f"{self.stream}:spool:{entries[0][0]}"
        pending = entries[await self._already_copied(marker, entries) :]
        self._spooled = len(pending)
        for first in range(0, len(pending), self._batch):
            batch = pending[first : first + self._batch]
            async with asyncio.timeout(self._timeout):
                await self._add_batch(batch, marker)
            self._spooled -= len(batch)
        await asyncio.to_thread(_jsonl.remove, self.spool_path)
        async with asyncio.timeout(self._timeout):
            await self._redis.delete(marker)
        return len(pending)

    async def _already_copied(self, marker: str, entries: list[tuple[str, str]]) -> int:
        """How many spooled records an interrupted copy added (the marker names the last)."""
        async with asyncio.timeout(self._timeout):
            done = await self._redis.get(marker)
        ids = [record_id for record_id, _ in entries]
        return ids.index(_text(done)) + 1 if done is not None and _text(done) in ids else 0

    async def _add_batch(self, batch: list[tuple[str, str]], marker: str) -> None:
        """The batch and the marker in one MULTI/EXEC: both land, or neither does."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for _, line in batch:
                pipe.xadd(self.stream, {STREAM_FIELD: line}, maxlen=self._maxlen, approximate=True)
            pipe.set(marker, batch[-1][0], ex=_MARKER_TTL_S)
            await pipe.execute()


def _spooled_entries(lines: list[str]) -> list[tuple[str, str]]:
    """(record id, line) for every spooled line. A line that is not a record (only disk
    corruption makes one) is logged and dropped rather than blocking the spool forever."""
    entries: list[tuple[str, str]] = []
    for line in lines:
        try:
            record_id = json.loads(line)["id"]
        except (ValueError, TypeError, KeyError):
            log.error("dropping a corrupt line from the audit spool", line=redact(line[:200]))
            continue
        entries.append((str(record_id), line))
    return entries


def _text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
