"""``kind = "prometheus"``: one number from a PromQL instant query.

The query must come back as exactly one number: a scalar, or an instant vector with one
series. An empty vector is *not* zero: it means the series is gone (a scrape target is
down, a label changed), and reading it as zero would scale a busy service in. So empty
results, several series (unless ``reduce`` says how to combine them), NaN and error
responses all fail the read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from ..clock import Clock
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig, secret_from_env

__all__ = ["PLUGIN", "PrometheusConfig", "PrometheusSource", "Reduce"]


class Reduce(StrEnum):
    """How to combine an instant vector of several series into one number."""

    SUM = "sum"
    MAX = "max"


class PrometheusConfig(SourceConfig):
    kind: Literal["prometheus"]
    # the server's base URL, e.g. "http://prometheus:9090" (the API path is appended)
    url: str
    # a PromQL expression evaluated now, e.g. 'sum(rate(http_requests_total[1m]))'
    query: str = Field(min_length=1)
    # how to combine several series; unset, several series fail the read
    reduce: Reduce | None = None
    # the environment variable holding a bearer token, if the server wants one
    token_env: str | None = Field(None, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")


class PrometheusSource:
    """Runs ``config.query`` against ``{url}/api/v1/query`` with an injected client."""

    def __init__(
        self, config: PrometheusConfig, client: httpx.AsyncClient, clock: Clock, token: str | None
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def read(self) -> Sequence[Sample]:
        body = await self._query()
        try:
            value = self._one_number(body["data"])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise SourceError(f"prometheus returned an unexpected body: {body!r:.200}") from error
        return (Sample(self._clock.now(), value),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    async def _query(self) -> dict[str, Any]:
        """The body of a successful response; anything else is a SourceError."""
        try:
            response = await self._client.get(
                f"{self._config.url}/api/v1/query",
                params={"query": self._config.query},
                headers=self._headers,
                timeout=self._config.timeout.total_seconds(),
            )
        except httpx.HTTPError as error:
            raise SourceError(f"prometheus query failed: {_describe(error)}") from error
        body = _json(response)
        if not response.is_success or body.get("status") != "success":
            detail = body.get("error") or response.reason_phrase
            raise SourceError(f"prometheus answered HTTP {response.status_code}: {detail}")
        return body

    def _one_number(self, data: dict[str, Any]) -> float:
        match data.get("resultType"):
            case "scalar":
                return _finite(data["result"][1], "the scalar")
            case "vector":
                return self._reduce(data["result"])
            case other:
                raise SourceError(
                    f"prometheus returned a {other} result; the query must be an instant "
                    "vector or a scalar (drop any [range] selector)"
                )

    def _reduce(self, series: list[dict[str, Any]]) -> float:
        if not series:
            raise SourceError("prometheus returned no series: the metric is absent, not zero")
        values = [_finite(item["value"][1], _labels(item["metric"])) for item in series]
        if len(values) == 1:
            return values[0]
        match self._config.reduce:
            case Reduce.SUM:
                return math.fsum(values)
            case Reduce.MAX:
                return max(values)
            case None:
                shown = ", ".join(_labels(item["metric"]) for item in series[:3])
                raise SourceError(
                    f"prometheus returned {len(series)} series ({shown}…); aggregate them in "
                    "the query or set reduce = 'sum' or 'max'"
                )


def build(config: PrometheusConfig, ctx: BuildContext) -> Source:
    if ctx.http is None:
        raise ValueError(f"prometheus source {config.name!r} needs the daemon's HTTP client")
    return PrometheusSource(
        config, ctx.http, ctx.clock, secret_from_env(config, config.token_env, "token_env")
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one (a proxy's HTML)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _finite(text: str, what: str) -> float:
    # Prometheus encodes sample values as strings, including "NaN", "+Inf" and "-Inf"
    value = float(text)
    if not math.isfinite(value):
        raise SourceError(f"prometheus returned {text} for {what}, not a number to scale on")
    return value


def _labels(metric: dict[str, str]) -> str:
    return "{" + ", ".join(f'{name}="{value}"' for name, value in sorted(metric.items())) + "}"


def _describe(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


PLUGIN = Plugin(
    kind="prometheus",
    config=PrometheusConfig,
    build=build,
    summary="a PromQL instant query that must return exactly one number",
)
