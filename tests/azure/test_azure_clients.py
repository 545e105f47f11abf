"""``AzureClients``: identity, endpoints and token audiences, one cached client per scope."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AccessToken
from fakes.azure_env import SUB, AzureEnv
from fakes.azure_fake import FakeCredential
from pydantic import ValidationError

from scalerd.azure import AzureClients, clients
from scalerd.settings import AzureSettings

WORKSPACE = "63613592-b6f7-4c3d-a390-22ba13102111"


class ScopeRecorder(FakeCredential):
    """A test credential that notes the audience of every token asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return await super().get_token(*scopes, **kwargs)


def test_one_client_per_service_and_subscription(azure: AzureEnv) -> None:
    made = azure.clients

    assert made.container_apps(SUB) is made.container_apps(SUB)
    assert made.container_apps(SUB) is not made.container_apps("another-subscription")
    assert made.metrics_client("eastus") is made.metrics_client("EastUS")
    assert made.servicebus("orders-bus") is made.servicebus("orders-bus.servicebus.windows.net")


async def test_tokens_are_asked_for_each_endpoints_audience() -> None:
    credential = ScopeRecorder()
    async with AzureEnv.running() as azure:
        app_id = azure.fake.add_container_app(SUB, "rg", "web")
        azure.fake.set_queue("orders")
        azure.fake.set_log_result(WORKSPACE, "T | count", columns=[("n", "long")], rows=[[1]])
        async with AzureClients(azure.clients.settings, credential=credential) as made:
            await made.container_apps(SUB).container_apps.get("rg", "web")
            await made.metrics_client("eastus").query_resources(
                resource_ids=[app_id],
                metric_namespace="Microsoft.App/containerApps",
                metric_names=["CpuPercentage"],
            )
            await made.logs().query_workspace(WORKSPACE, "T | count", timespan=None)
            await made.servicebus(azure.fake.servicebus_namespace).get_queue_runtime_properties(
                "orders"
            )

    assert credential.scopes == [
        f"{azure.fake.arm_url}/.default",  # from arm_endpoint, not the SDK's public-cloud default
        "https://metrics.monitor.azure.com/.default",  # metrics_audience
        f"{azure.fake.logs_url}/.default",
        "https://servicebus.azure.net//.default",
    ]


async def test_the_default_credential_is_the_daemons_and_closed_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    class DefaultCredentialStub:
        """Stands in for ``DefaultAzureCredential``, which would look for a real identity."""

        def __init__(self, **options: Any) -> None:
            self.options, self.closed = options, False
            made.append(self)

        async def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(clients, "DefaultAzureCredential", DefaultCredentialStub)
    async with AzureClients(AzureSettings(managed_identity_client_id="5e1f-client")):
        pass
    async with AzureClients(AzureSettings(), credential=FakeCredential()):
        pass  # an injected credential is the caller's to close

    assert [(stub.options, stub.closed) for stub in made] == [
        ({"managed_identity_client_id": "5e1f-client"}, True)
    ]


@pytest.mark.parametrize(
    "key", ["arm_endpoint", "metrics_endpoint", "logs_endpoint", "metrics_audience"]
)
def test_endpoints_must_be_https(key: str) -> None:
    with pytest.raises(ValidationError, match="must start with https://"):
        AzureSettings.model_validate({key: "http://127.0.0.1:8080"})


def test_a_sovereign_cloud_is_configuration() -> None:
    settings = AzureSettings(
        arm_endpoint="https://management.usgovcloudapi.net/",
        metrics_endpoint="https://{region}.metrics.monitor.azure.us",
        metrics_audience="https://metrics.monitor.azure.us",
        logs_endpoint="https://api.loganalytics.us/",
        servicebus_suffix="servicebus.usgovcloudapi.net",
    )

    assert settings.arm_endpoint == "https://management.usgovcloudapi.net"  # no "//v1/…" later
    assert settings.logs_endpoint == "https://api.loganalytics.us"
    assert AzureClients(settings, credential=FakeCredential()).servicebus_host("bus") == (
        "bus.servicebus.usgovcloudapi.net"
    )
