"""``scalerd import`` on every published example in ``examples/`` (copied from
shared/import_examples with its INDEX.md, which names each source): the valid ones give a
config that ``load_config`` accepts, the templates, fragments and invalid files a clear
error naming the file and, where YAML knows it, the line."""

from __future__ import annotations

import pathlib

import pytest

from scalerd.importers import ImportFailure, convert

from .build import EXAMPLES, imported

# file → importer kind, for every example that is a complete definition
IMPORTED = {
    "aws_appautoscaling_describe_scaling_policies_stepscaling_output.json": "aws-step",
    "aws_appautoscaling_target_tracking_config_customized.json": "aws-step",
    "aws_appautoscaling_target_tracking_config_predefined.json": "aws-step",
    "azure_autoscale_rule_percentchangecount_fragment.json": "azure-autoscale",
    "azure_autoscalesettings_arm_template_two_recurring_profiles.json": "azure-autoscale",
    "azure_autoscalesettings_createorupdate_request_2022-10-01.json": "azure-autoscale",
    "k8s_hpa_v2_php_apache.yaml": "hpa",
    "keda_scaledobject_azure_app_insights_minreplica0_with_deployment.yaml": "keda",
    "keda_scaledobject_azure_servicebus_workload_identity.yaml": "keda",
    "keda_scaledobject_cpu.yaml": "keda",
    "keda_scaledobject_cron_plus_cpu_multiple_triggers.yaml": "keda",
    "keda_scaledobject_prometheus_basic.yaml": "keda",
    "keda_scaledobject_redis_list_with_triggerauth.yaml": "keda",
    "keda_scaledobject_redis_streams_pollinginterval.yaml": "keda",
    "keda_trigger_azure_servicebus_parameters.yaml": "keda",
}

# file → (kind, what the error says): templates, fragments, files that are not valid as
# published (INDEX.md says which), and the one whose only signal scalerd cannot read
REFUSED = {
    "keda_scaledobject_prometheus_minreplica0_behavior_cooldown.yaml": (
        "keda",
        ":53: not valid YAML",
    ),
    "keda_scaledobject_scalingmodifiers_average_fragment.yaml": ("keda", ":8: not valid YAML"),
    "keda_scaledobject_scalingmodifiers_fallback_fragment.yaml": (
        "keda",
        ":13: spec.triggers[0].metadata: expected a mapping, got '...'",
    ),
    "keda_scaledobject_spec_overview_template.yaml": (
        "keda",
        ":4: metadata.name: expected a string, got a mapping (is this a template",
    ),
    "keda_scaledjob_spec_overview_template.yaml": ("keda", "scalerd scales long-running"),
    "k8s_hpa_v2_behavior_default.yaml": ("hpa", "a behavior fragment"),
    "k8s_hpa_v2_behavior_scaledown_disabled.yaml": ("hpa", "a behavior fragment"),
    "k8s_hpa_v2_behavior_scaledown_selectpolicy_min.yaml": ("hpa", "a behavior fragment"),
    "k8s_hpa_v2_behavior_scaledown_two_policies_default_select.yaml": (
        "hpa",
        "a behavior fragment",
    ),
    "k8s_hpa_v2_behavior_tolerance.yaml": ("hpa", "a behavior fragment"),
    "azure_containerapps_scale_custom_http_2025-01-01.json": (
        "containerapp",
        "nothing to scale on: rule httpscalingrule (http concurrentRequests)",
    ),
}


def test_every_example_is_covered() -> None:  # a new example needs an expectation
    files = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".json", ".yaml")}
    assert files == set(IMPORTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_a_complete_example_imports_into_a_config_that_loads(
    tmp_path: pathlib.Path, name: str
) -> None:
    text, toml = imported(tmp_path, IMPORTED[name], EXAMPLES / name)
    assert toml["targets"] and toml["actuators"]
    assert text.startswith(f"# Imported by `scalerd import {IMPORTED[name]} {name}`")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_template_fragment_or_invalid_file_is_refused_with_where_and_why(name: str) -> None:
    kind, expected = REFUSED[name]
    with pytest.raises(ImportFailure) as failure:
        convert(kind, EXAMPLES / name)
    message = str(failure.value)
    assert message.startswith(str(EXAMPLES / name))
    assert expected in message
