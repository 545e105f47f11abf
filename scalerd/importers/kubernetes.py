"""What the Kubernetes importers share: the HPA ``behavior`` (exact: scalerd implements the
HPA's windows and policies), the HPA's metric targets, and the workload they scale."""

from __future__ import annotations

import re
from typing import Any

from .documents import At, quantity
from .draft import Draft, Note, Section, decimal, seconds

__all__ = [
    "HPA_INTERVAL",
    "PROMETHEUS_URL",
    "behavior",
    "object_name",
    "resource_metric",
    "workload_actuator",
]

# the HPA controller's sync period (--horizontal-pod-autoscaler-sync-period)
HPA_INTERVAL = "15s"
# where a cluster's Prometheus usually answers (kube-prometheus); the note says to check it
PROMETHEUS_URL = "http://prometheus-k8s.monitoring.svc:9090"

# autoscaling/v2 defaults.go, written out so the imported config says what it does
_DEFAULTS = {
    "scaleUp": {
        "stabilization_window": "0s",
        "select": "max",
        "policies": [
            {"type": "pods", "value": 4, "period": "15s"},
            {"type": "percent", "value": 100, "period": "15s"},
        ],
    },
    "scaleDown": {
        "stabilization_window": "300s",
        "select": "max",
        "policies": [{"type": "percent", "value": 100, "period": "15s"}],
    },
}
_SELECT = {"Max": "max", "Min": "min", "Disabled": "disabled"}
_POLICY = {"Pods": "pods", "Percent": "percent"}


def behavior(spec: Any, at: At) -> tuple[dict[str, Any], dict[str, float]]:
    """An HPA ``behavior`` (or KEDA's ``advanced.horizontalPodAutoscalerConfig.behavior``)
    as scalerd's, with Kubernetes' defaults filled in where a field is left out; and the
    per-direction tolerances it sets."""
    out: dict[str, Any] = {}
    tolerance: dict[str, float] = {}
    for direction, ours in (("scaleUp", "scale_up"), ("scaleDown", "scale_down")):
        rules = at.mapping(spec, direction, {}) if spec else {}
        here = at.down(direction, spec)
        default = _DEFAULTS[direction]
        result = dict(default)
        if "stabilizationWindowSeconds" in rules:
            window = here.whole(rules, "stabilizationWindowSeconds")
            if window > 3600:
                raise here.down("stabilizationWindowSeconds", rules).fail(
                    f"Kubernetes allows at most 3600 seconds, got {window}"
                )
            result["stabilization_window"] = seconds(window)
        if "selectPolicy" in rules:
            select = here.text(rules, "selectPolicy")
            if select not in _SELECT:
                raise here.down("selectPolicy", rules).fail(
                    f"selectPolicy must be Max, Min or Disabled, got {select!r}"
                )
            result["select"] = _SELECT[select]
        policies = []
        for policy, where in here.items(rules, "policies"):
            kind = where.text(policy, "type")
            if kind not in _POLICY:
                raise where.down("type", policy).fail(f"type must be Pods or Percent, got {kind!r}")
            value = where.whole(policy, "value")
            if value < 1:
                raise where.down("value", policy).fail("must be greater than 0")
            period = where.whole(policy, "periodSeconds")
            if not 1 <= period <= 1800:
                raise where.down("periodSeconds", policy).fail(
                    f"Kubernetes allows 1 to 1800 seconds, got {period}"
                )
            policies.append({"type": _POLICY[kind], "value": value, "period": seconds(period)})
        if policies:
            result["policies"] = policies
        if "tolerance" in rules:
            tolerance["up" if direction == "scaleUp" else "down"] = quantity(
                here, rules, "tolerance"
            )
        out[ours] = result
    return out, tolerance


def object_name(document: Any, at: At) -> tuple[str, str]:
    """``(namespace, name)`` of a Kubernetes object."""
    metadata = at.mapping(document, "metadata")
    here = at.down("metadata", document)
    name = here.text(metadata, "name")
    namespace = here.text(metadata, "namespace", "default")
    return namespace, name


def target_name(name: str) -> str:
    """A name config.toml accepts for a target, source or actuator."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]+", "-", name).strip("-._:")
    return cleaned or "imported"


def workload_actuator(draft: Draft, name: str, ref: Any, at: At, initial: int) -> str:
    """The actuator of a Deployment or StatefulSet: a recording one, said so plainly."""
    kind = at.text(ref, "kind", "Deployment")
    workload = at.text(ref, "name")
    draft.actuators.append(
        Section(
            {"name": name, "kind": "recording", "initial": initial},
            [
                Note(
                    f"scaleTargetRef {kind}/{workload}",
                    "scalerd has no Kubernetes actuator yet: this recording actuator decides "
                    "and audits every change without touching the cluster (a dry run you can "
                    "compare with the HPA's own events); replace it once one exists",
                )
            ],
        )
    )
    return name


def _pods(namespace: str, workload: str) -> str:
    # Kubernetes names hold only [a-z0-9.-]: the dot is the one regex character in them
    return f'namespace="{namespace}", pod=~"{workload.replace(".", "[.]")}-.*"'


def resource_metric(
    draft: Draft, resource: str, target_type: str, value: float, namespace: str, workload: str
) -> dict[str, Any]:
    """A ``cpu`` or ``memory`` target: a Prometheus source computing what metrics-server
    gives the HPA (usage summed over the pods, against their requests), and its track."""
    pods = _pods(namespace, workload)
    usage = (
        f'sum(rate(container_cpu_usage_seconds_total{{{pods}, container!=""}}[1m]))'
        if resource == "cpu"
        else f'sum(container_memory_working_set_bytes{{{pods}, container!=""}})'
    )
    if target_type == "utilization":
        requests = f'sum(kube_pod_container_resource_requests{{{pods}, resource="{resource}"}})'
        query = f"100 * {usage} / {requests}"
    else:
        query = f"{usage} / count(kube_pod_info{{{pods}}})"
    source = draft.source(
        {"name": resource, "kind": "prometheus", "url": PROMETHEUS_URL, "query": query},
        Note(
            f"{resource} from metrics-server",
            "scalerd does not read metrics-server: this Prometheus query computes the same "
            "number from cAdvisor and kube-state-metrics (usage summed over the pods, "
            "divided by their requests for a utilization); set url to your Prometheus",
        ),
    )
    return {"metric": source, "type": target_type, "target": value}


def named_metric(draft: Draft, name: str, query: str, origin: str) -> str:
    """A Pods, Object or External metric of the HPA, read through Prometheus."""
    return draft.source(
        {"name": target_name(name), "kind": "prometheus", "url": PROMETHEUS_URL, "query": query},
        Note(
            origin,
            "the HPA reads it through the custom or external metrics API; this Prometheus "
            "query is the usual source behind that API (prometheus-adapter): check it and "
            "set url to your Prometheus",
        ),
    )


def per_pod(metric: str, namespace: str, workload: str) -> str:
    return f"avg({metric}{{{_pods(namespace, workload)}}})"


def labels(selector: Any, at: At) -> str:
    """A label selector's ``matchLabels`` as PromQL matchers."""
    if not selector:
        return ""
    match = at.mapping(selector, "matchLabels", {})
    return ", ".join(f'{key}="{value}"' for key, value in match.items())


def number_text(value: float) -> str:
    return decimal(value)
