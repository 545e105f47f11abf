"""``scalerd import keda``: a KEDA ScaledObject (with the TriggerAuthentications and
Secrets beside it in the same file). KEDA feeds its triggers to an HPA: several triggers
take the max, each trigger's target is the HPA's, activation is KEDA's 0 ↔ 1 — all of
which scalerd has exactly. The triggers' metadata are strings, as KEDA takes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import At, ImportFailure, Located, load_documents
from .draft import Draft, Note, Section, seconds
from .hpa import simulate_metrics
from .kubernetes import (
    behavior,
    object_name,
    resource_metric,
    target_name,
    workload_actuator,
)

__all__ = ["convert", "trigger"]

_KIND = "ScaledObject"


def convert(path: Path) -> Draft:
    documents = load_documents(path)
    many = len(documents) > 1
    located = [
        (document, At(path, (index,) if many else (), getattr(document, "line", None)))
        for index, document in enumerate(documents)
    ]
    objects = [(d, at) for d, at in located if isinstance(d, dict) and d.get("kind") == _KIND]
    if not objects:
        objects = [(_fragment(d), at) for d, at in located if _is_fragment(d)]
    if not objects:
        kinds = sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)})
        if "ScaledJob" in kinds:
            raise ImportFailure(
                f"{path}: a ScaledJob starts one Kubernetes Job per event; scalerd scales "
                "long-running workloads (ScaledObjects), not jobs"
            )
        raise ImportFailure(
            f"{path}: no {_KIND} in the file (found: {', '.join(kinds) or 'nothing'})"
        )
    auth = {
        object_name(d, at)[1]: d
        for d, at in located
        if isinstance(d, dict)
        and d.get("kind") in ("TriggerAuthentication", "ClusterTriggerAuthentication")
    }
    names = [object_name(d, at)[1] for d, at in objects]
    draft = Draft(
        kind="keda", origin=f"{path.name}: {_KIND} " + ", ".join(names), anchor="keda-default"
    )
    for document, at in objects:
        _add(draft, document, at, auth)
    return draft


def _is_fragment(document: Any) -> bool:
    """A ``spec:`` or ``triggers:`` block as KEDA's docs print them (no ``kind``)."""
    return (
        isinstance(document, dict)
        and "kind" not in document
        and ("spec" in document or "triggers" in document)
    )


def _fragment(document: Any) -> Any:
    """A ``spec:`` or ``triggers:`` fragment, as the docs print them, made a ScaledObject."""
    spec = document.get("spec", document)
    whole = Located({"kind": _KIND, "metadata": {"name": "imported"}, "spec": spec})
    whole.line = getattr(document, "line", None)
    return whole


