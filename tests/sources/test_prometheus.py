"""The prometheus source against ``httpx.MockTransport`` answering in Prometheus's format.

Response bodies follow the HTTP API's documented shapes (``/api/v1/query``): a vector is
a list of ``{"metric": {...}, "value": [<unix time>, "<value as text>"]}``.
"""

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
from scalerd.sources.prometheus import PLUGIN, PrometheusConfig

MockHttp = Callable[[Callable[[httpx.Request], httpx.Response]], httpx.AsyncClient]
QUERY = 'sum(rate(http_requests_total{job="api"}[1m]))'


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1767600000.0, value]}


def vector(*items: dict[str, Any]) -> httpx.Response:
    data = {"resultType": "vector", "result": list(items)}
    return httpx.Response(200, json={"status": "success", "data": data})


def prometheus(
    mock_http: MockHttp, clock: ManualClock, response: httpx.Response, **keys: Any
) -> tuple[Source, list[httpx.Request]]:
    """A source whose server answers ``response``; the list collects the requests made."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return response

    config = PrometheusConfig(
        kind="prometheus", name="rps", url="http://prometheus:9090/", query=QUERY, **keys
    )
    ctx = BuildContext(clock=clock, http=mock_http(answer))
    return PLUGIN.build(config, ctx), requests


async def test_one_series_is_the_sample(mock_http: MockHttp, manual_clock: ManualClock) -> None:
    source, requests = prometheus(mock_http, manual_clock, vector(series("12.5", job="api")))

    assert await source.read() == (Sample(manual_clock.now(), 12.5),)
    (request,) = requests
    assert request.url.path == "/api/v1/query"
    assert request.url.params["query"] == QUERY
    assert "authorization" not in request.headers


async def test_a_scalar_is_the_sample(mock_http: MockHttp, manual_clock: ManualClock) -> None:
    data = {"resultType": "scalar", "result": [1767600000.0, "42"]}
    response = httpx.Response(200, json={"status": "success", "data": data})
    source, _ = prometheus(mock_http, manual_clock, response)

    assert [s.value for s in await source.read()] == [42]


async def test_sends_the_bearer_token_from_the_environment(
    mock_http: MockHttp, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    source, requests = prometheus(
        mock_http, manual_clock, vector(series("1")), token_env="PROM_TOKEN"
    )

    await source.read()

    assert requests[0].headers["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [pytest.param("sum", 3 + 4 + 5, id="sum"), pytest.param("max", 5, id="max")],
)
async def test_reduce_combines_several_series(
    mock_http: MockHttp, manual_clock: ManualClock, reduce: str, expected: float
) -> None:
    response = vector(series("3", pod="a"), series("4", pod="b"), series("5", pod="c"))
    source, _ = prometheus(mock_http, manual_clock, response, reduce=reduce)

    assert [s.value for s in await source.read()] == [expected]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        pytest.param(vector(), "no series: the metric is absent, not zero", id="empty"),
        pytest.param(
            vector(series("3", pod="a"), series("4", pod="b")),
            r'2 series \({pod="a"}, {pod="b"}…\); .* set reduce',
            id="several series",
        ),
        pytest.param(vector(series("NaN")), "returned NaN for {}", id="NaN"),
        pytest.param(vector(series("+Inf", pod="a")), r'\+Inf for {pod="a"}', id="infinite"),
        pytest.param(
            httpx.Response(
                400,
                json={"status": "error", "errorType": "bad_data", "error": "parse error at char 5"},
            ),
            "HTTP 400: parse error at char 5",
            id="bad query",
        ),
        pytest.param(
            httpx.Response(503, text="<html>upstream down</html>"),
            "HTTP 503: Service Unavailable",
            id="proxy error page",
        ),
        pytest.param(
            httpx.Response(200, json={"status": "error", "error": "query timed out"}),
            "HTTP 200: query timed out",
            id="error status",
        ),
        pytest.param(
            httpx.Response(
                200,
                json={"status": "success", "data": {"resultType": "matrix", "result": []}},
            ),
            r"a matrix result; .* \(drop any \[range\] selector\)",
            id="range vector",
        ),
        pytest.param(
            httpx.Response(200, json={"status": "success"}),
            "unexpected body",
            id="no data",
        ),
    ],
)
async def test_anything_but_one_number_fails(
    mock_http: MockHttp, manual_clock: ManualClock, response: httpx.Response, message: str
) -> None:
    source, _ = prometheus(mock_http, manual_clock, response)

    with pytest.raises(SourceError, match=message):
        await source.read()


async def test_an_unreachable_server_is_a_source_error(
    mock_http: MockHttp, manual_clock: ManualClock
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    config = PrometheusConfig(kind="prometheus", name="rps", url="http://prom:9090", query="up")
    source = PLUGIN.build(config, BuildContext(clock=manual_clock, http=mock_http(refuse)))

    with pytest.raises(SourceError, match="ConnectError: connection refused"):
        await source.read()


def test_build_without_an_http_client_fails() -> None:
    config = PrometheusConfig(kind="prometheus", name="rps", url="http://prom:9090", query="up")

    with pytest.raises(ValueError, match="needs the daemon's HTTP client"):
        PLUGIN.build(config, BuildContext())


def test_build_with_an_unset_token_variable_fails(
    mock_http: MockHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    config = PrometheusConfig(
        kind="prometheus", name="rps", url="http://prom:9090", query="up", token_env="PROM_TOKEN"
    )
    client = mock_http(lambda request: httpx.Response(500))

    with pytest.raises(ValueError, match=r"PROM_TOKEN \(token_env\) is not set"):
        PLUGIN.build(config, BuildContext(http=client))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"url": "prom:9090"}, "must start with http", id="no scheme"),
        pytest.param({"query": ""}, "at least 1 character", id="empty query"),
        pytest.param({"reduce": "avg"}, "'sum' or 'max'", id="unknown reduce"),
    ],
)
def test_config_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PrometheusConfig(
            **{"kind": "prometheus", "name": "rps", "url": "http://p:9090", "query": "up", **keys}
        )
