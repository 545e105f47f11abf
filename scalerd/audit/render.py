"""Audit records for people: the ``scalerd audit`` table and the ``scalerd explain`` page.

Written for on-call at 3 a.m.: the first lines say what happened and, when nothing did,
why not, in words; the tables below show the numbers behind it. Both functions return
rich renderables; the caller's ``Console`` decides on colour, so output piped to a file
or another program carries no ANSI codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..core.durations import format_duration
from ..core.model import NotScaled
from .readers import chain_breaks
from .record import AuditRecord, JsonObject

__all__ = ["NOT_SCALED_WORDS", "reason_in_words", "render_explanation", "render_table"]

# Each not-scaled reason in plain words, as the sentence "It did not scale: …" ends.
NOT_SCALED_WORDS: Mapping[NotScaled, str] = {
    NotScaled.NO_CHANGE_RECOMMENDED: "no rule asked for a different capacity",
    NotScaled.WITHIN_TOLERANCE: "the metric is within the tolerance band around its target",
    NotScaled.METRIC_FAILURE: (
        "a metric could not be read, and scalerd never scales in on missing data"
    ),
    NotScaled.INACTIVE: "every trigger is below its activation threshold",
    NotScaled.OVERRIDE: "an operator's manual override sets the capacity",
    NotScaled.STABILIZATION: "the stabilization window still holds a recommendation that disagrees",
    NotScaled.COOLDOWN: "the cooldown after an earlier scale is still running",
    NotScaled.RATE_LIMITED: "the rate-limit policies allow no further change in this period",
    NotScaled.SCALING_DISABLED: "scaling in this direction is disabled by the rule",
    NotScaled.FLAPPING: "scaling in would make a scale-out rule fire right away (flapping)",
    NotScaled.BREAKER_OPEN: (
        "a dependency's circuit breaker is open: scale-out waits until it closes"
    ),
    NotScaled.TRANSITION: "the platform does not allow a move between these tiers",
    NotScaled.AT_MAX: "it is already at its maximum capacity",
    NotScaled.AT_MIN: "it is already at its minimum capacity",
    NotScaled.PAUSED: "scaling is paused",
    NotScaled.IN_FLIGHT: "an earlier change is still in progress",
    NotScaled.MAINTENANCE_WINDOW: "changes to this resource wait for a maintenance window",
}

_ACTION_STYLE = {
    "scaled": "bold green",
    "held": "yellow",
    "dry-run": "cyan",
    "failed": "bold red",
    "skipped": "magenta",
}


# --- scalerd audit -----------------------------------------------------------------------


def render_table(records: Sequence[AuditRecord]) -> Table:
    """One row per record, oldest first. A record whose ``prev`` is not the row before it
    (same target) is flagged: records are missing in between."""
    breaks = chain_breaks(records)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("capacity", no_wrap=True, justify="right")
    table.add_column("reason")
    table.add_column("why")
    for record in records:
        why = Text(_why(record))
        if record.id in breaks:
            why = Text.assemble(("records missing before this one; ", "bold red"), why)
        table.add_row(
            f"{record.ts:%Y-%m-%d %H:%M:%S}",
            record.target,
            Text(record.action, style=_ACTION_STYLE.get(record.action, "")),
            _capacity_change(record),
            record.not_scaled_reason or ("error" if record.error else ""),
            why,
        )
    return table


def _capacity_change(record: AuditRecord) -> str:
    if record.current is None:
        return "-"
    return f"{record.current['provisioned']}→{record.desired}"


def _why(record: AuditRecord) -> str:
    """The error, the step that held the capacity, or the steps that moved it."""
    if record.error:
        return record.error
    held = _holding_step(record)
    if held is not None:
        _, step = held
        return f"{step['code']}: {step['detail']}"
    if record.not_scaled_reason:
        return reason_in_words(record.not_scaled_reason)
    moves = [step for step in record.steps if step["before"] != step["after"]]
    if not moves and record.current is None:  # no decision (an operation's end): its notes
        return "; ".join(record.notes)
    return "; ".join(f"{step['code']} {step['before']}→{step['after']}" for step in moves)


def _holding_step(record: AuditRecord) -> tuple[int, JsonObject] | None:
    """The last step standing for the record's not-scaled reason, with its number (from 1)."""
    if record.not_scaled_reason is None:
        return None
    for number in range(len(record.steps), 0, -1):
        step = record.steps[number - 1]
        if step.get("holds_as") == record.not_scaled_reason:
            return number, step
    return None


def reason_in_words(code: str) -> str:
    """A not-scaled reason in plain words (the code itself if it is newer than this reader)."""
    try:
        return NOT_SCALED_WORDS[NotScaled(code)]
    except ValueError:  # a reason newer than this reader
        return code


