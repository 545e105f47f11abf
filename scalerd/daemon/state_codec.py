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

from ..core.model import (
    BreakerState,
    Controls,
    DemandHistory,
    Recommendation,
    Sample,
    ScaleEvent,
    TargetState,
)

__all__ = ["FORMAT", "decode_state", "decode_time", "encode_state", "encode_time"]

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
