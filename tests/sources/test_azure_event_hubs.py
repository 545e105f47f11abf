"""The azure-event-hubs source through the real async ``EventHubConsumerClient`` (AMQP 1.0
over TLS: ``$cbs`` put-token, then ``$management`` READs) and the real
``BlobCheckpointStore`` (List Blobs with metadata, XML over TLS) against ``FakeAzure``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import AzureEnv
from fakes.azure_fake import ArmError
from pydantic import ValidationError

from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import Source
from scalerd.sources.azure_event_hubs import PLUGIN, EventHubsConfig, partition_lag

CONTAINER = "checkpoints"
GROUP = "$Default"
MAX = 2**63 - 1


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        # partition 0: events 0..99; 1: 10..59 after retention; 2: never written
        env.fake.eventhubs.set_event_hub("orders", {"0": (0, 99), "1": (10, 59), "2": None})
        env.fake.add_blob_container(CONTAINER)
        yield env


def config(**keys: Any) -> EventHubsConfig:
    return EventHubsConfig.model_validate(
        {
            "kind": "azure-event-hubs",
            "name": "lag",
            "event_hub": "orders",
            "checkpoint_account": "ckpt",
            "checkpoint_container": CONTAINER,
            **keys,
        }
    )


def source(azure: AzureEnv, **keys: Any) -> Source:
    keys = {
        "namespace": azure.fake.eventhubs_address,
        "checkpoint_account": azure.fake.blob_account,
        **keys,
    }
    return PLUGIN.build(config(**keys), azure.ctx)


def checkpoint(azure: AzureEnv, partition: str, sequence: int, *, group: str = GROUP) -> None:
    # the processor's namespace is the client's: the host without the port
    azure.fake.set_checkpoint(CONTAINER, "127.0.0.1", "orders", group, partition, sequence)


async def read_value(source: Source) -> float:
    (sample,) = await source.read()
    return sample.value


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({}, "give namespace .* or connection_string_env", id="no namespace"),
        pytest.param(
            {"namespace": "ns", "connection_string_env": "EH"}, "not both", id="both identities"
        ),
        pytest.param({"namespace": "ns", "event_hub": ""}, "at least 1 character", id="empty hub"),
        pytest.param(
            {"namespace": "ns", "checkpoint_container": None}, "valid string", id="no container"
        ),
        pytest.param({"namespace": "ns", "combine": "avg"}, "'sum' or 'max'", id="combine"),
        pytest.param(
            {"namespace": "ns", "checkpoint_account": None},
            "give checkpoint_account .* or checkpoint_connection_string_env",
            id="no checkpoint store",
        ),
        pytest.param(
            {"namespace": "ns", "checkpoint_connection_string_env": "ST"},
            "checkpoint_connection_string_env, not both",
            id="both checkpoint identities",
        ),
        pytest.param(
            {"namespace": "ns", "stale_partition_threshold": -1},
            "greater than or equal to 0",
            id="negative threshold",
        ),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


async def test_lag_is_last_enqueued_minus_checkpoint_summed(azure: AzureEnv) -> None:
    checkpoint(azure, "0", 90)
    checkpoint(azure, "1", 59)

    assert await source(azure).read() == (Sample(azure.clock.now(), (99 - 90) + 0 + 0),)
    requests = azure.fake.eventhubs.requests
    assert [(r.type, r.name, r.partition, r.status) for r in requests] == [
        ("com.microsoft:eventhub", "orders", None, 200),
        *(("com.microsoft:partition", "orders", p, 200) for p in ("0", "1", "2")),
    ]
    # each management request was authorized by a token put on $cbs for the hub
    assert set(azure.fake.eventhubs.audiences) == {"sb://127.0.0.1/orders"}
    (listing,) = azure.fake.calls("blob")
    assert listing.path == f"/{CONTAINER}"
    assert listing.query["prefix"] == "127.0.0.1/orders/$default/checkpoint/"
    assert listing.query["include"] == "metadata"


async def test_a_partition_without_checkpoint_counts_whole(azure: AzureEnv) -> None:
    checkpoint(azure, "0", 90)  # partition 1 never checkpointed: 10..59 are all unprocessed

    assert await read_value(source(azure)) == 9 + 50


async def test_no_checkpoint_at_all_counts_every_retained_event(azure: AzureEnv) -> None:
    assert await read_value(source(azure)) == 100 + 50


async def test_a_missing_container_counts_as_no_checkpoint(azure: AzureEnv) -> None:
    # KEDA's rule: ContainerNotFound is "nothing checkpointed yet", never a zero
    depth = source(azure, checkpoint_container="not-created")

    assert await read_value(depth) == 150
    assert [call.status for call in azure.fake.calls("blob")] == [404]


async def test_the_consumer_groups_checkpoints_only(azure: AzureEnv) -> None:
    checkpoint(azure, "0", 99, group="analytics")
    checkpoint(azure, "1", 59, group="analytics")
    checkpoint(azure, "0", 40)

    assert await read_value(source(azure)) == 59 + 50
    assert await read_value(source(azure, consumer_group="analytics")) == 0


async def test_max_is_the_most_behind_partition(azure: AzureEnv) -> None:
    checkpoint(azure, "0", 90)

    assert await read_value(source(azure, combine="max")) == 50


async def test_a_caught_up_hub_is_zero(azure: AzureEnv) -> None:
    checkpoint(azure, "0", 99)
    checkpoint(azure, "1", 59)

    assert await read_value(source(azure)) == 0


async def test_a_wrapped_sequence_number_counts_past_the_wrap(azure: AzureEnv) -> None:
    azure.fake.eventhubs.set_event_hub("orders", {"0": (0, 30)})
    checkpoint(azure, "0", MAX - 20_000)  # before the wrap; 30 events after it

    assert await read_value(source(azure)) == 20_000 + 30


def test_lag_rules() -> None:
    def props(begin: int, last: int, empty: bool = False) -> dict[str, Any]:
        return {
            "beginning_sequence_number": begin,
            "last_enqueued_sequence_number": last,
            "is_empty": empty,
        }

    assert partition_lag(props(-1, -1, empty=True), None) == 0
    assert partition_lag(props(0, 0), None) == 1  # the first event ever
    assert partition_lag(props(7, 7), None) == 0  # KEDA: equal and not 0
    assert partition_lag(props(5, 9), 7) == 2
    # a checkpoint just ahead of stale partition information: 0, not 2**63
    assert partition_lag(props(0, 100), 105) == 0
    assert partition_lag(props(0, 100), 105, stale_threshold=0) == MAX - 5


async def test_a_missing_hub_fails_the_read(azure: AzureEnv) -> None:
    # azure-eventhub 5.15 drops the status description; the code is what reaches us
    with pytest.raises(SourceError, match=r"event hub 'refunds' .*Status code: 404"):
        await read_value(source(azure, event_hub="refunds"))


async def test_a_busy_namespace_is_retried_by_the_sdk(azure: AzureEnv) -> None:
    azure.fake.eventhubs.busy(times=1)

    assert await read_value(source(azure)) == 150
    statuses = [r.status for r in azure.fake.eventhubs.requests]
    assert statuses[:2] == [503, 200]


async def test_a_namespace_busy_past_the_retries_fails_the_read(azure: AzureEnv) -> None:
    azure.fake.eventhubs.busy(times=10)

    with pytest.raises(SourceError, match=r"event hub 'orders' .*Status code: 503"):
        await read_value(source(azure))
    # [azure].retry_total = 1: the request and one retry
    assert [r.status for r in azure.fake.eventhubs.requests] == [503, 503]


async def test_a_throttled_checkpoint_store_is_read_after_its_retry_after(
    azure: AzureEnv,
) -> None:
    busy = ArmError("ServerBusy", "Egress is over the account limit.")
    azure.fake.inject(service="blob", status=503, retry_after=2, error=busy, times=1)
    checkpoint(azure, "0", 90)

    assert await read_value(source(azure)) == 9 + 50
    assert azure.slept == [2.0]


async def test_an_unreachable_namespace_fails_the_read(azure: AzureEnv) -> None:
    depth = source(azure, namespace="127.0.0.1:9")  # discard: nothing listens

    with pytest.raises(SourceError, match=r"read the partitions of event hub 'orders' .*Connect"):
        await read_value(depth)


SECRET = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="


def connection_string(azure: AzureEnv) -> str:
    return (
        f"Endpoint=sb://{azure.fake.eventhubs_address}/;SharedAccessKeyName=scaler;"
        f"SharedAccessKey={SECRET}"
    )


async def test_a_connection_string_from_the_environment(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_HUB", connection_string(azure))
    # a key's client names the namespace as the connection string does, port and all
    azure.fake.set_checkpoint(CONTAINER, azure.fake.eventhubs_address, "orders", GROUP, "0", 90)
    keyed = source(azure, namespace=None, connection_string_env="ORDERS_HUB")

    assert await read_value(keyed) == 9 + 50
    # a SAS token, signed with the key, was put on $cbs for the hub
    assert azure.fake.eventhubs.audiences[0] == f"sb://{azure.fake.eventhubs_address}/orders"


async def test_a_refused_key_fails_without_showing_it(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ORDERS_HUB", connection_string(azure))
    azure.fake.eventhubs.reject_tokens()
    keyed = source(azure, namespace=None, connection_string_env="ORDERS_HUB")

    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as failure:
        await read_value(keyed)

    assert "AuthenticationError" in str(failure.value)
    assert SECRET not in str(failure.value)
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(record.args) for record in caplog.records)


async def test_refused_tokens_of_the_identity_fail_the_read(azure: AzureEnv) -> None:
    azure.fake.eventhubs.reject_tokens()

    with pytest.raises(SourceError, match=r"AuthenticationError.*401|401.*AuthenticationError"):
        await read_value(source(azure))
    assert not azure.fake.eventhubs.requests  # nothing was read without a token


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(None, r"ORDERS_HUB \(connection_string_env\) is not set", id="unset"),
        pytest.param("SharedAccessKey=c2VjcmV0", "has no 'Endpoint=sb://", id="no endpoint"),
    ],
)
async def test_a_connection_string_must_be_usable_at_build(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("ORDERS_HUB", raising=False)
    else:
        monkeypatch.setenv("ORDERS_HUB", value)

    with pytest.raises(ValueError, match=message) as failure:
        source(azure, namespace=None, connection_string_env="ORDERS_HUB")
    assert "c2VjcmV0" not in str(failure.value)


def test_short_names_get_the_cloud_suffixes(azure: AzureEnv) -> None:
    clients = azure.clients

    assert clients.servicebus_host("shop-events") == "shop-events.servicebus.windows.net"
    assert clients.storage_blob_host("shopckpt") == "shopckpt.blob.core.windows.net"
    assert clients.storage_blob_host("shopckpt.blob.core.chinacloudapi.cn").endswith(".cn")


ACCOUNT_KEY = "a2V5LW9mLXRoZS1zdG9yYWdlLWFjY291bnQtbm90LXRvLWJlLXNob3du"


def storage_connection_string(azure: AzureEnv) -> str:
    return (
        "DefaultEndpointsProtocol=https;AccountName=shopckpt;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint=https://{azure.fake.blob_account};"
    )


async def test_checkpoints_through_a_storage_connection_string(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_STORAGE", storage_connection_string(azure))
    checkpoint(azure, "0", 90)
    keyed = source(azure, checkpoint_account=None, checkpoint_connection_string_env="CKPT_STORAGE")

    assert await read_value(keyed) == 9 + 50
    (listing,) = azure.fake.calls("blob")
    assert listing.query["prefix"] == "127.0.0.1/orders/$default/checkpoint/"


async def test_a_refused_storage_key_fails_without_showing_it(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CKPT_STORAGE", storage_connection_string(azure))
    refused = ArmError(
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature.",
    )
    azure.fake.inject(service="blob", status=403, error=refused, times=None)
    keyed = source(azure, checkpoint_account=None, checkpoint_connection_string_env="CKPT_STORAGE")

    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as failure:
        await read_value(keyed)

    assert "read the checkpoints of consumer group '$Default'" in str(failure.value)
    assert "AuthenticationFailed" in str(failure.value)
    assert ACCOUNT_KEY not in str(failure.value)
    assert ACCOUNT_KEY not in caplog.text


async def test_a_storage_connection_string_must_name_its_account(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_STORAGE", f"AccountKey={ACCOUNT_KEY}")

    with pytest.raises(ValueError, match="neither AccountName nor BlobEndpoint") as failure:
        source(azure, checkpoint_account=None, checkpoint_connection_string_env="CKPT_STORAGE")
    assert ACCOUNT_KEY not in str(failure.value)


async def test_a_sum_past_64_bits_is_capped(azure: AzureEnv) -> None:
    # with no stale threshold, two checkpoints ahead of their partitions each count ~2**63
    azure.fake.eventhubs.set_event_hub("orders", {"0": (0, 100), "1": (0, 100)})
    checkpoint(azure, "0", 105)
    checkpoint(azure, "1", 105)

    assert await read_value(source(azure, stale_partition_threshold=0)) == MAX
    assert await read_value(source(azure)) == 0  # KEDA's default: stale, not 2**64 events
