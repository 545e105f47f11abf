"""The exception tree. Everything scalerd raises on purpose derives from ``ScalerdError``::

    ScalerdError
    ├── ConfigError     invalid config.toml / rule file: carries file, line, key path
    ├── SourceError     a source could not produce a reading (becomes a failed observation)
    ├── ActuatorError   an actuator could not read or change capacity (audited as failed)
    │   ├── Throttled        the platform asked us to back off (429/503/529, Retry-After)
    │   └── StaleFence       the resource has seen a newer fencing token than this write's
    ├── LeaseLost       this replica no longer holds the lease of a target's shard
    └── StartupError    the daemon cannot start as configured (port taken, token too short)

Messages never carry secrets: connection strings and keys are redacted before they reach
an exception, a log line or an audit record.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ActuatorError",
    "ConfigError",
    "ConfigIssue",
    "LeaseLost",
    "ScalerdError",
    "SourceError",
    "StaleFence",
    "StartupError",
    "Throttled",
]


class ScalerdError(Exception):
    """Base of every error scalerd raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ScalerdError):
    """One or more problems in the configuration, each naming file, line and key path."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    @classmethod
    def single(cls, file: object, path: str, message: str) -> ConfigError:
        """A problem found after validation, when settings do not fit together."""
        return cls([ConfigIssue(str(file), None, path, message)])


class SourceError(ScalerdError):
    """A source could not produce a reading."""


class ActuatorError(ScalerdError):
    """An actuator could not read or change capacity. ``code`` is the platform's error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Throttled(ActuatorError):
    """The platform throttled us; ``retry_after`` seconds is when to try again."""

    def __init__(self, message: str, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class StaleFence(ActuatorError):
    """A write carried a fencing token older than one the resource has already seen: a
    newer owner of the target has written, so this one must not."""


class LeaseLost(ScalerdError):
    """This replica does not (or no longer) hold the lease of a target's shard, so it may
    neither save the target's state nor act on it (``scalerd.cluster``)."""


class StartupError(ScalerdError):
    """The daemon cannot start as configured; the message says what to change."""
