"""The audit record: one evaluation of one target, as on-call reads it (README: the audit record).

A record is the core's :class:`~scalerd.core.model.Decision` serialized *as it is*
(``Decision.as_dict()``), plus what only the shell knows: which replica ran it, under which
config, what it did about it, how long it took, and the id of the previous record of the
same target, so a missing record shows up as a broken chain.

Secrets are kept out by construction rather than by scanning every finished record: the
strings that come from the config (names, rule expressions) are checked once, when the
config is loaded (:func:`secret_looking`), and the text that arrives at run time (a source's
or an actuator's error, an operation id, a note) is redacted where it enters the record.
The record is written with orjson: the same bytes as ``json.dumps`` with compact
separators for what records hold (strings, integers, floats in shortest form, lists and
objects in field order), ten times faster.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import attrgetter
from typing import Any, Literal, get_args

import orjson

from ..core.model import Capacity, Decision, InputReport, Reason
from ..redact import redact

__all__ = [
    "ACTIONS",
    "Action",
    "AuditRecord",
    "describe_shadow",
    "format_ts",
    "new_record_id",
    "parse_ts",
    "secret_looking",
]

Action = Literal["scaled", "held", "dry-run", "failed", "skipped"]


class _FromDecision(Enum):
    """``not_scaled_reason`` unless the caller says otherwise: the decision's own."""

    REASON = 0


ACTIONS: tuple[Action, ...] = get_args(Action)

