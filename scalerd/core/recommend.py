"""Rules → proposed capacities → one raw recommendation.

Every rule group proposes a capacity or abstains, and the largest proposal wins. That one
rule covers the combinations the anchors use:

* HPA / KEDA: several metrics, take the max;
* Azure Monitor autoscale: scale out if *any* out-rule fires (largest result), scale in
  only if *all* in-rules fire (the smallest reduction) — a rule set with in-rules that do
  not all fire proposes the current capacity, which blocks scale-in;
* AWS: when several policies trigger, the one giving the largest capacity wins.

A metric that failed makes its rules abstain; the caller then forbids scale-in.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .aggregate import read_metric
from .model import (
    Capacity,
    InputReport,
    RuleReport,
    Sample,
    TargetState,
    build_rule_report,
    builder,
    later,
    written,
)
from .rules import Drain, Ladder, MetricSpec, Rule, StepPolicy, Tolerance, Track

__all__ = ["Evaluation", "OutTrigger", "Proposal", "evaluate", "track_replicas"]


@dataclass(frozen=True, slots=True)
class Proposal:
    rule: str
    kind: str
    replicas: int
    cooldown: timedelta


@dataclass(frozen=True, slots=True)
class OutTrigger:
    """A scale-out condition, kept to project it at a smaller capacity (flapping check)."""

    rule: str
    value: float
    per_instance: bool
    fires: Callable[[float], bool]


@dataclass(frozen=True, slots=True)
class Evaluation:
    inputs: tuple[InputReport, ...]
    rules: tuple[RuleReport, ...]
    proposals: tuple[Proposal, ...]
    failed: tuple[str, ...]
    within_tolerance: bool
    active: bool | None  # any tracked metric above its activation threshold; None if unknown
    out_triggers: tuple[OutTrigger, ...]

    def best(self) -> Proposal | None:
        proposals = self.proposals
        if len(proposals) == 1:
            return proposals[0]  # what max() returns, without its call
        return max(proposals, key=_replicas, default=None)


_proposal = builder(Proposal)
_out_trigger = builder(OutTrigger)
_evaluation = builder(Evaluation)


_replicas = operator.attrgetter("replicas")


class _Reader:
    """Aggregates each (metric, aggregation, window) once per evaluation."""

    def __init__(
        self,
        samples: Mapping[str, tuple[Sample, ...]],
        metrics: Mapping[str, MetricSpec],
        failures: Mapping[str, str],
        now: datetime,
    ) -> None:
        self._samples, self._metrics, self._failures, self._now = samples, metrics, failures, now
        self.reports: dict[tuple[str, str, timedelta], InputReport] = {}

    def read(self, metric: str, aggregation: str, window: timedelta) -> InputReport:
        key = (metric, aggregation, window)
        report = self.reports.get(key)
        if report is None:
            spec = self._metrics[metric]
            report = read_metric(
                metric,
                spec.source,
                self._samples.get(metric, ()),
                aggregation,
                window,
                spec.max_age,
                self._failures.get(metric),
                self._now,
            )
            self.reports[key] = report
        return report


_NO_COOLDOWN = timedelta(0)


def _within(ratio: float, tolerance: Tolerance) -> bool:
    # Kubernetes (1.33+): no change while 1 - down <= ratio <= 1 + up, bounds inclusive
    return 1.0 - tolerance.down <= ratio <= 1.0 + tolerance.up


def track_replicas(
    track: Track,
    value: float,
    capacity: Capacity,
    tolerance: Tolerance,
    reported: int | None = None,
) -> tuple[int, bool, str]:
    """The HPA replica calculator for one metric: (replicas, within tolerance, arithmetic).

    ``utilization`` and ``average`` values are averages over the replicas that were ready
    when the value was measured (``reported``; default: those ready now). Replicas still
    starting count as 0 % of target when scaling up and as 100 % when scaling down (the
    HPA's missing pods), so a scale-up under way is not asked for twice. Replicas that
    became ready after the measurement are the HPA's unready pods (its CPU-initialisation
    rule): 0 % when scaling up, left out when scaling down.
    """
    replicas, held, detail = _track_replicas(track, value, capacity, tolerance, reported)
    return replicas, held, written(detail)


# the arithmetic of the calculator's common cases, in words (see later())
_CEIL_TOTAL = "ceil({:g} / {:g}) = {}".format
_TOTAL_WITHIN = "ratio {:g} / ({:g} x {}) = {:.3f} within tolerance".format
_TOTAL_CEIL = "ratio {:.3f}; ceil({:g} / {:g}) = {}".format
_RATIO_WITHIN = "ratio {:g} / {:g} = {:.3f} within tolerance".format
_CEIL_READY = "ceil({} x {:g} / {:g}) = {}".format


def _track_replicas(
    track: Track,
    value: float,
    capacity: Capacity,
    tolerance: Tolerance,
    reported: int | None = None,
) -> tuple[int, bool, str]:
    """:func:`track_replicas`, its arithmetic as a :func:`~.model.later` text."""
    provisioned = capacity.provisioned
    target = track.target
    if track.type == "total":
        if provisioned == 0:
            desired = math.ceil(value / target)
            return desired, False, later(_CEIL_TOTAL, value, target, desired)
        ratio = value / (target * provisioned)
        if _within(ratio, tolerance):
            return (
                provisioned,
                True,
                later(_TOTAL_WITHIN, value, target, provisioned, ratio),
            )
        desired = math.ceil(value / target)
        return desired, False, later(_TOTAL_CEIL, ratio, value, target, desired)

    ready_now = min(capacity.ready, provisioned)
    ready = ready_now if reported is None else min(reported, ready_now)
    if ready == 0:
        return provisioned, True, "no ready replica reports the metric: hold"
    ratio = value / target
    starting = provisioned - ready_now
    unready = ready_now - ready  # ready since the measurement: not in it
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if starting == 0 and not scale_up_with_unready:
        if _within(ratio, tolerance):
            return provisioned, True, later(_RATIO_WITHIN, value, target, ratio)
        desired = math.ceil(ratio * ready)
        return desired, False, later(_CEIL_READY, ready, value, target, desired)

    notes = []
    if ratio > 1.0:
        assumed = 0.0
    elif ratio < 1.0:
        assumed = max(100.0, target) if track.type == "utilization" else target
    else:
        assumed = target
    if starting:
        notes.append(f"{starting} starting counted as {assumed:g}")
    counted = ready + starting
    if scale_up_with_unready:
        counted += unready
        notes.append(f"{unready} ready since the reading counted as 0")
    note = ", ".join(notes) or "exactly at target"
    adjusted = (value * ready + assumed * starting) / (target * counted)
    crossed = (ratio < 1.0 < adjusted) or (ratio > 1.0 > adjusted)
    if _within(adjusted, tolerance) or crossed:
        return provisioned, True, f"ratio {ratio:.3f}, {note}: {adjusted:.3f}, no change"
    desired = math.ceil(adjusted * counted)
    if (adjusted < 1.0 and desired > provisioned) or (adjusted > 1.0 and desired < provisioned):
        desired = provisioned
    return (
        desired,
        False,
        f"ratio {ratio:.3f}, {note}: ceil({adjusted:.3f} x {counted}) = {desired}",
    )


def _track_text(metric: str, value: float, detail: str) -> str:
    return f"{metric}={value:g}: {written(detail)}"


def _ready_at(history: tuple[tuple[datetime, int], ...], at: datetime) -> int | None:
    """Replicas ready at ``at``, from the change points of the ready count (``None`` when
    ``at`` is before everything known)."""
    ready = None
    for since, count in history:
        if since > at:
            break
        ready = count
    return ready


def _track_on_ladder(
    track: Track, value: float, position: int, ladder: Ladder, tolerance: Tolerance
) -> tuple[int, bool, str]:
    """Tracking on a vertical ladder: size the need in tier units, pick the smallest tier."""
    units = ladder.units(position)
    ratio = value / track.target if track.type != "total" else value / (track.target * units)
    if _within(ratio, tolerance):
        return position, True, f"ratio {ratio:.3f} within tolerance"
    needed = units * ratio
    desired = ladder.position_for_units(needed)
    if ratio > 1.0 and desired <= position:
        desired = min(position + 1, len(ladder.tiers))
    if ratio < 1.0 and desired > position:
        desired = position
    return (
        desired,
        False,
        (
            f"ratio {ratio:.3f}: needs {needed:.2f} units of {units:g} -> tier {ladder.tier(desired).name}"
        ),
    )


def evaluate(
    rule: Rule,
    metrics: Mapping[str, MetricSpec],
    samples: Mapping[str, tuple[Sample, ...]],
    failures: Mapping[str, str],
    capacity: Capacity,
    state: TargetState,
    ladder: Ladder | None,
    now: datetime,
    ready_history: tuple[tuple[datetime, int], ...] | None = None,
) -> Evaluation:
    """Every rule's proposal. ``ready_history`` (default: ``state.ready_history``) says how
    many replicas were ready when each reading was measured."""
    if ready_history is None:
        ready_history = state.ready_history
    reader = _Reader(samples, metrics, failures, now)
    current = capacity.provisioned
    reports: list[RuleReport] = []
    proposals: list[Proposal] = []
    triggers: list[OutTrigger] = []
    within = False
    any_active = any_unknown = False

    for track in rule.track:
        read = reader.read(track.metric, track.aggregation, track.window)
        if read.value is None:
            reports.append(
                build_rule_report(track.label, "track", False, None, f"metric failed: {read.error}")
            )
            any_unknown = True
            continue
        # KEDA: a trigger is active when its value is strictly above the activation threshold
        any_active = any_active or read.value > track.activation
        if ladder is not None:
            replicas, held, detail = _track_on_ladder(
                track, read.value, current, ladder, rule.tolerance
            )
        else:
            age = read.age_s
            reported = _ready_at(ready_history, now - timedelta(seconds=age) if age else now)
            replicas, held, detail = _track_replicas(
                track, read.value, capacity, rule.tolerance, reported
            )
        within = within or held
        reports.append(
            build_rule_report(
                track.label,
                "track",
                not held,
                replicas,
                later(_track_text, track.metric, read.value, detail),
            )
        )
        proposals.append(_proposal(track.label, "track", replicas, _NO_COOLDOWN))

    _evaluate_thresholds(rule, reader, current, reports, proposals, triggers)
    for policy in rule.step:
        _evaluate_step(policy, reader, current, state, now, reports, proposals, triggers)
    for drain in rule.drain:
        held = _evaluate_drain(drain, reader, current, rule.tolerance, reports, proposals)
        within = within or held

    errors = [report.metric for report in reader.reports.values() if report.error is not None]
    failed = tuple(sorted(set(errors))) if errors else ()
    inputs = tuple(reader.reports.values())
    # alerts after everything that decides: what they read never counts as a failure
    # that holds a scale-in. One whose metric has no source here (a replay that does not
    # model it) is left out.
    for alert in rule.alert:
        condition = alert.when
        if condition.metric not in metrics:
            continue
        read = reader.read(condition.metric, condition.aggregation, condition.window)
        if read.value is None:
            reports.append(
                build_rule_report(alert.label, "alert", False, None, f"metric failed: {read.error}")
            )
            continue
        holds = condition.holds(read.value)
        verdict = "holds" if holds else "does not hold"
        reports.append(
            build_rule_report(
                alert.label,
                "alert",
                holds,
                None,
                later(_READ, condition.metric, read.value, verdict),
            )
        )
    return _evaluation(
        inputs,
        tuple(reports),
        tuple(proposals),
        failed,
        within,  # within_tolerance
        True if any_active else (None if any_unknown or not rule.track else False),  # active
        tuple(triggers),
    )


# what a threshold, an alert or a step policy read, in words (see later())
_DOES_NOT_HOLD = "{}={:g}: does not hold".format
_FIRES = "{}={:g}: {} from {}".format
_READ = "{}={:g}: {}".format
_NO_STEP = "{}={:g}: breach {:+g} matches no step".format
_STEP = "{}={:g}: breach {:+g}: {}".format


def _evaluate_thresholds(
    rule: Rule,
    reader: _Reader,
    current: int,
    reports: list[RuleReport],
    proposals: list[Proposal],
    triggers: list[OutTrigger],
) -> None:
    outs: list[Proposal] = []
    ins: list[Proposal] = []
    every_in_rule_fires = True
    has_in_rules = False
    for threshold in rule.threshold:
        condition = threshold.when
        read = reader.read(condition.metric, condition.aggregation, condition.window)
        out = threshold.scales_out
        has_in_rules = has_in_rules or not out
        if read.value is None:
            reports.append(
                build_rule_report(
                    threshold.label, "threshold", False, None, f"metric failed: {read.error}"
                )
            )
            every_in_rule_fires = every_in_rule_fires and out
            continue
        if out:
            triggers.append(
                _out_trigger(threshold.label, read.value, threshold.per_instance, condition.holds)
            )
        if not condition.holds(read.value):
            reports.append(
                build_rule_report(
                    threshold.label,
                    "threshold",
                    False,
                    None,
                    later(_DOES_NOT_HOLD, condition.metric, read.value),
                )
            )
            every_in_rule_fires = every_in_rule_fires and out
            continue
        result = threshold.action.apply(current)
        result = max(result, current) if out else max(min(result, current), 0)
        reports.append(
            build_rule_report(
                threshold.label,
                "threshold",
                True,
                result,
                later(_FIRES, condition.metric, read.value, threshold.action, current),
            )
        )
        (outs if out else ins).append(
            _proposal(threshold.label, "threshold", result, threshold.cooldown)
        )
    if outs:
        proposals.append(max(outs, key=_replicas))
    elif has_in_rules and every_in_rule_fires and ins:
        proposals.append(max(ins, key=_replicas))
    elif has_in_rules:
        proposals.append(
            _proposal("scale-in rules (not all fire)", "threshold", current, timedelta(0))
        )


def _evaluate_step(
    policy: StepPolicy,
    reader: _Reader,
    current: int,
    state: TargetState,
    now: datetime,
    reports: list[RuleReport],
    proposals: list[Proposal],
    triggers: list[OutTrigger],
) -> None:
    read = reader.read(policy.metric, policy.aggregation, policy.window)
    if read.value is None:
        reports.append(
            build_rule_report(policy.label, "step", False, None, f"metric failed: {read.error}")
        )
        return
    if policy.scale_out_steps:
        triggers.append(
            _out_trigger(policy.label, read.value, policy.per_instance, _step_fires_out(policy))
        )
    step = policy.step_for(read.value)
    breach = read.value - policy.threshold
    if step is None:
        reports.append(
            build_rule_report(
                policy.label,
                "step",
                False,
                None,
                later(_NO_STEP, policy.metric, read.value, breach),
            )
        )
        return
    base = current
    cooling = state.scale_out_cooldown_until is not None and now < state.scale_out_cooldown_until
    if policy.adjusts_up(step) and cooling and state.scale_out_base is not None:
        # AWS: during a scale-out cooldown the capacity the initiating scale-out added
        # counts toward this one; only a larger scale-out goes through.
        base = state.scale_out_base
    result, note = policy.adjusted(base, step)
    result = max(result, current) if policy.adjusts_up(step) else max(min(result, current), 0)
    if base != current:
        note += f" (from {base}, the capacity before the scale-out in cooldown)"
    reports.append(
        build_rule_report(
            policy.label,
            "step",
            True,
            result,
            later(_STEP, policy.metric, read.value, breach, note),
        )
    )
    proposals.append(_proposal(policy.label, "step", result, policy.cooldown))


def _evaluate_drain(
    drain: Drain,
    reader: _Reader,
    current: int,
    tolerance: Tolerance,
    reports: list[RuleReport],
    proposals: list[Proposal],
) -> bool:
    """The drain rule's proposal; True when the need is within tolerance of ``current``."""
    backlog = reader.read(drain.backlog, "last", timedelta(0))
    reads = [backlog]
    if drain.arrivals is not None:
        reads.append(reader.read(drain.arrivals, "avg" if drain.window else "last", drain.window))
    failed = [read for read in reads if read.value is None]
    if failed:
        reports.append(
            build_rule_report(
                drain.label, "drain", False, None, f"metric failed: {failed[0].error}"
            )
        )
        return False
    waiting = backlog.value or 0.0
    arriving = (reads[1].value or 0.0) if len(reads) > 1 else 0.0
    replicas, needed = drain.replicas(waiting, arriving)
    within = drain.within.total_seconds()
    detail = (
        f"({arriving:g}/s + {waiting:g} / {within:g}s) / {drain.rate:g}/s per replica "
        f"= {needed:.3f}"
    )
    held = current > 0 and _within(needed / current, tolerance)
    if held:
        replicas = current
        detail += f": ratio {needed / current:.3f} within tolerance"
    else:
        detail += f" -> {replicas}"
    reports.append(build_rule_report(drain.label, "drain", not held, replicas, detail))
    proposals.append(_proposal(drain.label, "drain", replicas, timedelta(0)))
    return held


def _step_fires_out(policy: StepPolicy) -> Callable[[float], bool]:
    def fires(value: float) -> bool:
        step = policy.step_for(value)
        return step is not None and policy.adjusts_up(step)

    return fires
