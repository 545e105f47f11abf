"""``kind = "http-json"``: a number plucked from any JSON endpoint.

Many services already publish their queue depth or in-flight count on a status endpoint.
This source GETs it and follows a simple path to one number: ``queue.depth``,
``items[0].count`` or ``[-1].value`` (keys separated by dots, list indexes in brackets,
negative ones counting from the end; a key that contains a dot cannot be addressed).
A missing key, a value that is not a number or an error status fails the read: a
status page that lost its field must not look like an idle service.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from ..clock import Clock
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig, secret_from_env

__all__ = ["PLUGIN", "HttpJsonConfig", "HttpJsonSource", "parse_path"]

_PATH = re.compile(r"(?:[^.\[\]]+|\[-?\d+\])(?:\.[^.\[\]]+|\[-?\d+\])*")
_STEP = re.compile(r"[^.\[\]]+|\[-?\d+\]")

PathStep = str | int


class HttpJsonConfig(SourceConfig):
    kind: Literal["http-json"]
    # the endpoint to GET
    url: str
    # where the number is in the response, e.g. "queue.depth" or "items[0].count"
    path: str
    # extra request headers (no secrets here: use token_env)
    headers: dict[str, str] = Field(default_factory=dict)
    # the environment variable holding a bearer token, if the endpoint wants one
    token_env: str | None = Field(None, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        parse_path(path)
        return path


def parse_path(text: str) -> tuple[PathStep, ...]:
    """``"items[0].count"`` → ``("items", 0, "count")``; ``ValueError`` if malformed."""
    if not _PATH.fullmatch(text):
        raise ValueError(
            f"invalid JSON path {text!r}: write keys separated by dots and list indexes in "
            "brackets, e.g. 'queue.depth' or 'items[0].count'"
        )
    return tuple(int(step[1:-1]) if step.startswith("[") else step for step in _STEP.findall(text))


class HttpJsonSource:
    """GETs ``config.url`` with an injected client and follows ``config.path``."""

    def __init__(
        self, config: HttpJsonConfig, client: httpx.AsyncClient, clock: Clock, token: str | None
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._steps = parse_path(config.path)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = {"Accept": "application/json", **config.headers, **auth}

    async def read(self) -> Sequence[Sample]:
        document = await self._fetch()
        return (Sample(self._clock.now(), self._number(document)),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    async def _fetch(self) -> Any:
        try:
            response = await self._client.get(
                self._config.url,
                headers=self._headers,
                timeout=self._config.timeout.total_seconds(),
            )
        except httpx.HTTPError as error:
            raise SourceError(f"GET {self._config.url} failed: {_describe(error)}") from error
        if not response.is_success:
            raise SourceError(
                f"GET {self._config.url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}"
            )
        try:
            return response.json()
        except ValueError as error:
            raise SourceError(f"GET {self._config.url} did not return JSON: {error}") from error

    def _number(self, document: Any) -> float:
        value = _pluck(document, self._steps)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SourceError(f"{self._config.path} is {value!r}, not a number")
        if not math.isfinite(value):
            raise SourceError(f"{self._config.path} is {value}, not a number to scale on")
        return float(value)


def build(config: HttpJsonConfig, ctx: BuildContext) -> Source:
    if ctx.http is None:
        raise ValueError(f"http-json source {config.name!r} needs the daemon's HTTP client")
    return HttpJsonSource(
        config, ctx.http, ctx.clock, secret_from_env(config, config.token_env, "token_env")
    )


def _pluck(document: Any, steps: tuple[PathStep, ...]) -> Any:
    """Follow ``steps`` into ``document``; say where the path left the document if it did."""
    node, walked = document, "$"
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise SourceError(f"{walked} has no item [{step}]: it is {_shape(node)}")
            walked += f"[{step}]"
        else:
            if not isinstance(node, dict) or step not in node:
                raise SourceError(f"{walked} has no key {step!r}: it is {_shape(node)}")
            walked += f".{step}"
        node = node[step]
    return node


def _shape(node: Any) -> str:
    """A short description of a JSON value, for errors (never the whole document)."""
    if isinstance(node, dict):
        return f"an object with keys {', '.join(sorted(node)[:5]) or '(none)'}"
    if isinstance(node, list):
        return f"a list of {len(node)}"
    return f"{node!r:.40}"


def _describe(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


PLUGIN = Plugin(
    kind="http-json",
    config=HttpJsonConfig,
    build=build,
    summary="GETs a JSON endpoint and reads the number at a path such as 'queue.depth'",
)
