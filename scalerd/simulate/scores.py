"""How good a replay was, computed from the timeline's columns alone (README: Simulation).

Nothing here looks at decisions or at the model's insides: a score is a sum over rows of
``timeline.csv``, so anyone can recompute ``summary.json`` from the CSV.

* cost — replica-seconds provisioned (starting replicas are paid for too);
* limit — the per-tick need: at every tick exactly the replicas the tick's demand needs,
  ready at once; ``cost_ratio_to_limit`` is cost over limit. No scaler can reach it when
  replicas take time to start;
* oracle — the best any scaler can do (README: Simulation): the clairvoyant that at each tick
  provisions for the largest demand from then until one startup and one tick later,
  ``ceil(max demand over [t, t + startup + interval] / capacity)``;
  ``cost_ratio_to_oracle`` is cost over that;
* under-provisioned seconds — ticks with demand > ready x capacity, and the work that
  ready capacity left unserved (also as a fraction of all the work demanded, which
  compares across capacity models);
* on a ladder of tiers, each of these is in units rather than replicas: cost is the
  billed tier's units, the need the smallest tier's whose units serve the demand, the
  oracle looks one change time ahead, and short is what the serving units leave;
* scale actions — ticks at which provisioned capacity changed; reversals — actions in the
  other direction from the previous one, at most :data:`REVERSAL_WINDOW` seconds after it
  (flaps).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from .model import need, tier_need
from .run import Timeline

__all__ = ["REVERSAL_WINDOW", "Scores", "ladder_oracle", "oracle", "scale_actions", "score"]

REVERSAL_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class Scores:
    cost_replica_seconds: float
    limit_replica_seconds: float
    cost_ratio_to_limit: float | None
    oracle_replica_seconds: float
    cost_ratio_to_oracle: float | None
    underprovisioned_seconds: float
    underprovisioned_fraction: float
    unserved_work: float
    unserved_fraction: float | None
    scale_actions: int
    reversals: int
    max_provisioned: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scale_actions(timeline: Timeline) -> list[tuple[int, int]]:
    """Each action as (tick, +1 up / -1 down): where provisioned capacity changed."""
    actions: list[tuple[int, int]] = []
    before = timeline.initial
    for tick, replicas in enumerate(timeline.provisioned):
        if replicas != before:
            actions.append((tick, 1 if replicas > before else -1))
        before = replicas
    return actions


def score(timeline: Timeline) -> Scores:
    if timeline.tier_units is not None:
        return _score_ladder(timeline, timeline.tier_units)
    interval, capacity = timeline.interval, timeline.capacity
    cost = sum(timeline.provisioned) * interval
    limit = sum(need(demand, capacity) for demand in timeline.demand) * interval
    best = sum(oracle(timeline.demand, capacity, timeline.startup_ticks)) * interval
    return _scores(timeline, cost, limit, best, timeline.ready)


def _scores(
    timeline: Timeline, cost: float, limit: float, best: float, serving: Sequence[float]
) -> Scores:
    """The scores from the costs and what served each tick (replicas, or a ladder's
    units), each a capacity of ``timeline.capacity`` work per second."""
    interval, capacity = timeline.interval, timeline.capacity
    short_ticks = 0
    unserved = 0.0
    work = sum(timeline.demand) * interval
    for demand, ready in zip(timeline.demand, serving, strict=True):
        if demand > ready * capacity:
            short_ticks += 1
            unserved += (demand - ready * capacity) * interval
    actions = scale_actions(timeline)
    return Scores(
        cost_replica_seconds=cost,
        limit_replica_seconds=limit,
        cost_ratio_to_limit=round(cost / limit, 6) if limit else None,
        oracle_replica_seconds=best,
        cost_ratio_to_oracle=round(cost / best, 6) if best else None,
        underprovisioned_seconds=short_ticks * interval,
        underprovisioned_fraction=round(short_ticks / len(timeline), 6),
        unserved_work=round(unserved, 6),
        unserved_fraction=round(unserved / work, 6) if work else None,
        scale_actions=len(actions),
        reversals=_reversals(actions, interval),
        max_provisioned=max(timeline.provisioned),
    )


def oracle(demand: Sequence[float], capacity: float, startup_ticks: int) -> list[int]:
    """The clairvoyant's replicas per tick: what the largest demand of ticks ``t`` to
    ``t + startup_ticks + 1`` needs (the window [t, t + startup + interval] on the tick
    grid; demand holds for a tick)."""
    return [need(peak, capacity) for peak in _peaks_ahead(demand, startup_ticks + 1)]


def ladder_oracle(
    demand: Sequence[float], capacity: float, tier_units: Sequence[float], change_ticks: int
) -> list[float]:
    """The clairvoyant's units per tick on a ladder: the smallest tier that serves the
    largest demand of ticks ``t`` to ``t + change_ticks + 1``, as :func:`oracle` with the
    change time for the startup: the clairvoyant knows demand one change and one tick
    ahead. It pays no restart and ignores the allowed-transition graph."""
    peaks = _peaks_ahead(demand, change_ticks + 1)
    return [tier_need(peak, capacity, tier_units) for peak in peaks]


def _peaks_ahead(demand: Sequence[float], ahead: int) -> list[float]:
    """The largest demand of ticks ``t`` to ``t + ahead`` for each ``t``: a sliding
    maximum, so it is linear in the ticks."""
    window: deque[int] = deque()  # indices of decreasing demand
    peaks = [0.0] * len(demand)
    for index in range(len(demand) + ahead):
        if index < len(demand):
            while window and demand[window[-1]] <= demand[index]:
                window.pop()
            window.append(index)
        tick = index - ahead
        if tick >= 0:
            while window[0] < tick:
                window.popleft()
            peaks[tick] = demand[window[0]]
    return peaks


def _score_ladder(timeline: Timeline, tier_units: Sequence[float]) -> Scores:
    """The same scores on a ladder, in units: cost is the billed tier's units, the need
    the smallest tier's that serves the demand, short what the serving units leave."""
    assert timeline.units is not None and timeline.serving is not None
    interval, capacity = timeline.interval, timeline.capacity
    cost = sum(timeline.units) * interval
    limit = sum(tier_need(demand, capacity, tier_units) for demand in timeline.demand) * interval
    oracle_units = ladder_oracle(timeline.demand, capacity, tier_units, timeline.change_ticks)
    best = sum(oracle_units) * interval
    return _scores(timeline, cost, limit, best, timeline.serving)


def _reversals(actions: list[tuple[int, int]], interval: float) -> int:
    return sum(
        1
        for (earlier, was), (later, now) in pairwise(actions)
        if now != was and (later - earlier) * interval <= REVERSAL_WINDOW
    )
