"""One evaluation of one target — the only place where sources, the core, the actuator, the
state store and the audit stream meet.

read sources (concurrently, each with its timeout) → read current capacity →
``core.decide(now=clock.now())`` → apply (unless unchanged or dry-run) → store state →
write the audit record. Every evaluation leaves exactly one record, whatever fails.

A change is written ahead of being applied (``Pending``, holding the audit record it will
get): if the process dies between the actuator call and the state save, the next start
finds out whether the change landed, records it in the state and writes its audit record,
so a scale action is neither repeated nor lost and the chain of records has no gap. A
change that cannot be written ahead (the state store is unreachable) is not made: the
evaluation is audited ``skipped`` with ``StateUnavailable``.

In a cluster (``ctx.cluster``) an evaluation runs under the fence of its shard's lease
(``CURRENT_FENCE``): without a valid lease it is audited ``skipped`` (``LeaseLost``) and
reads nothing; the actuator is called only while the lease has more than one renew period
left (the time a write may take); and the write-ahead save is fenced, so it fails — and
the change is not made — once a newer owner holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from redis.exceptions import RedisError

from ..audit import AuditLog, AuditRecord, AuditSink, new_record_id
from ..audit.record import JsonObject, describe_shadow
from ..audit.sinks import emit_all
from ..clock import Clock
from ..config import Target
from ..core import (
    Capacity,
    Decision,
    Observation,
    TargetState,
    decide,
    record_applied,
    record_scale,
)
from ..errors import LeaseLost, StaleFence, Throttled
from ..events.trigger import POLL, Trigger
from ..logs import BoundOnce
from ..plugins import CURRENT_FENCE, Actuator, Applied, Fence, Source
from ..redact import REDACTED, redact_value
from .metrics import DaemonMetrics
from .outage import Outage
from .reads import SharedReads, describe
from .state import InFlight, Pending, StateStore, StoredTarget

if TYPE_CHECKING:
    from ..cluster import ClusterMember

__all__ = [
    "TargetRuntime",
    "TickContext",
    "evaluate",
    "evaluate_polls",
    "fenced",
    "planned_reads",
    "records_of",
    "recover_pending",
]

log = structlog.get_logger("scalerd")
_decisions = BoundOnce("scalerd")  # a line per evaluation: bound once, not per line


@dataclass
class TargetRuntime:
    """A target as the daemon runs it: its config, its plugin instances, its memory."""

    target: Target
    sources: Mapping[str, Source]  # by the metric name the rules read
    source_names: Mapping[str, str]  # metric name → source name (for metrics and logs)
    source_timeouts: Mapping[str, float]
    actuator: Actuator
    stored: StoredTarget = field(default_factory=StoredTarget)
    last_record: AuditRecord | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # in a cluster: the fencing token under which ``stored`` was restored from Redis; an
    # evaluation acts only under that same token (a newer one means: restore first)
    restored_under: int | None = None
    # the shadow rule's memory (in this process only: a restart warms its windows anew)
    shadow_state: TargetState = field(default_factory=TargetState)

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True)
class TickContext:
    """What every evaluation needs from the daemon around it."""

    clock: Clock
    audit: AuditSink
    store: StateStore
    metrics: DaemonMetrics
    instance: str
    config_version: str
    dry_run: bool
    # the state store's health, shared by every target's evaluations
    state_outage: Outage
    cluster: ClusterMember | None = None
    # source reads shared by the targets (None: this evaluation reads on its own)
    reads: SharedReads | None = None
    # evaluations under way at once, across targets (None: no bound); see DaemonSettings
    slots: asyncio.Semaphore | None = None


Action = Literal["scaled", "held", "dry-run", "failed", "skipped"]

# a poll of ``evaluate_polls``: its record, or the future of one still going on
Polled = AuditRecord | asyncio.Future[AuditRecord]


async def evaluate(
    runtime: TargetRuntime, ctx: TickContext, trigger: Trigger = POLL
) -> AuditRecord:
    """Evaluate ``runtime`` once; never two evaluations of one target at a time. A value an
    event offered for a metric is used instead of reading that metric's source."""
    async with runtime.lock, ctx.slots or contextlib.nullcontext():
        with fenced(runtime, ctx):  # the lease as it is once this evaluation may start
            return await _evaluate(runtime, ctx, CURRENT_FENCE.get(), trigger)


