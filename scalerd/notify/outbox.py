"""The durable outbox and its delivery: a notice is written to SQLite before it is sent,
retried with exponential backoff and jitter until it is delivered or ``retry_for`` has
passed, and never sent twice under one dedupe key. Nothing here runs inside a tick: the
tick only hands its record over (``offer``), and one background task does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..audit import AuditRecord, AuditSink
from ..audit.sinks import emit_all
from ..plugins import BuildContext
from .base import Notice, NotifyConfig, Sink
from .watch import TargetWatch, notices_for

__all__ = ["Notifier", "NotifyMetrics", "Outbox"]

log = structlog.get_logger("scalerd")

FIRST_RETRY_S = 1.0
SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    sink: str
    body: bytes
    headers: Mapping[str, str]
    attempts: int
    expires: float


class Outbox:
    """Notices not yet delivered, in a SQLite file (WAL: a committed row survives a crash)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # with WAL, NORMAL survives a crash of the process (not of the machine's power)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, sink TEXT, body BLOB,"
            " headers TEXT, attempts INTEGER, next_at REAL, expires REAL, state TEXT)"
        )

    def add(self, rows: Sequence[tuple[str, str, bytes, Mapping[str, str], float, float]]) -> int:
        """Insert new notices (a key seen before is ignored: the dedupe); how many were new."""
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, 0, ?, ?, 'pending')",
            [(k, s, b, json.dumps(dict(h)), at, exp) for k, s, b, h, at, exp in rows],
        )
        return self._db.total_changes - before

    def due(self, now: float, limit: int = 50) -> list[Pending]:
        rows = self._db.execute(
            "SELECT key, sink, body, headers, attempts, expires FROM outbox"
            " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Pending(k, s, b, json.loads(h), a, e) for k, s, b, h, a, e in rows]

    def next_due(self) -> float | None:
        (at,) = self._db.execute(
            "SELECT MIN(next_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return float(at) if at is not None else None

    def mark(self, key: str, state: str, attempts: int, next_at: float = 0.0) -> None:
        self._db.execute(
            "UPDATE outbox SET state = ?, attempts = ?, next_at = ? WHERE key = ?",
            (state, attempts, next_at, key),
        )

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self._db.execute("SELECT sink, state, COUNT(*) FROM outbox GROUP BY sink, state")
        return {(sink, state): n for sink, state, n in rows}

    def close(self) -> None:
        self._db.close()


class NotifyMetrics:
    """The notification counters, made once per daemon."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "scalerd_notifications",
            "Notification delivery attempts by sink and outcome (delivered, retry, undelivered)",
            ["sink", "outcome"],
            registry=registry,
        )
        self.pending = Gauge(
            "scalerd_notifications_pending",
            "Notifications in the outbox not yet delivered",
            ["sink"],
            registry=registry,
        )


class Notifier:
    """Turns audit records into notices for every ``[[notify]]`` sink, and delivers them."""

    def __init__(
        self,
        configs: Mapping[str, NotifyConfig],
        ctx: BuildContext,
        outbox: Outbox,
        metrics: NotifyMetrics,
        maximums: Mapping[str, int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        from . import NOTIFY

        if ctx.http is None:
            raise ValueError("notifications need the daemon's HTTP client")
        self._sinks: dict[str, tuple[NotifyConfig, Sink, str]] = {}
        for name, config in configs.items():
            url = _url(config)
            self._sinks[name] = (config, NOTIFY.get(config.kind).build(config, ctx), url)
        self._watches: dict[tuple[str, str], TargetWatch] = {}
        self._maximums = dict(maximums or {})
        self._outbox = outbox
        self._metrics = metrics
        self._http = ctx.http
        self._rng = rng or random.Random()
        self._offered: list[tuple[str, Notice]] = []
        self._storing = 0  # taken from _offered, not yet in the outbox
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- the tick's side: never waits ----------------------------------------------------

    def offer(self, record: AuditRecord) -> None:
        """Note what ``record`` means for each sink; delivery happens in the background."""
        for name, (config, _, _) in self._sinks.items():
            watch = self._watches.setdefault((name, record.target), TargetWatch())
            for notice in notices_for(
                record,
                watch,
                rapid_actions=config.rapid_actions,
                rapid_window=config.rapid_window,
                metric_failures=config.metric_failures,
                maximum=self._maximums.get(record.target),
            ):
                if config.wants(record.target, notice.what):
                    self._offered.append((name, notice))
        if self._offered:
            self._wake.set()

    def backlog(self) -> int:
        """Notices offered or stored and not yet delivered nor given up: 0 once everything
        offered so far has reached its receiver."""
        pending = sum(n for (_, state), n in self._outbox.counts().items() if state == "pending")
        return len(self._offered) + self._storing + pending

    def watch(self, sink: AuditSink) -> AuditSink:
        """``sink``, telling this notifier of every record it receives."""
        return _Watched(sink, self)

    # --- the background ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scalerd-notify")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._store_offered()

    async def _run(self) -> None:
        while True:
            try:
                await self._store_offered()
                await self._deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the outbox outlives any one failure
                log.exception("notification delivery failed")
            next_at = await asyncio.to_thread(self._outbox.next_due)
            wait = 5.0 if next_at is None else max(0.0, next_at - time.time())
            self._wake.clear()
            if not self._offered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait, 5.0))

    async def _store_offered(self) -> None:
        """Render what was offered and write it to the outbox before any attempt."""
        offered, self._offered = self._offered, []
        if not offered:
            return
        now = time.time()
        rows = []
        for name, notice in offered:
            config, sink, _ = self._sinks[name]
            message = sink.render(notice)
            expires = now + config.retry_for.total_seconds()
            rows.append((f"{name}:{notice.key}", name, message.body, message.headers, now, expires))
        self._storing = len(rows)
        try:
            await asyncio.to_thread(self._outbox.add, rows)
        finally:
            self._storing = 0

    async def _deliver_due(self) -> None:
        for pending in await asyncio.to_thread(self._outbox.due, time.time()):
            config, _, url = self._sinks.get(pending.sink, (None, None, ""))
            if config is None:
                continue
            outcome = await self._send(url, pending)
            attempts = pending.attempts + 1
            now = time.time()
            if outcome is None:
                self._outbox.mark(pending.key, "delivered", attempts)
                self._metrics.sent.labels(pending.sink, "delivered").inc()
                continue
            longest = config.retry_max_wait.total_seconds()
            delay = min(longest, FIRST_RETRY_S * 2 ** min(pending.attempts, 30))
            delay *= self._rng.uniform(0.5, 1.5)  # jitter: retries of many notices spread out
            if now + delay > pending.expires:
                self._outbox.mark(pending.key, "undelivered", attempts)
                self._metrics.sent.labels(pending.sink, "undelivered").inc()
                log.error(
                    "notification not delivered; giving up",
                    sink=pending.sink,
                    notification=pending.key,
                    attempts=attempts,
                    error=outcome,
                )
            else:
                self._outbox.mark(pending.key, "pending", attempts, now + delay)
                self._metrics.sent.labels(pending.sink, "retry").inc()
                log.warning(
                    "notification not delivered; will retry",
                    sink=pending.sink,
                    notification=pending.key,
                    attempts=attempts,
                    retry_in_s=round(delay, 1),
                    error=outcome,
                )
        for (sink, state), count in self._outbox.counts().items():
            if state == "pending":
                self._metrics.pending.labels(sink).set(count)
        for name in self._sinks:
            if (name, "pending") not in self._outbox.counts():
                self._metrics.pending.labels(name).set(0)

    async def _send(self, url: str, pending: Pending) -> str | None:
        """None once delivered, else what went wrong (never the URL: it is a secret)."""
        try:
            response = await self._http.post(
                url, content=pending.body, headers=dict(pending.headers), timeout=SEND_TIMEOUT_S
            )
        except httpx.HTTPError as problem:
            return type(problem).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


def _url(config: NotifyConfig) -> str:
    url = os.environ.get(config.url_env)
    if not url:
        raise ValueError(
            f"notify {config.name!r}: environment variable {config.url_env} (url_env) is not set"
        )
    return url


class _Watched:
    def __init__(self, sink: AuditSink, notifier: Notifier) -> None:
        self.sink = sink
        self._notifier = notifier

    async def emit(self, record: AuditRecord) -> None:
        await self.sink.emit(record)
        self._notifier.offer(record)

    async def emit_many(self, records: Sequence[AuditRecord]) -> None:
        await emit_all(self.sink, records)
        for record in records:
            self._notifier.offer(record)

    async def flush(self) -> None:
        await self.sink.flush()

    def backlog(self) -> int:
        return self.sink.backlog()

    async def aclose(self) -> None:
        await self.sink.aclose()

    def __getattr__(self, name: str) -> Any:  # spool_path and the like
        return getattr(self.sink, name)
