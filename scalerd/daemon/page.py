"""The daemon's side of the on-call page (:mod:`scalerd.web`): its targets, clock and
audit log, as the page reads them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

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
        return await self._daemon.audit_log.read(target=target, since=since, limit=limit)

    async def known(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """While the audit stream cannot be read: the daemon's own recent records and spool."""
        return await self._daemon.known_records(target=target, since=since, limit=limit)
