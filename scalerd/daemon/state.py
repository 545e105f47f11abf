"""Durable target memory: what lets a restarted scalerd keep its windows and cooldowns.

What the daemon keeps per target is a :class:`StoredTarget`: the core's ``TargetState``,
the change it sent to the actuator and has not yet seen land (:class:`Pending`, written
*before* the call, so a crash in between neither repeats nor loses the change), the
long-running operation Azure accepted and scalerd has not yet seen end (:class:`InFlight`,
so whichever process runs next follows it to its end), and the id of the target's last
audit record (so the ``prev`` chain continues across a restart).

The tick saves it after every decision; the daemon loads them all once at start. Two
stores:

* :class:`FileStateStore` — the embedded default: one JSON document holding every
  target, replaced atomically on each save, so a ``kill -9`` at any moment leaves the old
  document or the new one, never a torn one;
* :class:`RedisStateStore` — when replicas share a Redis: one key per target, so a replica
  taking over a target finds its history. In a cluster every save is *fenced*: one Lua
  script writes only if the shard's lease in Redis is still the writer's (its fencing
  token), so a replica that lost its lease can neither save nor — since the change is
  written ahead — act.

Both store JSON (the state as :mod:`scalerd.daemon.state_codec` writes it) with a format
number, and refuse a format they do not know.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..cluster import FENCED_SET
from ..core.model import Decision, TargetState
from ..errors import LeaseLost, ScalerdError
from ..files import replace_atomically
from ..plugins import CURRENT_FENCE
from .state_codec import FORMAT, decode_state, decode_time, encode_state, encode_time

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "FileStateStore",
    "InFlight",
    "Pending",
    "RedisStateStore",
    "StateError",
    "StateStore",
    "StoredTarget",
    "decode_document",
    "decode_stored",
    "encode_stored",
    "read_file_documents",
]

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pending:
    """A change sent to the actuator and not yet known to have landed.

    Enough to record it as of its time (``core.record_scale``) if, after a restart, the
    actuator shows it did land, and to write the audit record the evaluation would have
    written (``record``: the planned record as a JSON object, its id and ``prev`` set), so
    the chain of records has no gap.
    """

    at: datetime
    before: int
    after: int
    cooldown_s: float
    record: JsonObject | None = None

    @classmethod
    def of(cls, decision: Decision, at: datetime, record: JsonObject | None = None) -> Pending:
        return cls(
            at,
            decision.current.provisioned,
            decision.desired,
            decision.cooldown.total_seconds(),
            record,
        )


@dataclass(frozen=True, slots=True)
class InFlight:
    """A change the actuator started as a long-running operation, not yet seen to end.

    It is not in the core's history yet: it counts toward cooldowns and rate limits only
    once it has succeeded (then as of ``started_at``). ``resume`` is the SDK's continuation
    token (JSON naming the polling URL), from which any process can follow it again.
    """

    operation: str
    resume: str
    started_at: datetime
    before: int
    after: int
    cooldown_s: float
    # the tier it moves to (ladders), and what the change does, for the audit
    tier: str | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, decision: Decision, operation: str, resume: str, notes: tuple[str, ...]
    ) -> InFlight:
        return cls(
            operation,
            resume,
            decision.at,
            decision.current.provisioned,
            decision.desired,
            decision.cooldown.total_seconds(),
            decision.tier,
            notes,
        )


@dataclass(frozen=True, slots=True)
class StoredTarget:
    """Everything the daemon keeps about one target between evaluations."""

    state: TargetState = field(default_factory=TargetState)
    pending: Pending | None = None
    # the id of the target's last audit record: the next record's ``prev``
    last_record_id: str | None = None
    operation: InFlight | None = None


def encode_stored(stored: StoredTarget) -> JsonObject:
    """``stored`` as a JSON object (the state as :func:`encode_state` writes it)."""
    return {
        "state": encode_state(stored.state),
        "pending": None if stored.pending is None else _encode_pending(stored.pending),
        "last_record_id": stored.last_record_id,
        "operation": None if stored.operation is None else _encode_in_flight(stored.operation),
    }


def decode_stored(data: Mapping[str, Any], *, row: bool = False) -> StoredTarget:
    """The inverse of :func:`encode_stored` (its state as a SQLite row holds it if
    ``row``). Raises ``ValueError`` if ``data`` is not one."""
    try:
        pending = data["pending"]
        operation = data.get("operation")  # absent in documents of earlier versions
        return StoredTarget(
            state=decode_state(data["state"], row=row),
            pending=None if pending is None else _decode_pending(pending),
            last_record_id=data["last_record_id"],
            operation=None if operation is None else _decode_in_flight(operation),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a stored target: {type(exc).__name__}: {exc}") from None


def _encode_pending(pending: Pending) -> JsonObject:
    return {
        "at": encode_time(pending.at),
        "before": pending.before,
        "after": pending.after,
        "cooldown_s": pending.cooldown_s,
        "record": pending.record,
    }


def _decode_pending(data: Mapping[str, Any]) -> Pending:
    record = data.get("record")  # absent in what an older scalerd wrote
    return Pending(
        decode_time(data["at"]),
        int(data["before"]),
        int(data["after"]),
        float(data["cooldown_s"]),
        dict(record) if record is not None else None,
    )


def _encode_in_flight(in_flight: InFlight) -> JsonObject:
    return {
        "operation": in_flight.operation,
        "resume": in_flight.resume,
        "started_at": encode_time(in_flight.started_at),
        "before": in_flight.before,
        "after": in_flight.after,
        "cooldown_s": in_flight.cooldown_s,
        "tier": in_flight.tier,
        "notes": list(in_flight.notes),
    }


def _decode_in_flight(data: Mapping[str, Any]) -> InFlight:
    if not isinstance(data["operation"], str) or not isinstance(data["resume"], str):
        raise TypeError("an operation's id and resume token are strings")
    return InFlight(
        operation=data["operation"],
        resume=data["resume"],
        started_at=decode_time(data["started_at"]),
        before=int(data["before"]),
        after=int(data["after"]),
        cooldown_s=float(data["cooldown_s"]),
        tier=data["tier"],
        notes=tuple(str(note) for note in data["notes"]),
    )


class StateError(ScalerdError):
    """Stored state cannot be read (a format from a newer scalerd, a damaged document)."""


class StateStore(Protocol):
    async def load_all(self) -> dict[str, StoredTarget]:
        """Everything stored, by target name."""

    async def save(self, target: str, stored: StoredTarget) -> None:
        """Store ``stored`` durably before returning."""

    def forget(self, target: str) -> None:
        """Drop what is kept in memory for ``target`` (removed by a reload): its stored
        state stays where it is."""

    async def aclose(self) -> None: ...


class FileStateStore:
    """Every target in one JSON document at ``path``.

    A save writes the whole document to ``.{name}.tmp`` next to it, fsyncs it, renames it
    over ``path`` and fsyncs the directory. A temporary file left by a crash is never read
    and is overwritten by the next save. Saves are serialized and run in a worker thread.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()
        # every target encoded, as on disk; None until first read
        self._documents: dict[str, JsonObject] | None = None

    async def load_all(self) -> dict[str, StoredTarget]:
        async with self._lock:
            documents = await self._loaded()
        return {
            target: decode_document(document, f"{self.path}: {target}")
            for target, document in documents.items()
        }

    async def save(self, target: str, stored: StoredTarget) -> None:
        document = encode_stored(stored)
        async with self._lock:
            documents = await self._loaded()
            documents[target] = document
            content = json.dumps(
                {"format": FORMAT, "targets": documents}, separators=(",", ":")
            ).encode()
            await asyncio.to_thread(replace_atomically, self.path, content)

    def forget(self, target: str) -> None:
        """Nothing kept per target but its document, which the file keeps."""

    async def aclose(self) -> None:
        async with self._lock:  # let a save in progress finish
            pass

    async def _loaded(self) -> dict[str, JsonObject]:
        """The documents on disk, read once: a save before ``load_all`` must not drop the
        other targets from the file."""
        if self._documents is None:
            self._documents = await asyncio.to_thread(read_file_documents, self.path)
        return self._documents


