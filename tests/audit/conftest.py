"""Fixtures for the audit tests. The private ``redis-server`` is ``tests/conftest.py``'s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from tests.conftest import RedisServer


@pytest.fixture
async def audit_redis(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A client that fails at once while the server is down, as the audit sink's client
    should be (its retries would only delay the spool), over an empty database.

    The server is running before and after the test, whatever the test did to it.
    """
    if not redis_server.running:
        redis_server.start()
    client = redis.asyncio.Redis.from_url(
        redis_server.url, retry=Retry(NoBackoff(), 0), socket_timeout=2, socket_connect_timeout=2
    )
    await client.flushdb()
    yield client
    await client.aclose()
    if not redis_server.running:
        redis_server.start()
