"""Stabilization windows, exactly as the Kubernetes HPA (``stabilizeRecommendationWithBehaviors``).

Scale-up uses the *lowest* recommendation inside the scale-up window, scale-down the
*highest* inside the scale-down window; a recommendation counts when it is strictly newer
than ``now - window``. The raw recommendation is recorded either way.
"""

from __future__ import annotations

import bisect
import operator
from datetime import datetime

from .model import (
    NotScaled,
    Reason,
    Recommendation,
    Step,
    build_reason,
    build_recommendation,
    later,
)
from .rules import Behavior

__all__ = ["stabilize"]


def stabilize(
    raw: int,
    current: int,
    history: tuple[Recommendation, ...],
    behavior: Behavior,
    now: datetime,
) -> tuple[int, tuple[Recommendation, ...], Reason]:
    up_cutoff = now - behavior.up_window
    down_cutoff = now - behavior.down_window
    # the lowest recommendation in the scale-up window and the highest in the scale-down
    # window (``raw`` among them), whatever the history's order, in one pass with no call
    # per entry: an entry that moves neither limit costs one integer comparison
    up_limit = down_limit = raw
    for recommendation in history:
        replicas = recommendation.replicas
        if replicas < up_limit and recommendation.at > up_cutoff:
            up_limit = replicas
        if replicas > down_limit and recommendation.at > down_cutoff:
            down_limit = replicas
    stabilized = min(max(current, up_limit), down_limit)

    # keep what either window can still see, then record this recommendation
    oldest_needed = min(up_cutoff, down_cutoff)
    start = bisect.bisect_right(history, oldest_needed, key=_time)  # history is in time order
    kept = (*history[start:], build_recommendation(now, raw))

    if raw >= current:
        code, window, kind = Step.SCALE_UP_STABILIZED, behavior.up_window, "lowest"
    else:
        code, window, kind = Step.SCALE_DOWN_STABILIZED, behavior.down_window, "highest"
    window_s = window.total_seconds()
    detail = (
        later(_OVERRIDDEN, kind, window_s, stabilized)
        if stabilized != raw
        else later(_NOT_OVERRIDDEN, window_s, raw)
    )
    reason = build_reason(
        code,
        raw,
        stabilized,
        detail,
        {"window_s": window_s, "up_limit": up_limit, "down_limit": down_limit},
        NotScaled.STABILIZATION,
    )
    return stabilized, kept, reason


_OVERRIDDEN = "{} recommendation in the last {:g}s is {}".format
_NOT_OVERRIDDEN = "no earlier recommendation in the last {:g}s overrides {}".format

# a C-level key: bisect calls it at every probe
_time = operator.attrgetter("at")