def _add(draft: Draft, document: Any, at: At, auth: dict[str, Any]) -> None:
    namespace, name = object_name(document, at)
    spec = at.mapping(document, "spec")
    here = at.down("spec", document)
    ref = here.mapping(spec, "scaleTargetRef", {"name": name})
    workload = here.down("scaleTargetRef", spec).text(ref, "name")
    label = target_name(name)
    notes: list[Note] = []
    minimum = here.whole(spec, "minReplicaCount", 0)
    maximum = here.whole(spec, "maxReplicaCount", 100)
    if maximum < 1 or minimum > maximum:
        raise here.fail(f"minReplicaCount ({minimum}) must be ≤ maxReplicaCount ({maximum})")
    values: dict[str, Any] = {
        "name": label,
        "actuator": workload_actuator(
            draft, label, ref, here.down("scaleTargetRef", spec), minimum
        ),
        "interval": seconds(here.whole(spec, "pollingInterval", 30)),
        "min": minimum,
        "max": maximum,
    }
    # KEDA's cooldownPeriod is the idle time before it scales to zero, and only that
    values["idle_before_zero"] = seconds(here.whole(spec, "cooldownPeriod", 300))
    annotations = here.down("metadata", document).mapping(
        document.get("metadata", {}), "annotations", {}
    )
    if str(annotations.get("autoscaling.keda.sh/paused", "")).lower() == "true":
        values["pause"] = "all"
    if "autoscaling.keda.sh/paused-replicas" in annotations:
        values["override"] = {
            "capacity": here.whole(annotations, "autoscaling.keda.sh/paused-replicas")
        }
    for key, reason in (
        ("initialCooldownPeriod", "scalerd has no delay before the first scale-in to zero"),
        ("idleReplicaCount", "scalerd scales to zero or to min, with no separate idle count"),
    ):
        if key in spec and spec[key] not in (0, None):
            notes.append(Note(f"spec.{key}", reason, {key: spec[key]}))
    tracks, schedules = [], []
    for entry, where in here.items(spec, "triggers"):
        track, schedule, trigger_notes = trigger(
            draft, label, entry, where, auth, namespace, workload
        )
        notes.extend(trigger_notes)
        if track is not None:
            tracks.append(track)
        if schedule is not None:
            schedules.append(schedule)
    _fallback(spec, here, values, notes)
    advanced = here.mapping(spec, "advanced", {})
    there = here.down("advanced", spec)
    hpa = there.mapping(advanced, "horizontalPodAutoscalerConfig", {})
    behaviors, tolerance = behavior(
        there.down("horizontalPodAutoscalerConfig", advanced).mapping(hpa, "behavior", {}),
        there.down("horizontalPodAutoscalerConfig", advanced).down("behavior", hpa),
    )
    if "scalingModifiers" in advanced:
        notes.append(
            Note(
                "spec.advanced.scalingModifiers",
                "scalerd has no formula over trigger values: each trigger below is its own "
                "rule and the largest proposal wins, as without scalingModifiers",
                {"scalingModifiers": advanced["scalingModifiers"]},
            )
        )
    if advanced.get("restoreToOriginalReplicaCount"):
        notes.append(
            Note(
                "spec.advanced.restoreToOriginalReplicaCount",
                "scalerd leaves capacity where it is when a target is removed",
                {"restoreToOriginalReplicaCount": advanced["restoreToOriginalReplicaCount"]},
            )
        )
    if tolerance:
        values["tolerance"] = {"up": tolerance.get("up", 0.1), "down": tolerance.get("down", 0.1)}
    if tracks:
        values["track"] = tracks
        values["behavior"] = behaviors
    if schedules:
        values["schedule"] = schedules
    if not tracks and not schedules:
        raise here.fail(
            "no trigger can be imported as a rule, so scalerd would have nothing to scale on: "
            + "; ".join(f"{note.construct}: {note.reason}" for note in notes if note.dropped)
        )
    if not tracks:
        notes.append(
            Note("triggers", "only schedules were imported: the target's bounds move, nothing else")
        )
        if values["min"] == 0:
            values["min"] = 1
            notes.append(
                Note(
                    "minReplicaCount: 0",
                    "scalerd scales to zero only on a tracked metric's activation: min is 1 "
                    "outside the cron windows",
                )
            )
    values["simulate"] = simulate_metrics(tracks) | _backlogs(draft, tracks)
    draft.targets.append(Section(values, notes))


def _backlogs(draft: Draft, tracks: list[dict[str, Any]]) -> dict[str, Any]:
    """Queue depths are backlogs in a replay (work waiting, drained by ready replicas)."""
    queues = {
        section.name
        for section in draft.sources
        if section.values["kind"] in ("servicebus", "redis")
    }
    kinds = {t["metric"]: "backlog" for t in tracks if t["metric"] in queues}
    return {"metrics": kinds} if kinds else {}


def _fallback(spec: Any, at: At, values: dict[str, Any], notes: list[Note]) -> None:
    if "fallback" not in spec:
        return
    fallback = at.mapping(spec, "fallback")
    here = at.down("fallback", spec)
    values["fallback"] = {
        "failure_threshold": here.whole(fallback, "failureThreshold"),
        "replicas": here.whole(fallback, "replicas"),
    }
    mode = here.text(fallback, "behavior", "static")
    if mode != "currentReplicasIfHigher":
        notes.append(
            Note(
                f"spec.fallback.behavior {mode}",
                "scalerd never scales in on missing data: its fallback raises capacity to "
                "`replicas` and never lowers it (KEDA's currentReplicasIfHigher)",
            )
        )


