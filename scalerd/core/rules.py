"""The rule language: what ops write in ``[[targets]]`` and ``rules/*.toml``, validated.

Each form keeps the spelling of the system ops learned it from:

* ``[[track]]`` — target tracking, the Kubernetes HPA / KEDA arithmetic;
* ``[[threshold]]`` — Azure Monitor autoscale rules, ``when = "Percentage CPU > 75 avg 5m"``,
  ``action = "+2" | "-1" | "+50%" | "=10"``;
* ``[[step]]`` — AWS step scaling, bounds as offsets from the alarm threshold;
* ``[behavior]`` — the Kubernetes HPA ``behavior`` field (windows, policies, select);
* ``[[schedule]]`` — recurring profiles (cron + IANA time zone) that move min/max/default.

The models are frozen pydantic models with ``extra="forbid"``: an unknown key is an
error, never ignored. Cross-field checks raise ``ValueError`` whose message may start with
``@sub.path:``, which the config loader turns into a precise key path and line.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .durations import Duration, format_duration

__all__ = [
    "MAX_CAPACITY",
    "Action",
    "Aggregation",
    "Behavior",
    "Breaker",
    "BreakerClose",
    "BreakerOpen",
    "Calendar",
    "Condition",
    "Cooldown",
    "CronWindow",
    "Drain",
    "Fallback",
    "Ladder",
    "MetricSpec",
    "Override",
    "Policy",
    "Predict",
    "Rule",
    "ScalingRules",
    "Schedule",
    "StepAdjustment",
    "StepPolicy",
    "TargetSpec",
    "ThresholdRule",
    "Tier",
    "Tolerance",
    "Track",
    "located",
]

SECOND = timedelta(seconds=1)
# the most replicas (or tier positions) any target may have: far above any platform's own
# limit (Container Apps: 1,000 replicas), far below what exhausts memory or arithmetic
MAX_CAPACITY = 100_000


def located(path: str, message: str) -> ValueError:
    """A validation error that names the key below the model it was raised in."""
    return ValueError(f"@{path}: {message}")


class Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=False, allow_inf_nan=False
    )


# --- aggregation ------------------------------------------------------------------------

_AGGREGATION_ALIASES = {
    "avg": "avg",
    "average": "avg",
    "mean": "avg",
    "min": "min",
    "minimum": "min",
    "max": "max",
    "maximum": "max",
    "total": "total",
    "sum": "total",
    "count": "count",
    "last": "last",
}
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def normalize_aggregation(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("aggregation must be a string")
    lowered = value.strip().lower()
    if lowered in _AGGREGATION_ALIASES:
        return _AGGREGATION_ALIASES[lowered]
    match = _PERCENTILE.fullmatch(lowered)
    if match and 0 < float(match.group(1)) < 100:
        return lowered
    raise ValueError(
        f"unknown aggregation {value!r}: use avg, min, max, total, count, last or a "
        "percentile such as p95"
    )


Aggregation = Annotated[str, Field(description="avg|min|max|total|count|last|pNN")]


# --- target tracking -------------------------------------------------------------------


class Track(Spec):
    """Keep a metric at a target (HPA/KEDA arithmetic).

    ``type`` says what the metric measures:

    * ``utilization`` — per-replica average in percent (HPA ``Utilization``);
    * ``average`` — per-replica average of any value (HPA ``Pods`` / ``AverageValue``);
    * ``total`` — a total across replicas such as a queue length, held at ``target`` per
      replica (HPA ``External`` ``AverageValue``; KEDA's queue scalers).
    """

    # a label for the audit (default: the metric, type and target)
    name: str | None = None
    # the metric the rule reads (a source name, or a key of [targets.metrics])
    metric: str = Field(min_length=1)
    # "utilization": per-replica average in percent; "average": per-replica average of any value; "total": a total such as a queue length, `target` per replica
    type: Literal["utilization", "average", "total"]
    # the value to hold the metric at (per replica for utilization/average)
    target: float = Field(gt=0)
    # how the samples in `window` are combined: last, avg, min, max, total, count or pNN (p95)
    aggregation: str = "last"
    # how far back the aggregation looks (0s: the latest sample)
    window: Duration = timedelta(0)
    # KEDA's activation threshold: at min 0, wake when the metric is strictly above it
    activation: float = Field(0.0, ge=0)

    _aggregation = field_validator("aggregation", mode="before")(normalize_aggregation)

    @model_validator(mode="after")
    def _window_for_aggregation(self) -> Track:
        if self.window <= timedelta(0) and self.aggregation != "last":
            raise located("window", f"aggregation {self.aggregation!r} needs a window, e.g. '1m'")
        return self

    @cached_property
    def label(self) -> str:
        return self.name or f"{self.metric} {self.type} target {self.target:g}"


class Drain(Spec):
    """Work-aware sizing for a queue: serve what arrives and drain the backlog in time.

    With ``n`` replicas each completing ``rate`` units of work per second, the backlog
    ``B`` shrinks at ``n x rate - arrivals`` per second, so draining it within ``within``
    needs ``n >= (arrivals + B / within) / rate``; the rule proposes the smallest such
    ``n``. Without an ``arrivals`` metric the rule sizes for the backlog alone, which
    settles where the backlog is ``within`` seconds of work: a wait of about ``within``.
    """

    # a label for the audit (default: the backlog metric and the drain time)
    name: str | None = None
    # the work waiting, as a total across replicas (a queue's message count)
    backlog: str = Field(min_length=1)
    # the work arriving per second, as a total (a queue's incoming-message rate); unset:
    # size for the backlog alone
    arrivals: str | None = Field(None, min_length=1)
    # units of work one replica completes per second
    rate: float = Field(gt=0)
    # drain the backlog within this long
    within: Duration
    # the arrivals are averaged over this window (0s: the latest reading)
    window: Duration = timedelta(0)

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @cached_property
    def label(self) -> str:
        return self.name or f"drain {self.backlog} within {format_duration(self.within)}"

    def replicas(self, backlog: float, arrivals: float) -> tuple[int, float]:
        """The fewest replicas that drain ``backlog`` within ``within`` while ``arrivals``
        keep coming, and the fractional need it is the ceiling of."""
        needed = (arrivals + backlog / self.within.total_seconds()) / self.rate
        return math.ceil(needed - 1e-9), needed


class Tolerance(Spec):
    """The dead band around a ratio of 1 in which tracking recommends no change (inclusive)."""

    # Kubernetes allows values above 1: a scale-down tolerance of 1 or more never scales in
    up: float = Field(0.1, ge=0)
    # no scale-down while the ratio to target is within 1 - down
    down: float = Field(0.1, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"up": value, "down": value}
        return value


# --- Azure Monitor autoscale threshold rules ----------------------------------------------

_CONDITION = re.compile(
    r"^\s*(?P<metric>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>[-+]?\d+(?:\.\d+)?)"
    r"(?:\s+(?P<aggregation>[A-Za-z0-9.]+)\s+(?P<window>\S+))?\s*$"
)
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class Condition(Spec):
    """``"Percentage CPU > 75 avg 5m"``: metric, comparison, threshold, aggregation, window."""

    metric: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    aggregation: str
    window: Duration

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _CONDITION.match(value)
        if not match:
            raise ValueError(
                f"cannot read condition {value!r}: expected '<metric> <op> <threshold> "
                "<aggregation> <window>', e.g. 'Percentage CPU > 75 avg 5m'"
            )
        if match.group("aggregation") is None:
            raise ValueError(
                f"condition {value!r} needs an aggregation and a window, e.g. "
                f"'{value.strip()} avg 5m'"
            )
        return {
            "metric": match.group("metric"),
            "op": match.group("op"),
            "threshold": float(match.group("threshold")),
            "aggregation": normalize_aggregation(match.group("aggregation")),
            "window": match.group("window"),
        }

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("the window of a condition must be longer than 0s")
        return value

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return (
            f"{self.metric} {self.op} {self.threshold:g} {self.aggregation} "
            f"{format_duration(self.window)}"
        )


_ACTION = re.compile(r"^\s*(?P<sign>[-+=])\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<percent>%?)\s*$")


class Action(Spec):
    """``+N`` / ``-N`` add or remove, ``+P%`` / ``-P%`` change by a percentage, ``=N`` set."""

    kind: Literal["change", "percent", "exact"]
    amount: float = Field(ge=-MAX_CAPACITY, le=MAX_CAPACITY)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            if isinstance(value, dict):
                return value
            raise ValueError(
                f"an action is a string: '+2', '-1', '+50%', '-20%' or '=10' (got {value!r})"
            )
        match = _ACTION.match(value)
        if not match:
            raise ValueError(
                f"cannot read action {value!r}: use '+2', '-1', '+50%', '-20%' or '=10'"
            )
        sign, amount, percent = (
            match.group("sign"),
            float(match.group("amount")),
            match.group("percent"),
        )
        if sign == "=":
            if percent:
                raise ValueError(f"action {value!r}: '=' sets a capacity, not a percentage")
            if amount != int(amount):
                raise ValueError(f"action {value!r}: a capacity is a whole number")
            return {"kind": "exact", "amount": amount}
        if amount == 0:
            raise ValueError(f"action {value!r} changes nothing")
        if not percent and amount != int(amount):
            raise ValueError(f"action {value!r}: a count is a whole number")
        return {
            "kind": "percent" if percent else "change",
            "amount": -amount if sign == "-" else amount,
        }

    def apply(self, current: int) -> int:
        """Azure's arithmetic: percentages round away from the current capacity.

        Azure Monitor autoscale rounds a percent increase up and a percent decrease so that
        at least one instance is removed; a change is never smaller than one instance.
        """
        if self.kind == "exact":
            return int(self.amount)
        if self.kind == "change":
            return current + int(self.amount)
        delta = current * self.amount / 100.0
        step = math.ceil(abs(delta) - 1e-9)
        return current + max(step, 1) * (1 if delta > 0 else -1)

    def __str__(self) -> str:
        if self.kind == "exact":
            return f"={int(self.amount)}"
        suffix = "%" if self.kind == "percent" else ""
        return f"{self.amount:+g}{suffix}"


class ThresholdRule(Spec):
    """An Azure Monitor autoscale rule: a condition, an action and its own cooldown."""

    # a label for the audit (default: the condition and the action)
    name: str | None = None
    # the condition, as Azure Monitor writes it: "Percentage CPU > 75 avg 5m"
    when: Condition
    # "+2", "-1", "+50%", "=10": add, remove, change by a percentage, set
    action: Action
    # after a scale this rule asked for, no further scale in that direction for this long
    cooldown: Duration = timedelta(minutes=5)
    # The metric is an average per instance, so at a smaller capacity the same load reads
    # higher (Azure's flapping projection). False for totals such as queue length.
    per_instance: bool = True
    # "out" or "in", for an "=N" action whose direction the comparison does not imply
    direction: Literal["out", "in"] | None = None

    @model_validator(mode="after")
    def _direction(self) -> ThresholdRule:
        implied = self._implied_direction()
        if self.direction is not None and self.action.kind != "exact" and self.direction != implied:
            raise located(
                "direction", f"action {self.action} scales {implied}, not {self.direction}"
            )
        return self

    def _implied_direction(self) -> Literal["out", "in"]:
        if self.action.kind == "exact":
            return "out" if self.when.op in (">", ">=") else "in"
        return "out" if self.action.amount > 0 else "in"

    @cached_property
    def label(self) -> str:
        return self.name or f"{self.when} => {self.action}"

    @property
    def scales_out(self) -> bool:
        return (self.direction or self._implied_direction()) == "out"


class Alert(Spec):
    """A condition on a metric that scales nothing and is told to people: while it holds,
    the rules' report says so, and a ``[[notify]]`` sink that wants ``alert`` hears of it
    once each time it begins to hold (e.g. replication lag above 1 s)."""

    # a label for the audit and the notice (default: the condition)
    name: str | None = None
    # the condition, as a threshold rule writes it: "replication lag > 1 max 5m"
    when: Condition

    @cached_property
    def label(self) -> str:
        return self.name or str(self.when)


# --- AWS step scaling -------------------------------------------------------------------


class StepAdjustment(Spec):
    """One step: applies when ``threshold + lower <= metric < threshold + upper`` above the
    threshold (``threshold + lower < metric <= threshold + upper`` below it), as AWS."""

    # the step's lower bound, as an offset from the threshold (unset: minus infinity)
    lower: float | None = None
    # the step's upper bound, as an offset from the threshold (unset: plus infinity)
    upper: float | None = None
    # the change (units or percent, by adjustment_type) or the exact capacity
    adjust: float = Field(ge=-MAX_CAPACITY, le=MAX_CAPACITY)

    @model_validator(mode="after")
    def _ordered(self) -> StepAdjustment:
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise located("upper", f"must be greater than lower ({self.lower:g})")
        return self

    @property
    def above(self) -> bool:
        """True when the step lies above the threshold (lower bound 0 or more)."""
        return self.lower is not None and self.lower >= 0

    def matches(self, breach: float) -> bool:
        if self.above:
            return breach >= (self.lower or 0.0) and (self.upper is None or breach < self.upper)
        lower_ok = self.lower is None or breach > self.lower
        return lower_ok and (self.upper is None or breach <= self.upper)


class StepPolicy(Spec):
    """An AWS step-scaling policy: a metric, an alarm threshold, step adjustments."""

    # a label for the audit (default: the metric and the threshold)
    name: str | None = None
    # the metric the alarm reads
    metric: str = Field(min_length=1)
    # how the samples in `window` are combined (avg, min, max, total, count, last, pNN)
    aggregation: str = "avg"
    # the alarm's period
    window: Duration = timedelta(minutes=1)
    # the alarm threshold the steps' bounds are offsets from
    threshold: float
    # AWS's ChangeInCapacity, PercentChangeInCapacity or ExactCapacity
    adjustment_type: Literal["change", "percent", "exact"] = "change"
    # percent changes move at least this many units (AWS)
    min_adjustment_magnitude: int | None = Field(None, ge=1, le=MAX_CAPACITY)
    # the warm-up after a scale this policy asked for
    cooldown: Duration = timedelta(minutes=5)
    # the metric is an average per instance (flapping projection); false for totals
    per_instance: bool = True
    # the step adjustments, each on one side of the threshold
    steps: tuple[StepAdjustment, ...] = Field(min_length=1)

    _aggregation = field_validator("aggregation", mode="before")(normalize_aggregation)

    @model_validator(mode="after")
    def _contiguous(self) -> StepPolicy:
        if self.min_adjustment_magnitude is not None and self.adjustment_type != "percent":
            raise located(
                "min_adjustment_magnitude", "applies only to adjustment_type = 'percent' (as AWS)"
            )
        for index, step in enumerate(self.steps):
            low = -math.inf if step.lower is None else step.lower
            high = math.inf if step.upper is None else step.upper
            if low < 0 < high:
                raise located(
                    f"steps[{index}]",
                    "a step lies on one side of the threshold: its bounds may not straddle 0",
                )
            if self.adjustment_type == "exact" and step.adjust < 0:
                raise located(f"steps[{index}].adjust", "an exact capacity cannot be negative")
        # AWS: a negative lower bound needs a step that reaches -infinity, a positive upper
        # bound one that reaches +infinity
        if any(s.lower is not None and s.lower < 0 for s in self.steps) and all(
            s.lower is not None for s in self.steps
        ):
            raise located(
                "steps",
                "a step has a negative lower bound, so one step must leave lower unset (-infinity)",
            )
        if any(s.upper is not None and s.upper > 0 for s in self.steps) and all(
            s.upper is not None for s in self.steps
        ):
            raise located(
                "steps",
                "a step has a positive upper bound, so one step must leave upper unset (+infinity)",
            )
        if sum(step.lower is None for step in self.steps) > 1:
            raise located("steps", "at most one step may leave lower unset (-infinity)")
        if sum(step.upper is None for step in self.steps) > 1:
            raise located("steps", "at most one step may leave upper unset (+infinity)")
        ordered = sorted(
            enumerate(self.steps),
            key=lambda item: -math.inf if item[1].lower is None else item[1].lower,
        )
        for (_, previous), (index, step) in itertools.pairwise(ordered):
            if previous.upper is None:
                raise located(f"steps[{index}]", "overlaps a step whose upper bound is unset")
            if step.lower is None:
                raise located(f"steps[{index}].lower", "only the lowest step may leave lower unset")
            if step.lower < previous.upper:
                raise located(
                    f"steps[{index}].lower",
                    f"overlaps the step ending at {previous.upper:g}",
                )
            if step.lower > previous.upper:
                raise located(
                    f"steps[{index}].lower",
                    f"leaves a gap after the step ending at {previous.upper:g}",
                )
        return self

    @cached_property
    def label(self) -> str:
        return self.name or f"{self.metric} step policy at {self.threshold:g}"

    def step_for(self, value: float) -> StepAdjustment | None:
        breach = value - self.threshold
        # above the threshold (breach >= 0) the steps with lower >= 0 win ties at 0
        candidates = sorted(self.steps, key=lambda step: not step.above)
        for step in candidates:
            if step.matches(breach):
                return step
        return None

    @property
    def scale_out_steps(self) -> tuple[StepAdjustment, ...]:
        return tuple(step for step in self.steps if self.adjusts_up(step))

    def adjusts_up(self, step: StepAdjustment) -> bool:
        return step.adjust > 0 if self.adjustment_type != "exact" else step.above

    def adjusted(self, base: int, step: StepAdjustment) -> tuple[int, str]:
        """AWS's arithmetic: truncate percentages toward zero, but never to less than one;
        the minimum adjustment magnitude lifts small percentage changes."""
        if self.adjustment_type == "exact":
            return int(step.adjust), f"set capacity to {int(step.adjust)}"
        if self.adjustment_type == "change":
            return base + int(step.adjust), f"{int(step.adjust):+d} from {base}"
        raw = base * step.adjust / 100.0
        change = math.trunc(raw)
        if change == 0 and raw != 0:
            change = 1 if raw > 0 else -1
        note = f"{step.adjust:+g}% of {base} = {raw:+.2f} -> {change:+d}"
        floor = self.min_adjustment_magnitude
        if floor is not None and 0 < abs(change) < floor:
            change = floor if change > 0 else -floor
            note += f", minimum magnitude {floor} -> {change:+d}"
        return base + change, note


# --- Kubernetes HPA behavior ------------------------------------------------------------


class Policy(Spec):
    """A rate policy: at most ``value`` pods (or percent) per ``period``."""

    # "pods": a fixed count per period; "percent": a share of the capacity at the period's start
    type: Literal["pods", "percent"]
    # how many pods, or what percentage
    value: int = Field(gt=0, le=MAX_CAPACITY)
    # the window the change is measured over
    period: Duration

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("period")
    @classmethod
    def _period(cls, value: timedelta) -> timedelta:
        # the HPA API allows 1..1800 seconds
        if not SECOND <= value <= timedelta(minutes=30):
            raise ValueError("must be between 1s and 30m (as the Kubernetes HPA allows)")
        return value


class ScalingRules(Spec):
    """One direction of ``behavior``; unset fields take the Kubernetes defaults."""

    # the HPA's window: up takes the lowest, down the highest recommendation within it (default: 0s up, 300s down)
    stabilization_window: Duration | None = None
    # which policy wins: the one allowing the larger change ("max"), the smaller ("min"), or none ("disabled")
    select: Literal["max", "min", "disabled"] = "max"
    # rate limits (default: up +100% or +4 per 15s, down -100% per 15s)
    policies: tuple[Policy, ...] | None = None

    @field_validator("select", mode="before")
    @classmethod
    def _select(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("max", "min", "disabled"):
            return value.lower()
        raise ValueError(f"select must be 'max', 'min' or 'disabled', got {value!r}")

    @field_validator("stabilization_window")
    @classmethod
    def _window(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(0) <= value <= timedelta(hours=1):
            raise ValueError("must be between 0s and 1h (as the Kubernetes HPA allows)")
        return value

    @field_validator("policies")
    @classmethod
    def _some(cls, value: tuple[Policy, ...] | None) -> tuple[Policy, ...] | None:
        if value is not None and not value:
            raise ValueError("give at least one policy, or leave policies out for the defaults")
        return value


# Kubernetes defaults (pkg/apis/autoscaling/v2/defaults.go)
DEFAULT_SCALE_UP_POLICIES = (
    Policy(type="pods", value=4, period=timedelta(seconds=15)),
    Policy(type="percent", value=100, period=timedelta(seconds=15)),
)
DEFAULT_SCALE_DOWN_POLICIES = (Policy(type="percent", value=100, period=timedelta(seconds=15)),)


class Behavior(Spec):
    # stabilization and rate limits when growing
    scale_up: ScalingRules = ScalingRules()
    # stabilization and rate limits when shrinking
    scale_down: ScalingRules = ScalingRules()

    @cached_property
    def up_window(self) -> timedelta:
        return self.scale_up.stabilization_window or timedelta(0)

    @cached_property
    def down_window(self) -> timedelta:
        window = self.scale_down.stabilization_window
        return timedelta(minutes=5) if window is None else window

    @cached_property
    def up_policies(self) -> tuple[Policy, ...]:
        return self.scale_up.policies or DEFAULT_SCALE_UP_POLICIES

    @cached_property
    def down_policies(self) -> tuple[Policy, ...]:
        return self.scale_down.policies or DEFAULT_SCALE_DOWN_POLICIES

    @cached_property
    def longest_period(self) -> timedelta:
        return max(policy.period for policy in (*self.up_policies, *self.down_policies))


# --- the rest of a target's rules -------------------------------------------------------


class Cooldown(Spec):
    """Target-wide cooldowns per direction (rules may add their own)."""

    # after a scale-out, no further scale (in or out) for this long
    up: Duration = timedelta(0)
    # after a scale-in, no further scale-in for this long (a scale-out may still happen)
    down: Duration = timedelta(0)


class Fallback(Spec):
    """KEDA's ``fallback``: once more than ``failure_threshold`` evaluations in a row had a
    failed metric, rise to ``replicas``. Unlike KEDA it never lowers capacity: scalerd does
    not scale in on missing data (KEDA's ``currentReplicasIfHigher``)."""

    # after more than this many evaluations in a row with a failed metric…
    failure_threshold: int = Field(3, ge=0, le=10_000)
    # …rise to at least this capacity (never lower)
    replicas: int = Field(ge=0, le=MAX_CAPACITY)


class Override(Spec):
    # hold the target at this capacity
    capacity: int = Field(ge=0, le=MAX_CAPACITY)
    # until then (RFC 3339); unset: until removed
    until: datetime | None = None

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-23T08:00:00Z")
        return value


class CronWindow(Spec):
    """A recurring window: it opens at each ``cron`` time and lasts ``duration`` (or until
    the next ``end`` time), in ``timezone``. Cron is checked by the config loader."""

    # cron expression of the opening times (minute hour day month weekday; 0 and 7 are Sunday)
    cron: str
    # how long each window stays open (give duration or end)
    duration: Duration | None = None
    # a cron expression of the closing times (give duration or end)
    end: str | None = None
    # the IANA time zone the cron times are in, e.g. Europe/Berlin
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}, e.g. 'Europe/Berlin'") from None
        return value

    @model_validator(mode="after")
    def _length(self) -> CronWindow:
        if (self.duration is None) == (self.end is None):
            raise ValueError("give exactly one of duration or end")
        if self.duration is not None and self.duration <= timedelta(0):
            raise located("duration", "must be longer than 0s")
        return self


class Schedule(CronWindow):
    """A scheduled profile: while its window is open, min/max/default change, ramped
    linearly from the base values over ``ramp`` after the window opens."""

    # the profile's name, unique in the target; the audit says which profile is in force
    name: str = Field(min_length=1)
    # the min while the window is open
    minimum: int | None = Field(None, alias="min", ge=0, le=MAX_CAPACITY)
    # the max while the window is open
    maximum: int | None = Field(None, alias="max", ge=1, le=MAX_CAPACITY)
    # the default while the window is open
    default: int | None = Field(None, ge=0, le=MAX_CAPACITY)
    # move linearly from the base values to these over this long after opening
    ramp: Duration = timedelta(0)

    @model_validator(mode="after")
    def _bounds(self) -> Schedule:
        if self.minimum is None and self.maximum is None and self.default is None:
            raise ValueError("a schedule sets at least one of min, max or default")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise located("min", f"min ({self.minimum}) is greater than max ({self.maximum})")
        return self


class Predict(Spec):
    """A predictive floor: a seasonal forecast of one ``[[track]]`` metric ``lead`` ahead,
    corrected by the recent level, sets a floor on capacity (see ``scalerd.core.predict``)."""

    # "on": the floor raises capacity; "shadow": computed and audited, never applied; "off"
    mode: Literal["on", "off", "shadow"] = "on"
    # the name (label) of the [[track]] rule, of type total, whose metric is forecast and
    # whose target sizes the floor (default: the first [[track]] of type total)
    track: str | None = None
    # how far ahead the floor covers: a replica's startup plus one interval
    lead: Duration = timedelta(seconds=75)
    # the length of a season: "1d" (time of day) or "7d" (time of week)
    season: Duration = timedelta(days=1)
    # how many past seasons the seasonal value is taken over
    seasons: int = Field(7, ge=1, le=60)
    # which quantile of those seasons' peaks is the seasonal value (0.5: the median)
    quantile: float = Field(0.5, ge=0, le=1)
    # the recent demand the level (actual ÷ seasonal) is measured over
    level_window: Duration = timedelta(hours=1)
    # the history's resolution: each bucket keeps its highest reading
    bucket: Duration = timedelta(minutes=5)

    @model_validator(mode="after")
    def _whole_buckets(self) -> Predict:
        if self.bucket < timedelta(seconds=1):
            raise located("bucket", "must be at least 1s")
        for key in ("season", "level_window"):
            length: timedelta = getattr(self, key)
            if length < self.bucket or length % self.bucket:
                raise located(
                    key, f"must be a whole number of buckets ({format_duration(self.bucket)})"
                )
        if self.season * self.seasons > timedelta(days=60):
            raise located("seasons", "the history may reach back at most 60 days")
        return self


class _OneSide(Spec):
    """A threshold given on one side, ``above`` or ``below`` (a breaker's open or close)."""

    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> _OneSide:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def past(self, value: float) -> bool:
        """Strictly past the threshold, on its side."""
        return value > self.threshold if self.above is not None else value < self.threshold

    def __str__(self) -> str:
        return f"> {self.threshold:g}" if self.above is not None else f"< {self.threshold:g}"


class BreakerOpen(_OneSide):
    """When a breaker opens: the reading is strictly above ``above`` (an error rate, a
    connection use) or strictly below ``below`` (a health flag, a success ratio)."""

    # open when the reading is above this (give above or below)
    above: float | None = None
    # open when the reading is below this (give above or below)
    below: float | None = None

    def fails(self, value: float) -> bool:
        return self.past(value)


class BreakerClose(_OneSide):
    """When an open breaker closes: the reading has stayed strictly on the healthy side of
    the threshold for ``for`` (the hold time), every evaluation in between."""

    # close when the reading is below this (for a breaker that opens above)
    below: float | None = None
    # close when the reading is above this (for a breaker that opens below)
    above: float | None = None
    # how long the reading must stay healthy before the breaker closes
    hold: Duration = Field(timedelta(minutes=1), alias="for")

    def healthy(self, value: float) -> bool:
        return self.past(value)


class Breaker(Spec):
    """A circuit breaker on a dependency: while it is open, scale-out is held at the
    current capacity (more replicas would add load to a dependency that is already
    failing); scale-in the rules ask for still happens, and the bounds still apply.

    It reads one metric like any rule does (a source, or an ``[[events]]`` entry's
    pushed value), opens at once on a failing reading and closes only after the reading
    has stayed healthy for the hold time (hysteresis: between the two thresholds it
    stays as it is). ``missing`` says what a missing, stale or invalid reading means."""

    # the dependency, as the audit names it ("orders-db"), unique in the target
    name: str = Field(min_length=1)
    # the metric the breaker reads (a source name, or a key of [targets.metrics])
    metric: str = Field(min_length=1)
    # how the samples in `window` are combined: last, avg, min, max, total, count or pNN
    aggregation: str = "last"
    # how far back the aggregation looks (0s: the latest sample)
    window: Duration = timedelta(0)
    # opens on a reading above (or below) this: { above = 0.95 } or { below = 1 }
    open_when: BreakerOpen
    # closes once the reading has been below (or above) this for a hold time, e.g.
    # { below = 0.8, for = "2m" } (default: back past the open threshold for 1m)
    close_when: BreakerClose | None = None
    # a missing, stale or invalid reading: "keep" the breaker as it is, count it as
    # failing ("open"), or as healthy ("closed", which still waits out the hold time)
    missing: Literal["keep", "open", "closed"] = "keep"

    _aggregation = field_validator("aggregation", mode="before")(normalize_aggregation)

    @model_validator(mode="after")
    def _hysteresis(self) -> Breaker:
        if self.window <= timedelta(0) and self.aggregation != "last":
            raise located("window", f"aggregation {self.aggregation!r} needs a window, e.g. '1m'")
        close = self.close_when
        if close is None:
            return self
        if close.hold < timedelta(0):
            raise located("close_when.for", "must not be negative")
        opening = self.open_when
        if opening.above is not None:
            if close.below is None:
                raise located(
                    "close_when",
                    f"the breaker opens above {opening.above:g}: it closes below a value",
                )
            if close.below > opening.above:
                raise located(
                    "close_when.below",
                    f"must not be above the open threshold ({opening.above:g}): the breaker "
                    "would be open and closed at once",
                )
        else:
            if close.above is None:
                raise located(
                    "close_when",
                    f"the breaker opens below {opening.threshold:g}: it closes above a value",
                )
            if close.above < opening.threshold:
                raise located(
                    "close_when.above",
                    f"must not be below the open threshold ({opening.threshold:g}): the "
                    "breaker would be open and closed at once",
                )
        return self

    @cached_property
    def closing(self) -> BreakerClose:
        """``close_when``, or its default: back past the open threshold for one minute."""
        if self.close_when is not None:
            return self.close_when
        opening = self.open_when
        side = "below" if opening.above is not None else "above"
        return BreakerClose.model_validate({side: opening.threshold})


class Rule(Spec):
    """Everything that decides a target's capacity. A rule file holds one of these."""

    # how often the target is evaluated
    interval: Duration = timedelta(seconds=15)
    # the lowest capacity (0: scale to zero, with a [[track]] activation)
    minimum: int = Field(1, alias="min", ge=0, le=MAX_CAPACITY)
    # the highest capacity
    maximum: int = Field(alias="max", ge=1, le=MAX_CAPACITY)
    # the capacity to rise to while a metric fails (never lower)
    default: int | None = Field(None, ge=0, le=MAX_CAPACITY)
    # the dead band around a track's target
    tolerance: Tolerance = Tolerance()
    # target tracking rules (Kubernetes HPA / KEDA)
    track: tuple[Track, ...] = ()
    # threshold rules (Azure Monitor autoscale)
    threshold: tuple[ThresholdRule, ...] = ()
    # step scaling policies (AWS)
    step: tuple[StepPolicy, ...] = ()
    # work-aware queue sizing: arrivals plus draining the backlog within a time
    drain: tuple[Drain, ...] = ()
    # unset: the Kubernetes defaults when a [[track]] rule is present; none at all for
    # threshold and step rules alone, as in Azure Monitor autoscale and AWS, whose
    # cooldowns are the only pacing their users rely on
    behavior: Behavior | None = None
    # cooldowns per direction (targets on a ladder of tiers default to 15m up, 1h down)
    cooldown: Cooldown = Cooldown()
    # what to do after repeated metric failures (KEDA's fallback)
    fallback: Fallback | None = None
    # KEDA's cooldownPeriod: how long every trigger must be inactive before scaling to zero
    idle_before_zero: Duration = timedelta(minutes=5)
    # before a scale-in, check that no scale-out rule would fire at the smaller capacity (Azure)
    flapping_protection: bool = True
    # scheduled profiles that change min/max/default while their window is open
    schedule: tuple[Schedule, ...] = ()
    # "all", "scale_in" or "scale_out": hold that direction (the API can pause too)
    pause: Literal["all", "scale_in", "scale_out"] | None = None
    # a manual capacity, with an optional expiry
    override: Override | None = None
    # a predictive floor from the target's own history (see [predict])
    predict: Predict | None = None
    # conditions told to people, never acted on: [[alert]] when = "replication lag > 1 max 5m"
    alert: tuple[Alert, ...] = ()
    # circuit breakers on dependencies: while one is open, scale-out is held
    breaker: tuple[Breaker, ...] = ()

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError("must be at least 100ms")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.minimum > self.maximum:
            raise located("min", f"min ({self.minimum}) is greater than max ({self.maximum})")
        if self.default is not None and not self.minimum <= self.default <= self.maximum:
            raise located(
                "default",
                f"default ({self.default}) is outside min..max ({self.minimum}..{self.maximum})",
            )
        if not (self.track or self.threshold or self.step or self.drain or self.schedule):
            # a target with schedules alone is scheduled scaling (Azure profiles without
            # rules, a KEDA ScaledObject with only cron triggers): its bounds move, nothing else
            raise located(
                "track",
                "a target needs at least one rule ([[track]], [[threshold]], [[step]] or "
                "[[drain]]) or a [[schedule]]",
            )
        if self.minimum == 0 and not self.track:
            raise located(
                "min",
                "scaling to zero needs a [[track]] rule, whose activation threshold says when "
                "to wake up",
            )
        if self.predict is not None and self.predict.mode != "off":
            totals = [track.label for track in self.track if track.type == "total"]
            wanted = self.predict.track
            if wanted is None and not totals:
                raise located("predict", "a predictive floor needs a [[track]] of type total")
            if wanted is not None and wanted not in totals:
                raise located("predict.track", f"no [[track]] of type total is named {wanted!r}")
        names = [schedule.name for schedule in self.schedule]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise located(f"schedule[{index}].name", f"schedule {name!r} is defined twice")
        breakers = [breaker.name for breaker in self.breaker]
        for index, name in enumerate(breakers):
            if name in breakers[:index]:
                raise located(f"breaker[{index}].name", f"breaker {name!r} is defined twice")
        return self

    @cached_property
    def pacing(self) -> Behavior | None:
        """The stabilization windows and rate policies in force (``None``: not paced)."""
        if self.behavior is not None:
            return self.behavior
        return Behavior() if self.track else None

    def metric_uses(self) -> dict[str, tuple[str | int, ...]]:
        """Every metric a rule reads, with the key path of its first use, in order."""
        uses: dict[str, tuple[str | int, ...]] = {}
        for index, track in enumerate(self.track):
            uses.setdefault(track.metric, ("track", index, "metric"))
        for index, threshold in enumerate(self.threshold):
            uses.setdefault(threshold.when.metric, ("threshold", index, "when"))
        for index, step in enumerate(self.step):
            uses.setdefault(step.metric, ("step", index, "metric"))
        for index, drain in enumerate(self.drain):
            uses.setdefault(drain.backlog, ("drain", index, "backlog"))
            if drain.arrivals is not None:
                uses.setdefault(drain.arrivals, ("drain", index, "arrivals"))
        for index, breaker in enumerate(self.breaker):
            uses.setdefault(breaker.metric, ("breaker", index, "metric"))
        return uses

    @cached_property
    def sizes(self) -> bool:
        """Whether any rule sizes capacity from a metric (a breaker only holds it)."""
        return bool(self.track or self.threshold or self.step or self.drain)

    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.metric_uses())

    def alert_uses(self) -> dict[str, tuple[str | int, ...]]:
        """Every metric an ``[[alert]]`` reads and no scaling rule does, with its key path.
        They are read like the others, but a failure of one never holds a scale-in."""
        scaling = self.metric_uses()
        uses: dict[str, tuple[str | int, ...]] = {}
        for index, alert in enumerate(self.alert):
            if alert.when.metric not in scaling:
                uses.setdefault(alert.when.metric, ("alert", index, "when"))
        return uses

    def longest_window(self) -> timedelta:
        windows = [track.window for track in self.track]
        windows += [threshold.when.window for threshold in self.threshold]
        windows += [step.window for step in self.step]
        windows += [drain.window for drain in self.drain]
        windows += [alert.when.window for alert in self.alert]
        windows += [breaker.window for breaker in self.breaker]
        return max(windows, default=timedelta(0))


