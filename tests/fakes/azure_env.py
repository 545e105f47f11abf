"""The Azure plugins' test bench: production ``AzureClients`` pointed at ``FakeAzure``.

Nothing in the clients is replaced. They get the fake's endpoints and its CA bundle
(the fake serves TLS, so the SDK's https check stays on), a static-token credential, LRO
polling without pause, and one test seam the daemon has too: ``sleep``. Here it moves a
``ManualClock`` instead of waiting, and records what it was asked for, so a Retry-After of
30 s costs a test nothing and the test can assert exactly how long scalerd waited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from scalerd.azure import AzureClients
from scalerd.clock import ManualClock
from scalerd.core.model import Capacity, Decision
from scalerd.plugins import BuildContext
from scalerd.settings import AzureSettings

from .azure_fake import FakeAzure, FakeCredential

__all__ = ["SUB", "AzureEnv"]

SUB = "0b5f6a39-3c1e-4f7d-9a53-5d1c2e8f4a10"


@dataclass
class AzureEnv:
    """A running fake, the clients built against it, and the clock they share."""

    fake: FakeAzure
    clients: AzureClients
    clock: ManualClock
    # every wait scalerd asked for, in seconds
    slept: list[float] = field(default_factory=list)

    @property
    def ctx(self) -> BuildContext:
        return BuildContext(clock=self.clock, azure=self.clients)

    def decision(self, desired: int, current: int = 1) -> Decision:
        """A decision of the core to move from ``current`` to ``desired``, as of now."""
        return Decision(
            target="t",
            at=self.clock.now(),
            current=Capacity.steady(current),
            recommended=desired,
            desired=desired,
            steps=(),
            inputs=(),
            rules=(),
            not_scaled_reason=None,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, **settings: Any) -> AsyncIterator[AzureEnv]:
        """Start a fake and the clients; ``settings`` override ``[azure]`` keys."""
        clock = ManualClock()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)
            await asyncio.sleep(0)

        async with FakeAzure.running() as fake:
            options = {
                "arm_endpoint": fake.arm_url,
                "metrics_endpoint": fake.metrics_url,
                "logs_endpoint": fake.logs_url,
                "ca_bundle": fake.ca_path,
                "polling_interval": "0s",
                **settings,
            }
            clients = AzureClients(
                AzureSettings.model_validate(options),
                credential=FakeCredential(),
                clock=clock,
                sleep=sleep,
            )
            async with clients:
                yield cls(fake, clients, clock, slept)
