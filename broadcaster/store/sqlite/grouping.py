"""Group commit: many small writes that must each be saved before their caller goes on, made as few
transactions. What is added while a transaction is being written goes into the next one, together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from broadcaster.domain.errors import StoreError

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Calls `write` with every item added since its last call, one call at a time; `write` returns one
    result per item, in order. `save(item)` returns its item's result once the call that wrote it has
    returned, and raises what that call raised (a StoreError if it was cancelled). A caller that stops
    waiting does not stop the write."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._pending: list[T] = []
        self._group: asyncio.Future[Sequence[R]] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def save(self, item: T) -> R:
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
            # A caller that gives up waiting (cancelled) must not leave a failure nobody reads.
            self._group.add_done_callback(_retrieve)
        group, position = self._group, len(self._pending)
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="group-commit")
            self._writer.add_done_callback(self._writer_ended)
        return (await asyncio.shield(group))[position]

    def _writer_ended(self, writer: asyncio.Task[None]) -> None:
        """A writer cancelled before it took the pending group (the loop shutting down) must not leave its
        savers waiting for ever."""
        if writer.cancelled() and self._group is not None and not self._group.done():
            self._group.set_exception(StoreError("the journal write was cancelled (the process is stopping)"))
            self._group, self._pending = None, []

    async def _write_groups(self) -> None:
        while self._pending:
            items, self._pending = self._pending, []
            group, self._group = self._group, None
            assert group is not None
            try:
                results = await self._write(items)
            except Exception as exc:
                group.set_exception(exc)
            except BaseException:
                group.set_exception(StoreError("the journal write was cancelled (the process is stopping)"))
                raise
            else:
                group.set_result(results)


def _retrieve(future: asyncio.Future[Sequence[R]]) -> None:
    if not future.cancelled():
        future.exception()
