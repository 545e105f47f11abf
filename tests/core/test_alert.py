"""``[[alert]]``: a condition reported with the rules, never acted on; a failure of its
metric never holds a scale-in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scalerd.core import NotScaled

from .build import Run, rule, target

ALERT = {"name": "lag", "when": "lag > 1 max 5m"}
TRACK = {"metric": "rps", "type": "total", "target": 10}


def _run(current: int = 4) -> Run:
    spec = target(
        rule(min=1, max=10, track=[TRACK], alert=[ALERT], behavior={"scale_down": {}}),
        metrics=["rps", "lag"],
    )
    return Run(spec, current)


def _alert(decision: object) -> tuple[bool, str]:
    (report,) = [r for r in decision.rules if r.kind == "alert"]  # type: ignore[attr-defined]
    assert (report.rule, report.proposed) == ("lag", None)
    return report.fired, report.detail


@pytest.mark.parametrize(
    ("lag", "fired"), [(1.5, True), (1.0, False), (0.2, False)], ids=["above", "at", "below"]
)
def test_the_alert_is_reported_and_changes_nothing(lag: float, fired: bool) -> None:
    run = _run()
    decision = run.tick(0, rps=40, lag=lag)

    assert _alert(decision) == (fired, f"lag={lag:g}: {'holds' if fired else 'does not hold'}")
    assert decision.desired == 4  # what rps alone asks for
    assert [i.metric for i in decision.inputs] == ["rps"]


def test_the_highest_reading_of_its_window_counts() -> None:
    run = _run()
    run.tick(0, rps=40, lag=3.0)
    assert _alert(run.tick(120, rps=40, lag=0.1))[0]  # 3.0 is still inside 5 minutes
    assert not _alert(run.tick(400, rps=40, lag=0.1))[0]


def test_a_failed_alert_metric_does_not_hold_a_scale_in() -> None:
    run = Run(
        target(
            rule(
                min=1,
                max=10,
                track=[TRACK],
                alert=[ALERT],
                behavior={"scale_down": {"stabilization_window": "0s"}},
            ),
            metrics=["rps", "lag"],
        ),
        4,
    )
    decision = run.tick(0, rps=10, lag=None)

    assert decision.desired == 1
    assert decision.not_scaled_reason is None
    fired, detail = _alert(decision)
    assert not fired and detail.startswith("metric failed")


def test_an_alert_alone_is_not_a_rule() -> None:
    with pytest.raises(ValidationError, match="at least one rule"):
        rule(min=1, max=3, alert=[ALERT])


def test_an_alert_without_a_source_is_left_out() -> None:
    """A replay models only what scales: an alert whose metric has no source is skipped."""
    run = Run(target(rule(min=1, max=10, track=[TRACK], alert=[ALERT])), 4)
    decision = run.tick(0, rps=40)

    assert [r.kind for r in decision.rules] == ["track"]
    assert (decision.desired, decision.not_scaled_reason) == (4, NotScaled.WITHIN_TOLERANCE)