async def _evaluate(
    runtime: TargetRuntime, ctx: TickContext, fence: Fence | None, trigger: Trigger
) -> AuditRecord:
    started = time.perf_counter()
    now = ctx.clock.now()
    described = _describe(trigger)
    if ctx.cluster is not None and fence is None:
        problem = _lease_lost(runtime, ctx)
        record = _record_without_decision(runtime, ctx, now, started, problem, described)
        await ctx.audit.emit(record)
        _recorded(runtime, ctx, record)
        return record
    observations = await _read_sources(runtime, ctx, trigger, now)
    asked = runtime.actuator.current()
    return await _once_capacity_known(runtime, ctx, now, started, observations, asked, described)


async def _once_capacity_known(
    runtime: TargetRuntime,
    ctx: TickContext,
    now: datetime,
    started: float,
    observations: list[Observation],
    asked: Awaitable[Capacity],
    trigger: JsonObject,
) -> AuditRecord:
    """An evaluation from its readings on: the capacity, the decision and the change, the
    record written."""
    try:
        capacity = _with_operation(runtime, await asked)
    except asyncio.CancelledError:
        raise
    except Exception as problem:  # the actuator could not say: record it, decide nothing
        record = _record_without_decision(runtime, ctx, now, started, problem, trigger)
    else:
        decided = _Decided.of(runtime, ctx, now, started, capacity, observations, trigger)
        record = await _act(decided)
    await ctx.audit.emit(record)
    _recorded(runtime, ctx, record)
    return record


async def evaluate_polls(runtimes: Sequence[TargetRuntime], ctx: TickContext) -> list[Polled]:
    """A poll of each of ``runtimes``, as :func:`evaluate` makes it, step by step for all
    of them together: the capacities asked for concurrently, then each target decided in
    turn, then the states saved, then the records written. What waits is one step of many
    targets, not each target's evaluation between its steps: an evaluation that holds
    (nearly all of them) suspends nowhere, and the pass runs with its data at hand.

    A change is made as :func:`evaluate` makes it (written ahead, then applied), each on
    its own; a target whose evaluation is under way (an event) is evaluated after it.
    Those, and a poll whose actuator is still answering, are returned as the future of
    their record (:func:`records_of`): the next batch does not wait for them.
    Outside a cluster only (there, each evaluation keeps its own lease and fence), and
    after ``ctx.reads.prefetch`` (a read still under way would be waited for in turn).
    """
    assert ctx.cluster is None
    free = [index for index, runtime in enumerate(runtimes) if not runtime.lock.locked()]
    locked = slotted = 0
    try:
        for index in free:
            await runtimes[index].lock.acquire()  # (free: it does not suspend)
            locked += 1
        # each poll takes its place among the evaluations under way once it holds its
        # target, as ``evaluate`` does, and keeps it while it goes on on its own; the
        # polls for which no place is free now (others wait on a slow API) are made on
        # their own, each once a place is
        if ctx.slots is not None and free:
            await ctx.slots.acquire()
            slotted = 1
            while slotted < len(free) and not ctx.slots.locked():
                await ctx.slots.acquire()  # (a free place: it does not suspend)
                slotted += 1
            for index in free[slotted:]:
                runtimes[index].lock.release()
            locked = slotted
            free = free[:slotted]
        polled = await _polls([runtimes[index] for index in free], ctx)
    except BaseException:
        for index in free[:locked]:
            runtimes[index].lock.release()
        for _ in range(slotted):
            ctx.slots.release()  # type: ignore[union-attr]
        raise
    outcomes: list[Polled | None] = [None] * len(runtimes)
    for index, outcome in zip(free, polled, strict=True):
        outcomes[index] = outcome
        done = _Done(runtimes[index].lock, ctx.slots)
        if isinstance(outcome, AuditRecord):
            done()
        else:  # the evaluation still going on keeps its target's lock until it ends
            outcome.add_done_callback(done)
    return [
        # being evaluated (an event), or no place free: polled on its own once it can be
        asyncio.ensure_future(evaluate(runtimes[index], ctx)) if outcome is None else outcome
        for index, outcome in enumerate(outcomes)
    ]


