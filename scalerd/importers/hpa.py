"""``scalerd import hpa``: an ``autoscaling/v2`` HorizontalPodAutoscaler (``v1``'s
``targetCPUUtilizationPercentage`` too). The arithmetic, the tolerance and ``behavior``
are the HPA's exactly; what differs is where the metrics are read and what is scaled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import At, ImportFailure, load_documents, quantity
from .draft import Draft, Section
from .kubernetes import (
    HPA_INTERVAL,
    behavior,
    labels,
    named_metric,
    object_name,
    per_pod,
    resource_metric,
    target_name,
    workload_actuator,
)

__all__ = ["convert"]

_KIND = "HorizontalPodAutoscaler"


def convert(path: Path) -> Draft:
    documents = load_documents(path)
    found = [
        (
            document,
            At(path, (index,) if len(documents) > 1 else (), getattr(document, "line", None)),
        )
        for index, document in enumerate(documents)
        if isinstance(document, dict) and document.get("kind") == _KIND
    ]
    if not found:
        if any(isinstance(d, dict) and "kind" not in d and "behavior" in d for d in documents):
            raise ImportFailure(
                f"{path}: a behavior fragment, not a {_KIND}: put it under spec.behavior of "
                "the HPA it belongs to and import that"
            )
        kinds = ", ".join(sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)}))
        raise ImportFailure(f"{path}: no {_KIND} in the file (found: {kinds or 'nothing'})")
    names = [object_name(document, at)[1] for document, at in found]
    draft = Draft(
        kind="hpa",
        origin=f"{path.name}: {_KIND} " + ", ".join(names),
        anchor="hpa-default",
    )
    for document, at in found:
        add_target(draft, document, at)
    return draft


def add_target(draft: Draft, document: Any, at: At) -> None:
    namespace, name = object_name(document, at)
    spec = at.mapping(document, "spec")
    here = at.down("spec", document)
    ref = here.mapping(spec, "scaleTargetRef")
    workload = here.down("scaleTargetRef", spec).text(ref, "name")
    minimum = here.whole(spec, "minReplicas", 1)
    maximum = here.whole(spec, "maxReplicas")
    if maximum < 1 or minimum > maximum:
        raise here.fail(f"minReplicas ({minimum}) must be ≤ maxReplicas ({maximum}), and max ≥ 1")
    tracks = _metrics(draft, spec, here, namespace, workload)
    if not tracks:
        # autoscaling/v2's default when metrics is empty: CPU at 80 % utilization
        tracks = [resource_metric(draft, "cpu", "utilization", 80, namespace, workload)]
    behaviors, tolerance = behavior(here.mapping(spec, "behavior", {}), here.down("behavior", spec))
    target_label = target_name(name)
    actuator = workload_actuator(
        draft, target_label, ref, here.down("scaleTargetRef", spec), minimum
    )
    values: dict[str, Any] = {
        "name": target_label,
        "actuator": actuator,
        "interval": HPA_INTERVAL,
        "min": minimum,
        "max": maximum,
    }
    if tolerance:
        values["tolerance"] = {"up": tolerance.get("up", 0.1), "down": tolerance.get("down", 0.1)}
    values["track"] = tracks
    values["behavior"] = behaviors
    values["simulate"] = simulate_metrics(tracks)
    draft.targets.append(Section(values))


def simulate_metrics(tracks: list[dict[str, Any]]) -> dict[str, Any]:
    """How `scalerd simulate` models each metric: utilization as utilization, the rest
    inferred from the rule that reads it."""
    kinds = {t["metric"]: "utilization" for t in tracks if t["type"] == "utilization"}
    return {"metric_delay": "0s", "metrics": kinds} if kinds else {"metric_delay": "0s"}


def _metrics(
    draft: Draft, spec: Any, at: At, namespace: str, workload: str
) -> list[dict[str, Any]]:
    tracks: list[dict[str, Any]] = []
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        value = at.number(spec, "targetCPUUtilizationPercentage")
        tracks.append(resource_metric(draft, "cpu", "utilization", value, namespace, workload))
    for metric, where in at.items(spec, "metrics"):
        tracks.append(_metric(draft, metric, where, namespace, workload))
    return tracks


def _metric(draft: Draft, metric: Any, at: At, namespace: str, workload: str) -> dict[str, Any]:
    kind = at.text(metric, "type")
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        body = at.mapping(metric, key)
        here = at.down(key, metric)
        resource = here.text(body, "name")
        if resource not in ("cpu", "memory"):
            raise here.down("name", body).fail(f"a resource is cpu or memory, got {resource!r}")
        target = here.mapping(body, "target")
        there = here.down("target", body)
        target_type = there.text(target, "type")
        if target_type == "Utilization":
            value = there.number(target, "averageUtilization")
            return resource_metric(draft, resource, "utilization", value, namespace, workload)
        if target_type == "AverageValue":
            value = quantity(there, target, "averageValue")
            return resource_metric(draft, resource, "average", value, namespace, workload)
        raise there.down("type", target).fail(
            f"a resource target is Utilization or AverageValue, got {target_type!r}"
        )
    if kind == "Pods":
        body = at.mapping(metric, "pods")
        here = at.down("pods", metric)
        name = here.down("metric", body).text(here.mapping(body, "metric"), "name")
        target = here.mapping(body, "target")
        value = quantity(here.down("target", body), target, "averageValue")
        source = named_metric(
            draft, name, per_pod(name, namespace, workload), f"Pods metric {name}"
        )
        return {"metric": source, "type": "average", "target": value}
    if kind in ("Object", "External"):
        key = kind.lower()
        body = at.mapping(metric, key)
        here = at.down(key, metric)
        described = here.mapping(body, "metric")
        name = here.down("metric", body).text(described, "name")
        selector = labels(described.get("selector"), here.down("metric", body))
        where = f'namespace="{namespace}"' + (f", {selector}" if selector else "")
        query = f"sum({name}{{{where}}})"
        source = named_metric(draft, name, query, f"{kind} metric {name}")
        target = here.mapping(body, "target")
        there = here.down("target", body)
        target_type = there.text(target, "type")
        # Value: desired = ceil(current * value / target), the per-replica arithmetic;
        # AverageValue: desired = ceil(value / target), a total held per replica
        if target_type == "Value":
            return {"metric": source, "type": "average", "target": quantity(there, target, "value")}
        if target_type == "AverageValue":
            value = quantity(there, target, "averageValue")
            return {"metric": source, "type": "total", "target": value}
        raise there.down("type", target).fail(
            f"an {kind} target is Value or AverageValue, got {target_type!r}"
        )
    raise at.down("type", metric).fail(
        f"unknown metric type {kind!r} (Resource, ContainerResource, Pods, Object, External)"
    )
