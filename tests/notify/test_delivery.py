"""Notifications reach a local receiver (aiohttp) in each sink's format, the webhook's
signed; with the receiver down for 30 s and then up, every notification arrives once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from events.build import SECRET, SECRETS, WIRE, config_text, served

KEY = "hmac-key-for-tests"


class Receiver:
    """Records every POST by path; can be taken down and brought back on its port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.received: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/{sink}", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.setdefault(request.match_info["sink"], []).append(
            (dict(request.headers), await request.read())
        )
        self.arrived.set()
        return web.Response(status=200)

    async def wait_for(self, sink: str, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received.get(sink, [])) < count:
                self.arrived.clear()
                await self.arrived.wait()


SINKS = """
[[notify]]
name = "hook"
kind = "webhook"
url_env = "SCALERD_TEST_HOOK_URL"
secret_env = "SCALERD_TEST_HOOK_KEY"
retry_max_wait = "3s"

[[notify]]
name = "chat"
kind = "slack"
url_env = "SCALERD_TEST_SLACK_URL"
on = ["scaled", "at_max"]
retry_max_wait = "3s"

[[notify]]
name = "channel"
kind = "teams"
url_env = "SCALERD_TEST_TEAMS_URL"
targets = ["web"]
on = ["scaled", "at_max"]
retry_max_wait = "3s"
"""


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    receiving = Receiver()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    base = f"http://127.0.0.1:{receiving.port}"
    monkeypatch.setenv("SCALERD_TEST_HOOK_URL", f"{base}/webhook")
    monkeypatch.setenv("SCALERD_TEST_SLACK_URL", f"{base}/slack")
    monkeypatch.setenv("SCALERD_TEST_TEAMS_URL", f"{base}/teams")
    monkeypatch.setenv("SCALERD_TEST_HOOK_KEY", KEY)
    yield receiving
    await receiving.down()


def _alert(value: float) -> bytes:
    payload = json.loads((WIRE / "azuremonitor_commonschema_metric_static_fired.json").read_text())
    payload["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] = value
    payload["data"]["essentials"]["alertId"] += f"-{value}"
    return json.dumps(payload).encode()


async def _scale_then_hit_max(running: Any) -> None:
    """2 → 4 replicas on an alert at 100 %, then an alert at 1000 % against max 6."""
    for value in (100.0, 1000.0):
        before = len(running.records)
        response = await running.http.post(
            "/events/alerts", content=_alert(value), headers={"X-Scalerd-Secret": SECRET}
        )
        assert response.status_code == 202
        await running.wait_for(lambda records, before=before: len(records) > before)
        await running.settled()


def _config() -> str:
    return config_text(extra=SINKS).replace(
        'name = "web"\nactuator = "web-pool"\ninterval = "1h"\nmax = 50',
        'name = "web"\nactuator = "web-pool"\ninterval = "1h"\nmax = 6',
    )


async def test_each_sink_gets_its_format_and_the_webhook_is_signed(
    tmp_path: Path, receiver: Receiver
) -> None:
    await receiver.up()
    async with served(tmp_path, _config()) as running:
        await _scale_then_hit_max(running)
        scaled, at_max = [r for r in running.records if r.trigger and r.trigger["type"] == "event"]
        assert (scaled.action, scaled.desired, at_max.desired) == ("scaled", 4, 6)
        # web: scaled 2 → 4, scaled 4 → 6, at max with the rules wanting 40
        await receiver.wait_for("webhook", 3, 10)
        await receiver.wait_for("slack", 3, 10)
        await receiver.wait_for("teams", 3, 10)

    events = []
    for headers, body in receiver.received["webhook"]:
        assert headers["Content-Type"] == "application/cloudevents+json"
        expected = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Scalerd-Signature"], expected)
        events.append(json.loads(body))
    assert [e["type"] for e in events] == [
        "io.scalerd.scaled",
        "io.scalerd.scaled",
        "io.scalerd.at_max",
    ]
    first = events[0]
    assert (first["specversion"], first["source"], first["subject"]) == ("1.0", "scalerd", "web")
    assert first["data"]["title"] == "web scaled 2 → 4"
    assert first["data"]["text"] == "because alert 'test-metricAlertRule' fired at 100"
    assert first["data"]["record"] == scaled.id
    assert len({e["id"] for e in events}) == 3

    slack = [json.loads(body) for _, body in receiver.received["slack"]]
    assert slack[0]["text"].startswith("*web scaled 2 → 4*\n")
    assert slack[0]["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": slack[0]["text"]},
    }

    sample = json.loads(
        (WIRE / "teams_incoming_webhook_adaptive_card_message.json")
        .read_text()
        .replace('",\n                }', '"\n                }')
    )
    teams = [json.loads(body) for _, body in receiver.received["teams"]]
    for message in teams:  # the shape of Microsoft's sample
        assert message["type"] == sample["type"]
        (attachment,) = message["attachments"]
        (expected,) = sample["attachments"]
        assert attachment["contentType"] == expected["contentType"]
        assert attachment["contentUrl"] is None
        for key in ("$schema", "type", "version"):
            assert attachment["content"][key] == expected["content"][key]
        assert all(block["type"] == "TextBlock" for block in attachment["content"]["body"])
    assert "at its maximum" in teams[2]["attachments"][0]["content"]["body"][0]["text"]


@pytest.mark.slow
async def test_a_receiver_down_for_30_s_gets_every_notification_once_when_back(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with served(tmp_path, _config()) as running:
        await _scale_then_hit_max(running)
        await asyncio.sleep(30)  # the receiver is down: connections are refused
        metrics = (await running.http.get("/metrics")).text
        assert 'scalerd_notifications_total{outcome="retry",sink="hook"}' in metrics
        await receiver.up()
        for sink in ("webhook", "slack", "teams"):
            await receiver.wait_for(sink, 3, 20)
        await asyncio.sleep(4)  # past the longest wait between tries: nothing more comes
        metrics = (await running.http.get("/metrics")).text
    for sink in ("webhook", "slack", "teams"):
        bodies = [body for _, body in receiver.received[sink]]
        assert len(bodies) == 3 and len(set(bodies)) == 3, sink
    assert 'scalerd_notifications_pending{sink="hook"} 0.0' in metrics
