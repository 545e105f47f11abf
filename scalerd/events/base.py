"""What every event kind shares: the ``[[events]]`` entry, the parsed event, matching."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..plugins import PluginConfig

__all__ = [
    "EventConfig",
    "EventRejected",
    "EventRequest",
    "HttpReceiver",
    "InboundEvent",
    "MatchRule",
    "Parsed",
    "Reply",
    "json_body",
    "number_at",
    "objects",
    "targets_for",
    "text",
]


class EventRejected(ValueError):
    """A malformed event: answered 400 with this message as the reason."""


class MatchRule(BaseModel):
    """``[[events.match]]``: ``target`` is evaluated when every condition given holds.

    Patterns are shell globs, compared case-insensitively (Azure resource ids are not
    case-stable: alerts send ``resourcegroups``, ARM writes ``resourceGroups``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(min_length=1)
    resource: str | None = None  # an alert's target resource, an Event Grid topic, a source
    rule: str | None = None  # the alert rule's name
    subject: str | None = None
    type: str | None = None  # the event type; for alerts the signal type (Metric, Log …)

    def matches(self, event: InboundEvent) -> bool:
        checks = (
            (self.resource, event.resources),
            (self.rule, (event.rule,) if event.rule else ()),
            (self.subject, (event.subject,) if event.subject is not None else ()),
            (self.type, (event.type,)),
        )
        return all(
            pattern is None or any(_glob(pattern, value) for value in values)
            for pattern, values in checks
        )


class EventConfig(PluginConfig):
    """Every ``[[events]]`` entry: a name (its URL), a kind, a secret, and its targets."""

    # the environment variable holding the shared secret (``?code=`` or X-Scalerd-Secret)
    secret_env: str | None = None
    # the targets this endpoint's events concern; match rules narrow it (or replace it)
    targets: tuple[str, ...] = ()
    match: tuple[MatchRule, ...] = ()
    # an event property naming its target, e.g. an alert's custom property "scalerd-target"
    target_property: str | None = None
    # the metric of the target that an event's value is offered to as a fresh observation
    metric: str | None = None

    @model_validator(mode="after")
    def _some_target(self) -> EventConfig:
        if not (self.targets or self.match or self.target_property):
            raise ValueError("give targets = [...], [[events.match]] rules or target_property")
        outside = [
            rule.target for rule in self.match if self.targets and rule.target not in self.targets
        ]
        if outside:
            raise ValueError(
                f"@match: match rules may only narrow targets = {list(self.targets)}: {outside} is not in it"
            )
        return self

    def target_names(self) -> set[str]:
        """Every target this entry names (for checking them against ``[[targets]]``)."""
        return {*self.targets, *(rule.target for rule in self.match)}


# where an event's number is, e.g. "data.queue_depth" (offered to `metric`)
ValueField = Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")]


class WebhookConfig(EventConfig):
    """The CloudEvents webhook handshake's settings, shared by the kinds that answer it."""

    value_field: ValueField = None
    # the validation handshake grants this many requests a minute ("*" when unset)
    allowed_rate: int | None = Field(None, ge=1)
    # origins allowed to deliver (WebHook-Request-Origin); empty: any origin
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One pushed event, reduced to what matching and the audit record need."""

    kind: str
    id: str
    source: str
    type: str
    subject: str | None = None
    rule: str | None = None
    resources: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    time: datetime | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class EventRequest:
    """An HTTP request as a receiver sees it: no framework, so parsers test without one."""

    method: str
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """A handshake's answer, sent instead of the usual 202."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parsed:
    events: tuple[InboundEvent, ...] = ()
    reply: Reply | None = None
    # a validation URL to GET (Event Grid's manual handshake), after answering
    validation_url: str | None = None


class HttpReceiver(Protocol):
    """Turns one HTTP request into events (or a handshake reply); raises EventRejected."""

    def parse(self, request: EventRequest) -> Parsed: ...


def targets_for(config: EventConfig, event: InboundEvent, known: Iterable[str]) -> list[str]:
    """The targets ``event`` concerns: the match rules that hold, else the ``targets`` list;
    a ``target_property`` on the event names one directly."""
    wanted: list[str] = []
    if config.target_property is not None and config.target_property in event.properties:
        wanted.append(event.properties[config.target_property])
    elif config.match:
        wanted.extend(rule.target for rule in config.match if rule.matches(event))
    else:
        wanted.extend(config.targets)
    allowed = set(config.targets) if config.targets else set(known)
    return sorted({name for name in wanted if name in allowed})


def number_at(document: Any, path: str) -> float | None:
    """The number at dotted ``path`` in ``document``; None if absent, an error if not a number."""
    value = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventRejected(f"{path} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise EventRejected(f"{path} must be a number (got {str(value)[:40]!r})") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise EventRejected(f"{path} must be a finite number")
    return number


def json_body(request: EventRequest) -> Any:
    """The body as JSON, or EventRejected saying why not."""
    if not request.body.strip():
        raise EventRejected("the body is empty")
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError) as problem:
        raise EventRejected(f"the body is not JSON: {str(problem)[:80]}") from None


def text(value: Any, what: str, *, required: bool = True) -> str | None:
    """``value`` if it is a string (non-empty when required), else EventRejected."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise EventRejected(f"{what} must be a non-empty string")
    return value


def objects(value: Any, what: str) -> Sequence[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise EventRejected(f"{what} must be an array of objects")
    return value


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())
