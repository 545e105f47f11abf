"""What the page shows, as values: a target's description, its timeline over a window, the
"why" of a decision in words with its numbers, its state badge, and held runs collapsed.

The page (SVG) and ``scalerd audit --chart`` (PNG) draw the same :class:`Timeline`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from ..audit import AuditRecord
from ..audit.render import reason_in_words
from ..core.durations import format_duration

__all__ = [
    "HeldRun",
    "Mark",
    "PageData",
    "State",
    "TargetInfo",
    "Threshold",
    "Timeline",
    "build_timeline",
    "collapse_held",
    "mark_kind",
    "state_of",
    "why_in_words",
]

MarkKind = Literal["up", "down", "failed", "skipped", "dry-run"]


@dataclass(frozen=True, slots=True)
class Threshold:
    """A line a metric is judged against: a tracking target or a rule's threshold.

    ``per_replica`` lines (tracking a total) scale with the provisioned capacity: the rules
    want ``value`` per replica, so the total's line is ``value x provisioned``.
    """

    metric: str
    label: str
    value: float
    per_replica: bool = False


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """A target as the page describes it (from the running config and its last record)."""

    name: str
    scales: str
    minimum: int
    maximum: int
    interval_s: float
    thresholds: tuple[Threshold, ...] = ()
    rules: tuple[str, ...] = ()
    pause: str | None = None
    pause_until: datetime | None = None
    override: int | None = None
    override_until: datetime | None = None
    last: AuditRecord | None = None


class PageData(Protocol):
    """What the page reads from the daemon: its targets, its clock and its audit log."""

    def targets(self) -> Sequence[TargetInfo]: ...

    def now(self) -> datetime: ...

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """From the audit stream; raises when it cannot be read."""
        ...

    async def known(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """What this process still knows while the audit stream cannot be read."""
        ...

    def outage(self) -> tuple[datetime, str] | None:
        """Since when, and why, the audit stream has been unreachable (None: it answers)."""
        ...


# --- a decision in words -------------------------------------------------------------------

_STEP_WORDS = {
    "metric_failure": "failure floor",
    "predictive_floor": "predictive floor",
    "activation": "woken to",
    "deactivation": "to zero:",
    "override": "overridden to",
    "scale_up_stabilized": "stabilized to",
    "scale_down_stabilized": "stabilized to",
    "cooldown": "cooldown keeps",
    "scale_up_limit": "rate-limited to",
    "scale_down_limit": "rate-limited to",
    "scaling_disabled": "disabled, stays",
    "flapping": "flapping guard keeps",
    "breaker": "breaker holds at",
    "transition": "tier transition to",
    "too_many_replicas": "capped at max",
    "too_few_replicas": "raised to min",
    "paused": "paused at",
    "operation_in_flight": "in flight, stays",
    "maintenance_window": "waits for maintenance at",
}


def why_in_words(record: AuditRecord) -> str:
    """One line: what the deciding rule read and computed, then every step that moved the
    capacity, then why it held — e.g. ``p95 of demand over 20m = 412: ceil(412 / 90) = 5
    → 5; stabilized to 4``."""
    if record.error:
        return f"{record.action}: {record.error}"
    parts: list[str] = []
    rule = _deciding_rule(record)
    if rule is not None:
        parts.append(_rule_in_words(record, rule))
    for step in record.steps:
        code = step.get("code", "")
        if code in ("schedule", "recommended") or step.get("before") == step.get("after"):
            continue
        words = _STEP_WORDS.get(code, code)
        parts.append(f"{words} {step.get('after')}")
    if record.not_scaled_reason:
        held = _holding_detail(record)
        parts.append(
            f"held: {reason_in_words(record.not_scaled_reason)}" + (f" ({held})" if held else "")
        )
    return "; ".join(parts) or "no rule read"


def _deciding_rule(record: AuditRecord) -> dict[str, Any] | None:
    rules = list(record.rules)
    for rule in rules:
        if rule.get("fired") and rule.get("proposed") == record.recommended:
            return rule
    for rule in rules:
        if rule.get("fired"):
            return rule
    return rules[0] if rules else None


def _rule_in_words(record: AuditRecord, rule: dict[str, Any]) -> str:
    detail = str(rule.get("detail", ""))
    metric, _, rest = detail.partition("=")
    read = next((i for i in record.inputs if i.get("metric") == metric), None)
    if read is None or not rest:
        head = detail
    else:
        computed = rest.partition(": ")[2] or rest
        head = f"{_input_in_words(read)}: {computed}"
    if rule.get("proposed") is not None:
        head += f" → {rule['proposed']}"
    return head


def _input_in_words(read: dict[str, Any]) -> str:
    value = read.get("value")
    shown = "?" if value is None else f"{value:g}"
    window = read.get("window_s") or 0
    over = f" over {format_duration(timedelta(seconds=window))}" if window else ""
    return f"{read.get('aggregation', 'last')} of {read.get('metric')}{over} = {shown}"


def _holding_detail(record: AuditRecord) -> str | None:
    for step in reversed(record.steps):
        if step.get("holds_as") == record.not_scaled_reason:
            return str(step.get("detail", "")) or None
    return None


# --- state badges ----------------------------------------------------------------------------

StateName = Literal[
    "failing",
    "at max, wants more",
    "operation in flight",
    "breaker open",
    "paused",
    "override",
    "scaling",
    "skipped",
    "holding",
    "not evaluated",
]
# attention first: the order the overview sorts by
_ATTENTION: tuple[StateName, ...] = (
    "failing",
    "at max, wants more",
    "operation in flight",
    "breaker open",
    "skipped",
    "paused",
    "override",
    "scaling",
    "holding",
    "not evaluated",
)


@dataclass(frozen=True, slots=True)
class State:
    name: StateName
    detail: str = ""

    @property
    def rank(self) -> int:
        return _ATTENTION.index(self.name)

    @property
    def css(self) -> str:
        return self.name.split(",")[0].replace(" ", "-")


def state_of(info: TargetInfo, last_change: AuditRecord | None, now: datetime) -> State:
    last = info.last
    if last is None:
        return State("not evaluated")
    if last.action == "failed":
        return State("failing", last.error or "")
    if last.action == "skipped":
        return State("skipped", last.error or "")
    current = last.current or {}
    wants = last.recommended
    if (
        last.not_scaled_reason == "AlreadyAtMax"
        or (wants is not None and wants > info.maximum and last.desired == info.maximum)
    ) and wants is not None:
        return State("at max, wants more", f"rules want {wants}, max {info.maximum}")
    if current.get("operation") or last.not_scaled_reason == "OperationInFlight":
        return State("operation in flight", str(current.get("operation") or ""))
    breakers = [
        str(step.get("data", {}).get("breaker"))
        for step in last.steps
        if step.get("code") == "breaker" and step.get("data", {}).get("open")
    ]
    if breakers:
        return State("breaker open", ", ".join(breakers))
    if info.pause:
        until = f" until {info.pause_until:%H:%M} UTC" if info.pause_until else ""
        return State("paused", f"{info.pause.replace('_', '-')}{until}")
    if info.override is not None:
        until = f" until {info.override_until:%H:%M} UTC" if info.override_until else ""
        return State("override", f"at {info.override}{until}")
    recent = timedelta(seconds=max(3 * info.interval_s, 60))
    if last_change is not None and now - last_change.ts <= recent:
        return State("scaling")
    return State(
        "holding", reason_in_words(last.not_scaled_reason) if last.not_scaled_reason else ""
    )


# --- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """An action on the timeline: where it is, what it was, and its record."""

    at: datetime
    kind: MarkKind
    capacity: int
    record: AuditRecord


def mark_kind(record: AuditRecord) -> MarkKind | None:
    """The mark a record gets on the timeline; held records get none."""
    if record.action in ("failed", "skipped"):
        return record.action
    if record.action not in ("scaled", "dry-run") or record.current is None:
        return None
    if record.action == "dry-run":
        return "dry-run"
    return "up" if (record.desired or 0) > record.current["provisioned"] else "down"


@dataclass
class Timeline:
    """One target's records over ``[start, end]`` as series (one point per record)."""

    target: str
    start: datetime
    end: datetime
    at: list[datetime] = field(default_factory=list)
    provisioned: list[int | None] = field(default_factory=list)
    ready: list[int | None] = field(default_factory=list)
    desired: list[int | None] = field(default_factory=list)
    recommended: list[int | None] = field(default_factory=list)
    minimum: list[int] = field(default_factory=list)
    maximum: list[int] = field(default_factory=list)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    # per metric: (label, the line per point)
    lines: dict[str, list[tuple[str, list[float | None]]]] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.at)