# --- what the config loader hands the core ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    """One rung of a vertical ladder: an SKU, its size in comparable units, and whether
    moving to or from it restarts the resource."""

    name: str
    units: float
    restarts: bool = False


@dataclass(frozen=True, slots=True)
class Ladder:
    """An ordered list of tiers (capacity = 1-based position) and the moves Azure allows.

    ``allowed`` holds (from, to) positions; ``None`` means every move is allowed.
    """

    tiers: tuple[Tier, ...]
    allowed: frozenset[tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a ladder needs at least one tier")

    def tier(self, position: int) -> Tier:
        return self.tiers[max(1, min(position, len(self.tiers))) - 1]

    def units(self, position: int) -> float:
        return self.tier(position).units

    def position_for_units(self, units: float) -> int:
        """The smallest tier that offers at least ``units`` (the top one if none does)."""
        for position, tier in enumerate(self.tiers, start=1):
            if tier.units >= units - 1e-9:
                return position
        return len(self.tiers)

    def allows(self, start: int, end: int) -> bool:
        return start == end or self.allowed is None or (start, end) in self.allowed


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Where a metric comes from and how old its newest point may be."""

    source: str
    max_age: timedelta


class Calendar(Protocol):
    """Answers, for a cron window, when the occurrence containing ``now`` opened.

    Built by the shell (apscheduler's cron triggers) and passed in, so the core stays free
    of clock reads and of the scheduling library; it must be a pure function of ``now``.
    """

    def opened_at(self, window: CronWindow, now: datetime) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A validated target as the core sees it: its rule and the facts the config adds."""

    name: str
    rule: Rule
    metrics: Mapping[str, MetricSpec]
    ladder: Ladder | None = None
    maintenance: tuple[CronWindow, ...] = ()
    maintenance_applies_to: frozenset[str] = frozenset({"up", "down"})
    calendar: Calendar | None = None
    # how long metric points are kept: the longest window or max age, plus one interval
    retention: timedelta = field(init=False)

    def __post_init__(self) -> None:
        missing = [metric for metric in self.rule.metric_names() if metric not in self.metrics]
        if missing:
            raise ValueError(f"target {self.name!r}: no source for metric(s) {missing}")
        if (self.rule.schedule or self.maintenance) and self.calendar is None:
            raise ValueError(f"target {self.name!r} has cron windows but no calendar")
        longest_age = max((spec.max_age for spec in self.metrics.values()), default=timedelta(0))
        retention = max(self.rule.longest_window(), longest_age) + self.rule.interval
        object.__setattr__(self, "retention", retention)
