"""``TargetState`` ↔ JSON, exactly: what the state stores write and read back.

The core remembers samples, recommendations, scale events, cooldowns and operator
controls between ticks; a restart that lost them would reopen every stabilization window
and forget every cooldown. This module turns that value into plain JSON and back with no
loss: datetimes as RFC 3339 with microseconds and their UTC offset, floats as Python
writes them (which round-trips exactly).

A SQLite row holds the state in its own form (:data:`ROW_FORMAT`, :func:`encode_row_state`):
the runs that move on at every save (each metric's samples, the recommendations, the
scale events), which are most of a row, as arrays with their times in integer
microseconds since the epoch (``[1767603660000000,50.0]``, half the bytes of
``{"at":"2026-01-05T09:01:00+00:00","value":50.0}`` and as exact); the rest as
:func:`encode_state` writes it.

Kept out of :mod:`scalerd.core` (which does no I/O and knows no formats) and free of I/O
itself, so the stores stay small and the mapping is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from operator import is_
from typing import Any

import orjson

from ..core.model import (
    BreakerState,
    Controls,
    DemandHistory,
    Recommendation,
    Sample,
    ScaleEvent,
    TargetState,
)

__all__ = [
    "FORMAT",
    "ROW_FORMAT",
    "EncodedRuns",
    "decode_state",
    "decode_time",
    "encode_row_state",
    "encode_state",
    "encode_time",
]

# bumped when the encoding changes incompatibly; a store refuses a format it does not know
FORMAT = 1
# a SQLite row's: FORMAT with the runs as arrays (format 1 rows are converted on opening)
ROW_FORMAT = 2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

JsonObject = dict[str, Any]


def encode_state(state: TargetState, time: Callable[[datetime], Any] | None = None) -> JsonObject:
    """``state`` as a JSON object, one key per ``TargetState`` field.

    ``time`` writes each datetime (default :func:`encode_time`); a serializer that writes
    aware UTC datetimes as ``encode_time`` does (orjson) passes them through as they are."""
    time = time or encode_time
    return {
        "samples": {
            metric: [{"at": time(sample.at), "value": sample.value} for sample in samples]
            for metric, samples in state.samples.items()
        },
        "recommendations": [
            {"at": time(item.at), "replicas": item.replicas} for item in state.recommendations
        ],
        "events": [
            {"at": time(event.at), "before": event.before, "after": event.after}
            for event in state.events
        ],
        "scale_out_cooldown_until": _optional(time, state.scale_out_cooldown_until),
        "scale_in_cooldown_until": _optional(time, state.scale_in_cooldown_until),
        "scale_out_base": state.scale_out_base,
        "consecutive_failures": state.consecutive_failures,
        "last_active_at": _optional(time, state.last_active_at),
        "controls": _encode_controls(state.controls, time),
        "ready_history": [[time(at), ready] for at, ready in state.ready_history],
        "demand_history": {
            "first": state.demand_history.first,
            "peaks": list(state.demand_history.peaks),
        },
        "breakers": {
            name: {
                "open": breaker.open,
                "since": time(breaker.since),
                "healthy_since": _optional(time, breaker.healthy_since),
                "opened_at": breaker.opened_at,
            }
            for name, breaker in state.breakers.items()
        },
    }


def encode_row_state(
    state: TargetState, time: Callable[[datetime], Any] | None = None
) -> JsonObject:
    """``state`` as a SQLite row holds it: :func:`encode_state`, its runs as arrays with
    their times in microseconds since the epoch (``time`` writes the other datetimes)."""
    rest = encode_state(replace(state, samples={}, recommendations=(), events=()), time)
    return {
        "samples": {
            metric: [[_micros(sample.at), sample.value] for sample in samples]
            for metric, samples in state.samples.items()
        },
        "recommendations": [[_micros(item.at), item.replicas] for item in state.recommendations],
        "events": [[_micros(event.at), event.before, event.after] for event in state.events],
        **{key: value for key, value in rest.items() if key not in _RUNS},
    }


_RUNS = frozenset({"samples", "recommendations", "events"})


def _micros(at: datetime) -> int:
    """``at`` as integer microseconds since the epoch: exact, whatever its time zone."""
    if at.tzinfo is None:
        raise ValueError(f"state times must be aware datetimes, got {at!r}")
    return (at - _EPOCH) // _MICROSECOND


def _from_micros(micros: object) -> datetime:
    if type(micros) is not int:
        raise ValueError(f"a state time in microseconds is an integer, got {micros!r}")
    return _EPOCH + timedelta(microseconds=micros)


class EncodedRuns:
    """One target's state as a SQLite row holds it (:func:`encode_row_state`), remembering
    what it wrote last time.

    Between two saves a target's sample windows and recommendations move on by a point or
    two: the same objects, a few dropped at the front, a few added at the back. Each run
    (a metric's samples, the recommendations, the scale events) is remembered as where
    its JSON array is in the last text written, with the tuple it was written from; the
    next save writes only the points added and takes the rest of the array from that text
    (every element is an array of numbers, so the elements start at its ``[``, which
    nothing inside one holds). So is the rest of the state, written again only when one of its
    fields is another object (a state is immutable: the same objects write the same JSON).

    The result is the JSON :func:`encode_row_state` gives, as orjson writes it (an aware
    datetime as ``encode_time`` does, or with its own offset, which decodes to the same
    instant); building the codec's lists for every point again costs ten times more.
    What it holds is the last text written (a row, which the store hands to SQLite, so
    while the row waits for its commit it is not there twice).
    """

    __slots__ = ("_events", "_recommendations", "_rest", "_samples", "_text")

    def __init__(self) -> None:
        self._text = b""  # the last JSON written: the runs below are where they are in it
        # per metric: its JSON key, then its run; the recommendations; the scale events
        self._samples: dict[str, tuple[bytes, _Run]] = {}
        self._recommendations = _NO_RUN
        self._events = _NO_RUN
        # the other fields of the state, as a run: their values, where their JSON is
        self._rest: _Run = ((), 0, 0)

    def json(self, state: TargetState, head: bytes = b"", tail: bytes = b"") -> bytes:
        """``state`` as the JSON of :func:`encode_row_state`, between ``head`` and ``tail``
        (what a row holds around it)."""
        _check_aware(state)
        text = self._text
        last = memoryview(text)
        parts: list[bytes | memoryview] = [head, b'{"samples":{']
        at = len(head) + 12
        # (kept aside until the text is written: a state that cannot be leaves all as it was)
        samples: dict[str, tuple[bytes, _Run]] = {}
        for metric, points in state.samples.items():
            known = self._samples.get(metric)
            if known is None:
                key = orjson.dumps(metric) + b":" if type(metric) is str else _not_a_key(metric)
                before = None
            else:
                key, before = known
            if samples:
                parts.append(b",")
                at += 1
            parts.append(key)
            run = _write(parts, at + len(key), text, last, before, points, _sample)
            samples[metric] = (key, run)
            at = run[2]
        parts.append(b'},"recommendations":')
        recommendations = _write(
            parts,
            at + 20,
            text,
            last,
            self._recommendations,
            state.recommendations,
            _recommendation,
        )
        parts.append(b',"events":')
        events = _write(
            parts, recommendations[2] + 10, text, last, self._events, state.events, _event
        )
        parts.append(b",")
        at = events[2] + 1
        controls = state.controls
        rest = (
            state.scale_out_cooldown_until,
            state.scale_in_cooldown_until,
            state.scale_out_base,
            state.consecutive_failures,
            state.last_active_at,
            controls,
            state.ready_history,
            state.demand_history,
            state.breakers,
        )
        kept, start, end = self._rest
        if len(kept) == len(rest) and all(map(is_, rest, kept)):
            parts.append(last[start:end])
        else:
            written = orjson.dumps(
                {
                    "scale_out_cooldown_until": state.scale_out_cooldown_until,
                    "scale_in_cooldown_until": state.scale_in_cooldown_until,
                    "scale_out_base": state.scale_out_base,
                    "consecutive_failures": state.consecutive_failures,
                    "last_active_at": state.last_active_at,
                    "controls": {
                        "pause": controls.pause,
                        "pause_until": controls.pause_until,
                        "override": controls.override,
                        "override_until": controls.override_until,
                    },
                    "ready_history": state.ready_history,
                    "demand_history": {
                        "first": state.demand_history.first,
                        "peaks": state.demand_history.peaks,
                    },
                    "breakers": {
                        name: {
                            "open": breaker.open,
                            "since": breaker.since,
                            "healthy_since": breaker.healthy_since,
                            "opened_at": breaker.opened_at,
                        }
                        for name, breaker in state.breakers.items()
                    },
                }
            )
            start, end = 1, len(written)  # (its "{" is the state's; its "}" too)
            parts.append(memoryview(written)[1:])
        parts.append(tail)
        self._text = b"".join(parts)
        self._samples, self._recommendations, self._events = samples, recommendations, events
        self._rest = (rest, at, at + end - start)
        return self._text


# a run: the tuple last written, where its JSON array starts and ends in the last text
_Run = tuple[tuple[Any, ...], int, int]
_NO_RUN: _Run = ((), 0, 0)


def _not_a_key(metric: object) -> bytes:
    raise TypeError(f"a metric's name is a string, got {metric!r}")


def _write(
    parts: list[bytes | memoryview],
    at: int,
    text: bytes,
    last: memoryview,
    before: _Run | None,
    items: tuple[Any, ...],
    encode: Callable[[Any], bytes],
) -> _Run:
    """Add the JSON array of ``items`` to ``parts``, where it starts at ``at``, from the
    run written before in ``text`` (``before``) where it can be; the run as written."""
    if before is not None:
        old, start, end = before
        if old is items and end:
            parts.append(last[start:end])
            return items, at, at + end - start
        if old and items:
            first = items[0]
            # where the new tuple starts in the old one (usually 0, 1 or 2 points on)
            for dropped, item in enumerate(old):
                if item is first:
                    kept = len(old) - dropped
                    # the same objects (or equal ones: the same JSON) from there on
                    if kept <= len(items) and items[:kept] == old[dropped:]:
                        cut = start + 1  # (after the "[")
                        for _ in range(dropped):
                            cut = text.index(b"[", cut + 1, end)
                        if kept == len(items):  # none added
                            parts += (b"[", last[cut:end])
                            return items, at, at + 1 + end - cut
                        added = b",".join([encode(each) for each in items[kept:]])
                        parts += (b"[", last[cut : end - 1], b",", added, b"]")
                        return items, at, at + 2 + end - cut + len(added)
                    break
    if not items:
        parts.append(b"[]")
        return items, at, at + 2
    array = b"".join((b"[", b",".join([encode(each) for each in items]), b"]"))
    parts.append(array)
    return items, at, at + len(array)


def _sample(sample: Sample) -> bytes:
    """A sample's JSON array; its time's text is remembered from the last one written
    (the samples of a pass share their times)."""
    global _last_at
    at = sample.at
    last, prefix = _last_at
    if at is not last and at != last:
        prefix = b"[%d," % _micros(at)
        _last_at = (at, prefix)
    return prefix + orjson.dumps(sample.value) + b"]"


_last_at: tuple[datetime, bytes] = (_EPOCH, b"[0,")


def _recommendation(item: Recommendation) -> bytes:
    return b"[%d,%b]" % (_micros(item.at), orjson.dumps(item.replicas))


def _event(event: ScaleEvent) -> bytes:
    return b"[%d,%b]" % (_micros(event.at), orjson.dumps([event.before, event.after])[1:-1])


def _check_aware(state: TargetState) -> None:
    """What orjson would write and :func:`decode_time` refuse: a naive time. The times an
    operator sets (controls) and the cooldowns are checked here; the samples,
    recommendations and events need not be: ``core.decide`` compares each with its aware
    ``now`` (a naive one raises there), so none reaches a saved state."""
    controls = state.controls
    for at in (
        state.scale_out_cooldown_until,
        state.scale_in_cooldown_until,
        state.last_active_at,
        controls.pause_until,
        controls.override_until,
    ):
        if at is not None and at.tzinfo is None:
            raise ValueError(f"state times must be aware datetimes, got {at!r}")


def decode_state(data: Mapping[str, Any], *, row: bool = False) -> TargetState:
    """The inverse of :func:`encode_state` (of :func:`encode_row_state` if ``row``).
    Raises ``ValueError`` if ``data`` is not one."""
    sample, recommendation, event = _ROW_RUNS if row else _RUNS_AS_OBJECTS
    try:
        return TargetState(
            samples={
                metric: tuple(map(sample, items)) for metric, items in data["samples"].items()
            },
            recommendations=tuple(map(recommendation, data["recommendations"])),
            events=tuple(map(event, data["events"])),
            scale_out_cooldown_until=_optional_decode_time(data["scale_out_cooldown_until"]),
            scale_in_cooldown_until=_optional_decode_time(data["scale_in_cooldown_until"]),
            scale_out_base=data["scale_out_base"],
            consecutive_failures=int(data["consecutive_failures"]),
            last_active_at=_optional_decode_time(data["last_active_at"]),
            controls=_decode_controls(data["controls"]),
            # absent from documents written before it was kept
            ready_history=tuple(
                (decode_time(at), int(ready)) for at, ready in data.get("ready_history", ())
            ),
            demand_history=_decode_demand(data.get("demand_history")),
            # absent from documents written before circuit breakers
            breakers={
                name: _decode_breaker(item) for name, item in data.get("breakers", {}).items()
            },
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an encoded target state: {type(exc).__name__}: {exc}") from None


_RUNS_AS_OBJECTS = (
    lambda item: Sample(decode_time(item["at"]), float(item["value"])),
    lambda item: Recommendation(decode_time(item["at"]), int(item["replicas"])),
    lambda item: ScaleEvent(decode_time(item["at"]), int(item["before"]), int(item["after"])),
)
_ROW_RUNS = (
    lambda item: Sample(_from_micros(item[0]), float(_one_more(item, 2))),
    lambda item: Recommendation(_from_micros(item[0]), int(_one_more(item, 2))),
    lambda item: ScaleEvent(_from_micros(item[0]), int(item[1]), int(_one_more(item, 3))),
)


def _one_more(item: Any, size: int) -> Any:
    """The last of ``item``'s ``size`` values (an array of another size is not a point)."""
    if len(item) != size:
        raise ValueError(f"a stored point has {size} values, got {item!r}")
    return item[-1]


def _decode_demand(data: Mapping[str, Any] | None) -> DemandHistory:
    # absent from documents written before predictive floors
    if data is None:
        return DemandHistory()
    peaks = tuple(None if peak is None else float(peak) for peak in data["peaks"])
    return DemandHistory(int(data["first"]), peaks)


def _decode_breaker(data: Mapping[str, Any]) -> BreakerState:
    if not isinstance(data["open"], bool):
        raise ValueError(f"breaker 'open' must be true or false, got {data['open']!r}")
    opened_at = data["opened_at"]
    return BreakerState(
        open=data["open"],
        since=decode_time(data["since"]),
        healthy_since=_optional_decode_time(data["healthy_since"]),
        opened_at=None if opened_at is None else float(opened_at),
    )


def _encode_controls(controls: Controls, time: Callable[[datetime], Any]) -> JsonObject:
    return {
        "pause": controls.pause,
        "pause_until": _optional(time, controls.pause_until),
        "override": controls.override,
        "override_until": _optional(time, controls.override_until),
    }


def _decode_controls(data: Mapping[str, Any]) -> Controls:
    pause = data["pause"]
    if pause not in (None, "all", "scale_in", "scale_out"):
        raise ValueError(f"unknown pause mode {pause!r}")
    return Controls(
        pause=pause,
        pause_until=_optional_decode_time(data["pause_until"]),
        override=data["override"],
        override_until=_optional_decode_time(data["override_until"]),
    )


def encode_time(at: datetime) -> str:
    """RFC 3339 in UTC with microseconds: exact, unlike the audit's milliseconds."""
    if at.tzinfo is None:
        raise ValueError(f"state times must be aware datetimes, got {at!r}")
    return at.astimezone(UTC).isoformat()


def _optional(time: Callable[[datetime], Any], at: datetime | None) -> Any:
    return None if at is None else time(at)


def decode_time(text: str) -> datetime:
    """The inverse of :func:`encode_time`; a time without an offset is refused."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"state time {text!r} has no UTC offset")
    return at.astimezone(UTC)


def _optional_decode_time(text: str | None) -> datetime | None:
    return None if text is None else decode_time(text)
