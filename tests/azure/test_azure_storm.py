"""A 429 storm from Azure Resource Manager: nothing crashes, Retry-After is honoured, other
actuators of the subscription stop calling, and writes stay within scalerd's budget."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.azure_env import SUB, AzureEnv

from scalerd.actuators.azure_container_apps import PLUGIN, ContainerAppsConfig
from scalerd.core.model import Capacity
from scalerd.errors import Throttled
from scalerd.plugins import Actuator


def apps(azure: AzureEnv, count: int) -> list[Actuator]:
    actuators = []
    for index in range(count):
        app_id = azure.fake.add_container_app(
            SUB, "rg", f"app{index}", min_replicas=1, max_replicas=5
        )
        config = ContainerAppsConfig(
            kind="azure-container-apps", name=f"app{index}", resource_id=app_id
        )
        actuators.append(PLUGIN.build(config, azure.ctx))
    return actuators


async def test_a_retry_after_within_the_budget_is_waited_out(azure: AzureEnv) -> None:
    (app,) = apps(azure, 1)
    azure.fake.inject(service="arm", status=429, retry_after=3, times=2)

    assert await app.current() == Capacity(1, 1)
    assert azure.slept == [3.0, 3.0]
    assert [call.status for call in azure.fake.calls("arm")][:3] == [429, 429, 200]


async def test_a_storm_skips_the_calls_and_says_why(azure: AzureEnv) -> None:
    actuators = apps(azure, 4)
    azure.fake.throttle_storm("arm", retry_after=30)

    skipped: list[Throttled] = []
    for app in actuators:
        with pytest.raises(Throttled) as caught:
            await app.current()
        skipped.append(caught.value)

    # the first call met the 429 and closed the subscription's gate; the others did not call
    assert len(azure.fake.calls("arm")) == 1
    assert azure.slept == []  # 30s is beyond the 10s a call may wait
    assert {error.code for error in skipped} == {"SubscriptionRequestsThrottled"}
    assert [error.retry_after for error in skipped] == [30.0] * 4
    assert str(skipped[1]) == (
        "read container app 'app1': HTTP 429 SubscriptionRequestsThrottled: skipped: Azure "
        f"throttles arm/{SUB} for 30s more, beyond this call's budget of 10s (last answer: Number "
        f"of 'read' requests for subscription '{SUB}' exceeded the limit. Please try again "
        "after '30' seconds.)"
    )

    azure.fake.clear_faults()
    azure.clock.advance(30)
    assert [await app.current() for app in actuators] == [Capacity(1, 1)] * 4


async def test_writes_stay_within_the_budget_through_a_storm() -> None:
    async with AzureEnv.running(write_burst=3, writes_per_hour=60) as azure:
        actuators = apps(azure, 2)
        azure.fake.inject(service="arm", method="PATCH", status=429, retry_after=2, times=None)

        outcomes: list[Any] = []
        for app in actuators:
            with pytest.raises(Throttled) as caught:
                await app.apply(azure.decision(3))
            outcomes.append(caught.value)

        # each attempt spends a write: 3 PATCHes in all, each 429 waited out (2s); then the
        # budget says no, to this app and the next
        assert len(azure.fake.calls("arm", "PATCH")) == 3
        assert azure.slept == [2.0, 2.0, 2.0]
        assert [error.code for error in outcomes] == ["WriteBudgetExhausted"] * 2
        assert "scalerd's write budget for arm/" in str(outcomes[1])
        # one write a minute comes back: 6s of waiting refilled 0.1 of one, 54s to go
        assert outcomes[1].retry_after == pytest.approx(54)
