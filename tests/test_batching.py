"""Group commit: what is submitted together is committed together, in order, and a
submission returns once its items are committed, whatever else is under way."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from scalerd.batching import GroupCommit


async def test_an_empty_submission_returns_at_once_alone_and_during_a_commit() -> None:
    """Nothing submitted is nothing to wait for: an empty submission neither waits for a
    commit that will never come nor for one under way (a poll batch whose every target
    was busy hands over no state and no record)."""
    committed: list[list[int]] = []
    release = threading.Event()

    def commit(items: list[int]) -> None:
        release.wait(5)
        committed.append(items)

    with ThreadPoolExecutor(1) as thread:
        group: GroupCommit[int] = GroupCommit(commit, thread)
        await asyncio.wait_for(group.submit_many([]), 1)  # no writer at all
        under_way = asyncio.create_task(group.submit_many([1, 2]))
        await asyncio.sleep(0.05)  # its commit has started and waits
        await asyncio.wait_for(group.submit_many(()), 1)
        assert not under_way.done()
        release.set()
        await asyncio.wait_for(under_way, 5)
        await asyncio.wait_for(group.submit_many([3]), 5)
    assert committed == [[1, 2], [3]] and group.commits == 2


async def test_items_submitted_during_a_commit_share_the_next_one_in_order() -> None:
    committed: list[list[int]] = []
    release = threading.Event()

    def commit(items: list[int]) -> None:
        if not committed:
            release.wait(5)
        committed.append(items)

    with ThreadPoolExecutor(1) as thread:
        group: GroupCommit[int] = GroupCommit(commit, thread)
        first = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0.05)
        later = [asyncio.create_task(group.submit_many([n, n + 100])) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
    assert committed == [[0], [1, 101, 2, 102, 3, 103]]
