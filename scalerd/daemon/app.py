"""The composition root: config → clients → plugins → targets, and their lifetime.

Everything that talks to the network is created here and handed down; nothing below
creates a client. Start-up order: load and validate the config, open clients, open the
audit sink and the state store, build the plugins, restore each target's state (settling a
change that was in flight when the process died), then start the HTTP server and one loop
per target. Shutdown runs it backwards: stop scheduling and let evaluations under way
finish within the grace period, stop the server, flush the audit, close everything.

Reload (SIGHUP, or the config file changing) validates the new file first; if it is
invalid the old configuration keeps running and ``/readyz`` says why. A target whose
identity (name, actuator kind and name) is unchanged keeps its state; plugins whose
settings are unchanged are kept as they are (a process pool keeps its workers).

With the state in Redis the daemon is one member of a cluster (``scalerd.cluster``): it
runs loops only for the targets of shards it holds, restores a target's state from Redis
(settling a change in flight) each time it acquires the shard's lease, stops the loops of
shards it hands over or loses, and on SIGTERM releases its leases once the evaluations in
flight are done. A lone replica simply holds every shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio
import structlog
from aiohttp import web
from pydantic import BaseModel
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..audit import (
    AuditLog,
    AuditRecord,
    AuditSink,
    JsonlAuditLog,
    JsonlSink,
    RecentRecords,
    RedisStreamSink,
    StreamAuditLog,
    read_jsonl,
    secret_looking,
)
from ..clock import Clock, SystemClock
from ..cluster import ClusterMember, default_instance
from ..config import Config, Target, load_config
from ..core import Controls
from ..errors import ConfigError, ConfigIssue, LeaseLost, StartupError
from ..events.http import add_event_routes
from ..events.hub import EventHub, EventMetrics
from ..events.trigger import MANUAL, POLL, Coalescer, Trigger
from ..notify.outbox import Notifier, NotifyMetrics, Outbox
from ..plugins import CURRENT_FENCE, Actuator, BuildContext, PluginConfig, Source
from ..redact import register_secret
from .loop import PollBatch, TargetLoop
from .metrics import DaemonMetrics
from .operations import OperationWatch
from .outage import Outage
from .reads import SharedReads
from .server import MIN_CONTROL_TOKEN, build_app
from .sqlite_state import SqliteStateStore
from .state import FileStateStore, RedisStateStore, StateError, StateStore, StoredTarget
from .tick import (
    Polled,
    TargetRuntime,
    TickContext,
    evaluate,
    evaluate_polls,
    planned_reads,
    records_of,
    recover_pending,
)

__all__ = ["Daemon", "ReloadStatus", "freeze_what_lives_long", "open_audit_log"]

log = structlog.get_logger("scalerd")

# how often the config file's modification time is checked for changes
CONFIG_POLL_S = 2.0


@dataclass(frozen=True)
class ReloadStatus:
    at: datetime
    ok: bool
    error: str | None = None


@dataclass
class _Plugins:
    """Built plugin instances with the settings they were built from, for reuse on reload."""

    sources: dict[str, tuple[PluginConfig, Source]]
    actuators: dict[str, tuple[PluginConfig, Actuator]]


class Daemon:
    """One scalerd process. ``async with Daemon(path) as daemon: await daemon.serve()``."""

    def __init__(
        self,
        config_path: str | Path,
        *,
        dry_run: bool = False,
        clock: Clock | None = None,
        listen: str | None = None,
        azure_credential: Any = None,
        config: Config | None = None,
        instance: str | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self._preloaded = config
        self.dry_run = dry_run
        self.clock = clock or SystemClock()
        self._listen_override = listen
        self._instance_override = instance
        self._azure_credential = azure_credential
        self.metrics = DaemonMetrics()
        self.state_outage = Outage("state store", self.clock)
        # reading the audit stream back; the sink logs the same outage as it spools
        self.audit_read_outage = Outage("audit stream", self.clock, logged=False)
        self.event_metrics = EventMetrics(self.metrics.registry)
        self.notify_metrics = NotifyMetrics(self.metrics.registry)
        self.notifier: Notifier | None = None
        self._forwarding: set[asyncio.Task[None]] = set()
        self._forwarded_task: asyncio.Task[None] | None = None
        self.runtimes: dict[str, TargetRuntime] = {}
        self.reload_status: ReloadStatus | None = None
        self.listening_on: tuple[str, int] | None = None
        self._loops: dict[str, TargetLoop] = {}
        self.cluster: ClusterMember | None = None
        self._cluster_task: asyncio.Task[None] | None = None
        self._takeovers_counted = 0  # of cluster.takeovers, already in the metric
        self._serving = False
        self._coalescers: dict[str, Coalescer] = {}
        self.events: EventHub | None = None
        # areas that add their own HTTP routes to the server
        self.route_hooks: list[Callable[[web.Application], None]] = [
            lambda app: add_event_routes(
                app, lambda: self.events, listens_locally=self.listens_locally
            )
        ]
        self._plugins = _Plugins({}, {})
        self._reads = SharedReads(self.metrics)
        self._evaluation_slots: tuple[int, asyncio.Semaphore] | None = None
        # the polls due in one turn of the event loop, evaluated together
        self._polls: PollBatch[TargetRuntime, TickContext, AuditRecord] = PollBatch(self._poll)
        self._stack = AsyncExitStack()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        # set by each applied reload: the config watch may have been switched on
        self._watch_switched = asyncio.Event()
        self._started_at = self.clock.now()
        self.operations = OperationWatch(lambda name: self.runtimes.get(name))

    # --- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> Daemon:
        try:
            await self.start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        self._config_mtime = _mtime(self.config_path)
        self.config: Config = (
            self._preloaded
            if self._preloaded is not None
            else await asyncio.to_thread(load_config, self.config_path)
        )
        refuse_secret_looking_strings(self.config)
        for secret in _env_secrets(self.config):
            register_secret(secret)
        self.redis = await self._open_redis(self.config)
        self.cluster = self._open_cluster(self.config)
        self.http = await self._stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        )
        self.azure = await self._open_azure(self.config)
        self.audit, self.audit_log = await self._open_audit(self.config)
        # what evaluations write goes through it: the records the daemon can still show
        # while its audit stream cannot be read
        self.notifier = self._open_notifier(self.config)
        self.recent = RecentRecords(
            self.notifier.watch(self.audit) if self.notifier else self.audit
        )
        self.metrics.audit_backlog.set_function(self.recent.backlog)  # read when scraped
        self.store = await self._open_store(self.config)
        if self.cluster is not None:  # state comes with each shard's lease
            self.runtimes = await self._build_runtimes(self.config, {}, previous={})
            await self.cluster.join()
        else:
            try:
                stored = await self.store.load_all()
            except StateError as problem:  # a damaged or newer store: say which, do not start
                raise StartupError(str(problem)) from None
            self.runtimes = await self._build_runtimes(self.config, stored, previous={})
            for runtime in self.runtimes.values():
                await _settle(runtime, self.store, self.recent, self.audit_log)
        await self._build_events(self.config)
        log.info(
            "started",
            config=str(self.config_path),
            version=self.config.version,
            targets=len(self.runtimes),
            dry_run=self.dry_run,
            instance=self.instance,
        )

    @property
    def instance(self) -> str:
        if self.cluster is not None:
            return self.cluster.instance
        return self._instance_override or self.config.daemon.instance

    async def aclose(self) -> None:
        await self._stop_loops()
        await self.operations.aclose()
        if self.cluster is not None:
            await self._leave_cluster()
        if self.events is not None:
            await self.events.aclose()
        for task in (self._forwarded_task, *self._forwarding):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.notifier is not None:
            await self.notifier.aclose()
        for _, source in self._plugins.sources.values():
            await _close(source)
        for _, actuator in self._plugins.actuators.values():
            await _close(actuator)
        self._plugins = _Plugins({}, {})
        await self._stack.aclose()  # audit sink (flushed), state store, clients, server

    # --- running --------------------------------------------------------------------------

    async def run_once(self, wait: float = 0.0) -> list[AuditRecord]:
        """Evaluate every target once (concurrently), act, audit; the records in order.

        Operations in flight, stored by an earlier run or started by this one, are
        followed for at most ``wait`` seconds in all; the records of those that end come
        first (earlier ones) and last (this run's). What is still in flight stays stored.
        """
        context = self._tick_context()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        settled_before = await self._settle_operations(context, wait)
        records = await self._poll(self._owned(), context)
        settled_after = await self._settle_operations(context, deadline - loop.time())
        await self.audit.flush()
        return [*settled_before, *records, *settled_after]

    async def _settle_operations(self, context: TickContext, wait: float) -> list[AuditRecord]:
        if wait <= 0:  # not even started: nothing may settle behind the caller's back
            return []
        self._follow_operations(context)
        return await self.operations.wait(wait)

    def _follow_operations(
        self, context: TickContext, runtimes: Iterable[TargetRuntime] | None = None
    ) -> None:
        for runtime in self._owned() if runtimes is None else runtimes:
            self.operations.follow(runtime, context)

    async def _poll(self, runtimes: list[TargetRuntime], context: TickContext) -> list[AuditRecord]:
        """Poll ``runtimes``, ``max_concurrent_evaluations`` at a time, their shared reads
        done first (no target waits on a read of its own); their records in order."""
        width = self.config.daemon.max_concurrent_evaluations
        if context.reads is not None:
            await context.reads.prefetch(planned_reads(runtimes), self.clock.now())
        if context.cluster is not None:  # each evaluation under its own lease
            return await _evaluate_all(runtimes, context, width)
        # one batch after the other: a commit runs while the event loop waits for it (on
        # its thread while decisions run, each row would wait for the GIL)
        polled: list[Polled] = []
        for start in range(0, len(runtimes), width):
            polled += await evaluate_polls(runtimes[start : start + width], context)
        return await records_of(polled)  # (a slow one delays no batch after its own)

    async def _evaluate(
        self, runtime: TargetRuntime, context: TickContext, trigger: Trigger = POLL
    ) -> AuditRecord:
        if trigger is POLL and context.cluster is None:
            record: AuditRecord = await self._polls.poll(runtime, context)  # with others due
        else:
            record = await evaluate(runtime, context, trigger)
        self.operations.follow(runtime, context)  # one it started, or found stored
        return record

    async def serve(self) -> None:
        """Run until ``stop()`` (SIGTERM/SIGINT): HTTP server, loops, config watch."""
        self._check_control_token()
        await self._start_server()
        self._follow_operations(self._tick_context())
        self._serving = True
        self._start_loops()
        if self.cluster is not None:
            self._cluster_task = asyncio.create_task(self.cluster.run(), name="scalerd-cluster")
            self._forwarded_task = asyncio.create_task(
                self._receive_forwarded(), name="scalerd-forwarded-events"
            )
        if self.events is not None:
            self.events.start()
        if self.notifier is not None:
            self.notifier.start()
        self._install_signal_handlers()
        watcher = asyncio.create_task(self._watch_config(), name="scalerd-config-watch")
        try:
            await self._stop.wait()
        finally:
            self._serving = False
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await self._stop_loops()
            if self.cluster is not None:
                await self._leave_cluster()
            await self.audit.flush()
            log.info("stopped")

    def stop(self) -> None:
        self._stop.set()

    def trigger(self, target: str, trigger: Trigger = MANUAL) -> bool:
        """Evaluate ``target`` now, or right after the evaluation under way (coalesced with
        anything already queued); False if there is no such target."""
        coalescer = self._coalescers.get(target)
        if coalescer is None:
            return False
        coalescer.offer(trigger)
        return True

    async def set_controls(self, target: str, controls: Controls) -> Controls:
        runtime = self.runtimes[target]
        async with runtime.lock:
            fence = None
            if self.cluster is not None:
                fence = self.cluster.fence(target)
                if fence is None or fence.token != runtime.restored_under:
                    owner = self.cluster.owner_of(target)
                    raise LeaseLost(f"target {target!r} is evaluated by {owner or 'no replica'}")
            fenced = CURRENT_FENCE.set(fence)
            try:
                state = runtime.stored.state.with_controls(controls)
                await self.store.save(target, replace(runtime.stored, state=state))
            finally:
                CURRENT_FENCE.reset(fenced)
            runtime.stored = replace(runtime.stored, state=state)
        log.info(
            "controls changed", target=target, pause=controls.pause, override=controls.override
        )
        self.trigger(target)
        return controls

    # --- reload ---------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Validate and apply the config file; keep the running config if it is invalid."""
        async with self._reload_lock:
            # the file as read now: the watch reloads when it changes from this
            self._config_mtime = _mtime(self.config_path)
            try:
                config = await asyncio.to_thread(load_config, self.config_path)
                refuse_secret_looking_strings(config)
            except ConfigError as problem:
                self.reload_status = ReloadStatus(self.clock.now(), False, str(problem))
                self.metrics.reloads.labels("rejected").inc()
                log.error(
                    "config rejected; the running config stays",
                    config=str(self.config_path),
                    problems=str(problem),
                )
                return False
            for secret in _env_secrets(config):  # a reloaded config may name new ones
                register_secret(secret)
            await self._stop_loops()
            previous = self.runtimes
            self.runtimes = await self._build_runtimes(config, {}, previous=previous)
            for name in set(previous) - set(self.runtimes):
                self.metrics.forget(name)
                self.store.forget(name)
            if self.cluster is not None:  # new targets in shards held: restore them
                kept = {runtime.target.identity for runtime in previous.values()}
                await self._restore(r for r in self._owned() if r.target.identity not in kept)
            self.config = config
            if self.events is not None:
                await self.events.aclose()
            await self._build_events(config)
            if self.events is not None and self.listening_on is not None:
                self.events.start()
            self.reload_status = ReloadStatus(self.clock.now(), True)
            self._watch_switched.set()
            self.metrics.reloads.labels("applied").inc()
            if self.listening_on is not None:
                self._start_loops()
            log.info("config reloaded", version=config.version, targets=len(self.runtimes))
            return True

    async def _watch_config(self) -> None:
        while True:
            if not self.config.daemon.watch_config:
                # switched off: no polling at all until a reload (SIGHUP) switches it on
                self._watch_switched.clear()
                await self._watch_switched.wait()
                continue
            await asyncio.sleep(CONFIG_POLL_S)
            current = _mtime(self.config_path)
            if current != self._config_mtime:
                await self.reload()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    # --- reading the audit back -----------------------------------------------------------

    async def read_decisions(
        self, *, target: str | None = None, limit: int = 50
    ) -> tuple[list[AuditRecord], str | None]:
        """Recent records, oldest first, and a notice when the audit stream cannot be read:
        then what this daemon still knows (its own recent records and its spool)."""
        try:
            records = await self.audit_log.read(target=target, limit=limit)
        except (RedisError, OSError) as problem:
            self.audit_read_outage.failed(problem)
        else:
            self.audit_read_outage.recovered()
            return records, None
        return await self.known_records(target=target, limit=limit), self.audit_notice()

    async def known_records(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """What this daemon knows without its audit stream, oldest first: the records it
        wrote recently (in memory) and those waiting in its spool."""
        known = {record.id: record for record in await self._spooled()}
        known.update((record.id, record) for record in self.recent.recent())
        matching = sorted(
            (
                record
                for record in known.values()
                if (target is None or record.target == target)
                and (since is None or record.ts >= since)
            ),
            key=lambda record: record.ts,
        )
        return matching[-limit:] if limit is not None else matching

    def audit_notice(self) -> str | None:
        since, error = self.audit_read_outage.since, self.audit_read_outage.error
        if since is None:
            return None
        return (
            f"audit stream unreachable since {since:%Y-%m-%d %H:%M:%S} UTC ({error}): showing "
            "this daemon's own recent records and its spool"
        )

    async def _spooled(self) -> list[AuditRecord]:
        spool = getattr(self.audit, "spool_path", None)
        if spool is None:
            return []
        try:
            return await asyncio.to_thread(read_jsonl, spool)
        except OSError:
            return []

    # --- readiness ------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        now = self.clock.now()
        targets = {}
        for runtime in self._owned():
            last = runtime.last_record
            # recently: within three intervals (and at least 30 s, for start-up)
            allowed = max(3 * runtime.target.spec.rule.interval.total_seconds(), 30.0)
            age = (now - last.ts).total_seconds() if last is not None else None
            fresh = (age is not None and age <= allowed) or (
                last is None and (now - self._started_at).total_seconds() <= allowed
            )
            targets[runtime.name] = {
                "last_evaluated": last.ts.isoformat() if last else None,
                "fresh": fresh,
            }
            if not fresh:
                targets[runtime.name]["reason"] = (
                    f"not evaluated within {allowed:g}s (3 intervals, at least 30s); "
                    + (f"last evaluated {age:.0f}s ago" if age is not None else "not yet evaluated")
                )
        reasons = [
            f"target {name!r}: {target['reason']}"
            for name, target in targets.items()
            if not target["fresh"]
        ]
        if self.reload_status is not None and not self.reload_status.ok:
            reasons.append(f"the last reload was rejected: {self.reload_status.error}")
        if self.state_outage.since is not None:
            reasons.append(
                f"state store unavailable since {self.state_outage.since.isoformat()} "
                f"({self.state_outage.error}): changes are not made"
            )
        return {
            "ready": not reasons,
            "reasons": reasons,
            "config": {"path": str(self.config_path), "version": self.config.version},
            "reload": None
            if self.reload_status is None
            else {
                "at": self.reload_status.at.isoformat(),
                "ok": self.reload_status.ok,
                "error": self.reload_status.error,
            },
            "targets": targets,
        }

    @property
    def control_token(self) -> str | None:
        name = self.config.daemon.control_token_env
        return os.environ.get(name) if name else None

    def _check_control_token(self) -> None:
        """An empty or short token would switch authentication off or make it guessable:
        refuse to start. Without one beyond localhost, say the controls are off."""
        name = self.config.daemon.control_token_env
        token = self.control_token
        if name is not None and token is None:
            raise StartupError(f"[daemon] control_token_env names {name}, which is not set")
        if token is not None and len(token) < MIN_CONTROL_TOKEN:
            raise StartupError(
                f"the control token in {name} is {len(token)} characters long; it needs at "
                f"least {MIN_CONTROL_TOKEN}"
            )
        if token is None and not self.listens_locally:
            log.warning(
                "control endpoints are disabled: scalerd listens beyond localhost without "
                "[daemon] control_token_env",
                listen=self._listen(),
            )

    @property
    def listens_locally(self) -> bool:
        host = self._listen().rpartition(":")[0].strip("[]")
        return host in ("127.0.0.1", "::1", "localhost")

    # --- building -------------------------------------------------------------------------

    def _tick_context(self) -> TickContext:
        return TickContext(
            clock=self.clock,
            audit=self.recent,
            store=self.store,
            metrics=self.metrics,
            instance=self.instance,
            config_version=self.config.version,
            dry_run=self.dry_run,
            state_outage=self.state_outage,
            cluster=self.cluster,
            reads=self._reads,
            slots=self._slots(),
        )

    def _slots(self) -> asyncio.Semaphore:
        """The evaluation slots, made anew when a reload changes their number (evaluations
        under way keep the slots they hold)."""
        wanted = self.config.daemon.max_concurrent_evaluations
        if self._evaluation_slots is None or self._evaluation_slots[0] != wanted:
            self._evaluation_slots = (wanted, asyncio.Semaphore(wanted))
        return self._evaluation_slots[1]

    def _build_context(self, config: Config) -> BuildContext:
        return BuildContext(
            base_dir=config.base_dir,
            clock=self.clock,
            http=self.http,
            redis=self.redis,
            azure=self.azure,
            extras={"redis_clients": self._redis_clients},
        )

    async def _build_runtimes(
        self,
        config: Config,
        stored: Mapping[str, StoredTarget],
        previous: Mapping[str, TargetRuntime],
    ) -> dict[str, TargetRuntime]:
        from ..actuators import ACTUATORS
        from ..sources import SOURCES

        await self._open_source_redis_clients(config)
        ctx = self._build_context(config)
        sources = await _rebuild(
            self._plugins.sources, config.sources, lambda c: SOURCES.get(c.kind).build(c, ctx)
        )
        wanted_actuators = {target.actuator.name: target.actuator for target in config.targets}
        actuators = await _rebuild(
            self._plugins.actuators, wanted_actuators, lambda c: ACTUATORS.get(c.kind).build(c, ctx)
        )
        self._plugins = _Plugins(sources, actuators)
        # one instance per distinct query, whatever the entries are named: what shares reads
        by_query: dict[str, Source] = {}
        shared = {
            name: by_query.setdefault(_query_key(settings), instance)
            for name, (settings, instance) in sources.items()
        }
        # new plugin instances: reads of the old ones are not joined
        self._reads = SharedReads(self.metrics)

        runtimes: dict[str, TargetRuntime] = {}
        old_by_identity = {runtime.target.identity: runtime for runtime in previous.values()}
        # read-only, so shared: the bindings of the targets that read the same sources
        # (the config shares their mappings), and the memory of a target never evaluated
        bindings: dict[int, _Bindings] = {}
        fresh = StoredTarget()
        for target in config.targets:
            bound = bindings.get(id(target.sources))
            if bound is None:
                bound = bindings[id(target.sources)] = _bindings(target, shared)
            runtime = TargetRuntime(
                target=target,
                sources=bound.sources,
                source_names=bound.names,
                source_timeouts=bound.timeouts,
                actuator=actuators[target.actuator.name][1],
                stored=fresh,
                shadow_state=fresh.state,
            )
            kept = old_by_identity.get(target.identity)
            if kept is not None:
                runtime.stored, runtime.last_record = kept.stored, kept.last_record
                runtime.restored_under = kept.restored_under
            elif target.name in stored:
                runtime.stored = stored[target.name]
            runtimes[target.name] = runtime
        return runtimes

    def _offer_event(self, target: str, trigger: Trigger) -> None:
        """An accepted event: evaluated here if this replica owns the target, else
        forwarded to the owner on its pub/sub channel (the request is answered 202 at once)."""
        cluster = self.cluster
        if cluster is None or cluster.holds(target):
            self.trigger(target, trigger)
            return
        owner = cluster.owner_of(target)
        if owner is None or self.redis is None:
            log.warning(
                "event for a target no replica holds now; the next poll covers it", target=target
            )
            return
        message = json.dumps({"target": target, "trigger": trigger.to_wire()})
        self._forwarding.add(
            task := asyncio.create_task(self._forward(cluster.channel_of(owner), message, target))
        )
        task.add_done_callback(self._forwarding.discard)

    async def _forward(self, channel: str, message: str, target: str) -> None:
        assert self.redis is not None
        try:
            await self.redis.publish(channel, message)
        except Exception as problem:  # Redis away: the owner's next poll covers it
            log.warning("forwarding an event failed", target=target, error=type(problem).__name__)

    async def _receive_forwarded(self) -> None:
        """Events other replicas forward to this one, on its own channel."""
        assert self.cluster is not None and self.redis is not None
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.cluster.channel)
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None and message.get("type") == "message":
                            self._forwarded(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as problem:  # Redis away: subscribe again
                log.warning("forwarded-event channel interrupted", error=type(problem).__name__)
                await asyncio.sleep(1.0)

    def _forwarded(self, raw: bytes | str) -> None:
        try:
            data = json.loads(raw)
            target, trigger = str(data["target"]), Trigger.from_wire(data["trigger"])
        except (ValueError, KeyError, TypeError):
            log.warning("a forwarded event that is not one was dropped")
            return
        if not self.trigger(target, trigger):
            log.warning(
                "a forwarded event for a target not evaluated here was dropped", target=target
            )

    def _open_notifier(self, config: Config) -> Notifier | None:
        """The ``[[notify]]`` sinks and their outbox, beside the state (a reload keeps them)."""
        if not config.notify:
            return None
        state = (
            config.resolve(config.state.path).parent
            if config.state.path
            else config.resolve("state")
        )
        outbox = Outbox(state / "notify-outbox.db")
        self._stack.callback(outbox.close)
        maximums = {target.name: target.spec.rule.maximum for target in config.targets}
        return Notifier(
            config.notify, self._build_context(config), outbox, self.notify_metrics, maximums
        )

    async def _build_events(self, config: Config) -> None:
        self.events = EventHub(
            config.events,
            self._build_context(config),
            self.runtimes,
            self._offer_event,
            self.clock,
            self.event_metrics,
        )

    async def _open_redis(self, config: Config) -> redis.asyncio.Redis | None:
        self._redis_clients: dict[str, redis.asyncio.Redis] = {}
        settings = config.redis
        if settings is None:
            return None
        timeout = settings.socket_timeout.total_seconds()
        # no client-side retries: a Redis outage should reach the audit spool and the
        # failed-observation path at once, not after a retry ladder
        client = redis.asyncio.Redis.from_url(
            settings.url,
            password=settings.password(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._stack.push_async_callback(client.aclose)
        return client

    async def _open_source_redis_clients(self, config: Config) -> None:
        """A Redis source may name its own server; one client per distinct URL."""
        for source in config.sources.values():
            url = getattr(source, "url", None)
            if source.kind == "redis" and url and url not in self._redis_clients:
                client = redis.asyncio.Redis.from_url(
                    url, socket_timeout=5, socket_connect_timeout=5
                )
                self._stack.push_async_callback(client.aclose)
                self._redis_clients[url] = client

    async def _open_azure(self, config: Config) -> Any:
        kinds = {c.kind for c in (*config.sources.values(), *config.actuators.values())}
        if config.azure is None and not any(_is_azure(kind) for kind in kinds):
            return None
        from ..azure import AzureClients
        from ..settings import AzureSettings

        clients = AzureClients(
            config.azure or AzureSettings(), credential=self._azure_credential, clock=self.clock
        )
        return await self._stack.enter_async_context(clients)

    async def _open_audit(self, config: Config) -> tuple[AuditSink, AuditLog]:
        settings = config.audit
        if settings.sink == "redis":
            if self.redis is None:
                raise ConfigError.single(
                    self.config_path, "audit.sink", "the redis audit sink needs a [redis] section"
                )
            # replicas sharing a folder keep a spool each: "{instance}" in its path
            spool = config.resolve(settings.spool.replace("{instance}", self.instance))
            sink = RedisStreamSink(self.redis, settings.stream, settings.maxlen, spool)
            await sink.start()
            self._stack.push_async_callback(sink.aclose)
            return sink, StreamAuditLog(self.redis, settings.stream)
        path = config.resolve(settings.path)
        jsonl = JsonlSink(path, settings.max_bytes, settings.keep)
        self._stack.push_async_callback(jsonl.aclose)
        return jsonl, JsonlAuditLog(path)

    async def _open_store(self, config: Config) -> StateStore:
        store: StateStore
        if config.state.store == "redis":
            if self.redis is None:
                raise ConfigError.single(
                    self.config_path, "state.store", "the redis state store needs a [redis] section"
                )
            store = RedisStateStore(
                self.redis,
                (config.redis.key_prefix if config.redis else "scalerd:"),
                fenced=self.cluster is not None,
            )
        elif config.state.store == "file":
            store = FileStateStore(config.resolve(config.state.location()))
        else:
            store = SqliteStateStore(
                config.resolve(config.state.location()),
                legacy_path=config.resolve(config.state.import_file),
                synchronous=config.state.synchronous,
            )
        self._stack.push_async_callback(store.aclose)
        return store

    async def _start_server(self) -> None:
        host, _, port = self._listen().rpartition(":")
        runner = web.AppRunner(build_app(self), access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host.strip("[]"), int(port))
        try:
            await site.start()
        except OSError as problem:
            why = (os.strerror(problem.errno) if problem.errno else str(problem)).lower()
            raise StartupError(
                f"cannot listen on {host}:{port}: {why} (set [daemon] listen or --listen)"
            ) from None
        server = site._server  # the bound port, when asked for port 0
        sockets = getattr(server, "sockets", None) or []
        self.listening_on = sockets[0].getsockname()[:2] if sockets else (host, int(port))
        log.info("listening", address=f"http://{host}:{self.listening_on[1]}")

    def _listen(self) -> str:
        return self._listen_override or self.config.daemon.listen

    def _start_loops(
        self, runtimes: Iterable[TargetRuntime] | None = None, *, at_once: bool = False
    ) -> None:
        """Loops for ``runtimes`` (default: every target this replica evaluates); a target
        taken over from another replica is evaluated ``at_once``, with no jitter."""
        jitter = 0.0 if at_once else self.config.daemon.jitter
        context = self._tick_context()
        for runtime in self._owned() if runtimes is None else runtimes:
            loop = TargetLoop(
                runtime.name,
                lambda runtime=runtime: self._evaluate(  # type: ignore[misc]
                    runtime, context, self._take_trigger(runtime.name)
                ),
                runtime.target.spec.rule.interval.total_seconds(),
                jitter,
            )
            gap = runtime.target.config.min_event_gap
            self._coalescers[runtime.name] = Coalescer(
                loop.trigger, gap.total_seconds() if gap else 0.0
            )
            self._loops[runtime.name] = loop
            loop.start()

    def _take_trigger(self, target: str) -> Trigger:
        coalescer = self._coalescers.get(target)
        queued = coalescer.take() if coalescer is not None else None
        return queued or POLL

    async def _stop_loops(self, names: Iterable[str] | None = None) -> None:
        grace = (
            self.config.daemon.shutdown_grace.total_seconds() if hasattr(self, "config") else 0.0
        )
        if names is None:
            loops, self._loops = self._loops, {}
        else:
            loops = {name: self._loops.pop(name) for name in names if name in self._loops}
        for name in loops:
            coalescer = self._coalescers.pop(name, None)
            if coalescer is not None:
                coalescer.close()
        await asyncio.gather(*(loop.stop(grace) for loop in loops.values()))

    # --- the cluster ----------------------------------------------------------------------

    def _open_cluster(self, config: Config) -> ClusterMember | None:
        """A cluster member when the state is in Redis (shared by every replica)."""
        if config.state.store != "redis" or self.redis is None or config.redis is None:
            return None
        member = ClusterMember(
            self.redis,
            config.cluster,
            key_prefix=config.redis.key_prefix,
            instance=self._instance_override
            or config.cluster.instance
            or default_instance(config.daemon.instance),
            on_gained=self._shards_gained,
            on_handing_off=self._shards_released,
            on_lost=self._shards_released,
            on_renew_failed=self.metrics.lease_renew_failures.inc,
        )
        self.metrics.shards_owned.set_function(
            lambda: sum(1 for lease in member.held.values() if lease.remaining() > 0)
        )
        return member

    def _owned(self) -> list[TargetRuntime]:
        """The targets this replica evaluates: all of them, or those of shards it holds."""
        cluster = self.cluster
        runtimes = self.runtimes.values()
        return [r for r in runtimes if cluster is None or cluster.holds(r.name)]

    def _in_shards(self, shards: frozenset[int]) -> list[TargetRuntime]:
        assert self.cluster is not None
        return [r for r in self.runtimes.values() if self.cluster.shard_of(r.name) in shards]

    async def _shards_gained(self, shards: frozenset[int]) -> None:
        assert self.cluster is not None
        runtimes = self._in_shards(shards)
        # loops still running from before a lost lease (Redis was unreachable) stop first:
        # their state may be older than what another owner saved meanwhile
        await self._stop_loops(r.name for r in runtimes)
        await self._restore(runtimes)
        if self._serving:
            # an operation the previous owner started is followed here from now on
            self._follow_operations(self._tick_context(), runtimes)
            self._start_loops(runtimes, at_once=True)
        self.metrics.lease_takeovers.inc(self.cluster.takeovers - self._takeovers_counted)
        self._takeovers_counted = self.cluster.takeovers

    async def _shards_released(self, shards: frozenset[int]) -> None:
        await self._stop_loops(r.name for r in self._in_shards(shards))

    async def _restore(self, runtimes: Iterable[TargetRuntime]) -> None:
        """Load the targets' state from Redis under the lease just acquired and settle a
        change the previous owner left in flight."""
        assert self.cluster is not None and isinstance(self.store, RedisStateStore)
        runtimes = list(runtimes)
        stored = await self.store.load([r.name for r in runtimes])
        for runtime in runtimes:
            fence = self.cluster.fence(runtime.name)
            if fence is None:
                continue
            async with runtime.lock:
                runtime.stored = stored.get(runtime.name, StoredTarget())
                runtime.last_record = None
                runtime.restored_under = fence.token
                fenced = CURRENT_FENCE.set(fence)
                try:
                    await _settle(runtime, self.store, self.recent, self.audit_log)
                except LeaseLost:
                    pass  # lost again already; the next owner settles it
                finally:
                    CURRENT_FENCE.reset(fenced)

    async def _leave_cluster(self) -> None:
        assert self.cluster is not None
        self.cluster.stop()
        if self._cluster_task is not None:
            await asyncio.gather(self._cluster_task, return_exceptions=True)
            self._cluster_task = None
        await self._stop_loops()
        await self.cluster.leave()


@dataclass(frozen=True)
class _Bindings:
    """A target's sources by the metric names its rules read (read-only)."""

    sources: Mapping[str, Source]
    names: Mapping[str, str]
    timeouts: Mapping[str, float]


def _bindings(target: Target, shared: Mapping[str, Source]) -> _Bindings:
    return _Bindings(
        sources={metric: shared[source.name] for metric, source in target.sources.items()},
        names={metric: source.name for metric, source in target.sources.items()},
        timeouts={
            metric: source.timeout.total_seconds() for metric, source in target.sources.items()
        },
    )


async def _rebuild(
    built: Mapping[str, tuple[PluginConfig, Any]],
    wanted: Mapping[str, PluginConfig],
    build: Any,
) -> dict[str, tuple[PluginConfig, Any]]:
    """Keep instances whose settings are unchanged, build the rest, close what is gone."""
    result: dict[str, tuple[PluginConfig, Any]] = {}
    for name, config in wanted.items():
        old = built.get(name)
        result[name] = old if old is not None and old[0] == config else (config, build(config))
    for name, (_, instance) in built.items():
        if result.get(name, (None, None))[1] is not instance:
            await _close(instance)
    return result


async def _settle(
    runtime: TargetRuntime, store: StateStore, audit: AuditSink, written: AuditLog
) -> None:
    """Settle a change left in flight by the last stop (or the previous owner)."""
    outcome = await recover_pending(runtime, store, audit, written)
    if outcome is not None:
        log.info(
            "settled a change in flight at the last stop", target=runtime.name, outcome=outcome
        )


async def _close(plugin: Any) -> None:
    try:
        await plugin.aclose()
    except Exception:  # closing one plugin must not stop the others from closing
        log.exception("closing a plugin failed", plugin=type(plugin).__name__)


async def _evaluate_all(
    runtimes: list[TargetRuntime], context: TickContext, width: int
) -> list[AuditRecord]:
    """Evaluate ``runtimes`` ``width`` at a time, their records in order: a task per
    evaluation under way, not one per target (at 10,000 targets those, waiting their
    turn, are what the collector would scan)."""
    records: list[AuditRecord | None] = [None] * len(runtimes)
    turns = iter(enumerate(runtimes))

    async def take_turns() -> None:
        for index, runtime in turns:
            records[index] = await evaluate(runtime, context)

    await asyncio.gather(*(take_turns() for _ in range(min(width, len(runtimes)))))
    return [record for record in records if record is not None]


def _query_key(settings: PluginConfig) -> str:
    """What a source reads, and how: its settings but its name."""
    return settings.model_dump_json(exclude={"name"})


def _is_azure(kind: str) -> bool:
    return kind.startswith("azure") or kind in ("log-analytics", "servicebus")


def freeze_what_lives_long() -> None:
    """Once a daemon has started, move what it built (the config's models, the plugins, the
    loaded states) out of the collector's reach: a full collection would otherwise scan
    every one of them again, and at 10,000 targets that is millions of objects. Called by
    ``scalerd run`` for its one daemon; tests, which start many, do without. Objects are
    still freed by reference counting; only cycles among them would stay.

    The collector then runs less often: a pass over 10,000 targets allocates a million
    short-lived objects (freed by reference counting), and at the default thresholds it
    ran about 800 young and 3 full collections per pass; at these, about 10 and none
    (a 10,000-target pass of 11 to 13 s of CPU took 8.5 to 9 s, measured as bench/scale.py does)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def refuse_secret_looking_strings(config: Config) -> None:
    """The config's strings that every audit record carries (names, metric names, rule
    labels), checked once here: records are then not scanned for secrets one by one."""
    found = secret_looking(_audited_strings(config))
    if found:
        message = "looks like a secret, and audit records would carry it: rename it"
        raise ConfigError([ConfigIssue(str(config.path), None, key, message) for key in found])


def _audited_strings(config: Config) -> Iterator[tuple[str, str]]:
    yield "daemon.instance", config.daemon.instance
    for name in config.sources:
        yield f"sources.{name}.name", name
    for target in config.targets:
        where = f"targets.{target.name}"
        yield f"{where}.name", target.name
        yield f"{where}.actuator", target.actuator.name
        for metric, source in target.sources.items():
            yield f"{where}.metrics.{metric}", metric
            yield f"{where}.metrics.{metric}", source.name
        rule = target.spec.rule
        for index, track in enumerate(rule.track):
            yield f"{where}.track[{index}]", track.label
        for index, threshold in enumerate(rule.threshold):
            yield f"{where}.threshold[{index}]", threshold.label
        for index, step in enumerate(rule.step):
            yield f"{where}.step[{index}]", step.label


def _env_secrets(value: Any, seen: set[int] | None = None) -> list[str]:
    """The values of every environment variable a ``*_env`` key of the config names (the
    control token, the Redis password, connection strings, event secrets), wherever in
    the config it is. What many targets share (one validated rule model, one binding) is
    looked through once: 10,000 targets cost their own parts, not 10,000 walks of those."""
    if type(value) in _LEAVES:
        return []
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))  # (the config holds every object walked: no id is reused meanwhile)
    found: list[str] = []
    if isinstance(value, BaseModel):
        for key in type(value).model_fields:
            item = getattr(value, key)
            if key.endswith("_env") and isinstance(item, str) and os.environ.get(item):
                found.append(os.environ[item])
            else:
                found += _env_secrets(item, seen)
    elif isinstance(value, Mapping):
        for item in value.values():
            found += _env_secrets(item, seen)
    elif isinstance(value, list | tuple):
        for item in value:
            found += _env_secrets(item, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for each in dataclasses.fields(value):
            found += _env_secrets(getattr(value, each.name), seen)
    return found


# what holds no ``*_env`` key, and is most of what a config holds
_LEAVES = frozenset({str, int, float, bool, type(None), timedelta, type(Path())})


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@contextlib.asynccontextmanager
async def open_audit_log(config: Config) -> AsyncIterator[AuditLog]:
    """The audit log a config writes to, for reading it back (``scalerd audit``)."""
    settings = config.audit
    if settings.sink == "jsonl":
        yield JsonlAuditLog(config.resolve(settings.path))
        return
    if config.redis is None:
        raise ConfigError.single(
            config.path, "audit.sink", "the redis audit sink needs a [redis] section"
        )
    client = redis.asyncio.Redis.from_url(
        config.redis.url, password=config.redis.password(), socket_timeout=5
    )
    try:
        yield StreamAuditLog(client, settings.stream)
    finally:
        await client.aclose()
