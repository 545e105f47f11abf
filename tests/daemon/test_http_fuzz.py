"""A seeded fuzzer over the HTTP API: thousands of malformed, deep, huge, mistyped and
misdirected requests; not one 5xx, and the daemon still evaluating afterwards."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from scalerd.daemon.app import Daemon

from .build import replay_target, write_config

REQUESTS = 2400
SEED = 20261201

_DURATIONS = [
    "30m",
    "0s",
    "-5m",
    "999999999d",
    "P99999999D",
    "9" * 30 + "s",
    "9" * 400 + "h",
    "PT",
    "P",
    "1y",
    "",
    " ",
    "1e309s",
    "NaN",
    "inf",
    "1h30",
    "\u0661\u0662m",
    "5m" * 2000,
]
_NUMBERS: list[Any] = [
    0,
    1,
    -1,
    3,
    2**63,
    -(2**63),
    10**400,
    1e308,
    -0.0,
    0.5,
    True,
    False,
    None,
]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice(_NUMBERS)
    if kind == 1:
        return rng.choice(_DURATIONS)
    if kind == 2:
        return rng.choice(["all", "scale_in", "scale_out", "ALL", "none", None, ""])
    if kind == 3:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


_KEYS = ["pause", "pause_for", "override", "override_for", "limit", "x", "__proto__", ""]


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:  # deep nesting: a RecursionError in a naive parser
        depth = rng.choice([100, 5000, 50_000])
        return b"[" * depth + b"]" * depth
    if kind == 1:
        return b'{"pause": ' * 2000 + b"1" + b"}" * 2000
    if kind == 2:  # not JSON, or not UTF-8
        return rng.choice([b"{", b"nul", b"\xff\xfe\x00", b'{"pause": "all",}', b"", b"[]"])
    if kind == 3:  # a number too large for anything
        return b'{"override": ' + b"9" * rng.choice([20, 400, 5000]) + b"}"
    if kind == 4:
        return b'{"override": 1e999, "override_for": "1h"}'
    if kind == 5:  # too large a body
        return b'{"x": "' + b"a" * 100_000 + b'"}'
    body = {key: _value(rng) for key in rng.sample(_KEYS, rng.randrange(1, 4))}
    if rng.random() < 0.5:
        body = {
            rng.choice(["pause", "override"]): rng.choice(["all", 3, "scale_in", 10**6]),
            rng.choice(["pause_for", "override_for"]): rng.choice(_DURATIONS),
        }
    return json.dumps(body).encode()


def _request(rng: random.Random, decision_id: str) -> tuple[str, str, dict[str, str], bytes]:
    """Half the requests are control bodies for the real target; the rest read pages and
    the API with bad queries, name unknown targets, or use the wrong method."""
    name = rng.choice(["nope", "", "%00", "a" * 3000, "ä/..", "..%2F..", "api?x", "API"])
    params: dict[str, str] = {}
    roll = rng.random()
    if roll < 0.5:
        method, path = "POST", f"/api/targets/{rng.choice(['api'] * 9 + [name])}/controls"
    elif roll < 0.55:
        method, path = "POST", f"/api/targets/{rng.choice(['api', name])}/evaluate"
    elif roll < 0.8:
        method = "GET"
        path = rng.choice(
            [
                *("/", "/api/decisions", "/api/targets", "/readyz", "/metrics", "/api/cluster"),
                *(f"/targets/{name}", "/targets/api", f"/decisions/{decision_id}"),
                f"/decisions/{name}",
            ]
        )
        params["limit"] = str(rng.choice([1, 0, -3, 1001, 10**30, "x", "", "1e3", "5"]))
        if rng.random() < 0.5:
            params["target"] = rng.choice(["api", "nope", "", "a" * 500])
        if rng.random() < 0.3:
            params["since"] = rng.choice(_DURATIONS[:8])
    else:  # wrong methods and unknown paths
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "HEAD", "POST"])
        path = rng.choice(["/api/targets/api/controls", "/healthz", f"/{name}", "/api/targets/api"])
    headers = {"Content-Type": rng.choice(["application/json", "text/plain", "x/y"])}
    return method, path, params | headers, _body(rng) if method != "GET" else b""


async def test_thousands_of_bad_requests_get_no_5xx_and_the_daemon_keeps_evaluating(
    tmp_path: Path,
) -> None:
    body = replay_target((30, 60, 90, 60), step="2s", interval="200ms", maximum=20)
    rng = random.Random(SEED)
    async with Daemon(write_config(tmp_path, body)) as daemon:
        task = asyncio.create_task(daemon.serve())
        while daemon.listening_on is None:
            await asyncio.sleep(0.01)
        host, port = daemon.listening_on
        statuses: Counter[int] = Counter()
        server_errors: list[str] = []
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", timeout=10, limits=limits
        ) as http:
            while not daemon.runtimes["api"].last_record:
                await asyncio.sleep(0.02)
            decision_id = daemon.runtimes["api"].last_record.id  # type: ignore[union-attr]

            async def one() -> None:
                method, path, mixed, content = _request(rng, decision_id)
                params = {k: v for k, v in mixed.items() if k in ("limit", "target", "since")}
                headers = {k: v for k, v in mixed.items() if k not in params}
                response = await http.request(
                    method, path, params=params, headers=headers, content=content
                )
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(f"{method} {path[:80]} {content[:80]!r}")

            for start in range(0, REQUESTS, 8):
                await asyncio.gather(*(one() for _ in range(min(8, REQUESTS - start))))
            before = len(daemon.recent.recent())
            await asyncio.sleep(1.0)
            after = len(daemon.recent.recent())
            alive = await http.get("/readyz")
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert sum(statuses.values()) == REQUESTS
    assert server_errors == [], server_errors[:10]
    assert statuses[400] > 600 and statuses[404] > 100  # the bad ones were refused, with reasons
    assert after > before  # still evaluating
    assert alive.status_code == 200