@dataclass(frozen=True, slots=True)
class _Done:
    """What a poll of ``evaluate_polls`` gives back when it ends: its target's lock and
    its place among the evaluations under way."""

    lock: asyncio.Lock
    slots: asyncio.Semaphore | None

    def __call__(self, _: object = None) -> None:
        self.lock.release()
        if self.slots is not None:
            self.slots.release()


async def records_of(outcomes: list[Polled]) -> list[AuditRecord]:
    """The records of ``evaluate_polls``'s outcomes, once those still going on have ended."""
    return [outcome if isinstance(outcome, AuditRecord) else await outcome for outcome in outcomes]


async def _polls(runtimes: list[TargetRuntime], ctx: TickContext) -> list[Polled]:
    now = ctx.clock.now()
    asked = [asyncio.ensure_future(runtime.actuator.current()) for runtime in runtimes]
    await asyncio.sleep(0)  # one turn: an actuator that answers from memory has answered
    records: list[AuditRecord | None] = [None] * len(runtimes)
    on_their_own: list[asyncio.Future[AuditRecord]] = []  # by index, in ``later``
    later: list[int] = []
    holding: list[tuple[int, _Decided]] = []
    for index, (runtime, capacity) in enumerate(zip(runtimes, asked, strict=True)):
        if not capacity.done():  # an actuator asking an API: the others do not wait for it
            later.append(index)
            on_their_own.append(asyncio.ensure_future(_when_known(runtime, ctx, now, capacity)))
            continue
        started = time.perf_counter()
        observations = await _read_sources(runtime, ctx, POLL, now)
        problem = capacity.exception()
        if problem is not None:
            if not isinstance(problem, Exception):
                raise problem
            records[index] = _record_without_decision(runtime, ctx, now, started, problem, _POLL)
            continue
        decided = _Decided.of(
            runtime,
            ctx,
            now,
            started,
            _with_operation(runtime, capacity.result()),
            observations,
            _POLL,
        )
        if decided.decision.changes and not ctx.dry_run:  # a change: made on its own
            later.append(index)
            on_their_own.append(asyncio.ensure_future(_act_and_write(decided)))
        else:
            holding.append((index, decided))
    unsaved = await _save_all(ctx, [decided for _, decided in holding])
    for (index, decided), not_saved in zip(holding, unsaved, strict=True):
        action: Action = "dry-run" if decided.decision.changes else "held"
        reason = _reason(decided.decision)
        records[index] = decided.finish(action, reason, None, Applied(), not_saved)
    written = [(index, record) for index, record in enumerate(records) if record is not None]
    if written:
        await emit_all(ctx.audit, [record for _, record in written])
    for index, record in written:
        _recorded(runtimes[index], ctx, record)
    outcomes: list[Polled] = [record for record in records]  # type: ignore[misc]
    for index, going in zip(later, on_their_own, strict=True):
        outcomes[index] = going
    return outcomes


async def _when_known(
    runtime: TargetRuntime, ctx: TickContext, now: datetime, asked: asyncio.Future[Capacity]
) -> AuditRecord:
    """The rest of a poll whose actuator is still answering, as :func:`evaluate` goes on."""
    started = time.perf_counter()
    observations = await _read_sources(runtime, ctx, POLL, now)
    return await _once_capacity_known(runtime, ctx, now, started, observations, asked, _POLL)


async def _act_and_write(decided: _Decided) -> AuditRecord:
    record = await _act(decided)
    await decided.ctx.audit.emit(record)
    _recorded(decided.runtime, decided.ctx, record)
    return record


async def _save_all(ctx: TickContext, held: list[_Decided]) -> list[str | None]:
    """``_save`` of each held evaluation's state: in one hand-over when the store takes
    several at once (one commit, one outcome for all of them)."""
    if not held:
        return []
    save_many = getattr(ctx.store, "save_many", None)
    if save_many is None:
        saves = (_save(d.runtime, ctx, d.state, None, d.record_id) for d in held)
        return list(await asyncio.gather(*saves))
    for decided in held:
        _keep(decided.runtime, decided.state, None, decided.record_id)
    try:
        await save_many([(decided.runtime.name, decided.runtime.stored) for decided in held])
    except asyncio.CancelledError:
        raise
    except Exception as problem:  # an unreachable store must not cost the audit records
        return [ctx.state_outage.failed(problem)] * len(held)
    ctx.state_outage.recovered()
    return [None] * len(held)


