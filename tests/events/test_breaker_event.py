"""A pushed event as a breaker's input: a CloudEvent carrying a dependency's health flag
opens the breaker at once (the event evaluates its target), and a later pushed surge in
demand finds it open and its scale-out held."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .build import SECRETS, config_text, served

EXTRA = """
[[sources]]
name = "orders"
kind = "replay"
values = [20.0]
step = "60s"

[[sources]]
name = "db-health"
kind = "replay"
values = [1.0]
step = "60s"

[[actuators]]
name = "api-pool"
kind = "recording"
initial = 2

[[targets]]
name = "api"
actuator = "api-pool"
interval = "1h"
max = 50
metrics = { "db health" = "db-health" }
[[targets.track]]
metric = "orders"
type = "total"
target = 10
[[targets.breaker]]
name = "orders-db"
metric = "db health"
open_when = { below = 0.5 }
close_when = { above = 0.5, for = "1m" }

[[events]]
name = "health"
kind = "cloudevents"
secret_env = "SCALERD_TEST_APPS"
targets = ["api"]
metric = "db health"
value_field = "data.value"

[[events]]
name = "load"
kind = "cloudevents"
secret_env = "SCALERD_TEST_APPS"
targets = ["api"]
metric = "orders"
value_field = "data.value"
"""


def event(number: int, value: float) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "type": "com.example.reading",
            "source": "/orders",
            "id": f"reading-{number}",
            "data": {"value": value},
        }
    ).encode()


async def test_a_pushed_health_event_opens_the_breaker_and_holds_scale_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    headers = {"Content-Type": "application/cloudevents+json"}
    async with served(tmp_path, config_text(extra=EXTRA)) as running:
        # the first evaluation at start: healthy (the replay's 1.0), 20 waiting at 10 each
        await running.wait_for(lambda records: any(r.target == "api" for r in records))
        await running.settled()
        [first] = [r for r in running.records if r.target == "api"]
        assert (first.action, first.desired) == ("held", 2)

        assert (await running.post("health", event(1, 0), **headers)).status_code == 202
        await running.wait_for(lambda records: len(running.event_records("api")) == 1)
        await running.settled()
        assert (await running.post("load", event(2, 80), **headers)).status_code == 202
        await running.wait_for(lambda records: len(running.event_records("api")) == 2)
        await running.settled()

    opened, held = running.event_records("api")
    step = next(step for step in opened.steps if step["code"] == "breaker")
    assert step["detail"] == "breaker orders-db opened: db health 0 < 0.5; no scale-out to hold"
    (reading,) = [i for i in opened.inputs if i["metric"] == "db health"]
    assert reading["value"] == 0

    # the surge: 80 waiting wants 8 (6 after the default rate limit), held at 2
    assert (held.action, held.recommended, held.desired) == ("held", 8, 2)
    assert held.not_scaled_reason == "BreakerOpen"
    step = next(step for step in held.steps if step["code"] == "breaker")
    assert step["detail"].startswith("breaker orders-db open")
    assert step["detail"].endswith("; scale-out 2→6 held at 2")
