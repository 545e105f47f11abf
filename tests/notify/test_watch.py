"""Which records become which notices, each once when its condition begins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scalerd.audit import AuditRecord
from scalerd.notify.watch import TargetWatch, notices_for

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _record(n: int, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "ts": T0 + timedelta(seconds=30 * n),
        "id": f"r{n}",
        "prev": None,
        "target": "db",
        "kind": "azure-postgres-flexible",
        "instance": "a",
        "config_version": "v",
        "action": "held",
        "dry_run": False,
        "duration_ms": 1.0,
        "current": {"provisioned": 2, "ready": 2, "operation": None},
        "recommended": 2,
        "desired": 2,
        "not_scaled_reason": "WithinTolerance",
    }
    values.update(fields)
    return AuditRecord(**values)


def _whats(records: list[AuditRecord], maximum: int | None = None) -> list[str]:
    watch = TargetWatch()
    out = []
    for record in records:
        notices = notices_for(
            record,
            watch,
            rapid_actions=2,
            rapid_window=timedelta(minutes=5),
            metric_failures=2,
            maximum=maximum,
        )
        out.extend(n.what for n in notices)
    return out


def test_rapid_scaling_once_per_window() -> None:
    scaled = [_record(n, action="scaled", desired=3 + n, not_scaled_reason=None) for n in range(5)]
    assert _whats(scaled) == ["scaled", "scaled", "scaled", "rapid_scaling", "scaled", "scaled"]


def test_at_max_once_until_it_leaves_max() -> None:
    at_max = dict(recommended=9, desired=5, not_scaled_reason="AlreadyAtMax")
    records = [_record(0, **at_max), _record(1, **at_max), _record(2), _record(3, **at_max)]
    assert _whats(records, maximum=5) == ["at_max", "at_max"]


def test_metric_failure_after_more_than_n_and_fallback_when_it_starts() -> None:
    failing = dict(
        inputs=({"metric": "cpu", "error": "timed out"},),
        not_scaled_reason="MetricFailure",
    )
    fallback = dict(
        failing,
        steps=(
            {"code": "metric_failure", "detail": "cpu failed: 3 failures in a row: fallback 4"},
        ),
    )
    records = [
        _record(0, **failing),
        _record(1, **failing),
        _record(2, **fallback),
        _record(3, **fallback),
    ]
    assert _whats(records) == ["metric_failure", "fallback"]


def test_a_restarting_change_before_and_after() -> None:
    started = _record(
        0, action="scaled", desired=3, restarts=True, tier="GP_Standard_D4s_v3", operation="op-1"
    )
    ended = _record(
        1,
        action="scaled",
        current=None,
        recommended=None,
        desired=3,
        not_scaled_reason=None,
        operation="op-1",
    )
    assert _whats([started, ended]) == ["scaled", "restart_started", "restart_finished"]


def _alerting(n: int, fired: bool, detail: str = "lag=1.5: holds") -> AuditRecord:
    report = {"rule": "lag", "kind": "alert", "fired": fired, "proposed": None, "detail": detail}
    return _record(n, rules=(report,))


def test_an_alert_once_each_time_it_begins_to_hold() -> None:
    records = [
        _alerting(0, False, "lag=0.2: does not hold"),
        _alerting(1, True),
        _alerting(2, True),
        _alerting(3, False, "lag=0.3: does not hold"),
        _alerting(4, True),
    ]
    assert _whats(records) == ["alert", "alert"]


def test_a_failed_alert_read_neither_begins_nor_ends_it() -> None:
    records = [_alerting(0, True), _alerting(1, False, "metric failed: stale"), _alerting(2, True)]
    assert _whats(records) == ["alert"]
