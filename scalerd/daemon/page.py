"""The daemon's side of the on-call page (:mod:`scalerd.web`): its targets, clock and
audit log, as the page reads them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..audit import AuditRecord
from ..summary import describe_target
from ..web import TargetInfo, Threshold
from .tick import TargetRuntime

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["DaemonPageData", "target_info"]


class DaemonPageData:
    """:class:`scalerd.web.PageData` over a running :class:`~scalerd.daemon.app.Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def targets(self) -> Sequence[TargetInfo]:
        return [target_info(runtime) for runtime in self._daemon.runtimes.values()]

    def now(self) -> datetime:
        return self._daemon.clock.now()

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return await self._daemon.audit_log.read(target=target, since=since, limit=limit)


def target_info(runtime: TargetRuntime) -> TargetInfo:
    target = runtime.target
    rule = target.spec.rule
    thresholds = [
        Threshold(
            track.metric,
            f"target {track.target:g}" + (" per replica" if track.type == "total" else ""),
            track.target,
            per_replica=track.type == "total",
        )
        for track in rule.track
    ]
    thresholds += [
        Threshold(t.when.metric, f"{t.when.op} {t.when.threshold:g}", t.when.threshold)
        for t in rule.threshold
    ]
    thresholds += [
        Threshold(p.metric, f"threshold {p.threshold:g}", p.threshold) for p in rule.step
    ]
    controls = runtime.stored.state.controls
    return TargetInfo(
        name=runtime.name,
        scales=f"{target.actuator.kind} {target.actuator.name}",
        minimum=rule.minimum,
        maximum=rule.maximum,
        interval_s=rule.interval.total_seconds(),
        thresholds=tuple(_unique(thresholds)),
        rules=tuple(describe_target(target)),
        pause=controls.pause or rule.pause,
        pause_until=controls.pause_until,
        override=controls.override,
        override_until=controls.override_until,
        last=runtime.last_record,
    )


def _unique(thresholds: list[Threshold]) -> list[Threshold]:
    seen: set[tuple[str, str]] = set()
    out = []
    for threshold in thresholds:
        if (threshold.metric, threshold.label) not in seen:
            seen.add((threshold.metric, threshold.label))
            out.append(threshold)
    return out
