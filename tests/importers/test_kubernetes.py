"""HPA and KEDA imports carry the HPA's arithmetic, tolerance and behavior exactly, and
KEDA's polling, cooldown, activation, fallback, cron and pause as scalerd spells them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scalerd.importers import ImportFailure, convert

from .build import EXAMPLES, imported, target, write

PHP_APACHE = (EXAMPLES / "k8s_hpa_v2_php_apache.yaml").read_text()


def hpa_with_behavior(tmp_path: Path, fragment: str) -> Path:
    """php-apache (flow style) with one of the docs' behavior fragments, as INDEX.md
    suggests: the docs give behavior only as fragments."""
    behavior = textwrap.indent((EXAMPLES / fragment).read_text(), "  ")
    block = "\n".join(
        line.replace("{", "").replace("}", "") for line in PHP_APACHE.splitlines() if line
    )
    # the flow-style manifest as block YAML, then the fragment under spec
    text = textwrap.dedent(
        """\
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata:
          name: php-apache
        spec:
          scaleTargetRef:
            apiVersion: apps/v1
            kind: Deployment
            name: php-apache
          minReplicas: 1
          maxReplicas: 10
          metrics:
          - type: Resource
            resource:
              name: cpu
              target:
                type: Utilization
                averageUtilization: 50
        """
    )
    assert "averageUtilization: 50" in block  # the manifest these numbers come from
    return write(tmp_path, "hpa.yaml", text + behavior)


def test_php_apache_is_the_hpa_with_its_defaults_spelled_out(tmp_path: Path) -> None:
    text, toml = imported(tmp_path, "hpa", EXAMPLES / "k8s_hpa_v2_php_apache.yaml")
    php = target(toml)
    assert (php["interval"], php["min"], php["max"]) == ("15s", 1, 10)
    assert php["track"] == [{"metric": "cpu", "type": "utilization", "target": 50}]
    assert php["behavior"]["scale_up"] == {
        "stabilization_window": "0s",
        "select": "max",
        "policies": [
            {"type": "pods", "value": 4, "period": "15s"},
            {"type": "percent", "value": 100, "period": "15s"},
        ],
    }
    assert php["behavior"]["scale_down"]["stabilization_window"] == "300s"
    (cpu,) = toml["sources"]
    assert cpu["kind"] == "prometheus"
    assert (
        'kube_pod_container_resource_requests{namespace="default", pod=~"php-apache-.*"'
        in cpu["query"]
    )
    assert "no exact equivalent: cpu from metrics-server" in text
    assert toml["actuators"][0]["kind"] == "recording"


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        (
            "k8s_hpa_v2_behavior_scaledown_selectpolicy_min.yaml",
            {
                "scale_down": {
                    "stabilization_window": "300s",
                    "select": "min",
                    "policies": [
                        {"type": "percent", "value": 10, "period": "60s"},
                        {"type": "pods", "value": 5, "period": "60s"},
                    ],
                }
            },
        ),
        (
            "k8s_hpa_v2_behavior_scaledown_two_policies_default_select.yaml",
            {
                "scale_down": {
                    "stabilization_window": "300s",
                    "select": "max",
                    "policies": [
                        {"type": "pods", "value": 4, "period": "60s"},
                        {"type": "percent", "value": 10, "period": "60s"},
                    ],
                }
            },
        ),
        ("k8s_hpa_v2_behavior_scaledown_disabled.yaml", {"scale_down": {"select": "disabled"}}),
    ],
)
def test_each_documented_behavior_fragment_carries_over(
    tmp_path: Path, fragment: str, expected: dict
) -> None:
    _, toml = imported(tmp_path, "hpa", hpa_with_behavior(tmp_path, fragment))
    behavior = target(toml)["behavior"]
    for direction, values in expected.items():
        for key, value in values.items():
            assert behavior[direction][key] == value, (direction, key)


def test_the_tolerance_fragment_sets_the_scale_up_tolerance(tmp_path: Path) -> None:
    path = hpa_with_behavior(tmp_path, "k8s_hpa_v2_behavior_tolerance.yaml")
    _, toml = imported(tmp_path, "hpa", path)
    assert target(toml)["tolerance"] == {"up": 0.05, "down": 0.1}


def test_the_seed_hpa_cpu_70_between_2_and_10(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "seed.yaml",
        textwrap.dedent(
            """\
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: pravis-api, namespace: prod}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: pravis-api}
              minReplicas: 2
              maxReplicas: 10
              metrics:
              - type: Resource
                resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
              - type: External
                external:
                  metric: {name: queue_messages_ready, selector: {matchLabels: {queue: jobs}}}
                  target: {type: AverageValue, averageValue: "30"}
            """
        ),
    )
    _, toml = imported(tmp_path, "hpa", path)
    seed = target(toml)
    assert (seed["min"], seed["max"]) == (2, 10)
    assert seed["track"][0] == {"metric": "cpu", "type": "utilization", "target": 70}
    # External AverageValue: desired = ceil(value / target), a total held per replica
    assert seed["track"][1] == {"metric": "queue_messages_ready", "type": "total", "target": 30}
    assert 'queue="jobs"' in toml["sources"][1]["query"]


def test_memory_average_value_in_kubernetes_quantities(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mem.yaml",
        textwrap.dedent(
            """\
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: web}
            spec:
              scaleTargetRef: {kind: Deployment, name: web}
              maxReplicas: 5
              metrics:
              - type: Resource
                resource: {name: memory, target: {type: AverageValue, averageValue: 512Mi}}
            """
        ),
    )
    _, toml = imported(tmp_path, "hpa", path)
    assert target(toml)["track"] == [{"metric": "memory", "type": "average", "target": 536870912}]


def test_an_hpa_error_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        "kind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: x}\n"
        "  maxReplicas: 3\n  behavior:\n    scaleUp:\n      selectPolicy: Maximum\n",
    )
    with pytest.raises(
        ImportFailure, match=r"bad\.yaml:8: spec\.behavior\.scaleUp\.selectPolicy: "
    ):
        convert("hpa", path)


def test_keda_servicebus_takes_the_queue_and_flags_the_topic(tmp_path: Path) -> None:
    source = EXAMPLES / "keda_scaledobject_azure_servicebus_workload_identity.yaml"
    text, toml = imported(tmp_path, "keda", source)
    (queue,) = toml["sources"]
    assert queue["kind"] == "servicebus" and queue["queues"] == ["functions-sbqueue"]
    assert "subscriptions" not in queue
    track = target(toml)["track"][0]
    assert (track["type"], track["target"]) == ("total", 5)
    # the topic alternative is kept, commented, with the reason
    assert (
        "# not imported: trigger azure-servicebus: queueName and topicName/subscriptionName" in text
    )
    assert "#     topicName:" in text


def test_keda_redis_streams_polling_and_cooldown(tmp_path: Path) -> None:
    _, toml = imported(
        tmp_path, "keda", EXAMPLES / "keda_scaledobject_redis_streams_pollinginterval.yaml"
    )
    streams = target(toml)
    assert (streams["interval"], streams["idle_before_zero"]) == ("15s", "200s")
    assert (streams["min"], streams["max"]) == (1, 25)
    (source,) = toml["sources"]
    assert (source["mode"], source["group"]) == ("pending", "consumer-group-1")
    assert streams["track"][0]["target"] == 10


def test_keda_amp_example_once_its_go_template_values_are_filled_in(tmp_path: Path) -> None:
    text = (
        EXAMPLES / "keda_scaledobject_prometheus_minreplica0_behavior_cooldown.yaml"
    ).read_text()
    filled = text.replace("{{.AwsRegion}}", "us-east-1").replace("{{.WorkspaceID}}", "ws-1")
    _, toml = imported(tmp_path, "keda", write(tmp_path, "amp.yaml", filled))
    keda = target(toml)
    assert (keda["min"], keda["max"], keda["idle_before_zero"]) == (0, 2, "1s")
    assert keda["behavior"]["scale_down"]["stabilization_window"] == "15s"
    # the rest of the HPA's defaults still apply where the ScaledObject says nothing
    assert keda["behavior"]["scale_up"]["stabilization_window"] == "0s"
    assert keda["track"][0] == {
        "metric": "keda-so-prometheus",
        "type": "total",
        "target": 50,
        "activation": 0,
    }


def test_keda_cron_becomes_a_schedule_of_min_in_its_zone(tmp_path: Path) -> None:
    _, toml = imported(
        tmp_path, "keda", EXAMPLES / "keda_scaledobject_cron_plus_cpu_multiple_triggers.yaml"
    )
    (schedule,) = target(toml)["schedule"]
    assert schedule == {
        "name": "cron 0 6 * * *",
        "cron": "0 6 * * *",
        "end": "0 20 * * *",
        "timezone": "Asia/Kolkata",
        "min": 1,
    }


def test_keda_scaling_modifiers_are_kept_as_a_comment_and_the_fallback_imported(
    tmp_path: Path,
) -> None:
    text = (EXAMPLES / "keda_scaledobject_scalingmodifiers_fallback_fragment.yaml").read_text()
    filled = text.replace(
        "metadata: ...",
        "metadata: {serverAddress: 'http://prom:9090', query: 'up', threshold: '5'}",
    )
    path = write(tmp_path, "modifiers.yaml", filled)
    out, toml = imported(tmp_path, "keda", path)
    assert "# not imported: spec.advanced.scalingModifiers:" in out
    assert "best_metric ?? slower_metric ?? metric_backup ?? 8" in out
    assert target(toml)["fallback"] == {"failure_threshold": 3, "replicas": 10}


def test_keda_paused_annotation_and_an_unknown_trigger(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "paused.yaml",
        textwrap.dedent(
            """\
            apiVersion: keda.sh/v1alpha1
            kind: ScaledObject
            metadata:
              name: worker
              annotations: {autoscaling.keda.sh/paused: "true"}
            spec:
              scaleTargetRef: {name: worker}
              minReplicaCount: 1
              triggers:
              - type: kafka
                metadata: {bootstrapServers: "kafka:9092", consumerGroup: g, topic: t, lagThreshold: "50"}
              - type: redis
                metadata: {address: "redis:6379", listName: jobs, listLength: "20", activationListLength: "2"}
            """
        ),
    )
    text, toml = imported(tmp_path, "keda", path)
    worker = target(toml)
    assert worker["pause"] == "all"
    assert worker["track"] == [
        {"metric": "worker-redis", "type": "total", "target": 20, "activation": 2}
    ]
    assert toml["sources"][0]["url"] == "redis://redis:6379/0"
    assert (
        "# not imported: trigger kafka (type kafka): scalerd has no source for KEDA's 'kafka'"
        in text
    )
    assert "#     type: kafka" in text
