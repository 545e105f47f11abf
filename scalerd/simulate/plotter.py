"""The plots of a ``scalerd simulate``, drawn beside the replay rather than after it.

Loading matplotlib and drawing a two-week chart cost about as much as a third of the
replay, all of it on one core. :meth:`Plotter.start` forks a child process before the
replay: it imports matplotlib (and :mod:`.plot`) while this process replays, then draws
each chart as its replay is handed over (:meth:`Plotter.timeline`,
:meth:`Plotter.comparison`), while this process scores the next config and writes the
files. The child runs the same drawing code on the same numbers, so the PNG's bytes are
those an in-process drawing writes.

Where there is no ``os.fork``, or the process already runs other threads (forking those is
unsafe: a lock one of them holds stays held in the child), the charts are drawn here, in
order, when they are handed over. Either way a chart that cannot be drawn is not an
exception: :meth:`Plotter.finish` returns one line per failure, for the command to print.
Without a chart to draw (``--no-plot``, or ladders only), no plotter is started and
matplotlib is never imported.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from .run import Timeline
from .scores import Scores

__all__ = ["Plotter", "Replay"]

# a job's length, before its pickle
_LENGTH = struct.Struct("<Q")
# a failure's text is a line on stderr: long ones are cut
_MESSAGE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Replay:
    """One config's replay, as a chart draws it."""

    label: str
    timeline: Timeline
    scores: Scores


# (which chart, its arguments): "timeline" (timeline, scores, title, path, window) or
# "comparison" (replays, title, path, window)
_Job = tuple[str, tuple[Any, ...]]


def _draw(job: _Job) -> None:
    from . import plot

    kind, arguments = job
    draw: Callable[..., None] = plot.plot_timeline if kind == "timeline" else plot.plot_comparison
    draw(*arguments)


def _failure(job: _Job, error: BaseException) -> str:
    """One line: a bad ``--window`` says what is wrong with it; anything else names the
    chart it kept from being drawn."""
    if isinstance(error, ValueError):
        text = str(error)
    else:
        path = job[1][3 if job[0] == "timeline" else 2]
        text = f"cannot draw {path}: {type(error).__name__}: {error}"
    return text[:_MESSAGE_LIMIT]


class Plotter:
    """Draws the charts handed to it; :meth:`finish` waits for them and says what failed.

    Use it as a context manager: leaving the block on an exception stops the child
    without waiting for its charts.
    """

    def __init__(self) -> None:
        self._pid: int | None = None
        self._jobs: int | None = None  # the write end of the jobs' pipe
        self._results: int | None = None  # the read end of the results' pipe
        self._sent: list[_Job] = []
        self._failures: list[str] = []

    @classmethod
    def start(cls, fork: bool = True) -> Plotter:
        """A plotter drawing in a child process when ``fork`` and forking is safe, else
        in this one."""
        plotter = cls()
        if fork and hasattr(os, "fork") and threading.active_count() == 1:
            plotter._fork()
        return plotter

    @property
    def pid(self) -> int | None:
        """The child drawing the charts (``None``: they are drawn in this process)."""
        return self._pid

    def timeline(
        self,
        timeline: Timeline,
        scores: Scores,
        title: str,
        path: Path,
        window: tuple[float, float] | None,
    ) -> None:
        self._submit(("timeline", (timeline, scores, title, path, window)))

    def comparison(
        self,
        replays: Sequence[Replay],
        title: str,
        path: Path,
        window: tuple[float, float] | None,
    ) -> None:
        self._submit(("comparison", (list(replays), title, path, window)))

    def finish(self) -> list[str]:
        """Wait until every chart handed over is drawn (or failed); one line per failure,
        in the order they were handed over."""
        if self._pid is None:
            return list(self._failures)
        assert self._jobs is not None and self._results is not None
        os.close(self._jobs)
        self._jobs = None
        with os.fdopen(self._results, "rb") as results:
            self._results = None
            reported: dict[int, str | None] = {}
            while True:
                try:
                    index, failure = pickle.load(results)
                except EOFError:
                    break
                reported[index] = failure
        status = self._wait()
        ended = _ending(status)
        failures = []
        for index, job in enumerate(self._sent):
            if index in reported:
                failure = reported[index]
            else:  # the child ended before it got to this chart
                failure = _failure(job, ChildProcessError(f"the plotting process {ended}"))
            if failure is not None:
                failures.append(failure)
        return failures

    def __enter__(self) -> Plotter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pid is None:
            return
        if kind is not None:
            self._stop()
        else:  # left without asking what failed: still wait for the charts
            self.finish()

    def _submit(self, job: _Job) -> None:
        if self._pid is None:
            try:
                _draw(job)
            except Exception as error:
                self._failures.append(_failure(job, error))
            return
        assert self._jobs is not None
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        self._sent.append(job)
        # if the child is gone, finish() says so for each chart it did not draw
        with contextlib.suppress(BrokenPipeError):
            _write_all(self._jobs, _LENGTH.pack(len(data)) + data)

    def _fork(self) -> None:
        jobs_read, jobs_write = os.pipe()
        results_read, results_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            status = 1
            try:
                os.close(jobs_write)
                os.close(results_read)
                _child(jobs_read, results_write)
                status = 0
            finally:
                os._exit(status)
        os.close(jobs_read)
        os.close(results_write)
        self._pid, self._jobs, self._results = pid, jobs_write, results_read

    def _stop(self) -> None:
        import signal

        for fd in (self._jobs, self._results):
            if fd is not None:
                os.close(fd)
        self._jobs = self._results = None
        assert self._pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGTERM)
        self._wait()

    def _wait(self) -> int:
        assert self._pid is not None
        pid, self._pid = self._pid, None
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except InterruptedError:
                continue


def _child(jobs: int, results: int) -> None:
    """Import matplotlib while the jobs arrive, then draw them in turn, reporting each
    (its index, ``None`` or the failure's line) on ``results``."""
    received: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    def receive() -> None:
        # a job is read as soon as it is written, so the parent never waits on the pipe
        with os.fdopen(jobs, "rb") as source:
            while header := source.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(header)
                received.put(pickle.loads(source.read(length)))
        received.put(None)

    threading.Thread(target=receive, daemon=True).start()
    imported: BaseException | None = None
    try:
        # the slow part, under way during the replay; and the first chart's figure
        from . import plot

        plot.prepare()
    except BaseException as error:  # reported for each chart, as it would have been here
        imported = error
    with os.fdopen(results, "wb") as out:
        index = 0
        while (job := received.get()) is not None:
            failure = None
            try:
                if imported is not None:
                    raise imported
                _draw(job)
            except Exception as error:
                failure = _failure(job, error)
            pickle.dump((index, failure), out)
            out.flush()
            index += 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"ended with status {os.waitstatus_to_exitcode(status)}"