def read_file_documents(path: Path) -> dict[str, JsonObject]:
    """The encoded targets of a :class:`FileStateStore` document ({} if there is none)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise StateError(f"{path}: not a state document: {exc}") from None
    targets = _unwrap(data, str(path), "targets")
    if not isinstance(targets, dict):
        raise StateError(f"{path}: 'targets' is not an object")
    return targets


class RedisStateStore:
    """Each target under ``{key_prefix}state:{target}``; ``load_all`` SCANs them.

    With ``fenced``, a save is made only under the fence of the evaluation under way
    (``CURRENT_FENCE``) and only while that fence's lease is the current one in Redis;
    otherwise it raises :class:`~scalerd.errors.LeaseLost` and writes nothing. Saves of
    several targets (``save_many``) go in one round trip: one script under a fence, a
    pipeline without. The Redis client is injected and closed by whoever made it.
    """

    def __init__(
        self, redis: redis.asyncio.Redis, key_prefix: str = "scalerd:", *, fenced: bool = False
    ) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}state:"
        self._fenced = fenced
        self._fenced_set = redis.register_script(FENCED_SET)

    def key(self, target: str) -> str:
        return f"{self._prefix}{target}"

    async def load_all(self) -> dict[str, StoredTarget]:
        pattern = f"{_glob_escape(self._prefix)}*"
        keys = sorted({_text(key) async for key in self._redis.scan_iter(match=pattern)})
        values = await self._redis.mget(keys) if keys else []
        return {
            key.removeprefix(self._prefix): _decode_wrapped(value, key)
            for key, value in zip(keys, values, strict=True)
            if value is not None  # deleted between SCAN and MGET
        }

    async def load(self, targets: list[str]) -> dict[str, StoredTarget]:
        """The stored targets among ``targets`` (one MGET): what a new owner restores."""
        keys = [self.key(target) for target in targets]
        values = await self._redis.mget(keys) if keys else []
        return {
            target: _decode_wrapped(value, key)
            for target, key, value in zip(targets, keys, values, strict=True)
            if value is not None
        }

    async def save(self, target: str, stored: StoredTarget) -> None:
        await self.save_many({target: stored})

    async def save_many(self, targets: Mapping[str, StoredTarget]) -> None:
        keys = [self.key(target) for target in targets]
        values = [
            json.dumps({"format": FORMAT, "target": encode_stored(stored)}, separators=(",", ":"))
            for stored in targets.values()
        ]
        fence = CURRENT_FENCE.get()
        if fence is not None:
            written = await self._fenced_set(
                keys=[fence.lease_key, *keys], args=[fence.lease_value, *values]
            )
            if written != 1:
                raise LeaseLost(
                    f"not saved: the lease of {', '.join(targets)} is no longer held under "
                    f"fencing token {fence.token}"
                )
        elif self._fenced:
            raise LeaseLost(f"not saved: no lease held for {', '.join(targets)}")
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in zip(keys, values, strict=True):
                    pipe.set(key, value)
                await pipe.execute()

    def forget(self, target: str) -> None:
        """Nothing kept in memory per target."""

    async def aclose(self) -> None:
        """Nothing to release: the client is not ours."""


def _decode_wrapped(value: bytes | str, where: str) -> StoredTarget:
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise StateError(f"{where}: not a state document: {exc}") from None
    return decode_document(_unwrap(data, where, "target"), where)


def _unwrap(data: Any, where: str, key: str) -> Any:
    """``data[key]`` after checking the format number."""
    if not isinstance(data, dict) or key not in data:
        raise StateError(f"{where}: not a state document")
    if data.get("format") != FORMAT:
        raise StateError(
            f"{where}: state format {data.get('format')!r}, this scalerd reads format {FORMAT}"
        )
    return data[key]


def decode_document(document: Any, where: str, *, row: bool = False) -> StoredTarget:
    """``document`` (an encoded target; a SQLite row's if ``row``) decoded; a
    ``StateError`` naming ``where`` if not one."""
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a stored target")
    try:
        return decode_stored(document, row=row)
    except ValueError as exc:
        raise StateError(f"{where}: {exc}") from None


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
