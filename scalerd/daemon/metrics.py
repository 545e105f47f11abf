"""The daemon's Prometheus metrics, in a registry of its own (not the process-global one),
so two daemons in one test process never share counters."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..audit import AuditRecord

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
        self.tick_duration = Histogram(
            "scalerd_tick_duration_seconds",
            "Time for one evaluation of one target",
            ["target"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.audit_backlog = Gauge(
            "scalerd_audit_backlog",
            "Audit records not yet in the audit stream (spooled)",
            registry=self.registry,
        )
        self.reloads = Counter(
            "scalerd_config_reloads", "Configuration reloads", ["outcome"], registry=self.registry
        )

    def observe(self, record: AuditRecord) -> None:
        reason = record.not_scaled_reason or ("error" if record.error else "none")
        self.decisions.labels(record.target, record.action, reason).inc()
        self.tick_duration.labels(record.target).observe(record.duration_ms / 1000)
        if record.current is not None:
            self.current.labels(record.target).set(record.current["provisioned"])
            self.ready.labels(record.target).set(record.current["ready"])
        if record.desired is not None:
            self.desired.labels(record.target).set(record.desired)

    def forget(self, target: str) -> None:
        """Drop the gauges of a target removed by a reload."""
        for gauge in (self.current, self.ready, self.desired):
            with contextlib.suppress(KeyError):
                gauge.remove(target)

    def render(self) -> bytes:
        return generate_latest(self.registry)
