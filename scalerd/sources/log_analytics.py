"""``kind = "log-analytics"``: one number from a KQL query of a Log Analytics workspace.

The query must return one row. Its first column is the value, e.g. the p95 request
duration: ``AppRequests | summarize percentile(DurationMs, 95)``. A second column, when
present, is the target that value is held to, for targets that live in data rather than
config (an SLO table, a per-tenant limit): the source then reports the value as a
*percentage of that target* (``p95 / slo * 100``), and the rule tracks it with
``target = 100``.

No row, several rows, a cell that is not a number, a partial result (Azure answered but
some of the query failed) and a server-side timeout all fail the read: a query that did
not fully run has no number to scale on. The server's timeout (``Prefer: wait``) is 80 %
of ``timeout``, so Azure cuts a slow query off, with an error that says so, before the
read gives up on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from azure.monitor.query import LogsQueryPartialResult, LogsQueryResult
from azure.monitor.query.aio import LogsQueryClient
from pydantic import Field, field_validator

from ..azure.clients import azure_clients
from ..azure.throttle import Caller
from ..clock import Clock
from ..core.durations import Duration
from ..core.model import Sample
from ..errors import SourceError
from ..plugins import BuildContext, Plugin, Source, SourceConfig

__all__ = ["PLUGIN", "LogAnalyticsConfig", "LogAnalyticsSource"]

# every call to the Log Analytics API shares one throttling scope: its limits are per
# user across workspaces (throttling.md §3)
SCOPE = "logs"
# the share of the read's timeout the server may spend on the query
_SERVER_SHARE = 0.8


class LogAnalyticsConfig(SourceConfig):
    kind: Literal["log-analytics"]
    # the workspace's id (a GUID: the portal's "Workspace ID")
    workspace_id: str = Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
    # KQL returning one row: the value, and optionally the target it is held to
    query: str = Field(min_length=1)
    # the time range the query covers, e.g. "15m"; unset, the query filters by time itself
    # (`where TimeGenerated > ago(15m)`)
    timespan: Duration | None = None
    # how long the query may run (the server is asked to stop at 80 % of it)
    timeout: Duration = timedelta(seconds=30)

    @field_validator("timeout")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=2):
            raise ValueError("give a Log Analytics query at least 2s")
        return value


class LogAnalyticsSource:
    """Runs ``config.query`` against one workspace and reads its single row."""

    def __init__(
        self, config: LogAnalyticsConfig, client: LogsQueryClient, caller: Caller, clock: Clock
    ) -> None:
        self._config = config
        self._client = client
        self._caller = caller
        self._clock = clock
        self._what = f"query workspace {config.workspace_id}"

    async def read(self) -> Sequence[Sample]:
        result = await self._caller.session().read(SCOPE, self._query, self._what)
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            detail = f"{error.code}: {error.message}" if error is not None else "no details"
            raise SourceError(f"{self._what}: only a partial result ({detail})")
        return (Sample(self._clock.now(), self._value(result)),)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the daemon."""

    async def _query(self) -> LogsQueryResult | LogsQueryPartialResult:
        return await self._client.query_workspace(
            self._config.workspace_id,
            self._config.query,
            timespan=self._config.timespan,
            server_timeout=max(1, int(self._config.timeout.total_seconds() * _SERVER_SHARE)),
        )

    def _value(self, result: LogsQueryResult) -> float:
        tables = result.tables
        rows = tables[0].rows if tables else []
        if len(tables) != 1 or len(rows) != 1:
            count = sum(len(table.rows) for table in tables)
            raise SourceError(f"{self._what}: the query must return one row, it returned {count}")
        cells = list(rows[0])
        if len(cells) not in (1, 2):
            raise SourceError(
                f"{self._what}: the query must return one column (the value) or two (value, "
                f"target), it returned {len(cells)}"
            )
        value = _number(cells[0], self._what, "value")
        if len(cells) == 1:
            return value
        target = _number(cells[1], self._what, "target")
        if target <= 0:
            raise SourceError(f"{self._what}: the target column must be positive, got {target:g}")
        return value / target * 100.0


def build(config: LogAnalyticsConfig, ctx: BuildContext) -> Source:
    azure = azure_clients(ctx, config.name)
    caller = azure.caller("source", patience=config.timeout / 2)
    return LogAnalyticsSource(config, azure.logs(), caller, ctx.clock)


def _number(cell: Any, what: str, column: str) -> float:
    # Log Analytics cells are untyped JSON: numbers may arrive as strings ("1.286")
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise SourceError(f"{what}: the {column} column holds {cell!r}, not a number") from None
    if not math.isfinite(value):
        raise SourceError(f"{what}: the {column} column holds {cell!r}, not a number to scale on")
    return value


PLUGIN = Plugin(
    kind="log-analytics",
    config=LogAnalyticsConfig,
    build=build,
    summary="a Log Analytics (KQL) query returning one number, optionally with its target",
)
