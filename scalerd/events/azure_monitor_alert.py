"""``kind = "azure-monitor-alert"``: an action group's webhook, in the common alert schema.

Metric (static and dynamic threshold), log search and activity log alerts, ``Fired`` and
``Resolved``; also the older metric alert webhook (``AzureMonitorMetricAlert``, status
``Activated``). A fired alert that carries a number (``allOf[].metricValue``) offers it to
the target's ``metric`` as a fresh observation, so the decision uses the alert's value,
not a metric read that may be minutes behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from ..plugins import BuildContext, Plugin
from .base import (
    EventConfig,
    EventRejected,
    EventRequest,
    HttpReceiver,
    InboundEvent,
    Parsed,
    json_body,
    objects,
    text,
)

__all__ = ["PLUGIN", "AlertConfig", "AlertReceiver", "parse_alert"]

COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
LEGACY_METRIC_SCHEMA = "AzureMonitorMetricAlert"


class AlertConfig(EventConfig):
    kind: Literal["azure-monitor-alert"]
    # which condition's metricValue is offered (its metricName); default: the first number
    alert_metric: str | None = None


class AlertReceiver:
    def __init__(self, config: AlertConfig) -> None:
        self._config = config

    def parse(self, request: EventRequest) -> Parsed:
        return Parsed((parse_alert(json_body(request), self._config.alert_metric),))


def parse_alert(payload: Any, alert_metric: str | None = None) -> InboundEvent:
    """One alert notification as an event; EventRejected if it is not one."""
    if not isinstance(payload, dict):
        raise EventRejected("an alert must be a JSON object")
    schema = payload.get("schemaId")
    if schema in (COMMON_SCHEMA, LEGACY_METRIC_SCHEMA):
        data = payload.get("data")
        if not isinstance(data, dict):
            raise EventRejected("an alert needs a 'data' object")
        if schema == COMMON_SCHEMA:
            return _common(data, alert_metric)
        return _legacy_metric(data, alert_metric)
    raise EventRejected(
        f"schemaId must be {COMMON_SCHEMA!r} (enable the common alert schema on the action group) "
        f"or {LEGACY_METRIC_SCHEMA!r}; got {str(schema)[:60]!r}"
    )


def _common(data: Mapping[str, Any], alert_metric: str | None) -> InboundEvent:
    essentials = data.get("essentials")
    if not isinstance(essentials, dict):
        raise EventRejected("data.essentials must be an object")
    condition = text(essentials.get("monitorCondition"), "data.essentials.monitorCondition")
    if condition not in ("Fired", "Resolved"):
        raise EventRejected("data.essentials.monitorCondition must be 'Fired' or 'Resolved'")
    alert_id = text(essentials.get("alertId"), "data.essentials.alertId")
    rule = text(essentials.get("alertRule"), "data.essentials.alertRule")
    signal = text(essentials.get("signalType"), "data.essentials.signalType")
    targets = essentials.get("alertTargetIDs", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise EventRejected("data.essentials.alertTargetIDs must be an array of strings")
    context = data.get("alertContext")
    if not isinstance(context, dict):
        raise EventRejected("data.alertContext must be an object")
    value = (
        _metric_value(context, "data.alertContext", alert_metric) if condition == "Fired" else None
    )
    assert alert_id is not None and rule is not None and signal is not None
    return InboundEvent(
        kind="azure-monitor-alert",
        id=alert_id,
        source=essentials.get("monitoringService") or "Azure Monitor",
        type=signal,
        subject=condition,
        rule=rule,
        resources=tuple(targets),
        properties=_properties(data.get("customProperties")),
        value=value,
        time=_time(
            essentials.get("resolvedDateTime" if condition == "Resolved" else "firedDateTime")
        ),
        summary=f"alert {rule!r} {condition.lower()}"
        + (f" at {value:g}" if value is not None else ""),
    )


def _legacy_metric(data: Mapping[str, Any], alert_metric: str | None) -> InboundEvent:
    status = text(data.get("status"), "data.status")
    if status not in ("Activated", "Resolved"):
        raise EventRejected("data.status must be 'Activated' or 'Resolved'")
    context = data.get("context")
    if not isinstance(context, dict):
        raise EventRejected("data.context must be an object")
    alert_id = text(context.get("id"), "data.context.id")
    rule = text(context.get("name"), "data.context.name")
    resource = text(context.get("resourceId"), "data.context.resourceId", required=False)
    value = _metric_value(context, "data.context", alert_metric) if status == "Activated" else None
    assert alert_id is not None and rule is not None
    condition = "Fired" if status == "Activated" else "Resolved"
    return InboundEvent(
        kind="azure-monitor-alert",
        id=alert_id,
        source="Azure Monitor",
        type="Metric",
        subject=condition,
        rule=rule,
        resources=(resource,) if resource else (),
        properties=_properties(data.get("properties")),
        value=value,
        time=_time(context.get("timestamp")),
        summary=f"alert {rule!r} {condition.lower()}"
        + (f" at {value:g}" if value is not None else ""),
    )


def _metric_value(context: Mapping[str, Any], where: str, alert_metric: str | None) -> float | None:
    """The number a fired condition carries; None for alerts without one (activity log)."""
    condition = context.get("condition")
    if condition is None:
        return None
    if not isinstance(condition, dict):
        raise EventRejected(f"{where}.condition must be an object")
    for index, item in enumerate(objects(condition.get("allOf", []), f"{where}.condition.allOf")):
        if alert_metric is not None and item.get("metricName") != alert_metric:
            continue
        value = item.get("metricValue")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventRejected(f"{where}.condition.allOf[{index}].metricValue must be a number")
        if value != value or abs(value) == float("inf"):
            raise EventRejected(f"{where}.condition.allOf[{index}].metricValue must be finite")
        return float(value)
    return None


def _properties(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(key): str(item) for key, item in value.items() if isinstance(item, str | int | float)
    }


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def build(config: AlertConfig, ctx: BuildContext) -> HttpReceiver:
    return AlertReceiver(config)


PLUGIN = Plugin(
    kind="azure-monitor-alert",
    config=AlertConfig,
    build=build,
    summary="Azure Monitor alerts from an action group webhook (common alert schema)",
)