# --- triggers --------------------------------------------------------------------------

_AVERAGE = {"AverageValue": "total", "Value": "average"}


def trigger(
    draft: Draft,
    target: str,
    entry: Any,
    at: At,
    auth: dict[str, Any],
    namespace: str = "default",
    workload: str = "",
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[Note]]:
    """One KEDA trigger (also a Container Apps ``custom`` rule): its rule or schedule, and
    notes. Sources it reads are added to ``draft``."""
    kind = at.text(entry, "type")
    metadata = at.mapping(entry, "metadata", {})
    meta = at.down("metadata", entry)
    label = str(entry.get("name") or kind)
    notes: list[Note] = []
    if "authenticationRef" in entry:
        ref = entry["authenticationRef"]
        name = ref.get("name") if isinstance(ref, dict) else None
        notes.append(_auth_note(kind, name, auth.get(str(name))))
    metric_type = str(entry.get("metricType") or metadata.get("type") or "AverageValue")
    if kind in ("cpu", "memory"):
        if metric_type not in ("Utilization", "AverageValue"):
            raise at.down("metricType", entry).fail(
                "cpu and memory take Utilization or AverageValue"
            )
        track_type = "utilization" if metric_type == "Utilization" else "average"
        value = meta.number(metadata, "value")
        return (
            resource_metric(draft, kind, track_type, value, namespace, workload or target),
            None,
            notes,
        )
    if metric_type not in _AVERAGE:
        raise at.down("metricType", entry).fail(
            f"metricType is AverageValue or Value (Utilization is for cpu and memory), got {metric_type!r}"
        )
    track_type = _AVERAGE[metric_type]
    if kind == "prometheus":
        source = draft.source(
            {
                "name": f"{target}-{label}",
                "kind": "prometheus",
                "url": meta.text(metadata, "serverAddress"),
                "query": meta.text(metadata, "query"),
            }
        )
        return (
            _track(source, track_type, meta, metadata, "threshold", None, "activationThreshold"),
            None,
            notes,
        )
    if kind == "azure-servicebus":
        return _servicebus(draft, target, label, track_type, meta, metadata, notes), None, notes
    if kind == "redis":
        source = _redis(
            draft, target, label, meta, metadata, "list_length", [meta.text(metadata, "listName")]
        )
        return (
            _track(source, track_type, meta, metadata, "listLength", 5, "activationListLength"),
            None,
            notes,
        )
    if kind == "redis-streams":
        stream = [meta.text(metadata, "stream")]
        if "lagCount" in metadata:
            source = _redis(draft, target, label, meta, metadata, "lag", stream)
            return (
                _track(source, track_type, meta, metadata, "lagCount", 5, "activationLagCount"),
                None,
                notes,
            )
        if "streamLength" in metadata:
            source = _redis(draft, target, label, meta, metadata, "stream_length", stream)
            return (
                _track(
                    source, track_type, meta, metadata, "streamLength", 5, "activationStreamLength"
                ),
                None,
                notes,
            )
        source = _redis(draft, target, label, meta, metadata, "pending", stream)
        return (
            _track(
                source,
                track_type,
                meta,
                metadata,
                "pendingEntriesCount",
                5,
                "activationPendingEntriesCount",
            ),
            None,
            notes,
        )
    if kind == "azure-monitor":
        return _azure_monitor(draft, target, label, track_type, meta, metadata, notes), None, notes
    if kind == "azure-app-insights":
        return _app_insights(draft, target, label, track_type, meta, metadata, notes), None, notes
    if kind == "cron":
        schedule = {
            "name": label if label != "cron" else f"cron {meta.text(metadata, 'start')}",
            "cron": meta.text(metadata, "start"),
            "end": meta.text(metadata, "end"),
            "timezone": meta.text(metadata, "timezone"),
            "min": meta.whole(metadata, "desiredReplicas"),
        }
        notes.append(
            Note(
                f"cron trigger {label}",
                "KEDA's cron reports desiredReplicas as a metric inside the window, so the "
                "HPA's rate policies pace the rise; scalerd raises min for the window at once "
                "(add ramp to soften it)",
            )
        )
        return None, schedule, notes
    notes.append(
        Note(
            f"trigger {label} (type {kind})",
            f"scalerd has no source for KEDA's {kind!r} scaler yet",
            _plain_trigger(entry),
        )
    )
    return None, None, notes


