"""``kind = "teams"``: a Microsoft Teams incoming-webhook message carrying an Adaptive Card,
in the shape of Microsoft's sample (``type: message``, one adaptive-card attachment)."""

from __future__ import annotations

import json
from typing import Literal

from ..plugins import BuildContext, Plugin
from .base import Message, Notice, NotifyConfig, Sink

__all__ = ["PLUGIN", "TeamsConfig", "TeamsSink"]


class TeamsConfig(NotifyConfig):
    kind: Literal["teams"]


class TeamsSink:
    def render(self, notice: Notice) -> Message:
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": [
                {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "wrap": True},
                {"type": "TextBlock", "text": notice.text, "wrap": True},
            ],
        }
        body = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }
        return Message(json.dumps(body).encode(), {"Content-Type": "application/json"})


def build(config: TeamsConfig, ctx: BuildContext) -> Sink:
    return TeamsSink()


PLUGIN = Plugin(
    kind="teams",
    config=TeamsConfig,
    build=build,
    summary="a Microsoft Teams incoming-webhook Adaptive Card",
)
