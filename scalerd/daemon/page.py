"""The daemon's side of the on-call page (:mod:`scalerd.web`): its targets, clock and
audit log, as the page reads them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from ..audit import AuditRecord
from ..web import TargetInfo, target_info

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["DaemonPageData"]


class DaemonPageData:
    """:class:`scalerd.web.PageData` over a running :class:`~scalerd.daemon.app.Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def targets(self) -> Sequence[TargetInfo]:
        return [
            target_info(runtime.target, runtime.stored.state.controls, runtime.last_record)
            for runtime in self._daemon.runtimes.values()
        ]

    def now(self) -> datetime:
        return self._daemon.clock.now()

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        # the same account of an outage as /api/decisions: one "unreachable since"
        outage = self._daemon.audit_read_outage
        try:
            records = await self._daemon.audit_log.read(target=target, since=since, limit=limit)
        except (RedisError, OSError) as problem:
            outage.failed(problem)
            raise
        outage.recovered()
        return records

    async def known(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """While the audit stream cannot be read: the daemon's own recent records and spool."""
        return await self._daemon.known_records(target=target, since=since, limit=limit)

    def outage(self) -> tuple[datetime, str] | None:
        outage = self._daemon.audit_read_outage
        return (outage.since, outage.error or "") if outage.since is not None else None