def _track(
    source: str,
    track_type: str,
    at: At,
    metadata: Any,
    target_key: str,
    default: float | None,
    activation_key: str,
) -> dict[str, Any]:
    target = (
        at.number(metadata, target_key)
        if default is None
        else at.number(metadata, target_key, default)
    )
    if target <= 0:
        raise at.down(target_key, metadata).fail("must be greater than 0")
    track: dict[str, Any] = {"metric": source, "type": track_type, "target": target}
    activation = at.number(metadata, activation_key, 0)
    track["activation"] = activation
    return track


def _servicebus(
    draft: Draft, target: str, label: str, track_type: str, at: At, metadata: Any, notes: list[Note]
) -> dict[str, Any]:
    values: dict[str, Any] = {"name": f"{target}-{label}", "kind": "servicebus"}
    namespace = metadata.get("namespace")
    if "connectionFromEnv" in metadata:
        # the connection string names its namespace; KEDA ignores `namespace` beside it
        values["connection_string_env"] = at.text(metadata, "connectionFromEnv")
    elif namespace:
        values["namespace"] = str(namespace).removesuffix(".servicebus.windows.net")
    if "namespace" not in values and "connection_string_env" not in values:
        values["namespace"] = "FILL-IN"
        notes.append(
            Note(
                f"trigger {label}: the namespace",
                "the connection comes from a TriggerAuthentication secret: set namespace "
                "(managed identity) or connection_string_env",
            )
        )
    queue = metadata.get("queueName")
    topic, subscription = metadata.get("topicName"), metadata.get("subscriptionName")
    if queue:
        values["queues"] = [str(queue)]
        if topic or subscription:
            notes.append(
                Note(
                    f"trigger {label}: queueName and topicName/subscriptionName",
                    "KEDA reads the queue when both are given; the topic subscription is "
                    "not read (name one or the other)",
                    {"topicName": topic, "subscriptionName": subscription},
                )
            )
    elif topic and subscription:
        values["subscriptions"] = [f"{topic}/{subscription}"]
    else:
        raise at.fail("azure-servicebus needs queueName, or topicName and subscriptionName")
    cloud = str(metadata.get("cloud", "AzurePublicCloud"))
    if cloud not in ("AzurePublicCloud", ""):
        notes.append(
            Note(
                f"trigger {label}: cloud {cloud}",
                "set [azure] servicebus_suffix to the cloud's Service Bus suffix"
                + (f" ({metadata['endpointSuffix']})" if "endpointSuffix" in metadata else ""),
            )
        )
    if str(metadata.get("useRegex", "")).lower() == "true":
        notes.append(
            Note(
                f"trigger {label}: useRegex",
                "scalerd reads the queues it is given by name, not a pattern",
                {"useRegex": metadata["useRegex"], "operation": metadata.get("operation")},
            )
        )
    source = draft.source(values)
    return _track(source, track_type, at, metadata, "messageCount", 5, "activationMessageCount")


def _redis(
    draft: Draft, target: str, label: str, at: At, metadata: Any, mode: str, keys: list[str]
) -> str:
    address = metadata.get("address") or (
        f"{metadata.get('host', 'localhost')}:{metadata.get('port', 6379)}"
        if "host" in metadata
        else metadata.get("addressFromEnv") and "localhost:6379"
    )
    scheme = "rediss" if str(metadata.get("enableTLS", "")).lower() == "true" else "redis"
    database = metadata.get("databaseIndex", 0)
    values: dict[str, Any] = {
        "name": f"{target}-{label}",
        "kind": "redis",
        "mode": mode,
        "keys": keys,
    }
    if address:
        values["url"] = f"{scheme}://{address}/{database}"
    if mode in ("pending", "lag"):
        values["group"] = at.text(metadata, "consumerGroup")
    return draft.source(values)


