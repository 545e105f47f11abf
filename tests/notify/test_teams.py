"""The Teams sink: the shape of Microsoft's incoming-webhook Adaptive Card sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from events.build import WIRE

from scalerd.notify.base import Notice
from scalerd.notify.teams import TeamsSink


def test_the_shape_of_the_published_sample() -> None:
    # as published the sample has a trailing comma (INDEX.md): dropped to read it
    text = (WIRE / "teams_incoming_webhook_adaptive_card_message.json").read_text()
    sample = json.loads(text.replace('",\n                }', '"\n                }'))
    notice = Notice(
        "scaled", "web", datetime(2026, 12, 1, tzinfo=UTC), "k", "web scaled 2 → 4", "why"
    )
    body = json.loads(TeamsSink().render(notice).body)
    assert set(body) == set(sample) and body["type"] == "message"
    (attachment,), (expected,) = body["attachments"], sample["attachments"]
    assert set(attachment) == set(expected)
    assert attachment["contentType"] == expected["contentType"] and attachment["contentUrl"] is None
    assert {k: attachment["content"][k] for k in ("$schema", "type", "version")} == {
        k: expected["content"][k] for k in ("$schema", "type", "version")
    }
    assert [b["text"] for b in attachment["content"]["body"]] == ["web scaled 2 → 4", "why"]
