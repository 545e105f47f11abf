"""Fixtures for tests that drive the real Azure SDK clients against ``FakeAzure``."""

from collections.abc import AsyncIterator

import pytest

from .azure_fake import FakeAzure


@pytest.fixture
async def azure_fake() -> AsyncIterator[FakeAzure]:
    """A started fake, stopped after the test; the ``azure_fake`` module says how to reach it."""
    async with FakeAzure.running() as fake:
        yield fake
