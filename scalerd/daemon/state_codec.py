"""``TargetState`` ↔ JSON, exactly: what the state stores write and read back.

The core remembers samples, recommendations, scale events, cooldowns and operator
controls between ticks; a restart that lost them would reopen every stabilization window
and forget every cooldown. This module turns that value into plain JSON and back with no
loss: datetimes as RFC 3339 with microseconds and their UTC offset, floats as Python
writes them (which round-trips exactly).

Kept out of :mod:`scalerd.core` (which does no I/O and knows no formats) and free of I/O
itself, so the stores stay small and the mapping is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
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
    "EncodedRuns",
    "decode_state",
    "decode_time",
    "encode_state",
    "encode_time",
]

# bumped when the encoding changes incompatibly; a store refuses a format it does not know
FORMAT = 1

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


class EncodedRuns:
    """One target's state as JSON, remembering what it wrote last time.

    Between two saves a target's sample windows and recommendations move on by a point or
    two: the same objects, a few dropped at the front, a few added at the back. Each run
    (a metric's samples, the recommendations, the scale events) is kept here as the JSON
    it was written as, with the tuple it was written from; the next save writes only the
    points added and cuts the dropped ones off the front of the text (every element is a
    JSON object, so the elements start at its ``{``, which nothing inside one holds).
    The runs and the rest of the state (one orjson call) are joined as they are.

    The result is the JSON :func:`encode_state` gives, as orjson writes it (an aware
    datetime as ``encode_time`` does, or with its own offset, which decodes to the same
    instant); building the codec's dicts for every point again costs ten times more.
    What it holds is about the size of the runs' JSON: their points once more, as text.
    """

    __slots__ = ("_events", "_recommendations", "_samples")

    def __init__(self) -> None:
        # per metric (its JSON key, then its run), the recommendations and the scale
        # events: the tuple last written and its JSON array
        self._samples: dict[str, tuple[bytes, _Run]] = {}
        self._recommendations = _NO_RUN
        self._events = _NO_RUN

    def json(self, state: TargetState) -> bytes:
        """``state`` as the JSON of :func:`encode_state`."""
        _check_aware(state)
        runs = self._samples
        parts: list[bytes | memoryview] = [b'{"samples":{']
        for metric, points in state.samples.items():
            known = runs.get(metric)
            if known is None:
                key = orjson.dumps(metric) + b":" if type(metric) is str else _not_a_key(metric)
                known = runs[metric] = (key, _advance(None, points, _sample))
            elif known[1][0] is not points:
                known = runs[metric] = (known[0], _advance(known[1], points, _sample))
            parts += (known[0], known[1][1], b",")
        if len(parts) > 1:
            parts.pop()  # the last comma
        if len(runs) > len(state.samples):  # a metric gone from the state
            self._samples = {metric: runs[metric] for metric in state.samples}
        recommendations = self._recommendations
        if recommendations[0] is not state.recommendations:
            recommendations = self._recommendations = _advance(
                recommendations, state.recommendations, _recommendation
            )
        events = self._events
        if events[0] is not state.events:
            events = self._events = _advance(events, state.events, _event)
        controls = state.controls
        rest = orjson.dumps(
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
        parts += (
            b'},"recommendations":',
            recommendations[1],
            b',"events":',
            events[1],
            b",",
            memoryview(rest)[1:],  # (its "{" is the state's)
        )
        return b"".join(parts)


# a run: the tuple last written and its JSON array
_Run = tuple[tuple[Any, ...], bytes]
_NO_RUN: _Run = ((), b"[]")


def _not_a_key(metric: object) -> bytes:
    raise TypeError(f"a metric's name is a string, got {metric!r}")


def _advance(before: _Run | None, items: tuple[Any, ...], encode: Callable[[Any], bytes]) -> _Run:
    """The run of ``items``, from the run written before (``before``) where it can be."""
    if before is not None and items:
        old, text = before
        first = items[0]
        # where the new tuple starts in the old one (usually 0, 1 or 2 points on)
        for dropped, item in enumerate(old):
            if item is first:
                kept = len(old) - dropped
                # the same objects (or equal ones: the same JSON) from there on
                if kept <= len(items) and items[:kept] == old[dropped:]:
                    start = 1  # (after the "[")
                    for _ in range(dropped):
                        start = text.index(b"{", start + 1)
                    if kept == len(items):  # none added
                        return items, text if start == 1 else b"[" + text[start:]
                    added = b",".join([encode(each) for each in items[kept:]])
                    return items, b"".join((b"[", memoryview(text)[start:-1], b",", added, b"]"))
                break
    return items, b"".join((b"[", b",".join([encode(each) for each in items]), b"]"))


def _sample(sample: Sample) -> bytes:
    return orjson.dumps({"at": sample.at, "value": sample.value})


def _recommendation(item: Recommendation) -> bytes:
    return orjson.dumps({"at": item.at, "replicas": item.replicas})


def _event(event: ScaleEvent) -> bytes:
    return orjson.dumps({"at": event.at, "before": event.before, "after": event.after})


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


def decode_state(data: Mapping[str, Any]) -> TargetState:
    """The inverse of :func:`encode_state`. Raises ``ValueError`` if ``data`` is not one."""
    try:
        return TargetState(
            samples={
                metric: tuple(
                    Sample(decode_time(item["at"]), float(item["value"])) for item in items
                )
                for metric, items in data["samples"].items()
            },
            recommendations=tuple(
                Recommendation(decode_time(item["at"]), int(item["replicas"]))
                for item in data["recommendations"]
            ),
            events=tuple(
                ScaleEvent(decode_time(item["at"]), int(item["before"]), int(item["after"]))
                for item in data["events"]
            ),
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
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an encoded target state: {type(exc).__name__}: {exc}") from None


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
