"""The log-analytics source through the real ``LogsQueryClient`` against ``FakeAzure``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import AzureEnv
from fakes.azure_fake import ArmError
from pydantic import ValidationError

from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import Source
from scalerd.sources.log_analytics import PLUGIN, LogAnalyticsConfig

WORKSPACE = "63613592-b6f7-4c3d-a390-22ba13102111"
P95 = "AppRequests | summarize percentile(DurationMs, 95)"


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env


def config(**keys: Any) -> LogAnalyticsConfig:
    defaults = {"kind": "log-analytics", "name": "p95", "workspace_id": WORKSPACE, "query": P95}
    return LogAnalyticsConfig.model_validate({**defaults, **keys})


def source(azure: AzureEnv, **keys: Any) -> Source:
    return PLUGIN.build(config(**keys), azure.ctx)


def answer(azure: AzureEnv, *rows: list[Any], columns: int = 1, **options: Any) -> None:
    names = [("p95", "real"), ("target", "real"), ("extra", "real")][:columns]
    azure.fake.set_log_result(WORKSPACE, P95, columns=names, rows=rows, **options)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"workspace_id": "my-workspace"}, "should match pattern", id="not a GUID"),
        pytest.param({"query": ""}, "at least 1 character", id="empty query"),
        pytest.param({"timeout": "1s"}, "at least 2s", id="short timeout"),
        pytest.param({"timespan": 300}, "needs a unit", id="bare number"),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


async def test_the_number_in_the_one_row(azure: AzureEnv) -> None:
    answer(azure, [123.4])

    assert await source(azure, timespan="15m").read() == (Sample(azure.clock.now(), 123.4),)
    (call,) = azure.fake.calls("logs")
    assert call.body == {"query": P95, "timespan": "PT900.0S", "workspaces": None}
    assert call.headers["Prefer"] == "wait=24"  # 80% of the 30s timeout: Azure gives up first


async def test_a_number_sent_as_a_string_is_read(azure: AzureEnv) -> None:
    answer(azure, ["1.286"])

    (sample,) = await source(azure).read()

    assert sample.value == 1.286


async def test_a_second_column_makes_the_value_a_percentage_of_that_target(azure: AzureEnv) -> None:
    answer(azure, [450.0, 300.0], columns=2)

    (sample,) = await source(azure).read()

    assert sample.value == 150.0  # 450 / 300 * 100: track it with target = 100


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        pytest.param([], 1, "must return one row, it returned 0", id="no row"),
        pytest.param([[1.0], [2.0]], 1, "must return one row, it returned 2", id="two rows"),
        pytest.param([[1.0, 2.0, 3.0]], 3, "it returned 3", id="three columns"),
        pytest.param([["slow"]], 1, "value column holds 'slow'", id="not a number"),
        pytest.param([[None]], 1, "value column holds None", id="null"),
        pytest.param([[5.0, 0.0]], 2, "target column must be positive", id="zero target"),
    ],
)
async def test_anything_but_one_number_fails_the_read(
    azure: AzureEnv, rows: list[list[Any]], columns: int, message: str
) -> None:
    answer(azure, *rows, columns=columns)

    with pytest.raises(SourceError, match=message):
        await source(azure).read()


async def test_a_partial_result_fails_the_read(azure: AzureEnv) -> None:
    answer(azure, [123.4], partial_error=ArmError("EngineError", "result set too large"))

    with pytest.raises(SourceError, match=r"only a partial result \(PartialError: "):
        await source(azure).read()


async def test_a_server_timeout_fails_the_read(azure: AzureEnv) -> None:
    azure.fake.set_log_timeout(WORKSPACE, P95)

    with pytest.raises(SourceError, match="HTTP 504 GatewayTimeout"):
        await source(azure).read()


async def test_a_throttled_query_waits_for_retry_after(azure: AzureEnv) -> None:
    answer(azure, [7.0])
    azure.fake.inject(service="logs", status=429, retry_after=3)

    assert await source(azure).read() == (Sample(azure.clock.now(), 7.0),)
    assert azure.slept == [3.0]
