"""The embedded default state store: one SQLite database, one row per target.

Why SQLite: the file store rewrites and fsyncs one document holding every target on every
save, so a pass over N targets costs N², and 10,000 targets take minutes. Here a save
writes one row, and the saves that arrive while a commit is under way are committed
together in the next transaction (group commit): a pass over 10,000 targets that all
decide at once costs a handful of transactions, each with one fsync.

Durability is not traded for it. ``save`` returns only once the transaction holding its
row has committed, so the ``Pending`` record of a change is on disk before the tick calls
the actuator. The database runs in WAL mode with ``synchronous=FULL``: the WAL is fsynced
at every commit, so a committed save survives a power cut as well as a ``kill -9`` (with
``NORMAL`` a power cut may roll back the last commits, which for a write-ahead record
means a repeated change). Group commit makes FULL cheap: one fsync per batch, not per
target (``bench/scale.py --synchronous`` measures both).

sqlite3 blocks, so every statement runs on one dedicated thread that owns the
connection; the event loop only encodes rows and waits.

**Migration.** On first start (no ``meta`` row saying otherwise) the store imports a
document written by :class:`~scalerd.daemon.state.FileStateStore` at ``legacy_path``, in
the same transaction that marks the import done, and leaves that file where it was as a
backup: it is never read again.

A database written by an earlier scalerd (``format`` 1: its rows' runs as objects with their
times as text) is converted on opening, in one transaction, row by row.

Layout: ``targets(name TEXT PRIMARY KEY, document BLOB)`` where ``document`` is the JSON of
:func:`~scalerd.daemon.state.encode_stored` with its state as
:func:`~scalerd.daemon.state_codec.encode_row_state` writes it; ``meta(key, value)`` holds
``format`` (:data:`~scalerd.daemon.state_codec.ROW_FORMAT`) and ``imported_from``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog

from ..batching import GroupCommit
from ..core import TargetState
from .state import (
    StateError,
    StoredTarget,
    decode_document,
    encode_stored,
    read_file_documents,
)
from .state_codec import FORMAT, ROW_FORMAT, EncodedRuns

__all__ = ["SqliteStateStore", "encode_row"]

log = structlog.get_logger("scalerd")

Synchronous = Literal["NORMAL", "FULL"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS targets (name TEXT PRIMARY KEY, document BLOB NOT NULL)",
)
_UPSERT = (
    "INSERT INTO targets (name, document) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET document = excluded.document"
)


class SqliteStateStore:
    """Every target as a row of the SQLite database at ``path`` (created if missing)."""

    def __init__(
        self,
        path: Path | str,
        *,
        legacy_path: Path | str | None = None,
        synchronous: Synchronous = "FULL",
    ) -> None:
        self.path = Path(path)
        # (a database configured at the old file's path has nothing to import)
        self.legacy_path = (
            Path(legacy_path)
            if legacy_path is not None and Path(legacy_path) != self.path
            else None
        )
        self._synchronous = synchronous
        # one thread owns the connection: sqlite3 calls never run on the event loop
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="scalerd-state")
        self._connection: sqlite3.Connection | None = None
        self._saves = GroupCommit(self._upsert, self._thread)
        # per target: the JSON of its sample windows as last saved (see EncodedRuns)
        self._runs: dict[str, EncodedRuns] = {}
        self._closed = False

    @property
    def commits(self) -> int:
        """Transactions that saved rows: what group commit keeps small."""
        return self._saves.commits

    async def load_all(self) -> dict[str, StoredTarget]:
        rows = await self._call(self._select_all)
        return {name: _decode(document, f"{self.path}: {name}") for name, document in rows}

    async def save(self, target: str, stored: StoredTarget) -> None:
        await self.save_many(((target, stored),))

    async def save_many(self, saves: Sequence[tuple[str, StoredTarget]]) -> None:
        """Store each ``(target, stored)`` durably before returning: one commit with what
        else is waiting (a pass's held targets hand theirs over together)."""
        if self._closed:
            raise StateError(f"{self.path}: the state store is closed")
        rows = []
        for target, stored in saves:
            runs = self._runs.get(target)
            if runs is None:
                runs = self._runs[target] = EncodedRuns()
            rows.append((target, encode_row(stored, runs)))
        await self._saves.submit_many(rows)

    def forget(self, target: str) -> None:
        """Drop the JSON remembered for ``target`` (a reload removed it): a target that
        comes back starts from a fresh one."""
        self._runs.pop(target, None)

    async def pragmas(self) -> dict[str, str]:
        """The journal mode and sync level the database runs with (for tests and bench)."""
        return dict(await self._call(self._pragmas))

    async def aclose(self) -> None:
        self._closed = True
        await self._saves.drain()
        await self._call(self._close_connection)
        self._thread.shutdown(wait=True)

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    # --- the database thread ---------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit off by hand (isolation_level=None): transactions are explicit
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                self._check_format(connection)
                self._import_legacy(connection)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path}: not a state database: {exc}") from None
        return connection

    def _check_format(self, connection: sqlite3.Connection) -> None:
        row = connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None:
            connection.execute("INSERT INTO meta VALUES ('format', ?)", (str(ROW_FORMAT),))
        elif row[0] == str(FORMAT):
            self._convert_rows(connection)
        elif row[0] != str(ROW_FORMAT):
            raise StateError(
                f"{self.path}: state format {row[0]}, this scalerd reads formats"
                f" {FORMAT} and {ROW_FORMAT}"
            )

    def _convert_rows(self, connection: sqlite3.Connection) -> None:
        """The rows of a format 1 database in this format, in the opening transaction (a
        row that does not decode stops the start with its name, and nothing changes)."""
        rows = connection.execute("SELECT name, document FROM targets").fetchall()
        converted = [
            (name, encode_row(_decode(document, f"{self.path}: {name}", row=False)))
            for name, document in rows
        ]
        connection.executemany(_UPSERT, converted)
        connection.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(ROW_FORMAT),))
        log.info(
            "converted the state database to its current format",
            database=str(self.path),
            targets=len(converted),
            format=ROW_FORMAT,
        )

    def _import_legacy(self, connection: sqlite3.Connection) -> None:
        """A file store's document, once, in the transaction that creates the database."""
        done = connection.execute("SELECT 1 FROM meta WHERE key = 'imported_from'").fetchone()
        if done is not None or self.legacy_path is None:
            return
        documents = read_file_documents(self.legacy_path)
        rows = [  # (a damaged document is refused, and nothing is imported)
            (name, encode_row(decode_document(document, f"{self.legacy_path}: {name}")))
            for name, document in documents.items()
        ]
        connection.executemany(_UPSERT, rows)
        connection.execute(
            "INSERT INTO meta VALUES ('imported_from', ?)",
            (str(self.legacy_path) if documents else "",),
        )
        if documents:
            log.info(
                "imported the state file into the state database; the file stays as a backup",
                file=str(self.legacy_path),
                database=str(self.path),
                targets=len(documents),
            )

    def _pragmas(self) -> list[tuple[str, str]]:
        connection = self._db()
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        (level,) = connection.execute("PRAGMA synchronous").fetchone()
        return [("journal_mode", mode), ("synchronous", {1: "NORMAL", 2: "FULL"}.get(level, level))]

    def _select_all(self) -> list[tuple[str, bytes]]:
        return self._db().execute("SELECT name, document FROM targets ORDER BY name").fetchall()

    def _upsert(self, rows: list[tuple[str, bytes]]) -> None:
        connection = self._db()
        try:
            with _transaction(connection):
                # a target saved twice in one batch: its latest row
                connection.executemany(_UPSERT, list(dict(rows).items()))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: saving state failed: {exc}") from None

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def encode_row(stored: StoredTarget, runs: EncodedRuns | None = None) -> bytes:
    """:func:`~scalerd.daemon.state.encode_stored` as JSON, its state as a row holds it
    (:func:`~scalerd.daemon.state_codec.encode_row_state`), written through
    ``runs`` (the target's :class:`~scalerd.daemon.state_codec.EncodedRuns`: what it
    wrote last time is not encoded again; a fresh one without)."""
    if stored.pending is None and stored.operation is None:  # (as good as always)
        tail = b"".join(
            (
                b',"pending":null,"last_record_id":',
                orjson.dumps(stored.last_record_id),
                b',"operation":null}',
            )
        )
    else:
        rest = encode_stored(replace(stored, state=_NO_STATE))  # as the codec has them
        del rest["state"]
        tail = b"," + orjson.dumps(rest, default=_plain)[1:]
    return (runs or EncodedRuns()).json(stored.state, b'{"state":', tail)


_NO_STATE = TargetState()


def _plain(value: object) -> object:
    """What orjson does not write itself: a mapping other than a dict (the core types its
    sample histories as ``Mapping``)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__}")


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Any:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _decode(document: bytes, where: str, *, row: bool = True) -> StoredTarget:
    try:
        data = orjson.loads(document)
    except ValueError as exc:
        raise StateError(f"{where}: not a stored target: {exc}") from None
    return decode_document(data, where, row=row)
