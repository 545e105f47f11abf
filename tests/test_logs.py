"""The log pipeline's cheap parts behave as the structlog parts they replace: the time
stamp reads as ``TimeStamper(fmt="iso", utc=True)``'s, and a logger bound once still
follows a reconfiguration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from scalerd import logs
from scalerd.logs import BoundOnce, _UtcStamp


@pytest.mark.parametrize("at", [1_764_600_000.123456, 1_764_600_000.0, 1_764_600_059.999999])
def test_the_stamp_reads_as_structlogs_iso_utc_stamp(
    at: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs.time, "time", lambda: at)
    ours = _UtcStamp()(None, "info", {})["timestamp"]
    theirs = datetime.fromtimestamp(at, UTC)  # what TimeStamper formats
    assert ours == theirs.isoformat().replace("+00:00", "Z")


def test_the_stamp_moves_on_with_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = _UtcStamp()
    monkeypatch.setattr(logs.time, "time", lambda: 1_764_600_000.5)
    first = stamp(None, "info", {})["timestamp"]
    monkeypatch.setattr(logs.time, "time", lambda: 1_764_600_061.25)
    assert first == "2025-12-01T14:40:00.500000Z"
    assert stamp(None, "info", {})["timestamp"] == "2025-12-01T14:41:01.250000Z"


def test_a_logger_bound_once_follows_a_reconfiguration() -> None:
    bound = BoundOnce("scalerd")
    before = bound.get()
    assert bound.get() is before  # bound once while nothing changes
    with capture_logs() as captured:
        bound.get().info("decision", target="api")
    assert captured == [{"event": "decision", "target": "api", "log_level": "info"}]
    saved = structlog.get_config()
    try:
        structlog.configure(processors=list(saved["processors"]))  # the same, anew
        assert bound.get() is not before
    finally:
        structlog.configure(**saved)
    assert bound.get() is not before  # (and bound again to what was restored)
