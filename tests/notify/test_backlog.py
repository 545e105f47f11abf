"""``Notifier.backlog()``: what is offered and not yet delivered, counted through every
stage (offered, being written to the outbox, pending there), so a caller waiting for 0
never stops while a notice is between two of them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from scalerd.audit import AuditRecord
from scalerd.notify.outbox import Notifier, NotifyMetrics, Outbox
from scalerd.notify.webhook import WebhookConfig
from scalerd.plugins import BuildContext


def _scaled() -> AuditRecord:
    return AuditRecord(
        ts=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        id="r1",
        prev=None,
        target="web",
        kind="recording",
        instance="a",
        config_version="v",
        action="scaled",
        dry_run=False,
        duration_ms=1.0,
        current={"provisioned": 2, "ready": 2, "operation": None},
        recommended=4,
        desired=4,
        not_scaled_reason=None,
    )


async def test_backlog_counts_a_notice_until_it_is_delivered(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mock_http: Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient],
) -> None:
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("HOOK_KEY", "key")
    received: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(200)

    outbox = Outbox(tmp_path / "outbox.db")
    # the write to the outbox waits until the test has looked at the backlog meanwhile
    writing, looked = threading.Event(), threading.Event()
    add = outbox.add

    def slow_add(rows: Any) -> int:
        writing.set()
        looked.wait(5)
        return add(rows)

    monkeypatch.setattr(outbox, "add", slow_add)
    config = WebhookConfig(name="hook", kind="webhook", url_env="HOOK_URL", secret_env="HOOK_KEY")
    notifier = Notifier(
        {"hook": config},
        BuildContext(base_dir=tmp_path, http=mock_http(answer)),
        outbox,
        NotifyMetrics(CollectorRegistry()),
    )
    notifier.offer(_scaled())
    assert notifier.backlog() == 1  # offered
    notifier.start()
    try:
        await asyncio.to_thread(writing.wait, 5)
        assert notifier.backlog() == 1  # neither offered nor in the outbox yet: being written
        looked.set()
        async with asyncio.timeout(5):
            while notifier.backlog():
                await asyncio.sleep(0.01)
        assert len(received) == 1
    finally:
        looked.set()
        await notifier.aclose()
        outbox.close()
