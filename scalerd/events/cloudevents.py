"""``kind = "cloudevents"``: CloudEvents 1.0 over HTTP, in structured, binary and batch mode,
and the CloudEvents webhook validation handshake (``OPTIONS``, abuse protection).

Parsed here rather than with the ``cloudevents`` SDK's reader: the reader of SDK 2.2 rejects the JSON format's own example
(``"subject": null``, which the format says MUST be treated as absent), invents an ``id``
and a ``time`` when an event has none (right for a producer, wrong for a receiver that must
refuse such an event), has no batch mode, and decodes ``data_base64`` eagerly, which
scalerd never needs unless ``value_field`` reads the data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

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
    objects,
)

__all__ = [
    "PLUGIN",
    "CloudEventsConfig",
    "CloudEventsReceiver",
    "from_attributes",
    "webhook_validation",
    "with_value",
]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_NAME = re.compile(r"^[a-z0-9]{1,64}$")
_CONTEXT = {
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
}


class CloudEventsConfig(WebhookConfig):
    kind: Literal["cloudevents"]


class CloudEventsReceiver:
    def __init__(self, config: CloudEventsConfig) -> None:
        self._config = config

    def parse(self, request: EventRequest) -> Parsed:
        if request.method == "OPTIONS":
            return Parsed(reply=webhook_validation(request, self._config))
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if "ce-specversion" in request.headers:
            return Parsed((self._binary(request, content_type),))
        if content_type == BATCH:
            batch = objects(json_body(request), "a batch (application/cloudevents-batch+json)")
            return Parsed(tuple(self._event(item, f"event {i}") for i, item in enumerate(batch)))
        if content_type == STRUCTURED:
            document = json_body(request)
            if not isinstance(document, dict):
                raise EventRejected("a structured CloudEvent must be a JSON object")
            return Parsed((self._event(document, "the event"),))
        raise EventRejected(
            f"not a CloudEvent: send Content-Type {STRUCTURED} (structured), {BATCH} (batch), "
            "or ce-specversion, ce-id, ce-source and ce-type headers (binary)"
        )

    def _event(self, document: Mapping[str, Any], where: str) -> InboundEvent:
        event = from_attributes(document, where)
        if self._config.value_field is None:
            return event
        return with_value(event, number_at(document, self._config.value_field))

    def _binary(self, request: EventRequest, content_type: str) -> InboundEvent:
        attributes: dict[str, Any] = {
            key.lower()[3:]: unquote(value)
            for key, value in request.headers.items()
            if key.lower().startswith("ce-")
        }
        if content_type:
            attributes["datacontenttype"] = content_type
        event = from_attributes(attributes, "the ce- headers")
        field = self._config.value_field
        if field is None:
            return event
        data = json_body(request) if field.startswith("data.") else None
        return with_value(event, number_at({**attributes, "data": data}, field))


def from_attributes(document: Mapping[str, Any], where: str) -> InboundEvent:
    """A CloudEvents 1.0 event from its attributes (JSON members or binary-mode headers)."""
    # the JSON format: a null attribute MUST be treated as unset
    attributes = {
        key: value
        for key, value in document.items()
        if value is not None and key not in ("data", "data_base64")
    }
    if attributes.get("specversion") != "1.0":
        raise EventRejected(f"{where}: specversion must be '1.0'")
    for name in ("id", "source", "type"):
        if not isinstance(attributes.get(name), str) or not attributes[name]:
            raise EventRejected(f"{where}: {name} must be a non-empty string")
    for name in ("subject", "datacontenttype", "dataschema", "time"):
        if name in attributes and not isinstance(attributes[name], str):
            raise EventRejected(f"{where}: {name} must be a string")
    time = None
    if "time" in attributes:
        try:
            time = datetime.fromisoformat(attributes["time"].replace("Z", "+00:00"))
        except ValueError:
            raise EventRejected(f"{where}: time must be an RFC 3339 timestamp") from None
    properties: dict[str, str] = {}
    for name, value in attributes.items():
        if not _NAME.match(name):
            raise EventRejected(
                f"{where}: attribute names are lower-case letters and digits: {name[:40]!r}"
            )
        if name not in _CONTEXT:
            if isinstance(value, dict | list):
                raise EventRejected(f"{where}: extension {name!r} must be a plain value")
            properties[name] = str(value)
    return InboundEvent(
        kind="cloudevents",
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        subject=attributes.get("subject"),
        resources=(attributes["source"],),
        properties=properties,
        time=time,
        summary=f"event {attributes['type']!r} from {attributes['source']!r}",
    )


def webhook_validation(request: EventRequest, config: WebhookConfig) -> Reply:
    """The CloudEvents webhook abuse-protection handshake (http-webhook.md §4)."""
    origin = request.headers.get("WebHook-Request-Origin")
    if not origin:
        raise EventRejected(
            "OPTIONS here is the CloudEvents webhook validation request: "
            "the WebHook-Request-Origin header is missing"
        )
    allowed = config.allowed_origins
    if allowed and origin not in allowed:
        return Reply(403, {"error": f"origin {origin[:80]!r} may not deliver here"})
    rate = config.allowed_rate
    headers = {
        "Allow": "POST",
        "WebHook-Allowed-Origin": origin,
        # MUST be returned when the request asked for a rate; scalerd always says
        "WebHook-Allowed-Rate": str(rate) if rate is not None else "*",
    }
    return Reply(200, None, headers)


def with_value(event: InboundEvent, value: float | None) -> InboundEvent:
    if value is None:
        return event
    return replace(event, value=value, summary=f"{event.summary} at {value:g}")


def build(config: CloudEventsConfig, ctx: BuildContext) -> HttpReceiver:
    return CloudEventsReceiver(config)


PLUGIN = Plugin(
    kind="cloudevents",
    config=CloudEventsConfig,
    build=build,
    summary="CloudEvents 1.0 over HTTP: structured, binary and batch mode",
)
