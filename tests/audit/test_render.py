"""What on-call reads: ``scalerd explain`` and the ``scalerd audit`` table, as plain text."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest
from rich.console import Console, RenderableType

from scalerd.audit import AuditRecord, render_explanation, render_table
from scalerd.audit.render import NOT_SCALED_WORDS
from scalerd.core.model import NotScaled

from .build import CPU, CPU_RULE, T0, held_by_cooldown, record, records, scaled_with_rate_limit


def text_of(renderable: RenderableType, *, terminal: bool = False) -> str:
    """What a pipe (or, with ``terminal``, a terminal) would receive."""
    out = io.StringIO()
    Console(file=out, width=100, force_terminal=terminal or None).print(renderable)
    return out.getvalue()


def test_explanation_of_a_hold_says_why_in_words_and_shows_every_step() -> None:
    decision = held_by_cooldown()
    made = record(decision)
    text = text_of(render_explanation(made))

    assert "It did not scale: " + NOT_SCALED_WORDS[NotScaled.COOLDOWN] in text
    assert "(CooldownActive)" in text
    assert "Held at step 3, cooldown: scale-out cooldown for another 120s" in text
    for step in decision.steps:
        assert str(step.code) in text
        assert step.detail in text
        assert f"{step.before} → {step.after}" in text
    assert text.count("◀ held here") == 1
    assert "capacity 4 provisioned / 3 ready → desired 4 (recommended 8)" in text
    # the evidence: what the input read and what the rule proposed
    assert CPU.metric in text and CPU.source in text and "avg 5m" in text
    assert CPU_RULE.rule in text and CPU_RULE.detail in text
    assert made.id in text and made.instance in text


def test_explanation_of_a_scale_names_the_change_cooldown_and_operation() -> None:
    made = record(scaled_with_rate_limit(), operation="op-7", notes=("new revision web--r2",))
    text = text_of(render_explanation(made))
    assert "It scaled 4 → 6; cooldown 5m" in text
    assert "Operation: op-7" in text
    assert "Note: new revision web--r2" in text
    assert "It did not scale" not in text
    assert "◀ held here" not in text


def test_explanation_of_a_dry_run_says_what_it_would_have_done() -> None:
    made = record(scaled_with_rate_limit(), action="dry-run", dry_run=True)
    assert "It would scale 4 → 6" in text_of(render_explanation(made))


def test_explanation_of_a_restart_warns() -> None:
    made = replace(record(scaled_with_rate_limit()), restarts=True, tier="GP_Standard_D4ds_v5")
    text = text_of(render_explanation(made))
    assert "This change restarts the resource." in text
    assert "tier GP_Standard_D4ds_v5" in text


def test_explanation_of_a_failure_before_any_decision_shows_the_error() -> None:
    made = AuditRecord.without_decision(
        "orders-db",
        T0,
        action="failed",
        kind="azure-postgres-flexible",
        config_version="c0ffee",
        instance="scalerd-0",
        prev=None,
        duration_ms=30_000.0,
        dry_run=False,
        error="ActuatorError: reading the server timed out",
    )
    text = text_of(render_explanation(made))
    assert "It failed: ActuatorError: reading the server timed out" in text
    assert "Steps" not in text


def test_a_reason_newer_than_the_reader_is_shown_as_its_code() -> None:
    made = replace(record(), not_scaled_reason="SomethingNew")
    assert "It did not scale: SomethingNew" in text_of(render_explanation(made))


def test_every_not_scaled_reason_has_words() -> None:
    assert set(NOT_SCALED_WORDS) == set(NotScaled)


@pytest.mark.parametrize(
    "renderable",
    [
        pytest.param(render_explanation(record()), id="explain"),
        pytest.param(render_table(records(3)), id="table"),
    ],
)
def test_colour_only_on_a_terminal(renderable: RenderableType) -> None:
    assert "\x1b[" not in text_of(renderable)
    assert "\x1b[" in text_of(renderable, terminal=True)


def test_table_has_a_row_per_record_with_the_reason_or_the_steps() -> None:
    held, scaled = (
        record(),
        record(scaled_with_rate_limit(target="api", at=T0 + timedelta(seconds=1))),
    )
    lines = text_of(render_table([held, scaled])).splitlines()
    assert lines[0].split() == ["time", "(UTC)", "target", "action", "capacity", "reason", "why"]
    held_row = next(line for line in lines if " web " in line)
    assert held_row.split()[2:7] == ["web", "held", "4→4", "CooldownActive", "cooldown:"]
    scaled_row = next(line for line in lines if " api " in line)
    assert scaled_row.split()[2:6] == ["api", "scaled", "4→6", "recommended"]
    assert "recommended 4→8; scale_up_limit 8→6" in " ".join(" ".join(lines).split())


def test_table_flags_a_broken_chain() -> None:
    first, _lost, third = records(3)
    assert "records missing before this one" in text_of(render_table([first, third]))
    assert "records missing" not in text_of(render_table([first, _lost, third]))
