"""The azure-storage-queue source through the real async ``QueueClient`` (TLS, a bearer
token) against ``FakeAzure``'s queue endpoint, which answers ``GET ?comp=metadata`` with
the ``x-ms-approximate-messages-count`` header."""

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
from scalerd.sources.azure_storage_queue import PLUGIN, StorageQueueConfig


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        env.fake.set_storage_queue("thumbnails", 120)
        env.fake.set_storage_queue("emails", 7)
        yield env


def config(**keys: Any) -> StorageQueueConfig:
    return StorageQueueConfig.model_validate(
        {"kind": "azure-storage-queue", "name": "depth", **keys}
    )


def source(azure: AzureEnv, **keys: Any) -> Source:
    return PLUGIN.build(config(account=azure.fake.storage_queue_account, **keys), azure.ctx)


async def read_value(source: Source) -> float:
    (sample,) = await source.read()
    return sample.value


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"queues": ["q"]}, "account\n  Field required", id="no account"),
        pytest.param({"account": "jobs"}, "queues\n  Field required", id="no queue"),
        pytest.param({"account": "jobs", "queues": []}, "at least 1 item", id="empty queues"),
        pytest.param(
            {"account": "jobs", "queues": ["q"], "combine": "avg"}, "'sum' or 'max'", id="combine"
        ),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


async def test_the_approximate_message_count_of_a_queue(azure: AzureEnv) -> None:
    assert await source(azure, queues=["thumbnails"]).read() == (Sample(azure.clock.now(), 120),)
    (call,) = azure.fake.calls("queue")
    assert (call.method, call.path, call.query["comp"]) == ("GET", "/thumbnails", "metadata")


@pytest.mark.parametrize(("combine", "value"), [("sum", 127), ("max", 120)])
async def test_several_queues_are_combined(azure: AzureEnv, combine: str, value: int) -> None:
    depth = source(azure, queues=["thumbnails", "emails"], combine=combine)

    assert await read_value(depth) == value


async def test_an_empty_queue_is_zero(azure: AzureEnv) -> None:
    azure.fake.set_storage_queue("idle", 0)

    assert await read_value(source(azure, queues=["idle"])) == 0


async def test_a_missing_queue_fails_the_read(azure: AzureEnv) -> None:
    with pytest.raises(SourceError, match=r"read queue 'missing' .*QueueNotFound"):
        await source(azure, queues=["thumbnails", "missing"]).read()


async def test_a_busy_account_is_read_again_after_its_retry_after(azure: AzureEnv) -> None:
    busy = ArmError("ServerBusy", "Ingress is over the account limit.")
    azure.fake.inject(service="queue", status=503, retry_after=2, error=busy, times=1)

    assert await read_value(source(azure, queues=["thumbnails"])) == 120
    assert azure.slept == [2.0]


async def test_throttling_past_the_budget_fails_the_read(azure: AzureEnv) -> None:
    busy = ArmError("ServerBusy", "Ingress is over the account limit.")
    azure.fake.inject(service="queue", status=503, retry_after=60, error=busy, times=None)

    with pytest.raises(SourceError, match=r"HTTP 503 ServerBusy: skipped: Azure throttles"):
        await source(azure, queues=["thumbnails"]).read()
    assert len(azure.fake.calls("queue")) == 1  # the gate keeps the second call from Azure


def test_a_short_account_name_gets_the_cloud_suffix(azure: AzureEnv) -> None:
    clients = azure.clients

    assert clients.storage_queue_host("shopjobs") == "shopjobs.queue.core.windows.net"
    assert clients.storage_queue_host("shopjobs.queue.core.usgovcloudapi.net").endswith(
        "usgovcloudapi.net"
    )