def build_timeline(
    records: Iterable[AuditRecord], info: TargetInfo, start: datetime, end: datetime
) -> Timeline:
    timeline = Timeline(info.name, start, end)
    for record in records:
        if record.target != info.name or not start <= record.ts <= end:
            continue
        current = record.current or {}
        provisioned = current.get("provisioned")
        # after a scale the capacity is what was decided; draw it from this record on
        after = record.desired if record.action == "scaled" else provisioned
        low, high = _bounds(record, info)
        timeline.at.append(record.ts)
        timeline.provisioned.append(after)
        timeline.ready.append(current.get("ready"))
        timeline.desired.append(record.desired)
        timeline.recommended.append(record.recommended)
        timeline.minimum.append(low)
        timeline.maximum.append(high)
        values = {str(read.get("metric")): read.get("value") for read in record.inputs}
        for name in {*timeline.metrics, *values}:
            series = timeline.metrics.setdefault(name, [None] * (len(timeline) - 1))
            series.append(values.get(name))
        for threshold in info.thresholds:
            lines = timeline.lines.setdefault(threshold.metric, [])
            line = next((points for label, points in lines if label == threshold.label), None)
            if line is None:
                line = [None] * (len(timeline) - 1)
                lines.append((threshold.label, line))
            scale = provisioned if threshold.per_replica else 1
            line.append(None if scale is None else threshold.value * scale)
        kind = mark_kind(record)
        if kind is not None:
            capacity = record.desired if kind in ("up", "down", "dry-run") else provisioned
            timeline.marks.append(Mark(record.ts, kind, int(capacity or 0), record))
    for name, series in timeline.metrics.items():
        series.extend([None] * (len(timeline) - len(series)))
        if name not in timeline.lines:
            timeline.lines[name] = []
    return timeline


