"""Fixtures of the Azure plumbing tests: the clients against a fresh ``FakeAzure``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes.azure_env import AzureEnv


@pytest.fixture
async def azure() -> AsyncIterator[AzureEnv]:
    async with AzureEnv.running() as env:
        yield env