def _with_operation(runtime: TargetRuntime, capacity: Capacity) -> Capacity:
    if capacity.operation is None and runtime.stored.operation is not None:
        # not yet seen to end: hold until its outcome is audited
        return replace(capacity, operation=runtime.stored.operation.operation)
    return capacity


def _recorded(runtime: TargetRuntime, ctx: TickContext, record: AuditRecord) -> None:
    """What follows an evaluation's record being written."""
    runtime.last_record = record
    ctx.metrics.observe(record, runtime.target.spec.rule)
    _log(record)


@dataclass(slots=True)
class _Decided:
    """An evaluation once the core has decided: what its record is built from."""

    runtime: TargetRuntime
    ctx: TickContext
    now: datetime
    started: float
    decision: Decision
    state: TargetState
    prev: str | None
    record_id: str
    shadow: JsonObject | None
    trigger: JsonObject

    @classmethod
    def of(
        cls,
        runtime: TargetRuntime,
        ctx: TickContext,
        now: datetime,
        started: float,
        capacity: Capacity,
        observations: list[Observation],
        trigger: JsonObject,
    ) -> _Decided:
        decision, state = decide(
            runtime.target.spec, runtime.stored.state, capacity, observations, now
        )
        shadow = (
            _shadow(runtime, capacity, observations, now)
            if runtime.target.shadow is not None
            else None
        )
        return cls(
            runtime,
            ctx,
            now,
            started,
            decision,
            state,
            _prev(runtime),
            new_record_id(now),
            shadow,
            trigger,
        )

    def record(
        self, action: Action, trigger: JsonObject | None = None, **outcome: Any
    ) -> AuditRecord:
        """The record of this decision, built once (a dataclass ``replace`` per field
        changed costs more than the record's JSON)."""
        return AuditRecord.from_decision(
            self.decision,
            record_id=self.record_id,
            action=action,
            kind=self.runtime.target.actuator.kind,
            config_version=self.ctx.config_version,
            instance=self.ctx.instance,
            fence=_token(),
            prev=self.prev,
            duration_ms=_elapsed_ms(self.started),
            dry_run=self.ctx.dry_run,
            trigger=trigger,
            shadow=self.shadow,
            **outcome,
        )

    def finish(
        self,
        action: Action,
        reason: str | None,
        error: str | None,
        applied: Applied,
        unsaved: str | None,
    ) -> AuditRecord:
        """The evaluation's record, once its state was saved (or ``unsaved`` says why not)."""
        notes = list(applied.notes)
        if unsaved is not None and action != "skipped":
            notes.append(f"state not saved ({unsaved}); kept in memory until the store answers")
        # (from_decision redacts the error, the operation and the notes)
        return self.record(
            action,
            self.trigger,
            not_scaled_reason=reason,
            error=error,
            operation=applied.operation or self.decision.current.operation,
            notes=notes,
        )


async def _act(decided: _Decided) -> AuditRecord:
    """Apply the decision if it changes anything (written ahead first), save the state."""
    runtime, ctx, decision, state = decided.runtime, decided.ctx, decided.decision, decided.state
    action: Action = "held"
    error: str | None = None
    reason = _reason(decision)
    applied = Applied()
    if decision.changes and ctx.dry_run:
        action = "dry-run"
    elif decision.changes:
        # written ahead: the record this change will get, as if it landed
        # (its trigger is added by the evaluation that writes it, as before)
        ahead = decided.record("scaled", operation=decision.current.operation)
        pending = Pending.of(decision, decided.now, ahead.as_dict())
        try:
            _check_write_budget(runtime, ctx)
            unsaved = await _save(runtime, ctx, state, pending, decided.prev)
            if unsaved is None:  # again: the save took time, or the process was paused
                _check_write_budget(runtime, ctx)
        except LeaseLost as lost:  # another replica acts for this target now
            action, reason, error = "skipped", "LeaseLost", f"LeaseLost: {lost}"
        else:
            if unsaved is not None:  # a change that cannot be written ahead is not made
                action, reason = "skipped", "StateUnavailable"
                error = f"state store unavailable ({unsaved}): the change was not made"
            else:
                action, error, applied, state = await _apply(runtime, decision, state, decided.now)
    try:
        unsaved = await _save(runtime, ctx, state, None, decided.record_id)
    except LeaseLost as lost:
        unsaved = None
        if action == "held":
            action, reason, error = "skipped", "LeaseLost", f"LeaseLost: {lost}"
    return decided.finish(action, reason, error, applied, unsaved)


