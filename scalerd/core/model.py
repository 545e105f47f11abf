"""The values the core takes and returns.

Everything here is a frozen, slotted dataclass: observations and capacity come in, a
:class:`Decision` and the next :class:`TargetState` go out. Times are aware UTC datetimes
supplied by the caller; nothing in the core reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar, cast

__all__ = [
    "BreakerState",
    "Capacity",
    "Controls",
    "Decision",
    "DemandHistory",
    "Direction",
    "InputReport",
    "NotScaled",
    "Observation",
    "Reason",
    "Recommendation",
    "RuleReport",
    "Sample",
    "ScaleEvent",
    "Step",
    "TargetState",
]

Direction = Literal["up", "down"]
PauseMode = Literal["all", "scale_in", "scale_out"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One data point of a metric: the time it describes and its value."""

    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What one read of one metric produced: data points, or the error that stopped it.

    A failed read is an ``Observation`` with ``error`` set, never an exception and never
    a zero: the core treats it as a metric failure (no scale-in on missing data).
    """

    metric: str
    samples: tuple[Sample, ...] = ()
    error: str | None = None

    @classmethod
    def value(cls, metric: str, at: datetime, value: float) -> Observation:
        return cls(metric, (Sample(at, value),))

    @classmethod
    def failed(cls, metric: str, error: str) -> Observation:
        return cls(metric, (), error)


@dataclass(frozen=True, slots=True)
class Capacity:
    """Current capacity as the actuator reports it.

    ``provisioned`` is what was asked for (replicas still starting included; the tier
    position for a ladder), ``ready`` what is serving. ``operation`` names a change still
    in flight (an Azure long-running operation), during which the target holds.
    """

    provisioned: int
    ready: int
    operation: str | None = None

    @classmethod
    def steady(cls, replicas: int) -> Capacity:
        return cls(replicas, replicas)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A raw (unstabilized) recommendation, kept for the stabilization windows."""

    at: datetime
    replicas: int


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A change that was applied; rate-limit periods are reconstructed from these."""

    at: datetime
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class DemandHistory:
    """A metric's history for the predictive floor: the highest reading in each bucket.

    ``peaks[i]`` belongs to bucket ``first + i`` (buckets are counted from the Unix epoch,
    see ``scalerd.core.predict.bucket_of``); ``None`` where no reading arrived.
    """

    first: int = 0
    peaks: tuple[float | None, ...] = ()


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One circuit breaker between decisions: open or closed, since when, and, while open,
    since when the reading has been healthy (the hold time before closing runs from it)."""

    open: bool
    since: datetime
    healthy_since: datetime | None = None
    # the reading that opened it (None when a missing reading did)
    opened_at: float | None = None


@dataclass(frozen=True, slots=True)
class Controls:
    """Operator controls: pause (all, scale-in or scale-out) and a manual override.

    Each may carry an expiry; an expired control is dropped at the next decision.
    """

    pause: PauseMode | None = None
    pause_until: datetime | None = None
    override: int | None = None
    override_until: datetime | None = None

    def active(self, now: datetime) -> Controls:
        if self.pause_until is None and self.override_until is None:
            return self  # nothing can expire: the common case, checked every evaluation
        pause, pause_until = self.pause, self.pause_until
        if pause_until is not None and now >= pause_until:
            pause, pause_until = None, None
        override, override_until = self.override, self.override_until
        if override_until is not None and now >= override_until:
            override, override_until = None, None
        if (pause, pause_until, override, override_until) == (
            self.pause,
            self.pause_until,
            self.override,
            self.override_until,
        ):
            return self
        return Controls(pause, pause_until, override, override_until)


@dataclass(frozen=True, slots=True)
class TargetState:
    """Everything the core remembers about one target between decisions.

    The daemon persists it after every tick (so a restart keeps windows and cooldowns);
    ``simulate`` threads it through its loop. Treat it as immutable: the core returns a
    new one.
    """

    samples: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()
    scale_out_cooldown_until: datetime | None = None
    scale_in_cooldown_until: datetime | None = None
    # Capacity before the scale-out that started the current scale-out cooldown: AWS step
    # scaling counts the capacity that scale-out added as part of the next one.
    scale_out_base: int | None = None
    consecutive_failures: int = 0
    # KEDA's lastActiveTime: when a trigger was last above its activation threshold (or,
    # if none has been seen yet, when inactivity was first seen)
    last_active_at: datetime | None = None
    controls: Controls = field(default_factory=Controls)
    # (since, ready replicas) at each change of the ready count, as long as samples are
    # kept: a metric sample describes the replicas that were ready when it was measured
    ready_history: tuple[tuple[datetime, int], ...] = ()
    # the forecast metric's per-bucket peaks, when the target has a [predict] floor
    demand_history: DemandHistory = field(default_factory=DemandHistory)
    # each [[breaker]]'s state, by name
    breakers: Mapping[str, BreakerState] = field(default_factory=dict)

    def with_controls(self, controls: Controls) -> TargetState:
        return replace(self, controls=controls)


