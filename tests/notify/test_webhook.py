"""The webhook sink: a CloudEvents 1.0 structured event, signed over its exact bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from scalerd.notify.base import Notice
from scalerd.notify.webhook import SIGNATURE_HEADER, WebhookConfig, WebhookSink

CONFIG = WebhookConfig(
    kind="webhook", name="hook", url_env="U", secret_env="K", source="scalerd/eu"
)
NOTICE = Notice(
    "at_max",
    "web",
    datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    "web:at_max:r1",
    "t",
    "x",
    "r1",
    {"recommended": 9},
)


def test_a_cloudevent_whose_signature_covers_the_body() -> None:
    message = WebhookSink(CONFIG, b"key").render(NOTICE)
    event = json.loads(message.body)
    assert event["specversion"] == "1.0" and event["type"] == "io.scalerd.at_max"
    assert (event["id"], event["source"], event["subject"]) == (
        "web:at_max:r1",
        "scalerd/eu",
        "web",
    )
    assert event["time"] == "2026-12-01T10:00:00Z"
    assert event["data"]["recommended"] == 9
    expected = hmac.new(b"key", message.body, hashlib.sha256).hexdigest()
    assert message.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert (
        WebhookSink(CONFIG, b"other").render(NOTICE).headers[SIGNATURE_HEADER]
        != message.headers[SIGNATURE_HEADER]
    )
