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
    """One target's state for ``orjson.dumps``, remembering what it wrote last time.

    Between two saves a target's sample windows and recommendations move on by a point or
    two: the same objects, a few dropped at the front, a few added at the back. Each run
    (a metric's samples, the recommendations, the scale events) is kept here as the JSON
    it was written as, with the tuple it was written from; the next save writes only the
    points added and cuts the dropped ones off the front of the text (every element is a
    JSON object, so the elements start at its ``{``, which nothing inside one holds).
    The result is the JSON :func:`encode_state` gives, and orjson writes it (an aware
    datetime as ``encode_time`` does, or with its own offset, which decodes to the same
    instant); building the codec's dicts for every point again costs ten times more.
    """

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        # run name → (the tuple last written, its elements' JSON without the brackets)
        self._runs: dict[str, tuple[tuple[Any, ...], bytes]] = {}

    def state(self, state: TargetState) -> JsonObject:
        """``state`` as :func:`encode_state` has it, with its runs as orjson fragments."""
        _check_aware(state)
        samples = {
            metric: self._run(f"samples:{metric}", points, _sample)
            for metric, points in state.samples.items()
        }
        if len(self._runs) > len(samples) + 2:  # a metric gone from the state
            self._runs = {
                name: run
                for name, run in self._runs.items()
                if not name.startswith("samples:") or name[8:] in samples
            }
        controls = state.controls
        return {
            "samples": samples,
            "recommendations": self._run("recommendations", state.recommendations, _recommendation),
            "events": self._run("events", state.events, _event),
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

    def _run(
        self, name: str, items: tuple[Any, ...], encode: Callable[[Any], bytes]
    ) -> orjson.Fragment:
        before = self._runs.get(name)
        if before is not None and before[0] is items:
            text = before[1]
        else:
            text = b""
            kept = 0
            if before is not None and items:
                old, old_text = before
                # where the new tuple starts in the old one (usually 0, 1 or 2 points on)
                first = items[0]
                for dropped, item in enumerate(old):
                    if item is first:
                        kept = len(old) - dropped
                        # the same objects (or equal ones: the same JSON) from there on
                        if kept <= len(items) and items[:kept] == old[dropped:]:
                            cut = 0
                            for _ in range(dropped):
                                cut = old_text.index(b"{", cut + 1)
                            text = old_text[cut:]
                        else:
                            kept = 0
                        break
            added = b",".join([encode(item) for item in items[kept:]])
            text = text + b"," + added if text and added else text or added
            self._runs[name] = (items, text)
        return orjson.Fragment(b"[" + text + b"]")


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
