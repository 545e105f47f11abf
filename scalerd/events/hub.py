"""The endpoints of every ``[[events]]`` entry, and how an accepted event reaches targets."""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog
from prometheus_client import CollectorRegistry, Counter

from ..clock import Clock
from ..plugins import BuildContext
from .base import EventConfig, InboundEvent, targets_for
from .trigger import Trigger

__all__ = ["Endpoint", "EventHub", "EventMetrics", "Offer", "StreamReceiver"]

log = structlog.get_logger("scalerd")

# hands one target a trigger (the daemon's coalescer, or a forwarder to its owner)
Offer = Callable[[str, Trigger], object]
Deliver = Callable[[Sequence[InboundEvent]], Awaitable[list[str]]]


@runtime_checkable
class StreamReceiver(Protocol):
    """A kind that pulls events itself (Redis): it runs until cancelled."""

    async def run(self, deliver: Deliver) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class Endpoint:
    config: EventConfig
    receiver: Any  # HttpReceiver or StreamReceiver
    secret: bytes | None

    @property
    def name(self) -> str:
        return self.config.name

    def authorized(self, offered: Iterable[str | None]) -> bool:
        """Every offered secret compared in constant time; any one matching is enough."""
        assert self.secret is not None
        found = False
        for value in offered:
            if value is not None:
                found = hmac.compare_digest(value.encode(), self.secret) or found
        return found


class EventMetrics:
    """The event counters, made once per daemon (a reload builds a new hub, not these)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "scalerd_event_requests",
            "Pushed-event requests by endpoint and outcome (accepted, rejected, unauthorized, handshake)",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.events = Counter(
            "scalerd_events",
            "Events accepted, by endpoint and kind",
            ["endpoint", "kind"],
            registry=registry,
        )


class EventHub:
    """Receivers by endpoint name; ``deliver`` maps events to targets and offers them."""

    def __init__(
        self,
        configs: Mapping[str, EventConfig],
        ctx: BuildContext,
        targets: Iterable[str],
        offer: Offer,
        clock: Clock,
        metrics: EventMetrics,
    ) -> None:
        from . import EVENTS

        self.endpoints: dict[str, Endpoint] = {}
        for name, config in configs.items():
            secret = None
            if config.secret_env is not None:
                value = os.environ.get(config.secret_env)
                if not value:
                    raise ValueError(
                        f"events {name!r}: environment variable {config.secret_env} (secret_env) is not set"
                    )
                secret = value.encode()
            receiver = EVENTS.get(config.kind).build(config, ctx)
            self.endpoints[name] = Endpoint(config, receiver, secret)
        self.targets = frozenset(targets)
        self._offer = offer
        self._clock = clock
        self._http = ctx.http
        self._tasks: list[asyncio.Task[None]] = []
        self.requests = metrics.requests
        self.events = metrics.events

    def http_endpoint(self, name: str) -> Endpoint | None:
        endpoint = self.endpoints.get(name)
        return (
            endpoint
            if endpoint is not None and not isinstance(endpoint.receiver, StreamReceiver)
            else None
        )

    def deliver(self, endpoint: Endpoint, events: Sequence[InboundEvent]) -> list[str]:
        """Offer each event to the targets it concerns; the targets, in order."""
        now = self._clock.now()
        reached: list[str] = []
        for event in events:
            self.events.labels(endpoint.name, event.kind).inc()
            trigger = Trigger.of(event, endpoint.name, endpoint.config.metric, now)
            for target in targets_for(endpoint.config, event, self.targets):
                self._offer(target, trigger)
                if target not in reached:
                    reached.append(target)
        return reached

    def start(self) -> None:
        """Start the receivers that pull (Redis)."""
        for endpoint in self.endpoints.values():
            if isinstance(endpoint.receiver, StreamReceiver):

                async def deliver(
                    events: Sequence[InboundEvent], endpoint: Endpoint = endpoint
                ) -> list[str]:
                    return self.deliver(endpoint, events)

                self._tasks.append(
                    asyncio.create_task(
                        endpoint.receiver.run(deliver), name=f"scalerd-events-{endpoint.name}"
                    )
                )

    def confirm_later(self, url: str, endpoint: str) -> None:
        """Event Grid's manual handshake: GET the validation URL once the answer is sent."""
        if self._http is None:
            return
        http = self._http

        async def confirm() -> None:
            await asyncio.sleep(0)
            try:
                response = await http.get(url, timeout=10)
                log.info(
                    "event grid subscription confirmed",
                    endpoint=endpoint,
                    status=response.status_code,
                )
            except Exception as problem:  # the subscription stays unconfirmed; say so
                log.warning(
                    "event grid validation URL failed",
                    endpoint=endpoint,
                    error=type(problem).__name__,
                )

        self._tasks.append(
            asyncio.create_task(confirm(), name=f"scalerd-events-confirm-{endpoint}")
        )

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for endpoint in self.endpoints.values():
            close = getattr(endpoint.receiver, "aclose", None)
            if close is not None:
                await close()
