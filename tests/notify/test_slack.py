"""The Slack sink: an incoming-webhook message, text plus the same words as a block."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scalerd.notify.base import Notice
from scalerd.notify.slack import SlackSink


def test_text_and_a_mrkdwn_section() -> None:
    notice = Notice(
        "failed",
        "db",
        datetime(2026, 12, 1, tzinfo=UTC),
        "k",
        "db: scaling failed",
        "409: Conflict",
    )
    body = json.loads(SlackSink().render(notice).body)
    assert body["text"] == "*db: scaling failed*\n409: Conflict"
    assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}]
