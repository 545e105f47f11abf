"""The servicebus source through the real ``ServiceBusAdministrationClient`` (Atom XML over
TLS) against ``FakeAzure``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.azure_env import AzureEnv
from pydantic import ValidationError

from scalerd.core.model import Sample
from scalerd.errors import SourceError
from scalerd.plugins import Source
from scalerd.sources.servicebus import PLUGIN, ServiceBusConfig


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        env.fake.set_queue("orders", active=30, dead_letter=2, scheduled=5)
        env.fake.set_queue("refunds", active=4)
        env.fake.set_subscription("events", "scaler", active=7, dead_letter=1)
        yield env


def config(**keys: Any) -> ServiceBusConfig:
    return ServiceBusConfig.model_validate({"kind": "servicebus", "name": "depth", **keys})


def source(azure: AzureEnv, **keys: Any) -> Source:
    return PLUGIN.build(config(namespace=azure.fake.servicebus_namespace, **keys), azure.ctx)


async def read_value(source: Source) -> float:
    (sample,) = await source.read()
    return sample.value


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param(
            {"queues": ["q"]}, "give namespace .* or connection_string_env", id="no namespace"
        ),
        pytest.param(
            {"namespace": "bus", "connection_string_env": "SB", "queues": ["q"]},
            "not both",
            id="both",
        ),
        pytest.param({"namespace": "bus"}, "name at least one entity", id="no entity"),
        pytest.param(
            {"namespace": "bus", "subscriptions": ["events"]}, "'topic/subscription'", id="no topic"
        ),
        pytest.param(
            {"namespace": "bus", "subscriptions": ["t/s"], "counts": ["scheduled"]},
            "only queues hold scheduled messages",
            id="scheduled of a subscription",
        ),
        pytest.param(
            {"namespace": "bus", "queues": ["q"], "counts": []}, "at least 1 item", id="no count"
        ),
        pytest.param(
            {"namespace": "bus", "queues": ["q"], "counts": ["total"]},
            "'active', 'dead_letter'",
            id="count",
        ),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


async def test_active_messages_of_a_queue(azure: AzureEnv) -> None:
    assert await source(azure, queues=["orders"]).read() == (Sample(azure.clock.now(), 30),)
    (call,) = azure.fake.calls("servicebus")
    assert (call.path, call.query["enrich"]) == ("/orders", "false")


@pytest.mark.parametrize(
    ("counts", "combine", "value"),
    [
        pytest.param(["active"], "sum", 30 + 4 + 7, id="active, summed"),
        pytest.param(["active", "dead_letter"], "sum", 32 + 4 + 8, id="active and dead letters"),
        pytest.param(["active"], "max", 30, id="the deepest entity"),
    ],
)
async def test_several_entities_are_combined(
    azure: AzureEnv, counts: list[str], combine: str, value: int
) -> None:
    depth = source(
        azure,
        queues=["orders", "refunds"],
        subscriptions=["events/scaler"],
        counts=counts,
        combine=combine,
    )

    assert await read_value(depth) == value


async def test_scheduled_messages_of_a_queue_count_when_asked(azure: AzureEnv) -> None:
    assert await read_value(source(azure, queues=["orders"], counts=["active", "scheduled"])) == 35


async def test_a_missing_entity_fails_the_read(azure: AzureEnv) -> None:
    with pytest.raises(SourceError, match=r"read queue 'missing' .*ResourceNotFoundError"):
        await source(azure, queues=["orders", "missing"]).read()

    # Service Bus answers "not found" with 200 and an empty feed
    assert [call.status for call in azure.fake.calls("servicebus", path="/missing")] == [200]


async def test_a_connection_string_from_the_environment(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Endpoint=sb://{}/;SharedAccessKeyName=scaler;SharedAccessKey=c2VjcmV0"
    monkeypatch.setenv("ORDERS_BUS", secret.format(azure.fake.servicebus_namespace))
    keyed = PLUGIN.build(config(connection_string_env="ORDERS_BUS", queues=["orders"]), azure.ctx)

    assert await read_value(keyed) == 30


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(None, r"ORDERS_BUS \(connection_string_env\) is not set", id="unset"),
        pytest.param("SharedAccessKey=c2VjcmV0", "has no 'Endpoint=sb://", id="no endpoint"),
    ],
)
async def test_a_connection_string_must_be_usable_at_build(
    azure: AzureEnv, monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("ORDERS_BUS", raising=False)
    else:
        monkeypatch.setenv("ORDERS_BUS", value)

    with pytest.raises(ValueError, match=message):
        PLUGIN.build(config(connection_string_env="ORDERS_BUS", queues=["q"]), azure.ctx)


async def test_a_throttled_namespace_is_read_again_after_backing_off(azure: AzureEnv) -> None:
    azure.fake.inject(service="servicebus", status=503, times=1)  # no Retry-After: back off

    assert await read_value(source(azure, queues=["orders"])) == 30
    assert azure.slept == [1.0]


def test_a_short_namespace_name_gets_the_cloud_suffix(azure: AzureEnv) -> None:
    clients = azure.clients

    assert clients.servicebus_host("orders-bus") == "orders-bus.servicebus.windows.net"
    assert clients.servicebus_host("orders-bus.servicebus.usgovcloudapi.net").endswith(
        "usgovcloudapi.net"
    )
