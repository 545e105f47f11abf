"""Azure autoscale, Container Apps and AWS imports: Azure's threshold rules, cooldowns and
profiles, Container Apps' KEDA rules, AWS's step adjustments and target tracking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalerd.importers import ImportFailure, convert

from .build import EXAMPLES, imported, target, write

VMSS = "/subscriptions/1111/resourceGroups/shop/providers/Microsoft.Compute/virtualMachineScaleSets/web"


def azure_rule(
    op: str, threshold: float, window: str, direction: str, value: str, **extra: object
) -> dict:
    return {
        "metricTrigger": {
            "metricName": "Percentage CPU",
            "metricResourceUri": VMSS,
            "timeGrain": "PT1M",
            "statistic": "Average",
            "timeWindow": window,
            "timeAggregation": "Average",
            "operator": op,
            "threshold": threshold,
            **extra,
        },
        "scaleAction": {
            "direction": direction,
            "type": "ChangeCount",
            "value": value,
            "cooldown": "PT5M",
        },
    }


def seed_setting(tmp_path: Path) -> Path:
    """The seeds' Azure rules: CPU > 75 avg 5m → +2, CPU < 30 avg 10m → -1, 2..10."""
    setting = {
        "location": "westeurope",
        "properties": {
            "enabled": True,
            "targetResourceUri": VMSS,
            "profiles": [
                {
                    "name": "default",
                    "capacity": {"minimum": "2", "maximum": "10", "default": "2"},
                    "rules": [
                        azure_rule("GreaterThan", 75, "PT5M", "Increase", "2"),
                        azure_rule("LessThan", 30, "PT10M", "Decrease", "1"),
                    ],
                }
            ],
        },
    }
    return write(tmp_path, "setting.json", json.dumps(setting))


def test_the_seed_azure_rules_become_its_threshold_rules(tmp_path: Path) -> None:
    _, toml = imported(tmp_path, "azure-autoscale", seed_setting(tmp_path))
    web = target(toml)
    assert (web["min"], web["max"], web["default"], web["interval"]) == (2, 10, 2, "60s")
    assert web["threshold"] == [
        {"when": "Percentage CPU > 75 avg 300s", "action": "+2", "cooldown": "300s"},
        {"when": "Percentage CPU < 30 avg 600s", "action": "-1", "cooldown": "300s"},
    ]
    (cpu,) = toml["sources"]  # one source serves both rules, read over the longer window
    assert (cpu["kind"], cpu["region"], cpu["window"]) == ("azure-monitor", "westeurope", "600s")
    assert web["metrics"] == {"Percentage CPU": cpu["name"]}


def test_the_rest_example_days_as_numbers_an_odd_grain_and_a_fixed_date(tmp_path: Path) -> None:
    source = EXAMPLES / "azure_autoscalesettings_createorupdate_request_2022-10-01.json"
    text, toml = imported(tmp_path, "azure-autoscale", source)
    setting = target(toml)
    # the sample's decrease rule also says GreaterThan: the operator is the rule's own
    assert setting["threshold"][1]["when"] == "Percentage CPU > 15 avg 300s"
    assert setting["threshold"][1]["action"] == "-2"
    (saludos,) = [s for s in setting["schedule"] if s["name"] == "saludos"]
    assert saludos["cron"] == "15 5 * * 1"  # days ["1"]: Monday, .NET's DayOfWeek
    assert "no exact equivalent: timeGrain PT2M of Percentage CPU" in text
    assert "# not imported: notifications:" in text
    assert "#         - gu@ms.com" in text


def test_the_docs_template_two_weekly_profiles_end_each_other(tmp_path: Path) -> None:
    source = EXAMPLES / "azure_autoscalesettings_arm_template_two_recurring_profiles.json"
    text, toml = imported(tmp_path, "azure-autoscale", source)
    setting = target(toml)
    assert (setting["min"], setting["max"]) == (3, 20)  # the weekday profile is the base
    (weekend,) = setting["schedule"]
    assert weekend == {
        "name": "Weekend profile",
        "min": 1,
        "max": 3,
        "default": 1,
        "cron": "1 0 * * 6",
        "timezone": "Europe/Chisinau",  # "E. Europe Standard Time"
        "end": "0 4 * * 1",  # the weekday profile's start
    }
    # its rules divide the metric per instance: no equivalent, kept as comments
    assert "threshold" not in setting
    assert text.count("# not imported: rule on Inbound Flows with dividePerInstance") == 1
    assert "#       dividePerInstance: true" in text