def _reason(decision: Decision) -> str | None:
    return str(decision.not_scaled_reason) if decision.not_scaled_reason else None


def _shadow(
    runtime: TargetRuntime,
    capacity: Capacity,
    observations: list[Observation],
    now: datetime,
) -> JsonObject:
    """The shadow rule decides on the same readings and capacity; it never acts, but its
    own cooldowns and rate limits run as if it had (so it paces itself as it would live)."""
    spec = runtime.target.shadow
    assert spec is not None and runtime.target.config.shadow is not None
    decision, state = decide(spec, runtime.shadow_state, capacity, observations, now)
    if decision.changes:
        state = record_applied(spec, state, decision, now)
    runtime.shadow_state = state
    return describe_shadow(decision, runtime.target.config.shadow)


async def _apply(
    runtime: TargetRuntime, decision: Decision, state: TargetState, now: datetime
) -> tuple[Action, str | None, Applied, TargetState]:
    """Call the actuator; the outcome, and the state with the change recorded if made."""
    try:
        applied = await runtime.actuator.apply(decision)
    except asyncio.CancelledError:
        raise
    except StaleFence as stale:
        return "skipped", f"LeaseLost: the resource refused the write: {stale}", Applied(), state
    except Throttled as throttled:
        error = f"throttled: retry after {throttled.retry_after:g}s: {throttled}"
        return "skipped", error, Applied(), state
    except Exception as problem:
        return "failed", describe(problem), Applied(), state
    if applied.operation is not None and applied.resume is not None:
        # it counts (cooldowns, rate limits) once it succeeded: see operations.py
        in_flight = InFlight.of(decision, applied.operation, applied.resume, applied.notes)
        runtime.stored = replace(runtime.stored, operation=in_flight)
        return "scaled", None, applied, state
    return "scaled", None, applied, record_applied(runtime.target.spec, state, decision, now)


def _fence(runtime: TargetRuntime, ctx: TickContext) -> Fence | None:
    """The fence this evaluation may act under: None outside a cluster, and None when the
    lease is not held, has run out, or is newer than the state in memory."""
    if ctx.cluster is None:
        return None
    fence = ctx.cluster.fence(runtime.name)
    return fence if fence is not None and fence.token == runtime.restored_under else None


def _lease_lost(runtime: TargetRuntime, ctx: TickContext) -> LeaseLost:
    assert ctx.cluster is not None
    shard = ctx.cluster.shard_of(runtime.name)
    lease = ctx.cluster.held.get(shard)
    if lease is None:
        return LeaseLost(f"shard {shard} is not held by {ctx.instance}")
    if lease.remaining() <= 0:
        return LeaseLost(
            f"the lease of shard {shard} (fencing token {lease.token}) ran out "
            f"{-lease.remaining():.1f}s ago and could not be renewed"
        )
    return LeaseLost(f"the state of shard {shard} is being restored under a new lease")


def _check_write_budget(runtime: TargetRuntime, ctx: TickContext) -> None:
    """Act only while the lease outlives the write: more than one renew period left."""
    if ctx.cluster is None:
        return
    lease, fence = ctx.cluster.lease(runtime.name), CURRENT_FENCE.get()
    # the lease this evaluation started under, not one acquired since (after a pause)
    same = lease is not None and fence is not None and lease.token == fence.token
    left = lease.remaining() if lease is not None and same else 0.0
    if left <= ctx.cluster.renew_s:
        raise LeaseLost(
            f"the lease has {left:.2f}s left, less than the {ctx.cluster.renew_s:g}s "
            "a write may take"
        )