class Step(StrEnum):
    """Reason codes of the decision pipeline, in the order the steps run."""

    SCHEDULE = "schedule"
    RECOMMENDED = "recommended"
    METRIC_FAILURE = "metric_failure"
    PREDICTIVE_FLOOR = "predictive_floor"
    ACTIVATION = "activation"
    DEACTIVATION = "deactivation"
    OVERRIDE = "override"
    SCALE_UP_STABILIZED = "scale_up_stabilized"
    SCALE_DOWN_STABILIZED = "scale_down_stabilized"
    COOLDOWN = "cooldown"
    SCALE_UP_LIMIT = "scale_up_limit"
    SCALE_DOWN_LIMIT = "scale_down_limit"
    SCALING_DISABLED = "scaling_disabled"
    FLAPPING = "flapping"
    BREAKER = "breaker"
    TRANSITION = "transition"
    TOO_MANY = "too_many_replicas"
    TOO_FEW = "too_few_replicas"
    PAUSED = "paused"
    IN_FLIGHT = "operation_in_flight"
    MAINTENANCE_WINDOW = "maintenance_window"


class NotScaled(StrEnum):
    """Why a decision left capacity where it was (in the spirit of AWS's NotScaledReasons)."""

    NO_CHANGE_RECOMMENDED = "NoChangeRecommended"
    WITHIN_TOLERANCE = "WithinTolerance"
    METRIC_FAILURE = "MetricFailure"
    INACTIVE = "Inactive"
    OVERRIDE = "ManualOverride"
    STABILIZATION = "StabilizationWindow"
    COOLDOWN = "CooldownActive"
    RATE_LIMITED = "RateLimited"
    SCALING_DISABLED = "ScalingDisabled"
    FLAPPING = "AnticipatedFlapping"
    BREAKER_OPEN = "BreakerOpen"
    TRANSITION = "TransitionNotAllowed"
    AT_MAX = "AlreadyAtMax"
    AT_MIN = "AlreadyAtMin"
    PAUSED = "Paused"
    IN_FLIGHT = "OperationInFlight"
    MAINTENANCE_WINDOW = "OutsideMaintenanceWindow"


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of the pipeline: what it did to the capacity, and why, with its numbers."""

    code: Step
    before: int
    after: int
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)
    # the not-scaled reason this step stands for when it is what kept capacity unchanged
    holds_as: NotScaled | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": str(self.code),
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }
        if self.data:
            out["data"] = dict(self.data)
        if self.holds_as is not None:
            out["holds_as"] = str(self.holds_as)
        return out


@dataclass(frozen=True, slots=True)
class InputReport:
    """One metric as a rule saw it: the aggregated value, or why there is none."""

    metric: str
    source: str
    value: float | None
    aggregation: str
    window_s: float
    points: int
    age_s: float | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "source": self.source,
            "value": self.value,
            "aggregation": self.aggregation,
            "window_s": self.window_s,
            "points": self.points,
            "age_s": self.age_s,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class RuleReport:
    """One rule's verdict: did it fire, and which capacity did it propose."""

    rule: str
    kind: Literal["track", "threshold", "step", "drain", "alert"]
    fired: bool
    proposed: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "fired": self.fired,
            "proposed": self.proposed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one evaluation of one target, with the reason for every step.

    The audit record is this value serialized; nothing re-describes it.
    """

    target: str
    at: datetime
    current: Capacity
    recommended: int
    desired: int
    steps: tuple[Reason, ...]
    inputs: tuple[InputReport, ...]
    rules: tuple[RuleReport, ...]
    not_scaled_reason: NotScaled | None
    # how long scaling in this direction waits after this change is applied
    cooldown: timedelta = timedelta(0)
    # the ladder tier names, and whether moving between them restarts the resource
    tier: str | None = None
    restarts: bool = False

    @property
    def direction(self) -> Direction | None:
        if self.desired > self.current.provisioned:
            return "up"
        if self.desired < self.current.provisioned:
            return "down"
        return None

    @property
    def changes(self) -> bool:
        return self.desired != self.current.provisioned

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "at": self.at.isoformat(),
            "current": {
                "provisioned": self.current.provisioned,
                "ready": self.current.ready,
                "operation": self.current.operation,
            },
            "recommended": self.recommended,
            "desired": self.desired,
            "tier": self.tier,
            "restarts": self.restarts,
            "steps": [step.as_dict() for step in self.steps],
            "inputs": [report.as_dict() for report in self.inputs],
            "rules": [report.as_dict() for report in self.rules],
            "not_scaled_reason": str(self.not_scaled_reason) if self.not_scaled_reason else None,
            "cooldown_s": self.cooldown.total_seconds(),
        }


T = TypeVar("T")


def builder(cls: type[T]) -> type[T]:
    """A constructor of the frozen, slotted dataclass ``cls`` at a third of the cost of
    ``cls(...)``, with the same parameters and defaults, for the values every evaluation
    builds (a dozen of them: their frozen ``__init__`` took a sixth of a decision).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``;
    this one is the ``__init__`` of a mutable twin with the same slots, which stores them
    directly and then turns the instance into ``cls`` (``__class__`` assignment between
    classes of the same layout). What it returns is exactly what ``cls(...)`` returns: of
    type ``cls``, equal to it, hashed alike, and frozen. ``cls`` must have no
    ``__post_init__`` (it would be skipped) and every field in its ``__init__``.
    """
    items = fields(cast(Any, cls))
    slots = cls.__dict__.get("__slots__")
    if (
        hasattr(cls, "__post_init__")
        or slots is None
        or tuple(slots) != tuple(item.name for item in items)
        or any(item.kw_only or not item.init for item in items)
    ):
        raise TypeError(f"{cls.__name__}: no builder for it (see scalerd.core.model.builder)")
    namespace: dict[str, Any] = {"_cls": cls, "_FACTORY": _FACTORY}
    params, body = [], []
    for item in items:
        name = item.name
        value = name
        if item.default is not MISSING:
            namespace[f"_default_{name}"] = item.default
            params.append(f"{name}=_default_{name}")
        elif item.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = item.default_factory
            params.append(f"{name}=_FACTORY")
            value = f"_factory_{name}() if {name} is _FACTORY else {name}"
        else:
            params.append(name)
        body.append(f"    self.{name} = {value}\n")
    source = f"def __init__(self, {', '.join(params)}):\n{''.join(body)}    self.__class__ = _cls\n"
    exec(source, namespace)  # the code is written from the class's own field names
    twin = type(
        f"{cls.__name__}Builder", (), {"__slots__": slots, "__init__": namespace["__init__"]}
    )
    return cast(type[T], twin)  # calling it makes a T: calls are type-checked as T's


class _Factory:
    """A builder's default for a field with a default factory: the factory is called."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def later(render: Callable[..., str], *args: Any) -> str:
    """A text written when it is first read: ``render(*args)``.

    The reasons and rule reports of a decision explain every step in words, and their
    numbers take more to format than the decision takes to make; a replay reads none of
    them. So a step may carry its text as ``later(template.format, a, b)`` rather than
    ``template.format(a, b)``: :class:`Reason` and :class:`RuleReport` render it the first
    time their ``detail`` is read (and keep it), so whoever reads it (``as_dict``, the
    audit record, ``==``, ``repr``) reads the very text an eager step would hold. The
    arguments must be values that do not change (numbers, strings, frozen values).
    """
    return (render, *args)  # type: ignore[return-value]


