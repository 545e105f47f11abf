"""An event storm does not become an evaluation storm: 10,000 events for one target within
10 s cause a few evaluations, and the last one uses the last event's value."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from .build import SECRET, SECRETS, config_text, served

EVENTS = 10_000
CONCURRENCY = 32


def _event(number: int) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "type": "com.example.queue",
            "source": "/orders",
            "id": f"storm-{number}",
            "data": {"appinfoB": number},
        }
    ).encode()


async def test_ten_thousand_events_coalesce_into_a_few_evaluations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    async with served(tmp_path, config_text(gap="2s")) as running:
        before = len(running.records)
        headers = {"Content-Type": "application/cloudevents+json", "X-Scalerd-Secret": SECRET}
        statuses: list[int] = []
        started = time.monotonic()
        async with aiohttp.ClientSession(running.url) as session:

            async def send(numbers: range) -> None:
                for number in numbers:
                    async with session.post(
                        "/events/apps", data=_event(number), headers=headers
                    ) as response:
                        statuses.append(response.status)

            share = EVENTS // CONCURRENCY
            await asyncio.gather(
                *(send(range(i * share, (i + 1) * share)) for i in range(CONCURRENCY - 1)),
                send(range((CONCURRENCY - 1) * share, EVENTS - 1)),
            )
            # the last event, after all the others: its value must be the one used
            async with session.post(
                "/events/apps", data=_event(EVENTS - 1), headers=headers
            ) as response:
                statuses.append(response.status)
        elapsed = time.monotonic() - started
        print(f"storm: {EVENTS} events in {elapsed:.1f} s")
        assert statuses == [202] * EVENTS
        await running.wait_for(
            lambda records: any(
                r.trigger and r.trigger.get("id") == f"storm-{EVENTS - 1}" for r in records
            ),
            timeout=15,
        )
        await running.settled()
        storm = running.records[before:]
        assert {r.target for r in storm} == {"workers"}
        # one evaluation at once, then at most one per min_event_gap (2 s) while it lasts
        assert 1 <= len(storm) <= 2 + int(elapsed / 2) + 1, (len(storm), elapsed)
        last = storm[-1]
        (depth,) = [i for i in last.inputs if i["metric"] == "depth"]
        assert depth["value"] == EVENTS - 1
        assert last.trigger is not None and last.trigger["id"] == f"storm-{EVENTS - 1}"
        assert sum(r.trigger["coalesced"] + 1 for r in storm if r.trigger) == EVENTS
        # the daemon is still answering
        assert (await running.http.get("/healthz")).status_code == 200
