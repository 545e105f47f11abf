"""``kind = "slack"``: a Slack incoming-webhook message (``text``, with the same words as a
``section`` block in ``mrkdwn``)."""

from __future__ import annotations

import json
from typing import Literal

from ..plugins import BuildContext, Plugin
from .base import Message, Notice, NotifyConfig, Sink

__all__ = ["PLUGIN", "SlackConfig", "SlackSink"]


class SlackConfig(NotifyConfig):
    kind: Literal["slack"]


class SlackSink:
    def render(self, notice: Notice) -> Message:
        text = f"*{notice.title}*\n{notice.text}"
        body = {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
        return Message(json.dumps(body).encode(), {"Content-Type": "application/json"})


def build(config: SlackConfig, ctx: BuildContext) -> Sink:
    return SlackSink()


PLUGIN = Plugin(
    kind="slack", config=SlackConfig, build=build, summary="a Slack incoming-webhook message"
)
