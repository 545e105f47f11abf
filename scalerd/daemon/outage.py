"""Something the daemon depends on (the state store, the audit stream) being unreachable:
since when, why in words, and one log line when it starts and one when it ends.

An outage of Redis is expected weather, not a bug: it gets a warning when it starts and
an info line when it ends, never a traceback per evaluation.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError
from redis.exceptions import TimeoutError as RedisTimeout

from ..clock import Clock
from ..redact import redact

__all__ = ["Outage", "describe_unavailable"]

log = structlog.get_logger("scalerd")


class Outage:
    """Tracks one dependency: :meth:`failed` on every failed call, :meth:`recovered` on
    every successful one."""

    def __init__(self, what: str, clock: Clock, *, logged: bool = True) -> None:
        self.what = what
        self._clock = clock
        # False where another part already logs the same outage (the audit sink's spool)
        self._logged = logged
        self.since: datetime | None = None
        self.error: str | None = None

    def failed(self, problem: BaseException) -> str:
        """Note a failed call; returns the problem in words."""
        self.error = describe_unavailable(problem)
        if self.since is None:
            self.since = self._clock.now()
            if self._logged:
                log.warning(f"{self.what} unavailable", error=self.error)
        return self.error

    def recovered(self) -> None:
        if self.since is not None and self._logged:
            down_s = round((self._clock.now() - self.since).total_seconds(), 3)
            log.info(f"{self.what} available again", unavailable_s=down_s)
        self.since = self.error = None


def describe_unavailable(problem: BaseException) -> str:
    """A connection-level failure as a few words (``connection refused``, ``timed out``,
    ``authentication failed``), else its redacted message: never a password."""
    for cause in _chain(problem):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, AuthenticationError | AuthenticationWrongNumberOfArgsError):
            return "authentication failed (wrong password?)"
        if isinstance(cause, TimeoutError | RedisTimeout):
            return "timed out"
    text = str(problem)
    if "connection refused" in text.lower() or "connect call failed" in text.lower():
        return "connection refused"  # redis-py words it "Error 111 connecting to …"
    return redact(f"{type(problem).__name__}: {text}" if text else type(problem).__name__)


def _chain(problem: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = problem
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
