"""CloudEvents 1.0 in the three HTTP modes, from the spec's examples, and the webhook
validation handshake."""

from __future__ import annotations

import json

import pytest

from scalerd.events.base import EventRejected, EventRequest
from scalerd.events.cloudevents import CloudEventsConfig, CloudEventsReceiver

from .build import WIRE

CONFIG = CloudEventsConfig(
    kind="cloudevents", name="apps", targets=("w",), value_field="data.appinfoB", metric="m"
)


def _request(body: bytes, **headers: str) -> EventRequest:
    return EventRequest("POST", headers, body)


def test_structured_mode_treats_null_as_absent() -> None:
    body = (WIRE / "cloudevents_structured_json_object_data.json").read_bytes()
    (event,) = (
        CloudEventsReceiver(CONFIG)
        .parse(_request(body, **{"Content-Type": "application/cloudevents+json"}))
        .events
    )
    assert (event.id, event.source, event.type, event.subject) == (
        "C234-1234-1234",
        "/mycontext",
        "com.example.someevent",
        None,
    )
    assert event.properties == {"comexampleextension1": "value", "comexampleothervalue": "5"}
    assert event.value == 123


def test_batch_mode_keeps_undecoded_binary_data_out_of_the_way() -> None:
    body = (WIRE / "cloudevents_batch.json").read_bytes()
    events = (
        CloudEventsReceiver(CONFIG)
        .parse(_request(body, **{"Content-Type": "application/cloudevents-batch+json"}))
        .events
    )
    assert [(e.id, e.value) for e in events] == [("B234-1234-1234", None), ("C234-1234-1234", 123)]


def test_binary_mode_reads_the_ce_headers() -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s", "ce-id": "a%20b"}
    (event,) = (
        CloudEventsReceiver(CONFIG)
        .parse(
            _request(
                json.dumps({"appinfoB": 7}).encode(),
                **headers,
                **{"Content-Type": "application/json"},
            )
        )
        .events
    )
    assert (event.id, event.value) == ("a b", 7)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            {"specversion": "0.3", "id": "1", "source": "/s", "type": "t"},
            "specversion must be '1.0'",
        ),
        ({"specversion": "1.0", "source": "/s", "type": "t"}, "id must be a non-empty string"),
        ({"specversion": "1.0", "id": 5, "source": "/s", "type": "t"}, "id must be"),
        (
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "Bad-Name": 1},
            "lower-case",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "yesterday"},
            "RFC 3339",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "data": {"appinfoB": "x"},
            },
            "must be a number",
        ),
    ],
)
def test_invalid_events_say_why(document: dict[str, object], reason: str) -> None:
    with pytest.raises(EventRejected, match=reason):
        CloudEventsReceiver(CONFIG).parse(
            _request(
                json.dumps(document).encode(), **{"Content-Type": "application/cloudevents+json"}
            )
        )


def test_plain_json_is_not_a_cloudevent() -> None:
    with pytest.raises(EventRejected, match="not a CloudEvent"):
        CloudEventsReceiver(CONFIG).parse(_request(b"{}", **{"Content-Type": "application/json"}))


def test_validation_refuses_an_origin_not_allowed() -> None:
    config = CONFIG.model_copy(update={"allowed_origins": ("eventgrid.azure.net",)})
    request = EventRequest("OPTIONS", {"WebHook-Request-Origin": "evil.example.com"}, b"")
    reply = CloudEventsReceiver(config).parse(request).reply
    assert reply is not None and reply.status == 403
    granted = (
        CloudEventsReceiver(config)
        .parse(EventRequest("OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net"}, b""))
        .reply
    )
    assert granted is not None and granted.headers["WebHook-Allowed-Rate"] == "*"
