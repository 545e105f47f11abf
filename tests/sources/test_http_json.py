"""The http-json source against ``httpx.MockTransport``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from scalerd.clock import ManualClock
from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import BuildContext, Source
from scalerd.sources.http_json import PLUGIN, HttpJsonConfig, parse_path

MockHttp = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]
URL = "http://status.internal/queues"
STATUS = {"queue": {"depth": 17, "name": "orders"}, "items": [{"count": 3}, {"count": 9.5}]}


def http_json(
    mock_http: MockHttp, clock: ManualClock, response: httpx.Response, path: str, **keys: Any
) -> tuple[Source, list[httpx.Request]]:
    """A source whose endpoint answers ``response``; the list collects the requests made."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return response

    config = HttpJsonConfig(kind="http-json", name="depth", url=URL, path=path, **keys)
    return PLUGIN.build(config, BuildContext(clock=clock, http=mock_http(answer))), requests


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("queue.depth", 17, id="nested key"),
        pytest.param("items[1].count", 9.5, id="list index"),
        pytest.param("items[-1].count", 9.5, id="from the end"),
    ],
)
async def test_plucks_the_number_at_the_path(
    mock_http: MockHttp, manual_clock: ManualClock, path: str, expected: float
) -> None:
    source, _ = http_json(mock_http, manual_clock, httpx.Response(200, json=STATUS), path)

    assert await source.read() == (Sample(manual_clock.now(), expected),)


async def test_a_top_level_list_is_indexed_first(
    mock_http: MockHttp, manual_clock: ManualClock
) -> None:
    response = httpx.Response(200, json=[{"value": 1}, {"value": 2}])
    source, _ = http_json(mock_http, manual_clock, response, "[1].value")

    assert [s.value for s in await source.read()] == [2]


async def test_sends_configured_headers_and_the_bearer_token(
    mock_http: MockHttp, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUS_TOKEN", "s3cret")
    source, requests = http_json(
        mock_http,
        manual_clock,
        httpx.Response(200, json=STATUS),
        "queue.depth",
        headers={"X-Tenant": "blue"},
        token_env="STATUS_TOKEN",
    )

    await source.read()

    (request,) = requests
    assert (request.method, str(request.url)) == ("GET", URL)
    assert request.headers["x-tenant"] == "blue"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    ("response", "path", "message"),
    [
        pytest.param(
            httpx.Response(200, json=STATUS),
            "queue.size",
            r"\$\.queue has no key 'size': it is an object with keys depth, name",
            id="missing key",
        ),
        pytest.param(
            httpx.Response(200, json=STATUS),
            "items[2].count",
            r"\$\.items has no item \[2\]: it is a list of 2",
            id="index out of range",
        ),
        pytest.param(
            httpx.Response(200, json=STATUS),
            "queue[0]",
            r"\$\.queue has no item \[0\]: it is an object",
            id="index into an object",
        ),
        pytest.param(
            httpx.Response(200, json=STATUS),
            "queue.name",
            "queue.name is 'orders', not a number",
            id="text",
        ),
        pytest.param(
            httpx.Response(200, json={"ok": True}), "ok", "ok is True, not a number", id="boolean"
        ),
        pytest.param(
            httpx.Response(200, json={"depth": None}), "depth", "depth is None", id="null"
        ),
        pytest.param(
            httpx.Response(200, content=b'{"depth": NaN}'),
            "depth",
            "depth is nan, not a number to scale on",
            id="NaN",
        ),
        pytest.param(
            httpx.Response(200, text="<html>maintenance</html>"),
            "depth",
            f"GET {URL} did not return JSON",
            id="not JSON",
        ),
        pytest.param(
            httpx.Response(404, json={"depth": 0}),
            "depth",
            f"GET {URL} answered HTTP 404 Not Found",
            id="non-2xx",
        ),
    ],
)
async def test_anything_but_a_number_at_the_path_fails(
    mock_http: MockHttp,
    manual_clock: ManualClock,
    response: httpx.Response,
    path: str,
    message: str,
) -> None:
    source, _ = http_json(mock_http, manual_clock, response, path)

    with pytest.raises(SourceError, match=message):
        await source.read()


async def test_an_unreachable_endpoint_is_a_source_error(
    mock_http: MockHttp, manual_clock: ManualClock
) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    config = HttpJsonConfig(kind="http-json", name="depth", url=URL, path="depth")
    source = PLUGIN.build(config, BuildContext(clock=manual_clock, http=mock_http(time_out)))

    with pytest.raises(SourceError, match=f"GET {URL} failed: ReadTimeout: timed out"):
        await source.read()


def test_build_without_an_http_client_fails() -> None:
    config = HttpJsonConfig(kind="http-json", name="depth", url=URL, path="depth")

    with pytest.raises(ValueError, match="needs the daemon's HTTP client"):
        PLUGIN.build(config, BuildContext())


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        pytest.param("depth", ("depth",), id="key"),
        pytest.param("queue.depth", ("queue", "depth"), id="keys"),
        pytest.param("items[0].count", ("items", 0, "count"), id="index"),
        pytest.param("[-1][2]", (-1, 2), id="indexes only"),
        pytest.param("stats.queue-depth_1", ("stats", "queue-depth_1"), id="punctuation"),
    ],
)
def test_parse_path(text: str, steps: tuple[str | int, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"path": ""}, "invalid JSON path ''", id="empty path"),
        pytest.param({"path": "queue..depth"}, "invalid JSON path", id="empty key"),
        pytest.param({"path": "items[x]"}, "invalid JSON path", id="non-numeric index"),
        pytest.param({"path": ".depth"}, "invalid JSON path", id="leading dot"),
        pytest.param({"url": "status.internal"}, "must start with http", id="no scheme"),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpJsonConfig(**{"kind": "http-json", "name": "depth", "url": URL, "path": "d", **keys})
