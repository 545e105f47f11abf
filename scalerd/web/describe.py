"""A configured target as the page and ``scalerd audit --chart`` describe it."""

from __future__ import annotations

from ..audit import AuditRecord
from ..config import Target
from ..core import Controls
from ..summary import describe_target
from .model import TargetInfo, Threshold

__all__ = ["target_info"]


def target_info(
    target: Target, controls: Controls | None = None, last: AuditRecord | None = None
) -> TargetInfo:
    """``target``'s bounds, the lines its metrics are judged against, its rules in words,
    the operator's controls and its last record."""
    rule = target.spec.rule
    controls = controls or Controls()
    thresholds: dict[tuple[str, str], Threshold] = {}
    for track in rule.track:
        per_replica = track.type == "total"
        label = f"target {track.target:g}" + (" per replica" if per_replica else "")
        thresholds[track.metric, label] = Threshold(track.metric, label, track.target, per_replica)
    for threshold in rule.threshold:
        when = threshold.when
        label = f"{when.op} {when.threshold:g}"
        thresholds[when.metric, label] = Threshold(when.metric, label, when.threshold)
    for policy in rule.step:
        label = f"threshold {policy.threshold:g}"
        thresholds[policy.metric, label] = Threshold(policy.metric, label, policy.threshold)
    for breaker in rule.breaker:
        label = f"breaker {breaker.name} opens {breaker.open_when}"
        opens_at = breaker.open_when.threshold
        thresholds[breaker.metric, label] = Threshold(breaker.metric, label, opens_at)
    return TargetInfo(
        name=target.name,
        scales=f"{target.actuator.kind} {target.actuator.name}",
        minimum=rule.minimum,
        maximum=rule.maximum,
        interval_s=rule.interval.total_seconds(),
        thresholds=tuple(thresholds.values()),
        rules=tuple(describe_target(target)),
        pause=controls.pause or rule.pause,
        pause_until=controls.pause_until,
        override=controls.override,
        override_until=controls.override_until,
        last=last,
    )