def test_percent_change_and_exact_count(tmp_path: Path) -> None:
    _, toml = imported(
        tmp_path,
        "azure-autoscale",
        EXAMPLES / "azure_autoscale_rule_percentchangecount_fragment.json",
    )
    assert target(toml)["threshold"][0]["action"] == "+20%"
    rule = azure_rule("LessThan", 10, "PT5M", "Decrease", "3")
    rule["scaleAction"]["type"] = "ExactCount"
    _, toml = imported(tmp_path, "azure-autoscale", write(tmp_path, "exact.json", json.dumps(rule)))
    assert target(toml)["threshold"][0] | {} == {
        "when": "Percentage CPU < 10 avg 300s",
        "action": "=3",
        "cooldown": "300s",
        "direction": "in",
    }


def test_an_unknown_operator_is_refused_with_its_key(tmp_path: Path) -> None:
    rule = azure_rule("Above", 10, "PT5M", "Increase", "1")
    with pytest.raises(ImportFailure, match=r"metricTrigger\.operator: unknown operator 'Above'"):
        convert("azure-autoscale", write(tmp_path, "bad.json", json.dumps(rule)))


def test_the_seed_container_app_http_50_and_servicebus_5(tmp_path: Path) -> None:
    app = {
        "id": "/subscriptions/1111/resourceGroups/shop/providers/Microsoft.App/containerApps/orders",
        "name": "orders",
        "properties": {
            "template": {
                "scale": {
                    "minReplicas": 0,
                    "maxReplicas": 20,
                    "rules": [
                        {"name": "http", "http": {"metadata": {"concurrentRequests": "50"}}},
                        {
                            "name": "queue",
                            "custom": {
                                "type": "azure-servicebus",
                                "metadata": {
                                    "queueName": "orders",
                                    "namespace": "shop-bus",
                                    "messageCount": "5",
                                },
                                "auth": [{"secretRef": "sb", "triggerParameter": "connection"}],
                            },
                        },
                    ],
                }
            }
        },
    }
    text, toml = imported(tmp_path, "containerapp", write(tmp_path, "app.json", json.dumps(app)))
    orders = target(toml)
    assert (orders["min"], orders["max"], orders["interval"], orders["idle_before_zero"]) == (
        0,
        20,
        "30s",
        "300s",
    )
    assert orders["track"] == [
        {"metric": "orders-queue", "type": "total", "target": 5, "activation": 0}
    ]
    (actuator,) = toml["actuators"]
    assert actuator == {
        "name": "orders",
        "kind": "azure-container-apps",
        "resource_id": app["id"],
        "mode": "pin",
    }
    assert toml["sources"][0]["namespace"] == "shop-bus"
    assert "# not imported: rule http (http concurrentRequests):" in text
    assert orders["simulate"]["metrics"] == {"orders-queue": "backlog"}


def test_aws_step_policy_with_its_alarm(tmp_path: Path) -> None:
    policies = json.loads(
        (
            EXAMPLES / "aws_appautoscaling_describe_scaling_policies_stepscaling_output.json"
        ).read_text()
    )
    policies["MetricAlarms"] = [
        {
            "AlarmName": "web-app-cpu-gt-75",
            "MetricName": "CPUUtilization",
            "Threshold": 75,
            "Period": 60,
            "Statistic": "Average",
        }
    ]
    policies["ScalableTargets"] = [
        {"ResourceId": "service/default/web-app", "MinCapacity": 1, "MaxCapacity": 8}
    ]
    text, toml = imported(tmp_path, "aws-step", write(tmp_path, "aws.json", json.dumps(policies)))
    web = target(toml)
    assert (web["min"], web["max"]) == (1, 8)
    assert web["step"] == [
        {
            "name": "web-app-cpu-gt-75",
            "metric": "web-app-cpuutilization",
            "aggregation": "avg",
            "window": "60s",
            "threshold": 75,
            "adjustment_type": "percent",
            "cooldown": "60s",
            "steps": [{"adjust": 200, "lower": 0}],
        }
    ]
    assert "alarm threshold" not in text  # known, so no placeholder note


def test_aws_step_policy_without_its_alarm_says_the_threshold_is_a_placeholder(
    tmp_path: Path,
) -> None:
    text, toml = imported(
        tmp_path,
        "aws-step",
        EXAMPLES / "aws_appautoscaling_describe_scaling_policies_stepscaling_output.json",
    )
    assert target(toml)["step"][0]["threshold"] == 0
    assert "the alarm threshold: it is the CloudWatch alarm's (web-app-cpu-gt-75)" in text


def test_aws_target_tracking_cooldowns(tmp_path: Path) -> None:
    _, toml = imported(
        tmp_path, "aws-step", EXAMPLES / "aws_appautoscaling_target_tracking_config_predefined.json"
    )
    tracking = target(toml)
    assert tracking["cooldown"] == {"up": "60s", "down": "60s"}
    assert tracking["track"][0]["type"] == "utilization" and tracking["track"][0]["target"] == 75
    assert tracking["behavior"]["scale_down"]["stabilization_window"] == "0s"
