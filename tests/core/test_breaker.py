"""Circuit breakers (``[[breaker]]``): hold scale-out while a dependency is failing, with
hysteresis, a hold time before closing, and a chosen meaning for a missing reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalerd.config import load_rule_file
from scalerd.core import Capacity, NotScaled, Step
from scalerd.core.model import BreakerState
from scalerd.errors import ConfigError

from .build import Run, at, rule, target

DB = "db use"


def breaker(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "orders-db",
        "metric": DB,
        "open_when": {"above": 0.95},
        "close_when": {"below": 0.8, "for": "2m"},
    }
    spec.update(fields)
    return spec


def guarded(*breakers: dict[str, Any], **fields: Any) -> Run:
    """``rps`` tracked at 10 per replica, 1..20, no scale-down window; starts at 4."""
    spec: dict[str, Any] = {
        "min": 1,
        "max": 20,
        "track": [{"metric": "rps", "type": "total", "target": 10}],
        "behavior": {"scale_down": {"stabilization_window": "0s"}},
        "breaker": list(breakers or (breaker(),)),
    }
    spec.update(fields)
    return Run(target(rule(**spec)), 4)


def breaker_steps(decision: Any) -> list[Any]:
    return [step for step in decision.steps if step.code == Step.BREAKER]


def test_an_open_breaker_holds_scale_out_at_the_current_capacity() -> None:
    run = guarded()
    decision = run.tick(0, rps=70, **{DB: 0.97})

    assert (decision.recommended, decision.desired) == (7, 4)
    assert decision.not_scaled_reason == NotScaled.BREAKER_OPEN
    [step] = breaker_steps(decision)
    assert (step.before, step.after, step.holds_as) == (7, 4, NotScaled.BREAKER_OPEN)
    assert step.detail == ("breaker orders-db opened: db use 0.97 > 0.95; scale-out 4→7 held at 4")
    assert run.state.breakers["orders-db"] == BreakerState(True, at(0), None, 0.97)
    # the breaker's reading is one of the decision's inputs
    assert [report.metric for report in decision.inputs] == ["rps", DB]

    later = run.tick(15, rps=70, **{DB: 0.99})
    assert later.desired == 4
    assert breaker_steps(later)[0].detail == (
        "breaker orders-db open: db use 0.99 > 0.95 since 08:00:00Z; scale-out 4→7 held at 4"
    )


def test_a_closed_breaker_adds_no_step_and_changes_nothing() -> None:
    run = guarded()
    decision = run.tick(0, rps=70, **{DB: 0.5})

    assert decision.desired == 7 and breaker_steps(decision) == []
    assert run.state.breakers["orders-db"].open is False


def test_scale_in_the_rules_ask_for_goes_ahead_while_open() -> None:
    run = guarded()
    run.tick(0, rps=40, **{DB: 0.97})
    decision = run.tick(15, rps=20, **{DB: 0.97})

    assert decision.desired == 2
    [step] = breaker_steps(decision)
    assert (step.before, step.after, step.holds_as) == (2, 2, None)
    assert step.detail.endswith("; no scale-out to hold")


def test_the_minimum_still_applies_while_open() -> None:
    run = guarded(min=6)
    decision = run.tick(0, rps=70, **{DB: 0.97})

    # held at 4 by the breaker, then raised to min 6 by the bounds, which come last
    codes = [(str(step.code), step.before, step.after) for step in decision.steps]
    assert ("breaker", 7, 4) in codes and ("too_few_replicas", 4, 6) in codes
    assert decision.desired == 6


def test_it_closes_only_after_the_reading_stays_healthy_for_the_hold_time() -> None:
    run = guarded()
    run.tick(0, rps=70, **{DB: 0.97})
    # between the thresholds: still open (hysteresis), and no hold time runs
    assert run.tick(15, rps=70, **{DB: 0.9}).desired == 4
    assert "not yet < 0.8" in breaker_steps(run.decisions[-1])[0].detail
    # healthy from 30 s: the 2 minutes run from there
    assert run.tick(30, rps=70, **{DB: 0.7}).desired == 4
    assert run.tick(90, rps=70, **{DB: 0.7}).desired == 4
    assert "for 1m of 2m" in breaker_steps(run.decisions[-1])[0].detail
    # a reading back in the band restarts the hold time
    assert run.tick(105, rps=70, **{DB: 0.85}).desired == 4
    assert run.state.breakers["orders-db"].healthy_since is None
    run.tick(120, rps=70, **{DB: 0.7})
    assert run.tick(225, rps=70, **{DB: 0.7}).desired == 4  # 1m45s of 2m
    closing = run.tick(240, rps=70, **{DB: 0.7})

    assert closing.desired == 7
    [step] = breaker_steps(closing)
    assert step.detail == (
        "breaker orders-db closed: db use 0.7 < 0.8 for 2m (open since 08:00:00Z, 4m)"
    )
    assert run.state.breakers["orders-db"] == BreakerState(False, at(240))


def test_the_default_close_is_back_past_the_open_threshold_for_a_minute() -> None:
    run = guarded(breaker(close_when=None))
    run.tick(0, rps=70, **{DB: 0.97})
    assert run.tick(15, rps=70, **{DB: 0.9}).desired == 4  # below 0.95: the minute starts
    assert run.tick(60, rps=70, **{DB: 0.9}).desired == 4
    assert run.tick(75, rps=70, **{DB: 0.9}).desired == 7


def test_a_breaker_that_opens_below_a_health_signal() -> None:
    run = guarded(breaker(open_when={"below": 0.5}, close_when={"above": 0.5, "for": "0s"}))
    assert run.tick(0, rps=70, **{DB: 0}).desired == 4
    assert "db use 0 < 0.5" in breaker_steps(run.decisions[-1])[0].detail
    assert run.tick(15, rps=70, **{DB: 1}).desired == 7


@pytest.mark.parametrize(
    ("missing", "opens", "closes_after_hold"),
    [
        pytest.param("keep", False, False, id="keep: no evidence either way"),
        pytest.param("open", True, False, id="open: counted as failing"),
        pytest.param("closed", False, True, id="closed: counted as healthy"),
    ],
)
def test_a_missing_reading_means_what_missing_says(
    missing: str, opens: bool, closes_after_hold: bool
) -> None:
    # a closed breaker meets a failed read
    run = guarded(breaker(missing=missing))
    decision = run.tick(0, rps=70, **{DB: None})
    assert (decision.desired == 4) is opens
    [step] = breaker_steps(decision)
    assert "db use missing (source unreachable)" in step.detail
    # the breaker's metric failing is not a sizing metric's failure: nothing else holds
    assert all(step.code != Step.METRIC_FAILURE for step in decision.steps)

    # an open breaker meets failed reads for longer than its hold time
    run = guarded(breaker(missing=missing))
    run.tick(0, rps=70, **{DB: 0.97})
    run.tick(15, rps=70, **{DB: None})
    decision = run.tick(135, rps=70, **{DB: None})
    assert (decision.desired == 7) is closes_after_hold
    assert run.state.breakers["orders-db"].open is not closes_after_hold


def test_a_stale_reading_is_missing() -> None:
    run = guarded(breaker(missing="open"))
    run.tick(0, rps=40, **{DB: 0.1})
    # 2 hours later the db's last point (at 0 s) is older than its max age (1 h)
    decision = run.tick(7200, rps=70)
    assert decision.desired == 4
    assert "stale" in breaker_steps(decision)[0].detail


def test_a_reading_exactly_at_the_threshold_does_not_open_it() -> None:
    run = guarded()
    assert run.tick(0, rps=70, **{DB: 0.95}).desired == 7
    assert run.state.breakers["orders-db"].open is False


def test_a_negative_reading_is_missing() -> None:
    run = guarded(breaker(missing="open"))
    decision = run.tick(0, rps=70, **{DB: -1})
    assert decision.desired == 4
    assert "db use missing (negative value -1" in breaker_steps(decision)[0].detail


def test_activation_from_zero_is_not_held() -> None:
    spec = target(
        rule(
            min=0,
            max=20,
            track=[{"metric": "rps", "type": "total", "target": 10, "activation": 1}],
            breaker=[breaker()],
        )
    )
    run = Run(spec, 0)
    decision = run.tick(0, rps=70, **{DB: 0.97})
    assert decision.desired == 1
    assert breaker_steps(decision)[0].detail.endswith("; activation is not held")


def test_an_operator_override_is_not_held() -> None:
    run = guarded(override={"capacity": 9})
    decision = run.tick(0, rps=70, **{DB: 0.97})

    assert decision.desired == 9
    assert breaker_steps(decision)[0].detail.endswith("; the manual override is not held")


def test_every_open_breaker_is_reported_and_one_hold_is_enough() -> None:
    run = guarded(
        breaker(),
        breaker(name="llm-api", metric="errors", open_when={"above": 0.2}, close_when=None),
    )
    decision = run.tick(0, rps=70, **{DB: 0.97, "errors": 0.5})

    assert decision.desired == 4
    assert [
        (step.data["breaker"], step.before, step.after) for step in breaker_steps(decision)
    ] == [
        ("orders-db", 7, 4),
        ("llm-api", 4, 4),
    ]


def test_a_removed_breaker_leaves_the_state() -> None:
    run = guarded()
    run.tick(0, rps=70, **{DB: 0.97})
    run.spec = target(rule(**{**run.spec.rule.model_dump(by_alias=True), "breaker": []}))
    run.tick(15, rps=70)
    assert run.state.breakers == {}


def test_a_ramping_capacity_and_a_breaker_together() -> None:
    # replicas still starting: the breaker holds against provisioned, not ready
    run = guarded()
    decision = run.tick(0, Capacity(6, 4), rps=90, **{DB: 0.97})
    assert decision.desired == 6


# --- the property: never a scale-out while a breaker is open ----------------------------


@settings(max_examples=200, deadline=None)
@given(
    minimum=st.integers(1, 5),
    start=st.integers(1, 30),
    readings=st.lists(
        st.tuples(
            st.floats(0, 500, allow_nan=False),
            st.one_of(st.none(), st.floats(0, 1.2, allow_nan=False)),
        ),
        min_size=1,
        max_size=40,
    ),
    missing=st.sampled_from(["keep", "open", "closed"]),
    hold=st.sampled_from(["0s", "30s", "2m"]),
)
def test_it_never_scales_out_while_a_breaker_is_open(
    minimum: int,
    start: int,
    readings: list[tuple[float, float | None]],
    missing: str,
    hold: str,
) -> None:
    spec = target(
        rule(
            min=minimum,
            max=40,
            track=[{"metric": "rps", "type": "total", "target": 10}],
            breaker=[breaker(missing=missing, close_when={"below": 0.8, "for": hold})],
        )
    )
    run = Run(spec, max(start, minimum))
    for index, (rps, db) in enumerate(readings):
        before = run.capacity.provisioned
        decision = run.tick(15 * index, rps=rps, **{DB: db})
        if run.state.breakers["orders-db"].open:
            assert decision.desired <= before
        if db is not None and db > 0.95:
            assert run.state.breakers["orders-db"].open


# --- configuration ------------------------------------------------------------------------


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rule.toml"
    path.write_text(
        'max = 5\n[[track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n' + body
    )
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = "0.95" }\n',
            ":9: breaker[0].open_when.above: must be a number (got '0.95')",
            id="a string is not a number",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 1, below = 0 }\n',
            ":9: breaker[0].open_when: give exactly one of above or below",
            id="both sides",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            "close_when = { below = 0.95 }\n",
            ":10: breaker[0].close_when.below: must not be above the open threshold (0.9)",
            id="close above open",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            "close_when = { above = 0.5 }\n",
            ":10: breaker[0].close_when: the breaker opens above 0.9: it closes below a value",
            id="close on the wrong side",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            'close_when = { below = 0.5, for = "soon" }\n',
            ":10: breaker[0].close_when.for:",
            id="hold time not a duration",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            'missing = "ignore"\n',
            ":10: breaker[0].missing: must be 'keep', 'open' or 'closed'",
            id="unknown missing mode",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            'aggregation = "avg"\n',
            ":6: breaker[0].window: aggregation 'avg' needs a window",
            id="aggregation without a window",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\nopen = 1\n',
            ":10: breaker[0].open: unknown key; did you mean 'open_when'?",
            id="unknown key",
        ),
        pytest.param(
            '[[breaker]]\nname = "db"\nmetric = "db"\nopen_when = { above = 0.9 }\n'
            '[[breaker]]\nname = "db"\nmetric = "other"\nopen_when = { above = 0.9 }\n',
            ":11: breaker[1].name: breaker 'db' is defined twice",
            id="a name twice",
        ),
    ],
)
def test_bad_breaker_config_names_file_line_and_key(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = write(tmp_path, body)
    [problem] = problems(path)
    assert problem.startswith(str(path)) and expected in problem, problem


def test_a_breaker_metric_without_a_source_names_its_line(tmp_path: Path) -> None:
    from scalerd.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[[sources]]\nname = "cpu"\nkind = "replay"\nvalues = [1.0]\nstep = "60s"\n\n'
        '[[actuators]]\nname = "pool"\nkind = "recording"\n\n'
        '[[targets]]\nname = "api"\nactuator = "pool"\nmax = 5\n'
        '[[targets.track]]\nmetric = "cpu"\ntype = "utilization"\ntarget = 70\n'
        '[[targets.breaker]]\nname = "db"\nmetric = "db use"\nopen_when = { above = 0.9 }\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:21: targets[0].breaker[0].metric: target 'api' reads metric 'db use' from "
        "source 'db use', which is not defined (sources: cpu)"
    ]
