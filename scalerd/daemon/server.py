"""The daemon's HTTP face (aiohttp): health, readiness, Prometheus metrics, and a small JSON
API for on-call and for pushed events.

=============================================  ==============================================
``GET /``, ``/targets/{name}``, ``/decisions/{id}``  the on-call page (:mod:`scalerd.web`)
``GET /healthz``                               the process is alive
``GET /readyz``                                config loaded, every target evaluated recently,
                                               the last reload's outcome (503 and why, if not)
``GET /metrics``                               Prometheus text format
``GET /api/targets``                           each target, its rules in words, its last record
``GET /api/decisions?target=&limit=``          recent audit records, newest last
``GET /api/cluster``                           replicas, shard leases, who evaluates what
``POST /api/targets/{name}/evaluate``          evaluate now (a pushed event)
``POST /api/targets/{name}/controls``          pause / override, each with an optional expiry
=============================================  ==============================================

Bad input gets a 4xx with a reason, never a 500 and never a crash. The control endpoints
change what is scaled, so off localhost they need a bearer token (``control_token_env``,
sent as ``Authorization: Bearer <token>``); with ``protect_reads`` (the default) so do the
page and ``/api/*``, since decisions name the resources scaled. ``/healthz``, ``/readyz``
and ``/metrics`` stay open for probes and Prometheus; ``/events/*`` have their own secret.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from ..core import Controls, parse_duration
from ..errors import LeaseLost
from ..summary import describe_target
from ..web import add_page_routes
from .outage import describe_unavailable
from .page import DaemonPageData

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["build_app"]

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")
MAX_LIMIT = 1000


# the shortest control token accepted (a shorter one is guessable)
MIN_CONTROL_TOKEN = 16
# no control needs more: a larger body is refused before it is parsed (the app keeps
# aiohttp's 1 MiB for everything else: an Event Grid batch may be that large)
MAX_BODY = 64 * 1024
# the largest capacity an override may ask for (the config's own bound on capacities)
MAX_OVERRIDE = 100_000
# paths anyone who can reach the port may read, whatever `protect_reads` says
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@web.middleware
async def _reads_need_token(request: web.Request, handler: Any) -> web.StreamResponse:
    daemon = request.app[DAEMON]
    guarded = (
        daemon.config.daemon.protect_reads
        and not daemon.listens_locally
        and request.path not in _OPEN_PATHS
        and not request.path.startswith("/events/")
    )
    if guarded:
        refusal = _authorize(request)
        if refusal is not None:
            return refusal
    response: web.StreamResponse = await handler(request)
    return response


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[_reads_need_token])
    app[DAEMON] = daemon
    app.add_routes(
        [
            web.get("/healthz", _healthz),
            web.get("/readyz", _readyz),
            web.get("/metrics", _metrics),
            web.get("/api/targets", _targets),
            web.get("/api/decisions", _decisions),
            web.get("/api/cluster", _cluster),
            web.post("/api/targets/{name}/evaluate", _evaluate),
            web.post("/api/targets/{name}/controls", _controls),
        ]
    )
    add_page_routes(app, DaemonPageData(daemon))
    for add_routes in daemon.route_hooks:  # areas that serve their own routes (events)
        add_routes(app)
    return app


def _problem(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    readiness = request.app[DAEMON].readiness()
    return web.json_response(readiness, status=200 if readiness["ready"] else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[DAEMON].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _targets(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    targets = []
    for runtime in daemon.runtimes.values():
        last = runtime.last_record
        targets.append(
            {
                "name": runtime.name,
                "actuator": {
                    "kind": runtime.target.actuator.kind,
                    "name": runtime.target.actuator.name,
                },
                "interval_s": runtime.target.spec.rule.interval.total_seconds(),
                "rules": list(describe_target(runtime.target)),
                "controls": _controls_json(runtime.stored.state.controls),
                "last": last.as_dict() if last is not None else None,
            }
        )
    return web.json_response(
        {"config_version": daemon.config.version, "targets": targets}, dumps=_dumps
    )


async def _decisions(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    target = request.query.get("target")
    if target is not None and target not in daemon.runtimes:
        return _problem(404, f"no target named {target!r}")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        return _problem(400, "limit must be a whole number")
    if not 1 <= limit <= MAX_LIMIT:
        return _problem(400, f"limit must be between 1 and {MAX_LIMIT}")
    records, notice = await daemon.read_decisions(target=target, limit=limit)
    since = daemon.audit_read_outage.since
    return web.json_response(
        {
            "decisions": [record.as_dict() for record in records],
            # while the audit stream cannot be read: since when, and what is shown instead
            "audit_unreachable_since": since.isoformat() if since is not None else None,
            "notice": notice,
        },
        dumps=_dumps,
    )


async def _cluster(request: web.Request) -> web.Response:
    """The cluster as this replica last saw it (no Redis call: it answers in an outage)."""
    daemon = request.app[DAEMON]
    cluster = daemon.cluster
    if cluster is None:
        return _problem(404, "not in a cluster: the state is not kept in Redis")
    described = cluster.describe()
    described["targets"] = {
        name: {"shard": cluster.shard_of(name), "owner": cluster.owner_of(name)}
        for name in daemon.runtimes
    }
    return web.json_response(described, dumps=_dumps)


async def _evaluate(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    refusal = _authorize(request)
    if refusal is not None:
        return refusal
    name = request.match_info["name"]
    if not daemon.trigger(name):
        return _problem(404, f"no target named {name!r}")
    return web.json_response({"target": name, "evaluating": True}, status=202)


async def _controls(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    refusal = _authorize(request)
    if refusal is not None:
        return refusal
    name = request.match_info["name"]
    if name not in daemon.runtimes:
        return _problem(404, f"no target named {name!r}")
    too_large = _problem(413, f"the body must be at most {MAX_BODY} bytes")
    if (request.content_length or 0) > MAX_BODY:
        return too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large
    if len(raw) > MAX_BODY:
        return too_large
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        return _problem(400, "the body must be a JSON object")
    try:
        current = daemon.runtimes[name].stored.state.controls
        controls = _parse_controls(body, daemon.clock.now(), current)
    except ValueError as problem:
        return _problem(400, str(problem))
    try:
        applied = await daemon.set_controls(name, controls)
    except LeaseLost as elsewhere:  # another replica evaluates it: send the change there
        return _problem(409, str(elsewhere))
    except (RedisError, OSError) as problem:  # nothing changed: try again when it answers
        return _problem(503, f"state store unavailable ({describe_unavailable(problem)})")
    return web.json_response({"target": name, "controls": _controls_json(applied)}, dumps=_dumps)


def _authorize(request: web.Request) -> web.Response | None:
    daemon = request.app[DAEMON]
    token = daemon.control_token
    if token is None:
        return (
            None
            if daemon.listens_locally
            else _problem(
                403,
                "control endpoints need control_token_env when scalerd listens beyond localhost",
            )
        )
    if len(token) < MIN_CONTROL_TOKEN:  # changed under a running daemon: never "" == ""
        return _problem(403, "the control token is not usable (too short); see the log")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        offered.strip().encode(), token.encode()
    ):
        return _problem(401, "a valid bearer token is required: Authorization: Bearer <token>")
    return None


_CONTROL_KEYS = {"pause", "pause_for", "override", "override_for"}


def _parse_controls(body: Any, now: datetime, current: Controls) -> Controls:
    """``{"pause": "scale_in", "pause_for": "30m", "override": 8, "override_for": "1h"}``;
    ``null`` clears a control, and a control the body does not name stays as it is (so a
    pause does not lift an override)."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - _CONTROL_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(_CONTROL_KEYS)}")
    for key in ("pause", "override"):
        if f"{key}_for" in body and key not in body:
            raise ValueError(f"{key}_for needs {key}")
    pause, pause_until = current.pause, current.pause_until
    if "pause" in body:
        pause = body["pause"]
        if pause not in (None, "all", "scale_in", "scale_out"):
            raise ValueError("pause must be 'all', 'scale_in', 'scale_out' or null")
        pause_until = _until(body.get("pause_for"), now, "pause_for") if pause else None
    override, override_until = current.override, current.override_until
    if "override" in body:
        override = body["override"]
        if override is not None and (
            isinstance(override, bool)
            or not isinstance(override, int)
            or not 0 <= override <= MAX_OVERRIDE
        ):
            raise ValueError(
                "override must be a whole number of replicas (or tiers) from 0 to "
                f"{MAX_OVERRIDE}, or null"
            )
        override_until = (
            _until(body.get("override_for"), now, "override_for") if override is not None else None
        )
    return Controls(
        pause=pause, pause_until=pause_until, override=override, override_until=override_until
    )


def _until(value: Any, now: datetime, key: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a duration such as '30m'")
    try:
        duration = parse_duration(value)
    except ValueError as problem:
        raise ValueError(f"{key}: {problem}") from None
    if duration <= timedelta(0):
        raise ValueError(f"{key} must be longer than 0s")
    return now + duration


def _controls_json(controls: Controls) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in asdict(controls).items()
    }


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
