"""``kind = "rabbitmq"``: queue depth or message rates from RabbitMQ's management HTTP API.

KEDA's RabbitMQ scaler in its two modes, read the way its HTTP protocol does:
``GET /api/queues/{vhost}/{queue}`` for each queue, summed (or the largest):

* ``queue_length`` — ``messages``: ready plus delivered and not yet acknowledged, the
  work still to finish (KEDA's ``QueueLength``); ``ready`` and ``unacked`` split it;
* ``publish_rate`` — messages published per second (KEDA's ``MessageRate``), and
  ``deliver_rate`` — delivered per second, from the broker's ``message_stats``.

A queue that does not exist fails the read (it is never zero), and so does any answer but
200. A queue that has had no traffic yet has no ``message_stats``: its rates are 0, which
is what they are. The password comes from the environment variable ``password_env`` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, field_validator

from ..clock import Clock
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig, secret_from_env

__all__ = ["PLUGIN", "RabbitMQConfig", "RabbitMQSource"]

Measure = Literal["queue_length", "ready", "unacked", "publish_rate", "deliver_rate"]

_COUNTS = {
    "queue_length": "messages",
    "ready": "messages_ready",
    "unacked": "messages_unacknowledged",
}
_RATES = {"publish_rate": "publish_details", "deliver_rate": "deliver_get_details"}


class RabbitMQConfig(SourceConfig):
    kind: Literal["rabbitmq"]
    # the management API's base URL, e.g. "http://rabbitmq:15672"
    url: str
    # the virtual host of the queues
    vhost: str = "/"
    # the queues to read, summed (or the largest, with combine = "max")
    queues: tuple[str, ...] = Field(min_length=1)
    # what to read of each queue: queue_length, ready, unacked, publish_rate, deliver_rate
    measure: Measure = "queue_length"
    # how several queues make one number
    combine: Literal["sum", "max"] = "sum"
    # the management user (a monitoring tag is enough)
    username: str = Field("guest", min_length=1)
    # the environment variable holding that user's password
    password_env: str | None = Field(None, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("do not put credentials in the URL: set username and password_env")
        return url.rstrip("/")


class RabbitMQSource:
    """Reads ``config.queues`` through the management API with an injected client."""

    def __init__(
        self, config: RabbitMQConfig, client: httpx.AsyncClient, clock: Clock, password: str
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._auth = httpx.BasicAuth(config.username, password)

    async def read(self) -> Sequence[Sample]:
        values = [self._measure(queue, await self._queue(queue)) for queue in self._config.queues]
        value = sum(values) if self._config.combine == "sum" else max(values)
        return (Sample(self._clock.now(), float(value)),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    async def _queue(self, queue: str) -> dict[str, Any]:
        vhost = quote(self._config.vhost, safe="")
        try:
            response = await self._client.get(
                f"{self._config.url}/api/queues/{vhost}/{quote(queue, safe='')}",
                auth=self._auth,
                timeout=self._config.timeout.total_seconds(),
            )
        except httpx.HTTPError as error:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            raise SourceError(f"rabbitmq management API unreachable: {detail}") from error
        if response.status_code == 404:
            raise SourceError(
                f"rabbitmq has no queue {queue!r} in vhost {self._config.vhost!r} (absent, not empty)"
            )
        if response.status_code == 401:
            raise SourceError(f"rabbitmq refused user {self._config.username!r}: wrong password?")
        if not response.is_success:
            raise SourceError(f"rabbitmq answered HTTP {response.status_code} for queue {queue!r}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SourceError(f"rabbitmq returned an unexpected body for queue {queue!r}")
        return body

    def _measure(self, queue: str, body: dict[str, Any]) -> float:
        measure = self._config.measure
        if measure in _COUNTS:
            value = body.get(_COUNTS[measure])
        else:
            stats = body.get("message_stats") or {}
            details = stats.get(_RATES[measure]) or {"rate": 0.0}
            value = details.get("rate")
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            # a queue the broker has not counted yet (just declared) has no numbers either
            raise SourceError(f"rabbitmq gave no {measure} for queue {queue!r} yet")
        return float(value)


def build(config: RabbitMQConfig, ctx: BuildContext) -> Source:
    if ctx.http is None:
        raise ValueError(f"rabbitmq source {config.name!r} needs the daemon's HTTP client")
    password = secret_from_env(config, config.password_env, "password_env")
    return RabbitMQSource(config, ctx.http, ctx.clock, password or "guest")


PLUGIN = Plugin(
    kind="rabbitmq",
    config=RabbitMQConfig,
    build=build,
    summary="queue depth or publish/deliver rates from RabbitMQ's management API",
)