# --- scalerd explain ---------------------------------------------------------------------


def render_explanation(record: AuditRecord) -> Group:
    """The decision of ``record`` step by step: verdict first, then the evidence."""
    parts: list[RenderableType] = [_headline(record), _verdict(record)]
    if record.inputs:
        parts.append(_inputs_table(record.inputs))
    if record.rules:
        parts.append(_rules_table(record.rules))
    if record.steps:
        parts.append(_steps_table(record))
    parts.append(_provenance(record))
    return Group(*parts)


def _headline(record: AuditRecord) -> Text:
    headline = Text.assemble(
        (record.target, "bold"),
        f"  {record.ts:%Y-%m-%d %H:%M:%S}.{record.ts.microsecond // 1000:03d}Z  ",
        (record.action, _ACTION_STYLE.get(record.action, "")),
    )
    if record.dry_run and record.action != "dry-run":
        headline.append("  (dry run)", style="cyan")
    if record.current is not None:
        current = record.current
        headline.append(
            f"\ncapacity {current['provisioned']} provisioned / {current['ready']} ready"
            f" → desired {record.desired} (recommended {record.recommended})"
        )
        if record.tier:
            headline.append(f", tier {record.tier}")
    return headline


def _verdict(record: AuditRecord) -> Text:
    """What happened, in one or two sentences."""
    if record.error:
        return Text.assemble((f"It {record.action}: ", "bold red"), record.error)
    verdict = Text()
    if record.not_scaled_reason:
        verdict.append("It did not scale: ", style="bold yellow")
        verdict.append(f"{reason_in_words(record.not_scaled_reason)} ({record.not_scaled_reason})")
        held = _holding_step(record)
        if held is not None:
            number, step = held
            verdict.append(f"\nHeld at step {number}, {step['code']}: {step['detail']}")
    elif record.current is not None:
        verb = "It would scale" if record.action == "dry-run" else "It scaled"
        change = f"{verb} {record.current['provisioned']} → {record.desired}"
        verdict.append(change, style="bold green")
        if record.cooldown_s:
            verdict.append(f"; cooldown {format_duration(timedelta(seconds=record.cooldown_s))}")
    if record.restarts:
        verdict.append("\nThis change restarts the resource.", style="bold")
    if record.operation:
        verdict.append(f"\nOperation: {record.operation}")
    for note in record.notes:
        verdict.append(f"\nNote: {note}")
    return verdict


def _section(title: str) -> Table:
    return Table(
        title=f"\n{title}",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )


def _inputs_table(inputs: Sequence[JsonObject]) -> Table:
    """One row per metric a rule read; the error column only when a read failed."""
    errors = any(report["error"] for report in inputs)
    table = _section("Inputs")
    for column in ("metric", "source", "value", "aggregation", "points", "age"):
        numeric = column in ("value", "points", "age")
        table.add_column(column, justify="right" if numeric else "left")
    if errors:
        table.add_column("error", style="red")
    for report in inputs:
        row = [
            report["metric"],
            report["source"],
            _number(report["value"]),
            _aggregation(report["aggregation"], report["window_s"]),
            str(report["points"]),
            _seconds(report["age_s"]),
        ]
        table.add_row(*row, *([report["error"] or ""] if errors else []))
    return table


def _rules_table(rules: Sequence[JsonObject]) -> Table:
    table = _section("Rules")
    for column in ("rule", "kind", "fired", "proposed", "detail"):
        table.add_column(column, justify="right" if column == "proposed" else "left")
    for report in rules:
        table.add_row(
            report["rule"],
            report["kind"],
            Text("yes", style="green") if report["fired"] else Text("no", style="dim"),
            _number(report["proposed"]),
            report["detail"],
        )
    return table


def _steps_table(record: AuditRecord) -> Table:
    held = _holding_step(record)
    held_at = held[0] if held is not None else None
    table = _section("Steps")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("capacity", no_wrap=True)
    table.add_column("detail")
    for number, step in enumerate(record.steps, start=1):
        moved = step["before"] != step["after"]
        detail = Text(step["detail"])
        if number == held_at:
            detail.append("  ◀ held here", style="bold yellow")
        table.add_row(
            str(number),
            step["code"],
            Text(f"{step['before']} → {step['after']}", style="bold" if moved else "dim"),
            detail,
        )
    return table


def _provenance(record: AuditRecord) -> Text:
    return Text(
        f"\nrecord {record.id} (prev {record.prev or '-'}), {record.duration_ms:.1f} ms\n"
        f"{record.kind} on {record.instance}, config {record.config_version}",
        style="dim",
    )


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(timedelta(seconds=value))


def _aggregation(aggregation: str, window_s: float) -> str:
    if not window_s:
        return aggregation
    return f"{aggregation} {format_duration(timedelta(seconds=window_s))}"
