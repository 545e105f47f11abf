"""Per-target scheduling: evaluations of one target never overlap, a slow target does not
delay the others, a trigger wakes a loop at once, and stop lets an evaluation finish."""

from __future__ import annotations

import asyncio
import random

from scalerd.daemon.loop import TargetLoop


class Probe:
    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.running = 0
        self.most_at_once = 0
        self.started: list[float] = []
        self.finished = 0

    async def __call__(self) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.started.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(self.duration)
            self.finished += 1
        finally:
            self.running -= 1


def _loop(name: str, probe: Probe, interval: float) -> TargetLoop:
    return TargetLoop(name, probe, interval, jitter=0.0, rng=random.Random(1))


async def test_a_slow_target_never_overlaps_itself_nor_delays_others() -> None:
    slow, fast = Probe(duration=0.3), Probe()
    loops = [_loop("slow", slow, 0.05), _loop("fast", fast, 0.05)]
    for loop in loops:
        loop.start()
    loop_slow = loops[0]
    for _ in range(5):
        loop_slow.trigger()  # pushed events while it is busy: queued, never concurrent
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.4)
    for loop in loops:
        await loop.stop(grace=1.0)
    assert slow.most_at_once == 1
    assert len(fast.started) >= 8  # evaluated every ~50 ms while the slow one took 300 ms each


async def test_trigger_evaluates_at_once() -> None:
    probe = Probe()
    loop = _loop("t", probe, interval=60.0)
    loop.start()
    await asyncio.sleep(0.05)
    assert len(probe.started) == 1
    loop.trigger()
    await asyncio.sleep(0.05)
    assert len(probe.started) == 2  # not 60 s later
    await loop.stop(grace=1.0)


async def test_stop_lets_the_evaluation_under_way_finish() -> None:
    probe = Probe(duration=0.2)
    loop = _loop("t", probe, interval=60.0)
    loop.start()
    await asyncio.sleep(0.05)
    await loop.stop(grace=1.0)
    assert probe.finished == 1


async def test_stop_cuts_an_evaluation_that_outlives_the_grace() -> None:
    probe = Probe(duration=5.0)
    loop = _loop("t", probe, interval=60.0)
    loop.start()
    await asyncio.sleep(0.05)
    await loop.stop(grace=0.1)
    assert probe.finished == 0 and probe.running == 0


async def test_a_failing_evaluation_does_not_stop_the_loop() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    loop = TargetLoop("t", flaky, 0.02, jitter=0.0)
    loop.start()
    # wait for the third call rather than a fixed time: logging the failure may be slow on
    # a loaded machine, and the point is only that the loop goes on
    async with asyncio.timeout(30):
        while calls < 3:
            await asyncio.sleep(0.01)
    await loop.stop(grace=1.0)
    assert calls >= 3