def _azure_monitor(
    draft: Draft, target: str, label: str, track_type: str, at: At, metadata: Any, notes: list[Note]
) -> dict[str, Any]:
    uri = at.text(metadata, "resourceURI")
    subscription = at.text(metadata, "subscriptionId", "00000000-0000-0000-0000-000000000000")
    group = at.text(metadata, "resourceGroupName", "FILL-IN")
    values: dict[str, Any] = {
        "name": f"{target}-{label}",
        "kind": "azure-monitor",
        "resource_id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{uri}",
        "region": "FILL-IN",
        "metric": at.text(metadata, "metricName"),
        "aggregation": {
            "average": "average",
            "total": "total",
            "maximum": "maximum",
            "minimum": "minimum",
            "count": "count",
        }.get(str(metadata.get("metricAggregationType", "Average")).lower(), "average"),
    }
    if metadata.get("metricNamespace"):
        values["namespace"] = str(metadata["metricNamespace"])
    if metadata.get("metricFilter"):
        values["filter"] = str(metadata["metricFilter"])
    notes.append(
        Note(
            f"trigger {label}: the region",
            "scalerd reads metrics through the regional batch API: set region to the "
            "resource's region",
        )
    )
    source = draft.source(values)
    return _track(source, track_type, at, metadata, "targetValue", None, "activationTargetValue")


def _app_insights(
    draft: Draft, target: str, label: str, track_type: str, at: At, metadata: Any, notes: list[Note]
) -> dict[str, Any]:
    """Application Insights metrics are Azure Monitor metrics of the component."""
    timespan = at.text(metadata, "metricAggregationTimespan", "0:5")
    hours, _, minutes = timespan.partition(":")
    try:
        window = int(hours or 0) * 3600 + int(minutes or 0) * 60
    except ValueError:
        raise at.down("metricAggregationTimespan", metadata).fail(
            f"expected h:mm, got {timespan!r}"
        ) from None
    aggregation = str(metadata.get("metricAggregationType", "avg")).lower()
    values: dict[str, Any] = {
        "name": f"{target}-{label}",
        "kind": "azure-monitor",
        "resource_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/FILL-IN"
        "/providers/microsoft.insights/components/FILL-IN",
        "region": "FILL-IN",
        "metric": at.text(metadata, "metricId"),
        "namespace": "microsoft.insights/components",
        "aggregation": {
            "avg": "average",
            "sum": "total",
            "min": "minimum",
            "max": "maximum",
            "count": "count",
        }.get(aggregation, "average"),
        "window": f"{max(window, 60)}s",
    }
    if metadata.get("metricFilter"):
        values["filter"] = str(metadata["metricFilter"])
    notes.append(
        Note(
            f"trigger {label}: the Application Insights component",
            "KEDA names it by its application id; scalerd reads its metrics through Azure "
            "Monitor by resource id: set resource_id and region to the component's",
        )
    )
    source = draft.source(values)
    return _track(source, track_type, at, metadata, "targetValue", None, "activationTargetValue")


def _auth_note(kind: str, name: str | None, document: Any) -> Note:
    spec = document.get("spec", {}) if isinstance(document, dict) else {}
    if "podIdentity" in spec:
        provider = (
            spec["podIdentity"].get("provider") if isinstance(spec["podIdentity"], dict) else None
        )
        how = (
            "scalerd uses DefaultAzureCredential (workload or managed identity) for Azure"
            if str(provider).startswith("azure")
            else f"scalerd has no {provider} pod identity: give it credentials its source can use"
        )
    elif "secretTargetRef" in spec or "env" in spec:
        how = (
            "scalerd takes secrets from its environment, never from config.toml: expose the "
            "Secret as an environment variable and name it (password_env, connection_string_env, token_env)"
        )
    else:
        how = "give scalerd the same credentials through its environment or identity"
    return Note(f"trigger {kind} authenticationRef {name}", how)


def _plain_trigger(entry: Any) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "authenticationRef"}
