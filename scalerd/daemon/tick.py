"""One evaluation of one target — the only place where sources, the core, the actuator, the
state store and the audit stream meet.

read sources (concurrently, each with its timeout) → read current capacity →
``core.decide(now=clock.now())`` → apply (unless unchanged or dry-run) → store state →
write the audit record. Every evaluation leaves exactly one record, whatever fails.

A change is written ahead of being applied (``Pending``): if the process dies between the
actuator call and the state save, the next start finds out whether the change landed and
records it, so a scale action is neither repeated nor lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import structlog

from ..audit import AuditRecord, AuditSink, new_record_id
from ..clock import Clock
from ..config import Target
from ..core import Capacity, Observation, Sample, TargetState, decide, record_applied, record_scale
from ..errors import OperationFailed, Throttled
from ..plugins import Actuator, Applied, Source
from ..redact import redact
from .metrics import DaemonMetrics
from .state import Pending, StateStore, StoredTarget

__all__ = ["TargetRuntime", "TickContext", "evaluate", "recover_pending"]

log = structlog.get_logger("scalerd")


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


Action = Literal["scaled", "held", "dry-run", "failed", "skipped"]


async def evaluate(runtime: TargetRuntime, ctx: TickContext) -> AuditRecord:
    """Evaluate ``runtime`` once; never two evaluations of one target at a time."""
    async with runtime.lock:
        started = time.perf_counter()
        now = ctx.clock.now()
        observations = await _read_sources(runtime, ctx)
        try:
            capacity = await runtime.actuator.current()
        except asyncio.CancelledError:
            raise
        except Exception as problem:  # the actuator could not say: record it, decide nothing
            record = _record_without_decision(runtime, ctx, now, started, problem)
        else:
            record = await _decide_and_act(runtime, ctx, now, started, capacity, observations)
        await ctx.audit.emit(record)
        runtime.last_record = record
        ctx.metrics.observe(record)
        ctx.metrics.audit_backlog.set(ctx.audit.backlog())
        _log(record)
        return record


async def _decide_and_act(
    runtime: TargetRuntime,
    ctx: TickContext,
    now: datetime,
    started: float,
    capacity: Capacity,
    observations: list[Observation],
) -> AuditRecord:
    spec = runtime.target.spec
    decision, state = decide(spec, runtime.stored.state, capacity, observations, now)
    record_id = new_record_id(now)
    prev = _prev(runtime)
    action: Action = "held"
    error: str | None = None
    applied = Applied()
    if decision.changes and ctx.dry_run:
        action = "dry-run"
    elif decision.changes:
        await _save(runtime, ctx, state, Pending.of(decision, now), record_id)
        try:
            applied = await runtime.actuator.apply(decision)
        except asyncio.CancelledError:
            raise
        except Throttled as throttled:
            action, error = (
                "skipped",
                f"throttled: retry after {throttled.retry_after:g}s: {throttled}",
            )
        except Exception as problem:
            action, error = "failed", _describe(problem)
        else:
            action = "scaled"
            state = record_applied(spec, state, decision, now)
    await _save(runtime, ctx, state, None, record_id)
    return AuditRecord.from_decision(
        decision,
        record_id=record_id,
        action=action,
        kind=runtime.target.actuator.kind,
        config_version=ctx.config_version,
        instance=ctx.instance,
        prev=prev,
        duration_ms=_elapsed_ms(started),
        dry_run=ctx.dry_run,
        error=error,
        operation=applied.operation or decision.current.operation,
        notes=applied.notes,
    )


def _record_without_decision(
    runtime: TargetRuntime, ctx: TickContext, now: datetime, started: float, problem: Exception
) -> AuditRecord:
    action: Literal["failed", "skipped"] = "skipped" if isinstance(problem, Throttled) else "failed"
    # a change the actuator started and saw fail speaks for itself; anything else failed
    # while asking for the capacity
    failed_operation = problem if isinstance(problem, OperationFailed) else None
    prefix = "" if failed_operation is not None else "reading current capacity: "
    return AuditRecord.without_decision(
        runtime.name,
        now,
        action=action,
        kind=runtime.target.actuator.kind,
        config_version=ctx.config_version,
        instance=ctx.instance,
        prev=_prev(runtime),
        duration_ms=_elapsed_ms(started),
        dry_run=ctx.dry_run,
        error=prefix + _describe(problem),
        operation=failed_operation.operation if failed_operation is not None else None,
    )


async def _save(
    runtime: TargetRuntime,
    ctx: TickContext,
    state: TargetState,
    pending: Pending | None,
    record_id: str,
) -> None:
    # replace, not rebuild: what else is stored (an operation in flight) stays
    runtime.stored = replace(runtime.stored, state=state, pending=pending, last_record_id=record_id)
    await ctx.store.save(runtime.name, runtime.stored)


def _prev(runtime: TargetRuntime) -> str | None:
    """The id of this target's previous audit record, across restarts."""
    return (
        runtime.last_record.id if runtime.last_record is not None else runtime.stored.last_record_id
    )


async def _read_sources(runtime: TargetRuntime, ctx: TickContext) -> list[Observation]:
    metrics = list(runtime.sources)
    results = await asyncio.gather(*(_read_one(runtime, metric, ctx) for metric in metrics))
    return list(results)


async def _read_one(runtime: TargetRuntime, metric: str, ctx: TickContext) -> Observation:
    source_name = runtime.source_names[metric]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(runtime.source_timeouts[metric]):
            samples: tuple[Sample, ...] = tuple(await runtime.sources[metric].read())
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        ctx.metrics.source_errors.labels(source_name).inc()
        return Observation.failed(
            metric, f"{source_name}: timed out after {runtime.source_timeouts[metric]:g}s"
        )
    except Exception as problem:  # a failed read is a failed observation, never a crash
        ctx.metrics.source_errors.labels(source_name).inc()
        return Observation.failed(metric, f"{source_name}: {_describe(problem)}")
    finally:
        ctx.metrics.source_latency.labels(source_name).observe(time.perf_counter() - started)
    return Observation(metric, samples)


def _describe(problem: BaseException) -> str:
    code = getattr(problem, "code", None)
    prefix = f"{code}: " if code else ""
    return redact(f"{prefix}{problem}" if str(problem) else f"{prefix}{type(problem).__name__}")


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
    }
    if record.error:
        log.warning("decision", error=record.error, **fields)
    else:
        log.info("decision", **fields)


async def recover_pending(runtime: TargetRuntime, store: StateStore) -> str | None:
    """After a restart: settle a change that was sent but not known to have landed.

    If the actuator now reports the pending capacity (or an operation in flight), the
    change happened: record it as of its time, so cooldowns and rate limits continue. If
    not, it never reached the actuator and the next evaluation decides afresh.
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
    runtime.stored = replace(runtime.stored, state=state, pending=None)
    await store.save(runtime.name, runtime.stored)
    return "landed" if landed else "lost"
