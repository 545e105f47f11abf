"""``kind = "webhook"``: a CloudEvents 1.0 structured-mode JSON POST (``type`` such as
``io.scalerd.scaled``), signed: ``X-Scalerd-Signature: sha256=<hex HMAC-SHA256 of the
body>`` with the key from ``secret_env``. Written with the ``cloudevents`` SDK."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import Field

from ..plugins import BuildContext, Plugin, secret_from_env
from .base import Message, Notice, NotifyConfig, Sink

__all__ = ["PLUGIN", "SIGNATURE_HEADER", "WebhookConfig", "WebhookSink", "sign"]

SIGNATURE_HEADER = "X-Scalerd-Signature"


class WebhookConfig(NotifyConfig):
    kind: Literal["webhook"]
    # the environment variable holding the HMAC key the body is signed with
    secret_env: str = Field(min_length=1)
    source: str = Field("scalerd", min_length=1)


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookSink:
    def __init__(self, config: WebhookConfig, key: bytes) -> None:
        self._source = config.source
        self._key = key

    def render(self, notice: Notice) -> Message:
        event = CloudEvent(
            {
                "id": notice.key,
                "source": self._source,
                "type": f"io.scalerd.{notice.what}",
                "subject": notice.target,
                "time": notice.at,
                "datacontenttype": "application/json",
            },
            {
                "title": notice.title,
                "text": notice.text,
                "target": notice.target,
                "record": notice.record,
                **notice.data,
            },
        )
        message = to_structured(event, JSONFormat())
        return Message(
            message.body, {**message.headers, SIGNATURE_HEADER: sign(self._key, message.body)}
        )


def build(config: WebhookConfig, ctx: BuildContext) -> Sink:
    key = secret_from_env(config, config.secret_env, "secret_env")
    assert key is not None
    return WebhookSink(config, key.encode())


PLUGIN = Plugin(
    kind="webhook",
    config=WebhookConfig,
    build=build,
    summary="a signed CloudEvents 1.0 JSON POST to any URL",
)
