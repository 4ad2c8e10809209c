"""Group commit: many small writes that must each be saved before their caller goes on, made as few
transactions. What is added while a transaction is being written goes into the next one, together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Calls `write` with every item added since the last call, one call at a time; `save(item)` returns
    once the call that wrote its item has returned, and raises what that call raised."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[T] = []
        self._group: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def save(self, item: T) -> None:
        self._pending.append(item)
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
            # A caller that gives up waiting (cancelled) must not leave a failure nobody reads.
            self._group.add_done_callback(_retrieve)
        group = self._group
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="group-commit")
        # Shielded: the write goes on whether or not this caller still waits for it.
        await asyncio.shield(group)

    async def _write_groups(self) -> None:
        while self._pending:
            items, self._pending = self._pending, []
            group, self._group = self._group, None
            assert group is not None
            try:
                await self._write(items)
            except Exception as exc:
                group.set_exception(exc)
            except BaseException:
                group.cancel()
                raise
            else:
                group.set_result(None)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
