"""Group commit: each caller's item is written before its save returns, many callers share one write, and a
failed or interrupted write reaches every caller whose item was in it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from broadcaster.domain.errors import StoreError
from broadcaster.store.sqlite.grouping import GroupCommit


class Writes:
    """A write that records the groups it was given and answers each item with its double."""

    def __init__(self, *, gate: asyncio.Event | None = None, fail: Exception | None = None) -> None:
        self.groups: list[list[int]] = []
        self.gate = gate
        self.fail = fail

    async def __call__(self, items: list[int]) -> Sequence[int]:
        self.groups.append(items)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 2 for item in items]


async def test_saves_of_one_turn_share_one_write_and_get_their_own_results() -> None:
    writes = Writes()
    commit: GroupCommit[int, int] = GroupCommit(writes)
    results = await asyncio.gather(*(commit.save(n) for n in range(5)))
    assert results == [0, 2, 4, 6, 8]
    assert writes.groups == [[0, 1, 2, 3, 4]]


async def test_saves_made_while_a_write_runs_go_into_the_next_write() -> None:
    gate = asyncio.Event()
    writes = Writes(gate=gate)
    commit: GroupCommit[int, int] = GroupCommit(writes)
    first = asyncio.create_task(commit.save(1))
    await asyncio.sleep(0)  # the first write has started and waits at the gate
    later = [asyncio.create_task(commit.save(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    assert writes.groups == [[1]]
    gate.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6]
    assert writes.groups == [[1], [2, 3]]


async def test_a_failed_write_fails_every_save_in_it() -> None:
    writes = Writes(fail=StoreError("disk full"))
    commit: GroupCommit[int, int] = GroupCommit(writes)
    results = await asyncio.gather(commit.save(1), commit.save(2), return_exceptions=True)
    assert [str(result) for result in results] == ["disk full", "disk full"]


async def test_a_caller_that_stops_waiting_does_not_stop_the_write() -> None:
    gate = asyncio.Event()
    writes = Writes(gate=gate)
    commit: GroupCommit[int, int] = GroupCommit(writes)
    waiting = asyncio.create_task(commit.save(7))
    await asyncio.sleep(0)
    waiting.cancel()
    other = asyncio.create_task(commit.save(8))  # joins the next write
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await other == 16
    assert writes.groups == [[7], [8]]  # 7 was written all the same


async def test_an_interrupted_write_is_a_store_error_for_its_callers() -> None:
    """The writer task cancelled (the process stopping): the callers learn their item may not be saved."""
    gate = asyncio.Event()
    writes = Writes(gate=gate)
    commit: GroupCommit[int, int] = GroupCommit(writes)
    saving = asyncio.create_task(commit.save(1))
    await asyncio.sleep(0)
    writer = commit._writer
    assert writer is not None
    writer.cancel()
    with pytest.raises(StoreError, match="cancelled"):
        await saving
