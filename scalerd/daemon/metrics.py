"""The daemon's Prometheus metrics, in a registry of its own (not the process-global one),
so two daemons in one test process never share counters.

Besides capacities and decisions, each metric a target's rules read is exported as KEDA
exports a scaler's (``keda_scaler_metrics_value`` and the HPA's target): the value last
read, ``scalerd_metric_value{target,metric}``, and what each rule compares it with,
``scalerd_metric_target{target,metric,rule}`` (a track's target, a threshold's or a step
policy's threshold). A metric whose read failed has no value until it is read again.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..audit import AuditRecord
from ..core.rules import Rule

__all__ = ["DaemonMetrics"]


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
        # what each evaluation updates is kept in plain dicts and turned into series when
        # /metrics is scraped (``_TargetSeries``): at 10,000 targets, eight labelled
        # children per target cost more to update, and to keep, than the decision itself
        self._per_target = _TargetSeries()
        self.registry.register(self._per_target)

    def observe(self, record: AuditRecord, rule: Rule | None = None) -> None:
        """Count one evaluation and keep what its record says the target is at now."""
        self._per_target.observe(record, rule)
        self.tick_duration.observe(record.duration_ms / 1000)

    def forget(self, target: str) -> None:
        """Drop the series of a target removed by a reload."""
        self._per_target.forget(target)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# (name, help) of the per-target capacity gauges
_CAPACITIES = (
    ("scalerd_target_current_capacity", "Provisioned capacity the actuator reported"),
    ("scalerd_target_ready_capacity", "Ready capacity the actuator reported"),
    ("scalerd_target_desired_capacity", "Capacity the last decision asked for"),
)


class _TargetSeries:
    """The per-target series, kept as plain values and exposed at scrape time (a custom
    collector, as kube-state-metrics builds its series from the objects it holds)."""

    def __init__(self) -> None:
        # target → [current, ready, desired]: each the last value a record reported
        self.capacities: dict[str, list[float | None]] = {}
        self.values: dict[str, dict[str, float]] = {}  # target → metric → last value read
        self.rules: dict[str, tuple[Rule, list[tuple[str, str, float]]]] = {}
        self.decisions: dict[tuple[str, ...], int] = {}  # (target, action, reason)
        self.failures: dict[tuple[str, ...], int] = {}  # (target, cause)
        self.actions: dict[tuple[str, ...], int] = {}  # (target, direction)

    def observe(self, record: AuditRecord, rule: Rule | None) -> None:
        target = record.target
        reason = record.not_scaled_reason or ("error" if record.error else "none")
        _count(self.decisions, (target, record.action, reason))
        capacities = self.capacities.get(target)
        if capacities is None:
            capacities = self.capacities[target] = [None, None, None]
        current = record.current
        if current is not None:
            capacities[0], capacities[1] = current["provisioned"], current["ready"]
        if record.desired is not None:
            capacities[2] = record.desired
        values = self.values.get(target)
        if values is None:
            values = self.values[target] = {}
        failed = False
        for report in record.inputs:
            value = report["value"]
            if value is None:  # a failed read has no value until it is read again
                values.pop(str(report["metric"]), None)
            else:
                values[str(report["metric"])] = float(value)
            failed = failed or bool(report["error"])
        if rule is not None:
            known = self.rules.get(target)
            if known is None or known[0] is not rule:  # a rule changes only on a reload
                self.rules[target] = (rule, _rule_targets(rule))
        if failed:
            _count(self.failures, (target, "metric"))
        if record.action == "failed":
            _count(self.failures, (target, "action"))
        if record.action == "scaled" and current is not None and record.desired is not None:
            before = current["provisioned"]
            if record.desired != before:
                _count(self.actions, (target, "up" if record.desired > before else "down"))

    def forget(self, target: str) -> None:
        self.capacities.pop(target, None)
        self.values.pop(target, None)
        self.rules.pop(target, None)
        for counts in (self.decisions, self.failures, self.actions):
            for key in [key for key in counts if key[0] == target]:
                del counts[key]

    def collect(self) -> Iterator[Metric]:
        for index, (name, documentation) in enumerate(_CAPACITIES):
            gauge = GaugeMetricFamily(name, documentation, labels=["target"])
            for target, capacities in self.capacities.items():
                value = capacities[index]
                if value is not None:
                    gauge.add_metric([target], value)
            yield gauge
        yield _counters(
            "scalerd_decisions",
            "Evaluations by outcome and reason",
            ["target", "action", "reason"],
            self.decisions,
        )
        values = GaugeMetricFamily(
            "scalerd_metric_value",
            "The value of a metric as the target's rules last read it (KEDA's "
            "keda_scaler_metrics_value)",
            labels=["target", "metric"],
        )
        for target, by_metric in self.values.items():
            for metric, value in by_metric.items():
                values.add_metric([target, metric], value)
        yield values
        compared = GaugeMetricFamily(
            "scalerd_metric_target",
            "What a rule compares the metric with: a track's target, a threshold",
            labels=["target", "metric", "rule"],
        )
        for target, (_, found) in self.rules.items():
            for metric, label, value in found:
                compared.add_metric([target, metric, label], value)
        yield compared
        yield _counters(
            "scalerd_failed_evaluations",
            "Evaluations with a failed metric read or a failed action",
            ["target", "cause"],
            self.failures,
        )
        yield _counters(
            "scalerd_scale_actions",
            "Capacity changes carried out, by direction",
            ["target", "direction"],
            self.actions,
        )


def _count(counts: dict[tuple[str, ...], int], key: tuple[str, ...]) -> None:
    counts[key] = counts.get(key, 0) + 1


def _counters(
    name: str, documentation: str, labels: list[str], counts: dict[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in counts.items():
        family.add_metric(list(key), count)
    return family


def _rule_targets(rule: Rule) -> list[tuple[str, str, float]]:
    """(metric, rule label, the value the rule compares the metric with)."""
    found = [(track.metric, track.label, track.target) for track in rule.track]
    found += [(t.when.metric, t.label, t.when.threshold) for t in rule.threshold]
    found += [(p.metric, p.label, p.threshold) for p in rule.step]
    return found
