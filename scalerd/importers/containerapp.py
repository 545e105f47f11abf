"""``scalerd import containerapp``: the ``properties.template.scale`` of a container app
(``az containerapp show`` output, the ARM resource, or the ``scale`` section alone).
Container Apps runs KEDA under the hood with the HPA's default behavior, so its custom
rules are KEDA triggers and import as such; scalerd then scales the app itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import At, ImportFailure, load_documents
from .draft import Draft, Note, Section, seconds
from .hpa import simulate_metrics
from .keda import trigger
from .kubernetes import behavior, target_name

__all__ = ["convert"]

_PLACEHOLDER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/FILL-IN"
    "/providers/Microsoft.App/containerApps/{name}"
)


def convert(path: Path) -> Draft:
    (document,) = load_documents(path)[:1]
    at = At(path, (), getattr(document, "line", None))
    scale, scale_at, app = _scale(document, at)
    if scale is None:
        raise ImportFailure(
            f"{path}: no scale section found: give `az containerapp show` output, the ARM "
            "resource, or its properties.template.scale"
        )
    name = target_name(str(app.get("name") or path.stem)) if app else target_name(path.stem)
    draft = Draft(
        kind="containerapp", origin=f"{path.name}: container app {name}", anchor="keda-default"
    )
    resource_id = app.get("id") if app else None
    actuator_notes = []
    if not resource_id:
        resource_id = _PLACEHOLDER_ID.format(name=name)
        actuator_notes.append(
            Note(
                "the app's resource id",
                "the file has no `id`: fill in the subscription and resource group",
            )
        )
    actuator_notes.append(
        Note(
            "the app's own scale rules",
            "mode 'pin' sets minReplicas = maxReplicas, so the app's KEDA rules stop moving it "
            "and scalerd's rules below decide",
        )
    )
    draft.actuators.append(
        Section(
            {
                "name": name,
                "kind": "azure-container-apps",
                "resource_id": resource_id,
                "mode": "pin",
            },
            actuator_notes,
        )
    )
    minimum = scale_at.whole(scale, "minReplicas", 0)
    maximum = scale_at.whole(scale, "maxReplicas", 10)
    if maximum < 1 or minimum > maximum:
        raise scale_at.fail(f"minReplicas ({minimum}) must be ≤ maxReplicas ({maximum})")
    values: dict[str, Any] = {
        "name": name,
        "actuator": name,
        "interval": seconds(scale_at.whole(scale, "pollingInterval", 30)),
        "min": minimum,
        "max": maximum,
        "idle_before_zero": seconds(scale_at.whole(scale, "cooldownPeriod", 300)),
    }
    notes: list[Note] = []
    tracks = []
    for rule, where in scale_at.items(scale, "rules"):
        track, rule_notes = _rule(draft, name, rule, where)
        notes.extend(rule_notes)
        if track is not None:
            tracks.append(track)
    if tracks:
        values["track"] = tracks
        values["behavior"] = behavior({}, scale_at)[0]
    else:
        raise scale_at.fail(
            "no scale rule can be imported, so scalerd would have nothing to scale on: "
            + "; ".join(f"{note.construct}: {note.reason}" for note in notes)
        )
    queues = {s.name for s in draft.sources if s.values["kind"] in ("servicebus", "redis")}
    simulate = simulate_metrics(tracks)
    backlog = {t["metric"]: "backlog" for t in tracks if t["metric"] in queues}
    if backlog:
        simulate["metrics"] = simulate.get("metrics", {}) | backlog
    values["simulate"] = simulate
    draft.targets.append(Section(values, notes))
    return draft


def _scale(document: Any, at: At) -> tuple[Any, At, Any]:
    """The scale section, where it sits, and the app around it (if the file has one)."""
    if not isinstance(document, dict):
        raise at.fail("expected a JSON object")
    for path in (("properties", "template", "scale"), ("template", "scale"), ()):
        node: Any = document
        here = at
        for key in path:
            if not isinstance(node, dict) or key not in node:
                node = None
                break
            here, node = here.down(key, node), node[key]
        if isinstance(node, dict) and ({"rules", "minReplicas", "maxReplicas"} & set(node)):
            return node, here, (document if path else {})
    return None, at, {}


def _rule(draft: Draft, app: str, rule: Any, at: At) -> tuple[dict[str, Any] | None, list[Note]]:
    name = str(rule.get("name") or "rule")
    if "custom" in rule:
        custom = at.mapping(rule, "custom")
        here = at.down("custom", rule)
        kind = here.text(custom, "type")
        if kind == "http":
            return None, [_http_note(name, custom)]
        entry = {"type": kind, "name": name, "metadata": custom.get("metadata", {})}
        track, schedule, notes = trigger(draft, app, entry, here, {})
        if custom.get("auth") or custom.get("identity"):
            notes.append(
                Note(
                    f"rule {name}: auth",
                    "the app's secrets are not scalerd's: give scalerd the connection through "
                    "its identity or an environment variable (connection_string_env)",
                )
            )
        if schedule is not None:
            notes.append(
                Note(f"rule {name}: cron", "imported as a trigger only", {"custom": dict(custom)})
            )
        return track, notes
    if "http" in rule:
        return None, [_http_note(name, rule["http"])]
    if "tcp" in rule:
        return None, [
            Note(
                f"rule {name} (tcp)",
                "no source counts concurrent TCP connections at the ingress",
                {"tcp": rule["tcp"]},
            )
        ]
    if "azureQueue" in rule:
        return None, [
            Note(
                f"rule {name} (azureQueue)",
                "scalerd has no Azure Storage queue source yet",
                {"azureQueue": rule["azureQueue"]},
            )
        ]
    return None, [Note(f"rule {name}", "unknown rule kind", dict(rule))]


def _http_note(name: str, body: Any) -> Note:
    return Note(
        f"rule {name} (http concurrentRequests)",
        "Container Apps counts concurrent requests at its ingress; Azure Monitor publishes "
        "request counts, not concurrency, so no source reads that number: track a request "
        "rate or latency instead",
        {"http": body},
    )
