"""The decision core: pure, synchronous, clock-free.

``decide(target, state, capacity, observations, now)`` turns what the sources observed
into a :class:`Decision` that carries a reason for every step, and the next
:class:`TargetState`. The daemon and ``scalerd simulate`` call the same function; that is
what makes a replay exact.
"""

from .decide import decide, record_applied, record_scale
from .durations import Duration, format_duration, parse_duration
from .model import (
    Capacity,
    Controls,
    Decision,
    InputReport,
    NotScaled,
    Observation,
    Reason,
    Recommendation,
    RuleReport,
    Sample,
    ScaleEvent,
    Step,
    TargetState,
)
from .rules import (
    Calendar,
    CronWindow,
    Ladder,
    MetricSpec,
    Rule,
    Schedule,
    TargetSpec,
    Tier,
)

__all__ = [
    "Calendar",
    "Capacity",
    "Controls",
    "CronWindow",
    "Decision",
    "Duration",
    "InputReport",
    "Ladder",
    "MetricSpec",
    "NotScaled",
    "Observation",
    "Reason",
    "Recommendation",
    "Rule",
    "RuleReport",
    "Sample",
    "ScaleEvent",
    "Schedule",
    "Step",
    "TargetSpec",
    "TargetState",
    "Tier",
    "decide",
    "format_duration",
    "parse_duration",
    "record_applied",
    "record_scale",
]
