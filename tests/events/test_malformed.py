"""Malformed events, generated from the real payloads (a seeded generator, so a failure
replays): wrong schema, missing or mistyped fields, truncated, huge or non-UTF-8 bodies,
wrong or missing secrets. Every one gets a 4xx with a reason, never a 5xx, and evaluates
nothing; no secret appears in the log."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .build import SECRET, SECRETS, WIRE, config_text, served

CASES = 1200
CE = {"Content-Type": "application/cloudevents+json"}

# (endpoint, sample, extra headers, key paths that must be present)
SAMPLES: list[tuple[str, str, dict[str, str], list[tuple[Any, ...]]]] = [
    (
        "alerts",
        "azuremonitor_commonschema_metric_static_fired.json",
        {},
        [
            ("schemaId",),
            ("data",),
            ("data", "essentials"),
            ("data", "essentials", "monitorCondition"),
            ("data", "essentials", "alertId"),
            ("data", "essentials", "alertRule"),
            ("data", "essentials", "signalType"),
            ("data", "alertContext"),
        ],
    ),
    (
        "alerts",
        "azuremonitor_legacy_metric_alert_static.json",
        {},
        [("schemaId",), ("data", "status"), ("data", "context"), ("data", "context", "id")],
    ),
    (
        "grid",
        "eventgrid_servicebus_active_no_listeners_egschema.json",
        {},
        [(0, "id"), (0, "eventType"), (0, "eventTime"), (0, "subject")],
    ),
    (
        "grid",
        "eventgrid_storage_blob_created_ceschema.json",
        {},
        [(0, "id"), (0, "source"), (0, "type"), (0, "specversion")],
    ),
    (
        "grid",
        "eventgrid_subscription_validation_event_egschema.json",
        {},
        [(0, "data", "validationCode")],
    ),
    (
        "apps",
        "cloudevents_structured_json_object_data.json",
        CE,
        [("specversion",), ("id",), ("source",), ("type",)],
    ),
]
WRONG_VALUES: list[Any] = [None, 0, 12.5, True, [], {}, ""]


def _drop(document: Any, path: tuple[Any, ...]) -> Any:
    broken = copy.deepcopy(document)
    parent = broken
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return broken


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    broken = copy.deepcopy(document)
    parent = broken
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return broken


def _cases(rng: random.Random) -> Iterator[tuple[str, str, dict[str, str], bytes, str]]:
    """(what, endpoint, headers, body, secret) — all of them malformed or unauthorized."""
    loaded = [(e, json.loads((WIRE / f).read_text()), h, p) for e, f, h, p in SAMPLES]
    others = {"alerts": "grid", "grid": "apps", "apps": "alerts"}
    while True:
        endpoint, document, headers, paths = rng.choice(loaded)
        body = json.dumps(document).encode()
        choice = rng.randrange(9)
        if choice == 0:
            yield (
                "missing field",
                endpoint,
                headers,
                json.dumps(_drop(document, rng.choice(paths))).encode(),
                SECRET,
            )
        elif choice == 1:
            path = rng.choice(paths)
            value = rng.choice(WRONG_VALUES)
            if path[-1] == "specversion":
                value = rng.choice([*WRONG_VALUES, "0.3", "2.0"])
            if path[-1] == "subject":  # any string is a subject, the empty one too
                value = rng.choice([None, 0, [], {}])
            yield (
                "mistyped field",
                endpoint,
                headers,
                json.dumps(_set(document, path, value)).encode(),
                SECRET,
            )
        elif choice == 2:
            yield "truncated", endpoint, headers, body[: rng.randrange(0, len(body) - 1)], SECRET
        elif choice == 3:
            size = rng.choice([1024 * 1024 + 1, 3 * 1024 * 1024])
            yield "huge", endpoint, headers, b'{"pad": "' + b"x" * size + b'"}', SECRET
        elif choice == 4:
            yield (
                "wrong secret",
                endpoint,
                headers,
                body,
                SECRET + rng.choice(["x", "", "!"])[:1] + "z",
            )
        elif choice == 5:
            yield "no secret", endpoint, headers, body, ""
        elif choice == 6:
            target = others[endpoint]
            yield "wrong schema", target, CE if target == "apps" else {}, body, SECRET
        elif choice == 7:
            yield (
                "not utf-8 / not json",
                endpoint,
                headers,
                rng.randbytes(rng.randrange(1, 300)) + b"\xff",
                SECRET,
            )
        else:
            yield (
                "wrong shape",
                endpoint,
                headers,
                json.dumps(rng.choice([[], [1, 2], "text", 42, None, [[]], {"data": []}])).encode(),
                SECRET,
            )


async def test_generated_malformed_events_get_a_4xx_with_a_reason_never_a_5xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    rng = random.Random(20261201)
    cases = list(zip(range(CASES), _cases(rng), strict=False))
    async with served(tmp_path, config_text()) as running:
        before = len(running.records)
        seen: dict[str, set[int]] = {}
        async with aiohttp.ClientSession(running.url) as session:

            async def send(batch: list[Any]) -> None:
                for _, (what, endpoint, headers, body, secret) in batch:
                    sent = {**headers, **({"X-Scalerd-Secret": secret} if secret else {})}
                    async with session.post(
                        f"/events/{endpoint}", data=io.BytesIO(body), headers=sent
                    ) as r:
                        answer = await r.json()
                        reason = answer.get("error")
                        assert 400 <= r.status < 500, (what, endpoint, r.status, body[:300])
                        assert reason, (what, endpoint, r.status, answer)
                        seen.setdefault(what, set()).add(r.status)

            await asyncio.gather(*(send(cases[i::8]) for i in range(8)))
        await running.settled()
        assert len(running.records) == before  # nothing malformed was evaluated
        assert seen["wrong secret"] == seen["no secret"] == {401}
        assert seen["huge"] == {413}
        assert len(seen) == 9
        metrics = (await running.http.get("/metrics")).text
    refused = {
        sample.labels["endpoint"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "scalerd_event_requests_total"
        and sample.labels["outcome"] == "unauthorized"
    }
    wrong = sum(1 for _, case in cases if case[0] in ("wrong secret", "no secret"))
    assert sum(refused.values()) == wrong
    log = capsys.readouterr().out
    assert "event refused: missing or wrong secret" in log
    assert SECRET not in log
