"""Shared source reads: a source that many targets read is read once and the value fanned out.

A platform team's targets mostly read the same few sources (one Azure Monitor query per
metric, one Prometheus server). Each target still reads every source it names, in its
own evaluation, with the source's timeout; but a read of a source that is already under
way, or that started less than ``fresh_for`` ago (by the daemon's clock), is joined
instead of repeated. Two ``[[sources]]`` entries with the same settings are one source to
this module (the composition root hands both names the same instance).

Failure semantics stay per target and per metric: a failed shared read becomes a failed
observation of that metric for every target that joined it, and nothing else; a target
that stops waiting at its own deadline gets a timeout for that metric while the read goes
on for the others. A read is one task, whatever the number of targets joining it; joining
a finished read costs no task and no timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core import Observation, Sample
from ..plugins import Source
from ..redact import redact
from .metrics import DaemonMetrics

__all__ = ["SharedReads", "describe"]

# what a read gives: its points, or the problem in words
Outcome = tuple[Sample, ...] | str


@dataclass(frozen=True, slots=True)
class _Read:
    started: datetime
    outcome: asyncio.Future[Outcome]
    # its observation per (metric, source name), once it has ended: the targets that read
    # it share one (an observation is immutable)
    observed: dict[tuple[str, str], Observation] = field(default_factory=dict)


class SharedReads:
    """Reads of each source, shared by the targets that ask while one is under way or
    shortly after it started."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics
        self._reads: dict[Source, _Read] = {}
        # how many times each source was actually read (for tests and the benchmark)
        self.reads = 0

    async def observe(
        self,
        sources: Mapping[str, Source],
        names: Mapping[str, str],
        timeouts: Mapping[str, float],
        now: datetime,
        fresh_for: timedelta,
    ) -> list[Observation]:
        """An observation per metric of ``sources``, each within its own timeout, from a
        read under way or started less than ``fresh_for`` before ``now`` if there is one."""
        joined = [
            (metric, self._join(source, names[metric], timeouts[metric], now, fresh_for))
            for metric, source in sources.items()
        ]
        deadline = asyncio.get_running_loop().time()
        observations = []
        for metric, read in joined:
            outcome = read.outcome
            if not outcome.done():
                try:
                    async with asyncio.timeout_at(deadline + timeouts[metric]):
                        await asyncio.shield(outcome)  # others may still want it
                except TimeoutError:  # the read's own timeout (counted there) fires first
                    observations.append(
                        Observation.failed(
                            metric, f"{names[metric]}: timed out after {timeouts[metric]:g}s"
                        )
                    )
                    continue
            key = (metric, names[metric])
            observation = read.observed.get(key)
            if observation is None:
                result = outcome.result()
                observation = read.observed[key] = (
                    Observation.failed(metric, f"{names[metric]}: {result}")
                    if isinstance(result, str)
                    else Observation(metric, result)
                )
            observations.append(observation)
        return observations

    async def prefetch(
        self, reads: Iterable[tuple[Source, str, float, timedelta]], now: datetime
    ) -> None:
        """Start (or join) the read of each ``(source, name, timeout, fresh_for)`` and wait
        until every one has ended: a pass of many targets then finds each read finished,
        and no target waits on its own. Each read ends within its timeout, which is the
        timeout of every target reading that source (one instance per query and settings),
        so a target's outcome is what it would have been waiting itself."""
        pending = {
            outcome
            for source, name, timeout, fresh_for in reads
            if not (outcome := self._join(source, name, timeout, now, fresh_for).outcome).done()
        }
        if pending:
            await asyncio.wait(pending)

    def _join(
        self, source: Source, name: str, timeout: float, now: datetime, fresh_for: timedelta
    ) -> _Read:
        read = self._reads.get(source)
        if read is not None and (
            not read.outcome.done() or timedelta(0) <= now - read.started < fresh_for
        ):
            return read
        read = self._reads[source] = _Read(
            now, asyncio.ensure_future(self._read(source, name, timeout))
        )
        self.reads += 1
        return read

    async def _read(self, source: Source, name: str, timeout: float) -> Outcome:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                samples: Sequence[Sample] = await source.read()
            return tuple(samples)
        except TimeoutError:
            self._metrics.source_errors.labels(name).inc()
            return f"timed out after {timeout:g}s"
        except Exception as problem:  # a failed read is a failed observation, never a crash
            self._metrics.source_errors.labels(name).inc()
            return describe(problem)
        finally:
            self._metrics.source_latency.labels(name).observe(time.perf_counter() - started)


def describe(problem: BaseException) -> str:
    """A problem in words for the audit record: its code, its message, secrets redacted
    (this is where run-time text from an SDK enters a record)."""
    code = getattr(problem, "code", None)
    prefix = f"{code}: " if code else ""
    return redact(f"{prefix}{problem}" if str(problem) else f"{prefix}{type(problem).__name__}")
