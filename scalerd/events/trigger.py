"""What started an evaluation (``poll``, ``event``, ``manual``), and coalescing: per target
at most one evaluation runs and one more is queued, and the freshest values win."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from .base import InboundEvent

__all__ = ["MANUAL", "POLL", "Coalescer", "Trigger"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why an evaluation ran; an event's values replace the read of their metrics."""

    type: Literal["poll", "event", "manual"]
    kind: str | None = None
    endpoint: str | None = None
    id: str | None = None
    source: str | None = None
    summary: str | None = None
    received_at: datetime | None = None
    # metric → the value an event offered (the freshest one, when events were merged)
    values: Mapping[str, float] = field(default_factory=dict)
    # how many further events were merged into this evaluation
    coalesced: int = 0

    @classmethod
    def of(
        cls, event: InboundEvent, endpoint: str, metric: str | None, received_at: datetime
    ) -> Trigger:
        values = {metric: event.value} if metric is not None and event.value is not None else {}
        return cls(
            "event",
            event.kind,
            endpoint,
            event.id,
            event.source,
            event.summary,
            received_at,
            values,
        )

    def merged_into(self, queued: Trigger | None) -> Trigger:
        """This (newer) trigger taking the place of ``queued``: its values win."""
        if queued is None:
            return self
        return replace(
            self, values={**queued.values, **self.values}, coalesced=queued.coalesced + 1
        )

    def to_wire(self) -> dict[str, Any]:
        """Everything, as JSON (forwarded to the replica that owns the target)."""
        return {
            "type": self.type,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "id": self.id,
            "source": self.source,
            "summary": self.summary,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "values": dict(self.values),
            "coalesced": self.coalesced,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Trigger:
        """The inverse of :meth:`to_wire`; ValueError if ``data`` is not one."""
        try:
            kind = data["type"]
            if kind not in ("poll", "event", "manual"):
                raise ValueError(f"unknown trigger type {kind!r}")
            received = data.get("received_at")
            return cls(
                kind,
                data.get("kind"),
                data.get("endpoint"),
                data.get("id"),
                data.get("source"),
                data.get("summary"),
                datetime.fromisoformat(received) if received else None,
                {str(k): float(v) for k, v in dict(data.get("values") or {}).items()},
                int(data.get("coalesced", 0)),
            )
        except (KeyError, TypeError, AttributeError) as problem:
            raise ValueError(f"not a trigger: {problem}") from None

    def as_dict(self) -> dict[str, Any]:
        """For the audit record: the type alone for a poll or a manual evaluation."""
        if self.type != "event":
            return {"type": self.type}
        out = self.to_wire()
        for key in ("values", "coalesced"):
            if not out[key]:
                del out[key]
        return out


POLL = Trigger("poll")
MANUAL = Trigger("manual")


class Coalescer:
    """One target's queued trigger. ``offer`` wakes the target's loop (at once, or once
    ``min_gap`` has passed since the last event-triggered evaluation); ``take`` hands the
    queued trigger to the evaluation that starts."""

    def __init__(self, wake: Callable[[], None], min_gap: float = 0.0) -> None:
        self._wake = wake
        self._min_gap = min_gap
        self._queued: Trigger | None = None
        self._last_taken = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued(self) -> Trigger | None:
        return self._queued

    def offer(self, trigger: Trigger) -> None:
        self._queued = trigger.merged_into(self._queued)
        loop = asyncio.get_running_loop()
        wait = self._last_taken + self._min_gap - loop.time()
        if wait <= 0 or trigger.type == "manual":
            self._wake()
        elif self._timer is None:
            self._timer = loop.call_later(wait, self._fire)

    def take(self) -> Trigger | None:
        trigger, self._queued = self._queued, None
        if trigger is not None and trigger.type == "event":
            self._last_taken = asyncio.get_running_loop().time()
        return trigger

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self._queued is not None:
            self._wake()
