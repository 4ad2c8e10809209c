"""The journal figures /readyz and /metrics show: one read shared by every caller for FRESH_FOR seconds, read
again once stale or when the clock stepped back."""

from __future__ import annotations

import asyncio

from broadcaster.web.backlog import FRESH_FOR, SharedRead


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Reads:
    """A read that returns how many times it was made."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        await asyncio.sleep(0)  # callers arriving meanwhile wait for this read
        return self.count


async def test_one_read_serves_every_caller_until_it_is_stale() -> None:
    clock = Clock()
    shared = SharedRead(Reads(), clock)
    assert await asyncio.gather(*(shared.get() for _ in range(20))) == [1] * 20
    clock.now += FRESH_FOR * 0.9
    assert await shared.get() == 1
    clock.now += FRESH_FOR * 0.1
    assert await shared.get() == 2


async def test_a_clock_that_stepped_back_reads_again() -> None:
    clock = Clock()
    shared = SharedRead(Reads(), clock)
    assert await shared.get() == 1
    clock.now -= 3600  # an NTP step: the value must not stay for an hour
    assert await shared.get() == 2
    assert await shared.get() == 2
