"""``scalerd import aws-step``: Application Auto Scaling step and target-tracking policies
(``describe-scaling-policies`` output, or one policy configuration as passed to
``put-scaling-policy``). Step scaling is AWS's exactly: bounds are offsets from the alarm
threshold, percent changes truncate, ``MinAdjustmentMagnitude`` applies. The alarm's
threshold lives in CloudWatch, not in the policy: give ``describe-alarms`` output beside
the policies (``MetricAlarms``) and it is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import At, ImportFailure, Located, load_documents
from .draft import Draft, Note, Section, seconds
from .kubernetes import target_name

__all__ = ["convert"]

_ADJUSTMENT = {
    "ChangeInCapacity": "change",
    "PercentChangeInCapacity": "percent",
    "ExactCapacity": "exact",
}
_AGGREGATION = {"Average": "avg", "Minimum": "min", "Maximum": "max"}
_STATISTIC = {
    "Average": "avg",
    "Minimum": "min",
    "Maximum": "max",
    "Sum": "total",
    "SampleCount": "count",
}
_PROMETHEUS_URL = "http://cloudwatch-exporter:9106"
# predefined target-tracking metrics that are a percentage per instance
_UTILIZATION = ("Utilization",)


def convert(path: Path) -> Draft:
    (document,) = load_documents(path)[:1]
    at = At(path, (), getattr(document, "line", None))
    if not isinstance(document, dict):
        raise at.fail("expected a JSON object")
    policies = _policies(document, at)
    alarms = {
        str(alarm.get("AlarmName")): alarm
        for alarm, _ in at.items(document, "MetricAlarms")
        if isinstance(alarm, dict)
    }
    limits = {
        str(t.get("ResourceId")): t
        for t, _ in at.items(document, "ScalableTargets")
        if isinstance(t, dict)
    }
    draft = Draft(
        kind="aws-step", origin=f"{path.name}: Application Auto Scaling policies", anchor="aws-step"
    )
    by_resource: dict[str, list[tuple[Any, At]]] = {}
    for policy, where in policies:
        by_resource.setdefault(str(policy.get("ResourceId") or path.stem), []).append(
            (policy, where)
        )
    for resource, entries in by_resource.items():
        _target(draft, resource, entries, alarms, limits.get(resource))
    return draft


def _policies(document: Any, at: At) -> list[tuple[Any, At]]:
    if "ScalingPolicies" in document:
        found = list(at.items(document, "ScalingPolicies"))
        if not found:
            raise at.fail("ScalingPolicies is empty")
        return found
    for key, kind in (
        ("StepScalingPolicyConfiguration", "StepScaling"),
        ("TargetTrackingScalingPolicyConfiguration", "TargetTrackingScaling"),
    ):
        if key in document:
            return [(Located({**document, "PolicyType": kind}), at)]
    if "StepAdjustments" in document:
        wrapped = Located({"PolicyType": "StepScaling", "StepScalingPolicyConfiguration": document})
        return [(wrapped, at)]
    if "TargetValue" in document:
        wrapped = Located(
            {
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": document,
            }
        )
        return [(wrapped, at)]
    raise ImportFailure(
        f"{at.file}: not an Application Auto Scaling policy: expected ScalingPolicies, a "
        "StepScalingPolicyConfiguration or a TargetTrackingScalingPolicyConfiguration"
    )


def _target(
    draft: Draft, resource: str, entries: list[tuple[Any, At]], alarms: dict[str, Any], limits: Any
) -> None:
    name = target_name(resource.rsplit("/", 1)[-1])
    notes: list[Note] = []
    values: dict[str, Any] = {"name": name, "actuator": name, "interval": "60s"}
    if limits:
        values["min"] = int(limits.get("MinCapacity", 1))
        values["max"] = int(limits.get("MaxCapacity", 10))
    else:
        values["min"], values["max"] = 1, 10
        notes.append(
            Note(
                "MinCapacity and MaxCapacity",
                "they belong to the scalable target, not to a policy: min 1 and max 10 are "
                "placeholders (add describe-scalable-targets output as ScalableTargets)",
            )
        )
    steps, tracks = [], []
    for policy, at in entries:
        kind = at.text(policy, "PolicyType")
        label = str(policy.get("PolicyName") or kind)
        if kind == "StepScaling":
            steps.append(_step(draft, name, policy, at, label, alarms, notes))
        elif kind == "TargetTrackingScaling":
            track, cooldown, disable_in = _tracking(draft, name, policy, at, label, notes)
            tracks.append(track)
            values["cooldown"] = cooldown
            if disable_in:
                values.setdefault("behavior", {})["scale_down"] = {"select": "disabled"}
        else:
            notes.append(
                Note(f"policy {label} ({kind})", "no equivalent policy type", dict(policy))
            )
    if steps:
        values["step"] = steps
    if tracks:
        values["track"] = tracks
        behavior = values.setdefault("behavior", {})
        # AWS paces target tracking by its cooldowns, with no stabilization windows
        behavior.setdefault("scale_up", {})["stabilization_window"] = "0s"
        behavior.setdefault("scale_down", {}).setdefault("stabilization_window", "0s")
    draft.actuators.append(
        Section(
            {"name": name, "kind": "recording", "initial": values["min"]},
            [
                Note(
                    f"scalable target {resource}",
                    "scalerd has no AWS actuator: this recording actuator decides and audits "
                    "without changing anything",
                )
            ],
        )
    )
    utilization = {s["metric"]: "utilization" for s in steps if "Utilization" in s["metric"]}
    utilization |= {t["metric"]: "utilization" for t in tracks if t["type"] == "utilization"}
    values["simulate"] = {"metric_delay": "0s"} | ({"metrics": utilization} if utilization else {})
    draft.targets.append(Section(values, notes))


def _step(
    draft: Draft,
    target: str,
    policy: Any,
    at: At,
    label: str,
    alarms: dict[str, Any],
    notes: list[Note],
) -> dict[str, Any]:
    config = at.mapping(policy, "StepScalingPolicyConfiguration")
    here = at.down("StepScalingPolicyConfiguration", policy)
    adjustment = here.text(config, "AdjustmentType")
    if adjustment not in _ADJUSTMENT:
        raise here.down("AdjustmentType", config).fail(
            f"unknown AdjustmentType {adjustment!r} ({', '.join(_ADJUSTMENT)})"
        )
    aggregation = str(config.get("MetricAggregationType") or "Average")
    if aggregation not in _AGGREGATION:
        raise here.down("MetricAggregationType", config).fail(
            f"unknown MetricAggregationType {aggregation!r}"
        )
    alarm = _alarm(policy, alarms)
    metric = str(alarm.get("MetricName")) if alarm else "metric"
    threshold = alarm.get("Threshold") if alarm else None
    if threshold is None:
        threshold = 0
        names = ", ".join(
            str(a.get("AlarmName")) for a in policy.get("Alarms", []) if isinstance(a, dict)
        )
        notes.append(
            Note(
                f"policy {label}: the alarm threshold",
                f"it is the CloudWatch alarm's ({names or 'no alarm named'}), not the policy's: "
                "threshold = 0 is a placeholder until describe-alarms output is given as MetricAlarms",
            )
        )
    window = int(alarm.get("Period", 60)) * int(alarm.get("EvaluationPeriods", 1)) if alarm else 60
    source = draft.source(
        {
            "name": target_name(f"{target}-{metric}".lower()),
            "kind": "prometheus",
            "url": _PROMETHEUS_URL,
            "query": _cloudwatch_query(
                metric, alarm.get("Statistic", "Average") if alarm else "Average"
            ),
        },
        _cloudwatch_note(metric),
    )
    steps = []
    for entry, where in here.items(config, "StepAdjustments"):
        step: dict[str, Any] = {"adjust": where.number(entry, "ScalingAdjustment")}
        if entry.get("MetricIntervalLowerBound") is not None:
            step["lower"] = where.number(entry, "MetricIntervalLowerBound")
        if entry.get("MetricIntervalUpperBound") is not None:
            step["upper"] = where.number(entry, "MetricIntervalUpperBound")
        steps.append(step)
    if not steps:
        raise here.down("StepAdjustments", config).fail("a step policy needs at least one step")
    imported: dict[str, Any] = {
        "name": label,
        "metric": source,
        "aggregation": _AGGREGATION[aggregation],
        "window": seconds(window),
        "threshold": threshold,
        "adjustment_type": _ADJUSTMENT[adjustment],
        "cooldown": seconds(here.whole(config, "Cooldown", 300)),
    }
    if config.get("MinAdjustmentMagnitude") is not None:
        imported["min_adjustment_magnitude"] = here.whole(config, "MinAdjustmentMagnitude")
    imported["steps"] = steps
    return imported


def _alarm(policy: Any, alarms: dict[str, Any]) -> dict[str, Any]:
    for alarm in policy.get("Alarms") or []:
        if isinstance(alarm, dict) and str(alarm.get("AlarmName")) in alarms:
            return dict(alarms[str(alarm["AlarmName"])])
    return {}


def _tracking(
    draft: Draft, target: str, policy: Any, at: At, label: str, notes: list[Note]
) -> tuple[dict[str, Any], dict[str, str], bool]:
    config = at.mapping(policy, "TargetTrackingScalingPolicyConfiguration")
    here = at.down("TargetTrackingScalingPolicyConfiguration", policy)
    value = here.number(config, "TargetValue")
    if value <= 0:
        raise here.down("TargetValue", config).fail("must be greater than 0")
    if "PredefinedMetricSpecification" in config:
        spec = here.mapping(config, "PredefinedMetricSpecification")
        metric = here.down("PredefinedMetricSpecification", config).text(
            spec, "PredefinedMetricType"
        )
        statistic = "Average"
    else:
        spec = here.mapping(config, "CustomizedMetricSpecification")
        there = here.down("CustomizedMetricSpecification", config)
        metric = there.text(spec, "MetricName")
        statistic = there.text(spec, "Statistic", "Average")
    utilization = (
        metric.endswith(_UTILIZATION)
        or str(config.get("CustomizedMetricSpecification", {}).get("Unit")) == "Percent"
    )
    source = draft.source(
        {
            "name": target_name(f"{target}-{metric}".lower()),
            "kind": "prometheus",
            "url": _PROMETHEUS_URL,
            "query": _cloudwatch_query(metric, statistic),
        },
        _cloudwatch_note(metric),
    )
    notes.append(
        Note(
            f"policy {label}: target tracking",
            "AWS does not publish its target-tracking arithmetic; scalerd uses the proportional "
            "rule (desired = ceil(current * metric / target)) with a 10 % dead band",
        )
    )
    cooldown = {
        "up": seconds(here.whole(config, "ScaleOutCooldown", 300)),
        "down": seconds(here.whole(config, "ScaleInCooldown", 300)),
    }
    track = {
        "name": label,
        "metric": source,
        "type": "utilization" if utilization else "average",
        "target": value,
    }
    return track, cooldown, bool(config.get("DisableScaleIn"))


def _cloudwatch_query(metric: str, statistic: str) -> str:
    """The series cloudwatch_exporter / YACE publish for a CloudWatch metric."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in metric).strip("_")
    return f"aws_{snake}_{str(statistic).lower()}"


def _cloudwatch_note(metric: str) -> Note:
    return Note(
        f"CloudWatch metric {metric}",
        "scalerd has no CloudWatch source: this reads it through Prometheus "
        "(cloudwatch_exporter or YACE); check the series name and set url",
    )
