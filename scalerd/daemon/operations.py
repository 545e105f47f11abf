"""Long-running operations in flight: followed to their end, and their end audited.

When Azure accepts a change, the tick stores it as the target's ``InFlight`` operation
(with the SDK's continuation token) rather than counting it as done, and the target holds
(``OperationInFlight``) while it is stored. This module follows a stored operation to its
end in whichever process runs next — the same one, a restarted one, another replica, the
next ``run --once`` — and then, under the target's lock:

* writes its outcome as an audit record of its own, chained by ``prev``: ``scaled``
  (confirmed by Azure, or not confirmed — its status could not be read — while the
  resource shows the change) or ``failed`` with Azure's error code and message;
* on success only, adds the change to the core's history (``core.record_scale``, as of
  when the operation started), so cooldowns and rate limits run from when it was asked
  for; a change that failed never enters that history, so it starts no cooldown and the
  next evaluation is free to try again;
* clears the stored operation, so the target stops holding.

Why count a change when it is confirmed rather than at ``apply`` with an undo on failure:
an undo would have to restore the cooldowns and ``scale_out_base`` as they were before,
and would lose whatever else changed in between. Counting late changes no decision: while
the operation is stored the core holds anyway, and the event carries the time the change
started, so the cooldown ends exactly when it would have.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import structlog

from ..audit import AuditRecord, new_record_id
from ..audit.record import Action
from ..core import record_scale
from ..errors import LeaseLost
from ..plugins import CURRENT_FENCE, FollowsOperations, OperationOutcome
from ..redact import redact
from .state import InFlight
from .tick import TargetRuntime, TickContext, fenced

__all__ = ["OperationWatch", "follow_operation", "settle_operation"]

log = structlog.get_logger("scalerd")


async def follow_operation(runtime: TargetRuntime) -> tuple[InFlight, OperationOutcome] | None:
    """Wait for the operation stored for ``runtime`` to end; None if there is none."""
    in_flight = runtime.stored.operation
    if in_flight is None:
        return None
    actuator = runtime.actuator
    if not isinstance(actuator, FollowsOperations):  # its actuator was replaced since
        kind = runtime.target.actuator.kind
        cannot = f"a {kind} actuator cannot follow it; the resource decides"
        return in_flight, OperationOutcome(in_flight.operation, "OperationNotFollowed", cannot)
    return in_flight, await actuator.outcome(in_flight.operation, in_flight.resume)


async def settle_operation(
    runtime: TargetRuntime, ctx: TickContext, in_flight: InFlight, outcome: OperationOutcome
) -> AuditRecord | None:
    """Audit how ``in_flight`` ended and count it if it succeeded (see the module
    docstring); None if another path settled it first."""
    async with runtime.lock:
        if runtime.stored.operation != in_flight:
            return None
        now = ctx.clock.now()
        state = runtime.stored.state
        change = f"{in_flight.before} → {in_flight.after}" + (
            f" ({in_flight.tier})" if in_flight.tier else ""
        )
        action: Action
        # an end Azure did not confirm (its status could not be read) still counts when the
        # resource shows the change: the resource, not the poll, says what happened
        landed = not outcome.succeeded and await _resource_shows(runtime, in_flight.after)
        if outcome.succeeded or landed:
            cooldown = timedelta(seconds=in_flight.cooldown_s)
            state = record_scale(
                runtime.target.spec,
                state,
                in_flight.before,
                in_flight.after,
                cooldown,
                in_flight.started_at,
            )
            action, error = "scaled", None
            verdict = (
                f"not confirmed ({outcome.code}: {outcome.message}), but the resource shows it"
                if landed
                else "succeeded"
            )
            notes: tuple[str, ...] = (
                f"operation {in_flight.operation} {verdict}: {change}",
                *in_flight.notes,
            )
        else:
            action, error = "failed", f"{outcome.code}: {outcome.message}"
            notes = (f"not changed, not counted toward cooldowns: {change}",)
        record_id = new_record_id(now)
        before = runtime.stored
        prev = runtime.last_record.id if runtime.last_record else before.last_record_id
        runtime.stored = replace(before, state=state, last_record_id=record_id, operation=None)
        fence = None
        try:
            with fenced(runtime, ctx):
                fence = CURRENT_FENCE.get()
                await ctx.store.save(runtime.name, runtime.stored)
        except asyncio.CancelledError:
            raise
        except LeaseLost:  # another replica owns the target now: it settles the operation
            runtime.stored = before
            return None
        except Exception as problem:  # an unreachable store must not cost the audit record
            unsaved = ctx.state_outage.failed(problem)
            notes += (f"state not saved ({unsaved}); kept in memory until the store answers",)
        else:
            ctx.state_outage.recovered()
        record = AuditRecord(
            ts=now.replace(microsecond=now.microsecond // 1000 * 1000),  # as the audit keeps it
            id=record_id,
            prev=prev,
            target=runtime.name,
            kind=runtime.target.actuator.kind,
            instance=ctx.instance,
            fence=fence.token if fence is not None else None,
            config_version=ctx.config_version,
            action=action,
            dry_run=False,
            # from the start of the operation to when its end was seen
            duration_ms=round((now - in_flight.started_at).total_seconds() * 1000, 3),
            current=None,
            recommended=None,
            desired=in_flight.after,
            not_scaled_reason=None,
            error=redact(error) if error is not None else None,
            operation=in_flight.operation,
            tier=in_flight.tier,
            cooldown_s=in_flight.cooldown_s if action == "scaled" else 0.0,
            notes=tuple(redact(note) for note in notes),
        )
        await ctx.audit.emit(record)
        runtime.last_record = record
        report = log.info if action == "scaled" else log.warning
        report(
            "operation ended",
            target=runtime.name,
            operation=in_flight.operation,
            action=action,
            error=error,
            record=record_id,
        )
        return record


async def _resource_shows(runtime: TargetRuntime, after: int) -> bool:
    try:
        capacity = await runtime.actuator.current()
    except Exception:  # cannot tell: the change is not counted
        return False
    return capacity.provisioned == after and capacity.operation is None


class OperationWatch:
    """Follows, in the background, each target's stored operation and settles it.

    ``follow`` is cheap and idempotent: the daemon calls it after every evaluation and at
    start, so an operation found in the store (a restart, a takeover) is picked up too.
    The target is looked up by name when the operation ends, so a reload in between
    settles it on the runtime that is current then.
    """

    def __init__(self, runtime_of: Callable[[str], TargetRuntime | None]) -> None:
        self._runtime_of = runtime_of
        self._tasks: dict[str, asyncio.Task[AuditRecord | None]] = {}

    def follow(self, runtime: TargetRuntime, ctx: TickContext) -> None:
        running = self._tasks.get(runtime.name)
        if runtime.stored.operation is None or (running is not None and not running.done()):
            return
        self._tasks[runtime.name] = asyncio.create_task(
            self._settle(runtime, ctx), name=f"scalerd-operation-{runtime.name}"
        )

    async def wait(self, timeout: float) -> list[AuditRecord]:
        """The outcome records of the operations that ended, waiting for those still being
        followed at most ``timeout`` seconds."""
        running = [task for task in self._tasks.values() if not task.done()]
        if running and timeout > 0:
            await asyncio.wait(running, timeout=timeout)
        records = []
        for name, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[name]
                record = None if task.cancelled() else task.result()
                if record is not None:
                    records.append(record)
        return records

    async def aclose(self) -> None:
        """Stop waiting; what is still in flight stays stored for the next process."""
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _settle(self, runtime: TargetRuntime, ctx: TickContext) -> AuditRecord | None:
        try:
            followed = await follow_operation(runtime)
            current = self._runtime_of(runtime.name)
            if followed is None or current is None:
                return None
            return await settle_operation(current, ctx, *followed)
        except asyncio.CancelledError:
            raise
        except Exception:  # never unseen; the operation stays stored and is followed again
            log.exception("following an operation failed", target=runtime.name)
            return None
