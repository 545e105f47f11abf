"""The page's routes on the daemon's aiohttp app.

=============================================  ==============================================
``GET /``                                      the overview: a card per target, attention first
``GET /targets/{name}?window=&action=&reason=`` a target's timeline and decisions
``GET /decisions/{id}``                        one decision, laid out, with its chain links
=============================================  ==============================================

Each page polls itself with ``?fragment=1`` and the newest record id it shows
(``X-Scalerd-Newest``): 204 when nothing changed, else the new page. When the audit stream
cannot be read, the pages say so and show what the process remembers; never an error page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from ..audit import ACTIONS, AuditRecord, parse_ts
from ..audit.render import NOT_SCALED_WORDS
from ..redact import redact
from .html import (
    WINDOWS,
    Card,
    StreamStatus,
    render_decision,
    render_message,
    render_overview,
    render_target,
)
from .model import PageData, build_timeline, state_of

__all__ = ["add_page_routes"]

_OVERVIEW_HISTORY = timedelta(hours=6)
_DEFAULT_WINDOW = "6h"


@dataclass
class _Page:
    data: PageData
    unreachable_since: datetime | None = None
    error: str | None = None
    reasons: frozenset[str] = field(
        default_factory=lambda: frozenset(str(code) for code in NOT_SCALED_WORDS)
    )

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """The records; while the audit stream cannot be read, what the process itself
        still knows (and the page says since when)."""
        try:
            records = await self.data.read(target=target, since=since, limit=limit)
        except Exception as problem:  # any failure of the store is shown, never raised
            if self.unreachable_since is None:
                self.unreachable_since = self.data.now()
            self.error = redact(f"{type(problem).__name__}: {problem}")[:200]
            return await self.data.known(target=target, since=since, limit=limit)
        self.unreachable_since, self.error = None, None
        return records

    @property
    def status(self) -> StreamStatus:
        """The daemon's account of the outage (shared with ``/api/decisions``), else the
        page's own."""
        outage = self.data.outage()
        if outage is not None:
            return StreamStatus(*outage)
        return StreamStatus(self.unreachable_since, self.error)


_PAGE: web.AppKey[_Page] = web.AppKey("page", _Page)


def add_page_routes(app: web.Application, data: PageData) -> None:
    app[_PAGE] = _Page(data)
    app.add_routes(
        [
            web.get("/", _overview),
            web.get("/targets/{name}", _target),
            web.get("/decisions/{id}", _decision),
        ]
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def _unchanged(request: web.Request, newest: str) -> bool:
    """A live poll whose page already shows the newest record (and the same stream state)."""
    return (
        request.query.get("fragment") == "1" and request.headers.get("X-Scalerd-Newest") == newest
    )


def _newest_key(records: list[AuditRecord], page: _Page) -> str:
    """What a page is up to date with: the newest record it shows, and whether the stream
    could be read."""
    newest = max((record.id for record in records), default="")
    return newest if page.status.ok else f"{newest}!unreachable"


async def _polled_unchanged(request: web.Request, page: _Page, target: str | None = None) -> bool:
    """A live poll with nothing new since the page it has, found by reading one record."""
    if request.query.get("fragment") != "1":
        return False
    latest = await page.read(target=target, limit=1)
    if not latest:
        latest = [i.last for i in page.data.targets() if i.last and target in (None, i.name)]
    return _unchanged(request, _newest_key(latest, page))


async def _overview(request: web.Request) -> web.Response:
    page = request.app[_PAGE]
    now = page.data.now()
    targets = page.data.targets()
    if await _polled_unchanged(request, page):
        return web.Response(status=204)
    records = await page.read(since=now - _OVERVIEW_HISTORY)
    by_target: dict[str, list[AuditRecord]] = defaultdict(list)
    for record in records:
        by_target[record.target].append(record)
    remembered = [info.last for info in targets if info.last is not None]
    newest = _newest_key(records or remembered, page)
    cards = []
    for info in targets:
        history = by_target.get(info.name, [])
        if not history and info.last is not None:
            history = [info.last]
        last_change = next((r for r in reversed(history) if r.action == "scaled"), None)
        timeline = build_timeline(history, info, now - _OVERVIEW_HISTORY, now)
        cards.append(Card(info, state_of(info, last_change, now), last_change, timeline))
    return _html(render_overview(cards, newest=newest, status=page.status, now=now))


async def _target(request: web.Request) -> web.Response:
    page = request.app[_PAGE]
    name = request.match_info["name"]
    info = next((info for info in page.data.targets() if info.name == name), None)
    if info is None:
        return _html(render_message("not found", f"There is no target named {name!r}."), 404)
    window = request.query.get("window", _DEFAULT_WINDOW)
    action = request.query.get("action", "")
    reason = request.query.get("reason", "")
    if window not in WINDOWS:
        return _html(
            render_message("bad window", f"window must be one of {', '.join(WINDOWS)}"), 400
        )
    if action and action not in ACTIONS:
        return _html(
            render_message("bad filter", f"action must be one of {', '.join(ACTIONS)}"), 400
        )
    if reason and reason not in page.reasons:
        return _html(render_message("bad filter", f"unknown reason {reason!r}"), 400)
    if await _polled_unchanged(request, page, name):
        return web.Response(status=204)
    now = page.data.now()
    start = now - WINDOWS[window]
    records = await page.read(target=name, since=start)
    if not records and info.last is not None and info.last.ts >= start:
        records = [info.last]
    newest = _newest_key(records, page)
    timeline = build_timeline(records, info, start, now)
    return _html(
        render_target(
            info,
            timeline,
            records,
            window=window,
            action=action,
            reason=reason,
            newest=newest,
            status=page.status,
        )
    )


async def _decision(request: web.Request) -> web.Response:
    page = request.app[_PAGE]
    wanted = request.match_info["id"]
    at = _time_of(wanted)
    if at is None:
        return _html(render_message("not found", f"{wanted!r} is not a record id."), 404)
    # ids start with their time: read from a little before it on, to find it and its next
    records = await page.read(since=at - timedelta(seconds=1))
    record = next((r for r in records if r.id == wanted), None)
    if record is None:
        remembered = [info.last for info in page.data.targets() if info.last is not None]
        record = next((r for r in remembered if r.id == wanted), None)
    if record is None:
        message = (
            "The audit stream is unreachable, so this record cannot be read now."
            if not page.status.ok
            else f"No record {wanted!r} in the audit stream (it may have been trimmed)."
        )
        status = 404 if page.status.ok else 200  # unreachable: not known to be missing
        return _html(render_message("not found", message, page.status), status)
    following = next(
        (r for r in records if r.prev == record.id and r.target == record.target), None
    )
    newest = following.id if following is not None else record.id
    newest = newest if page.status.ok else f"{newest}!unreachable"
    if _unchanged(request, newest):
        return web.Response(status=204)
    return _html(render_decision(record, following, newest=newest, status=page.status))


def _time_of(record_id: str) -> datetime | None:
    """A record id's time: its first 12 hex digits are milliseconds since the epoch."""
    millis, dash, _ = record_id.partition("-")
    if not dash or len(millis) != 12:
        return None
    try:
        return parse_ts("1970-01-01T00:00:00+00:00") + timedelta(milliseconds=int(millis, 16))
    except ValueError:
        return None