@contextlib.contextmanager
def fenced(runtime: TargetRuntime, ctx: TickContext) -> Iterator[None]:
    """Saves of ``runtime``'s state in this block go under its lease (in a cluster)."""
    token = CURRENT_FENCE.set(_fence(runtime, ctx))
    try:
        yield
    finally:
        CURRENT_FENCE.reset(token)


def _token() -> int | None:
    fence = CURRENT_FENCE.get()
    return fence.token if fence is not None else None


def _record_without_decision(
    runtime: TargetRuntime,
    ctx: TickContext,
    now: datetime,
    started: float,
    problem: Exception,
    trigger: JsonObject,
) -> AuditRecord:
    skipped = isinstance(problem, Throttled | LeaseLost)
    action: Literal["failed", "skipped"] = "skipped" if skipped else "failed"
    # a lost lease speaks for itself; anything else failed while asking for the capacity
    prefix = "LeaseLost: " if isinstance(problem, LeaseLost) else "reading current capacity: "
    return AuditRecord.without_decision(
        runtime.name,
        now,
        action=action,
        kind=runtime.target.actuator.kind,
        config_version=ctx.config_version,
        instance=ctx.instance,
        fence=_token(),
        prev=_prev(runtime),
        duration_ms=_elapsed_ms(started),
        dry_run=ctx.dry_run,
        error=prefix + describe(problem),
        trigger=trigger,
    )


async def _save(
    runtime: TargetRuntime,
    ctx: TickContext,
    state: TargetState,
    pending: Pending | None,
    last_record_id: str | None,
) -> str | None:
    """Keep the target's memory and store it; the store's problem in words if it could not
    be saved (an outage is noted once, not raised)."""
    _keep(runtime, state, pending, last_record_id)
    try:
        await ctx.store.save(runtime.name, runtime.stored)
    except (asyncio.CancelledError, LeaseLost):
        raise
    except Exception as problem:  # an unreachable store must not cost the audit record
        return ctx.state_outage.failed(problem)
    ctx.state_outage.recovered()
    return None


def _keep(
    runtime: TargetRuntime, state: TargetState, pending: Pending | None, last_record_id: str | None
) -> None:
    """The target's memory after an evaluation; what else is stored (an operation in
    flight) stays."""
    runtime.stored = StoredTarget(state, pending, last_record_id, runtime.stored.operation)


def _prev(runtime: TargetRuntime) -> str | None:
    """The id of this target's previous audit record, across restarts."""
    return (
        runtime.last_record.id if runtime.last_record is not None else runtime.stored.last_record_id
    )


async def _read_sources(
    runtime: TargetRuntime, ctx: TickContext, trigger: Trigger, now: datetime
) -> list[Observation]:
    reads = ctx.reads if ctx.reads is not None else SharedReads(ctx.metrics)
    if not trigger.values:  # a poll: every metric is read
        return await reads.observe(
            runtime.sources, runtime.source_names, runtime.source_timeouts, now, _fresh_for(runtime)
        )
    offered = {
        metric: Observation.value(metric, now, value)
        for metric, value in trigger.values.items()
        if metric in runtime.sources
    }
    if len(offered) == len(runtime.sources):
        return list(offered.values())
    read = {metric: source for metric, source in runtime.sources.items() if metric not in offered}
    results = await reads.observe(
        read, runtime.source_names, runtime.source_timeouts, now, _fresh_for(runtime)
    )
    return [*offered.values(), *results]


def _fresh_for(runtime: TargetRuntime) -> timedelta:
    """How old a shared read may be and still serve this target's evaluation."""
    return runtime.target.spec.rule.interval / 2


def planned_reads(
    runtimes: Iterable[TargetRuntime],
) -> Iterator[tuple[Source, str, float, timedelta]]:
    """The source reads a poll of ``runtimes`` makes, for ``SharedReads.prefetch``."""
    for runtime in runtimes:
        fresh_for = _fresh_for(runtime)
        for metric, source in runtime.sources.items():
            yield source, runtime.source_names[metric], runtime.source_timeouts[metric], fresh_for