def written(text: str) -> str:
    """``text`` itself, or the text :func:`later` stands for, rendered."""
    if type(text) is str:
        return text
    parts: tuple[Any, ...] = text  # type: ignore[assignment]
    return parts[0](*parts[1:])  # type: ignore[no-any-return]


def _rendered_on_read(cls: type[Any], name: str) -> None:
    """Make ``cls.name`` render a :func:`later` text the first time it is read, then keep
    the text in the slot. Writing it (only ``__init__`` can: the class is frozen) stores
    the value as it is."""
    slot = cls.__dict__[name]
    get, put = slot.__get__, slot.__set__

    def read(self: Any) -> str:
        text = get(self, cls)
        if type(text) is not str:
            text = written(text)
            put(self, text)
        return text

    setattr(cls, name, property(read, put, doc=f"{cls.__name__}'s {name}, in words"))


_rendered_on_read(Reason, "detail")
_rendered_on_read(RuleReport, "detail")


# builders (see :func:`builder`) of the values the core makes at every evaluation
build_sample = builder(Sample)
build_observation = builder(Observation)
build_capacity = builder(Capacity)
build_recommendation = builder(Recommendation)
build_scale_event = builder(ScaleEvent)
build_reason = builder(Reason)
build_input = builder(InputReport)
build_rule_report = builder(RuleReport)
build_decision = builder(Decision)
build_state = builder(TargetState)
