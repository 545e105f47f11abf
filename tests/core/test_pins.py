"""Behaviours the README promises that no other test pinned: each of these fails when the
behaviour it names is broken (found by injecting bugs one at a time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scalerd.core.aggregate import read_metric
from scalerd.core.bounds import _ramped
from scalerd.core.ladder import constrain
from scalerd.core.model import Sample
from scalerd.core.rules import Ladder, Tier

from .build import Run, rule, target

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(minutes=3)


@pytest.mark.parametrize(
    ("age", "fresh"),
    [
        pytest.param(MAX_AGE, True, id="exactly max_age old: still counts"),
        pytest.param(MAX_AGE + timedelta(milliseconds=1), False, id="a millisecond more: stale"),
    ],
)
def test_a_point_exactly_max_age_old_is_fresh(age: timedelta, fresh: bool) -> None:
    """README: stale means *older* than max_age; a point exactly that old is still read."""
    samples = (Sample(NOW - age, 42.0),)
    report = read_metric("cpu", "cpu", samples, "avg", timedelta(0), MAX_AGE, None, NOW)
    assert (report.value == 42.0, report.error is None) == (fresh, fresh)
    if not fresh:
        assert report.error is not None and report.error.startswith("stale")


@pytest.mark.parametrize(
    ("base", "profile", "progress", "expected"),
    [
        # 2 + (5 - 2) x 0.5 = 3.5: rounded up, toward the profile's 5
        pytest.param(2, 5, 0.5, 4, id="raising: rounds up"),
        # 10 + (3 - 10) x 0.5 = 6.5: rounded down, toward the profile's 3
        pytest.param(10, 3, 0.5, 6, id="lowering: rounds down"),
        # 2 + 3 x 0.1 = 2.3: already a step toward 5 after a tenth of the ramp
        pytest.param(2, 5, 0.1, 3, id="a tenth in: one step already"),
        pytest.param(2, 5, 1.0, 5, id="ramp done: the profile's value"),
    ],
)
def test_a_ramp_value_that_is_not_whole_rounds_toward_the_profile(
    base: int, profile: int, progress: float, expected: int
) -> None:
    assert _ramped(base, profile, progress) == expected


def test_of_two_allowed_moves_toward_the_desired_tier_the_nearer_to_it_wins() -> None:
    tiers = tuple(Tier(f"T{n}", float(n)) for n in range(1, 5))
    # from T1, T2 and T3 are allowed, T4 is not: asked for T4, go to T3, not T2
    ladder = Ladder(tiers, frozenset({(1, 2), (1, 3)}))
    reason = constrain(1, 4, ladder)
    assert reason is not None and (reason.before, reason.after) == (4, 3)
    # and downward: from T4 to T1 with T3 and T2 allowed, T2 is the nearer to T1
    down = Ladder(tiers, frozenset({(4, 3), (4, 2)}))
    reason = constrain(4, 1, down)
    assert reason is not None and reason.after == 2


def test_a_second_alarm_in_the_cooldown_of_an_in_cooldown_scale_out_keeps_the_base() -> None:
    """AWS: during a scale-out cooldown, what the *initiating* scale-out added counts toward
    the next one. A scale-out inside that cooldown restarts the cooldown but does not move
    the base: a third alarm still counts from the capacity before the first."""
    steps = [
        {"lower": 0, "upper": 10, "adjust": 2},
        {"lower": 10, "upper": 20, "adjust": 3},
        {"lower": 20, "adjust": 5},
    ]
    spec = target(
        rule(
            max=100,
            step=[
                {"metric": "cpu", "threshold": 50, "cooldown": "5m", "window": "1m", "steps": steps}
            ],
        )
    )
    run = Run(spec, 10)
    assert run.tick(0, cpu=55).desired == 12  # +2 from 10; cooldown to 300 s, base 10
    assert run.tick(120, cpu=65).desired == 13  # in cooldown: 10 + 3; cooldown to 420 s
    assert run.state.scale_out_base == 10
    # in the restarted cooldown: 10 + 5 = 15 (from 13 it would be 18)
    assert run.tick(360, cpu=75).desired == 15