def _bounds(record: AuditRecord, info: TargetInfo) -> tuple[int, int]:
    """The bounds in force at the record: a schedule profile's, else the config's."""
    low, high = info.minimum, info.maximum
    for step in record.steps:
        data = step.get("data") or {}
        if step.get("code") == "schedule":
            low, high = int(data.get("min", low)), int(data.get("max", high))
    return low, high


# --- the decision list ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldRun:
    """Consecutive held records, shown as one row: how many, and why, by count."""

    records: tuple[AuditRecord, ...]

    @property
    def first(self) -> AuditRecord:
        return self.records[0]

    @property
    def last(self) -> AuditRecord:
        return self.records[-1]

    def reasons(self) -> list[tuple[str | None, int]]:
        """Each not-scaled reason of the run and how often, the most frequent first."""
        counts = Counter(record.not_scaled_reason for record in self.records)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))


def collapse_held(records: Sequence[AuditRecord]) -> list[AuditRecord | HeldRun]:
    """``records`` (in order) with every run of two or more held records folded into a
    :class:`HeldRun`: the few records that did something stand out."""
    out: list[AuditRecord | HeldRun] = []
    run: list[AuditRecord] = []
    for record in records:
        # an evaluation an event or an operator asked for stays its own row, held or not
        pushed = (record.trigger or {}).get("type") not in (None, "poll")
        if record.action == "held" and not pushed:
            run.append(record)
            continue
        out.extend(run if len(run) < 2 else [HeldRun(tuple(run))])
        run = []
        out.append(record)
    out.extend(run if len(run) < 2 else [HeldRun(tuple(run))])
    return out
