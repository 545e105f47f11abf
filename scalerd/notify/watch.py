"""From audit records to notices: what happened to a target that people should hear of.

Each kind of notice is sent when its condition begins, not on every record while it lasts:
"at max while the rules want more" once until the target leaves max, "metric failure"
once when the failures in a row pass the threshold, an ``[[alert]]`` once each time its
condition begins to hold (a reading that fails neither begins nor ends it), and so on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..audit import AuditRecord
from .base import Notice, What

__all__ = ["TargetWatch", "notices_for"]


@dataclass
class TargetWatch:
    """What one target's earlier records showed, for noticing when a condition begins."""

    actions: deque[datetime] = field(default_factory=deque)
    rapid_until: datetime | None = None
    at_max: bool = False
    failures: int = 0
    fallback: bool = False
    restarting: str | None = None  # the record that started a restarting change
    alerting: set[str] = field(default_factory=set)  # the [[alert]]s holding now


def notices_for(
    record: AuditRecord,
    watch: TargetWatch,
    *,
    rapid_actions: int,
    rapid_window: timedelta,
    metric_failures: int,
    maximum: int | None = None,
) -> list[Notice]:
    """The notices ``record`` gives rise to (updating ``watch``); ``maximum`` is the
    target's configured max (a schedule's lower max shows as the bounds step)."""
    out: list[Notice] = []
    target, at = record.target, record.ts
    why = _why(record)

    def notice(what: What, title: str, text: str, key: str | None = None, **data: object) -> None:
        out.append(
            Notice(
                what,
                target,
                at,
                key or f"{target}:{what}:{record.id}",
                title,
                text,
                record.id,
                data,
            )
        )

    before = record.current["provisioned"] if record.current else None
    decided = record.current is not None
    if record.action == "scaled" and decided:
        notice(
            "scaled",
            f"{target} scaled {before} → {record.desired}",
            why,
            before=before,
            after=record.desired,
        )
        watch.actions.append(at)
        while watch.actions and watch.actions[0] <= at - rapid_window:
            watch.actions.popleft()
        if len(watch.actions) > rapid_actions and (
            watch.rapid_until is None or at >= watch.rapid_until
        ):
            watch.rapid_until = at + rapid_window
            notice(
                "rapid_scaling",
                f"{target} is scaling rapidly",
                f"{len(watch.actions)} scale actions within {rapid_window}",
                actions=len(watch.actions),
            )
    if record.action == "failed":
        notice(
            "failed",
            f"{target}: scaling failed",
            record.error or "the action failed",
            error=record.error,
        )
    wants_more = (
        decided
        and record.recommended is not None
        and record.desired is not None
        and record.recommended > record.desired
        and (
            (maximum is not None and record.desired >= maximum)
            or any(step.get("code") == "too_many_replicas" for step in record.steps)
        )
    )
    if wants_more and not watch.at_max:
        notice(
            "at_max",
            f"{target} is at its maximum and the rules want more",
            f"at {record.desired}; the rules ask for {record.recommended}. {why}",
            recommended=record.recommended,
        )
    watch.at_max = wants_more if decided else watch.at_max
    failed = [str(i.get("metric")) for i in record.inputs if i.get("error")]
    if decided:
        watch.failures = watch.failures + 1 if failed else 0
        if watch.failures == metric_failures + 1:
            notice(
                "metric_failure",
                f"{target}: metrics failing",
                f"{', '.join(failed)} failed {watch.failures} evaluations in a row",
                failed=failed,
            )
        fallback = any(
            step.get("code") == "metric_failure" and "fallback" in str(step.get("detail", ""))
            for step in record.steps
        )
        if fallback and not watch.fallback:
            notice("fallback", f"{target}: fallback engaged", why)
        watch.fallback = fallback
    for report in record.rules:
        if report.get("kind") != "alert" or str(report.get("detail", "")).startswith(
            "metric failed"
        ):
            continue
        name = str(report.get("rule"))
        if not report.get("fired"):
            watch.alerting.discard(name)
        elif name not in watch.alerting:
            watch.alerting.add(name)
            notice(
                "alert",
                f"{target}: {name}",
                str(report.get("detail", "")),
                key=f"{target}:alert:{name}:{record.id}",
                alert=name,
            )
    if record.restarts and record.action == "scaled" and decided:
        watch.restarting = record.id
        notice(
            "restart_started",
            f"{target}: changing tier to {record.tier}, which restarts it",
            why,
            tier=record.tier,
        )
    elif watch.restarting is not None and not decided and record.operation is not None:
        started, watch.restarting = watch.restarting, None
        notice(
            "restart_finished",
            f"{target}: tier change {'done' if record.action == 'scaled' else 'failed'}",
            record.error or f"now at {record.tier or record.desired}",
            key=f"{target}:restart_finished:{started}",
            outcome=record.action,
        )
    return out


def _why(record: AuditRecord) -> str:
    trigger = record.trigger or {}
    if trigger.get("type") == "event" and trigger.get("summary"):
        return f"because {trigger['summary']}"
    if record.not_scaled_reason:
        return f"({record.not_scaled_reason})"
    steps = [str(step.get("detail")) for step in record.steps if step.get("detail")]
    return steps[-1] if steps else ""
