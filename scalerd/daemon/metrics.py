"""The daemon's Prometheus metrics, in a registry of its own (not the process-global one),
so two daemons in one test process never share counters.

Besides capacities and decisions, each metric a target's rules read is exported as KEDA
exports a scaler's (``keda_scaler_metrics_value`` and the HPA's target): the value last
read, ``scalerd_metric_value{target,metric}``, and what each rule compares it with,
``scalerd_metric_target{target,metric,rule}`` (a track's target, a threshold's or a step
policy's threshold). A metric whose read failed has no value until it is read again.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..audit import AuditRecord
from ..core.rules import Rule

__all__ = ["DaemonMetrics"]


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.current = Gauge(
            "scalerd_target_current_capacity",
            "Provisioned capacity the actuator reported",
            ["target"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "scalerd_target_ready_capacity",
            "Ready capacity the actuator reported",
            ["target"],
            registry=self.registry,
        )
        self.desired = Gauge(
            "scalerd_target_desired_capacity",
            "Capacity the last decision asked for",
            ["target"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "scalerd_decisions",
            "Evaluations by outcome and reason",
            ["target", "action", "reason"],
            registry=self.registry,
        )
        self.source_errors = Counter(
            "scalerd_source_errors", "Failed source reads", ["source"], registry=self.registry
        )
        self.source_latency = Histogram(
            "scalerd_source_read_seconds",
            "Time to read a source",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        # of every target's evaluations together: a histogram per target is fourteen series
        # per target (140,000 at 10,000 targets), and the audit record has each one's time
        self.tick_duration = Histogram(
            "scalerd_tick_duration_seconds",
            "Time for one evaluation of one target",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.audit_backlog = Gauge(
            "scalerd_audit_backlog",
            "Audit records not yet in the audit stream (spooled)",
            registry=self.registry,
        )
        # the cluster (scalerd.cluster); zero outside one
        self.shards_owned = Gauge(
            "scalerd_shards_owned",
            "Shard leases this replica holds and has not seen run out",
            registry=self.registry,
        )
        self.lease_renew_failures = Counter(
            "scalerd_lease_renew_failures",
            "Heartbeat and lease renewal cycles that failed (Redis unreachable)",
            registry=self.registry,
        )
        self.lease_takeovers = Counter(
            "scalerd_lease_takeovers",
            "Shard leases acquired that another replica held before",
            registry=self.registry,
        )
        self.reloads = Counter(
            "scalerd_config_reloads", "Configuration reloads", ["outcome"], registry=self.registry
        )
        self.metric_value = Gauge(
            "scalerd_metric_value",
            "The value of a metric as the target's rules last read it (KEDA's "
            "keda_scaler_metrics_value)",
            ["target", "metric"],
            registry=self.registry,
        )
        self.metric_target = Gauge(
            "scalerd_metric_target",
            "What a rule compares the metric with: a track's target, a threshold",
            ["target", "metric", "rule"],
            registry=self.registry,
        )
        self.failures = Counter(
            "scalerd_failed_evaluations",
            "Evaluations with a failed metric read or a failed action",
            ["target", "cause"],
            registry=self.registry,
        )
        self.actions = Counter(
            "scalerd_scale_actions",
            "Capacity changes carried out, by direction",
            ["target", "direction"],
            registry=self.registry,
        )
        # the label sets exported per target, so a removed target leaves none behind
        self._series: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}
        # labelled children by (family, labels)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        # the rule whose targets each target's gauges show (they change only on a reload)
        self._rules: dict[str, Rule] = {}

    def observe(self, record: AuditRecord, rule: Rule | None = None) -> None:
        reason = record.not_scaled_reason or ("error" if record.error else "none")
        self._child(self.decisions, record.target, record.action, reason).inc()
        self.tick_duration.observe(record.duration_ms / 1000)
        if record.current is not None:
            self._child(self.current, record.target).set(record.current["provisioned"])
            self._child(self.ready, record.target).set(record.current["ready"])
        if record.desired is not None:
            self._child(self.desired, record.target).set(record.desired)
        target = record.target
        for report in record.inputs:
            labels = (target, str(report["metric"]))
            if report["value"] is None:
                self._remove(target, self.metric_value, labels)
            else:
                self._set(target, self.metric_value, labels, float(report["value"]))
        if rule is not None and self._rules.get(target) is not rule:
            self._rules[target] = rule
            for metric, label, value in _rule_targets(rule):
                self._set(target, self.metric_target, (target, metric, label), value)
        if any(report["error"] for report in record.inputs):
            self._child(self.failures, target, "metric").inc()
        if record.action == "failed":
            self._child(self.failures, target, "action").inc()
        if record.action == "scaled" and record.current is not None and record.desired is not None:
            before = record.current["provisioned"]
            if record.desired != before:
                direction = "up" if record.desired > before else "down"
                self._child(self.actions, target, direction).inc()

    def _child(self, family: Any, *labels: str) -> Any:
        """``family.labels(*labels)``, looked up once: at 10,000 targets the lookup (label
        validation, a lock) costs more than the update it is for."""
        child = self._children.get((family, labels))
        if child is None:
            child = self._children[family, labels] = family.labels(*labels)
        return child

    def _set(self, target: str, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        child = self._children.get((gauge, labels))
        if child is None:
            child = self._children[gauge, labels] = gauge.labels(*labels)
            self._series.setdefault(target, set()).add((gauge, labels))
        child.set(value)

    def _remove(self, target: str, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if (gauge, labels) in self._series.get(target, set()):
            gauge.remove(*labels)
            self._children.pop((gauge, labels), None)
            self._series[target].discard((gauge, labels))

    def forget(self, target: str) -> None:
        """Drop the gauges of a target removed by a reload."""
        self._rules.pop(target, None)
        for gauge in (self.current, self.ready, self.desired):
            self._children.pop((gauge, (target,)), None)
            with contextlib.suppress(KeyError):
                gauge.remove(target)
        for gauge, labels in self._series.pop(target, set()):
            self._children.pop((gauge, labels), None)
            gauge.remove(*labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _rule_targets(rule: Rule) -> list[tuple[str, str, float]]:
    """(metric, rule label, the value the rule compares the metric with)."""
    found = [(track.metric, track.label, track.target) for track in rule.track]
    found += [(t.when.metric, t.label, t.when.threshold) for t in rule.threshold]
    found += [(p.metric, p.label, p.threshold) for p in rule.step]
    return found
