"""The common alert schema (and the older metric alert webhook) parsed from the real samples:
which rule fired, on what, and the number a fired condition carries."""

from __future__ import annotations

import json

import pytest

from scalerd.events.azure_monitor_alert import parse_alert
from scalerd.events.base import EventRejected

from .build import WIRE


def _load(name: str) -> object:
    return json.loads((WIRE / name).read_text())


@pytest.mark.parametrize(
    ("name", "rule", "signal", "condition", "value"),
    [
        (
            "azuremonitor_commonschema_metric_static_fired.json",
            "test-metricAlertRule",
            "Metric",
            "Fired",
            100.0,
        ),
        (
            "azuremonitor_commonschema_metric_dynamic_fired.json",
            "test-dynamicMetricAlertRule",
            "Metric",
            "Fired",
            78.09,
        ),
        (
            "azuremonitor_commonschema_metric_static_resolved.json",
            "WCUS-R2-Gen2",
            "Metric",
            "Resolved",
            None,
        ),
        (
            "azuremonitor_commonschema_log_alerts_v2_fired.json",
            "test-logAlertRule-v2",
            "Log",
            "Fired",
            3.0,
        ),
        (
            "azuremonitor_commonschema_activity_log_fired.json",
            "test-activityLogAlertRule",
            "Activity Log",
            "Fired",
            None,
        ),
        (
            "azuremonitor_legacy_metric_alert_static.json",
            "test-metricAlertRule",
            "Metric",
            "Fired",
            100.0,
        ),
    ],
)
def test_samples(name: str, rule: str, signal: str, condition: str, value: float | None) -> None:
    event = parse_alert(_load(name))
    assert (event.rule, event.type, event.subject, event.value) == (rule, signal, condition, value)
    assert event.resources and event.id


def test_custom_properties_can_name_the_target() -> None:
    event = parse_alert(_load("azuremonitor_commonschema_metric_static_fired.json"))
    assert event.properties == {"customKey1": "value1", "customKey2": "value2"}


def test_a_named_condition_is_the_one_whose_value_is_offered() -> None:
    payload = _load("azuremonitor_commonschema_metric_static_fired.json")
    assert parse_alert(payload, "Transactions").value == 100.0
    assert parse_alert(payload, "Percentage CPU").value is None


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p.pop("schemaId"), "schemaId must be"),
        (
            lambda p: p["data"]["essentials"].update(monitorCondition="Maybe"),
            "'Fired' or 'Resolved'",
        ),
        (
            lambda p: p["data"]["alertContext"]["condition"]["allOf"][0].update(metricValue="high"),
            "metricValue must be a number",
        ),
        (lambda p: p["data"]["essentials"].update(alertTargetIDs="x"), "alertTargetIDs"),
    ],
)
def test_malformed_alerts_say_why(mutate: object, reason: str) -> None:
    payload = _load("azuremonitor_commonschema_metric_static_fired.json")
    mutate(payload)  # type: ignore[operator]
    with pytest.raises(EventRejected, match=reason):
        parse_alert(payload)