# a JSON object as ``json.loads`` returns it; treat as read-only
JsonObject = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def format_ts(at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-11-22T10:00:00.123Z``.

    The records of one pass share their time (to the millisecond, often to the microsecond):
    the last one written is remembered."""
    global _last_ts
    last, text = _last_ts
    if at == last:  # (aware datetimes are equal when they are the same instant)
        return text
    utc = at.astimezone(UTC)
    if utc.year >= 1000:  # (isoformat pads a year to 4 digits, %Y does not)
        # "…T10:00:00.123+00:00" (cut, not rounded, to milliseconds) less its offset
        text = f"{utc.isoformat(timespec='milliseconds')[:-6]}Z"
    else:
        text = f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
    _last_ts = (at, text)
    return text


_last_ts: tuple[datetime, str] = (_EPOCH, "1970-01-01T00:00:00.000Z")


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`format_ts` (accepts any RFC 3339 offset, returns UTC)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return at.astimezone(UTC)


def new_record_id(at: datetime) -> str:
    """A unique id that sorts by time as plain text, like a ULID, with no new dependency:
    milliseconds since the epoch in 12 hex digits, a dash, 64 random bits.

    The bits need to be unique, not secret: they come from a generator of this process
    seeded from ``os.urandom`` (and seeded again in a forked child, which would otherwise
    repeat its parent's ids), not from one system call per record."""
    millis = (at - _EPOCH) // _MILLISECOND
    return f"{millis:012x}-{_random_bits(64):016x}"


# a generator of its own: what another library does to ``random``'s seed cannot touch it
_ids = random.Random()


def _seed_ids() -> None:
    _ids.seed(os.urandom(32))


_seed_ids()
os.register_at_fork(after_in_child=_seed_ids)
_random_bits = _ids.getrandbits


def _to_millis(at: datetime) -> datetime:
    """``at`` in UTC, truncated to what :func:`format_ts` keeps, so a record round-trips."""
    if at.tzinfo is UTC and not at.microsecond % 1000:
        return at  # already (a manual clock's time, a record's own)
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be aware datetimes")
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _as_json_gives_back(value: Any) -> Any:
    """``value`` reduced to what JSON gives back (tuples become lists, anything else its
    text), so a record equals itself after a round trip and never fails to serialize."""
    return orjson.loads(orjson.dumps(value, default=str))


def secret_looking(strings: Iterable[tuple[str, str]]) -> list[str]:
    """The keys of the ``(key, text)`` pairs whose text redaction would change: a config
    string that looks like a secret, which every audit record would otherwise carry."""
    return [key for key, text in strings if redact(text) != text]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One audit record. Field order is the JSON key order."""

    ts: datetime
    id: str
    prev: str | None
    target: str
    kind: str
    instance: str
    # the fencing token of the shard lease it acted under (None outside a cluster)
    fence: int | None = None
    config_version: str
    action: Action
    dry_run: bool
    duration_ms: float
    # {"provisioned", "ready", "operation"}; None when the evaluation stopped before a decision
    current: JsonObject | None
    recommended: int | None
    desired: int | None
    not_scaled_reason: str | None
    error: str | None = None
    # the id of the operation the actuator started (or found in flight)
    operation: str | None = None
    tier: str | None = None
    restarts: bool = False
    cooldown_s: float = 0.0
    notes: tuple[str, ...] = ()
    inputs: tuple[JsonObject, ...] = ()
    rules: tuple[JsonObject, ...] = ()
    steps: tuple[JsonObject, ...] = ()
    # what started the evaluation: {"type": "poll" | "manual"}, or an event's kind, id and source
    trigger: JsonObject | None = None
    # the shadow rule's decision on the same readings (``shadow = "..."``), never acted on
    shadow: JsonObject | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}; expected one of {ACTIONS}")
        if self.ts.tzinfo is None:
            raise ValueError("audit timestamps must be aware datetimes")

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        action: Action,
        kind: str,
        config_version: str,
        instance: str,
        prev: str | None,
        duration_ms: float,
        dry_run: bool,
        error: str | None = None,
        operation: str | None = None,
        notes: Iterable[str] = (),
        fence: int | None = None,
        record_id: str | None = None,
        ts: datetime | None = None,
        trigger: JsonObject | None = None,
        shadow: JsonObject | None = None,
        not_scaled_reason: str | _FromDecision | None = _FromDecision.REASON,
    ) -> AuditRecord:
        """The record of ``decision``. ``ts`` defaults to the decision's time, so a replay
        writes the same timestamps as the run it replays."""
        if action not in ACTIONS:  # (what __post_init__ checks: the record is built without)
            raise ValueError(f"unknown audit action {action!r}; expected one of {ACTIONS}")
        current, inputs, rules, steps = _decision_parts(decision)
        at = _to_millis(ts or decision.at)  # (aware, or it raises)
        return (_new_record if cls is AuditRecord else cls)(
            ts=at,
            id=record_id or new_record_id(at),
            prev=prev,
            target=decision.target,
            kind=kind,
            instance=instance,
            fence=fence,
            config_version=config_version,
            action=action,
            dry_run=dry_run,
            duration_ms=duration_ms,
            current=current,
            recommended=decision.recommended,
            desired=decision.desired,
            not_scaled_reason=(
                _reason(decision)
                if not_scaled_reason is _FromDecision.REASON
                else not_scaled_reason
            ),
            error=redact(error) if error is not None else None,
            operation=redact(operation) if operation is not None else None,
            tier=decision.tier,
            restarts=decision.restarts,
            cooldown_s=decision.cooldown.total_seconds(),
            notes=tuple(map(redact, notes)) if notes else (),
            inputs=inputs,
            rules=rules,
            steps=steps,
            trigger=trigger,
            shadow=shadow,
        )

    def with_shadow(self, decision: Decision, rules: str) -> AuditRecord:
        """This record with the shadow rule's decision of the same evaluation beside it."""
        return replace(self, shadow=describe_shadow(decision, rules))

    @classmethod
    def without_decision(
        cls,
        target: str,
        at: datetime,
        *,
        action: Literal["failed", "skipped"],
        kind: str,
        config_version: str,
        instance: str,
        prev: str | None,
        duration_ms: float,
        dry_run: bool,
        error: str,
        operation: str | None = None,
        fence: int | None = None,
        record_id: str | None = None,
        trigger: JsonObject | None = None,
    ) -> AuditRecord:
        """The record of an evaluation that stopped before ``decide`` (the actuator could
        not report its capacity, the tick timed out): every evaluation leaves a record."""
        at = _to_millis(at)
        return cls(
            ts=at,
            id=record_id or new_record_id(at),
            prev=prev,
            target=target,
            kind=kind,
            instance=instance,
            fence=fence,
            config_version=config_version,
            action=action,
            dry_run=dry_run,
            duration_ms=duration_ms,
            current=None,
            recommended=None,
            desired=None,
            not_scaled_reason=None,
            error=redact(error),
            operation=redact(operation) if operation is not None else None,
            trigger=trigger,
        )

    def as_dict(self) -> JsonObject:
        out = dict(zip(_FIELD_ORDER, _all_fields(self), strict=True))
        out["ts"] = format_ts(self.ts)
        return out

    def to_json(self) -> str:
        """One compact JSON line (no newline), keys in field order."""
        return orjson.dumps(self.as_dict()).decode()

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8, as a file or a stream takes it."""
        return orjson.dumps(self.as_dict())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from its JSON object. Unknown keys (a newer writer) are ignored."""
        values = {key: value for key, value in data.items() if key in _FIELD_NAMES}
        try:
            values["ts"] = parse_ts(values["ts"])
            for name in ("notes", "inputs", "rules", "steps"):
                values[name] = tuple(values.get(name, ()))
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an audit record: {exc}") from None

    @classmethod
    def from_json(cls, line: str | bytes) -> AuditRecord:
        data = orjson.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not an audit record: expected a JSON object")
        return cls.from_mapping(data)


# the keys a record is read from: computed once, as reading 10,000 records must be quick
_FIELD_ORDER = tuple(field.name for field in fields(AuditRecord))
_FIELD_NAMES = frozenset(_FIELD_ORDER)
# every field's value in one C call (a getattr per field costs more than the JSON encoding)
_all_fields = attrgetter(*_FIELD_ORDER)


def _unchecked_constructor(cls: type[AuditRecord]) -> Callable[..., AuditRecord]:
    """``cls(**values)`` without ``__post_init__`` and without the frozen dataclass's
    ``object.__setattr__`` call per field (half the cost of a record built every
    evaluation): each value goes straight into its slot. Its caller checks what
    ``__post_init__`` would."""
    names = [each.name for each in fields(cls)]
    defaults = {
        f"_d_{each.name}": each.default for each in fields(cls) if each.default is not MISSING
    }
    if any(each.default_factory is not MISSING for each in fields(cls)):
        raise TypeError("a default factory is not supported here")
    parameters = ", ".join(
        f"{name}=_d_{name}" if f"_d_{name}" in defaults else name for name in names
    )
    body = "".join(f"    _s_{name}(record, {name})\n" for name in names)
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": cls,
        **defaults,
        **{f"_s_{name}": getattr(cls, name).__set__ for name in names},
    }
    exec(
        f"def new(*, {parameters}):\n    record = _new(_cls)\n{body}    return record\n", namespace
    )
    return namespace["new"]  # type: ignore[no-any-return]


_new_record = _unchecked_constructor(AuditRecord)


def _decision_parts(
    decision: Decision,
) -> tuple[JsonObject, tuple[JsonObject, ...], tuple[JsonObject, ...], tuple[JsonObject, ...]]:
    """The decision's current capacity, inputs, rules and steps as JSON gives them back,
    exactly as ``Decision.as_dict()`` describes them.

    The reports and steps describe themselves (``as_dict``), the capacity by its fields
    (its ``as_dict`` keys, in order). Their fields are typed (mypy --strict holds the
    core to it): JSON gives strings, integers, booleans and None back as they are (a
    subclass, a StrEnum, as the equal plain value), and a float unless it is not finite. So the descriptions are kept as they are
    when the inputs' floats are finite and every step's data (typed ``Any``) holds only
    such values; otherwise the whole decision goes through an orjson round trip, as JSON
    would give it back (a NaN as null, a tuple as a list, anything else as its text)."""
    capacity = decision.current
    current = dict(zip(_CAPACITY_FIELDS, _capacity_fields(capacity), strict=True))
    inputs = tuple([report.as_dict() for report in decision.inputs])
    rules = tuple([report.as_dict() for report in decision.rules])
    steps = tuple([step.as_dict() for step in decision.steps])
    if all(map(_finite, decision.inputs)) and all(map(_plain_step, decision.steps)):
        return current, inputs, rules, steps
    current, inputs, rules, steps = orjson.loads(
        orjson.dumps((current, inputs, rules, steps), default=str)
    )
    return current, tuple(inputs), tuple(rules), tuple(steps)


_CAPACITY_FIELDS = tuple(each.name for each in fields(Capacity))
_capacity_fields = attrgetter(*_CAPACITY_FIELDS)
# what JSON gives back as it is (a bool is an int, but ``type`` tells them apart)
_SCALARS = frozenset({str, int, bool, type(None)})


def _finite(report: InputReport) -> bool:
    """Whether the report's floats are finite (``x - x`` is NaN for a NaN or an infinity,
    0 for any other number)."""
    value, age = report.value, report.age_s
    return (
        (value is None or not value - value)
        and not report.window_s - report.window_s
        and (age is None or not age - age)
    )


def _plain_step(step: Reason) -> bool:
    """Whether JSON gives the step's data back as it is: string keys, and values that are
    strings, integers, booleans, None or finite floats."""
    for key, value in step.data.items():
        kind = type(value)
        if type(key) is not str or (value - value if kind is float else kind not in _SCALARS):
            return False
    return True


def describe_shadow(decision: Decision, rules: str) -> JsonObject:
    """A record's ``shadow``: the shadow rule's decision (``rules``: its name)."""
    return {
        "rules": rules,
        "recommended": decision.recommended,
        "desired": decision.desired,
        "not_scaled_reason": _reason(decision),
        "steps": _as_json_gives_back([step.as_dict() for step in decision.steps]),
    }


def _reason(decision: Decision) -> str | None:
    return str(decision.not_scaled_reason) if decision.not_scaled_reason else None
