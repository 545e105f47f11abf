"""``kind = "event-grid"``: Azure Event Grid push delivery, in the Event Grid schema or the
CloudEvents 1.0 schema, batched (Event Grid posts arrays), with both handshakes: the Event
Grid subscription validation event (answered with its ``validationCode``, or confirmed by
GETting its ``validationUrl``) and, for the CloudEvents schema, the webhook ``OPTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from ..plugins import BuildContext, Plugin
from .base import (
    EventRejected,
    EventRequest,
    HttpReceiver,
    InboundEvent,
    Parsed,
    Reply,
    WebhookConfig,
    json_body,
    number_at,
)
from .cloudevents import from_attributes, webhook_validation, with_value

__all__ = ["PLUGIN", "EventGridConfig", "EventGridReceiver"]

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


class EventGridConfig(WebhookConfig):
    kind: Literal["event-grid"]
    # answer the validation event with its code ("response"), or GET its validationUrl
    validation: Literal["response", "url"] = "response"


class EventGridReceiver:
    def __init__(self, config: EventGridConfig) -> None:
        self._config = config

    def parse(self, request: EventRequest) -> Parsed:
        if request.method == "OPTIONS":
            return Parsed(reply=webhook_validation(request, self._config))
        document = json_body(request)
        batch = document if isinstance(document, list) else [document]
        if not batch or not all(isinstance(item, dict) for item in batch):
            raise EventRejected("Event Grid delivers a JSON array of event objects")
        validation = [item for item in batch if item.get("eventType") == VALIDATION_EVENT]
        if validation:
            return self._validate(validation[0])
        return Parsed(tuple(self._event(item, f"event {i}") for i, item in enumerate(batch)))

    def _validate(self, event: Mapping[str, Any]) -> Parsed:
        data = event.get("data")
        code = data.get("validationCode") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code:
            raise EventRejected("the validation event has no data.validationCode")
        url = data.get("validationUrl") if isinstance(data, dict) else None
        if self._config.validation == "url":
            if not isinstance(url, str) or not url.startswith("https://"):
                raise EventRejected("the validation event has no https data.validationUrl")
            return Parsed(reply=Reply(200, {}), validation_url=url)
        # Event Grid accepts only 200 here, within 30 s
        return Parsed(reply=Reply(200, {"validationResponse": code}))

    def _event(self, item: Mapping[str, Any], where: str) -> InboundEvent:
        if "specversion" in item:
            event = replace(from_attributes(item, where), kind="event-grid")
        else:
            event = _grid_event(item, where)
        data = item.get("data")
        if isinstance(data, dict):
            fields = {key: str(value) for key, value in data.items() if isinstance(value, str)}
            event = replace(event, properties={**fields, **event.properties})
        if self._config.value_field is None:
            return event
        return with_value(event, number_at(item, self._config.value_field))


def _grid_event(item: Mapping[str, Any], where: str) -> InboundEvent:
    """One event in the Event Grid schema (id, eventType, subject, eventTime, data …)."""
    for name in ("id", "eventType", "eventTime"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise EventRejected(f"{where}: {name} must be a non-empty string")
    if not isinstance(item.get("subject"), str):
        raise EventRejected(f"{where}: subject must be a string")
    topic = item.get("topic")
    if topic is not None and not isinstance(topic, str):
        raise EventRejected(f"{where}: topic must be a string")
    try:
        time = datetime.fromisoformat(item["eventTime"].replace("Z", "+00:00"))
    except ValueError:
        raise EventRejected(f"{where}: eventTime must be an ISO 8601 timestamp") from None
    data = item.get("data")
    resource = data.get("resourceUri") if isinstance(data, dict) else None
    resources = tuple(r for r in (topic, resource) if isinstance(r, str) and r)
    return InboundEvent(
        kind="event-grid",
        id=item["id"],
        source=topic or "",
        type=item["eventType"],
        subject=item["subject"],
        resources=resources,
        time=time,
        summary=f"event {item['eventType']!r} for {item['subject'] or topic!r}",
    )


def build(config: EventGridConfig, ctx: BuildContext) -> HttpReceiver:
    return EventGridReceiver(config)


PLUGIN = Plugin(
    kind="event-grid",
    config=EventGridConfig,
    build=build,
    summary="Azure Event Grid push delivery (Event Grid and CloudEvents schemas, handshakes)",
)