# what a poll's records say started them, described once (records are read-only)
_POLL: JsonObject = redact_value(POLL.as_dict())


def _describe(trigger: Trigger) -> JsonObject:
    if trigger is POLL:
        return _POLL
    described: JsonObject = redact_value(trigger.as_dict())
    return described


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _log(record: AuditRecord) -> None:
    fields = {
        "target": record.target,
        "action": record.action,
        "current": record.current["provisioned"] if record.current else None,
        "desired": record.desired,
        "reason": record.not_scaled_reason,
        "record": record.id,
        # an audit record is redacted by construction: its fields need no second scan
        REDACTED: True,
    }
    if record.error:
        _decisions.get().warning("decision", error=record.error, **fields)
    else:
        _decisions.get().info("decision", **fields)


async def recover_pending(
    runtime: TargetRuntime, store: StateStore, audit: AuditSink, written: AuditLog | None = None
) -> str | None:
    """After a restart: settle a change that was sent but not known to have landed.

    If the actuator now reports the pending capacity, or an operation in flight (at
    whatever capacity: the platform is carrying it out), the change happened: record it
    as of its time, so cooldowns and rate limits continue, and write the audit record the
    interrupted evaluation would have written (its time, its decision, ``scaled``, a note
    that it was settled at restart). If not, it never reached the actuator: its record
    says so (``failed``), and the next evaluation decides afresh. Either way the chain of
    records continues from that record.

    That record is not written again if ``written`` (the audit log) already holds its id:
    the evaluation wrote it, and only the state save after it failed before the process
    died. The chain then continues from the target's latest record there.
    """
    pending = runtime.stored.pending
    if pending is None:
        return None
    capacity = await runtime.actuator.current()
    landed = capacity.provisioned == pending.after or capacity.operation is not None
    state = runtime.stored.state
    if landed:
        state = record_scale(
            runtime.target.spec,
            state,
            pending.before,
            pending.after,
            timedelta(seconds=pending.cooldown_s),
            pending.at,
        )
    record = _settled_record(pending, capacity, landed)
    already = await _written_since(written, runtime.name, pending, record)
    latest = already or record
    last_record_id = latest.id if latest is not None else runtime.stored.last_record_id
    runtime.stored = replace(
        runtime.stored, state=state, pending=None, last_record_id=last_record_id
    )
    await store.save(runtime.name, runtime.stored)
    if latest is not None:
        if already is None:
            await audit.emit(latest)
        runtime.last_record = latest
    return "landed" if landed else "lost"


# a record's ts is its evaluation's start, kept to the millisecond: before ``Pending.at``
_SETTLE_SLACK = timedelta(seconds=1)


async def _written_since(
    written: AuditLog | None, target: str, pending: Pending, record: AuditRecord | None
) -> AuditRecord | None:
    """The target's latest record in the audit log if ``record`` is already there.

    Not knowing (the log cannot be read now) writes it again: readers keep the first copy.
    """
    if written is None or record is None:
        return None
    try:
        found = await written.read(target=target, since=pending.at - _SETTLE_SLACK)
    except (RedisError, OSError):
        return None
    return found[-1] if any(each.id == record.id for each in found) else None


def _settled_record(pending: Pending, capacity: Capacity, landed: bool) -> AuditRecord | None:
    """The record of the interrupted evaluation (None if an older scalerd wrote the
    change ahead without one)."""
    if pending.record is None:
        return None
    planned = AuditRecord.from_mapping(pending.record)
    if landed:
        return replace(
            planned,
            action="scaled",
            notes=(
                *planned.notes,
                f"settled at restart: scalerd stopped before it saw the change land; the "
                f"actuator then showed {capacity.provisioned}"
                + (f" with operation {capacity.operation} in flight" if capacity.operation else ""),
            ),
        )
    return replace(
        planned,
        action="failed",
        not_scaled_reason=None,
        error=(
            f"settled at restart: scalerd stopped before the change to {pending.after} was "
            f"confirmed, and the actuator showed {capacity.provisioned}: it did not land"
        ),
        notes=(*planned.notes, "settled at restart"),
    )
