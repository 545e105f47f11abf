"""``POST /events/{name}`` (and ``OPTIONS`` for the CloudEvents handshake), per DESIGN.md §4.

The secret is accepted as ``?code=`` (all an Azure Monitor action group can send) or the
``X-Scalerd-Secret`` header, compared in constant time; a wrong or missing one is 401,
counted in ``/metrics`` and logged without its value. Accepted events are 202; a malformed
one is 400 with the reason; nothing here answers 5xx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from .base import EventRejected, EventRequest
from .hub import EventHub

__all__ = ["MAX_BODY", "add_event_routes"]

log = structlog.get_logger("scalerd")

# the largest body read: Event Grid batches are at most 1 MB, an alert is a few KB
MAX_BODY = 1024 * 1024

HUB: web.AppKey[Callable[[], EventHub | None]] = web.AppKey("event-hub")
LOCAL: web.AppKey[bool] = web.AppKey("event-endpoints-local")


def add_event_routes(
    app: web.Application, hub: Callable[[], EventHub | None], *, listens_locally: bool
) -> None:
    """Serve the endpoints of whichever hub ``hub()`` returns (a reload replaces it)."""
    app[HUB] = hub
    app[LOCAL] = listens_locally
    app.router.add_route("POST", "/events/{name}", _receive)
    app.router.add_route("OPTIONS", "/events/{name}", _receive)


def _problem(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _receive(request: web.Request) -> web.Response:
    hub = request.app[HUB]()
    name = request.match_info["name"]
    endpoint = hub.http_endpoint(name) if hub is not None else None
    if hub is None or endpoint is None:
        return _problem(404, f"no [[events]] endpoint named {name[:60]!r}")
    if endpoint.secret is None:
        if not request.app[LOCAL]:
            hub.requests.labels(name, "unauthorized").inc()
            return _problem(
                403, "event endpoints need secret_env when scalerd listens beyond localhost"
            )
    elif not endpoint.authorized(
        (request.query.get("code"), request.headers.get("X-Scalerd-Secret"))
    ):
        hub.requests.labels(name, "unauthorized").inc()
        log.warning("event refused: missing or wrong secret", endpoint=name, remote=request.remote)
        return _problem(401, "a valid secret is required (?code= or the X-Scalerd-Secret header)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        hub.requests.labels(name, "rejected").inc()
        return _problem(413, f"the body is larger than {MAX_BODY} bytes")
    body = await _read_body(request)
    if body is None:
        hub.requests.labels(name, "rejected").inc()
        return _problem(413, f"the body is larger than {MAX_BODY} bytes, or could not be read")
    try:
        parsed = endpoint.receiver.parse(EventRequest(request.method, request.headers, body))
    except EventRejected as problem:
        hub.requests.labels(name, "rejected").inc()
        return _problem(400, str(problem))
    except Exception as problem:  # a parser bug must still not become a 500
        hub.requests.labels(name, "rejected").inc()
        log.exception("event parser failed", endpoint=name)
        return _problem(400, f"the event could not be parsed ({type(problem).__name__})")
    if parsed.reply is not None:
        hub.requests.labels(name, "handshake").inc()
        if parsed.validation_url is not None:
            hub.confirm_later(parsed.validation_url, name)
        reply = parsed.reply
        if reply.body is None:
            return web.Response(status=reply.status, headers=dict(reply.headers))
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))
    targets = hub.deliver(endpoint, parsed.events)
    hub.requests.labels(name, "accepted").inc()
    answer: dict[str, Any] = {"accepted": len(parsed.events), "targets": targets}
    return web.json_response(answer, status=202)


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None past MAX_BODY (a chunked body has no Content-Length to check)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(65536):
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
    except Exception:  # a client that hung up, or a broken chunked encoding
        return None
    return b"".join(chunks)
